"""The progress report for a referring physician or an insurer, as PDF (matplotlib).

Diagnosis, plan, sessions given, measures over time as charts with the sessions marked,
response status (when the clinic has set how a loss of response is confirmed) and
adverse events (session alerts and side effects), all from the record.
"""

from __future__ import annotations

import io
from datetime import datetime
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from ketacare.clinic.assessments.orm import Assessment  # noqa: E402
from ketacare.clinic.audit import service as audit  # noqa: E402
from ketacare.clinic.patients.service import current_weight, get_patient  # noqa: E402
from ketacare.clinic.plans.orm import Plan  # noqa: E402
from ketacare.clinic.sessions.orm import DosingSession  # noqa: E402
from ketacare.clinic.sessions.service import state_of  # noqa: E402
from ketacare.core.outcomes import MeasureSeries, Sessions, patient_status  # noqa: E402
from ketacare.core.sessions import delivered_mg  # noqa: E402

MEASURES = {
    "nrs_pain": "Pain (NRS 0-10)",
    "phq9": "Depression (PHQ-9)",
    "gad7": "Anxiety (GAD-7)",
    "pgic": "Global impression of change (PGIC)",
}


def _given(session: Session, patient_id: int) -> list[tuple[datetime, float, str]]:
    out = []
    rows = session.scalars(
        select(DosingSession)
        .where(DosingSession.patient_id == patient_id)
        .order_by(DosingSession.id)
    )
    for row in rows:
        state = state_of(session=session, session_id=row.id)
        if state.dosing_started_at is not None:
            end = state.finished_at or state.dosing_ended_at or state.dosing_started_at
            out.append((state.dosing_started_at, delivered_mg(state, at=end), state.state))
    return out


def _adverse(session: Session, patient_id: int) -> list[str]:
    events = []
    rows = session.scalars(select(DosingSession).where(DosingSession.patient_id == patient_id))
    for row in rows:
        state = state_of(session=session, session_id=row.id)
        for alert in state.alerts:
            events.append(
                f"session {row.id}: {alert.threshold.vital} {alert.value:g} "
                f"(limit {alert.threshold.value:g})"
            )
        for s in state.side_effects:
            present = [
                k
                for k in ("nausea", "vomiting", "dizziness", "dissociation", "emergence_reaction")
                if getattr(s, k)
            ]
            if present:
                events.append(f"session {row.id}: " + ", ".join(present))
        if state.stop is not None and state.stop.reason == "adverse_effect":
            events.append(f"session {row.id}: stopped for an adverse effect ({state.stop.detail})")
    return events


def progress_report(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    now: datetime,
    zone: ZoneInfo,
    loss_confirmations: int | None,
) -> bytes:
    """The report as PDF bytes (the read is audited)."""
    patient = get_patient(session=session, patient_id=patient_id)
    audit.record(
        session=session,
        actor=actor,
        action="export",
        resource_type="report",
        resource_id=patient_id,
        patient_id=patient_id,
        at=now,
        detail={"format": "pdf"},
    )
    plans = list(
        session.scalars(select(Plan).where(Plan.patient_id == patient_id).order_by(Plan.id))
    )
    given = _given(session, patient_id)
    scores: dict[str, list[tuple[datetime, float]]] = {}
    for row in session.scalars(
        select(Assessment)
        .where(
            Assessment.patient_id == patient_id,
            Assessment.status == "final",
            Assessment.instrument_id.in_(tuple(MEASURES)),
        )
        .order_by(Assessment.completed_at)
    ):
        if row.total is not None:
            scores.setdefault(row.instrument_id, []).append((row.completed_at, row.total))
    local = lambda t: t.astimezone(zone).strftime("%Y-%m-%d")  # noqa: E731
    weight = current_weight(patient)
    lines = [
        "Progress report",
        "",
        f"Patient: {patient.family_name}, {patient.given_name}  (MRN {patient.mrn}, born "
        f"{patient.birth_date.isoformat()}, {patient.sex})",
        f"Weight: {weight.weight_kg:g} kg" if weight else "Weight: not recorded",
        f"Prepared {now.astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})",
        "",
        "Diagnoses:",
        *[f"  {c.icd10_code}  {c.display}" for c in patient.conditions if c.status == "active"],
        "",
        "Plans:",
        *[
            f"  plan {p.id} v{p.version}: {p.protocol_id}, {p.status}, planned total "
            f"{p.total_dose_mg:g} mg"
            for p in plans
        ],
        "",
        f"Sessions given: {len(given)}",
        *[f"  {local(t)}: {mg:.1f} mg ({state.replace('_', ' ')})" for t, mg, state in given],
        "",
        "Response status:",
    ]
    if loss_confirmations is None:
        lines.append(
            "  not computed: the clinic has not set how many scores confirm a loss "
            "of response (site policy)"
        )
    elif scores and given:
        status = patient_status(
            series=[
                MeasureSeries.build(
                    measure=m, time=[t.replace(tzinfo=None) for t, _ in v], value=[x for _, x in v]
                )
                for m, v in scores.items()
                if m in ("nrs_pain", "phq9")
            ],
            sessions=Sessions.build(
                time=[t.replace(tzinfo=None) for t, _, _ in given],
                dose_mg=[mg for _, mg, _ in given],
            ),
            loss_confirmations=loss_confirmations,
            booster_rules=[],
        )
        lines.append(f"  {status.text}")
    else:
        lines.append("  not enough data (scores and given sessions are needed)")
    adverse = _adverse(session, patient_id)
    lines += ["", "Adverse events and alerts:", *([f"  {a}" for a in adverse] or ["  none"])]
    buffer = io.BytesIO()
    with PdfPages(buffer) as pdf:
        fig = plt.figure(figsize=(8.27, 11.69))
        fig.text(0.07, 0.96, "\n".join(lines[:70]), va="top", family="monospace", fontsize=8)
        pdf.savefig(fig)
        plt.close(fig)
        if scores:
            fig, axes = plt.subplots(len(scores), 1, figsize=(8.27, 11.69), squeeze=False)
            for ax, (measure, points) in zip(axes[:, 0], scores.items(), strict=True):
                ax.plot([t.astimezone(zone) for t, _ in points], [x for _, x in points], marker="o")
                for t, _, _ in given:
                    ax.axvline(t.astimezone(zone), color="grey", alpha=0.4, linewidth=0.8)
                ax.set_title(f"{MEASURES[measure]} (grey lines: sessions given)", fontsize=9)
                ax.grid(alpha=0.3)
            fig.autofmt_xdate()
            fig.tight_layout()
            pdf.savefig(fig)
            plt.close(fig)
    return buffer.getvalue()
