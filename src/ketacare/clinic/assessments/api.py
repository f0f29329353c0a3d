"""JSON routes of assessments and alerts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.assessments import schemas, service
from ketacare.web.deps import DbSession, Now, actor_of, api_permission, ensure_patient_scope

router = APIRouter(prefix="/api/v1", tags=["assessments"])
PatientId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post(
    "/patients/{patient_id}/assessments", response_model=schemas.AssessmentResult, status_code=201
)
def create_assessment(
    request: Request,
    patient_id: PatientId,
    data: schemas.AssessmentCreate,
    session: DbSession,
    at: Now,
    principal: Principal = api_permission("assessment:write"),
) -> schemas.AssessmentResult:
    """Score and record an instrument; safety flags alert the responsible clinician."""
    ensure_patient_scope(principal, "assessment:write", patient_id)
    row, alerts = service.record_assessment(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        instrument_id=data.instrument,
        answers=data.answers,
        context=data.context,
        source="patient" if principal.role == "patient" else "staff",
        now=at,
    )
    return schemas.AssessmentResult(
        assessment=schemas.AssessmentRead.model_validate(row),
        alerts=[schemas.AlertRead.model_validate(a) for a in alerts],
    )


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
