"""Discharge rules: may the patient leave now, and if not, every reason why.

The conditions, each listed when unmet:

1. dosing has ended and the session is in recovery;
2. the minimum observation time after the end of dosing has passed (from the
   protocol when sourced: esketamine at least 2 h; otherwise the plan's monitoring
   order or the clinic's session policy). When none of them sets it, discharge is
   refused: no source gives a minimum for racemic ketamine, and "no number" must
   not mean "no wait" (fail closed);
3. the latest discharge score(s) since dosing ended meet the criterion
   (modified PADSS total of 9 or more, Chung; the number of consecutive scores
   is 1 as published, or the site's choice) and raise no "no escort" flag;
4. a responsible adult to accompany the patient has been confirmed;
5. no alert is open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ketacare.core.errors import InvalidInput
from ketacare.core.sessions.rules import (
    PLAUSIBILITY,
    TimedCheck,
    load_session_rules,
    observed_label,
)
from ketacare.core.sessions.state import SessionState


@dataclass(frozen=True, slots=True)
class VitalChange:
    """One vital's latest value against the pre-session baseline."""

    vital: str
    baseline: float
    latest: float
    change_pct: float

    def describe(self) -> str:
        """E.g. 'systolic blood pressure 182 mmHg vs baseline 127 mmHg (+43.3 %)'."""
        label, unit = observed_label(self.vital)
        return (
            f"{label} {self.latest:g} {unit} vs baseline {self.baseline:g} {unit} "
            f"({self.change_pct:+.1f} %)"
        )


@dataclass(frozen=True, slots=True)
class RecordVitalSigns:
    """The PADSS vital-signs item as the record gives it, with the numbers it came from."""

    score: int
    changes: tuple[VitalChange, ...]
    source: str

    def describe(self) -> str:
        """One line for the discharge form and the refusal message."""
        worst = max(self.changes, key=lambda c: abs(c.change_pct))
        return (
            f"vital signs from the record: {self.score} (largest change: {worst.describe()}; "
            f"{self.source})"
        )


def change_from_baseline(baseline: float, value: float) -> float:
    """Percentage change of ``value`` from ``baseline`` (signed).

    Examples
    --------
    >>> round(change_from_baseline(127, 182), 1)  # (182 - 127) / 127 = 0.433
    43.3
    """
    return (value - baseline) / baseline * 100.0


def record_vital_signs(state: SessionState) -> RecordVitalSigns | None:
    """The PADSS vital-signs item computed from the latest recorded BP and heart rate.

    Why: a nurse scoring "within 20 %" from memory discharged a patient whose recorded
    systolic was 43 % above baseline. Each of the item's vitals (systolic, diastolic,
    heart rate) is taken at its latest recorded value and compared with the pre-session
    baseline; the largest absolute change decides the band. None when there is no
    baseline to compare with (then the item cannot be checked against the record).
    """
    bands = load_session_rules().padss_vital_signs
    base = state.baseline
    if bands is None or base is None:
        return None
    changes: list[VitalChange] = []
    for vital in bands.vitals:
        reference = getattr(base, vital)
        latest = next(
            (getattr(v, vital) for v in reversed(state.vitals) if getattr(v, vital) is not None),
            None,
        )
        if reference is None or latest is None or reference <= 0:
            continue
        changes.append(
            VitalChange(
                vital, float(reference), float(latest), change_from_baseline(reference, latest)
            )
        )
    if not changes:
        return None
    worst = max(abs(c.change_pct) for c in changes)
    return RecordVitalSigns(bands.score_for(worst), tuple(changes), bands.source)


def timed_readings(
    state: SessionState, timed: TimedCheck
) -> tuple[datetime | None, datetime | None]:
    """When a timed check was met, and when a later reading of its vitals was taken.

    The first complete reading of the check's vitals at or after its due time meets
    it; for a check also needed before discharge (the esketamine REMS form's blood
    pressure "before completion"), a reading taken after that one is the later one.
    Both are None before dosing starts.
    """
    start = state.dosing_started_at
    if start is None:
        return None, None
    due = start + timedelta(minutes=timed.minutes_after_dosing_start)
    taken = [
        v.at
        for v in state.vitals
        if v.at >= due and all(getattr(v, name) is not None for name in timed.vitals)
    ]
    if not taken:
        return None, None
    later = [t for t in taken if t > taken[0]]
    return taken[0], later[-1] if later else None


@dataclass(frozen=True, slots=True)
class DischargeStatus:
    """The discharge decision at ``now``: ``reasons`` lists every unmet condition."""

    now: datetime
    allowed: bool
    reasons: tuple[str, ...]
    notes: tuple[str, ...]
    earliest_at: datetime | None


