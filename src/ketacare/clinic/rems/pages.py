"""Pages of the REMS: the sites' certifications, and the patient's enrolment from the chart."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.rems import forms, service
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.core.rems import rules
from ketacare.core.rems.form import ANSWERS
from ketacare.web.deps import Ctx, DbSession, FormFields, Now, actor_of, page_permission
from ketacare.web.render import page

router = APIRouter(include_in_schema=False)


def _date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date: use YYYY-MM-DD") from None


@router.get("/rems", response_class=HTMLResponse)
def rems_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    principal: Principal = page_permission("rems:read"),  # noqa: ARG001
) -> Response:
    """The sites' certifications and the Patient Monitoring Form's fields with sources."""
    return page(
        request,
        ctx,
        "rems/index.html",
        {
            "records": service.certifications(session=session),
            "certified": service.certified_sites(session=session, on=at.date()),
            "rules": rules(),
        },
    )


@router.post("/rems/certifications")
def certify_page(
    request: Request,
    form: FormFields,
    session: DbSession,
    at: Now,
    principal: Principal = page_permission("rems:certify"),
) -> Response:
    service.record_certification(
        session=session,
        actor=actor_of(request, principal),
        site=str(form.get("site") or ""),
        identifier=str(form.get("identifier") or ""),
        certified_on=_date(str(form.get("certified_on") or ""), "certified_on"),
        status=str(form.get("status") or "certified"),
        now=at,
    )
    return RedirectResponse("/rems", status_code=303)


@router.post("/patients/{patient_id}/rems-enrolment")
def enrol_page(
    request: Request,
    form: FormFields,
    session: DbSession,
    at: Now,
    patient_id: int,
    principal: Principal = page_permission("rems:write"),
) -> Response:
    service.record_enrolment(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        identifier=str(form.get("identifier") or ""),
        enrolled_on=_date(str(form.get("enrolled_on") or ""), "enrolled_on"),
        now=at,
    )
    return RedirectResponse(f"/patients/{patient_id}#rems-h", status_code=303)


@router.get("/rems/queue", response_class=HTMLResponse)
def queue_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    principal: Principal = page_permission("rems:read"),
) -> Response:
    """The Patient Monitoring Forms to submit: due, overdue, submitted."""
    rows = forms.queue(
        session=session, actor=actor_of(request, principal), settings=ctx.settings, now=at
    )
    return page(request, ctx, "rems/queue.html", {"rows": rows, "rules": rules()})


@router.get("/rems/queue.csv")
def queue_csv_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    principal: Principal = page_permission("rems:read"),
) -> Response:
    rows = forms.queue(
        session=session, actor=actor_of(request, principal), settings=ctx.settings, now=at
    )
    return Response(
        forms.queue_csv(rows),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="rems-queue.csv"'},
    )


def _form_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    principal: Principal,
    session_id: int,
    at: Any,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    form = forms.monitoring_form(
        session=session,
        actor=actor_of(request, principal),
        settings=ctx.settings,
        session_id=session_id,
        now=at,
    )
    rows = forms.queue(
        session=session, actor=actor_of(request, principal), settings=ctx.settings, now=at
    )
    return page(
        request,
        ctx,
        "rems/form.html",
        {
            "session_id": session_id,
            "form": form,
            "answers": forms.answers_of(session=session, session_id=session_id),
            "kinds": ANSWERS,
            "row": next((r for r in rows if r.session_id == session_id), None),
            "error": error,
            "rules": rules(),
        },
        status_code=status_code,
    )


@router.get("/sessions/{session_id}/rems-form", response_class=HTMLResponse)
def form_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    session_id: int,
    principal: Principal = page_permission("rems:read"),
) -> Response:
    return _form_page(request, ctx, session, principal, session_id, at)


def _answers(form: Any) -> dict[str, object]:
    given: dict[str, object] = {}
    for name, kind in ANSWERS.items():
        raw = str(form.get(name) or "").strip()
        if kind == "yes_no" and raw in ("yes", "no"):
            given[name] = raw == "yes"
        elif kind == "text" and raw:
            given[name] = raw
        elif kind == "minutes" and raw:
            if not raw.isdigit():
                raise InvalidInput(f"{name} must be whole minutes, got {raw!r}")
            given[name] = int(raw)
        elif kind == "yes_no_time" and raw in ("yes", "no"):
            given[name] = {"present": raw == "yes", "at": str(form.get(f"{name}_at") or "")}
    return given


@router.post("/sessions/{session_id}/rems-form", response_class=HTMLResponse)
def form_action(
    request: Request,
    ctx: Ctx,
    form: FormFields,
    session: DbSession,
    at: Now,
    session_id: int,
    principal: Principal = page_permission("rems:write"),
) -> Response:
    """Record answers, mark ready, or mark submitted (the button pressed says which)."""
    actor = actor_of(request, principal)
    action = str(form.get("action") or "")
    try:
        if action == "answers":
            forms.record_answers(
                session=session,
                actor=actor,
                settings=ctx.settings,
                session_id=session_id,
                answers=_answers(form),
                now=at,
            )
        elif action == "ready":
            forms.mark_ready(
                session=session, actor=actor, settings=ctx.settings, session_id=session_id, now=at
            )
        elif action == "submitted":
            forms.mark_submitted(
                session=session,
                actor=actor,
                settings=ctx.settings,
                session_id=session_id,
                submitted_on=_date(str(form.get("submitted_on") or ""), "submitted_on"),
                route=str(form.get("route") or ""),
                reference=str(form.get("reference") or ""),
                now=at,
            )
        else:
            raise InvalidInput("choose what to do: answers, ready or submitted")
    except KetacareError as exc:
        session.rollback()
        return _form_page(
            request, ctx, session, principal, session_id, at, error=str(exc), status_code=422
        )
    return RedirectResponse(f"/sessions/{session_id}/rems-form", status_code=303)


@router.get("/sessions/{session_id}/rems-form.pdf")
def form_pdf_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    session_id: int,
    principal: Principal = page_permission("rems:read"),
) -> Response:
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
