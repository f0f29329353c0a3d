"""Pages of outcomes: a patient's booster suggestions, the decisions on them, and the form.

The chart's outcome panel shows a pending suggestion with accept and dismiss forms that
post here; this page lists every decision (superseded ones too), the plans' booster
policy text and the correction form. A refused decision comes back here with the reason.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.accounts.service import Principal
from ketacare.clinic.outcomes import boosters, panel
from ketacare.clinic.outcomes.policy import booster_rules
from ketacare.clinic.outcomes.record import gather
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.plans.orm import Plan
from ketacare.core.errors import InvalidInput, KetacareError
from ketacare.infra.errors import status_for
from ketacare.web.deps import (
    Ctx,
    DbSession,
    FormFields,
    Now,
    actor_of,
    ensure_patient_scope,
    page_permission,
)
from ketacare.web.render import optional_int, page

router = APIRouter(include_in_schema=False)

FORM_FIELDS = ("measure", "assessment_id", "decision", "note", "supersedes")
#: plans whose booster policy text still guides the team
_LIVE_PLANS = ("draft", "awaiting_cosign", "signed", "active")


def _booster_page(
    request: Request,
    ctx: Ctx,
    session: Session,
    principal: Principal,
    patient_id: int,
    at: Any,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    patient = get_patient(session=session, patient_id=patient_id)
    rows = boosters.read_decisions(
        session=session, actor=actor_of(request, principal), patient_id=patient_id, now=at
    )
    zone = ctx.settings.zone
    rules = booster_rules(ctx.settings)
    record = gather(session=session, patient_id=patient_id, now=at)
    built = panel.build_panel(
        record=record,
        now=at,
        zone=zone,
        loss_confirmations=ctx.settings.outcome_loss_confirmations,
        booster_rules=rules,
        decisions=rows,
    )
    plans = session.scalars(
        select(Plan)
        .where(
            Plan.patient_id == patient_id,
            Plan.status.in_(_LIVE_PLANS),
            Plan.booster_policy.is_not(None),
        )
        .order_by(Plan.id)
    ).all()
    return page(
        request,
        ctx,
        "outcomes/booster.html",
        {
            "patient": patient,
            "status": built.status,
            "boosters": built.boosters,
            "decisions": [panel.decision_view(r, zone) for r in reversed(rows)],
            "rules_set": bool(rules),
            "plans": plans,
            "error": error,
            "form": form or {},
        },
        status_code=status_code,
    )


@router.get("/patients/{patient_id}/booster", response_class=HTMLResponse)
def booster_page(
    request: Request,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    principal: Principal = page_permission("outcome:read"),
) -> Response:
    """The patient's booster suggestions and every decision taken on them."""
    ensure_patient_scope(principal, "outcome:read", patient_id)
    return _booster_page(request, ctx, session, principal, patient_id, at)


@router.post("/patients/{patient_id}/booster", response_class=HTMLResponse)
def booster_decide(
    request: Request,
    form: FormFields,
    ctx: Ctx,
    session: DbSession,
    at: Now,
    patient_id: int,
    principal: Principal = page_permission("plan:write"),
) -> Response:
    """Accept or dismiss a suggestion (or correct a decision); back to the chart when done."""
    get_patient(session=session, patient_id=patient_id)
    values = {k: str(form.get(k) or "").strip() for k in FORM_FIELDS}
    try:
        assessment = optional_int(values["assessment_id"], "assessment_id")
        if assessment is None:
            raise InvalidInput(
                "assessment_id is missing: decide from the suggestion shown on the chart"
            )
        boosters.decide(
            session=session,
            actor=actor_of(request, principal),
            patient_id=patient_id,
            measure=values["measure"],
            assessment_id=assessment,
            decision=values["decision"],
            note=values["note"] or None,
            supersedes=optional_int(values["supersedes"], "supersedes"),
            now=at,
            zone=ctx.settings.zone,
            loss_confirmations=ctx.settings.outcome_loss_confirmations,
            booster_rules=booster_rules(ctx.settings),
        )
    except KetacareError as exc:
        session.rollback()
        return _booster_page(
            request,
            ctx,
            session,
            principal,
            patient_id,
            at,
            error=str(exc),
            form=values,
            status_code=status_for(exc)[0],
        )
    return RedirectResponse(f"/patients/{patient_id}#outcomes-h", status_code=303)
