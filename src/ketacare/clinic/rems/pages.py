"""Pages of the REMS: the sites' certifications, the patient's enrolment from the chart,
each session's Patient Monitoring Form and the submission queue."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from ketacare.clinic.rems import forms, service
from ketacare.core.errors import InvalidInput
from ketacare.core.rems import rules
from ketacare.core.rems.form import ANSWERS
from ketacare.web.page_call import PageCall, Refusal, page_call

router = APIRouter(include_in_schema=False)


def _date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date: use YYYY-MM-DD") from None


@router.get("/rems", response_class=HTMLResponse)
def rems_page(call: PageCall = page_call("rems:read")) -> Response:
    """The sites' certifications and the Patient Monitoring Form's fields with sources."""
    return call.render(
        "rems/index.html",
        {
            "records": service.certifications(session=call.session),
            "certified": service.certified_sites(session=call.session, on=call.now.date()),
            "rules": rules(),
        },
    )


@router.post("/rems/certifications")
def certify_page(call: PageCall = page_call("rems:certify")) -> Response:
    call.do(
        service.record_certification,
        site=call.text("site"),
        identifier=call.text("identifier"),
        certified_on=_date(call.text("certified_on"), "certified_on"),
        status=call.text("status", "certified"),
    )
    return call.redirect("/rems")


@router.post("/patients/{patient_id}/rems-enrolment")
def enrol_page(patient_id: int, call: PageCall = page_call("rems:write")) -> Response:
    call.do(
        service.record_enrolment,
        patient_id=patient_id,
        identifier=call.text("identifier"),
        enrolled_on=_date(call.text("enrolled_on"), "enrolled_on"),
    )
    return call.redirect(f"/patients/{patient_id}#rems-h")


@router.get("/rems/queue", response_class=HTMLResponse)
def queue_page(call: PageCall = page_call("rems:read")) -> Response:
    """The Patient Monitoring Forms to submit: due, overdue, submitted."""
    rows = call.do(forms.queue, settings=call.settings)
    return call.render("rems/queue.html", {"rows": rows, "rules": rules()})


@router.get("/rems/queue.csv")
def queue_csv_page(call: PageCall = page_call("rems:read")) -> Response:
    return Response(
        forms.queue_csv(call.do(forms.queue, settings=call.settings)),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="rems-queue.csv"'},
    )


def _form_page(call: PageCall, session_id: int, refused: Refusal | None = None) -> Response:
    form = call.do(forms.monitoring_form, settings=call.settings, session_id=session_id)
    rows = call.do(forms.queue, settings=call.settings)
    return call.render(
        "rems/form.html",
        {
            "session_id": session_id,
            "form": form,
            "answers": forms.answers_of(session=call.session, session_id=session_id),
            "kinds": ANSWERS,
            "labels": {name: label for name, label, _, _ in form.items},
            "status_words": forms.STATUS_WORDS,
            "row": next((r for r in rows if r.session_id == session_id), None),
            "rules": rules(),
        },
        refused=refused,
    )


@router.get("/sessions/{session_id}/rems-form", response_class=HTMLResponse)
def form_page(session_id: int, call: PageCall = page_call("rems:read")) -> Response:
    return _form_page(call, session_id)


def _answers(call: PageCall) -> dict[str, object]:
    given: dict[str, object] = {}
    for name, kind in ANSWERS.items():
        raw = call.text(name).strip()
        if kind == "yes_no" and raw in ("yes", "no"):
            given[name] = raw == "yes"
        elif kind == "text" and raw:
            given[name] = raw
        elif kind == "minutes" and raw:
            if not raw.isdigit():
                raise InvalidInput(f"{name} must be whole minutes, got {raw!r}")
            given[name] = int(raw)
        elif kind == "yes_no_time" and raw in ("yes", "no"):
            given[name] = {"present": raw == "yes", "at": call.text(f"{name}_at")}
    return given


def _act(call: PageCall, session_id: int) -> object:
    action = call.text("action")
    if action == "answers":
        return call.do(
            forms.record_answers,
            settings=call.settings,
            session_id=session_id,
            answers=_answers(call),
        )
    if action == "ready":
        return call.do(forms.mark_ready, settings=call.settings, session_id=session_id)
    if action == "submitted":
        return call.do(
            forms.mark_submitted,
            settings=call.settings,
            session_id=session_id,
            submitted_on=_date(call.text("submitted_on"), "submitted_on"),
            route=call.text("route"),
            reference=call.text("reference"),
        )
    raise InvalidInput("choose what to do: answers, ready or submitted")


@router.post("/sessions/{session_id}/rems-form", response_class=HTMLResponse)
def form_action(session_id: int, call: PageCall = page_call("rems:write")) -> Response:
    """Record answers, mark ready, or mark submitted (the button pressed says which)."""
    return call.attempt(
        lambda: _act(call, session_id),
        done=f"/sessions/{session_id}/rems-form",
        again=lambda refused: _form_page(call, session_id, refused),
    )


@router.get("/sessions/{session_id}/rems-form.pdf")
def form_pdf_page(session_id: int, call: PageCall = page_call("rems:read")) -> Response:
    return Response(
        call.do(forms.form_pdf, settings=call.settings, session_id=session_id),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="rems-form-{session_id}.pdf"'},
    )
