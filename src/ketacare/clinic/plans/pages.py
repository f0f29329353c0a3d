"""Pages of plans: the builder, the plan with its exposure preview, sign-off, calendar."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from ketacare.clinic.accounts.orm import User
from ketacare.clinic.assessments.pages import open_alerts_shown
from ketacare.clinic.patients.service import current_weight, get_patient
from ketacare.clinic.plans import (
    appointments,
    booking,
    dosing,
    ending,
    gates,
    schemas,
    service,
    therapy,
)
from ketacare.clinic.plans import exposure as exposures
from ketacare.clinic.plans.orm import Adjunct, Appointment, Chair, TherapySession
from ketacare.clinic.plans.session_dates import course_sessions
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.core.scheduling import ClinicHours
from ketacare.core.sessions import MonitoringOrder
from ketacare.core.sessions.orders import FIELDS as ORDER_FIELDS
from ketacare.core.sessions.orders import SCALE as ORDER_SCALE
from ketacare.core.sessions.orders import SCALE_BASIS as ORDER_SCALE_BASIS
from ketacare.infra.permissions import Role
from ketacare.web.deps import ensure_patient_scope
from ketacare.web.page_call import PageCall, Refusal, conflict_or_unprocessable, page_call
from ketacare.web.render import local_datetime, optional_date, optional_float, optional_int

router = APIRouter(include_in_schema=False)


def _options(form: Any) -> dosing.DoseOptions:
    return dosing.DoseOptions(
        bag_mg=optional_float(str(form.get("bag_mg") or ""), "bag_mg"),
        bag_ml=optional_float(str(form.get("bag_ml") or ""), "bag_ml"),
        dose_mg_per_kg_per_h=optional_float(
            str(form.get("dose_mg_per_kg_per_h") or ""), "dose_mg_per_kg_per_h"
        ),
        dose_mg=optional_float(str(form.get("dose_mg") or ""), "dose_mg"),
        start_date=optional_date(str(form.get("start_date") or ""), "start_date"),
    )


def _builder(call: PageCall, patient_id: int, refused: Refusal | None = None) -> Response:
    patient = get_patient(session=call.session, patient_id=patient_id)
    plans = call.do(
        service.plans_of, patient_id=patient_id, patient_view=call.principal.role is Role.PATIENT
    )
    from ketacare.clinic.sessions.doses import given_by_plan

    return call.render(
        "plans/list.html",
        {
            "patient": patient,
            "plans": plans,
            "given": given_by_plan(session=call.session, patient_id=patient_id, now=call.now),
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
    from ketacare.clinic.personalise.service import unavailable
    from ketacare.clinic.sessions.doses import given_by_plan

    session, at, settings = call.session, call.now, call.settings
    patient_view = call.principal.role is Role.PATIENT
    plan = service.get_plan(session=session, plan_id=plan_id, patient_view=patient_view)
    ensure_patient_scope(call.principal, "plan:read", plan.patient_id)
    patient = get_patient(session=session, patient_id=plan.patient_id)
    call.do(service.record_read, plan=plan)
    protocol = dosing.library(settings).get(protocol_id=plan.protocol_id)
    age = (at.date() - patient.birth_date).days // 365
    exposure: dict[str, Any] = {"available": False, "message": ""}
    if not patient_view:  # a clinician's preview: model curves, not the patient's page
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
    booked = list(
        session.scalars(
            select(Appointment)
            .where(Appointment.plan_id == plan.id, Appointment.status == "booked")
            .order_by(Appointment.starts_at)
        )
    )
    therapy_rows = list(
        session.scalars(select(TherapySession).where(TherapySession.plan_id == plan.id))
    )
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
            "therapy": therapy_rows,
            "therapists": [u for u in users.values() if u.role == "therapist" and u.is_active],
            "users": users,
            "chairs": booking.chairs(session=session),
            "appointments": booked,
            "course": course_sessions(
                session=session,
                plan=plan,
                booked=booked,
                zone=settings.zone,
                hours=booking.clinic_hours(settings),
            ),
            "weight_policy_days": settings.weight_valid_days,
            "history": service.history(session=session, plan=plan),
            "preparation_done": therapy.preparation_done(session=session, plan=plan),
            # read only where it matters: staff, and a session still to be held
            "therapy_consent": therapy.psychotherapy_consent_problem(
                session=session, patient_id=plan.patient_id
            )
            if not patient_view and any(r.status == "planned" for r in therapy_rows)
            else None,
            "review_lines": service.review_subjects(plan) if plan.requires_review else (),
            "order_prefill": gates.order_prefill(settings=settings, plan=plan),
            "order_shown": _order_shown(plan),
            # a refused signature shows the form as the physician filled it, not emptied
            "sign_posted": _sign_posted(call)
            if refused is not None and call.request.url.path == f"/plans/{plan_id}/sign"
            else None,
            "personalise_unavailable": unavailable(settings=settings, plan=plan),
            "given_mg": given_by_plan(session=session, patient_id=plan.patient_id, now=at).get(
                plan.id
            ),
            **open_alerts_shown(call, plan.patient_id),
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
            monitoring={
                name: call.text(f"order_{name}").strip() or None
                for name in (*ORDER_FIELDS, ORDER_SCALE, ORDER_SCALE_BASIS)
            },
        ),
    )


def _sign_posted(call: PageCall) -> dict[str, Any]:
    """The sign form as posted: its fields, and the safeguards ticked."""
    return {**call.posted(), "safeguards": [str(v) for v in call.form.getlist("safeguard")]}


def _order_shown(plan: Any) -> dict[str, Any] | None:
    if not plan.monitoring_order:
        return None
    order = MonitoringOrder.from_dict(plan.monitoring_order)
    return {"set_by": order.set_by, "lines": order.lines()}


@router.post("/plans/{plan_id}/cosign")
def cosign_plan(plan_id: int, call: PageCall = page_call("plan:sign")) -> Response:
    """The second physician's check: the page restates what the co-signature accepts, and
    the co-signer attests having reviewed it (a box left unticked is refused)."""

    def act() -> object:
        if call.form.get("reviewed") != "yes":
            raise InvalidInput(
                "co-signature: tick that you reviewed what it accepts (listed above the "
                "button) against the patient and the prescriber's reason; nothing was signed"
            )
        return call.do(service.cosign, settings=call.settings, plan_id=plan_id)

    return _act(call, plan_id, act)


@router.post("/plans/{plan_id}/status")
def plan_status(plan_id: int, call: PageCall = page_call("plan:write")) -> Response:
    """Activate a plan; complete or stop it only after a page that says what ending it
    does (sessions given of the course, the bookings to be cancelled) is confirmed."""

    def act() -> object:
        data = call.parse(schemas.EndRequest)
        if data.action != "activate" and call.text("confirmed") != "yes":
            return call.do(ending.preview, plan_id=plan_id, action=data.action, reason=data.reason)
        return call.do(service.transition, plan_id=plan_id, **data.model_dump())

    def done(result: object) -> Response:
        if isinstance(result, ending.Ending):
            return call.render("plans/confirm_end.html", {"end": result})
        return call.redirect(f"/plans/{plan_id}")

    return call.attempt(act, done=done, again=lambda refused: _plan_page(call, plan_id, refused))


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
            planned_date=optional_date(call.text("planned_date"), "planned date"),
        )

    return _act(call, plan_id, act)


def _chosen(call: PageCall, field: str, what: str) -> int:
    """The number a form's select sent, or the refusal asking the user to choose ``what``."""
    chosen = optional_int(call.text(field), what)
    if chosen is None:
        raise InvalidInput(f"choose {what}")
    return chosen


