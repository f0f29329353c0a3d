"""The Personalise view of a plan: levels, the individual fit, recommendations, accept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.personalise import service
from ketacare.clinic.plans import service as plans
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.web.deps import (
    Ctx,
    DbSession,
    FormFields,
    Now,
    actor_of,
    ensure_patient_scope,
    page_permission,
)
from ketacare.web.render import optional_float, page

router = APIRouter(include_in_schema=False)


def _target(form: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]], float | None]:
    auc = optional_float(str(form.get("target_auc") or ""), "target AUC")
    conc = optional_float(str(form.get("target_concentration") or ""), "target concentration")
    if auc is None and conc is None:
        return None, [], None
    target = {"auc_ng_h_per_ml": auc} if auc is not None else {"concentration_ng_per_ml": conc}
    options: list[dict[str, Any]] = []
    duration = optional_float(str(form.get("iv_duration_h") or ""), "IV duration")
    if duration:
        options.append({"route": "iv_infusion", "duration_h": duration})
    interval = optional_float(str(form.get("interval_h") or ""), "interval")
    route = str(form.get("route") or "")
    if interval and route:
        options.append({"route": route, "interval_h": interval, "n_doses": 1})
    if not options:
        raise InvalidInput("give at least one option: an IV duration, or a route and interval")
    return target, options, optional_float(str(form.get("ceiling") or ""), "ceiling")


def _view(
    request: Request,
    ctx: Ctx,
    session: Session,
    principal: Principal,
    plan_id: int,
    at: datetime,
    form: Any | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    plan = plans.get_plan(session=session, plan_id=plan_id)
    ensure_patient_scope(principal, "plan:read", plan.patient_id)
    patient = get_patient(session=session, patient_id=plan.patient_id)
    result = None
    problem = None
    if error is None:
        try:
            target, options, ceiling = _target(form) if form is not None else (None, [], None)
            result = service.personalise(
                session=session,
                actor=actor_of(request, principal),
                settings=ctx.settings,
                plan_id=plan_id,
                now=at,
                target=target,
                options=options,
                ceiling=ceiling,
            )
        except KetacareError as exc:
            problem = str(exc)
    return page(
        request,
        ctx,
        "personalise/personalise.html",
        {
            "plan": plan,
            "patient": patient,
            "result": result,
            "problem": problem,
            "error": error,
            "levels": service.levels(session=session, plan=plan),
            "form": {k: str(v) for k, v in (form or {}).items()},
            "chart": None
            if result is None
            else {
                "time_h": result["prediction"]["time_h"],
                "map": result["prediction"]["plasma_ng_per_ml"],
                "band": result["prediction"]["plasma_band"],
                "typical": result["prediction"]["typical_plasma_ng_per_ml"],
                "samples": result["samples"],
            },
        },
        status_code=status_code,
    )


@router.get("/plans/{plan_id}/personalise", response_class=HTMLResponse)
def personalise_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    plan_id: int,
    principal: Principal = page_permission("plan:read"),
) -> Response:
    return _view(request, ctx, session, principal, plan_id, at)


@router.post("/plans/{plan_id}/personalise", response_class=HTMLResponse)
def recommend_page(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    plan_id: int,
    principal: Principal = page_permission("plan:write"),
) -> Response:
    return _view(request, ctx, session, principal, plan_id, at, form=form)


@router.post("/plans/{plan_id}/levels")
def add_level(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    plan_id: int,
    principal: Principal = page_permission("patient:write"),
) -> Response:
    try:
        raw = str(form.get("sampled_at") or "")
        try:
            local = datetime.fromisoformat(raw)
        except ValueError:
            raise InvalidInput(f"sample time {raw!r} is not a date and time") from None
        sampled = local if local.tzinfo else local.replace(tzinfo=ctx.settings.zone)
        blq = form.get("below_lloq") == "yes"
        service.add_level(
            session=session,
            actor=actor_of(request, principal),
            plan_id=plan_id,
            sampled_at=sampled,
            analyte=str(form.get("analyte") or "plasma"),
            value=None if blq else optional_float(str(form.get("value") or ""), "value"),
            lloq=optional_float(str(form.get("lloq") or ""), "LLOQ"),
            now=at,
        )
        if not blq and form.get("value") in (None, ""):
            raise InvalidInput("give the measured value, or tick 'below the LLOQ'")
    except KetacareError as exc:
        session.rollback()
        return _view(request, ctx, session, principal, plan_id, at, error=str(exc), status_code=422)
    return RedirectResponse(f"/plans/{plan_id}/personalise", status_code=303)


@router.post("/plans/{plan_id}/personalise/accept")
def accept_page(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    plan_id: int,
    principal: Principal = page_permission("plan:write"),
) -> Response:
    try:
        new = service.accept(
            session=session,
            actor=actor_of(request, principal),
            settings=ctx.settings,
            plan_id=plan_id,
            dose_mg=optional_float(str(form.get("dose_mg") or ""), "dose"),
            rate_mg_per_h=optional_float(str(form.get("rate_mg_per_h") or ""), "rate"),
            now=at,
        )
    except KetacareError as exc:
        session.rollback()
        return _view(request, ctx, session, principal, plan_id, at, error=str(exc), status_code=422)
    return RedirectResponse(f"/plans/{new.id}", status_code=303)
