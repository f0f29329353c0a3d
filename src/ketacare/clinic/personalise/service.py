"""Personalise a plan: levels in, the individual fit and recommendations out.

The request is the same document ``ketacare personalise`` reads, built from the
record: the model for the plan's molecule and route, the patient's covariates,
the doses actually given (replayed from the session logs of the course) and the
measured levels. One code path serves the page and the command.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.audit import service as audit
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.personalise.orm import DrugLevel
from ketacare.clinic.plans import dosing, exposure
from ketacare.clinic.plans import service as plans
from ketacare.clinic.plans.orm import Plan
from ketacare.clinic.sessions import service as sessions
from ketacare.core.errors import InvalidInput
from ketacare.core.pharmacology.personalise import compute, parse_request, to_document
from ketacare.core.sessions import session_regimen
from ketacare.infra.settings import Settings

MAX_LEVEL = 100_000.0  # ng/mL: a typo guard, not a clinical limit


def unavailable(*, settings: Settings, plan: Plan) -> str | None:
    """Why this plan cannot be individualised (no model for its molecule and route gives
    published variability and residual error), or None when it can."""
    models = exposure.exposure_models(settings=settings, protocol_id=plan.protocol_id)
    if any(m.verified for m in models):
        return None
    return (
        "no model with published variability and residual error exists for this plan's "
        "molecule and route: individualisation is not available"
    )


def add_level(
    *,
    session: Session,
    actor: audit.Actor,
    settings: Settings,
    plan_id: int,
    sampled_at: datetime,
    analyte: str,
    value: float | None,
    lloq: float | None,
    now: datetime,
) -> DrugLevel:
    """Record a measured level (value None = below the quantification limit, LLOQ given);
    refused for a plan that cannot be individualised (no fit would use the level)."""
    plan = plans.get_plan(session=session, plan_id=plan_id)
    reason = unavailable(settings=settings, plan=plan)
    if reason is not None:
        raise InvalidInput(f"no level is entered for plan {plan_id}: {reason}")
    if not analyte:
        raise InvalidInput("analyte is missing: choose plasma or metabolite")
    if analyte not in ("plasma", "metabolite"):
        raise InvalidInput(f"analyte {analyte!r}: allowed plasma, metabolite")
    if sampled_at.tzinfo is None or sampled_at > now:
        raise InvalidInput("the sample time must be a past time with a time zone")
    if value is None and lloq is None:
        raise InvalidInput("a level below the quantification limit needs the LLOQ")
    for name, number in (("value", value), ("LLOQ", lloq)):
        if number is not None and not 0 <= number <= MAX_LEVEL:
            raise InvalidInput(f"{name} {number:g} ng/mL is out of range: 0 to {MAX_LEVEL:g}")
    row = DrugLevel(
        patient_id=plan.patient_id,
        plan_id=plan_id,
        sampled_at=sampled_at,
        analyte=analyte,
        value_ng_per_ml=value,
        lloq_ng_per_ml=lloq,
        entered_by=actor.user_id,
        entered_at=now,
    )
    return audit.stored(
        row,
        session=session,
        actor=actor,
        at=now,
        resource_type="drug_level",
        patient_id=plan.patient_id,
    )


def levels(*, session: Session, plan: Plan) -> list[DrugLevel]:
    ids = plans.course_plans(session=session, plan=plan)
    return list(
        session.scalars(
            select(DrugLevel)
            .where(DrugLevel.plan_id.in_(ids), DrugLevel.status == "final")
            .order_by(DrugLevel.sampled_at)
        )
    )


def given(
    *, session: Session, plan: Plan, now: datetime
) -> tuple[datetime | None, list[dict[str, Any]]]:
    """The doses actually given in this course, from the session logs, in hours from the first."""
    states = []
    starts = []
    for plan_id in plans.course_plans(session=session, plan=plan):
        for row in sessions.sessions_of_plan(session=session, plan_id=plan_id):
            state = sessions.state_of(session=session, session_id=row.id)
            if state.dosing_started_at is not None:
                states.append(state)
                starts.append(state.dosing_started_at)
    if not states:
        return None, []
    origin = min(starts)
    doses: list[dict[str, Any]] = []
    for state in states:
        doses += session_regimen(state, at=now, origin=origin)["doses"]
    return origin, sorted(doses, key=lambda d: d["start_h"])


def build_request(
    *,
    session: Session,
    settings: Settings,
    plan: Plan,
    now: datetime,
    target: dict[str, Any] | None = None,
    options: list[dict[str, Any]] | None = None,
    ceiling: float | None = None,
) -> dict[str, Any]:
    """The ``ketacare personalise`` document for this plan (refuses what cannot be done)."""
    reason = unavailable(settings=settings, plan=plan)
    if reason is not None:
        raise InvalidInput(reason)
    models = [
        m
        for m in exposure.exposure_models(settings=settings, protocol_id=plan.protocol_id)
        if m.verified
    ]
    patient = get_patient(session=session, patient_id=plan.patient_id)
    origin, doses = given(session=session, plan=plan, now=now)
    if origin is None:
        raise InvalidInput("no dose of this course has been given yet (from the session records)")
    samples = []
    for level in levels(session=session, plan=plan):
        t = (level.sampled_at - origin).total_seconds() / 3600
        sample: dict[str, Any] = {
            "time_h": round(t, 4),
            "analyte": level.analyte,
            "value_ng_per_ml": level.value_ng_per_ml,
        }
        if level.lloq_ng_per_ml is not None:
            sample["lloq_ng_per_ml"] = level.lloq_ng_per_ml
        samples.append(sample)
    age = (now.date() - patient.birth_date).days // 365
    doc: dict[str, Any] = {
        "model": models[0].id,
        "patient": {
            "weight_kg": plan.weight_kg,
            "age_years": age,
            **(
                {"sex": {"female": "F", "male": "M"}[patient.sex]}
                if patient.sex in ("female", "male")
                else {}
            ),
        },
        "doses": doses,
        "samples": samples,
        "protocol": plan.protocol_id,
        "settings": {"n_draws": 500, "seed": 1, "step_min": 10},
    }
    if target:
        doc["target"] = target
        doc["options"] = options or []
    if ceiling:
        doc["ceiling_ng_per_ml"] = ceiling
    return doc


def personalise(
    *,
    session: Session,
    actor: audit.Actor,
    settings: Settings,
    plan_id: int,
    now: datetime,
    target: dict[str, Any] | None = None,
    options: list[dict[str, Any]] | None = None,
    ceiling: float | None = None,
) -> dict[str, Any]:
    """Fit this patient and, when a target is given, propose regimens (audited read)."""
    plan = plans.get_plan(session=session, plan_id=plan_id)
    doc = build_request(
        session=session,
        settings=settings,
        plan=plan,
        now=now,
        target=target,
        options=options,
        ceiling=ceiling,
    )
    audit.read_row(
        plan,
        session=session,
        actor=actor,
        at=now,
        resource_type="personalise",
        detail={"samples": len(doc["samples"])},
    )
    request = parse_request(doc=doc)
    return to_document(
        outcome=compute(request=request, site_policy=dosing.protocol_policy(settings))
    )


def accept(
    *,
    session: Session,
    actor: audit.Actor,
    settings: Settings,
    plan_id: int,
    dose_mg: float | None,
    rate_mg_per_h: float | None,
    now: datetime,
) -> Plan:
    """Accept a recommendation: a new draft version of the plan (then signed as usual)."""
    plan = plans.get_plan(session=session, plan_id=plan_id)
    if (dose_mg is None) == (rate_mg_per_h is None):
        raise InvalidInput("accept either a dose in mg or an infusion rate in mg/h")
    options = dosing.DoseOptions(
        bag_mg=plan.bag_mg,
        bag_ml=plan.bag_ml,
        dose_mg_per_kg_per_h=None
        if rate_mg_per_h is None
        else round(rate_mg_per_h / plan.weight_kg, 4),
        dose_mg=dose_mg,
    )
    new = plans.new_version(
        session=session, actor=actor, settings=settings, plan_id=plan_id, options=options, now=now
    )
    audit.record(
        session=session,
        actor=actor,
        action="accept",
        resource_type="personalise",
        resource_id=new.id,
        patient_id=plan.patient_id,
        at=now,
        detail={"from_plan": plan_id, "dose_mg": dose_mg, "rate_mg_per_h": rate_mg_per_h},
    )
    return new
