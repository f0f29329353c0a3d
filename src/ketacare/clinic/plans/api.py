"""JSON routes of plans, therapy sessions and the calendar."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.plans import booking, dosing, schemas, service, therapy
from ketacare.clinic.plans import exposure as exposures
from ketacare.web.deps import Ctx, DbSession, Now, actor_of, api_permission, ensure_patient_scope

router = APIRouter(prefix="/api/v1", tags=["plans"])
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


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
    data: schemas.PlanPreviewRequest, ctx: Ctx, _: Principal = api_permission("plan:read")
) -> dict[str, Any]:
    """The concrete schedule for a weight (hard limits refused, soft ones reported)."""
    plan = dosing.preview(
        settings=ctx.settings,
        protocol_id=data.protocol,
        weight_kg=data.weight_kg,
        options=_options(data),
    )
    return plan.to_dict()


@router.post("/patients/{patient_id}/plans", response_model=schemas.PlanRead, status_code=201)
def create_plan(
    request: Request,
    patient_id: Id,
    data: schemas.PlanCreate,
    session: DbSession,
    ctx: Ctx,
    at: Now,
    principal: Principal = api_permission("plan:write"),
) -> object:
    """A draft plan from the patient's current weight and a protocol."""
    return service.create_draft(
        session=session,
        actor=actor_of(request, principal),
        settings=ctx.settings,
        patient_id=patient_id,
        protocol_id=data.protocol,
        options=_options(data),
        now=at,
        goals=[g.model_dump() for g in data.goals],
        booster_policy=data.booster_policy,
        preparation_required=data.preparation_required,
    )


@router.get("/patients/{patient_id}/plans", response_model=list[schemas.PlanRead])
def list_plans(
    request: Request,
    patient_id: Id,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("plan:read"),
) -> list[object]:
    """A patient's plans, newest version first."""
    ensure_patient_scope(principal, "plan:read", patient_id)
    return list(
        service.plans_of(
            session=session, actor=actor_of(request, principal), patient_id=patient_id, now=at
        )
    )


@router.get("/plans/{plan_id}", response_model=schemas.PlanRead)
def read_plan(
    request: Request,
    plan_id: Id,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("plan:read"),
) -> object:
    """One plan version."""
    plan = service.get_plan(session=session, plan_id=plan_id)
    ensure_patient_scope(principal, "plan:read", plan.patient_id)
    service.record_read(session=session, actor=actor_of(request, principal), plan=plan, now=at)
    return plan


@router.get("/plans/{plan_id}/exposure")
def plan_exposure(
    request: Request,
    plan_id: Id,
    session: DbSession,
    ctx: Ctx,
    at: Now,
    model: Annotated[str | None, Query(max_length=60)] = None,
    principal: Principal = api_permission("plan:read"),
) -> dict[str, Any]:
    """Predicted plasma, effect-site and metabolite curves of the planned course."""
    plan = service.get_plan(session=session, plan_id=plan_id)
    ensure_patient_scope(principal, "plan:read", plan.patient_id)
    service.record_read(session=session, actor=actor_of(request, principal), plan=plan, now=at)
    patient = get_patient(session=session, patient_id=plan.patient_id)
    age = (plan.created_at.date() - patient.birth_date).days // 365
    return exposures.exposure(
        settings=ctx.settings, plan=plan, patient_age=age, patient_sex=patient.sex, model_id=model
    )


@router.post("/plans/{plan_id}/sign", response_model=schemas.PlanRead)
def sign_plan(
    request: Request,
    plan_id: Id,
    data: schemas.SignRequest,
    session: DbSession,
    ctx: Ctx,
    at: Now,
    principal: Principal = api_permission("plan:sign"),
) -> object:
    """Sign (gates checked); a plan needing review then awaits a second physician."""
    return service.sign(
        session=session,
        actor=actor_of(request, principal),
        settings=ctx.settings,
        plan_id=plan_id,
        now=at,
        reason=data.reason,
        weight_confirmed=data.weight_confirmed,
        safeguards_accepted=data.safeguards_accepted,
        monitoring=data.monitoring_order,
    )


