"""JSON routes of safeguards: a patient's cumulative dose."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.safeguards import schemas, service
from ketacare.web.deps import Ctx, DbSession, Now, actor_of, api_permission

router = APIRouter(prefix="/api/v1", tags=["safeguards"])
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/patients/{patient_id}/cumulative-dose", response_model=schemas.CumulativeDose)
def cumulative_dose(
    request: Request,
    patient_id: Id,
    session: DbSession,
    ctx: Ctx,
    at: Now,
    principal: Principal = api_permission("session:read"),
) -> schemas.CumulativeDose:
    """What the patient has been given, per molecule: rolling totals (7, 30 and 365 days
    and ever), per course and per session, against the clinic's caps when it sets any."""
    return schemas.CumulativeDose.of(
        service.cumulative_dose(
            session=session,
            actor=actor_of(request, principal),
            settings=ctx.settings,
            patient_id=patient_id,
            now=at,
        )
    )


@router.post("/plans/{plan_id}/take-home", response_model=schemas.TakeHomeRead, status_code=201)
def dispense(
    request: Request,
    plan_id: Id,
    data: schemas.TakeHomeIn,
    session: DbSession,
    ctx: Ctx,
    at: Now,
    principal: Principal = api_permission("takehome:dispense"),
) -> schemas.TakeHomeRead:
    """Dispense a take-home supply under a signed oral or intranasal plan.

    Refused until the clinic sets its take-home limits; refused above them, for
    esketamine, and where the screening requires no take-home doses; an early refill
    beyond the clinic's tolerance needs a reason."""
    row = service.dispense(
        session=session,
        actor=actor_of(request, principal),
        settings=ctx.settings,
        plan_id=plan_id,
        form=data.form,
        strength_mg=data.strength_mg,
        units=data.units,
        days_supply=data.days_supply,
        directions=data.directions,
        lot=data.lot,
        pdmp_checked=data.pdmp_checked,
        reason=data.reason,
        dispensed_at=data.dispensed_at,
        now=at,
    )
    return schemas.TakeHomeRead.of(service.DispenseRow(row, None))


@router.get("/patients/{patient_id}/take-home", response_model=list[schemas.TakeHomeRead])
def take_home_supplies(
    request: Request,
    patient_id: Id,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("session:read"),
) -> list[schemas.TakeHomeRead]:
    """Every take-home supply of the patient, voided ones included, oldest first."""
    rows = service.dispenses(
        session=session, actor=actor_of(request, principal), patient_id=patient_id, now=at
    )
    return [schemas.TakeHomeRead.of(r) for r in rows]


@router.post("/take-home/{dispense_id}/void", response_model=schemas.TakeHomeRead)
def void(
    request: Request,
    dispense_id: Id,
    data: schemas.VoidIn,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("takehome:dispense"),
) -> schemas.TakeHomeRead:
    """Void a supply entered in error (it stays on record, marked void, with the reason)."""
    v = service.void_dispense(
        session=session,
        actor=actor_of(request, principal),
        dispense_id=dispense_id,
        reason=data.reason,
        now=at,
    )
    row = session.get(service.TakeHomeDispense, dispense_id)
    assert row is not None
    return schemas.TakeHomeRead.of(service.DispenseRow(row, v))
