"""JSON routes of the REMS: setting certifications, patient enrolments, the Patient
Monitoring Form of each esketamine nasal spray session and the submission queue."""

from __future__ import annotations

import json

from fastapi import APIRouter
from fastapi.responses import Response

from ketacare.clinic.rems import forms, schemas, service
from ketacare.core.rems.form import MonitoringForm
from ketacare.web.deps import Call, Id, api_request

router = APIRouter(prefix="/api/v1", tags=["rems"])


@router.get("/rems/certifications", response_model=list[schemas.CertificationRead])
def list_certifications(call: Call = api_request("rems:read")) -> object:
    """Every site certification record, newest first (the newest of a site holds)."""
    return service.certifications(session=call.session)


@router.post("/rems/certifications", response_model=schemas.CertificationRead, status_code=201)
def record_certification(
    data: schemas.CertificationIn, call: Call = api_request("rems:certify")
) -> object:
    """Record a site's REMS certification as a treatment setting, or its end."""
    return call.do(
        service.record_certification,
        site=data.site,
        identifier=data.identifier,
        certified_on=data.certified_on,
        status=data.status,
    )


@router.get("/patients/{patient_id}/rems-enrolment", response_model=schemas.EnrolmentRead | None)
def read_enrolment(patient_id: Id, call: Call = api_request("rems:read")) -> object:
    """The patient's newest REMS enrolment (null when none is recorded)."""
    return call.do(service.read_enrolment, patient_id=patient_id)


@router.post(
    "/patients/{patient_id}/rems-enrolment",
    response_model=schemas.EnrolmentRead,
    status_code=201,
)
def record_enrolment(
    patient_id: Id, data: schemas.EnrolmentIn, call: Call = api_request("rems:write")
) -> object:
    """Record the patient's REMS enrolment (identifier and date)."""
    return call.do(
        service.record_enrolment,
        patient_id=patient_id,
        identifier=data.identifier,
        enrolled_on=data.enrolled_on,
    )


def _form(session_id: int, form: MonitoringForm) -> schemas.FormRead:
    return schemas.FormRead(
        session_id=session_id,
        complete=form.complete,
        items=[
            schemas.FormItem(name=n, label=label, value=v, field_status=s)
            for n, label, v, s in form.items
        ],
        missing=[schemas.MissingItem(name=n, where=w) for n, w in form.missing],
    )


def _read(call: Call, session_id: int) -> MonitoringForm:
    return call.do(forms.monitoring_form, settings=call.settings, session_id=session_id)


@router.get("/sessions/{session_id}/rems-form", response_model=schemas.FormRead)
def read_form(session_id: Id, call: Call = api_request("rems:read")) -> object:
    """The session's Patient Monitoring Form from its record, and what is missing (where)."""
    return _form(session_id, _read(call, session_id))


@router.post("/sessions/{session_id}/rems-form/answers", response_model=schemas.FormRead)
def record_answers(
    session_id: Id, data: schemas.AnswersIn, call: Call = api_request("rems:write")
) -> object:
    """Record the answers the session log does not hold; the form as it then stands."""
    call.do(
        forms.record_answers, settings=call.settings, session_id=session_id, answers=data.answers
    )
    return _form(session_id, _read(call, session_id))


@router.post("/sessions/{session_id}/rems-form/ready", response_model=schemas.FormRead)
def mark_ready(session_id: Id, call: Call = api_request("rems:write")) -> object:
    """Mark the form ready; refused (422) with each missing item and where to record it."""
    return _form(
        session_id, call.do(forms.mark_ready, settings=call.settings, session_id=session_id)
    )


@router.post("/sessions/{session_id}/rems-form/submitted", response_model=schemas.QueueRowRead)
def mark_submitted(
    session_id: Id, data: schemas.SubmittedIn, call: Call = api_request("rems:write")
) -> object:
    """Record the submission of a ready form (date, route, confirmation reference)."""
    call.do(
        forms.mark_submitted,
        settings=call.settings,
        session_id=session_id,
        submitted_on=data.submitted_on,
        route=data.route,
        reference=data.reference,
    )
    rows = call.do(forms.queue, settings=call.settings)
    return next(r for r in rows if r.session_id == session_id)


@router.get(
    "/sessions/{session_id}/rems-form/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The form"}},
)
def form_pdf(session_id: Id, call: Call = api_request("rems:read")) -> Response:
    """The form as PDF (its items, values and field status; missing items listed)."""
    return Response(
        call.do(forms.form_pdf, settings=call.settings, session_id=session_id),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="rems-form-{session_id}.pdf"'},
    )


@router.get(
    "/sessions/{session_id}/rems-form/fhir",
    responses={200: {"content": {"application/fhir+json": {}}, "description": "The form"}},
)
def form_fhir(session_id: Id, call: Call = api_request("rems:read")) -> Response:
    """The form as a FHIR R4 Bundle: its Questionnaire and the session's
    QuestionnaireResponse (``completed`` only when nothing is missing)."""
    bundle = call.do(forms.form_fhir, settings=call.settings, session_id=session_id)
    return Response(json.dumps(bundle), media_type="application/fhir+json")


@router.get("/rems/queue", response_model=list[schemas.QueueRowRead])
def submission_queue(call: Call = api_request("rems:read")) -> object:
    """Every esketamine nasal spray session's form: due, overdue or submitted."""
    return call.do(forms.queue, settings=call.settings)


@router.get(
    "/rems/queue.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The queue as CSV"}},
)
def submission_queue_csv(call: Call = api_request("rems:read")) -> Response:
    """The submission queue as CSV."""
    return Response(
        forms.queue_csv(call.do(forms.queue, settings=call.settings)),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="rems-queue.csv"'},
    )
