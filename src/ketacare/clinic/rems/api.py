"""JSON routes of the REMS: setting certifications and patient enrolments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.audit import service as audit
from ketacare.clinic.rems import schemas, service
from ketacare.web.deps import DbSession, Now, actor_of, api_permission

router = APIRouter(prefix="/api/v1", tags=["rems"])
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/rems/certifications", response_model=list[schemas.CertificationRead])
def list_certifications(
    session: DbSession,
    principal: Principal = api_permission("rems:read"),  # noqa: ARG001
) -> object:
    """Every site certification record, newest first (the newest of a site holds)."""
    return service.certifications(session=session)


@router.post("/rems/certifications", response_model=schemas.CertificationRead, status_code=201)
def record_certification(
    request: Request,
    data: schemas.CertificationIn,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("rems:certify"),
) -> object:
    """Record a site's REMS certification as a treatment setting, or its end."""
    return service.record_certification(
        session=session,
        actor=actor_of(request, principal),
        site=data.site,
        identifier=data.identifier,
        certified_on=data.certified_on,
        status=data.status,
        now=at,
    )


@router.get("/patients/{patient_id}/rems-enrolment", response_model=schemas.EnrolmentRead | None)
def read_enrolment(
    request: Request,
    patient_id: Id,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("rems:read"),
) -> object:
    """The patient's newest REMS enrolment (null when none is recorded)."""
    audit.record(
        session=session,
        actor=actor_of(request, principal),
        action="read",
        resource_type="rems_enrolment",
        resource_id=patient_id,
        patient_id=patient_id,
        at=at,
    )
    return service.enrolment(session=session, patient_id=patient_id)


@router.post(
    "/patients/{patient_id}/rems-enrolment",
    response_model=schemas.EnrolmentRead,
    status_code=201,
)
def record_enrolment(
    request: Request,
    patient_id: Id,
    data: schemas.EnrolmentIn,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("rems:write"),
) -> object:
    """Record the patient's REMS enrolment (identifier and date)."""
    return service.record_enrolment(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        identifier=data.identifier,
        enrolled_on=data.enrolled_on,
        now=at,
    )
