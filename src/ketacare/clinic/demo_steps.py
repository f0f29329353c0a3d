"""The demo history's steps: each one a call of the service a user's request would make.

Intake, questionnaires, screenings, plans, IV sessions from check-in to discharge,
research consents and booster decisions, each at the instant the story gives it (the
injected clock), under the demo's EXAMPLE site policy and with the demo accounts as actors.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from ketacare.clinic.assessments import service as assessments
from ketacare.clinic.audit.service import Actor
from ketacare.clinic.consent import demo as consent_demo
from ketacare.clinic.demo_model import ESCORTS, Ctx, Person
from ketacare.clinic.outcomes import boosters
from ketacare.clinic.outcomes.policy import booster_rules
from ketacare.clinic.patients import schemas
from ketacare.clinic.patients import service as patients
from ketacare.clinic.plans import dosing, gates
from ketacare.clinic.plans import service as plans
from ketacare.clinic.research import service as research
from ketacare.clinic.screenings import service as screenings
from ketacare.clinic.sessions import log as session_log
from ketacare.clinic.sessions import service as sessions
from ketacare.core.errors import InvalidInput
from ketacare.core.sessions import SessionSetup
from ketacare.infra.errors import Conflict


def local_at(day: date, clock: time, ctx: Ctx) -> datetime:
    return datetime.combine(day, clock, tzinfo=ctx.settings.zone)


def assess(
    ctx: Ctx,
    *,
    patient_id: int,
    instrument: str,
    answers: Any,
    context: str,
    at: datetime,
    actor: Actor | None = None,
    source: str = "clinician",
) -> int:
    row, alerts = assessments.record_assessment(
        session=ctx.session,
        actor=actor or ctx.staff.nurse,
        patient_id=patient_id,
        instrument_id=instrument,
        answers=answers,
        context=context,
        source=source,
        now=at,
    )
    ctx.count("questionnaires")
    ctx.count("questionnaire alerts", len(alerts))
    ctx.last_alerts = [a.id for a in alerts]
    return row.id


def intake(ctx: Ctx, person: Person, index: int, at: datetime) -> int:
    nurse = ctx.staff.nurse
    patient = patients.create_patient(
        session=ctx.session,
        actor=nurse,
        now=at,
        data=schemas.PatientCreate(
            given_name=person.given,
            family_name=person.family,
            birth_date=person.born,
            sex=person.sex,
            phone=f"+1 555 010 {index:04d}",
            email=f"{person.given.lower()}.{person.family.lower()}@example.org".replace(" ", ""),
        ),
    )
    patient.responsible_clinician_id = ctx.staff.physician.user_id
    patients.add_weight(
        session=ctx.session,
        actor=nurse,
        patient_id=patient.id,
        now=at,
        data=schemas.WeightCreate(weight_kg=person.weight, height_cm=person.height, measured_at=at),
    )
    for code in person.conditions:
        patients.add_condition(
            session=ctx.session,
            actor=ctx.staff.physician,
            patient_id=patient.id,
            now=at,
            data=schemas.ConditionCreate(icd10_code=code),
        )
    for med, dose in person.medications:
        patients.add_medication(
            session=ctx.session,
            actor=nurse,
            patient_id=patient.id,
            now=at,
            data=schemas.MedicationCreate(name=med, dose_text=dose),
        )
    for substance in person.allergies:
        patients.add_allergy(
            session=ctx.session,
            actor=nurse,
            patient_id=patient.id,
            now=at,
            data=schemas.AllergyCreate(substance=substance),
        )
    ctx.count("patients")
    return patient.id


def screen(ctx: Ctx, patient_id: int, treatment: dict[str, str], at: datetime) -> None:
    policy = screenings.site_policy(ctx.settings)
    sbp = ctx.rng.randint(112, 134)
    row = screenings.run_screening(
        session=ctx.session,
        actor=ctx.staff.nurse,
        patient_id=patient_id,
        form={
            "treatment": treatment,
            "vitals": {"systolic_mmhg": sbp, "diastolic_mmhg": ctx.rng.randint(68, 86)},
        },
        now=at,
        policy=policy,
    )
    screenings.sign(
        session=ctx.session,
        actor=ctx.staff.physician,
        screening_id=row.id,
        note="history, medications and questionnaires reviewed with the patient",
        valid_until=None,  # the site policy's validity period
        now=at + timedelta(minutes=40),
        policy=policy,
    )
    ctx.count("screenings")


def signed_plan(
    ctx: Ctx,
    patient_id: int,
    protocol_id: str,
    options: dosing.DoseOptions,
    at: datetime,
    *,
    goals: list[dict[str, object]] | None = None,
) -> int:
    """A plan drafted and signed by the physician, co-signed by the second physician
    when it needs review (every soft limit the demo policy leaves unset needs one)."""
    physician = ctx.staff.physician
    if consent_demo.consent_before_plan(
        session=ctx.session,
        settings=ctx.settings,
        nurse=ctx.staff.nurse,
        physician=physician,
        patient_id=patient_id,
        protocol_id=protocol_id,
        at=at,
        rng=random.Random(patient_id),  # its own draws: the history's stay as they were
    ):
        ctx.count("consents")
    plan = plans.create_draft(
        session=ctx.session,
        actor=physician,
        settings=ctx.settings,
        patient_id=patient_id,
        protocol_id=protocol_id,
        options=options,
        now=at,
        goals=goals,
    )
    signed = plans.sign(
        session=ctx.session,
        actor=physician,
        settings=ctx.settings,
        plan_id=plan.id,
        now=at + timedelta(minutes=10),
        reason="soft limits the clinic has not set: reviewed against the protocol's source",
        weight_confirmed=True,
        safeguards_accepted=[
            str(g["id"])
            for g in gates.required_safeguards(
                session=ctx.session, settings=ctx.settings, plan=plan, now=at
            )
        ],
        monitoring={},
    )
    if signed.status == "awaiting_cosign":
        plans.cosign(
            session=ctx.session,
            actor=ctx.staff.physician2,
            settings=ctx.settings,
            plan_id=plan.id,
            now=at + timedelta(minutes=45),
        )
        ctx.count("cosigned plans")
    ctx.count("plans")
    return plan.id


def planned_sessions(ctx: Ctx, plan_id: int) -> list[dict[str, Any]]:
    plan = plans.get_plan(session=ctx.session, plan_id=plan_id)
    return [dict(s) for s in plan.schedule["sessions"]]


@dataclass
class Chair:
    """Writes one session's entries, each at its own instant (the injected clock)."""

    ctx: Ctx
    session_id: int
    seq: int = 0

    def __call__(self, at: datetime, **event: Any) -> Any:
        state = sessions.record(
            session=self.ctx.session,
            actor=self.ctx.staff.nurse,
            session_id=self.session_id,
            data=event,
            expected_seq=self.seq,
            now=at,
        )
        self.seq = state.last_seq
        return state