@router.post("/plans/{plan_id}/book")
def plan_book(plan_id: int, call: PageCall = page_call("schedule:write")) -> Response:
    def act() -> object:
        return call.do(
            booking.book_course,
            plan_id=plan_id,
            chair_id=_chosen(call, "chair_id", "a chair"),
            first_day=optional_date(call.text("first_day"), "first day"),
            at_time=_clock(call.text("at_time", "09:00")),
            zone=call.settings.zone,
            settings=call.settings,
        )

    return _act(call, plan_id, act)


@router.post("/plans/{plan_id}/book-session")
def plan_book_session(plan_id: int, call: PageCall = page_call("schedule:write")) -> Response:
    """Book one session on a day and time of the user's choosing (the way round a closure
    that moves a course further than the clinic allows); the same checks as any booking."""

    def act() -> object:
        return call.do(
            booking.book,
            plan_id=plan_id,
            session_number=_chosen(call, "session_number", "the session to book"),
            chair_id=_chosen(call, "chair_id", "a chair"),
            starts_at=local_datetime(call.text("starts_at"), "start", call.settings.zone),
            settings=call.settings,
        )

    return _act(call, plan_id, act)


def _therapy_page(
    call: PageCall, row: TherapySession | None, refused: Refusal | None = None
) -> Response:
    patient = get_patient(session=call.session, patient_id=row.patient_id) if row else None
    form = {"form": call.posted()} if refused else {}
    consent = (
        therapy.psychotherapy_consent_problem(session=call.session, patient_id=row.patient_id)
        if row is not None and row.status == "planned"
        else None
    )
    alerts = open_alerts_shown(call, row.patient_id) if row is not None else {}
    return call.render(
        "plans/therapy.html",
        {
            "row": row,
            "patient": patient,
            "consent_problem": consent,
            # a note is filed on or after the planned day, in the clinic's time zone
            "today": call.now.astimezone(call.settings.zone).date(),
            **form,
            **alerts,
        },
        refused=refused,
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
            zone=call.settings.zone,
        ),
        done=lambda row: call.redirect(f"/plans/{row.plan_id}"),
        again=lambda refused: _therapy_page(
            call, call.session.get(TherapySession, therapy_id), refused
        ),
    )