def _clock(t: datetime) -> str:
    """An instant as ISO 8601 to the minute with its offset: unambiguous in the API and the
    CLI, and shown in the clinic's own time on its pages (``sessions.words``).

    >>> from datetime import UTC
    >>> _clock(datetime(2026, 3, 2, 11, 15, 30, tzinfo=UTC))
    '2026-03-02T11:15+00:00'
    """
    return t.isoformat(timespec="minutes")


def discharge_status(state: SessionState, *, now: datetime) -> DischargeStatus:
    """Every discharge condition checked at ``now`` (see the module docstring).

    ``earliest_at`` is the end of the minimum observation (None before dosing
    ends, or when no minimum is set: then discharge is refused).
    """
    if now.tzinfo is None:
        raise InvalidInput("now must be a timezone-aware datetime")
    setup = state.setup
    reasons: list[str] = []
    notes: list[str] = []
    if state.state != "recovery":
        reasons.append(
            f"the session is in state {state.state}: discharge is only possible from recovery"
        )
    earliest: datetime | None = None
    observation = setup.observation
    ended = state.dosing_ended_at
    if observation.value is None:
        reasons.append(
            f"no minimum observation after dosing is set for protocol {setup.protocol_id} (no "
            "published value, no monitoring order value, no clinic session policy "
            "observation_min): discharge cannot be checked until a physician sets it; a "
            "patient who leaves now leaves against advice"
        )
    elif ended is not None:
        earliest = ended + timedelta(minutes=observation.value)
        if now < earliest:
            left = (earliest - now) / timedelta(minutes=1)
            if observation.basis == "sourced":
                where = f"sourced: {observation.source}"
            elif observation.basis == "order":
                where = observation.note or "monitoring order"
            else:
                where = "site policy"
            reasons.append(
                f"minimum observation of {observation.value:g} min after dosing ended ({where}) "
                f"not reached: earliest discharge at {_clock(earliest)}, in {left:.0f} min"
            )
    minimum = setup.discharge_score_min
    needed = int(setup.discharge_scores_required.value or 1)
    since = [s for s in state.scores if ended is not None and s.at >= ended]
    label = minimum.name.removesuffix(" total")
    if len(since) < needed or not all(s.meets_criterion for s in since[-needed:]):
        if not since:
            got = "none recorded since dosing ended"
        else:
            got = "latest " + ", ".join(
                f"{s.total:g}" for s in since[-needed:] if s.total is not None
            )
        count = "" if needed == 1 else f" on {needed} consecutive scores"
        reasons.append(
            f"{label} must be {minimum.value:g} or more{count} ({minimum.source}): {got}"
        )
    if since:
        for message in since[-1].flag_messages:
            reasons.append(f"{label}: {message}")
    for timed in setup.timed_checks:
        if state.dosing_started_at is None:
            break
        met_at, again = timed_readings(state, timed)
        what = " and ".join(PLAUSIBILITY[name].label for name in timed.vitals)
        if met_at is None:
            reasons.append(f"{timed.text} Not recorded yet ({timed.source})")
        elif timed.before_discharge and again is None:
            reasons.append(
                f"{what} must be taken again before discharge, after the reading at "
                f"{_clock(met_at)} (SPRAVATO REMS Patient Monitoring Form)"
            )
    if state.escort_confirmed_at is None:
        reasons.append("no responsible adult confirmed to accompany the patient home")
    for alert in state.open_alerts:
        reasons.append(f"open {alert.describe()}: acknowledge it with the action taken")
    return DischargeStatus(
        now=now,
        allowed=not reasons,
        reasons=tuple(reasons),
        notes=tuple(notes),
        earliest_at=earliest,
    )


def can_discharge(state: SessionState, *, now: datetime) -> tuple[bool, tuple[str, ...]]:
    """``(allowed, reasons)``: whether the patient may leave at ``now``, and every unmet condition.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> from ketacare.core.protocols import load_library
    >>> from ketacare.core.sessions.events import Scheduled
    >>> from ketacare.core.sessions.setup import session_setup
    >>> from ketacare.core.sessions.replay import replay
    >>> t0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    >>> setup = session_setup(protocol=load_library().get(protocol_id="esketamine-trd"),
    ...                       weight_kg=70)
    >>> ok, reasons = can_discharge(replay([Scheduled(at=t0, by="a", seq=1, setup=setup)]),
    ...                             now=t0)
    >>> ok, len(reasons), reasons[0]
    (False, 3, 'the session is in state scheduled: discharge is only possible from recovery')
    """
    status = discharge_status(state, now=now)
    return status.allowed, status.reasons