def vitals_event(rng: random.Random, base: tuple[int, int, int], rise: int = 0) -> dict[str, Any]:
    sbp, dbp, hr = base
    return {
        "kind": "vitals",
        "sbp_mmhg": sbp + rise + rng.randint(-4, 6),
        "dbp_mmhg": dbp + rise // 2 + rng.randint(-3, 4),
        "hr_per_min": hr + rng.randint(-3, 8),
        "spo2_pct": rng.choice((96, 97, 98, 98, 99)),
        "rr_per_min": rng.choice((12, 14, 14, 16)),
        # the rest of a whole NEWS2 set, so the chair and the board score it; not drawn
        # from ``rng``, so the demo's other records stay as they were
        "temperature_c": round(36.4 + (sbp + hr) % 7 / 10, 1),
        "consciousness": "alert",
        "supplemental_oxygen": False,
    }


def arrive(
    ctx: Ctx, plan_id: int, number: int, start: datetime, *, base: tuple[int, int, int], lot: str
) -> tuple[Chair, SessionSetup, datetime]:
    """Open a session at the chair, check the patient in five minutes later, record the
    baseline vitals and every pre-dose check (the lot as ``{lot}-{number}``); the chair,
    the session's setup and the check-in time."""
    row = sessions.open_session(
        session=ctx.session,
        actor=ctx.staff.nurse,
        settings=ctx.settings,
        plan_id=plan_id,
        session_number=number,
        now=start,
        opened_at=start,
    )
    chair = Chair(
        ctx, row.id, seq=session_log.head(session=ctx.session, session_id=row.id).last_seq
    )
    setup = sessions.state_of(session=ctx.session, session_id=row.id).setup
    t = start + timedelta(minutes=5)
    chair(t, kind="check_in")
    chair(t + timedelta(minutes=3), **vitals_event(ctx.rng, base))
    checks = [
        c for c in setup.required_checks if c not in (sessions.RECORD_CHECK, "baseline_vitals")
    ]
    for i, item in enumerate(checks):
        chair(
            t + timedelta(minutes=5 + i),
            kind="pre_dose_check",
            item=item,
            ok=True,
            detail=f"{lot}-{number:02d}" if item == "medication_lot" else "",
        )
    return chair, setup, t


