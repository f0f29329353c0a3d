"""Pages of plans: the builder, the plan with its exposure preview, sign-off, calendar."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from ketacare.clinic.accounts.orm import User
from ketacare.clinic.patients.service import current_weight, get_patient
from ketacare.clinic.plans import booking, dosing, gates, schemas, service, therapy
from ketacare.clinic.plans import exposure as exposures
from ketacare.clinic.plans.orm import Adjunct, Appointment, TherapySession
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.core.sessions import MonitoringOrder
from ketacare.core.sessions.orders import FIELDS as ORDER_FIELDS
from ketacare.infra.permissions import Role
from ketacare.web.deps import ensure_patient_scope
from ketacare.web.page_call import PageCall, Refusal, page_call
from ketacare.web.render import optional_float, optional_int

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


def _builder(call: PageCall, patient_id: int, refused: Refusal | None = None) -> Response:
    patient = get_patient(session=call.session, patient_id=patient_id)
    plans = call.do(
        service.plans_of, patient_id=patient_id, patient_view=call.principal.role is Role.PATIENT
    )
    return call.render(
        "plans/list.html",
        {
            "patient": patient,
            "plans": plans,
            "form": call.posted() if refused else {},
            "protocols": dosing.protocol_choices(call.settings),
            "policy_file": call.settings.protocol_policy_file,
            "weight": current_weight(patient),
        },
        refused=refused,
    )


@router.get("/patients/{patient_id}/plans", response_class=HTMLResponse)
def plans_page(patient_id: int, call: PageCall = page_call("plan:read")) -> Response:
    call.own(patient_id)
    return _builder(call, patient_id)


@router.post("/patients/{patient_id}/plans")
def create_plan(patient_id: int, call: PageCall = page_call("plan:write")) -> Response:
    def act() -> Any:
        goals = [
            {"measure": m, "target": call.text(f"goal_{m}").strip()}
            for m in ("nrs_pain", "phq9", "bpi_interference")
            if call.text(f"goal_{m}").strip()
        ]
        return call.do(
            service.create_draft,
            settings=call.settings,
            patient_id=patient_id,
            protocol_id=call.text("protocol"),
            options=_options(call.form),
            goals=goals,
            booster_policy=call.text("booster_policy"),
            preparation_required=call.form.get("preparation_required") == "yes",
        )

    return call.attempt(
        act,
        done=lambda plan: call.redirect(f"/plans/{plan.id}"),
        again=lambda refused: _builder(call, patient_id, refused),
    )


def _plan_page(call: PageCall, plan_id: int, refused: Refusal | None = None) -> Response:
    session, at, settings = call.session, call.now, call.settings
    patient_view = call.principal.role is Role.PATIENT
    plan = service.get_plan(session=session, plan_id=plan_id, patient_view=patient_view)
    ensure_patient_scope(call.principal, "plan:read", plan.patient_id)
    patient = get_patient(session=session, patient_id=plan.patient_id)
    call.do(service.record_read, plan=plan)
    protocol = dosing.library(settings).get(protocol_id=plan.protocol_id)
    age = (at.date() - patient.birth_date).days // 365
    try:
        exposure = exposures.exposure(
            settings=settings,
            plan=plan,
            patient_age=age,
            patient_sex=patient.sex,
            model_id=call.request.query_params.get("model"),
        )
    except KetacareError as exc:
        exposure = {"available": False, "message": str(exc)}
    users = {u.id: u for u in session.scalars(select(User))}
    draft = plan.status == "draft"
    return call.render(
        "plans/plan.html",
        {
            "plan": plan,
            "patient_view": patient_view,
            "patient": patient,
            "protocol": protocol,
            "gates": gates.gates(session=session, settings=settings, plan=plan, now=at)
            if draft
            else [],
            "safeguards": gates.required_safeguards(
                session=session, settings=settings, plan=plan, now=at
            )
            if draft
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
            "weight_policy_days": settings.weight_valid_days,
            "history": service.history(session=session, plan=plan),
            "preparation_done": therapy.preparation_done(session=session, plan=plan),
            "order_prefill": gates.order_prefill(settings=settings, plan=plan),
            "order_shown": _order_shown(plan),
        },
        refused=refused,
    )


@router.get("/plans/{plan_id}", response_class=HTMLResponse)
def plan_page(plan_id: int, call: PageCall = page_call("plan:read")) -> Response:
    return _plan_page(call, plan_id)


def _act(call: PageCall, plan_id: int, act: Callable[[], object]) -> Response:
    """Act on the plan; back to the plan, or the plan again with the reason."""
    return call.attempt(
        act, done=f"/plans/{plan_id}", again=lambda refused: _plan_page(call, plan_id, refused)
    )


@router.post("/plans/{plan_id}/sign")
def sign_plan(plan_id: int, call: PageCall = page_call("plan:sign")) -> Response:
    f = call.form
    return _act(
        call,
        plan_id,
        lambda: call.do(
            service.sign,
            settings=call.settings,
            plan_id=plan_id,
            reason=call.text("reason"),
            weight_confirmed=f.get("weight_confirmed") == "yes",
            safeguards_accepted=[str(v) for v in f.getlist("safeguard")],
            monitoring={name: call.text(f"order_{name}").strip() or None for name in ORDER_FIELDS},
        ),
    )


def _order_shown(plan: Any) -> dict[str, Any] | None:
    if not plan.monitoring_order:
        return None
    order = MonitoringOrder.from_dict(plan.monitoring_order)
    return {"set_by": order.set_by, "lines": order.lines()}


@router.post("/plans/{plan_id}/cosign")
def cosign_plan(plan_id: int, call: PageCall = page_call("plan:sign")) -> Response:
    return _act(
        call,
        plan_id,
        lambda: call.do(service.cosign, settings=call.settings, plan_id=plan_id),
    )


@router.post("/plans/{plan_id}/status")
def plan_status(plan_id: int, call: PageCall = page_call("plan:write")) -> Response:
    return _act(
        call,
        plan_id,
        lambda: call.do(
            service.transition, plan_id=plan_id, **call.parse(schemas.EndRequest).model_dump()
        ),
    )


@router.post("/plans/{plan_id}/versions")
def plan_version(plan_id: int, call: PageCall = page_call("plan:write")) -> Response:
    return call.attempt(
        lambda: call.do(
            service.new_version,
            settings=call.settings,
            plan_id=plan_id,
            options=_options(call.form),
        ),
        done=lambda new: call.redirect(f"/plans/{new.id}"),
        again=lambda refused: _plan_page(call, plan_id, refused),
    )


@router.post("/plans/{plan_id}/adjuncts")
def plan_adjunct(plan_id: int, call: PageCall = page_call("plan:write")) -> Response:
    return _act(
        call,
        plan_id,
        lambda: call.do(
            service.add_adjunct,
            settings=call.settings,
            plan_id=plan_id,
            drug=call.text("drug"),
            dose_text=call.text("dose_text"),
            use=call.text("use"),
        ),
    )


@router.post("/plans/{plan_id}/therapy")
def plan_therapy(plan_id: int, call: PageCall = page_call("plan:write")) -> Response:
    def act() -> object:
        therapist = optional_int(call.text("therapist_id"), "therapist")
        if therapist is None:
            raise InvalidInput("choose a therapist")
        return call.do(
            therapy.add_therapy,
            plan_id=plan_id,
            kind=call.text("kind"),
            therapist_id=therapist,
            planned_date=_date(call.text("planned_date"), "planned date"),
        )

    return _act(call, plan_id, act)


@router.post("/plans/{plan_id}/book")
def plan_book(plan_id: int, call: PageCall = page_call("schedule:write")) -> Response:
    def act() -> object:
        first = _date(call.text("first_day"), "first day")
        chair = optional_int(call.text("chair_id"), "chair")
        if first is None or chair is None:
            raise InvalidInput("choose the first day and a chair")
        try:
            clock = time.fromisoformat(call.text("at_time", "09:00"))
        except ValueError:
            raise InvalidInput("time must be HH:MM") from None
        return call.do(
            booking.book_course,
            plan_id=plan_id,
            chair_id=chair,
            first_day=first,
            at_time=clock,
            zone=call.settings.zone,
            settings=call.settings,
        )

    return _act(call, plan_id, act)


def _therapy_page(
    call: PageCall, row: TherapySession | None, refused: Refusal | None = None
) -> Response:
    patient = get_patient(session=call.session, patient_id=row.patient_id) if row else None
    form = {"form": call.posted()} if refused else {}
    return call.render(
        "plans/therapy.html", {"row": row, "patient": patient, **form}, refused=refused
    )


@router.get("/therapy/{therapy_id}", response_class=HTMLResponse)
def therapy_page(therapy_id: int, call: PageCall = page_call("therapy:read")) -> Response:
    return _therapy_page(call, call.do(therapy.read_therapy, therapy_id=therapy_id))


@router.post("/therapy/{therapy_id}")
def therapy_note(therapy_id: int, call: PageCall = page_call("therapy:document")) -> Response:
    return call.attempt(
        lambda: call.do(
            therapy.document_therapy,
            therapy_id=therapy_id,
            note={f: call.text(f) for f in therapy.NOTE_FIELDS},
            risk_concern=call.form.get("risk_concern") == "yes",
        ),
        done=lambda row: call.redirect(f"/plans/{row.plan_id}"),
        again=lambda refused: _therapy_page(
            call, call.session.get(TherapySession, therapy_id), refused
        ),
    )


@router.get("/calendar", response_class=HTMLResponse)
def calendar_page(week: str = "", call: PageCall = page_call("schedule:read")) -> Response:
    session, at = call.session, call.now
    zone = call.settings.zone
    start_day = _date(week, "week") or at.astimezone(zone).date()
    start_day = start_day - timedelta(days=start_day.weekday())
    start = datetime.combine(start_day, time(0), tzinfo=zone)
    appts = call.do(booking.calendar, start=start, end=start + timedelta(days=7))
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
    return call.render(
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
