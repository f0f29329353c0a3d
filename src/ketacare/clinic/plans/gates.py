"""What stands between a draft plan and its signature, and what the signature carries.

A plan is signed only when the record's screening in force covers its molecule and
route, its weight is the latest one (and recent enough, where the clinic says how
recent), and it carries every safeguard that screening requires; a supervised
protocol's plan also carries a complete monitoring order; and the patient's signed
consent to the treatment's program is in force
(:func:`ketacare.clinic.consent.service.consent_problem`); a dose under the SPRAVATO REMS
also needs the setting's certification and the patient's enrolment on record
(:func:`ketacare.clinic.rems.service.rems_problem`). These checks run again at the
co-signature (:mod:`ketacare.clinic.plans.service`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from ketacare.clinic.consent.service import consent_problem
from ketacare.clinic.patients.service import current_weight, get_patient
from ketacare.clinic.plans.dosing import library
from ketacare.clinic.plans.orm import Plan
from ketacare.clinic.rems.service import rems_problem
from ketacare.clinic.screenings import service as screenings
from ketacare.core.protocols import Protocol
from ketacare.core.sessions.news2 import scale2_target
from ketacare.core.sessions.orders import FIELDS as ORDER_FIELDS
from ketacare.core.sessions.orders import LABELS as ORDER_LABELS
from ketacare.core.sessions.orders import (
    MonitoringOrder,
    monitoring_order,
    needs_order,
    order_defaults,
)
from ketacare.core.terminology.treatments import treatment_vocabulary
from ketacare.infra import policy as policies
from ketacare.infra.settings import Settings

#: what the screening's (molecule, route) must be for a protocol's (molecule, route): read
#: from the one treatment vocabulary (``core/terminology/treatments.toml``)
MOLECULES = {m.id: m.screening for m in treatment_vocabulary().molecules.values()}
ROUTES = {r.id: r.screening for r in treatment_vocabulary().routes.values()}


def screened_treatment(*, settings: Settings, plan: Plan) -> tuple[str, str]:
    """The (molecule, route) a screening must cover for this plan's protocol."""
    protocol = library(settings).get(protocol_id=plan.protocol_id)
    return MOLECULES[protocol.molecule], ROUTES[protocol.route]


def screening_coverage(
    *, session: Session, settings: Settings, plan: Plan, at: datetime
) -> screenings.Coverage:
    """The record's screening for this plan's molecule and route, and whether it holds."""
    molecule, route = screened_treatment(settings=settings, plan=plan)
    return screenings.coverage(
        session=session, patient_id=plan.patient_id, molecule=molecule, route=route, at=at
    )


def treatment_problems(
    *, session: Session, patient_id: int, protocol: Protocol, on: date
) -> Iterator[str]:
    """What stops a dose of this protocol for the patient on ``on``, in order: the
    program's signed consent not in force, then (under the SPRAVATO REMS) the setting's
    certification or the patient's enrolment missing.

    The same checks gate the plan's signature and the opening of each session. Lazy: a
    caller that stops at the first problem does not run the later checks.
    """
    consent = consent_problem(
        session=session,
        patient_id=patient_id,
        molecule=protocol.molecule,
        route=protocol.route,
    )
    if consent is not None:
        yield consent
    rems = rems_problem(
        session=session,
        patient_id=patient_id,
        molecule=protocol.molecule,
        route=protocol.route,
        on=on,
    )
    if rems is not None:
        yield rems


def gates(*, session: Session, settings: Settings, plan: Plan, now: datetime) -> list[str]:
    """What still stops this plan from being signed (empty when nothing does)."""
    problems = []
    today = now.date()
    covered = screening_coverage(session=session, settings=settings, plan=plan, at=now)
    if covered.problem is not None:
        problems.append(covered.problem)
    protocol = library(settings).get(protocol_id=plan.protocol_id)
    problems.extend(
        treatment_problems(session=session, patient_id=plan.patient_id, protocol=protocol, on=today)
    )
    patient = get_patient(session=session, patient_id=plan.patient_id)
    latest = current_weight(patient)
    if latest is None or (latest.measured_at, latest.weight_kg) != (
        plan.weight_measured_at,
        plan.weight_kg,
    ):
        problems.append(
            "a newer weight was recorded (or the plan's weight was corrected): build a new version"
        )
    elif settings.weight_valid_days is not None:
        age = (today - latest.measured_at.date()).days
        if age > settings.weight_valid_days:
            problems.append(
                f"the weight is {age} days old; site policy allows "
                f"{settings.weight_valid_days}: record a current weight"
            )
    return problems


