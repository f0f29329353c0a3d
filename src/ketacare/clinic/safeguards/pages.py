"""Pages of safeguards: the cumulative dose of a patient, with its chart."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.plans import dosing
from ketacare.clinic.plans import service as plans
from ketacare.clinic.plans.orm import Plan
from ketacare.clinic.safeguards import schemas, service
from ketacare.clinic.safeguards.orm import TakeHomeDispense
from ketacare.clinic.safeguards.service import PatientDose
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.core.safeguards import DoseGiven, molecule_label, total
from ketacare.infra.errors import NotFound, status_for
from ketacare.web.deps import Ctx, DbSession, FormFields, Now, actor_of, page_permission
from ketacare.web.render import optional_float, optional_int, page

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


TAKE_HOME_FIELDS = (
    "plan_id",
    "form",
    "strength_mg",
    "units",
    "days_supply",
    "directions",
    "lot",
    "pdmp_checked",
    "reason",
)


def _page(
    request: Request,
    ctx: Ctx,
    session: Session,
    principal: Principal,
    patient_id: int,
    at: datetime,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    patient = get_patient(session=session, patient_id=patient_id)
    actor = actor_of(request, principal)
    found = service.cumulative_dose(
        session=session, actor=actor, settings=ctx.settings, patient_id=patient_id, now=at
    )
    supplies = [
        schemas.TakeHomeRead.of(r)
        for r in service.dispenses(session=session, actor=actor, patient_id=patient_id, now=at)
    ]
    library = dosing.library(ctx.settings)
    take_home_plans = [
        p
        for p in session.scalars(
            select(Plan)
            .where(Plan.patient_id == patient_id, Plan.status.in_(("signed", "active")))
            .order_by(Plan.id)
        )
        if (proto := library.get(protocol_id=p.protocol_id)).route in service.TAKE_HOME_ROUTES
        and proto.molecule != "esketamine"
    ]
    return page(
        request,
        ctx,
        "safeguards/cumulative.html",
        {
            "patient": patient,
            "dose": schemas.CumulativeDose.of(found),
            "chart": chart_points(found, ctx.settings.zone),
            "supplies": supplies,
            "take_home_policy": service.take_home_policy(ctx.settings),
            "take_home_plans": take_home_plans,
            "error": error,
            "form": form or {},
        },
        status_code=status_code,
    )


@router.get("/patients/{patient_id}/cumulative-dose", response_class=HTMLResponse)
def cumulative_dose_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    principal: Principal = page_permission("session:read"),
) -> Response:
    return _page(request, ctx, session, principal, patient_id, at)


@router.post("/patients/{patient_id}/take-home", response_class=HTMLResponse)
def dispense_page(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    principal: Principal = page_permission("takehome:dispense"),
) -> Response:
    """Dispense from the page; a refusal comes back with the reason and the form kept."""
    values = {k: str(form.get(k) or "").strip() for k in TAKE_HOME_FIELDS}
    try:
        plan_id = optional_int(values["plan_id"], "plan")
        strength = optional_float(values["strength_mg"], "strength (mg per unit)")
        units = optional_int(values["units"], "units")
        days = optional_int(values["days_supply"], "days' supply (whole days)")
        if plan_id is None or strength is None or units is None or days is None:
            raise InvalidInput("plan, strength, units and days' supply are all required")
        plan = plans.get_plan(session=session, plan_id=plan_id)
        if plan.patient_id != patient_id:
            raise InvalidInput(f"plan {plan_id} is not a plan of this patient")
        service.dispense(
            session=session,
            actor=actor_of(request, principal),
            settings=ctx.settings,
            plan_id=plan_id,
            form=values["form"],
            strength_mg=strength,
            units=units,
            days_supply=days,
            directions=values["directions"],
            lot=values["lot"],
            pdmp_checked=values["pdmp_checked"] == "yes",
            reason=values["reason"] or None,
            now=at,
        )
    except KetacareError as exc:
        session.rollback()
        status, _ = status_for(exc)
        return _page(
            request,
            ctx,
            session,
            principal,
            patient_id,
            at,
            error=str(exc),
            form=values,
            status_code=status,
        )
    return RedirectResponse(f"/patients/{patient_id}/cumulative-dose", status_code=303)


@router.post("/take-home/{dispense_id}/void", response_class=HTMLResponse)
def void_page(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    dispense_id: int,
    principal: Principal = page_permission("takehome:dispense"),
) -> Response:
    row = session.get(TakeHomeDispense, dispense_id)
    if row is None:
        raise NotFound(f"take-home supply {dispense_id} does not exist")
    try:
        service.void_dispense(
            session=session,
            actor=actor_of(request, principal),
            dispense_id=dispense_id,
            reason=str(form.get("reason") or ""),
            now=at,
        )
    except KetacareError as exc:
        session.rollback()
        status, _ = status_for(exc)
        return _page(
            request,
            ctx,
            session,
            principal,
            row.patient_id,
            at,
            error=str(exc),
            status_code=status,
        )
    return RedirectResponse(f"/patients/{row.patient_id}/cumulative-dose", status_code=303)
