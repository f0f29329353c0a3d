"""Pages of dosing sessions: the chair view (tablet-first, live), the nurses' board, summaries."""

from __future__ import annotations

import types
import typing
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from ketacare.clinic.assessments.pages import open_alerts_shown
from ketacare.clinic.documents import Letterhead
from ketacare.clinic.followup import schedules
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.plans import exposure as exposures
from ketacare.clinic.plans import service as plans
from ketacare.clinic.sessions import service
from ketacare.clinic.sessions.board import board
from ketacare.clinic.sessions.summary import booked_at, summary_pdf
from ketacare.clinic.sessions.view import view
from ketacare.clinic.sessions.words import OBSERVED_NAMES, clinical_message, entry_lines
from ketacare.clinic.stock import accounting as stock
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.core.instruments import get_instrument
from ketacare.core.sessions import EVENT_TYPES, STOP_REASONS, VITALS
from ketacare.core.sessions.events import (
    CONSCIOUSNESS_LEVELS,
    MEDICATION_PURPOSES,
    Medication,
)
from ketacare.core.sessions.followthrough import not_carried_out
from ketacare.core.sessions.news2 import news2_rules
from ketacare.core.terminology.drugs import clean_drug_text
from ketacare.web.page_call import PageCall, Refusal, mapped_status, page_call
from ketacare.web.render import optional_int

router = APIRouter(include_in_schema=False)
SKIP = {"kind", "at", "by", "seq", "override", "setup", "replacement", "answers"}


def _number(kind: str, name: str, text: str, integer: bool) -> float | int:
    try:
        return int(text) if integer else float(text.replace(",", "."))
    except ValueError:
        raise InvalidInput(f"{kind} {name}: {text!r} is not a number") from None


YES, NO = ("yes", "true", "on", "1"), ("no", "false", "off", "0")


def _yes_no(kind: str, name: str, raw: str) -> bool:
    """A yes/no answer; anything else is refused (never read as "no")."""
    if raw.lower() in YES:
        return True
    if raw.lower() in NO:
        return False
    raise InvalidInput(
        f"{kind} {name}: {raw[:40]!r} is not an answer: allowed yes or no (or leave it unanswered)"
    )


def event_from_form(kind: str, form: Any) -> dict[str, Any]:
    """A form's fields as an event dict, typed by the event's own fields."""
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise InvalidInput(f"unknown entry {kind!r}")
    data: dict[str, Any] = {"kind": kind}
    for name, hint in typing.get_type_hints(cls).items():
        if name in SKIP:
            continue
        raw = str(form.get(name) or "").strip()
        if raw == "":
            continue
        args = set(typing.get_args(hint)) if isinstance(hint, types.UnionType) else {hint}
        if bool in args:
            data[name] = _yes_no(kind, name, raw)
        elif int in args:
            data[name] = _number(kind, name, raw, True)
        elif float in args:
            data[name] = _number(kind, name, raw, False)
        else:
            data[name] = raw
    if kind == "discharge_score":
        instrument = get_instrument("padss_ketamine")
        answers: dict[str, object] = {}
        for item in instrument.items:
            raw = str(form.get(f"item_{item.id}") or "")
            if raw:
                answers[item.id] = (raw == "yes") if item.kind == "boolean" else int(raw)
        data["answers"] = answers
    return data


