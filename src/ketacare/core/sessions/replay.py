"""Derive a session from its event log, and append to the log safely.

:func:`replay` folds the log through the state machine and the guards
(pre-dose checks complete, limits, alerts acknowledged, discharge rules) and
returns a :class:`~ketacare.core.sessions.state.SessionState`. :func:`append`
adds one event under optimistic concurrency: the writer says which entry it
last saw, a stale view is refused with :class:`StaleSession`, and an event the
session does not allow is refused with the log unchanged.

Time rules: dosing and state events must be entered in time order;
observations (vitals, side effects, discharge scores, other medications) may
be entered late, but not earlier than the start of the session's current state.

Examples
--------
>>> from datetime import datetime, timedelta, UTC
>>> from ketacare.core.protocols import load_library
>>> from ketacare.core.sessions.setup import session_setup
>>> from ketacare.core.sessions.events import CheckIn, Scheduled
>>> t0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
>>> setup = session_setup(protocol=load_library().get(protocol_id="crps-outpatient"),
...                       weight_kg=70)
>>> log = append((), Scheduled(at=t0, by="admin", setup=setup), expected_seq=0)
>>> log = append(log, CheckIn(at=t0 + timedelta(minutes=5), by="nurse1"), expected_seq=1)
>>> replay(log).state
'checked_in'
>>> try:
...     append(log, CheckIn(at=t0, by="nurse2"), expected_seq=1)
... except StaleSession as exc:
...     print(exc.expected_seq, exc.actual_seq, exc.latest)
1 2 check in by nurse1 at 2025-03-01T09:05:00+00:00
"""

from __future__ import annotations

import dataclasses
from bisect import insort
from collections.abc import Sequence
from datetime import datetime, timedelta

from ketacare.core.errors import DoseLimitExceeded, InvalidInput, SoftLimitNeedsReview
from ketacare.core.instruments import score
from ketacare.core.sessions.discharge import discharge_status, record_vital_signs
from ketacare.core.sessions.errors import IllegalTransition, StaleSession
from ketacare.core.sessions.events import (
    AcknowledgeAlert,
    Amendment,
    Bolus,
    CheckIn,
    Discharge,
    DischargeScore,
    EndSession,
    EscortConfirmed,
    Event,
    LimitOverride,
    Medication,
    Pause,
    PreDoseCheck,
    RateChange,
    Resume,
    Scheduled,
    SelfAdministration,
    SideEffects,
    StartInfusion,
    Stop,
    Vitals,
)
from ketacare.core.sessions.machine import State, transition
from ketacare.core.sessions.news2 import News2Score, news2_for
from ketacare.core.sessions.rules import CheckItem
from ketacare.core.sessions.setup import DISCHARGE_INSTRUMENT, SessionSetup
from ketacare.core.sessions.state import (
    Alert,
    CheckRecord,
    DiscreteDose,
    RecordedScore,
    Segment,
    SessionState,
)

#: Events that may be entered after the fact (back-dated within the current state).
OBSERVATIONS = (Vitals, SideEffects, DischargeScore, Medication)
_EPS = 1e-9


def _taken(event: Event) -> tuple[datetime, int]:
    """Observations are listed by when they were taken (late entries slot in)."""
    return (event.at, event.seq)


def _refuse(event: Event, state: State, message: str) -> IllegalTransition:
    return IllegalTransition(
        f"entry {event.seq} ({event.describe()}): {message}",
        state=state,
        move=event.kind,
        allowed=(),
    )


