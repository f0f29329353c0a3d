"""Pages of safeguards: the cumulative dose of a patient, with its chart."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.safeguards import schemas, service
from ketacare.clinic.safeguards.service import PatientDose
from ketacare.core.safeguards import DoseGiven, molecule_label, total
from ketacare.web.deps import Ctx, DbSession, Now, actor_of, page_permission
from ketacare.web.render import page

router = APIRouter(include_in_schema=False)


def chart_points(dose: PatientDose, zone: ZoneInfo) -> dict[str, Any]:
    """The page's chart: per molecule, the running total given (one step per session),
    and for each mg cap the total of its window ending at each session, with the cap."""
    doses = dose.cumulative.doses

    def point(d: DoseGiven, y: float, text: str) -> dict[str, Any]:
        local = d.at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        return {"x": int(d.at.timestamp() * 1000), "y": round(y, 3), "local": local, "text": text}

    series: list[dict[str, Any]] = []
    for m in dose.cumulative.molecules:
        running = 0.0
        points = []
        for d in doses:
            if d.molecule == m:
                running += d.mg
                points.append(point(d, running, f"session {d.session_id}: {running:.1f} mg in all"))
        series.append({"label": f"{molecule_label(m)}: running total (mg)", "points": points})
    for s in dose.caps:
        if s.measure != "mg":
            continue
        cap = s.cap
        points = [
            point(
                d,
                total(doses, molecule=cap.molecule, window_days=cap.window_days, at=d.at).mg,
                f"session {d.session_id}: {cap.window_text()}",
            )
            for d in doses
            if d.molecule == cap.molecule
        ]
        series.append(
            {
                "label": f"{molecule_label(cap.molecule)} {cap.window_text()} (mg)",
                "points": points,
                "limit": s.limit,
                "limit_label": f"clinic cap {s.limit:g} mg {cap.window_text()}",
            }
        )
    return {"zone": zone.key, "series": series}


@router.get("/patients/{patient_id}/cumulative-dose", response_class=HTMLResponse)
def cumulative_dose_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    principal: Principal = page_permission("session:read"),
) -> Response:
    patient = get_patient(session=session, patient_id=patient_id)
    found = service.cumulative_dose(
        session=session,
        actor=actor_of(request, principal),
        settings=ctx.settings,
        patient_id=patient_id,
        now=at,
    )
    return page(
        request,
        ctx,
        "safeguards/cumulative.html",
        {
            "patient": patient,
            "dose": schemas.CumulativeDose.of(found),
            "chart": chart_points(found, ctx.settings.zone),
        },
    )