def discharge(chair: Chair, number: int, leave: datetime, instructions: str) -> None:
    """A full discharge score a minute before ``leave``, the escort, then the discharge."""
    padss = {
        "vital_signs": 2,
        "ambulation": 2,
        "nausea_vomiting": 2,
        "pain": 2,
        "bleeding": 2,
        "escort": True,
    }
    chair(leave - timedelta(minutes=1), kind="discharge_score", answers=padss)
    relation, name = ESCORTS[number % len(ESCORTS)]
    chair(leave - timedelta(seconds=30), kind="escort_confirmed", name=name, relation=relation)
    chair(leave, kind="discharge", instructions=instructions)


def give_iv(ctx: Ctx, plan_id: int, number: int, start: datetime, *, alert: bool) -> datetime:
    """One IV session from check-in to discharge; returns when the patient left."""
    rng = ctx.rng
    base = (rng.randint(114, 130), rng.randint(70, 80), rng.randint(64, 80))
    chair, setup, t = arrive(ctx, plan_id, number, start, base=base, lot=f"lot K{start:%y%m}")
    begin = t + timedelta(minutes=15)
    rate = float(setup.planned_rate_mg_per_h or 0)
    # the planned rate (rounded by the plan never to cross a limit the order respects)
    chair(begin, kind="start_infusion", rate_mg_per_h=rate)
    duration = float(setup.planned_duration_min or 40)
    interval = float(setup.vitals_interval.value or 15)
    step = 1
    while step * interval < duration:
        at = begin + timedelta(minutes=step * interval)
        rise = 8 if step * interval >= 30 else 3
        if alert and step == 2:
            state = chair(at, **{**vitals_event(rng, base, rise), "sbp_mmhg": 186, "dbp_mmhg": 98})
            opened = list(state.open_alerts)
            for a in opened:
                chair(
                    at + timedelta(minutes=2),
                    kind="acknowledge_alert",
                    alert_id=a.id,
                    action="reduce_rate",
                    note="physician informed; rate reduced, recheck in 10 min",
                )
                rate = round(rate * 0.8, 1)
                chair(
                    at + timedelta(minutes=3),
                    kind="rate_change",
                    rate_mg_per_h=rate,
                    reason="blood pressure",
                )
            ctx.count("session alerts", len(opened))
        else:
            chair(at, **vitals_event(rng, base, rise))
        if step == 1 and rng.random() < 0.3:
            chair(
                at + timedelta(minutes=1),
                kind="side_effects",
                dissociation=True,
                nausea=rng.random() < 0.3,
                sedation_moaas=5,
                note="mild dissociation, reassured",
            )
        step += 1
    end = begin + timedelta(minutes=duration)
    chair(end, kind="stop", reason="completed")
    observe = float(setup.observation.value or 60)
    recovery = float(setup.recovery_vitals_interval.value or 15)
    k = 1
    while k * recovery <= observe:
        chair(end + timedelta(minutes=k * recovery), **vitals_event(rng, base))
        k += 1
    leave = end + timedelta(minutes=observe + 2)
    discharge(
        chair,
        number,
        leave,
        "no driving or machinery until tomorrow; call the clinic with any concern",
    )
    ctx.count("sessions")
    return leave


def end_plan(ctx: Ctx, plan_id: int, at: datetime, *, stop: str = "", early: str = "") -> None:
    """Stop the plan with ``stop``'s reason, or complete it (``early``: why it completes
    with sessions of its course not given)."""
    plans.transition(
        session=ctx.session,
        actor=ctx.staff.physician,
        plan_id=plan_id,
        action="stop" if stop else "complete",
        now=at,
        reason=stop or early,
    )


def research_consent(ctx: Ctx, patient_id: int, decision: str, at: datetime, note: str) -> None:
    research.record_consent(
        session=ctx.session,
        actor=ctx.staff.nurse,
        patient_id=patient_id,
        decision=decision,
        note=note,
        now=at,
    )
    ctx.count(f"research consents {decision}")


def decide_booster(
    ctx: Ctx, patient_id: int, measure: str, assessment_id: int, at: datetime
) -> bool:
    settings = ctx.settings
    try:
        boosters.decide(
            session=ctx.session,
            actor=ctx.staff.physician,
            patient_id=patient_id,
            measure=measure,
            assessment_id=assessment_id,
            decision="accepted",
            note="booster course discussed with the patient and booked",
            now=at,
            zone=settings.zone,
            loss_confirmations=settings.outcome_loss_confirmations,
            booster_rules=booster_rules(settings),
        )
    except (InvalidInput, Conflict):  # no booster suggested on this score: none to accept
        return False
    ctx.count("boosters accepted")
    return True
