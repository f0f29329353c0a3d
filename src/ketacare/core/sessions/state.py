"""The derived session: what :func:`~ketacare.core.sessions.replay.replay` returns.

Nothing here is typed in by anyone: every field follows from the event log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ketacare.core.sessions.events import (
    AcknowledgeAlert,
    Amendment,
    Discharge,
    EndSession,
    Event,
    Medication,
    SideEffects,
    Stop,
    Vitals,
)
from ketacare.core.sessions.machine import State
from ketacare.core.sessions.news2 import News2Score, PartialNews2, partial_news2
from ketacare.core.sessions.rules import CheckItem, Threshold, observed_label
from ketacare.core.sessions.setup import SessionSetup


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of infusion at a constant rate; ``end`` None while it is running."""

    start: datetime
    end: datetime | None
    rate_mg_per_h: float


@dataclass(frozen=True, slots=True)
class DiscreteDose:
    """A dose given at one instant: an IV bolus or an observed self-administration."""

    seq: int
    at: datetime
    amount_mg: float
    route: str


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """The latest record of one pre-dose check item."""

    item: CheckItem
    ok: bool
    seq: int
    at: datetime
    by: str
    detail: str


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert raised by a vital crossing a threshold, or by NEWS2.

    ``id`` is ``"<seq>/<threshold id>"``: the vitals entry that opened it and
    the threshold crossed (stable when other entries are amended); a NEWS2
    alert has ``threshold`` None, ``news2`` set, ``value`` the aggregate and
    the id ``"<seq>/news2"``. Later breaches of the same threshold (or NEWS2
    triggers) while it is open are counted in ``breaches`` (with the latest
    value) instead of opening another alert. It closes only when
    acknowledged with an action.
    """

    id: str
    threshold: Threshold | None
    opened_at: datetime
    value: float
    breaches: int
    last_value: float
    last_breach_at: datetime
    acknowledgement: AcknowledgeAlert | None = None
    news2: News2Score | None = None

    @property
    def source(self) -> str:
        """What raised it: ``news2`` or the threshold's vital."""
        return "news2" if self.threshold is None else self.threshold.vital

    @property
    def is_open(self) -> bool:
        """True until acknowledged."""
        return self.acknowledgement is None

    def describe(self) -> str:
        """One line for the chair view and the summary."""
        if self.threshold is None:
            assert self.news2 is not None
            line = f"alert {self.id}: {self.news2.describe()} (RCP 2017 NEWS2, always on)"
            if self.breaches > 1:
                line += f" (triggered {self.breaches} times, latest NEWS2 {self.last_value:g})"
        else:
            unit = _unit(self.threshold)
            line = f"alert {self.id}: {self.threshold.describe()}: {self.value:g} {unit}".rstrip()
            if self.breaches > 1:
                line += (
                    f" (breached {self.breaches} times, latest {self.last_value:g} {unit}".rstrip()
                    + ")"
                )
        if self.acknowledgement is not None:
            ack = self.acknowledgement
            line += f"; acknowledged by {ack.by}: {ack.action}"
        return line


def _unit(threshold: Threshold) -> str:
    return observed_label(threshold.vital)[1]


@dataclass(frozen=True, slots=True)
class RecordedScore:
    """A discharge score as the instruments core scored it."""

    seq: int
    at: datetime
    by: str
    total: float | None
    band: str | None
    flags: tuple[str, ...]
    flag_messages: tuple[str, ...]
    meets_criterion: bool


@dataclass(frozen=True, slots=True)
class SessionState:
    """A session as derived from its event log.

    ``events`` is the log as stored (amendments included); ``effective`` is the
    history with amendments applied (what every other field is derived from).
    Quantities that depend on the time of asking (delivered dose, timers,
    schedule, discharge readiness) are functions taking ``at`` or ``now``.
    """

    setup: SessionSetup
    state: State
    last_seq: int
    events: tuple[Event, ...]
    effective: tuple[Event, ...]
    amendments: Mapping[int, Amendment]
    scheduled_at: datetime
    checked_in_at: datetime | None
    dosing_started_at: datetime | None
    dosing_ended_at: datetime | None
    finished_at: datetime | None
    rate_mg_per_h: float
    paused: bool
    segments: tuple[Segment, ...]
    discrete_doses: tuple[DiscreteDose, ...]
    checks: Mapping[CheckItem, CheckRecord]
    baseline: Vitals | None
    vitals: tuple[Vitals, ...]
    news2: tuple[News2Score, ...]
    """NEWS2 of every complete vitals set, in the order the vitals were taken."""
    side_effects: tuple[SideEffects, ...]
    medications: tuple[Medication, ...]
    alerts: tuple[Alert, ...]
    scores: tuple[RecordedScore, ...]
    escort_confirmed_at: datetime | None
    stop: Stop | None
    end: EndSession | None
    discharge: Discharge | None
    rate_above_plan: bool
    phase_started_at: datetime
    """When the session entered its current state (late observations may not predate it)."""
    latest_at: datetime
    """The latest time of any effective entry (dosing and state entries must follow it)."""

    @property
    def infusing(self) -> bool:
        """True while an infusion is running (started, not paused, not stopped)."""
        return bool(self.segments) and self.segments[-1].end is None

    @property
    def open_alerts(self) -> tuple[Alert, ...]:
        """Alerts not yet acknowledged."""
        return tuple(a for a in self.alerts if a.is_open)

    @property
    def last_vitals(self) -> Vitals | None:
        """The most recent vitals (by the time they were taken)."""
        return self.vitals[-1] if self.vitals else None

    @property
    def latest_news2(self) -> News2Score | None:
        """NEWS2 of the most recent complete vitals set (by the time it was taken)."""
        return self.news2[-1] if self.news2 else None

    @property
    def news2_partial(self) -> PartialNews2 | None:
        """The most recent vitals set when it is incomplete: no aggregate NEWS2 (the score
        shown stays the last complete set's), but any parameter scoring 3 on its own."""
        last = self.last_vitals
        return None if last is None else partial_news2(last, scale=self.setup.news2_spo2_scale)

    @property
    def missing_checks(self) -> tuple[CheckItem, ...]:
        """Required pre-dose checks not (or not successfully) recorded yet."""
        return tuple(
            item
            for item in self.setup.required_checks
            if not (
                (item == "baseline_vitals" and self.baseline is not None)
                or (item in self.checks and self.checks[item].ok)
            )
        )

    def latest(self) -> Event:
        """The newest entry of the log."""
        return self.events[-1]
