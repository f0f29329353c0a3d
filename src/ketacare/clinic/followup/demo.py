"""The demo clinic's outcome schedule on the demo patient's plan.

The numbers below (hours, days) are the *demo clinic's* choices, made up to show the
feature; no source gives such intervals and they are not defaults: a real clinic sets
its own on the plan's schedule page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.audit.service import Actor
from ketacare.clinic.followup.orm import OutcomeSchedule
from ketacare.clinic.followup.schedules import set_schedule
from ketacare.clinic.plans import dosing
from ketacare.clinic.plans import service as plans
from ketacare.clinic.plans.orm import Plan

DEMO_PROTOCOL = "crps-outpatient"

#: The demo clinic's schedule (made-up numbers; see the module docstring).
DEMO_SCHEDULE: dict[str, Any] = {
    "grace_hours": 48,
    "stop": {"after_plan_end_days": 90, "when_plan_stopped": True},
    "items": [
        {"instrument": "nrs_pain", "when": "baseline"},
        {"instrument": "bpi_sf", "when": "baseline"},
        {"instrument": "phq9", "when": "baseline"},
        {"instrument": "nrs_pain", "when": "before_each_session", "lead_hours": 48},
        {"instrument": "nrs_pain", "when": "after_each_session", "offset_hours": 24},
        {"instrument": "pgic", "when": "after_each_session", "offset_hours": 24},
        {
            "instrument": "phq9",
            "when": "every",
            "every_days": 7,
            "starts": "last_session",
            "anchored_to_last_treatment": True,
        },
    ],
}


def course_schedule(measure: str) -> dict[str, Any]:
    """The whole demo clinic's schedule on a course (made-up numbers, as above): the
    course's measure before each session and the morning after it, as the demo's
    patients answer it, so a course going on after today has questionnaires coming due.
    """
    return {
        "grace_hours": 48,
        "stop": {"after_plan_end_days": 90, "when_plan_stopped": True},
        "items": [
            {"instrument": measure, "when": "before_each_session", "lead_hours": 48},
            {"instrument": measure, "when": "after_each_session", "offset_hours": 20},
        ],
    }


def seed_schedule(
    *, session: Session, actor: Actor, patient_id: int, now: datetime
) -> OutcomeSchedule:
    """Put the demo schedule on the demo patient's newest plan (a draft one if none).

    ``actor`` is a demo clinician: plans and schedules name the account that set them.
    """
    from ketacare.clinic.demo_policy import demo_settings
    from ketacare.infra.settings import load_settings

    plan = session.scalar(
        select(Plan)
        .where(Plan.patient_id == patient_id, Plan.status != "superseded")
        .order_by(Plan.id.desc())
        .limit(1)
    )
    if plan is None:
        plan = plans.create_draft(
            session=session,
            actor=actor,
            settings=demo_settings(load_settings()),
            patient_id=patient_id,
            protocol_id=DEMO_PROTOCOL,
            options=dosing.DoseOptions(bag_mg=100, bag_ml=100),
            now=now,
        )
    return set_schedule(
        session=session,
        actor=actor,
        plan_id=plan.id,
        spec=DEMO_SCHEDULE,
        reason="demo clinic",
        now=now,
    )
