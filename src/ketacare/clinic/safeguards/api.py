"""JSON routes of safeguards: a patient's cumulative dose."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.safeguards import schemas, service
from ketacare.web.deps import Ctx, DbSession, Now, actor_of, api_permission

router = APIRouter(prefix="/api/v1", tags=["safeguards"])
PatientId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/patients/{patient_id}/cumulative-dose", response_model=schemas.CumulativeDose)
def cumulative_dose(
    request: Request,
    patient_id: PatientId,
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
