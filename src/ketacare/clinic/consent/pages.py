"""Pages of treatment consent: signing on a phone or tablet, countersigning and withdrawal
from the chart, the signed PDF, and the clinic's template versions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from ketacare.clinic.consent import service
from ketacare.clinic.patients.service import get_patient
from ketacare.core.consent import (
    TemplateContent,
    programs,
    read_clinic_template,
    teach_back_errors,
)
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.infra.errors import Conflict
from ketacare.web.page_call import PageCall, Refusal, page_call

router = APIRouter(include_in_schema=False)


def chart_panel(
    *,
    session: Session,
    patient_id: int,
    needed: frozenset[str] = frozenset(),
    treated: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """What the chart's consent card shows (the chart page reads it). ``needed``: the
    programs the patient's open plans need; ``treated``: those of any plan they had. A
    patient is offered those and research; staff every program, marked."""
    found = service.entries(session=session, patient_id=patient_id)
    templates = service.all_templates(session=session)  # one read for both uses
    return {
        "standings": service.standings_of(found, templates),
        "entries": found,
        # signed and waiting for the clinician: not offered for signing again
        "awaiting": {
            e.consent.template.program
            for e in found
            if e.countersignature is None and e.withdrawal is None
        },
        "current": service.newest_templates(templates),
        "labels": {p.id: p.label for p in programs().values()},
        "needed": needed | {"research"},
        "offered_to_patient": needed | treated | {"research"},
    }


def _sign_form(
    call: PageCall, patient_id: int, program: str, refused: Refusal | None = None
) -> Response:
    if program not in programs():
        raise InvalidInput(f"unknown consent program {program!r} (known: {', '.join(programs())})")
    template = service.current_template(session=call.session, program=program)
    if template is None:
        raise Conflict(
            f"the clinic has published no consent template for program {program} yet: a "
            "physician publishes one under Consent templates"
        )
    content = service.content_of(template)
    # kept only for the version the patient read: a newer one is read and signed afresh
    same = call.text("template_id") == str(template.id)
    answers, wrong, signature = _answers_kept(call, content) if refused and same else ({}, [], "")
    return call.render(
        "consent/sign.html",
        {
            "p": get_patient(session=call.session, patient_id=patient_id),
            "template": template,
            "content": content,
            "typed_name": call.text("typed_name"),
            "answers": answers,
            "wrong": wrong,
            "signature": signature,
        },
        refused=refused,
    )


def _answered(call: PageCall) -> dict[str, object]:
    """The teach-back choices on the form, by question id."""
    return {
        key[2:]: int(value)
        for key, value in call.form.multi_items()
        if key.startswith("q_") and isinstance(value, str) and value.isdigit()
    }


def _answers_kept(
    call: PageCall, content: TemplateContent
) -> tuple[dict[str, object], list[str], str]:
    """After a refusal: the answers that were right (kept), the questions to answer again
    (cleared, so the patient chooses anew) and the drawn signature, so that one wrong answer
    does not make the patient draw and answer everything again."""
    answered = _answered(call)
    wrong = teach_back_errors(content, answered)
    signature = call.text("signature")
    try:  # a drawing refused itself (blank, not a PNG) is drawn again, not kept
        service.signature_png(signature)
    except KetacareError:
        signature = ""
    return {k: v for k, v in answered.items() if k not in wrong}, wrong, signature


@router.get("/patients/{patient_id}/consent/{program}/sign", response_class=HTMLResponse)
def sign_page(
    patient_id: int, program: str, call: PageCall = page_call("consent:sign")
) -> Response:
    """The current version to read, the teach-back questions, the name and the signature."""
    call.own(patient_id)
    return _sign_form(call, patient_id, program)


@router.post("/patients/{patient_id}/consent/{program}/sign", response_class=HTMLResponse)
def sign_submit(
    patient_id: int, program: str, call: PageCall = page_call("consent:sign")
) -> Response:
    call.own(patient_id)
    answers = _answered(call)
    template_id = call.text("template_id", "0")
    return call.attempt(
        lambda: call.do(
            service.sign,
            patient_id=patient_id,
            template_id=int(template_id) if template_id.isdigit() else 0,
            typed_name=call.text("typed_name"),
            signature=call.text("signature"),
            answers=answers,
        ),
        done=f"/patients/{patient_id}#consent-h",
        again=lambda refused: _sign_form(call, patient_id, program, refused),
    )


@router.post("/consents/{consent_id}/countersign")
def countersign_page(
    consent_id: int, call: PageCall = page_call("consent:countersign")
) -> Response:
    consent = service.get_consent(session=call.session, consent_id=consent_id)
    call.do(
        service.countersign,
        consent_id=consent_id,
        capacity=call.text("capacity"),
        settings=call.settings,
    )
    return call.redirect(f"/patients/{consent.patient_id}#consent-h")


@router.post("/consents/{consent_id}/withdraw")
def withdraw_page(consent_id: int, call: PageCall = page_call("consent:withdraw")) -> Response:
    consent = service.get_consent(session=call.session, consent_id=consent_id)
    call.own(consent.patient_id)
    call.do(service.withdraw, consent_id=consent_id, reason=call.text("reason"))
    return call.redirect(f"/patients/{consent.patient_id}#consent-h")


@router.get("/consents/{consent_id}.pdf")
def pdf_page(consent_id: int, call: PageCall = page_call("consent:read")) -> Response:
    consent = service.get_consent(session=call.session, consent_id=consent_id)
    call.own(consent.patient_id)
    return Response(
        call.do(service.signed_document, consent_id=consent_id),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="consent-{consent_id}.pdf"'},
    )


@router.get("/consent-templates", response_class=HTMLResponse)
def templates_page(call: PageCall = page_call("consent:review")) -> Response:
    """The clinic's template versions and the patients a re-consent flags."""
    return call.render(
        "consent/templates.html",
        {
            "templates": service.list_templates(session=call.session),
            "programs": programs(),
            "flags": call.do(service.reconsent_flags),
        },
    )


