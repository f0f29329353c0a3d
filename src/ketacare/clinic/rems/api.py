"""JSON routes of the REMS: setting certifications and patient enrolments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.rems import forms, schemas, service
from ketacare.core.rems.form import MonitoringForm
from ketacare.web.deps import Ctx, DbSession, Now, actor_of, api_permission

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
    return service.read_enrolment(
        session=session, actor=actor_of(request, principal), patient_id=patient_id, now=at
    )


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


@router.get("/sessions/{session_id}/rems-form", response_model=schemas.FormRead)
def read_form(
    request: Request,
    ctx: Ctx,
    session_id: Id,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("rems:read"),
) -> object:
    """The session's Patient Monitoring Form from its record, and what is missing (where)."""
    form = forms.monitoring_form(
        session=session,
        actor=actor_of(request, principal),
        settings=ctx.settings,
        session_id=session_id,
        now=at,
    )
    return _form(session_id, form)


@router.post("/sessions/{session_id}/rems-form/answers", response_model=schemas.FormRead)
def record_answers(
    request: Request,
    ctx: Ctx,
    session_id: Id,
    data: schemas.AnswersIn,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("rems:write"),
) -> object:
    """Record the answers the session log does not hold; the form as it then stands."""
    actor = actor_of(request, principal)
    forms.record_answers(
        session=session,
        actor=actor,
        settings=ctx.settings,
        session_id=session_id,
        answers=data.answers,
        now=at,
    )
    form = forms.monitoring_form(
        session=session, actor=actor, settings=ctx.settings, session_id=session_id, now=at
    )
    return _form(session_id, form)


@router.post("/sessions/{session_id}/rems-form/ready", response_model=schemas.FormRead)
def mark_ready(
    request: Request,
    ctx: Ctx,
    session_id: Id,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("rems:write"),
) -> object:
    """Mark the form ready; refused (422) with each missing item and where to record it."""
    form = forms.mark_ready(
        session=session,
        actor=actor_of(request, principal),
        settings=ctx.settings,
        session_id=session_id,
        now=at,
    )
    return _form(session_id, form)


@router.post("/sessions/{session_id}/rems-form/submitted", response_model=schemas.QueueRowRead)
def mark_submitted(
    request: Request,
    ctx: Ctx,
    session_id: Id,
    data: schemas.SubmittedIn,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("rems:write"),
) -> object:
    """Record the submission of a ready form (date, route, confirmation reference)."""
    actor = actor_of(request, principal)
    forms.mark_submitted(
        session=session,
        actor=actor,
        settings=ctx.settings,
        session_id=session_id,
        submitted_on=data.submitted_on,
        route=data.route,
        reference=data.reference,
        now=at,
    )
    rows = forms.queue(session=session, actor=actor, settings=ctx.settings, now=at)
    return next(r for r in rows if r.session_id == session_id)


@router.get(
    "/sessions/{session_id}/rems-form/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The form"}},
)
def form_pdf(
    request: Request,
    ctx: Ctx,
    session_id: Id,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("rems:read"),
) -> Response:
    """The form as PDF (its items, values and field status; missing items listed)."""
    form = forms.monitoring_form(
        session=session,
        actor=actor_of(request, principal),
        settings=ctx.settings,
        session_id=session_id,
        now=at,
    )
    return Response(
        forms.form_pdf(form=form, session_id=session_id, zone=ctx.settings.zone),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="rems-form-{session_id}.pdf"'},
    )


@router.get("/rems/queue", response_model=list[schemas.QueueRowRead])
def submission_queue(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("rems:read"),
) -> object:
    """Every esketamine nasal spray session's form: due, overdue or submitted."""
    return forms.queue(
        session=session, actor=actor_of(request, principal), settings=ctx.settings, now=at
    )


@router.get(
    "/rems/queue.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The queue as CSV"}},
)
def submission_queue_csv(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("rems:read"),
) -> Response:
    """The submission queue as CSV."""
    rows = forms.queue(
        session=session, actor=actor_of(request, principal), settings=ctx.settings, now=at
    )
    return Response(
        forms.queue_csv(rows),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="rems-queue.csv"'},
    )