class _Builder:
    """Mutable accumulator used only inside :func:`replay`."""

    def __init__(self, scheduled: Scheduled) -> None:
        self.setup: SessionSetup = scheduled.setup
        self.scheduled_at = scheduled.at
        self.state: State = "scheduled"
        self.phase_start = scheduled.at
        self.latest_at = scheduled.at
        self.checked_in_at: datetime | None = None
        self.dosing_started_at: datetime | None = None
        self.dosing_ended_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.rate = 0.0
        self.paused = False
        self.segments: list[Segment] = []
        self.discrete: list[DiscreteDose] = []
        self.checks: dict[CheckItem, CheckRecord] = {}
        self.baseline: Vitals | None = None
        self.vitals: list[Vitals] = []
        self.news2: list[News2Score] = []
        self.side_effects: list[SideEffects] = []
        self.medications: list[Medication] = []
        self.alerts: list[Alert] = []
        self.scores: list[RecordedScore] = []
        self.escort_at: datetime | None = None
        self.stop: Stop | None = None
        self.end: EndSession | None = None
        self.discharge: Discharge | None = None
        self.above_plan = False
        self.effective: list[Event] = []

    # ------------------------------------------------------------------ frame

    def apply(self, event: Event) -> None:
        self._check_time(event)
        try:
            new_state = transition(self.state, event.kind)
        except IllegalTransition as exc:
            raise IllegalTransition(
                f"entry {event.seq} ({event.describe()}): {exc.message}",
                state=exc.state,
                move=exc.move,
                allowed=exc.allowed,
            ) from None
        handler = getattr(self, f"_on_{event.kind}")
        handler(event)
        self.effective.append(event)
        self.latest_at = max(self.latest_at, event.at)
        if new_state != self.state:
            self.phase_start = event.at
        self.state = new_state

    def _check_time(self, event: Event) -> None:
        if isinstance(event, OBSERVATIONS):
            if event.at < self.phase_start:
                raise InvalidInput(
                    f"entry {event.seq} ({event.describe()}): a late entry may not be dated "
                    f"before the session entered state {self.state} "
                    f"({self.phase_start.isoformat()})"
                )
        elif event.at < self.latest_at:
            raise InvalidInput(
                f"entry {event.seq} ({event.describe()}): is dated before the previous entry "
                f"({self.latest_at.isoformat()}); dosing and state entries must be in time order"
            )

    def freeze(self, log: tuple[Event, ...], amendments: dict[int, Amendment]) -> SessionState:
        return SessionState(
            setup=self.setup,
            state=self.state,
            last_seq=log[-1].seq,
            events=log,
            effective=tuple(self.effective),
            amendments=dict(amendments),
            scheduled_at=self.scheduled_at,
            checked_in_at=self.checked_in_at,
            dosing_started_at=self.dosing_started_at,
            dosing_ended_at=self.dosing_ended_at,
            finished_at=self.finished_at,
            rate_mg_per_h=self.rate,
            paused=self.paused,
            segments=tuple(self.segments),
            discrete_doses=tuple(self.discrete),
            checks=dict(self.checks),
            baseline=self.baseline,
            vitals=tuple(self.vitals),
            side_effects=tuple(self.side_effects),
            medications=tuple(self.medications),
            news2=tuple(self.news2),
            alerts=tuple(self.alerts),
            scores=tuple(self.scores),
            escort_confirmed_at=self.escort_at,
            stop=self.stop,
            end=self.end,
            discharge=self.discharge,
            rate_above_plan=self.above_plan,
            phase_started_at=self.phase_start,
            latest_at=self.latest_at,
        )

    @classmethod
    def resume(cls, state: SessionState) -> _Builder:
        """A builder positioned where ``state`` left off (its containers copied)."""
        first = state.events[0]
        assert isinstance(first, Scheduled)
        b = cls(first)
        b.state = state.state
        b.phase_start = state.phase_started_at
        b.latest_at = state.latest_at
        b.checked_in_at = state.checked_in_at
        b.dosing_started_at = state.dosing_started_at
        b.dosing_ended_at = state.dosing_ended_at
        b.finished_at = state.finished_at
        b.rate = state.rate_mg_per_h
        b.paused = state.paused
        b.segments = list(state.segments)
        b.discrete = list(state.discrete_doses)
        b.checks = dict(state.checks)
        b.baseline = state.baseline
        b.vitals = list(state.vitals)
        b.side_effects = list(state.side_effects)
        b.medications = list(state.medications)
        b.alerts = list(state.alerts)
        b.news2 = list(state.news2)
        b.scores = list(state.scores)
        b.escort_at = state.escort_confirmed_at
        b.stop = state.stop
        b.end = state.end
        b.discharge = state.discharge
        b.above_plan = state.rate_above_plan
        b.effective = list(state.effective)
        return b

    # ------------------------------------------------------------------ guards

    def _ready_to_dose(self, event: Event) -> None:
        missing = [
            item
            for item in self.setup.required_checks
            if not (
                (item == "baseline_vitals" and self.baseline is not None)
                or (item in self.checks and self.checks[item].ok)
            )
        ]
        if missing:
            raise _refuse(
                event,
                self.state,
                f"pre-dose checks not passed: {', '.join(missing)}",
            )
        open_alerts = [a.id for a in self.alerts if a.is_open]
        if open_alerts:
            raise _refuse(
                event,
                self.state,
                f"open alerts must be acknowledged before dosing: {', '.join(open_alerts)}",
            )

    def _check_limits(
        self, event: Event, *, keys: tuple[str, str], amount: float, override: LimitOverride | None
    ) -> None:
        weight = self.setup.weight_kg
        pid = self.setup.protocol_id or "(no protocol)"
        ordered = sorted(self.setup.limits, key=lambda lim: lim.level != "hard")
        for lim in ordered:
            if lim.key not in keys or lim.value is None:
                continue
            value = amount / weight if "per_kg" in lim.key else amount
            if value <= lim.value * (1 + _EPS):
                continue
            where = f"sourced: {lim.source}" if lim.basis == "sourced" else "site policy"
            shown = f"{value:.4g} {lim.unit}"
            if lim.level == "hard":
                raise DoseLimitExceeded(
                    f"entry {event.seq} ({event.describe()}): {shown} exceeds the hard limit "
                    f"{lim.value:g} {lim.unit} of protocol {pid} ({where})"
                )
            if override is None:
                raise SoftLimitNeedsReview(
                    f"entry {event.seq} ({event.describe()}): {shown} is above the soft limit "
                    f"{lim.value:g} {lim.unit} of protocol {pid} ({where}): give a reason and a "
                    "second clinician's co-signature"
                )
            if override.cosigned_by.strip() == event.by.strip():
                raise SoftLimitNeedsReview(
                    f"entry {event.seq} ({event.describe()}): the co-signature must come from a "
                    "second clinician, not the person recording the change"
                )

    def _delivered(self, at: datetime) -> float:
        total = sum(d.amount_mg for d in self.discrete if d.at <= at)
        for seg in self.segments:
            end = at if seg.end is None else min(seg.end, at)
            if end > seg.start:
                total += seg.rate_mg_per_h * (end - seg.start) / timedelta(hours=1)
        return total

    def _close_segment(self, at: datetime) -> None:
        if self.segments and self.segments[-1].end is None:
            self.segments[-1] = dataclasses.replace(self.segments[-1], end=at)

    def _infused_h(self, at: datetime) -> float:
        """Hours the infusion has run by ``at`` (pauses do not count)."""
        seconds = 0.0
        for seg in self.segments:
            end = at if seg.end is None else min(seg.end, at)
            if end > seg.start:
                seconds += (end - seg.start) / timedelta(seconds=1)
        return seconds / 3600

    def _by_planned_end(self, at: datetime, rate: float | None) -> float:
        """The session's dose if ``rate`` runs on for the rest of the planned infusion time.

        The rest is the planned duration less the time already infused (pauses do
        not count); without a rate or a planned duration nothing more is projected.
        """
        delivered = self._delivered(at)
        duration = self.setup.planned_duration_min
        if rate is None or duration is None:
            return delivered
        return delivered + rate * max(0.0, duration / 60 - self._infused_h(at))

    def _check_planned_dose(self, event: Event, total: float, what: str) -> None:
        """Refuse an entry that takes the session above the signed plan's session dose.

        No override applies: a larger dose is a new version of the plan, signed by a
        physician (and held to the protocol's hard ceilings there), not a chair entry.
        """
        planned = self.setup.planned_dose_mg
        if planned is None or total <= planned * (1 + _EPS) + _EPS:
            return
        raise DoseLimitExceeded(
            f"entry {event.seq} ({event.describe()}): {what} would be {total:.4g} mg, above "
            f"this session's planned dose of {planned:g} mg: a larger dose needs a new version "
            "of the plan, signed by a physician"
        )

    def _set_rate(self, event: Event, rate: float, override: LimitOverride | None) -> None:
        self._check_limits(
            event, keys=("rate_mg_per_h", "rate_mg_per_kg_per_h"), amount=rate, override=override
        )
        planned_rate = self.setup.planned_rate_mg_per_h
        if planned_rate is not None and rate > planned_rate * (1 + _EPS):
            # the plan's own rate is never refused here (its dose is rounded on its own);
            # a faster one must still end within the plan's session dose
            self._check_planned_dose(
                event, self._by_planned_end(event.at, rate), "the dose by the planned end"
            )
        planned = self.setup.planned_rate_mg_per_h
        self.above_plan = planned is not None and rate > planned * (1 + _EPS)
        self.rate = rate

    def _discrete(self, event: Event, amount: float, route: str, ov: LimitOverride | None) -> None:
        total = self._delivered(event.at) + amount
        self._check_limits(event, keys=("dose_mg", "dose_mg_per_kg"), amount=total, override=ov)
        running = self.rate if self.segments and self.stop is None else None
        # a bolus into a running (or paused) infusion adds to what the infusion will give
        projected = self._by_planned_end(event.at, running) + amount
        self._check_planned_dose(event, projected, "the session's dose")
        self.discrete.append(DiscreteDose(event.seq, event.at, amount, route))
        if self.dosing_started_at is None:
            self.dosing_started_at = event.at

    # ------------------------------------------------------------------ handlers

    def _on_check_in(self, event: CheckIn) -> None:
        self.checked_in_at = event.at

    def _on_pre_dose_check(self, event: PreDoseCheck) -> None:
        self.checks[event.item] = CheckRecord(
            event.item, event.ok, event.seq, event.at, event.by, event.detail
        )

    def _on_vitals(self, event: Vitals) -> None:
        if self.dosing_started_at is None and event.is_complete_baseline:
            self.baseline = event
        insort(self.vitals, event, key=_taken)
        self._check_thresholds(event, {str(k): v for k, v in event.values().items()})
        self._news2(event)

    def _check_thresholds(self, event: Event, values: dict[str, float]) -> None:
        """Open an alert (or count a repeat breach) for every threshold ``values`` cross."""
        for threshold in self.setup.thresholds:
            if threshold.phase == "pre_dose" and self.dosing_started_at is not None:
                continue
            value = values.get(threshold.vital)
            if value is None or not threshold.breached_by(value):
                continue
            for i, alert in enumerate(self.alerts):
                if (
                    alert.is_open
                    and alert.threshold is not None
                    and alert.threshold.id == threshold.id
                ):
                    self.alerts[i] = dataclasses.replace(
                        alert,
                        breaches=alert.breaches + 1,
                        last_value=value,
                        last_breach_at=max(alert.last_breach_at, event.at),
                    )
                    break
            else:
                self.alerts.append(
                    Alert(
                        id=f"{event.seq}/{threshold.id}",
                        threshold=threshold,
                        opened_at=event.at,
                        value=value,
                        breaches=1,
                        last_value=value,
                        last_breach_at=event.at,
                    )
                )

    def _news2(self, event: Vitals) -> None:
        """NEWS2 of a complete set; an urgent result alerts whatever the clinic's policy."""
        result = news2_for(event)
        if result is None:
            return
        insort(self.news2, result, key=lambda n: (n.at, n.seq))
        if not result.alerting or result.total is None:
            return
        total = float(result.total)
        for i, alert in enumerate(self.alerts):
            if alert.is_open and alert.threshold is None:
                self.alerts[i] = dataclasses.replace(
                    alert,
                    breaches=alert.breaches + 1,
                    last_value=total,
                    last_breach_at=max(alert.last_breach_at, event.at),
                )
                return
        self.alerts.append(
            Alert(
                id=f"{event.seq}/news2",
                threshold=None,
                opened_at=event.at,
                value=total,
                breaches=1,
                last_value=total,
                last_breach_at=event.at,
                news2=result,
            )
        )

    def _on_side_effects(self, event: SideEffects) -> None:
        insort(self.side_effects, event, key=_taken)
        if event.sedation_moaas is not None:
            self._check_thresholds(event, {"sedation_moaas": float(event.sedation_moaas)})

    def _on_medication(self, event: Medication) -> None:
        insort(self.medications, event, key=_taken)

    def _on_start_infusion(self, event: StartInfusion) -> None:
        if not self.setup.is_infusion:
            raise _refuse(
                event,
                self.state,
                f"this session's route is {self.setup.route}: record self-administration",
            )
        self._ready_to_dose(event)
        self._set_rate(event, event.rate_mg_per_h, event.override)
        self.segments.append(Segment(event.at, None, event.rate_mg_per_h))
        self.dosing_started_at = event.at

    def _on_self_administration(self, event: SelfAdministration) -> None:
        if self.setup.is_infusion:
            raise _refuse(event, self.state, "this session is an infusion: start the infusion")
        if self.state == "pre_dose_checks":
            self._ready_to_dose(event)
        device = self.setup.device_mg
        if event.devices is not None:
            if device is None:
                raise _refuse(event, self.state, "this session has no device size: give amount_mg")
            amount = event.devices * device
        else:
            assert event.amount_mg is not None
            if device is not None:
                raise _refuse(
                    event,
                    self.state,
                    f"this session uses {device:g} mg devices: give the number of devices",
                )
            amount = event.amount_mg
        self._discrete(event, amount, self.setup.route, None)

    def _on_rate_change(self, event: RateChange) -> None:
        if not self.setup.is_infusion or not (self.segments or self.paused):
            raise _refuse(event, self.state, "no infusion is running")
        self._set_rate(event, event.rate_mg_per_h, event.override)
        if not self.paused:
            self._close_segment(event.at)
            self.segments.append(Segment(event.at, None, event.rate_mg_per_h))

    def _on_pause(self, event: Pause) -> None:
        if not (self.segments and self.segments[-1].end is None):
            raise _refuse(event, self.state, "no infusion is running to pause")
        self._close_segment(event.at)
        self.paused = True

    def _on_resume(self, event: Resume) -> None:
        if not self.paused:
            raise _refuse(event, self.state, "the infusion is not paused")
        self.paused = False
        self.segments.append(Segment(event.at, None, self.rate))

    def _on_bolus(self, event: Bolus) -> None:
        if not self.setup.is_infusion:
            raise _refuse(event, self.state, "a bolus needs an IV line (an infusion session)")
        self._discrete(event, event.amount_mg, "iv_bolus", event.override)

    def _on_stop(self, event: Stop) -> None:
        self._close_segment(event.at)
        self.paused = False
        self.dosing_ended_at = event.at
        self.stop = event

    def _on_acknowledge_alert(self, event: AcknowledgeAlert) -> None:
        for i, alert in enumerate(self.alerts):
            if alert.id == event.alert_id:
                if not alert.is_open:
                    raise _refuse(event, self.state, f"alert {alert.id} is already acknowledged")
                self.alerts[i] = dataclasses.replace(alert, acknowledgement=event)
                return
        known = ", ".join(a.id for a in self.alerts if a.is_open) or "none"
        raise _refuse(event, self.state, f"no alert {event.alert_id} (open alerts: {known})")

    def _on_discharge_score(self, event: DischargeScore) -> None:
        record = record_vital_signs(self.freeze((event,), {}))
        given = event.answers.get("vital_signs")
        if record is None:
            raise _refuse(
                event,
                self.state,
                "the vital signs item cannot be checked against the record: no baseline "
                "blood pressure or heart rate was recorded",
            )
        if (
            isinstance(given, int | float)
            and given > record.score
            and not (event.vital_signs_reason.strip())
        ):
            raise _refuse(
                event,
                self.state,
                f"vital signs scored {given:g} but the {record.describe()}: score it "
                f"{record.score} or give the reason for scoring it better",
            )
        result = score(DISCHARGE_INSTRUMENT, dict(event.answers))
        minimum = self.setup.discharge_score_min.value
        messages = tuple(str(d.get("message") or "") for d in result.flag_details)
        meets = result.total is not None and minimum is not None and result.total >= minimum
        self.scores.append(
            RecordedScore(
                event.seq,
                event.at,
                event.by,
                result.total,
                result.band,
                result.flags,
                messages,
                meets,
            )
        )
        self.scores.sort(key=lambda s: (s.at, s.seq))

    def _on_escort_confirmed(self, event: EscortConfirmed) -> None:
        self.escort_at = event.at

    def _on_discharge(self, event: Discharge) -> None:
        status = discharge_status(self.freeze((event,), {}), now=event.at)
        if not status.allowed:
            raise _refuse(event, self.state, "discharge not allowed: " + "; ".join(status.reasons))
        self.finished_at = event.at
        self.discharge = event

    def _on_end_session(self, event: EndSession) -> None:
        if self.state == "dosing":
            self._close_segment(event.at)
            self.paused = False
            self.dosing_ended_at = event.at
        self.finished_at = event.at
        self.end = event

    def _on_amendment(self, event: Amendment) -> None:  # pragma: no cover - never effective
        raise AssertionError("amendments are resolved before replay")


