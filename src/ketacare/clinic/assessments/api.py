"""JSON routes of assessments and alerts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.assessments import schemas, service
from ketacare.core.instruments import IncompleteAnswers
from ketacare.web.answers import json_answer
from ketacare.web.deps import Ctx, DbSession, Now, actor_of, api_permission, ensure_patient_scope

router = APIRouter(prefix="/api/v1", tags=["assessments"])
PatientId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post(
    "/patients/{patient_id}/assessments", response_model=schemas.AssessmentResult, status_code=201
)
def create_assessment(
    request: Request,
    patient_id: PatientId,
    data: schemas.AssessmentCreate,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("assessment:write"),
) -> schemas.AssessmentResult | Response:
    """Score and record an instrument; safety flags alert the responsible clinician.

    A required item left blank is refused (422, problem+json with ``unanswered``: each
    item's id, number, label and allowed answers), nothing stored, unless the clinic
    accepts partial answers; the alerts the refused answers call for (a blank or
    positive PHQ-9 item 9) are raised all the same and listed in ``alerts``.
    """
    ensure_patient_scope(principal, "assessment:write", patient_id)
    actor = actor_of(request, principal)
    try:
        row, alerts = service.record_assessment(
            session=session,
            actor=actor,
            patient_id=patient_id,
            instrument_id=data.instrument,
            answers=data.answers,
            context=data.context,
            source="patient" if principal.role == "patient" else "staff",
            now=at,
            accept_partial=ctx.settings.accept_partial_questionnaires,
        )
    except IncompleteAnswers as exc:
        session.rollback()
        raised = service.refuse_incomplete(
            session=session, actor=actor, patient_id=patient_id, error=exc, now=at
        )
        return incomplete_problem(exc, raised)
    return schemas.AssessmentResult(
        assessment=schemas.AssessmentRead.model_validate(row),
        alerts=[schemas.AlertRead.model_validate(a) for a in alerts],
    )


def incomplete_problem(exc: IncompleteAnswers, alerts: list[object]) -> Response:
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
    request: Request,
    patient_id: PatientId,
    session: DbSession,
    at: Now,
    instrument: Annotated[str | None, Query(max_length=40)] = None,
    principal: Principal = api_permission("assessment:read"),
) -> list[object]:
    """A patient's assessments, newest first."""
    ensure_patient_scope(principal, "assessment:read", patient_id)
    return list(
        service.list_assessments(
            session=session,
            actor=actor_of(request, principal),
            patient_id=patient_id,
            now=at,
            instrument_id=instrument,
        )
    )


@router.get("/alerts", response_model=list[schemas.AlertRead])
def list_alerts(
    session: DbSession,
    mine: bool = True,
    principal: Principal = api_permission("alert:read"),
) -> list[object]:
    """Open safety alerts (addressed to me or to no one in particular, unless mine=false)."""
    return list(service.open_alerts(session=session, user_id=principal.user_id if mine else None))


@router.post("/alerts/{alert_id}/acknowledge", response_model=schemas.AlertRead)
def acknowledge_alert(
    request: Request,
    alert_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    data: schemas.Acknowledge,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("alert:acknowledge"),
) -> object:
    """Close an alert, saying what was done."""
    return service.acknowledge(
        session=session,
        actor=actor_of(request, principal),
        alert_id=alert_id,
        action=data.action,
        now=at,
    )
