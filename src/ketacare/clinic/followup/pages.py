"""Pages of follow-up: staff send a link; the patient fills what is due without logging in."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.assessments.pages import _answers_from_form
from ketacare.clinic.followup import service
from ketacare.clinic.patients.service import get_patient
from ketacare.core.errors import KetacareError
from ketacare.core.instruments import get_instrument
from ketacare.web.deps import (
    Ctx,
    DbSession,
    FormFields,
    Now,
    actor_of,
    page_permission,
    remote_addr,
)
from ketacare.web.render import optional_float, page

router = APIRouter(include_in_schema=False)


@router.post("/patients/{patient_id}/self-report-links", response_class=HTMLResponse)
def send_link(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    principal: Principal = page_permission("followup:write"),
) -> Response:
    patient = get_patient(session=session, patient_id=patient_id)
    try:
        link, token = service.create_link(
            session=session,
            actor=actor_of(request, principal),
            patient_id=patient_id,
            instruments=[str(v) for v in form.getlist("instrument")],
            valid_hours=optional_float(str(form.get("valid_hours") or "72"), "valid_hours") or 0,
            now=at,
            base_url=str(request.base_url).rstrip("/"),
            channel=str(form.get("channel") or "") or None,
        )
    except KetacareError as exc:
        session.rollback()
        return page(
            request,
            ctx,
            "followup/sent.html",
            {"patient": patient, "error": str(exc)},
            status_code=422,
        )
    url = f"{str(request.base_url).rstrip('/')}/r/{token}"
    return page(request, ctx, "followup/sent.html", {"patient": patient, "link": link, "url": url})


def _link_page(
    request: Request, ctx: Ctx, session: Any, token: str, at: Any, **extra: Any
) -> Response:
    try:
        link = service.open_link(session=session, token=token, now=at)
    except KetacareError as exc:
        return page(
            request,
            ctx,
            "followup/link.html",
            {"closed": str(exc), **extra},
            status_code=410 if "expired" in str(exc) or "used" in str(exc) else 404,
        )
    due = [get_instrument(i) for i in link.instruments if i not in link.completed]
    return page(
        request,
        ctx,
        "followup/link.html",
        {"link": link, "due": due, "token": token, "values": {}, **extra},
    )


@router.get("/r/{token}", response_class=HTMLResponse)
def link_page(request: Request, ctx: Ctx, session: DbSession, at: Now, token: str) -> Response:
    """A patient's self-report page, reached by a single-use link (no login)."""
    return _link_page(request, ctx, session, token, at)


@router.post("/r/{token}/{instrument_id}", response_class=HTMLResponse)
def link_submit(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    token: str,
    instrument_id: str,
) -> Response:
    """One questionnaire submitted through the link; safety flags alert the clinician."""
    try:
        instrument = get_instrument(instrument_id)
        values = _answers_from_form(instrument, form)
        link, row, alerts = service.submit_via_link(
            session=session,
            token=token,
            instrument_id=instrument_id,
            answers=values,
            now=at,
            remote_addr=remote_addr(request),
        )
    except KetacareError as exc:
        session.rollback()
        return _link_page(request, ctx, session, token, at, error=str(exc))
    patient = get_patient(session=session, patient_id=link.patient_id)
    from ketacare.clinic.assessments.service import responsible_name

    return page(
        request,
        ctx,
        "followup/link_result.html",
        {
            "instrument": instrument,
            "row": row,
            "alerts": alerts,
            "token": token,
            "more": link.used_at is None,
            "crisis_message": ctx.settings.crisis_message,
            "responsible": responsible_name(
                session=session, user_id=patient.responsible_clinician_id
            ),
        },
    )