@router.post("/plans/{plan_id}/cosign", response_model=schemas.PlanRead)
def cosign_plan(
    request: Request,
    plan_id: Id,
    session: DbSession,
    ctx: Ctx,
    at: Now,
    principal: Principal = api_permission("plan:sign"),
) -> object:
    """A second physician co-signs a plan that exceeds a soft limit (the gates hold again)."""
    return service.cosign(
        session=session,
        actor=actor_of(request, principal),
        settings=ctx.settings,
        plan_id=plan_id,
        now=at,
    )


@router.post("/plans/{plan_id}/versions", response_model=schemas.PlanRead, status_code=201)
def new_version(
    request: Request,
    plan_id: Id,
    data: schemas.DoseChoice,
    session: DbSession,
    ctx: Ctx,
    at: Now,
    principal: Principal = api_permission("plan:write"),
) -> object:
    """A new draft version of a signed plan (the signed one stays until the new is signed)."""
    return service.new_version(
        session=session,
        actor=actor_of(request, principal),
        settings=ctx.settings,
        plan_id=plan_id,
        options=_options(data),
        now=at,
    )


@router.post("/plans/{plan_id}/status", response_model=schemas.PlanRead)
def change_status(
    request: Request,
    plan_id: Id,
    data: schemas.EndRequest,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("plan:write"),
) -> object:
    """Activate, complete or stop (with a reason) a plan."""
    return service.transition(
        session=session,
        actor=actor_of(request, principal),
        plan_id=plan_id,
        action=data.action,
        now=at,
        reason=data.reason,
    )


@router.post("/plans/{plan_id}/adjuncts", response_model=schemas.AdjunctRead, status_code=201)
def add_adjunct(
    request: Request,
    plan_id: Id,
    data: schemas.AdjunctCreate,
    session: DbSession,
    ctx: Ctx,
    at: Now,
    principal: Principal = api_permission("plan:write"),
) -> object:
    """Add an adjunct medicine (checked against the patient's medications)."""
    return service.add_adjunct(
        session=session,
        actor=actor_of(request, principal),
        settings=ctx.settings,
        plan_id=plan_id,
        drug=data.drug,
        dose_text=data.dose_text,
        use=data.use,
        now=at,
    )


@router.post("/plans/{plan_id}/therapy", response_model=schemas.TherapyRead, status_code=201)
def add_therapy(
    request: Request,
    plan_id: Id,
    data: schemas.TherapyCreate,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("plan:write"),
) -> object:
    """Plan a preparation or integration session with a therapist."""
    return therapy.add_therapy(
        session=session,
        actor=actor_of(request, principal),
        plan_id=plan_id,
        kind=data.kind,
        therapist_id=data.therapist_id,
        planned_date=data.planned_date,
        now=at,
    )


@router.post("/therapy/{therapy_id}/note", response_model=schemas.TherapyRead)
def document_therapy(
    request: Request,
    therapy_id: Id,
    data: schemas.TherapyNote,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("therapy:document"),
) -> object:
    """The therapist's structured note (a risk concern alerts the responsible clinician)."""
    return therapy.document_therapy(
        session=session,
        actor=actor_of(request, principal),
        therapy_id=therapy_id,
        note=data.model_dump(exclude={"risk_concern"}),
        risk_concern=data.risk_concern,
        now=at,
    )


@router.post(
    "/plans/{plan_id}/appointments", response_model=schemas.AppointmentRead, status_code=201
)
def book(
    request: Request,
    plan_id: Id,
    data: schemas.BookingRequest,
    session: DbSession,
    ctx: Ctx,
    at: Now,
    principal: Principal = api_permission("schedule:write"),
) -> object:
    """Book one session on a chair for its dosing and observation time.

    Double bookings and too-early sessions are refused.
    """
    return booking.book(
        session=session,
        actor=actor_of(request, principal),
        plan_id=plan_id,
        session_number=data.session_number,
        chair_id=data.chair_id,
        starts_at=data.starts_at,
        now=at,
        settings=ctx.settings,
    )