@router.post("/therapy/{therapy_id}/move")
def therapy_move(therapy_id: int, call: PageCall = page_call("therapy:document")) -> Response:
    return call.attempt(
        lambda: call.do(
            therapy.move_therapy,
            therapy_id=therapy_id,
            **call.parse(schemas.TherapyMove).model_dump(),
        ),
        done=lambda row: call.redirect(f"/therapy/{row.id}"),
        again=lambda refused: _therapy_page(
            call, call.session.get(TherapySession, therapy_id), refused
        ),
    )


def _clock(text: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"time {text.strip()!r} is not a time: use HH:MM") from None


def _day_label(hours: ClinicHours, day: date) -> dict[str, Any]:
    closed = hours.closed_because(day)
    open_hours = hours.hours_on(day)
    closure = hours.closure_on(day)
    return {
        "date": day,
        "closed": closed,
        "closed_short": None if closed is None else closure.label if closure else "closed",
        "hours": open_hours.text() if open_hours and hours.opening_days_set else None,
    }


@router.get("/calendar", response_class=HTMLResponse)
def calendar_page(
    week: str = "", day: str = "", call: PageCall = page_call("schedule:read")
) -> Response:
    """Chairs by week (``?week=``, any day of it) or by day (``?day=``), with therapy."""
    session, zone = call.session, call.settings.zone
    today = call.now.astimezone(zone).date()
    one_day = optional_date(day, "day")
    if one_day is not None:
        first, count = one_day, 1
    else:
        first = optional_date(week, "week") or today
        first, count = first - timedelta(days=first.weekday()), 7
    days = [first + timedelta(days=i) for i in range(count)]
    start = datetime.combine(first, time(0), tzinfo=zone)
    appts = call.do(appointments.calendar, start=start, end=start + timedelta(days=count))
    therapies = call.do(therapy.therapy_between, first=days[0], last=days[-1])
    patients = {
        pid: get_patient(session=session, patient_id=pid)
        for pid in {a.patient_id for a in appts} | {t.patient_id for t in therapies}
    }
    chairs = booking.chairs(session=session)
    grid = {
        (c.id, d): [
            a for a in appts if a.chair_id == c.id and a.starts_at.astimezone(zone).date() == d
        ]
        for c in chairs
        for d in days
    }
    hours = booking.clinic_hours(call.settings)
    step = timedelta(days=count)
    key = "day" if count == 1 else "week"
    return call.render(
        "plans/calendar.html",
        {
            "view": key,
            "days": [_day_label(hours, d) for d in days],
            "today": today,
            "chairs": chairs,
            "grid": grid,
            "therapy": {d: [t for t in therapies if t.planned_date == d] for d in days},
            "therapists": {u.id: u for u in session.scalars(select(User))},
            "patients": patients,
            "moved": appointments.moved_ids(session=session, appointment_ids=[a.id for a in appts]),
            # started, still booked: no session was opened for it (yet)
            "no_session": {a.id for a in appts if a.status == "booked" and a.starts_at <= call.now},
            "hours": hours,
            "closures": [c for c in hours.closures if c.last >= days[0] and c.first <= days[-1]],
            "prev": f"?{key}={(first - step).isoformat()}",
            "next": f"?{key}={(first + step).isoformat()}",
            "other_view": _other_view(days, today),
        },
    )


