"""JSON routes of treatment consent: templates, signing, countersigning, withdrawal."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from ketacare.clinic.consent import schemas, service
from ketacare.web.deps import Call, Id, api_request

router = APIRouter(prefix="/api/v1", tags=["consent"])


@router.get("/consent-templates", response_model=list[schemas.TemplateRead])
def list_templates(call: Call = api_request("consent:read")) -> object:
    """Every published template version, newest first within each program."""
    return [schemas.TemplateRead.of(t) for t in service.list_templates(session=call.session)]


@router.post("/consent-templates", response_model=schemas.TemplateRead, status_code=201)
def publish_template(
    data: schemas.TemplateIn, call: Call = api_request("consent:publish")
) -> object:
    """Publish the next version of a program's template (the clinic's own text)."""
    row = call.do(
        service.publish_template,
        program=data.program,
        content=data.content,
        reconsent_required=data.reconsent_required,
        note=data.note,
    )
    return schemas.TemplateRead.of(row)


@router.get("/consent-reconsent", response_model=list[schemas.ReconsentFlag])
def reconsent_flags(call: Call = api_request("consent:review")) -> object:
    """Patients whose consent predates a template version that requires re-consent."""
    return call.do(service.reconsent_flags)


@router.get("/patients/{patient_id}/consents", response_model=schemas.PatientConsents)
def patient_consents(patient_id: Id, call: Call = api_request("consent:read")) -> object:
    """The patient's standing in every program and every consent signed, newest first."""
    call.own(patient_id)
    standings, consents = call.do(service.read_consents, patient_id=patient_id)
    return schemas.PatientConsents(
        standings=[schemas.StandingRead.of(s) for s in standings.values()],
        consents=[schemas.ConsentRead.of(e) for e in consents],
    )


def _entry(call: Call, consent_id: int) -> schemas.ConsentRead:
    consent = service.get_consent(session=call.session, consent_id=consent_id)
    found = service.entries(session=call.session, patient_id=consent.patient_id)
    return schemas.ConsentRead.of(next(e for e in found if e.consent.id == consent_id))


def _own_consent(call: Call, consent_id: int) -> None:
    call.own(service.get_consent(session=call.session, consent_id=consent_id).patient_id)


@router.post("/patients/{patient_id}/consents", response_model=schemas.ConsentRead, status_code=201)
def sign(patient_id: Id, data: schemas.SignIn, call: Call = api_request("consent:sign")) -> object:
    """The patient signs the current version: teach-back answers, typed name, drawing."""
    call.own(patient_id)
    row = call.do(
        service.sign,
        patient_id=patient_id,
        template_id=data.template_id,
        typed_name=data.typed_name,
        signature=data.signature,
        answers=data.teach_back,
    )
    return _entry(call, row.id)


@router.post("/consents/{consent_id}/countersign", response_model=schemas.ConsentRead)
def countersign(
    consent_id: Id, data: schemas.CountersignIn, call: Call = api_request("consent:countersign")
) -> object:
    """A witness or the clinician countersigns; the signed PDF is stored with its SHA-256."""
    call.do(
        service.countersign,
        consent_id=consent_id,
        capacity=data.capacity,
        settings=call.settings,
    )
    return _entry(call, consent_id)


@router.post("/consents/{consent_id}/withdraw", response_model=schemas.ConsentRead)
def withdraw(
    consent_id: Id, data: schemas.WithdrawIn, call: Call = api_request("consent:withdraw")
) -> object:
    """Record the patient's withdrawal: no further session of the program under it."""
    _own_consent(call, consent_id)
    call.do(service.withdraw, consent_id=consent_id, reason=data.reason)
    return _entry(call, consent_id)


@router.get(
    "/consents/{consent_id}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The signed consent"}},
)
def consent_pdf(consent_id: Id, call: Call = api_request("consent:read")) -> Response:
    """The signed consent document (its SHA-256 is the consent's ``pdf_sha256``)."""
    _own_consent(call, consent_id)
    return Response(
        call.do(service.signed_document, consent_id=consent_id),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="consent-{consent_id}.pdf"'},
    )