@router.post("/consent-templates")
def publish_page(call: PageCall = page_call("consent:publish")) -> Response:
    """Publish the program's EXAMPLE as the next version (the editor takes the clinic's text)."""
    _publish(call, call.text("program"), None)
    return call.redirect("/consent-templates")


def _edit_form(
    call: PageCall,
    program: str,
    refused: Refusal | None = None,
    preview: TemplateContent | None = None,
) -> Response:
    newest = service.current_template(session=call.session, program=program)
    return call.render(
        "consent/template_edit.html",
        {
            "program": program,
            "label": programs()[program].label,
            "newest": newest,
            # a refused publication (or a preview) keeps what was typed; else the text in force
            "text": call.text("text")
            if refused is not None or preview is not None
            else service.template_text(session=call.session, program=program),
            "preview": preview,
            "note": call.text("note"),
            "reconsent": call.text("reconsent_required") == "on",
            "impact": call.do(service.reconsent_impact, program=program),
        },
        refused=refused,
    )


def _publish(call: PageCall, program: str, content: str | None) -> object:
    """Publish ``content`` (None: the EXAMPLE) as ``program``'s next version.
    "Re-consent required" stops the next session of every patient whose consent is in
    force, so the publisher confirms it, knowing how many."""
    reconsent = call.text("reconsent_required") == "on"
    if reconsent and call.text("confirm_reconsent") != "on" and program in programs():
        count = len(call.do(service.reconsent_impact, program=program))
        raise InvalidInput(
            f"re-consent required stops the next session of {count} patient"
            f"{'s' if count != 1 else ''} whose consent to this program is in force, until "
            "each signs the new version: tick the confirmation to publish it so, or untick "
            "re-consent required"
        )
    return call.do(
        service.publish_template,
        program=program,
        content=content,
        reconsent_required=reconsent,
        note=call.text("note"),
    )


@router.get("/consent-templates/{program}/edit", response_class=HTMLResponse)
def edit_page(program: str, call: PageCall = page_call("consent:publish")) -> Response:
    """The program's text in force (or its EXAMPLE), to adapt and publish as a new version."""
    if program not in programs():
        raise InvalidInput(f"unknown consent program {program!r} (known: {', '.join(programs())})")
    return _edit_form(call, program)


@router.post("/consent-templates/{program}/edit", response_class=HTMLResponse)
def edit_publish(program: str, call: PageCall = page_call("consent:publish")) -> Response:
    """Publish the edited text as the program's next version; a refusal keeps the text."""
    if program not in programs():
        raise InvalidInput(f"unknown consent program {program!r} (known: {', '.join(programs())})")
    return call.attempt(
        lambda: _publish(call, program, call.text("text")),
        done="/consent-templates",
        again=lambda refused: _edit_form(call, program, refused),
    )


@router.post("/consent-templates/{program}/preview", response_class=HTMLResponse)
def edit_preview(program: str, call: PageCall = page_call("consent:publish")) -> Response:
    """The edited text as the patient will read it, checked as publishing checks it;
    nothing is published, and the text stays in the editor."""
    if program not in programs():
        raise InvalidInput(f"unknown consent program {program!r} (known: {', '.join(programs())})")
    return call.attempt(
        lambda: read_clinic_template(call.text("text"), program=program),
        done=lambda parsed: _edit_form(call, program, preview=parsed),
        again=lambda refused: _edit_form(call, program, refused),
    )