def _effective(log: tuple[Event, ...]) -> tuple[list[Event], dict[int, Amendment]]:
    by_seq = {e.seq: e for e in log}
    amendments: dict[int, Amendment] = {}
    for event in log:
        if not isinstance(event, Amendment):
            continue
        target = by_seq.get(event.target_seq)
        where = f"entry {event.seq} ({event.describe()})"
        if target is None or event.target_seq >= event.seq:
            raise InvalidInput(f"{where}: amends entry {event.target_seq}, which does not exist")
        if isinstance(target, Scheduled | Amendment):
            raise InvalidInput(
                f"{where}: entry {target.seq} is a {target.kind}, which cannot be amended"
            )
        if event.replacement is not None and type(event.replacement) is not type(target):
            raise InvalidInput(
                f"{where}: the replacement is a {event.replacement.kind} but entry "
                f"{target.seq} is a {target.kind}; an amendment keeps the kind"
            )
        amendments[event.target_seq] = event
    effective: list[Event] = []
    for event in log[1:]:
        if isinstance(event, Amendment):
            continue
        amendment = amendments.get(event.seq)
        if amendment is None:
            effective.append(event)
        elif amendment.replacement is not None:
            effective.append(dataclasses.replace(amendment.replacement, seq=event.seq))
    return effective, amendments