def _other_view(days: list[date], today: date) -> str:
    """The link from a week to one of its days (today when shown), or from a day to its week."""
    if len(days) == 1:
        return f"?week={days[0].isoformat()}"
    return f"?day={(today if days[0] <= today <= days[-1] else days[0]).isoformat()}"


def _appointment_page(
    call: PageCall, appointment_id: int, refused: Refusal | None = None
) -> Response:
    appt, events = call.do(appointments.read_appointment, appointment_id=appointment_id)
    session = call.session
    local = appt.starts_at.astimezone(call.settings.zone)
    return call.render(
        "plans/appointment.html",
        {
            "appt": appt,
            "events": events,
            "patient": get_patient(session=session, patient_id=appt.patient_id),
            "chairs": booking.chairs(session=session),
            "chair_names": {c.id: c.name for c in session.scalars(select(Chair))},
            "users": {u.id: u for u in session.scalars(select(User))},
            "form": call.posted()
            if refused
            else {"date": local.date().isoformat(), "time": local.strftime("%H:%M")},
            "hours": booking.clinic_hours(call.settings),
            "started": appt.starts_at <= call.now,
        },
        refused=refused,
    )


@router.get("/appointments/{appointment_id}", response_class=HTMLResponse)
def appointment_page(appointment_id: int, call: PageCall = page_call("schedule:read")) -> Response:
    return _appointment_page(call, appointment_id)


@router.post("/appointments/{appointment_id}/move")
def appointment_move(appointment_id: int, call: PageCall = page_call("schedule:write")) -> Response:
    def act() -> object:
        day = optional_date(call.text("date"), "date")
        if day is None:
            raise InvalidInput("choose the new date")
        chair = optional_int(call.text("chair_id"), "chair")
        return call.do(
            booking.move,
            appointment_id=appointment_id,
            starts_at=datetime.combine(day, _clock(call.text("time")), tzinfo=call.settings.zone),
            chair_id=chair,
            reason=call.text("reason"),
            settings=call.settings,
        )

    return call.attempt(
        act,
        done=f"/appointments/{appointment_id}",
        again=lambda refused: _appointment_page(call, appointment_id, refused),
        status=conflict_or_unprocessable,
    )


@router.post("/appointments/{appointment_id}/cancel")
def appointment_cancel(
    appointment_id: int, call: PageCall = page_call("schedule:write")
) -> Response:
    return call.attempt(
        lambda: call.do(
            booking.cancel,
            appointment_id=appointment_id,
            reason=call.parse(schemas.CancelRequest).reason,
        ),
        done=f"/appointments/{appointment_id}",
        again=lambda refused: _appointment_page(call, appointment_id, refused),
        status=conflict_or_unprocessable,
    )


@router.post("/appointments/{appointment_id}/not-attended")
def appointment_not_attended(
    appointment_id: int, call: PageCall = page_call("schedule:write")
) -> Response:
    return call.attempt(
        lambda: call.do(
            booking.mark_not_attended,
            appointment_id=appointment_id,
            reason=call.parse(schemas.NotAttendedRequest).reason,
            settings=call.settings,
        ),
        done=f"/appointments/{appointment_id}",
        again=lambda refused: _appointment_page(call, appointment_id, refused),
        status=conflict_or_unprocessable,
    )
