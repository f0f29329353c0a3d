"""JSON routes of plans, therapy sessions and the calendar."""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import APIRouter, Query

from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.plans import appointments, booking, dosing, schemas, service, therapy
from ketacare.clinic.plans import exposure as exposures
from ketacare.infra.permissions import Role
from ketacare.web.deps import Call, Id, api_request, ensure_patient_scope

router = APIRouter(prefix="/api/v1", tags=["plans"])


def _patient(call: Call) -> bool:
    """Whether a patient reads (their own record): plans not yet signed are not shown."""
    return call.principal.role is Role.PATIENT


def _options(data: schemas.DoseChoice) -> dosing.DoseOptions:
    return dosing.DoseOptions(
        bag_mg=data.bag_mg,
        bag_ml=data.bag_ml,
        dose_mg_per_kg_per_h=data.dose_mg_per_kg_per_h,
        dose_mg=data.dose_mg,
        start_date=data.start_date,
    )


@router.post("/plans/preview")
def preview(
    data: schemas.PlanPreviewRequest, call: Call = api_request("plan:read")
) -> dict[str, Any]:
    """The concrete schedule for a weight (hard limits refused, soft ones reported)."""
    plan = dosing.preview(
        settings=call.settings,
        protocol_id=data.protocol,
        weight_kg=data.weight_kg,
        options=_options(data),
    )
    # the plan document's fields, as `plan preview --json` prints them
    return cast(dict[str, Any], plan.to_dict())


@router.post("/patients/{patient_id}/plans", response_model=schemas.PlanRead, status_code=201)
def create_plan(
    patient_id: Id,
    data: schemas.PlanCreate,
    call: Call = api_request("plan:write"),
) -> object:
    """A draft plan from the patient's current weight and a protocol."""
    return call.do(
        service.create_draft,
        settings=call.settings,
        patient_id=patient_id,
        protocol_id=data.protocol,
        options=_options(data),
        goals=[g.model_dump() for g in data.goals],
        booster_policy=data.booster_policy,
        preparation_required=data.preparation_required,
    )


@router.get("/patients/{patient_id}/plans", response_model=list[schemas.PlanRead])
def list_plans(
    patient_id: Id,
    call: Call = api_request("plan:read"),
) -> list[object]:
    """A patient's plans, newest version first."""
    call.own(patient_id)
    return list(call.do(service.plans_of, patient_id=patient_id, patient_view=_patient(call)))


@router.get("/plans/{plan_id}", response_model=schemas.PlanRead)
def read_plan(
    plan_id: Id,
    call: Call = api_request("plan:read"),
) -> object:
    """One plan version (a patient reads their own once signed: a draft is not found)."""
    plan = service.get_plan(session=call.session, plan_id=plan_id, patient_view=_patient(call))
    ensure_patient_scope(call.principal, "plan:read", plan.patient_id)
    call.do(service.record_read, plan=plan)
    return plan


@router.get("/plans/{plan_id}/exposure")
def plan_exposure(
    plan_id: Id,
    model: Annotated[str | None, Query(max_length=60)] = None,
    call: Call = api_request("plan:read"),
) -> dict[str, Any]:
    """Predicted plasma, effect-site and metabolite curves of the planned course."""
    plan = service.get_plan(session=call.session, plan_id=plan_id, patient_view=_patient(call))
    ensure_patient_scope(call.principal, "plan:read", plan.patient_id)
    call.do(service.record_read, plan=plan)
    patient = get_patient(session=call.session, patient_id=plan.patient_id)
    age = (plan.created_at.date() - patient.birth_date).days // 365
    return exposures.exposure(
        settings=call.settings, plan=plan, patient_age=age, patient_sex=patient.sex, model_id=model
    )


@router.post("/plans/{plan_id}/sign", response_model=schemas.PlanRead)
def sign_plan(
    plan_id: Id,
    data: schemas.SignRequest,
    call: Call = api_request("plan:sign"),
) -> object:
    """Sign (gates checked); a plan needing review then awaits a second physician."""
    return call.do(
        service.sign,
        settings=call.settings,
        plan_id=plan_id,
        reason=data.reason,
        weight_confirmed=data.weight_confirmed,
        safeguards_accepted=data.safeguards_accepted,
        monitoring=data.monitoring_order,
    )


@router.post("/plans/{plan_id}/cosign", response_model=schemas.PlanRead)
def cosign_plan(
    plan_id: Id,
    call: Call = api_request("plan:sign"),
) -> object:
    """A second physician co-signs a plan that exceeds a soft limit (the gates hold again)."""
    return call.do(service.cosign, settings=call.settings, plan_id=plan_id)


@router.post("/plans/{plan_id}/versions", response_model=schemas.PlanRead, status_code=201)
def new_version(
    plan_id: Id,
    data: schemas.DoseChoice,
    call: Call = api_request("plan:write"),
) -> object:
    """A new draft version of a signed plan (the signed one stays until the new is signed)."""
    return call.do(
        service.new_version, settings=call.settings, plan_id=plan_id, options=_options(data)
    )


@router.post("/plans/{plan_id}/status", response_model=schemas.PlanRead)
def change_status(
    plan_id: Id,
    data: schemas.EndRequest,
    call: Call = api_request("plan:write"),
) -> object:
    """Activate, complete or stop (with a reason) a plan."""
    return call.do(service.transition, plan_id=plan_id, **data.model_dump())


