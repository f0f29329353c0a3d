"""Pages of outcomes: a patient's booster suggestions, the decisions on them, and the form.

The chart's outcome panel shows a pending suggestion with accept and dismiss forms that
post here; this page lists every decision (superseded ones too), the plans' booster
policy text and the correction form. A refused decision comes back here with the reason.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from ketacare.clinic.outcomes import boosters, panel
from ketacare.clinic.outcomes.policy import booster_rules
from ketacare.clinic.outcomes.record import gather
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.plans.orm import Plan
from ketacare.core.errors import InvalidInput
from ketacare.web.page_call import PageCall, Refusal, mapped_status, page_call
from ketacare.web.render import optional_int

router = APIRouter(include_in_schema=False)

FORM_FIELDS = ("measure", "assessment_id", "decision", "note", "supersedes")
#: plans whose booster policy text still guides the team
_LIVE_PLANS = ("draft", "awaiting_cosign", "signed", "active")


def _booster_page(
    call: PageCall,
    patient_id: int,
    refused: Refusal | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    session, at, settings = call.session, call.now, call.settings
    patient = get_patient(session=session, patient_id=patient_id)
    rows = boosters.read_decisions(session=session, actor=call.actor, patient_id=patient_id, now=at)
    zone = settings.zone
    rules = booster_rules(settings)
    record = gather(session=session, patient_id=patient_id, now=at)
    built = panel.build_panel(
        record=record,
        now=at,
        zone=zone,
        loss_confirmations=settings.outcome_loss_confirmations,
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
    return call.render(
        "outcomes/booster.html",
        {
            "patient": patient,
            "status": built.status,
            "boosters": built.boosters,
            "decisions": [panel.decision_view(r, zone) for r in reversed(rows)],
            "rules_set": bool(rules),
            "plans": plans,
            "form": form or {},
        },
        refused=refused,
    )


@router.get("/patients/{patient_id}/booster", response_class=HTMLResponse)
def booster_page(patient_id: int, call: PageCall = page_call("outcome:read")) -> Response:
    """The patient's booster suggestions and every decision taken on them."""
    call.own(patient_id)
    return _booster_page(call, patient_id)


@router.post("/patients/{patient_id}/booster", response_class=HTMLResponse)
def booster_decide(patient_id: int, call: PageCall = page_call("plan:write")) -> Response:
    """Accept or dismiss a suggestion (or correct a decision); back to the chart when done."""
    get_patient(session=call.session, patient_id=patient_id)
    values = call.texts(FORM_FIELDS)

    def act() -> object:
        assessment = optional_int(values["assessment_id"], "assessment_id")
        if assessment is None:
            raise InvalidInput(
                "assessment_id is missing: decide from the suggestion shown on the chart"
            )
        return call.do(
            boosters.decide,
            patient_id=patient_id,
            measure=values["measure"],
            assessment_id=assessment,
            decision=values["decision"],
            note=values["note"] or None,
            supersedes=optional_int(values["supersedes"], "supersedes"),
            zone=call.settings.zone,
            loss_confirmations=call.settings.outcome_loss_confirmations,
            booster_rules=booster_rules(call.settings),
        )

    return call.attempt(
        act,
        done=f"/patients/{patient_id}#outcomes-h",
        again=lambda refused: _booster_page(call, patient_id, refused, form=values),
        status=mapped_status,
    )
