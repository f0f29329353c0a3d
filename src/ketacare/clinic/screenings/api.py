"""JSON routes of screenings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.screenings import schemas, service
from ketacare.web.deps import Ctx, DbSession, Now, actor_of, api_permission

router = APIRouter(prefix="/api/v1", tags=["screenings"])
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post(
    "/patients/{patient_id}/screenings", response_model=schemas.ScreeningRead, status_code=201
)
def create_screening(
    request: Request,
    patient_id: Id,
    data: schemas.ScreeningCreate,
    session: DbSession,
    ctx: Ctx,
    at: Now,
    principal: Principal = api_permission("screening:run"),
) -> object:
    """Screen the patient from the record plus these entries; a draft awaiting sign-off."""
    return service.run_screening(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        form=data.model_dump(exclude_none=True),
        now=at,
        policy=service.site_policy(ctx.settings),
    )


@router.get("/patients/{patient_id}/screenings", response_model=list[schemas.ScreeningRead])
def list_screenings(
    request: Request,
    patient_id: Id,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("screening:read"),
) -> list[object]:
    """A patient's screenings, newest first."""
    return list(
        service.list_screenings(
            session=session, actor=actor_of(request, principal), patient_id=patient_id, now=at
        )
    )


@router.post("/screenings/{screening_id}/sign", response_model=schemas.ScreeningRead)
def sign_screening(
    request: Request,
    screening_id: Id,
    data: schemas.SignOff,
    session: DbSession,
    ctx: Ctx,
    at: Now,
    principal: Principal = api_permission("screening:sign"),
) -> object:
    """A physician signs the decision."""
    return service.sign(
        session=session,
        actor=actor_of(request, principal),
        screening_id=screening_id,
        note=data.note,
        valid_until=data.valid_until,
        now=at,
        policy=service.site_policy(ctx.settings),
    )