@router.post("/plans/{plan_id}/adjuncts", response_model=schemas.AdjunctRead, status_code=201)
def add_adjunct(
    plan_id: Id,
    data: schemas.AdjunctCreate,
    call: Call = api_request("plan:write"),
) -> object:
    """Add an adjunct medicine (checked against the patient's medications)."""
    return call.do(
        service.add_adjunct,
        settings=call.settings,
        plan_id=plan_id,
        drug=data.drug,
        dose_text=data.dose_text,
        use=data.use,
    )


@router.post("/plans/{plan_id}/therapy", response_model=schemas.TherapyRead, status_code=201)
def add_therapy(
    plan_id: Id,
    data: schemas.TherapyCreate,
    call: Call = api_request("plan:write"),
) -> object:
    """Plan a preparation or integration session with a therapist."""
    return call.do(
        therapy.add_therapy,
        plan_id=plan_id,
        kind=data.kind,
        therapist_id=data.therapist_id,
        planned_date=data.planned_date,
    )


@router.post("/therapy/{therapy_id}/move", response_model=schemas.TherapyRead)
def move_therapy(
    therapy_id: Id,
    data: schemas.TherapyMove,
    call: Call = api_request("therapy:document"),
) -> object:
    """Move a planned session to the day it is held (the assigned therapist; a reason is
    required, and the day before is kept as an amendment)."""
    return call.do(
        therapy.move_therapy,
        therapy_id=therapy_id,
        planned_date=data.planned_date,
        reason=data.reason,
    )


@router.post("/therapy/{therapy_id}/note", response_model=schemas.TherapyRead)
def document_therapy(
    therapy_id: Id,
    data: schemas.TherapyNote,
    call: Call = api_request("therapy:document"),
) -> object:
    """The therapist's structured note (a risk concern alerts the responsible clinician)."""
    return call.do(
        therapy.document_therapy,
        therapy_id=therapy_id,
        note=data.model_dump(exclude={"risk_concern"}),
        risk_concern=data.risk_concern,
        zone=call.settings.zone,
    )


@router.post(
    "/plans/{plan_id}/appointments", response_model=schemas.AppointmentRead, status_code=201
)
def book(
    plan_id: Id,
    data: schemas.BookingRequest,
    call: Call = api_request("schedule:write"),
) -> object:
    """Book one session on a chair for its dosing and observation time.

    Double bookings and too-early sessions are refused.
    """
    return call.do(
        booking.book,
        plan_id=plan_id,
        session_number=data.session_number,
        chair_id=data.chair_id,
        starts_at=data.starts_at,
        settings=call.settings,
    )


@router.post(
    "/plans/{plan_id}/appointments/course",
    response_model=list[schemas.AppointmentRead],
    status_code=201,
)
def book_course(
    plan_id: Id,
    data: schemas.CourseBookingRequest,
    call: Call = api_request("schedule:write"),
) -> list[object]:
    """Book every session on the plan's own dates; a closed day moves a session to the
    next open day within the clinic's limit, or the whole booking is refused."""
    return list(
        call.do(
            booking.book_course,
            plan_id=plan_id,
            chair_id=data.chair_id,
            at_time=data.at_time,
            first_day=data.first_day,
            zone=call.settings.zone,
            settings=call.settings,
        )
    )


@router.get("/appointments/{appointment_id}", response_model=schemas.AppointmentWithHistory)
def read_appointment(
    appointment_id: Id,
    call: Call = api_request("schedule:read"),
) -> object:
    """One appointment with its history (booked, moved, attended, not attended, cancelled,
    each with its reason)."""
    appt, events = call.do(appointments.read_appointment, appointment_id=appointment_id)
    return schemas.AppointmentWithHistory.model_validate(
        {
            **schemas.AppointmentRead.model_validate(appt).model_dump(),
            "history": [schemas.AppointmentEventRead.model_validate(e) for e in events],
        }
    )


@router.post("/appointments/{appointment_id}/move", response_model=schemas.AppointmentRead)
def move_appointment(
    appointment_id: Id,
    data: schemas.MoveRequest,
    call: Call = api_request("schedule:write"),
) -> object:
    """Move one appointment (a reason is required; the time before is kept)."""
    return call.do(
        booking.move,
        appointment_id=appointment_id,
        starts_at=data.starts_at,
        chair_id=data.chair_id,
        reason=data.reason,
        settings=call.settings,
    )


@router.post("/appointments/{appointment_id}/cancel", response_model=schemas.AppointmentRead)
def cancel_appointment(
    appointment_id: Id,
    data: schemas.CancelRequest,
    call: Call = api_request("schedule:write"),
) -> object:
    """Cancel one appointment (a reason is required; the appointment is kept, cancelled)."""
    return call.do(booking.cancel, appointment_id=appointment_id, reason=data.reason)


@router.post("/appointments/{appointment_id}/not-attended", response_model=schemas.AppointmentRead)
def not_attended_appointment(
    appointment_id: Id,
    data: schemas.NotAttendedRequest,
    call: Call = api_request("schedule:write"),
) -> object:
    """Record that the patient did not come (only once the appointment's start has passed;
    a reason is required; the appointment is kept, not attended, and its session can be
    booked again)."""
    return call.do(
        booking.mark_not_attended,
        appointment_id=appointment_id,
        reason=data.reason,
        settings=call.settings,
    )
