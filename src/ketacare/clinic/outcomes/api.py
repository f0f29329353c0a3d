"""JSON routes of outcomes: the outcome panel's data and booster decisions."""

from __future__ import annotations

from fastapi import APIRouter

from ketacare.clinic.outcomes import boosters, panel, schemas
from ketacare.clinic.outcomes.policy import booster_rules
from ketacare.web.deps import Call, Id, api_request

router = APIRouter(prefix="/api/v1", tags=["outcomes"])


@router.get("/patients/{patient_id}/outcomes", response_model=schemas.OutcomePanel)
def patient_outcomes(
    patient_id: Id,
    call: Call = api_request("outcome:read"),
) -> schemas.OutcomePanel:
    """Scores over sessions, change from baseline, definitions met, doses, status line,
    booster suggestions and the decisions on them."""
    call.own(patient_id)
    return call.do(
        panel.outcome_panel,
        patient_id=patient_id,
        zone=call.settings.zone,
        loss_confirmations=call.settings.outcome_loss_confirmations,
        booster_rules=booster_rules(call.settings),
    )


@router.get("/patients/{patient_id}/booster-decisions", response_model=list[schemas.DecisionView])
def list_booster_decisions(
    patient_id: Id,
    call: Call = api_request("outcome:read"),
) -> list[schemas.DecisionView]:
    """Every decision on the patient's booster suggestions, superseded ones included."""
    call.own(patient_id)
    rows = call.do(boosters.read_decisions, patient_id=patient_id)
    return [panel.decision_view(r, call.settings.zone) for r in rows]


@router.post(
    "/patients/{patient_id}/booster-decisions",
    response_model=schemas.DecisionView,
    status_code=201,
)
def decide_booster(
    patient_id: Id,
    data: schemas.DecisionCreate,
    call: Call = api_request("plan:write"),
) -> schemas.DecisionView:
    """Accept (optional note) or dismiss (reason required) the booster suggested by a score.

    409 when no booster is suggested on the measure now, when a newer score has replaced
    the one named, or when the suggestion is already decided (name the standing decision
    in ``supersedes`` to correct it).
    """
    row = call.do(
        boosters.decide,
        patient_id=patient_id,
        measure=data.measure,
        assessment_id=data.assessment_id,
        decision=data.decision,
        note=data.note,
        supersedes=data.supersedes,
        zone=call.settings.zone,
        loss_confirmations=call.settings.outcome_loss_confirmations,
        booster_rules=booster_rules(call.settings),
    )
    return panel.decision_view(row, call.settings.zone)
