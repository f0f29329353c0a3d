"""JSON routes of research: a patient's registry consent, and the registry export."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.research import schemas, service
from ketacare.web.deps import DbSession, Now, actor_of, api_permission, ensure_patient_scope

router = APIRouter(prefix="/api/v1", tags=["research"])
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post(
    "/patients/{patient_id}/research-consent", response_model=schemas.ConsentRead, status_code=201
)
def record_consent(
    request: Request,
    patient_id: Id,
    data: schemas.ConsentIn,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("patient:write"),
) -> object:
    """Record that the patient granted or withdrew consent to the research registry."""
    return service.record_consent(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        decision=data.decision,
        note=data.note,
        now=at,
    )


@router.get("/patients/{patient_id}/research-consent", response_model=list[schemas.ConsentRead])
def consent_history(
    request: Request,
    patient_id: Id,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("patient:read"),
) -> object:
    """The patient's decisions on the registry, newest first (the newest holds)."""
    ensure_patient_scope(principal, "patient:read", patient_id)
    return service.read_consents(
        session=session, actor=actor_of(request, principal), patient_id=patient_id, now=at
    )


@router.get(
    "/research/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "The export (zip)"}},
)
def export(
    request: Request,
    session: DbSession,
    at: Now,
    profile: Annotated[Literal["year_only", "limited"], Query()] = "year_only",
    data_use_agreement: Annotated[str | None, Query(max_length=500)] = None,
    principal: Principal = api_permission("research:export"),
) -> Response:
    """The research registry of consenting patients, without identifiers (zip of CSVs).

    ``year_only``: events carry their year and order only. ``limited``: whole days from
    the first dose, a limited data set: name the data use agreement."""
    data, _ = service.export_registry(
        session=session,
        actor=actor_of(request, principal),
        profile=profile,
        now=at,
        data_use_agreement=data_use_agreement,
    )
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="registry-{profile}.zip"'},
    )
