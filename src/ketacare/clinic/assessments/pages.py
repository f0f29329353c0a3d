"""Pages of assessments: the phone-friendly form, the result with its alerts, the inbox."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.assessments import service
from ketacare.clinic.assessments.service import SELF_REPORT
from ketacare.clinic.audit import service as audit
from ketacare.clinic.patients.service import get_patient
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.core.instruments import (
    IncompleteAnswers,
    Instrument,
    get_instrument,
    incomplete_label,
    list_instruments,
)
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

CONTEXTS = ("intake", "pre_session", "post_session", "follow_up", "session")


def _answers_from_form(instrument: Instrument, form: Any) -> dict[str, object]:
    answers: dict[str, object] = {}
    for item in instrument.items:
        raw = form.get(f"item_{item.id}")
        if raw is None or str(raw).strip() == "":
            answers[item.id] = None
        elif item.kind == "boolean":
            if raw not in ("yes", "no"):
                raise InvalidInput(f"item {item.id}: answer 'yes' or 'no'")
            answers[item.id] = raw == "yes"
        else:
            try:
                answers[item.id] = int(str(raw))
            except ValueError:
                raise InvalidInput(f"item {item.id}: {raw!r} is not a whole number") from None
    return answers


def incomplete_of(row: Any) -> str:
    """The visible flag of a stored result with required items blank ('' when complete)."""
    if not row.missing:
        return ""
    try:
        return incomplete_label(get_instrument(row.instrument_id), row.missing)
    except KetacareError:
        return f"incomplete: items {', '.join(row.missing)} unanswered"


def _context(value: str) -> str:
    if value not in CONTEXTS:
        raise InvalidInput(f"context {value!r}: allowed {', '.join(CONTEXTS)}")
    return value


def _available(principal: Principal) -> list[Instrument]:
    items = list_instruments()
    if principal.role == "patient":
        return [i for i in items if i.id in SELF_REPORT]
    # Instruments of raw readings (NEWS2) are scored from the vitals charted at the
    # chair, not filled in as a questionnaire.
    return [
        i
        for i in items
        if i.scoring.method != "not_available"
        and not any(item.kind == "measurement" for item in i.items)
    ]


@router.get("/patients/{patient_id}/assessments", response_class=HTMLResponse)
def assessments_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    principal: Principal = page_permission("assessment:read"),
) -> Response:
    ensure_patient_scope(principal, "assessment:read", patient_id)
    patient = get_patient(session=session, patient_id=patient_id)
    rows = service.list_assessments(
        session=session, actor=actor_of(request, principal), patient_id=patient_id, now=at
    )
    return page(
        request,
        ctx,
        "assessments/list.html",
        {
            "patient": patient,
            "rows": rows,
            "incomplete": {r.id: incomplete_of(r) for r in rows},
            "instruments": _available(principal),
            "self_report": SELF_REPORT,
        },
    )


def _form(
    request: Request,
    ctx: Ctx,
    patient: Any,
    instrument: Instrument,
    values: dict[str, object] | None = None,
    error: str | None = None,
    status_code: int = 200,
    refused: IncompleteAnswers | None = None,
    alerts: list[Any] | None = None,
) -> Response:
    return page(
        request,
        ctx,
        "assessments/form.html",
        {
            "patient": patient,
            "instrument": instrument,
            "values": values or {},
            "error": error,
            "unanswered": refused.unanswered if refused else (),
            "alerts": alerts or [],
        },
        status_code=status_code,
    )


@router.get("/patients/{patient_id}/assessments/new/{instrument_id}", response_class=HTMLResponse)
def assessment_form(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    patient_id: int,
    instrument_id: str,
    principal: Principal = page_permission("assessment:write"),
) -> Response:
    ensure_patient_scope(principal, "assessment:write", patient_id)
    patient = get_patient(session=session, patient_id=patient_id)
    instrument = get_instrument(instrument_id)
    return _form(request, ctx, patient, instrument)


@router.post("/patients/{patient_id}/assessments/new/{instrument_id}", response_class=HTMLResponse)
def submit_assessment(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    instrument_id: str,
    principal: Principal = page_permission("assessment:write"),
) -> Response:
    ensure_patient_scope(principal, "assessment:write", patient_id)
    patient = get_patient(session=session, patient_id=patient_id)
    instrument = get_instrument(instrument_id)
    values: dict[str, object] = {}
    actor = actor_of(request, principal)
    try:
        values = _answers_from_form(instrument, form)
        row, alerts = service.record_assessment(
            session=session,
            actor=actor,
            patient_id=patient_id,
            instrument_id=instrument.id,
            answers=values,
            context=_context(str(form.get("context") or "intake")),
            source="patient" if principal.role == "patient" else "staff",
            now=at,
            accept_partial=ctx.settings.accept_partial_questionnaires,
        )
    except IncompleteAnswers as exc:
        # nothing kept; the answers given are shown again, the blanks named
        session.rollback()
        raised = service.refuse_incomplete(
            session=session, actor=actor, patient_id=patient_id, error=exc, now=at
        )
        return _form(
            request, ctx, patient, instrument, values, str(exc), 422, refused=exc, alerts=raised
        )
    except KetacareError as exc:
        session.rollback()
        return _form(request, ctx, patient, instrument, values, str(exc), status_code=422)
    return page(
        request,
        ctx,
        "assessments/result.html",
        {
            "patient": patient,
            "instrument": instrument,
            "row": row,
            "alerts": alerts,
            "incomplete": incomplete_of(row),
            "unanswered_kinds": sorted(service.UNANSWERED_FLAGS),
            "crisis_message": ctx.settings.crisis_message,
            "responsible": service.responsible_name(
                session=session, user_id=patient.responsible_clinician_id
            ),
        },
    )


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    principal: Principal = page_permission("alert:read"),
) -> Response:
    everyone = request.query_params.get("all") == "1"
    alerts = service.open_alerts(session=session, user_id=None if everyone else principal.user_id)
    for alert in alerts:
        audit.record(
            session=session,
            actor=actor_of(request, principal),
            action="read",
            resource_type="clinical_alert",
            resource_id=alert.id,
            patient_id=alert.patient_id,
            at=ctx.clock(),
        )
    patients = {a.patient_id: get_patient(session=session, patient_id=a.patient_id) for a in alerts}
    from ketacare.clinic.sessions.inbox import acknowledged_at_the_chair

    at_chair = {a.id for a in alerts if acknowledged_at_the_chair(session=session, alert=a)}
    return page(
        request,
        ctx,
        "assessments/alerts.html",
        {"alerts": alerts, "patients": patients, "at_chair": at_chair},
    )


@router.get("/alerts/count", response_class=HTMLResponse)
def alerts_count(
    session: DbSession, principal: Principal = page_permission("alert:read")
) -> Response:
    count = len(service.open_alerts(session=session, user_id=principal.user_id))
    return HTMLResponse(f'<span class="badge">{count}</span>' if count else "")


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge_page(
    request: Request,
    session: DbSession,
    at: Now,
    alert_id: int,
    action: Annotated[str, Form(max_length=2000)],
    principal: Principal = page_permission("alert:acknowledge"),
) -> Response:
    if len(action.strip()) < 3:
        raise InvalidInput("say what was done (at least 3 characters)")
    service.acknowledge(
        session=session,
        actor=actor_of(request, principal),
        alert_id=alert_id,
        action=action,
        now=at,
    )
    return RedirectResponse("/alerts", status_code=303)
