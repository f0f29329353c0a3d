"""The session as the chair, the board, the summary and the API show it: typed shapes.

Built from the replayed log by :func:`ketacare.clinic.sessions.view.view`; the API
answers a :class:`SessionView` as its JSON object, key for key. Typed dictionaries
rather than dataclasses or validated models: every vitals post builds and answers
one, and objects made building and serialising it about twice as slow (some 0.2 ms
of a 1.4 ms write with 20 vitals sets); no validation, so a value goes out exactly
as the log holds it (a vital entered as 190 stays 190).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict


class OpenAlert(TypedDict):
    """An alert not yet acknowledged at the chair."""

    id: str
    message: str
    opened_at: datetime
    value: float


class AlertLine(TypedDict):
    """An alert of the session, open or acknowledged (with the action taken, in words)."""

    id: str
    message: str
    open: bool
    opened_at: datetime
    action: str | None
    acknowledged_by: str | None


class NextCheck(TypedDict):
    """The next scheduled check: what, when, and whether it is due or overdue."""

    what: str
    due_at: datetime
    status: str


class TimersView(TypedDict):
    """The chair's clocks in seconds (None when the event has not happened)."""

    since_check_in: float | None
    since_dosing_start: float | None
    infusion_running: float
    paused_for: float | None
    since_dosing_end: float | None
    observation_left: float | None
    dosing_left: float | None


class DischargeView(TypedDict):
    """Whether the patient may leave, and if not, why and from when."""

    allowed: bool
    reasons: list[str]
    earliest_at: datetime | None
    notes: list[str]


class News2PartialView(TypedDict):
    """The newest vitals set when incomplete: parameters scoring 3 alone, and what it lacks."""

    seq: int
    at: datetime
    red: list[str]
    missing: list[str]


class News2View(TypedDict):
    """NEWS2 of one vitals entry (RCP 2017, always on); ``total`` None when not scored."""

    seq: int
    at: datetime
    total: int | None
    band: str | None
    band_label: str | None
    subscores: dict[str, int]
    flags: list[str]
    alerting: bool
    not_scored: str | None
    #: the SpO2 scale it was scored on: 2 only where the monitoring order prescribes it
    scale: int


class VitalCell(TypedDict):
    """One value of a vitals set: its change from baseline (percent) and whether it breached."""

    value: float
    pct: float | None
    breach: bool


class VitalsRow(TypedDict):
    """One vitals set of the table, each vital's cell (None when not measured)."""

    at: datetime
    seq: int
    baseline: bool
    cells: dict[str, VitalCell | None]


class VitalSignsItem(TypedDict):
    """The discharge score's vital-signs item as the record gives it."""

    score: int
    text: str
    changes: list[str]


class SessionView(TypedDict):
    """What the chair view and the API show of one session, all derived from its log."""

    id: int
    plan_id: int
    patient_id: int
    session_number: int
    state: str
    last_seq: int
    rate_mg_per_h: float | None
    paused: bool
    delivered_mg: float
    open_alerts: list[OpenAlert]
    next_check: NextCheck | None
    overdue: list[str]
    #: what is behind: each overdue check, and a standing continuous monitoring first
    behind: list[str]
    schedule_notes: list[str]
    timers: TimersView
    discharge: DischargeView
    news2: list[News2View]
    news2_latest: News2View | None
    news2_partial: News2PartialView | None
    alerts: list[AlertLine]
    alert_actions: list[str]
    order: list[str]
    vitals_table: list[VitalsRow]
    record_vital_signs: VitalSignsItem | None
    missing_checks: list[str]
    unset_policy: list[str]
    events: list[dict[str, Any]] | None
