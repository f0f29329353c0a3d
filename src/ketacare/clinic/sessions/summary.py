"""The printable session record: typeset from ``sessions/summary_document.html`` to PDF.

Everything on it follows from the session's log: the plan and monitoring order it ran
under, the pre-dose checks, every vitals set (limits crossed marked) and a chart of them,
medications given, side effects, every alert with its acknowledgement, each discharge
score item by item with its total, every entry of the log in clinical words, and the
discharge (when, by whom, to whom).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ketacare.clinic.documents import Document, Identity, Letterhead, render_pdf
from ketacare.clinic.documents.charts import Rule, Series, time_chart
from ketacare.clinic.plans.orm import Appointment
from ketacare.clinic.sessions.schemas import SessionView
from ketacare.clinic.sessions.words import FIELD_WORDS, STATE_WORDS, describe_entry
from ketacare.core.errors import KetacareError
from ketacare.core.instruments import get_instrument
from ketacare.core.sessions import DischargeScore, EscortConfirmed, SessionState
from ketacare.core.sessions.rules import observed_label
from ketacare.core.sessions.setup import DISCHARGE_INSTRUMENT

#: the vitals of the chart, with their short labels (the table has them all)
CHARTED = {"sbp_mmhg": "SBP", "dbp_mmhg": "DBP", "hr_per_min": "HR"}
TABLE_VITALS = (
    ("sbp_mmhg", "SBP", "mmHg"),
    ("dbp_mmhg", "DBP", "mmHg"),
    ("hr_per_min", "HR", "/min"),
    ("spo2_pct", "SpO2", "%"),
    ("rr_per_min", "RR", "/min"),
    ("temperature_c", "Temp", "°C"),
)


@dataclass(frozen=True, slots=True)
class ScoreItem:
    """One discharge-score item as answered."""

    label: str
    answer: str
    points: float | None


@dataclass(frozen=True, slots=True)
class DischargeScoreView:
    """One discharge score: each item, the total and what it means."""

    seq: int
    at: datetime
    by: str
    items: tuple[ScoreItem, ...]
    total: float | None
    maximum: float
    band: str
    flags: tuple[str, ...]
    reason: str


def booked_at(*, session: Session, row: Any) -> datetime | None:
    """When the session's appointment was booked to start (None when it was opened without
    one): the record says when it was booked as well as when it was opened."""
    if row.appointment_id is None:
        return None
    appointment = session.get(Appointment, row.appointment_id)
    return appointment.starts_at if appointment is not None else None


def summary_pdf(
    *,
    row: Any,
    state: SessionState,
    patient: Any,
    view: SessionView,
    zone: ZoneInfo,
    generated_at: datetime,
    letterhead: Letterhead,
    booked: datetime | None = None,
) -> bytes:
    """The session record as A4 PDF (letterhead, patient and page number on every page)."""
    return render_pdf(
        Document(
            template="sessions/summary_document.html",
            title="Dosing session record",
            letterhead=letterhead,
            patient=Identity.of(patient),
            zone=zone,
            generated_at=generated_at,
            values={
                **summary_values(row=row, state=state, view=view, zone=zone),
                "booked_at": booked,
            },
        )
    )


def summary_values(
    *, row: Any, state: SessionState, view: SessionView, zone: ZoneInfo
) -> dict[str, Any]:
    """What the template shows, all derived from the log."""
    setup = state.setup
    times = [e.at for e in state.events]
    local_days = {t.astimezone(zone).date() for t in times}
    alerts = _alerts(state, view)
    return {
        "row": row,
        "state": state,
        "setup": setup,
        "state_words": STATE_WORDS.get(state.state, state.state.replace("_", " ")),
        "treatment": _treatment(setup),
        "protocol": _protocol(setup.protocol_id),
        "delivered_mg": view["delivered_mg"],
        "delivered_mg_per_kg": view["delivered_mg"] / setup.weight_kg,
        "one_day": len(local_days) <= 1,
        "order": _order(setup),
        "news2_scale": f"SpO2 scale {setup.news2_spo2_scale}",
        "news2_scale_2": setup.news2_spo2_scale == 2,
        "not_configured": list(setup.unset()),
        "checks": _checks(state),
        "vitals_columns": TABLE_VITALS,
        "vitals_rows": _vitals_rows(state, view),
        "vitals_chart": _vitals_chart(state, zone),
        "medications": list(state.medications),
        "side_effects": [
            (e, describe_entry(e).removeprefix("side effects: ")) for e in state.side_effects
        ],
        "alerts": alerts,
        "open_alerts": [a for a in alerts if a["open"]],
        "scores": _scores(state),
        "log": [
            (e, describe_entry(e, state=state), e.seq in state.amendments) for e in state.events
        ],
        "escort": _escort(state),
        "discharge": view["discharge"],
        "stop_words": _stop(state),
    }


def _treatment(setup: Any) -> str:
    from ketacare.core.terminology.treatments import treatment_vocabulary

    vocabulary = treatment_vocabulary()
    try:
        return f"{vocabulary.molecule(setup.molecule).label}, {vocabulary.route(setup.route).label}"
    except KetacareError:
        return f"{setup.molecule}, {setup.route.replace('_', ' ')}"


def _protocol(protocol_id: str | None) -> str:
    """The protocol's title and id (a clinic's own protocol by its id)."""
    if protocol_id is None:
        return "not recorded"
    from ketacare.core.protocols import load_library

    try:
        return f"{load_library().get(protocol_id=protocol_id).title} ({protocol_id})"
    except KetacareError:
        return protocol_id


def _order(setup: Any) -> list[str]:
    """Every interval and limit in force for this session, with where it comes from."""
    settings = (
        setup.vitals_interval,
        setup.recovery_vitals_interval,
        setup.overdue_after,
        setup.observation,
        setup.discharge_score_min,
        setup.discharge_scores_required,
    )
    lines = [s.describe() for s in settings if s.is_set]
    lines += [t.describe() for t in setup.thresholds if t.value is not None]
    return [*lines, setup.news2_scale_line()]


def _checks(state: SessionState) -> list[dict[str, Any]]:
    rows = []
    for item in state.setup.required_checks:
        words = item.replace("_", " ")
        if item == "baseline_vitals":
            base = state.baseline
            rows.append(
                {
                    "item": words,
                    "ok": base is not None,
                    "detail": "" if base is None else describe_entry(base),
                    "by": "" if base is None else base.by,
                    "at": None if base is None else base.at,
                }
            )
            continue
        record = state.checks.get(item)
        rows.append(
            {
                "item": words,
                "ok": record is not None and record.ok,
                "detail": "" if record is None else record.detail,
                "by": "" if record is None else record.by,
                "at": None if record is None else record.at,
            }
        )
    return rows


def _vitals_rows(state: SessionState, view: SessionView) -> list[dict[str, Any]]:
    news2 = {n.seq: n for n in state.news2}
    by = {v.seq: v for v in state.vitals}
    rows = []
    for line in view["vitals_table"]:
        entry = by.get(line["seq"])
        score = news2.get(line["seq"])
        extra = []
        if entry is not None and entry.consciousness:
            extra.append(f"ACVPU {entry.consciousness}")
        if entry is not None and entry.supplemental_oxygen is not None:
            extra.append("on oxygen" if entry.supplemental_oxygen else "on air")
        rows.append(
            {
                **line,
                "by": entry.by if entry is not None else "",
                "news2": None if score is None else score.total,
                "extra": ", ".join(extra),
            }
        )
    return rows


def _vitals_chart(state: SessionState, zone: ZoneInfo) -> Any:
    series = [
        Series(
            label,
            tuple(
                (v.at, float(getattr(v, key))) for v in state.vitals if getattr(v, key) is not None
            ),
        )
        for key, label in CHARTED.items()
    ]
    rules = [
        Rule(t.value, f"{CHARTED[t.vital]} {'>' if t.direction == 'high' else '<'} {t.value:g}")
        for t in state.setup.thresholds
        if t.vital in CHARTED and t.value is not None and t.phase != "pre_dose"
    ]
    marks = [t for t in (state.dosing_started_at, state.dosing_ended_at) if t is not None]
    return time_chart(
        series=series,
        zone=zone,
        y_label="mmHg (BP), beats/min (HR)",
        least_span=timedelta(minutes=30),
        rules=rules,
        marks=marks,
        mark_label="dosing start / end",
    )


def _alerts(state: SessionState, view: SessionView) -> list[dict[str, Any]]:
    messages = {a["id"]: a["message"] for a in view["alerts"]}
    out = []
    for alert in state.alerts:
        unit = "" if alert.threshold is None else observed_label(alert.threshold.vital)[1]
        repeat = (
            f"crossed {alert.breaches} times; latest {alert.last_value:g} {unit}".rstrip()
            if alert.breaches > 1
            else ""
        )
        ack = alert.acknowledgement
        out.append(
            {
                "opened_at": alert.opened_at,
                "message": messages.get(alert.id, alert.describe()),
                "repeat": repeat,
                "last_at": alert.last_breach_at,
                "open": ack is None,
                "ack_by": None if ack is None else ack.by,
                "ack_at": None if ack is None else ack.at,
                "action": None if ack is None else FIELD_WORDS.get(ack.action, ack.action),
                "note": "" if ack is None else ack.note,
            }
        )
    return out


def _scores(state: SessionState) -> list[DischargeScoreView]:
    instrument = get_instrument(DISCHARGE_INSTRUMENT)
    recorded = {s.seq: s for s in state.scores}
    bands = {b.id: b.label for b in instrument.bands}
    maximum = float(
        sum(max(o.value for o in i.options) for i in instrument.items if i.scored and i.options)
    )
    out = []
    for event in state.effective:
        if not isinstance(event, DischargeScore):
            continue
        items = []
        for item in instrument.items:
            answer = event.answers.get(item.id)
            if item.kind == "boolean":
                text = "yes" if answer is True else "no" if answer is False else "not answered"
                items.append(
                    ScoreItem(item.label, text + ("" if item.scored else " (not scored)"), None)
                )
                continue
            chosen = next((o for o in item.options if o.value == answer), None)
            items.append(
                ScoreItem(
                    item.label,
                    chosen.label if chosen is not None else str(answer),
                    None if chosen is None else float(chosen.value),
                )
            )
        score = recorded.get(event.seq)
        total = None if score is None else score.total
        out.append(
            DischargeScoreView(
                seq=event.seq,
                at=event.at,
                by=event.by,
                items=tuple(items),
                total=None if total is None else float(total),
                maximum=maximum,
                band=""
                if score is None or score.band is None
                else bands.get(score.band, score.band),
                flags=() if score is None else tuple(score.flag_messages),
                reason=event.vital_signs_reason,
            )
        )
    return out


def _escort(state: SessionState) -> str:
    found = [e for e in state.effective if isinstance(e, EscortConfirmed)]
    if not found:
        return ""
    e = found[-1]
    who = ", ".join(x for x in (e.name, e.relation) if x)
    return f"{who or 'confirmed'} (confirmed by {e.by})"


def _stop(state: SessionState) -> str:
    if state.stop is None:
        return ""
    words = state.stop.reason.replace("_", " ")
    return words + (f" ({state.stop.detail})" if state.stop.detail else "")