def _chair(
    call: PageCall, session_id: int, refused: Refusal | None = None, *, partial: bool = False
) -> Response:
    session, at, settings = call.session, call.now, call.settings
    error = refused.message if refused else None
    row = service.get_session(session=session, session_id=session_id)
    patient = get_patient(session=session, patient_id=row.patient_id)
    state = service.state_of(session=session, session_id=session_id)
    v = view(row=row, state=state, now=at)
    alert_words = {a["id"]: a["message"] for a in v["alerts"]}
    if error is not None:
        error = clinical_message(error, zone=settings.zone, now=at, alerts=alert_words)
    live = None
    try:
        from ketacare.core.pharmacology import Patient as PkPatient
        from ketacare.core.pharmacology import load_model
        from ketacare.core.sessions import live_concentration

        plan = plans.get_plan(session=session, plan_id=row.plan_id)
        models = exposures.exposure_models(settings=settings, protocol_id=plan.protocol_id)
        if models and state.dosing_started_at is not None:
            live = live_concentration(
                state.events,
                model=load_model(model_id=models[0].id),
                patient=PkPatient(weight_kg=plan.weight_kg),
                at=at,
            )
    except KetacareError:
        live = None
    if not partial:
        call.do(service.record_read, row=row)
    alerts = open_alerts_shown(call, row.patient_id, except_session=row.id, audited=not partial)
    # questionnaires due now, so that the chair asks for them before the dose (a
    # pre-session one closes when dosing starts: not read again on every refresh after)
    questionnaires = (
        [
            status
            for found in call.do(
                schedules.due_for_patient, patient_id=row.patient_id, audited=not partial
            )
            for status in found.outstanding
        ]
        if state.dosing_started_at is None
        else []
    )
    screening = (
        service.screening_for_session(
            session=session, patient_id=row.patient_id, state=state, at=at
        )
        if state.setup is not None
        else None
    )
    given = [e for e in state.effective if isinstance(e, Medication)]  # amendments applied
    planned = [
        (a, [e for e in given if clean_drug_text(e.drug) == clean_drug_text(a.drug)])
        for a in plans.adjuncts_of(session=session, plan_id=row.plan_id)
    ]
    vitals = [{"at": e.at.isoformat(), **{k: getattr(e, k) for k in VITALS}} for e in state.vitals]
    thresholds = (
        [
            {"vital": t.vital, "value": t.value, "direction": t.direction}
            for t in state.setup.thresholds
            if t.value is not None
        ]
        if state.setup
        else []
    )
    return call.render(
        "sessions/partial.html" if partial else "sessions/chair.html",
        {
            "row": row,
            "patient": patient,
            "v": v,
            "state": state,
            "live": live,
            "error": error,
            "stop_reasons": STOP_REASONS,
            "padss": get_instrument("padss_ketamine"),
            "chart": {
                "vitals": vitals,
                "thresholds": thresholds,
                "labels": OBSERVED_NAMES,
            },
            "vitals_rows": [
                (e, next((n for n in state.news2 if n.seq == e.seq), None)) for e in state.vitals
            ],
            "news2_rules": news2_rules(),
            "consciousness_levels": CONSCIOUSNESS_LEVELS,
            "screening": screening,
            "questionnaires_due": questionnaires,
            "planned_medicines": planned,
            **alerts,
            "not_carried_out": not_carried_out(state),
            "record_check": service.RECORD_CHECK,
            "entries": entry_lines(state),
            "medication_purposes": MEDICATION_PURPOSES,
            "discharge_reasons": [
                clinical_message(r, zone=settings.zone, now=at, alerts=alert_words)
                for r in v["discharge"]["reasons"]
            ],
            # a refused entry: its form shows again with what was typed, as text
            "entered": call.posted() if refused else {},
            "entered_items": [str(i) for i in call.form.getlist("item")] if refused else [],
        },
        status_code=refused.status if refused else 200,
    )


@router.get("/sessions/{session_id}", response_class=HTMLResponse)
def chair_view(
    session_id: int, partial: bool = False, call: PageCall = page_call("session:read")
) -> Response:
    return _chair(call, session_id, partial=partial)


def _stale_or_unprocessable(error: Exception) -> int:
    """Someone else recorded first: 409 (the chair view again shows what they did)."""
    return 409 if "someone else" in str(error) else 422


