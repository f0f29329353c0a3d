"""Pages of assessments: the phone-friendly form, the result with its alerts, the inbox."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.assessments import schemas, service
from ketacare.clinic.assessments.service import SELF_REPORT
from ketacare.clinic.followup import senders
from ketacare.clinic.patients.service import get_patient
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.core.instruments import (
    IncompleteAnswers,
    Instrument,
    get_instrument,
    incomplete_label,
    list_instruments,
)
from ketacare.infra.permissions import allowed
from ketacare.web.page_call import PageCall, Refusal, page_call

router = APIRouter(include_in_schema=False)


def open_alerts_shown(
    call: PageCall, patient_id: int, *, except_session: int | None = None, audited: bool = True
) -> dict[str, Any]:
    """The patient's open alerts and who each is for, as the shared partial
    (``assessments/_patient_alerts.html``) shows them to a reader allowed to read alerts;
    nothing for anyone else (a patient's own pages never list them)."""
    if not allowed("alert:read", call.principal.role):
        return {"patient_alerts": [], "alert_routes": {}}
    alerts = call.do(
        service.patient_open_alerts,
        patient_id=patient_id,
        except_session=except_session,
        audited=audited,
    )
    routes = {
        a.id: service.responsible_name(session=call.session, user_id=a.recipient_id) for a in alerts
    }
    return {"patient_alerts": alerts, "alert_routes": routes}


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
def assessments_page(patient_id: int, call: PageCall = page_call("assessment:read")) -> Response:
    call.own(patient_id)
    patient = get_patient(session=call.session, patient_id=patient_id)
    rows = call.do(service.list_assessments, patient_id=patient_id)
    return call.render(
        "assessments/list.html",
        {
            "patient": patient,
            "rows": rows,
            "incomplete": {r.id: incomplete_of(r) for r in rows},
            "instruments": _available(call.principal),
            "self_report": SELF_REPORT,
            "sendable": senders.sendable(call.settings),
        },
    )


def _form(
    call: PageCall,
    patient: Any,
    instrument: Instrument,
    values: dict[str, object] | None = None,
    refused: Refusal | None = None,
    alerts: list[Any] | None = None,
) -> Response:
    incomplete = refused.error if refused and isinstance(refused.error, IncompleteAnswers) else None
    return call.render(
        "assessments/form.html",
        {
            "patient": patient,
            "instrument": instrument,
            "values": values or {},
            "unanswered": incomplete.unanswered if incomplete else (),
            "alerts": alerts or [],
        },
        refused=refused,
    )


@router.get("/patients/{patient_id}/assessments/new/{instrument_id}", response_class=HTMLResponse)
def assessment_form(
    patient_id: int, instrument_id: str, call: PageCall = page_call("assessment:write")
) -> Response:
    call.own(patient_id)
    patient = get_patient(session=call.session, patient_id=patient_id)
    return _form(call, patient, get_instrument(instrument_id))


def result_values(*, session: Session, patient: Any, row: Any, alerts: list[Any]) -> dict[str, Any]:
    """What a result page shows of a recorded questionnaire: its flags, the alerts it
    raised and who will see them (the crisis contacts are on every page)."""
    return {
        "row": row,
        "alerts": alerts,
        "incomplete": incomplete_of(row),
        "unanswered_kinds": sorted(service.UNANSWERED_FLAGS),
        "responsible": service.responsible_name(
            session=session, user_id=patient.responsible_clinician_id
        ),
    }


@router.post("/patients/{patient_id}/assessments/new/{instrument_id}", response_class=HTMLResponse)
def submit_assessment(
    patient_id: int, instrument_id: str, call: PageCall = page_call("assessment:write")
) -> Response:
    call.own(patient_id)
    patient = get_patient(session=call.session, patient_id=patient_id)
    instrument = get_instrument(instrument_id)
    values: dict[str, object] = {}

    def act() -> tuple[Any, list[Any]]:
        values.update(_answers_from_form(instrument, call.form))
        return call.do(
            service.record_assessment,
            patient_id=patient_id,
            instrument_id=instrument.id,
            answers=values,
            context=_context(call.text("context", "intake")),
            source="patient" if call.principal.role == "patient" else "staff",
            accept_partial=call.settings.accept_partial_questionnaires,
        )

    def again(refused: Refusal) -> Response:
        # nothing kept; the answers given are shown again, the blanks named
        raised = None
        if isinstance(refused.error, IncompleteAnswers):
            raised = call.do(service.refuse_incomplete, patient_id=patient_id, error=refused.error)
        return _form(call, patient, instrument, values, refused, alerts=raised)

    def done(recorded: tuple[Any, list[Any]]) -> Response:
        row, alerts = recorded
        shown = result_values(session=call.session, patient=patient, row=row, alerts=alerts)
        return call.render(
            "assessments/result.html", {"patient": patient, "instrument": instrument, **shown}
        )

    return call.attempt(act, done=done, again=again)


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(call: PageCall = page_call("alert:read")) -> Response:
    everyone = call.request.query_params.get("all") == "1"
    session = call.session
    alerts = service.read_open_alerts(
        session=session,
        actor=call.actor,
        user_id=None if everyone else call.principal.user_id,
        now=call.now,
    )
    patients = {a.patient_id: get_patient(session=session, patient_id=a.patient_id) for a in alerts}
    from ketacare.clinic.sessions.inbox import acknowledged_at_the_chair

    at_chair = {a.id for a in alerts if acknowledged_at_the_chair(session=session, alert=a)}
    # an empty inbox is no all-clear while alerts routed to others are open (a count only)
    others = 0 if everyone else len(service.open_alerts(session=session)) - len(alerts)
    return call.render(
        "assessments/alerts.html",
        {
            "alerts": alerts,
            "patients": patients,
            "at_chair": at_chair,
            "others": others,
            "chairs_behind": _chairs_behind(call),
        },
    )


def _chairs_behind(call: PageCall) -> list[tuple[Any, Any]]:
    """Sessions at a chair with a check overdue, or under the RCP's continuous monitoring
    after a NEWS2 of 7 or more: shown beside the alerts, so that a missed observation is
    seen by whoever watches this page, not only at the nurses' board."""
    from ketacare.clinic.sessions.board import board
    from ketacare.core.sessions import monitoring_schedule

    out = []
    for row in call.do(board):
        behind = monitoring_schedule(row.state, now=call.now).behind
        if behind:
            out.append((row, behind))
    return out


@router.get("/alerts/count", response_class=HTMLResponse)
def alerts_count(call: PageCall = page_call("alert:read")) -> Response:
    """The badge beside Alerts on every staff page (polled): open alerts, and the chairs
    behind on their observations, so a missed observation reaches whoever has a page
    open, not only whoever looks at the board."""
    from ketacare.clinic.sessions.board import behind_count

    count = len(service.open_alerts(session=call.session, user_id=call.principal.user_id))
    behind = behind_count(session=call.session, now=call.now)
    badge = f'<span class="badge">{count}</span>' if count else ""
    if behind:
        what = "chair is" if behind == 1 else "chairs are"
        badge += (
            f'<span class="badge behind" data-testid="badge-behind" title="{behind} {what} '
            f'behind on observations (overdue vitals or continuous monitoring)">{behind} behind'
            "</span>"
        )
    return HTMLResponse(badge)


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge_page(alert_id: int, call: PageCall = page_call("alert:acknowledge")) -> Response:
    data = call.parse(schemas.Acknowledge)
    call.do(service.acknowledge, alert_id=alert_id, action=data.action)
    return call.redirect("/alerts")
