"""The session view: what the chair, the board, the summary and the API show, from the log.

Everything here is derived from the replayed state at ``now`` (the core's monitoring
schedule, timers, discharge rules and NEWS2); nothing is stored. Vitals and alerts
are named from the core's data (:func:`~ketacare.clinic.sessions.words.observed_name`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from ketacare.clinic.sessions.schemas import (
    AlertLine,
    DischargeView,
    News2PartialView,
    News2View,
    NextCheck,
    OpenAlert,
    SessionView,
    TimersView,
    VitalCell,
    VitalSignsItem,
    VitalsRow,
)
from ketacare.clinic.sessions.words import alert_text
from ketacare.core.sessions import (
    ALERT_ACTIONS,
    VITALS,
    SessionState,
    change_from_baseline,
    delivered_mg,
    discharge_status,
    event_to_dict,
    monitoring_schedule,
    record_vital_signs,
    timers,
)


class ViewedRow(Protocol):
    """What the view reads of a session row (a mapped row or the head a write answers)."""

    @property
    def id(self) -> int: ...

    @property
    def plan_id(self) -> int: ...

    @property
    def patient_id(self) -> int: ...

    @property
    def session_number(self) -> int: ...


def view(
    *, row: ViewedRow, state: SessionState, now: datetime, include_events: bool = True
) -> SessionView:
    """What the chair view and the API show, all derived from the log."""
    schedule = monitoring_schedule(state, now=now)
    clock = timers(state, now=now)
    discharge = discharge_status(state, now=now)
    setup = state.setup
    return SessionView(
        id=row.id,
        plan_id=row.plan_id,
        patient_id=row.patient_id,
        session_number=row.session_number,
        state=state.state,
        last_seq=state.last_seq,
        rate_mg_per_h=state.rate_mg_per_h,
        paused=state.paused,
        delivered_mg=round(delivered_mg(state, at=now), 3),
        open_alerts=[
            OpenAlert(id=a.id, message=alert_text(a), opened_at=a.opened_at, value=a.value)
            for a in state.open_alerts
        ],
        next_check=None
        if schedule.next is None
        else NextCheck(
            what=schedule.next.what, due_at=schedule.next.due_at, status=schedule.next.status
        ),
        overdue=[c.what for c in schedule.overdue],
        behind=[c.what if c.continuous else f"overdue: {c.what}" for c in schedule.behind],
        schedule_notes=list(schedule.notes),
        timers=TimersView(
            since_check_in=_seconds(clock.since_check_in),
            since_dosing_start=_seconds(clock.since_dosing_start),
            infusion_running=clock.infusion_running.total_seconds(),
            paused_for=_seconds(clock.paused_for),
            since_dosing_end=_seconds(clock.since_dosing_end),
            observation_left=_seconds(clock.observation_left),
            dosing_left=_seconds(clock.dosing_left),
        ),
        discharge=DischargeView(
            allowed=discharge.allowed,
            reasons=list(discharge.reasons),
            earliest_at=discharge.earliest_at,
            notes=list(discharge.notes),
        ),
        news2=[_news2(n) for n in state.news2],
        news2_latest=None if state.latest_news2 is None else _news2(state.latest_news2),
        news2_partial=_partial(state.news2_partial),
        alerts=[
            AlertLine(
                id=a.id,
                message=alert_text(a),
                open=a.is_open,
                opened_at=a.opened_at,
                action=None
                if a.acknowledgement is None
                else a.acknowledgement.action.replace("_", " "),
                acknowledged_by=None if a.acknowledgement is None else a.acknowledgement.by,
            )
            for a in state.alerts
        ],
        alert_actions=list(ALERT_ACTIONS),
        order=order_lines(setup),
        vitals_table=vitals_table(state),
        record_vital_signs=_vital_signs_item(state),
        missing_checks=list(state.missing_checks),
        unset_policy=list(setup.unset()) if setup is not None else [],
        events=[event_to_dict(e) for e in state.events] if include_events else None,
    )


def _seconds(span: timedelta | None) -> float | None:
    return None if span is None else span.total_seconds()


def _partial(p: Any) -> News2PartialView | None:
    if p is None:
        return None
    return News2PartialView(seq=p.seq, at=p.at, red=list(p.red), missing=list(p.missing))


def _news2(n: Any) -> News2View:
    """One NEWS2 result as the API and the pages show it (always-on RCP 2017 score)."""
    return News2View(
        seq=n.seq,
        at=n.at,
        total=n.total,
        band=n.band,
        band_label=n.band_label,
        subscores=dict(n.subscores),
        flags=list(n.flags),
        alerting=n.alerting,
        not_scored=n.not_scored,
        scale=n.scale,
    )


def order_lines(setup: Any) -> list[str]:
    """The monitoring order in force, one line per value with who set it and its origin."""
    lines = [
        s.describe()
        for s in (setup.vitals_interval, setup.recovery_vitals_interval, setup.observation)
        if s.basis == "order" or s.basis == "sourced"
    ]
    lines += [t.describe() for t in setup.thresholds if t.basis == "order"]
    return [*lines, setup.news2_scale_line()]


def vitals_table(state: SessionState) -> list[VitalsRow]:
    """Every vitals set with each value's change from the pre-session baseline (percent) and
    whether it crossed a threshold in force (the breach is highlighted in the table)."""
    base = state.baseline
    out = []
    for e in state.vitals:
        cells: dict[str, VitalCell | None] = {}
        for key in VITALS:
            value = getattr(e, key)
            if value is None:
                cells[key] = None
                continue
            ref = None if base is None else getattr(base, key)
            pct = None if ref in (None, 0) or e is base else change_from_baseline(ref, value)
            breach = any(
                t.vital == key
                and t.breached_by(value)
                and not (
                    t.phase == "pre_dose"
                    and state.dosing_started_at is not None
                    and e.at >= state.dosing_started_at
                )
                for t in state.setup.thresholds
            )
            cells[key] = VitalCell(value=value, pct=pct, breach=breach)
        out.append(VitalsRow(at=e.at, seq=e.seq, baseline=e is base, cells=cells))
    return out


def _vital_signs_item(state: SessionState) -> VitalSignsItem | None:
    record = record_vital_signs(state)
    if record is None:
        return None
    return VitalSignsItem(
        score=record.score,
        text=record.describe(),
        changes=[c.describe() for c in record.changes],
    )