def replay(events: Sequence[Event]) -> SessionState:
    """Derive the session from its log (the first event must be :class:`Scheduled`).

    Raises
    ------
    IllegalTransition
        An event the state machine or a guard does not allow (naming the entry).
    InvalidInput
        A malformed log: numbering not 1, 2, 3, ..., entries out of time order,
        an amendment of a missing entry or with a replacement of another kind.
    DoseLimitExceeded, SoftLimitNeedsReview
        A rate or dose above a limit (soft: without reason and co-signature).

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> replay([CheckIn(at=datetime(2025, 1, 1, tzinfo=UTC), by="n", seq=1)])
    Traceback (most recent call last):
    ...
    ketacare.core.errors.InvalidInput: a session log starts with its Scheduled entry
    """
    log = tuple(events)
    if not log or not isinstance(log[0], Scheduled):
        raise InvalidInput("a session log starts with its Scheduled entry")
    for i, event in enumerate(log, start=1):
        if event.seq != i:
            raise InvalidInput(f"entry {i} of the session log is numbered {event.seq}")
        if i > 1 and isinstance(event, Scheduled):
            raise InvalidInput(f"entry {i}: a session is scheduled only once")
    effective, amendments = _effective(log)
    builder = _Builder(log[0])
    for event in effective:
        builder.apply(event)
    return builder.freeze(log, amendments)


