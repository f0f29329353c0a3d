"""JSON routes of treatment consent: templates, signing, countersigning, withdrawal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.consent import schemas, service
from ketacare.web.deps import Ctx, DbSession, Now, actor_of, api_permission, ensure_patient_scope

router = APIRouter(prefix="/api/v1", tags=["consent"])
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/consent-templates", response_model=list[schemas.TemplateRead])
def list_templates(
    session: DbSession,
    principal: Principal = api_permission("consent:read"),  # noqa: ARG001
) -> object:
    """Every published template version, newest first within each program."""
    return [schemas.TemplateRead.of(t) for t in service.list_templates(session=session)]


@router.post("/consent-templates", response_model=schemas.TemplateRead, status_code=201)
def publish_template(
    request: Request,
    data: schemas.TemplateIn,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("consent:publish"),
) -> object:
    """Publish the next version of a program's template (the clinic's own text)."""
    row = service.publish_template(
        session=session,
        actor=actor_of(request, principal),
        program=data.program,
        content=data.content,
        reconsent_required=data.reconsent_required,
        note=data.note,
        now=at,
    )
    return schemas.TemplateRead.of(row)


@router.get("/consent-reconsent", response_model=list[schemas.ReconsentFlag])
def reconsent_flags(
    request: Request,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("consent:review"),
) -> object:
    """Patients whose consent predates a template version that requires re-consent."""
    return service.reconsent_flags(session=session, actor=actor_of(request, principal), now=at)


@router.get("/patients/{patient_id}/consents", response_model=schemas.PatientConsents)
def patient_consents(
    request: Request,
    patient_id: Id,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("consent:read"),
) -> object:
    """The patient's standing in every program and every consent signed, newest first."""
    ensure_patient_scope(principal, "consent:read", patient_id)
    standings, consents = service.read_consents(
        session=session, actor=actor_of(request, principal), patient_id=patient_id, now=at
    )
    return schemas.PatientConsents(
        standings=[schemas.StandingRead.of(s) for s in standings.values()],
        consents=[schemas.ConsentRead.of(e) for e in consents],
    )


def _entry(session: DbSession, consent_id: int) -> schemas.ConsentRead:
    consent = service.get_consent(session=session, consent_id=consent_id)
    found = service.entries(session=session, patient_id=consent.patient_id)
    return schemas.ConsentRead.of(next(e for e in found if e.consent.id == consent_id))


@router.post("/patients/{patient_id}/consents", response_model=schemas.ConsentRead, status_code=201)
def sign(
    request: Request,
    patient_id: Id,
    data: schemas.SignIn,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("consent:sign"),
) -> object:
    """The patient signs the current version: teach-back answers, typed name, drawing."""
    ensure_patient_scope(principal, "consent:sign", patient_id)
    row = service.sign(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        template_id=data.template_id,
        typed_name=data.typed_name,
        signature=data.signature,
        answers=data.teach_back,
        now=at,
    )
    return _entry(session, row.id)


def _scoped(session: DbSession, principal: Principal, permission: str, consent_id: int) -> None:
    consent = service.get_consent(session=session, consent_id=consent_id)
    ensure_patient_scope(principal, permission, consent.patient_id)


@router.post("/consents/{consent_id}/countersign", response_model=schemas.ConsentRead)
def countersign(
    request: Request,
    ctx: Ctx,
    consent_id: Id,
    data: schemas.CountersignIn,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("consent:countersign"),
) -> object:
    """A witness or the clinician countersigns; the signed PDF is stored with its SHA-256."""
    service.countersign(
        session=session,
        actor=actor_of(request, principal),
        consent_id=consent_id,
        capacity=data.capacity,
        zone=ctx.settings.zone,
        now=at,
    )
    return _entry(session, consent_id)


@router.post("/consents/{consent_id}/withdraw", response_model=schemas.ConsentRead)
def withdraw(
    request: Request,
    consent_id: Id,
    data: schemas.WithdrawIn,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("consent:withdraw"),
) -> object:
    """Record the patient's withdrawal: no further session of the program under it."""
    _scoped(session, principal, "consent:withdraw", consent_id)
    service.withdraw(
        session=session,
        actor=actor_of(request, principal),
        consent_id=consent_id,
        reason=data.reason,
        now=at,
    )
    return _entry(session, consent_id)


@router.get(
    "/consents/{consent_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The signed consent"}},
)
def consent_pdf(
    request: Request,
    consent_id: Id,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("consent:read"),
) -> Response:
    """The signed consent document (its SHA-256 is the consent's ``pdf_sha256``)."""
    _scoped(session, principal, "consent:read", consent_id)
    data = service.signed_document(
        session=session, actor=actor_of(request, principal), consent_id=consent_id, now=at
    )
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="consent-{consent_id}.pdf"'},
    )