def required_safeguards(
    *, session: Session, settings: Settings, plan: Plan, now: datetime
) -> list[dict[str, Any]]:
    """Safeguards the screening in force for this plan's molecule and route requires."""
    covered = screening_coverage(session=session, settings=settings, plan=plan, at=now)
    if covered.screening is None or not covered.ok:
        return []
    listed = covered.screening.result.get("safeguards", [])
    if not isinstance(listed, list):
        raise TypeError(f"screening {covered.screening.id}: safeguards is not a list")
    return [dict(s) for s in listed]


def monitoring_order_for(
    *, settings: Settings, plan: Plan, entered: Mapping[str, object] | None, set_by: str
) -> MonitoringOrder | None:
    """The order a signature would store (None for a protocol that is not supervised)."""
    protocol = library(settings).get(protocol_id=plan.protocol_id)
    if not needs_order(protocol):
        return None
    return monitoring_order(
        protocol=protocol, entered=entered, policy=policies.session_policy(settings), set_by=set_by
    )


def order_prefill(*, settings: Settings, plan: Plan) -> dict[str, Any]:
    """What the sign form shows: each field's value from the clinic's policy (or sourced), or
    None where the physician must enter it; and whether the protocol needs an order."""
    protocol = library(settings).get(protocol_id=plan.protocol_id)
    if not needs_order(protocol):
        return {"required": False, "fields": []}
    defaults = order_defaults(protocol=protocol, policy=policies.session_policy(settings))
    fields = [
        {
            "name": name,
            "label": ORDER_LABELS[name],
            "value": None if defaults[name] is None else defaults[name][0],  # type: ignore[index]
            "origin": None if defaults[name] is None else defaults[name][1],  # type: ignore[index]
        }
        for name in ORDER_FIELDS
    ]
    low, high = scale2_target()
    return {"required": True, "fields": fields, "scale2_target": f"{low:g}-{high:g}%"}


#: plans whose treatment still needs (or will need) the patient's consent
OPEN_PLAN_STATES = ("draft", "signed", "active")


def consent_programs_needed(
    *, session: Session, settings: Settings, patient_id: int
) -> tuple[frozenset[str], frozenset[str]]:
    """The consent programs the patient's open plans need (each plan's treatment, and
    psychotherapy where a therapy session is planned), and those of any plan they ever
    had; what the chart offers to sign."""
    from sqlalchemy import select

    from ketacare.clinic.plans.orm import TherapySession
    from ketacare.clinic.plans.therapy import PROGRAM as THERAPY_PROGRAM
    from ketacare.core.consent import program_for

    every = list(session.scalars(select(Plan).where(Plan.patient_id == patient_id)))
    plans = [p for p in every if p.status in OPEN_PLAN_STATES]
    protocols = library(settings)

    def programs_of(rows: list[Plan]) -> set[str]:
        found = set()
        for plan in rows:
            protocol = protocols.get(protocol_id=plan.protocol_id)
            program = program_for(molecule=protocol.molecule, route=protocol.route)
            if program is not None:
                found.add(program.id)
        return found

    needed = programs_of(plans)
    planned_therapy = session.scalar(
        select(TherapySession.id).where(
            TherapySession.plan_id.in_([p.id for p in plans]),
            TherapySession.status == "planned",
        )
    )
    if planned_therapy is not None:
        needed.add(THERAPY_PROGRAM)
    return frozenset(needed), frozenset(needed | programs_of(every))