def append(events: Sequence[Event], new: Event, *, expected_seq: int) -> tuple[Event, ...]:
    """The log with ``new`` appended, if the writer's view is current and the event is allowed.

    ``expected_seq`` is the number of the latest entry the writer saw (0 for a
    new session). ``new`` is numbered here. Nothing is changed on refusal: the
    caller stores the returned log only when no error is raised.

    Raises
    ------
    StaleSession
        ``expected_seq`` is not the latest entry: someone else wrote first.
    IllegalTransition, InvalidInput, DoseLimitExceeded, SoftLimitNeedsReview
        As :func:`replay`, for the log with the new event.
    """
    log = tuple(events)
    out = log + (_stamp(log, new, expected_seq),)
    replay(out)
    return out


def _stamp(log: tuple[Event, ...], new: Event, expected_seq: int) -> Event:
    actual = log[-1].seq if log else 0
    if expected_seq != actual:
        latest = log[-1].describe() if log else "no entries"
        raise StaleSession(expected_seq=expected_seq, actual_seq=actual, latest=latest)
    _new_entry_rules(new)
    stamped = dataclasses.replace(new, seq=actual + 1)
    if isinstance(stamped, Amendment) and stamped.replacement is not None:
        stamped = dataclasses.replace(
            stamped, replacement=dataclasses.replace(stamped.replacement, seq=stamped.target_seq)
        )
    return stamped


