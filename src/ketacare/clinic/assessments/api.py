"""JSON routes of assessments and alerts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from ketacare.clinic.assessments import schemas, service
from ketacare.core.instruments import IncompleteAnswers
from ketacare.web.answers import json_answer
from ketacare.web.deps import Call, Id, api_request

router = APIRouter(prefix="/api/v1", tags=["assessments"])


@router.post(
    "/patients/{patient_id}/assessments", response_model=schemas.AssessmentResult, status_code=201
)
def create_assessment(
    patient_id: Id,
    data: schemas.AssessmentCreate,
    call: Call = api_request("assessment:write"),
) -> schemas.AssessmentResult | Response:
    """Score and record an instrument; safety flags alert the responsible clinician.

    A required item left blank is refused (422, problem+json with ``unanswered``: each
    item's id, number, label and allowed answers), nothing stored, unless the clinic
    accepts partial answers; the alerts the refused answers call for (a blank or
    positive PHQ-9 item 9) are raised all the same and listed in ``alerts``.
    """
    call.own(patient_id)
    actor = call.actor
    try:
        row, alerts = service.record_assessment(
            session=call.session,
            actor=actor,
            patient_id=patient_id,
            instrument_id=data.instrument,
            answers=data.answers,
            context=data.context,
            source="patient" if call.principal.role == "patient" else "staff",
            now=call.now,
            accept_partial=call.settings.accept_partial_questionnaires,
        )
    except IncompleteAnswers as exc:
        call.session.rollback()
        raised = service.refuse_incomplete(
            session=call.session, actor=actor, patient_id=patient_id, error=exc, now=call.now
        )
        return incomplete_problem(exc, raised)
    return schemas.AssessmentResult(
        assessment=schemas.AssessmentRead.model_validate(row),
        alerts=[schemas.AlertRead.model_validate(a) for a in alerts],
    )


def incomplete_problem(exc: IncompleteAnswers, alerts: Sequence[object]) -> Response:
    """The refusal as ``application/problem+json`` (RFC 9457 with extension members)."""
    body = {
        "type": "about:blank",
        "title": "Invalid input",
        "status": 422,
        "detail": str(exc),
        "instrument": exc.instrument.id,
        "unanswered": [u.to_dict() for u in exc.unanswered],
        "alerts": [schemas.AlertRead.model_validate(a).model_dump(mode="json") for a in alerts],
    }
    answer = json_answer(body, status_code=422)
    answer.headers["content-type"] = "application/problem+json"
    return answer


@router.get("/patients/{patient_id}/assessments", response_model=list[schemas.AssessmentRead])
def list_assessments(
    patient_id: Id,
    instrument: Annotated[str | None, Query(max_length=40)] = None,
    call: Call = api_request("assessment:read"),
) -> list[object]:
    """A patient's assessments, newest first."""
    call.own(patient_id)
    return list(call.do(service.list_assessments, patient_id=patient_id, instrument_id=instrument))


@router.get("/alerts", response_model=list[schemas.AlertRead])
def list_alerts(
    mine: bool = True,
    call: Call = api_request("alert:read"),
) -> list[object]:
    """Open safety alerts (addressed to me or to no one in particular, unless mine=false)."""
    return list(
        service.open_alerts(session=call.session, user_id=call.principal.user_id if mine else None)
    )


@router.post("/alerts/{alert_id}/acknowledge", response_model=schemas.AlertRead)
def acknowledge_alert(
    alert_id: Id,
    data: schemas.Acknowledge,
    call: Call = api_request("alert:acknowledge"),
) -> object:
    """Close an alert, saying what was done."""
    return call.do(service.acknowledge, alert_id=alert_id, action=data.action)
