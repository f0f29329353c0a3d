"""The accumulator a session's log is folded into, with the dosing guards.

:class:`Accumulator` holds what the events so far have made of the session (state,
infusion segments, doses, checks, observations, alerts), checks each event's time and
state transition, and guards dosing: pre-dose checks passed and alerts acknowledged,
the protocol's soft and hard limits, and the signed plan's session dose. What each kind
of event does is in :class:`~ketacare.core.sessions.builder.Builder`; the fold itself is
:func:`~ketacare.core.sessions.replay.replay`.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Self

from ketacare.core.errors import (
    DoseLimitExceeded,
    IllegalTransition,
    InvalidInput,
    SoftLimitNeedsReview,
)
from ketacare.core.sessions.events import (
    Amendment,
    Discharge,
    DischargeScore,
    EndSession,
    Event,
    LimitOverride,
    Medication,
    Scheduled,
    SideEffects,
    Stop,
    Vitals,
)
from ketacare.core.sessions.machine import State, transition
from ketacare.core.sessions.news2 import News2Score
from ketacare.core.sessions.rules import CheckItem
from ketacare.core.sessions.setup import SessionSetup
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


def taken(event: Event) -> tuple[datetime, int]:
    """Observations are listed by when they were taken (late entries slot in)."""
    return (event.at, event.seq)


def refuse(event: Event, state: State, message: str) -> IllegalTransition:
    """The refusal of ``event`` in ``state``, naming the entry."""
    return IllegalTransition(
        f"entry {event.seq} ({event.describe()}): {message}",
        state=state,
        move=event.kind,
        allowed=(),
    )


class Accumulator:
    """Mutable accumulator used only inside :func:`~ketacare.core.sessions.replay.replay`.

    :meth:`apply` calls the subclass's ``_on_<kind>`` handler for each event.
    """

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
    def resume(cls, state: SessionState) -> Self:
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
            raise refuse(
                event,
                self.state,
                f"pre-dose checks not passed: {', '.join(missing)}",
            )
        open_alerts = [a.id for a in self.alerts if a.is_open]
        if open_alerts:
            raise refuse(
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