def _new_entry_rules(new: Event) -> None:
    """Rules for entries written from now on (stored entries replay as they were written).

    A rate change says why: the reason is part of the record of the dose.
    """
    entry = new.replacement if isinstance(new, Amendment) else new
    if isinstance(entry, RateChange) and not entry.reason.strip():
        raise InvalidInput(
            "rate change: the reason is required (say why the rate changes, e.g. nausea, "
            "blood pressure, the patient's request)"
        )


def advance(state: SessionState, new: Event, *, expected_seq: int) -> SessionState:
    """The state after appending ``new``: what :func:`replay` of the longer log gives.

    Why: a busy chair writes every few minutes for hours, and replaying the whole
    log on each write makes every write slower than the last. A plain entry only
    moves the state forward, so it is applied to ``state`` alone; an amendment can
    change any earlier entry's effect, so the whole log is replayed for it.
    ``tests/core/sessions`` checks that both ways agree on every prefix of the
    session logs the tests build.

    Raises
    ------
    StaleSession, IllegalTransition, InvalidInput, DoseLimitExceeded, SoftLimitNeedsReview
        As :func:`append`; ``state`` is never changed (it is frozen).
    """
    stamped = _stamp(state.events, new, expected_seq)
    log = state.events + (stamped,)
    if isinstance(stamped, Amendment | Scheduled):
        return replay(log)
    builder = _Builder.resume(state)
    builder.apply(stamped)
    return builder.freeze(log, dict(state.amendments))
