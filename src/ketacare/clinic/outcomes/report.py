"""The progress report for a referring physician or an insurer, typeset to PDF.

Diagnoses, medications and allergies, plans, sessions given with their doses, the
cumulative dose, the response status (when the clinic has set how a loss of response is
confirmed), every outcome measure as a table and a chart scaled to its dates, every safety
alert (questionnaire flags such as PHQ-9 item 9, session vital-sign alerts) with who
acknowledged it and what was done, and the adverse events of each session, all from the
record. Scores, sessions and the status line come from
:mod:`ketacare.clinic.outcomes.record`, as on the chart's outcome panel, so the two never
disagree. The template is ``outcomes/report_document.html``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.orm import User
from ketacare.clinic.assessments.orm import ClinicalAlert
from ketacare.clinic.audit import service as audit
from ketacare.clinic.documents import Document, Identity, Letterhead, render_pdf
from ketacare.clinic.documents.charts import Series, time_chart
from ketacare.clinic.outcomes.boosters import booster_status
from ketacare.clinic.outcomes.panel import measure_scale
from ketacare.clinic.outcomes.record import (
    MEASURE_BY_ID,
    SIDE_EFFECTS,
    OutcomeRecord,
)
from ketacare.clinic.patients.service import current_weight, get_patient
from ketacare.clinic.plans.orm import Plan
from ketacare.clinic.sessions.orm import DosingSession
from ketacare.clinic.sessions.service import state_of
from ketacare.core.errors import KetacareError
from ketacare.core.instruments import list_instruments
from ketacare.core.outcomes import BoosterRule

#: entries corrected as never true are left out of the report (they stay in the record)
NOT_SHOWN = "entered-in-error"


@dataclass(frozen=True, slots=True)
class SafetyAlert:
    """One safety alert as the report lists it."""

    raised_at: datetime
    source: str
    message: str
    open: bool
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    action: str | None


@dataclass(frozen=True, slots=True)
class MeasureView:
    """One outcome measure: its scores and their chart."""

    label: str
    scale: tuple[float, float]
    points: tuple[Any, ...]
    chart: Any


def progress_report(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    now: datetime,
    zone: ZoneInfo,
    loss_confirmations: int | None,
    letterhead: Letterhead,
    booster_rules: Sequence[BoosterRule] = (),
    patient_view: bool = False,
) -> bytes:
    """The report as PDF bytes (the read is audited).

    ``patient_view``: the patient downloads their own report, which lists only plans
    signed and later (a draft is never shown to the patient).

    ``booster_rules`` are the clinic's (:func:`ketacare.clinic.outcomes.policy.booster_rules`);
    the status says "booster accepted by <name> on <date>" as on the chart.
    """
    patient = get_patient(session=session, patient_id=patient_id)
    audit.read_patient(
        patient_id,
        session=session,
        actor=actor,
        at=now,
        resource_type="report",
        detail={"format": "pdf"},
        action="export",
    )
    record, status = booster_status(
        session=session,
        patient_id=patient_id,
        now=now,
        zone=zone,
        loss_confirmations=loss_confirmations,
        booster_rules=booster_rules,
    )
    alerts = safety_alerts(session=session, patient_id=patient_id)
    names = _names(session, [patient.responsible_clinician_id])
    values = {
        "weight": current_weight(patient),
        "responsible": names.get(patient.responsible_clinician_id),
        "conditions": [c for c in patient.conditions if c.status != NOT_SHOWN],
        "medications": [m for m in patient.medications if m.status != NOT_SHOWN],
        "allergies": [a for a in patient.allergies if a.status != NOT_SHOWN],
        "plans": _plans(session, patient_id, patient_view=patient_view),
        "given": record.given,
        "cumulative": _cumulative_lines(session=session, patient_id=patient_id, now=now),
        "status": status,
        "measures": _measures(record, zone),
        "alerts": alerts,
        "open_alerts": [a for a in alerts if a.open],
        "adverse": _adverse(session, patient_id),
    }
    return render_pdf(
        Document(
            template="outcomes/report_document.html",
            title="Progress report",
            letterhead=letterhead,
            patient=Identity.of(patient),
            zone=zone,
            generated_at=now,
            values=values,
        )
    )


def _names(session: Session, ids: Sequence[int | None]) -> dict[int | None, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    return {u.id: u.full_name for u in session.scalars(select(User).where(User.id.in_(wanted)))}


def _plans(session: Session, patient_id: int, *, patient_view: bool) -> list[dict[str, Any]]:
    from ketacare.core.protocols import load_library
    from ketacare.core.protocols.lifecycle import SHOWN_TO_PATIENT

    library = load_library()
    query = select(Plan).where(Plan.patient_id == patient_id)
    if patient_view:
        query = query.where(Plan.status.in_(SHOWN_TO_PATIENT))
    rows = list(session.scalars(query.order_by(Plan.id)))
    names = _names(session, [p.signed_by for p in rows] + [p.cosigned_by for p in rows])
    out = []
    for plan in rows:
        try:
            title = library.get(protocol_id=plan.protocol_id).title
        except KetacareError:
            title = plan.protocol_id  # a clinic's own protocol: its id
        signed = [
            f"{names.get(who, 'unknown')}"
            for who in (plan.signed_by, plan.cosigned_by)
            if who is not None
        ]
        out.append(
            {
                "plan": plan,
                "protocol": f"{title} ({plan.protocol_id})",
                "signed": ", ".join(signed),
            }
        )
    return out


def _measures(record: OutcomeRecord, zone: ZoneInfo) -> list[MeasureView]:
    marks = [g.started_at for g in record.given]
    out = []
    for measure_id, points in record.scores.items():
        if not points:
            continue
        measure = MEASURE_BY_ID[measure_id]
        scale = measure_scale(measure)
        chart = time_chart(
            series=[Series(measure.short, tuple((p.at, p.value) for p in points))],
            zone=zone,
            y_label=f"score ({scale[0]:g} to {scale[1]:g})",
            least_span=timedelta(days=2),
            y_range=scale,
            marks=marks,
            mark_label="session given",
            height=190,
        )
        out.append(MeasureView(measure.label, scale, points, chart))
    return out


def safety_alerts(*, session: Session, patient_id: int) -> list[SafetyAlert]:
    """Every safety alert of the patient, open and closed, oldest first.

    The clinical inbox holds the questionnaire flags (PHQ-9 item 9, C-SSRS risk, safety
    items left unanswered) and mirrors each session's vital-sign alerts; a session alert
    its log holds without a mirror (recorded before mirroring) is listed from the log.
    """
    rows = list(
        session.scalars(
            select(ClinicalAlert)
            .where(ClinicalAlert.patient_id == patient_id)
            .order_by(ClinicalAlert.raised_at, ClinicalAlert.id)
        )
    )
    names = _names(session, [r.acknowledged_by for r in rows])
    sources = {f.id: i.short_title for i in list_instruments() for f in i.flags}
    found = [
        SafetyAlert(
            raised_at=r.raised_at,
            source=f"Session {r.session_id}" if r.session_id else sources.get(r.kind, r.kind),
            message=r.message,
            open=r.acknowledged_at is None,
            acknowledged_by=None if r.acknowledged_by is None else names.get(r.acknowledged_by),
            acknowledged_at=r.acknowledged_at,
            action=r.action,
        )
        for r in rows
    ]
    mirrored = {(r.session_id, r.session_alert) for r in rows if r.session_id is not None}
    for row in session.scalars(select(DosingSession).where(DosingSession.patient_id == patient_id)):
        for alert in state_of(session=session, session_id=row.id).alerts:
            if (row.id, alert.id) in mirrored:
                continue
            ack = alert.acknowledgement
            found.append(
                SafetyAlert(
                    raised_at=alert.opened_at,
                    source=f"Session {row.id}",
                    message=alert.describe().split("; acknowledged by")[0],
                    open=ack is None,
                    acknowledged_by=None if ack is None else ack.by,
                    acknowledged_at=None if ack is None else ack.at,
                    action=None
                    if ack is None
                    else f"at the chair: {ack.action.replace('_', ' ')}"
                    + (f" ({ack.note})" if ack.note else ""),
                )
            )
    return sorted(found, key=lambda a: a.raised_at)


def _adverse(session: Session, patient_id: int) -> list[dict[str, Any]]:
    """Per session: side effects recorded present, rescue medications, an adverse stop."""
    out = []
    for row in session.scalars(
        select(DosingSession)
        .where(DosingSession.patient_id == patient_id)
        .order_by(DosingSession.id)
    ):
        state = state_of(session=session, session_id=row.id)
        for entry in state.side_effects:
            present = [k.replace("_", " ") for k in SIDE_EFFECTS if getattr(entry, k) is True]
            if present and entry.note:
                present.append(f"note: {entry.note}")
            if present:
                out.append({"session": row.id, "at": entry.at, "what": ", ".join(present)})
        for med in state.medications:
            if med.purpose != "premedication":
                out.append(
                    {
                        "session": row.id,
                        "at": med.at,
                        "what": f"{med.drug} {med.dose} {med.route} given ({med.purpose}"
                        + (f": {med.reason}" if med.reason else "")
                        + ")",
                    }
                )
        if state.stop is not None and state.stop.reason == "adverse_effect":
            out.append(
                {
                    "session": row.id,
                    "at": state.stop.at,
                    "what": "dosing stopped for an adverse effect"
                    + (f" ({state.stop.detail})" if state.stop.detail else ""),
                }
            )
    return sorted(out, key=lambda a: a["at"])


def _cumulative_lines(*, session: Session, patient_id: int, now: datetime) -> list[str]:
    """Per molecule: the last 30 days and the whole history, as on the chart's card."""
    from ketacare.clinic.sessions.doses import doses_given
    from ketacare.core.safeguards import cumulative, molecule_label

    found = cumulative(doses_given(session=session, patient_id=patient_id, now=now), at=now)
    lines = []
    for molecule in found.molecules:
        parts = [
            f"{'in all' if t.window_days is None else f'last {t.window_days:g} days'} "
            f"{t.mg:.1f} mg ({t.mg_per_kg:.2f} mg/kg, {t.sessions} session"
            f"{'s' if t.sessions != 1 else ''})"
            for t in found.totals_of(molecule)
            if t.window_days in (30, None)
        ]
        lines.append(f"{molecule_label(molecule)}: " + "; ".join(parts))
    return lines