@router.post("/sessions/{session_id}/record", response_class=HTMLResponse)
def record_page(session_id: int, call: PageCall = page_call("session:write")) -> Response:
    form = call.form

    def act() -> None:
        kind = call.text("kind")
        seq = optional_int(call.text("expected_seq"), "expected_seq")
        if seq is None:
            raise InvalidInput("expected_seq is missing: reload the page")
        if kind == "pre_dose_checks":
            items = [str(i) for i in form.getlist("item")]
            if not items:
                raise InvalidInput("tick the checks that were done")
            for item in items:
                detail = call.text(f"detail_{item}")
                data = {"kind": "pre_dose_check", "item": item, "ok": True, "detail": detail}
                # controlled-substance stock: the lot checked is a lot drawn for the session
                stock.refuse_chair_entry(
                    session=call.session, dosing_session_id=session_id, event=data, now=call.now
                )
                state = call.do(service.record, session_id=session_id, data=data, expected_seq=seq)
                seq = state.last_seq
        else:
            event = event_from_form(kind, form)
            # controlled-substance stock: no close while drug is unaccounted for
            stock.refuse_chair_entry(
                session=call.session, dosing_session_id=session_id, event=event, now=call.now
            )
            call.do(service.record, session_id=session_id, data=event, expected_seq=seq)

    return call.attempt(
        act,
        done=f"/sessions/{session_id}",
        again=lambda refused: _chair(call, session_id, refused),
        status=_stale_or_unprocessable,
    )


@router.post("/plans/{plan_id}/sessions/open")
def open_page(plan_id: int, call: PageCall = page_call("session:write")) -> Response:
    def act() -> Any:
        number = optional_int(call.text("session_number"), "session number")
        if number is None:
            raise InvalidInput("choose the session number")
        appointment = optional_int(call.text("appointment_id"), "appointment")
        return call.do(
            service.open_session,
            settings=call.settings,
            plan_id=plan_id,
            session_number=number,
            appointment_id=appointment,
            off_schedule_reason=call.text("off_schedule_reason") or None,
            chair_id=optional_int(call.text("chair_id"), "chair"),
            chair_required=True,
        )

    return call.attempt(
        act,
        done=lambda row: call.redirect(f"/sessions/{row.id}"),
        again=lambda refused: call.render(
            "error.html",
            {
                "title": "Session not opened",
                "detail": clinical_message(refused.message, zone=call.settings.zone, now=call.now),
                "status": refused.status,
                "back": f"/plans/{plan_id}",
                "back_label": f"Back to plan {plan_id}",
            },
            status_code=refused.status,
        ),
        status=mapped_status,  # as the API answers it (409: that session is open or given)
    )


@router.get("/board", response_class=HTMLResponse)
def board_page(partial: bool = False, call: PageCall = page_call("session:read")) -> Response:
    at = call.now
    rows = [
        (r, view(row=r.session, state=r.state, now=at, include_events=False))
        for r in call.do(board)
    ]
    return call.render(
        "sessions/board_rows.html" if partial else "sessions/board.html", {"rows": rows}
    )


@router.get("/sessions/{session_id}/summary", response_class=HTMLResponse)
def summary_page(session_id: int, call: PageCall = page_call("session:read")) -> Response:
    session, at = call.session, call.now
    row = service.get_session(session=session, session_id=session_id)
    state = service.state_of(session=session, session_id=session_id)
    call.do(service.record_summary_read, row=row)
    return call.render(
        "sessions/summary.html",
        {
            "row": row,
            "state": state,
            "v": view(row=row, state=state, now=at),
            "patient": get_patient(session=session, patient_id=row.patient_id),
            "entries": entry_lines(state),
            "booked_at": booked_at(session=session, row=row),
        },
    )


@router.get("/sessions/{session_id}/summary.pdf")
def summary_pdf_page(session_id: int, call: PageCall = page_call("session:read")) -> Response:
    session, at = call.session, call.now
    row = service.get_session(session=session, session_id=session_id)
    state = service.state_of(session=session, session_id=session_id)
    patient = get_patient(session=session, patient_id=row.patient_id)
    call.do(service.record_summary_read, row=row, export="pdf")
    data = summary_pdf(
        booked=booked_at(session=session, row=row),
        row=row,
        state=state,
        patient=patient,
        view=view(row=row, state=state, now=at),
        zone=call.settings.zone,
        generated_at=at,
        letterhead=Letterhead.of(call.settings),
    )
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="session-{row.id}.pdf"'},
    )
