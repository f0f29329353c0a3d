"""Pages of plans: the builder, the plan with its exposure preview, sign-off, calendar."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.orm import User
from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.patients.service import current_weight, get_patient
from ketacare.clinic.plans import booking, dosing, gates, service, therapy
from ketacare.clinic.plans import exposure as exposures
from ketacare.clinic.plans.orm import Adjunct, Appointment, TherapySession
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.core.sessions import MonitoringOrder
from ketacare.core.sessions.orders import FIELDS as ORDER_FIELDS
from ketacare.web.deps import (
    Ctx,
    DbSession,
    FormFields,
    Now,
    actor_of,
    ensure_patient_scope,
    page_permission,
)
from ketacare.web.render import optional_float, optional_int, page

router = APIRouter(include_in_schema=False)


def _date(text: str, what: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date: use YYYY-MM-DD") from None


def _options(form: Any) -> dosing.DoseOptions:
    return dosing.DoseOptions(
        bag_mg=optional_float(str(form.get("bag_mg") or ""), "bag_mg"),
        bag_ml=optional_float(str(form.get("bag_ml") or ""), "bag_ml"),
        dose_mg_per_kg_per_h=optional_float(
            str(form.get("dose_mg_per_kg_per_h") or ""), "dose_mg_per_kg_per_h"
        ),
        dose_mg=optional_float(str(form.get("dose_mg") or ""), "dose_mg"),
        start_date=_date(str(form.get("start_date") or ""), "start_date"),
    )


def _builder(
    request: Request,
    ctx: Ctx,
    session: Session,
    principal: Principal,
    patient_id: int,
    at: datetime,
    *,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    patient = get_patient(session=session, patient_id=patient_id)
    plans = service.plans_of(
        session=session, actor=actor_of(request, principal), patient_id=patient_id, now=at
    )
    return page(
        request,
        ctx,
        "plans/list.html",
        {
            "patient": patient,
            "plans": plans,
            "form": form or {},
            "error": error,
            "protocols": dosing.protocol_choices(ctx.settings),
            "policy_file": ctx.settings.protocol_policy_file,
            "weight": current_weight(patient),
        },
        status_code=status_code,
    )


@router.get("/patients/{patient_id}/plans", response_class=HTMLResponse)
def plans_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    principal: Principal = page_permission("plan:read"),
) -> Response:
    ensure_patient_scope(principal, "plan:read", patient_id)
    return _builder(request, ctx, session, principal, patient_id, at)


@router.post("/patients/{patient_id}/plans")
def create_plan(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    principal: Principal = page_permission("plan:write"),
) -> Response:
    values = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    try:
        goals = [
            {"measure": m, "target": str(form.get(f"goal_{m}") or "").strip()}
            for m in ("nrs_pain", "phq9", "bpi_interference")
            if str(form.get(f"goal_{m}") or "").strip()
        ]
        plan = service.create_draft(
            session=session,
            actor=actor_of(request, principal),
            settings=ctx.settings,
            patient_id=patient_id,
            protocol_id=str(form.get("protocol") or ""),
            options=_options(form),
            now=at,
            goals=goals,
            booster_policy=str(form.get("booster_policy") or ""),
            preparation_required=form.get("preparation_required") == "yes",
        )
    except KetacareError as exc:
        session.rollback()
        return _builder(
            request,
            ctx,
            session,
            principal,
            patient_id,
            at,
            form=values,
            error=str(exc),
            status_code=422,
        )
    return RedirectResponse(f"/plans/{plan.id}", status_code=303)


def _plan_page(
    request: Request,
    ctx: Ctx,
    session: Session,
    principal: Principal,
    plan_id: int,
    at: datetime,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    plan = service.get_plan(session=session, plan_id=plan_id)
    ensure_patient_scope(principal, "plan:read", plan.patient_id)
    patient = get_patient(session=session, patient_id=plan.patient_id)
    service.record_read(session=session, actor=actor_of(request, principal), plan=plan, now=at)
    protocol = dosing.library(ctx.settings).get(protocol_id=plan.protocol_id)
    age = (at.date() - patient.birth_date).days // 365
    try:
        exposure = exposures.exposure(
            settings=ctx.settings,
            plan=plan,
            patient_age=age,
            patient_sex=patient.sex,
            model_id=request.query_params.get("model"),
        )
    except KetacareError as exc:
        exposure = {"available": False, "message": str(exc)}
    users = {u.id: u for u in session.scalars(select(User))}
    return page(
        request,
        ctx,
        "plans/plan.html",
        {
            "plan": plan,
            "patient": patient,
            "protocol": protocol,
            "error": error,
            "gates": gates.gates(session=session, settings=ctx.settings, plan=plan, now=at)
            if plan.status == "draft"
            else [],
            "safeguards": gates.required_safeguards(
                session=session, settings=ctx.settings, plan=plan, now=at
            )
            if plan.status == "draft"
            else plan.safeguards,
            "exposure": exposure,
            "adjuncts": list(session.scalars(select(Adjunct).where(Adjunct.plan_id == plan.id))),
            "therapy": list(
                session.scalars(select(TherapySession).where(TherapySession.plan_id == plan.id))
            ),
            "therapists": [u for u in users.values() if u.role == "therapist" and u.is_active],
            "users": users,
            "chairs": booking.chairs(session=session),
            "appointments": list(
                session.scalars(
                    select(Appointment)
                    .where(Appointment.plan_id == plan.id, Appointment.status == "booked")
                    .order_by(Appointment.starts_at)
                )
            ),
            "weight_policy_days": ctx.settings.weight_valid_days,
            "history": service.history(session=session, plan=plan),
            "preparation_done": therapy.preparation_done(session=session, plan=plan),
            "order_prefill": gates.order_prefill(settings=ctx.settings, plan=plan),
            "order_shown": _order_shown(plan),
        },
        status_code=status_code,
    )


@router.get("/plans/{plan_id}", response_class=HTMLResponse)
def plan_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    plan_id: int,
    principal: Principal = page_permission("plan:read"),
) -> Response:
    return _plan_page(request, ctx, session, principal, plan_id, at)


def _act(
    request: Request,
    ctx: Ctx,
    session: Session,
    principal: Principal,
    plan_id: int,
    at: datetime,
    form: Any,
    action: Any,
) -> Response:
    try:
        action(form)
    except KetacareError as exc:
        session.rollback()
        return _plan_page(
            request, ctx, session, principal, plan_id, at, error=str(exc), status_code=422
        )
    return RedirectResponse(f"/plans/{plan_id}", status_code=303)


@router.post("/plans/{plan_id}/sign")
def sign_plan(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    plan_id: int,
    principal: Principal = page_permission("plan:sign"),
) -> Response:
    return _act(
        request,
        ctx,
        session,
        principal,
        plan_id,
        at,
        form,
        lambda f: service.sign(
            session=session,
            actor=actor_of(request, principal),
            settings=ctx.settings,
            plan_id=plan_id,
            now=at,
            reason=str(f.get("reason") or ""),
            weight_confirmed=f.get("weight_confirmed") == "yes",
            safeguards_accepted=[str(v) for v in f.getlist("safeguard")],
            monitoring={
                name: str(f.get(f"order_{name}") or "").strip() or None for name in ORDER_FIELDS
            },
        ),
    )


def _order_shown(plan: Any) -> dict[str, Any] | None:
    if not plan.monitoring_order:
        return None
    order = MonitoringOrder.from_dict(plan.monitoring_order)
    return {"set_by": order.set_by, "lines": order.lines()}


@router.post("/plans/{plan_id}/cosign")
def cosign_plan(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    plan_id: int,
    principal: Principal = page_permission("plan:sign"),
) -> Response:
    return _act(
        request,
        ctx,
        session,
        principal,
        plan_id,
        at,
        form,
        lambda f: service.cosign(
            session=session,
            actor=actor_of(request, principal),
            settings=ctx.settings,
            plan_id=plan_id,
            now=at,
        ),
    )


@router.post("/plans/{plan_id}/status")
def plan_status(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    plan_id: int,
    principal: Principal = page_permission("plan:write"),
) -> Response:
    return _act(
        request,
        ctx,
        session,
        principal,
        plan_id,
        at,
        form,
        lambda f: service.transition(
            session=session,
            actor=actor_of(request, principal),
            plan_id=plan_id,
            action=str(f.get("action") or ""),
            now=at,
            reason=str(f.get("reason") or ""),
        ),
    )


@router.post("/plans/{plan_id}/versions")
def plan_version(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    plan_id: int,
    principal: Principal = page_permission("plan:write"),
) -> Response:
    try:
        new = service.new_version(
            session=session,
            actor=actor_of(request, principal),
            settings=ctx.settings,
            plan_id=plan_id,
            options=_options(form),
            now=at,
        )
    except KetacareError as exc:
        session.rollback()
        return _plan_page(
            request, ctx, session, principal, plan_id, at, error=str(exc), status_code=422
        )
    return RedirectResponse(f"/plans/{new.id}", status_code=303)


@router.post("/plans/{plan_id}/adjuncts")
def plan_adjunct(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    plan_id: int,
    principal: Principal = page_permission("plan:write"),
) -> Response:
    return _act(
        request,
        ctx,
        session,
        principal,
        plan_id,
        at,
        form,
        lambda f: service.add_adjunct(
            session=session,
            actor=actor_of(request, principal),
            settings=ctx.settings,
            plan_id=plan_id,
            drug=str(f.get("drug") or ""),
            dose_text=str(f.get("dose_text") or ""),
            use=str(f.get("use") or ""),
            now=at,
        ),
    )


@router.post("/plans/{plan_id}/therapy")
def plan_therapy(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    plan_id: int,
    principal: Principal = page_permission("plan:write"),
) -> Response:
    def act(f: Any) -> object:
        therapist = optional_int(str(f.get("therapist_id") or ""), "therapist")
        if therapist is None:
            raise InvalidInput("choose a therapist")
        return therapy.add_therapy(
            session=session,
            actor=actor_of(request, principal),
            plan_id=plan_id,
            kind=str(f.get("kind") or ""),
            therapist_id=therapist,
            planned_date=_date(str(f.get("planned_date") or ""), "planned date"),
            now=at,
        )

    return _act(request, ctx, session, principal, plan_id, at, form, act)


@router.post("/plans/{plan_id}/book")
def plan_book(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    plan_id: int,
    principal: Principal = page_permission("schedule:write"),
) -> Response:
    def act(f: Any) -> object:
        first = _date(str(f.get("first_day") or ""), "first day")
        chair = optional_int(str(f.get("chair_id") or ""), "chair")
        if first is None or chair is None:
            raise InvalidInput("choose the first day and a chair")
        try:
            clock = time.fromisoformat(str(f.get("at_time") or "09:00"))
        except ValueError:
            raise InvalidInput("time must be HH:MM") from None
        return booking.book_course(
            session=session,
            actor=actor_of(request, principal),
            plan_id=plan_id,
            chair_id=chair,
            first_day=first,
            at_time=clock,
            zone=ctx.settings.zone,
            now=at,
            settings=ctx.settings,
        )

    return _act(request, ctx, session, principal, plan_id, at, form, act)


@router.get("/therapy/{therapy_id}", response_class=HTMLResponse)
def therapy_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    therapy_id: int,
    principal: Principal = page_permission("therapy:read"),
) -> Response:
    row = therapy.read_therapy(
        session=session, actor=actor_of(request, principal), therapy_id=therapy_id, now=ctx.clock()
    )
    patient = get_patient(session=session, patient_id=row.patient_id)
    return page(request, ctx, "plans/therapy.html", {"row": row, "patient": patient})


@router.post("/therapy/{therapy_id}")
def therapy_note(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    therapy_id: int,
    principal: Principal = page_permission("therapy:document"),
) -> Response:
    try:
        row = therapy.document_therapy(
            session=session,
            actor=actor_of(request, principal),
            therapy_id=therapy_id,
            note={f: str(form.get(f) or "") for f in therapy.NOTE_FIELDS},
            risk_concern=form.get("risk_concern") == "yes",
            now=at,
        )
    except KetacareError as exc:
        session.rollback()
        row = session.get(TherapySession, therapy_id)
        patient = get_patient(session=session, patient_id=row.patient_id) if row else None
        return page(
            request,
            ctx,
            "plans/therapy.html",
            {
                "row": row,
                "patient": patient,
                "error": str(exc),
                "form": {k: str(v) for k, v in form.items()},
            },
            status_code=422,
        )
    return RedirectResponse(f"/plans/{row.plan_id}", status_code=303)


@router.get("/calendar", response_class=HTMLResponse)
def calendar_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    week: str = "",
    principal: Principal = page_permission("schedule:read"),
) -> Response:
    zone = ctx.settings.zone
    start_day = _date(week, "week") or at.astimezone(zone).date()
    start_day = start_day - timedelta(days=start_day.weekday())
    start = datetime.combine(start_day, time(0), tzinfo=zone)
    appts = booking.calendar(
        session=session,
        actor=actor_of(request, principal),
        start=start,
        end=start + timedelta(days=7),
        now=at,
    )
    patients = {a.patient_id: get_patient(session=session, patient_id=a.patient_id) for a in appts}
    days = [start_day + timedelta(days=i) for i in range(7)]
    chairs = booking.chairs(session=session)
    grid = {
        (c.id, d): [
            a for a in appts if a.chair_id == c.id and a.starts_at.astimezone(zone).date() == d
        ]
        for c in chairs
        for d in days
    }
    return page(
        request,
        ctx,
        "plans/calendar.html",
        {
            "days": days,
            "chairs": chairs,
            "grid": grid,
            "patients": patients,
            "prev": (start_day - timedelta(days=7)).isoformat(),
            "next": (start_day + timedelta(days=7)).isoformat(),
        },
    )
