"""Pages of treatment consent: signing on a phone or tablet, countersigning and withdrawal
from the chart, the signed PDF, and the clinic's template versions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.consent import service
from ketacare.clinic.patients.service import get_patient
from ketacare.core.consent import programs
from ketacare.core.errors import InvalidInput
from ketacare.infra.errors import Conflict
from ketacare.web.deps import (
    Ctx,
    DbSession,
    FormFields,
    Now,
    actor_of,
    ensure_patient_scope,
    page_permission,
)
from ketacare.web.render import page

router = APIRouter(include_in_schema=False)


def chart_panel(*, session: DbSession, patient_id: int) -> dict[str, Any]:
    """What the chart's consent card shows (the chart page reads it)."""
    return {
        "standings": service.standings(session=session, patient_id=patient_id),
        "entries": service.entries(session=session, patient_id=patient_id),
        "current": {p: service.current_template(session=session, program=p) for p in programs()},
        "labels": {p.id: p.label for p in programs().values()},
    }


def _sign_form(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    patient_id: int,
    program: str,
    *,
    error: str | None = None,
    typed_name: str = "",
    status_code: int = 200,
) -> Response:
    if program not in programs():
        raise InvalidInput(f"unknown consent program {program!r} (known: {', '.join(programs())})")
    template = service.current_template(session=session, program=program)
    if template is None:
        raise Conflict(
            f"the clinic has published no consent template for program {program} yet: a "
            "physician publishes one under Consent templates"
        )
    return page(
        request,
        ctx,
        "consent/sign.html",
        {
            "p": get_patient(session=session, patient_id=patient_id),
            "template": template,
            "content": service.content_of(template),
            "error": error,
            "typed_name": typed_name,
        },
        status_code=status_code,
    )


@router.get("/patients/{patient_id}/consent/{program}/sign", response_class=HTMLResponse)
def sign_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    patient_id: int,
    program: str,
    principal: Principal = page_permission("consent:sign"),
) -> Response:
    """The current version to read, the teach-back questions, the name and the signature."""
    ensure_patient_scope(principal, "consent:sign", patient_id)
    return _sign_form(request, ctx, session, patient_id, program)


@router.post("/patients/{patient_id}/consent/{program}/sign", response_class=HTMLResponse)
def sign_submit(
    request: Request,
    ctx: Ctx,
    form: FormFields,
    session: DbSession,
    at: Now,
    patient_id: int,
    program: str,
    principal: Principal = page_permission("consent:sign"),
) -> Response:
    ensure_patient_scope(principal, "consent:sign", patient_id)
    answers: dict[str, object] = {}
    for key, value in form.multi_items():
        if key.startswith("q_") and isinstance(value, str) and value.isdigit():
            answers[key[2:]] = int(value)
    typed = str(form.get("typed_name") or "")
    try:
        template_id = int(str(form.get("template_id") or "0"))
        # every check runs before anything is written: a refusal leaves nothing to undo
        service.sign(
            session=session,
            actor=actor_of(request, principal),
            patient_id=patient_id,
            template_id=template_id,
            typed_name=typed,
            signature=str(form.get("signature") or ""),
            answers=answers,
            now=at,
        )
    except (InvalidInput, Conflict, ValueError) as exc:
        return _sign_form(
            request,
            ctx,
            session,
            patient_id,
            program,
            error=str(exc),
            typed_name=typed,
            status_code=422,
        )
    return RedirectResponse(f"/patients/{patient_id}#consent-h", status_code=303)


@router.post("/consents/{consent_id}/countersign")
def countersign_page(
    request: Request,
    ctx: Ctx,
    form: FormFields,
    session: DbSession,
    at: Now,
    consent_id: int,
    principal: Principal = page_permission("consent:countersign"),
) -> Response:
    consent = service.get_consent(session=session, consent_id=consent_id)
    service.countersign(
        session=session,
        actor=actor_of(request, principal),
        consent_id=consent_id,
        capacity=str(form.get("capacity") or ""),
        zone=ctx.settings.zone,
        now=at,
    )
    return RedirectResponse(f"/patients/{consent.patient_id}#consent-h", status_code=303)


@router.post("/consents/{consent_id}/withdraw")
def withdraw_page(
    request: Request,
    form: FormFields,
    session: DbSession,
    at: Now,
    consent_id: int,
    principal: Principal = page_permission("consent:withdraw"),
) -> Response:
    consent = service.get_consent(session=session, consent_id=consent_id)
    ensure_patient_scope(principal, "consent:withdraw", consent.patient_id)
    service.withdraw(
        session=session,
        actor=actor_of(request, principal),
        consent_id=consent_id,
        reason=str(form.get("reason") or ""),
        now=at,
    )
    return RedirectResponse(f"/patients/{consent.patient_id}#consent-h", status_code=303)


@router.get("/consents/{consent_id}.pdf")
def pdf_page(
    request: Request,
    session: DbSession,
    at: Now,
    consent_id: int,
    principal: Principal = page_permission("consent:read"),
) -> Response:
    consent = service.get_consent(session=session, consent_id=consent_id)
    ensure_patient_scope(principal, "consent:read", consent.patient_id)
    data = service.signed_document(
        session=session, actor=actor_of(request, principal), consent_id=consent_id, now=at
    )
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="consent-{consent_id}.pdf"'},
    )


@router.get("/consent-templates", response_class=HTMLResponse)
def templates_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    principal: Principal = page_permission("consent:review"),
) -> Response:
    """The clinic's template versions and the patients a re-consent flags."""
    return page(
        request,
        ctx,
        "consent/templates.html",
        {
            "templates": service.list_templates(session=session),
            "programs": programs(),
            "flags": service.reconsent_flags(
                session=session, actor=actor_of(request, principal), now=at
            ),
        },
    )


@router.post("/consent-templates")
def publish_page(
    request: Request,
    form: FormFields,
    session: DbSession,
    at: Now,
    principal: Principal = page_permission("consent:publish"),
) -> Response:
    """Publish the program's EXAMPLE as the next version (the API takes the clinic's text)."""
    service.publish_template(
        session=session,
        actor=actor_of(request, principal),
        program=str(form.get("program") or ""),
        content=None,
        reconsent_required=form.get("reconsent_required") == "on",
        note=str(form.get("note") or ""),
        now=at,
    )
    return RedirectResponse("/consent-templates", status_code=303)
