"""JSON routes of follow-up."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.followup import schemas, service
from ketacare.web.deps import DbSession, Now, actor_of, api_permission

router = APIRouter(prefix="/api/v1", tags=["follow-up"])


@router.post(
    "/patients/{patient_id}/self-report-links", response_model=schemas.LinkCreated, status_code=201
)
def create_link(
    request: Request,
    patient_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    data: schemas.LinkCreate,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("followup:write"),
) -> schemas.LinkCreated:
    """A single-use link for the patient to fill questionnaires on a phone."""
    base = str(request.base_url).rstrip("/")
    link, token = service.create_link(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        instruments=data.instruments,
        valid_hours=data.valid_hours,
        now=at,
        base_url=base,
        channel=data.channel,
    )
    return schemas.LinkCreated(
        id=link.id,
        url=f"{base}/r/{token}",
        expires_at=link.expires_at,
        instruments=link.instruments,
    )
