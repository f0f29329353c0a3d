"""The progress report for a referring physician or an insurer, as PDF (matplotlib).

Diagnosis, plan, sessions given, measures over time as charts with the sessions marked,
response status (when the clinic has set how a loss of response is confirmed) and
adverse events (session alerts and side effects), all from the record. Scores, sessions
and the status line come from :mod:`ketacare.clinic.outcomes.record`, as on the chart's
outcome panel, so the two never disagree.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from ketacare.clinic.audit import service as audit  # noqa: E402
from ketacare.clinic.outcomes.boosters import decision_rows, standing  # noqa: E402
from ketacare.clinic.outcomes.panel import measure_scale  # noqa: E402
from ketacare.clinic.outcomes.record import (  # noqa: E402
    MEASURE_BY_ID,
    gather,
    status_line,
)
from ketacare.clinic.patients.service import current_weight, get_patient  # noqa: E402
from ketacare.clinic.plans.orm import Plan  # noqa: E402
from ketacare.core.outcomes import BoosterRule  # noqa: E402


def progress_report(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    now: datetime,
    zone: ZoneInfo,
    loss_confirmations: int | None,
    booster_rules: Sequence[BoosterRule] = (),
) -> bytes:
    """The report as PDF bytes (the read is audited).

    ``booster_rules`` are the clinic's (:func:`ketacare.clinic.outcomes.policy.booster_rules`);
    the status says "booster accepted by <name> on <date>" as on the chart.
    """
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
    record = gather(session=session, patient_id=patient_id, now=now)
    given = record.given
    scores = {m: points for m, points in record.scores.items() if points}

    def local(t: datetime) -> str:
        return t.astimezone(zone).strftime("%Y-%m-%d")

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
        *(
            [f"  {c.icd10_code}  {c.display}" for c in patient.conditions if c.status == "active"]
            or ["  none recorded"]
        ),
        "",
        "Plans:",
        *[
            f"  plan {p.id} v{p.version}: {p.protocol_id}, {p.status}, planned total "
            f"{p.total_dose_mg:g} mg"
            for p in plans
        ],
        "",
        f"Sessions given: {len(given)}",
        *[
            f"  {local(g.started_at)}: {g.dose_mg:.1f} mg ({g.state.replace('_', ' ')})"
            + (" so far" if g.ongoing else "")
            for g in given
        ],
        "",
        "Cumulative dose (delivered, from the session logs):",
        *_cumulative_lines(session=session, patient_id=patient_id, now=now),
        "",
        "Response status:",
    ]
    status = status_line(
        record=record,
        loss_confirmations=loss_confirmations,
        booster_rules=booster_rules,
        zone=zone,
        decisions=standing(decision_rows(session=session, patient_id=patient_id)),
    )
    # one part per line (the same words as the chart's status line, joined there by "; ")
    lines += [
        *[f"  {part}" for part in status.parts or (status.text,)],
        *[
            line
            for note in status.notes
            for line in textwrap.wrap(
                f"({note})", 100, initial_indent="  ", subsequent_indent="   "
            )
        ],
    ]
    adverse = record.adverse
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
                ax.plot(
                    [p.at.astimezone(zone) for p in points],
                    [p.value for p in points],
                    marker="o",
                )
                for g in given:
                    ax.axvline(g.started_at.astimezone(zone), color="grey", alpha=0.4, lw=0.8)
                title = MEASURE_BY_ID[measure].label
                low, high = measure_scale(MEASURE_BY_ID[measure])
                ax.set_ylim(low - 0.02 * (high - low), high + 0.02 * (high - low))
                ax.set_title(f"{title} (grey lines: sessions given)", fontsize=9)
                ax.grid(alpha=0.3)
            fig.autofmt_xdate()
            fig.tight_layout()
            pdf.savefig(fig)
            plt.close(fig)
    return buffer.getvalue()


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
        lines.append(f"  {molecule_label(molecule)}: " + "; ".join(parts))
    return lines or ["  none given"]
