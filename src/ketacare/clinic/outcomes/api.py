"""JSON routes of outcomes: the outcome panel's data and booster decisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.outcomes import boosters, panel, schemas
from ketacare.clinic.outcomes.policy import booster_rules
from ketacare.web.deps import Ctx, DbSession, Now, actor_of, api_permission, ensure_patient_scope

router = APIRouter(prefix="/api/v1", tags=["outcomes"])
PatientId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/patients/{patient_id}/outcomes", response_model=schemas.OutcomePanel)
def patient_outcomes(
    request: Request,
    patient_id: PatientId,
    session: DbSession,
    ctx: Ctx,
    at: Now,
    principal: Principal = api_permission("outcome:read"),
) -> schemas.OutcomePanel:
    """Scores over sessions, change from baseline, definitions met, doses, status line,
    booster suggestions and the decisions on them."""
    ensure_patient_scope(principal, "outcome:read", patient_id)
    return panel.outcome_panel(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        now=at,
        zone=ctx.settings.zone,
        loss_confirmations=ctx.settings.outcome_loss_confirmations,
        booster_rules=booster_rules(ctx.settings),
    )


@router.get("/patients/{patient_id}/booster-decisions", response_model=list[schemas.DecisionView])
def list_booster_decisions(
    request: Request,
    patient_id: PatientId,
    session: DbSession,
    ctx: Ctx,
    at: Now,
    principal: Principal = api_permission("outcome:read"),
) -> list[schemas.DecisionView]:
    """Every decision on the patient's booster suggestions, superseded ones included."""
    ensure_patient_scope(principal, "outcome:read", patient_id)
    rows = boosters.read_decisions(
        session=session, actor=actor_of(request, principal), patient_id=patient_id, now=at
    )
    return [panel.decision_view(r, ctx.settings.zone) for r in rows]


@router.post(
    "/patients/{patient_id}/booster-decisions",
    response_model=schemas.DecisionView,
    status_code=201,
)
def decide_booster(
    request: Request,
    patient_id: PatientId,
    data: schemas.DecisionCreate,
    session: DbSession,
    ctx: Ctx,
    at: Now,
    principal: Principal = api_permission("plan:write"),
) -> schemas.DecisionView:
    """Accept (optional note) or dismiss (reason required) the booster suggested by a score.

    409 when no booster is suggested on the measure now, when a newer score has replaced
    the one named, or when the suggestion is already decided (name the standing decision
    in ``supersedes`` to correct it).
    """
    row = boosters.decide(
        session=session,
        actor=actor_of(request, principal),
        patient_id=patient_id,
        measure=data.measure,
        assessment_id=data.assessment_id,
        decision=data.decision,
        note=data.note,
        supersedes=data.supersedes,
        now=at,
        zone=ctx.settings.zone,
        loss_confirmations=ctx.settings.outcome_loss_confirmations,
        booster_rules=booster_rules(ctx.settings),
    )
    return panel.decision_view(row, ctx.settings.zone)
