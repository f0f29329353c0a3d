"""The demo clinic's months of synthetic history, made through the clinic's own services.

Every record here goes through the service a user's request would call (patients,
questionnaires, screenings, plans, sessions, boosters, take-home supplies, research
consents), under the demo's EXAMPLE site policy and with the demo accounts as actors,
so it is valid, audited and checked exactly as a user's would be. The clock is
injected: each patient's story is a generator that yields the instant of its next step,
and :func:`run` steps all of them in time order (the audit trail reads as months of
clinic life). One fixed random seed draws every number, so the same ``now`` gives the
same records.

The people, scores and vitals are invented. The doses are the protocols' (built by the
plan service from the protocol library); the take-home supplies keep inside the demo's
EXAMPLE take-home limits.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ketacare.clinic.analytics import service as analytics
from ketacare.clinic.assessments import service as assessments
from ketacare.clinic.audit.service import Actor
from ketacare.clinic.consent import demo as consent_demo
from ketacare.clinic.outcomes import boosters
from ketacare.clinic.outcomes.policy import booster_rules
from ketacare.clinic.patients import schemas
from ketacare.clinic.patients import service as patients
from ketacare.clinic.plans import booking, dosing, gates, therapy
from ketacare.clinic.plans import service as plans
from ketacare.clinic.research import service as research
from ketacare.clinic.safeguards import service as safeguards
from ketacare.clinic.screenings import service as screenings
from ketacare.clinic.sessions import service as sessions
from ketacare.core.errors import InvalidInput, SoftLimitNeedsReview
from ketacare.core.scheduling import PlannedDay, place_sessions
from ketacare.infra.errors import Conflict
from ketacare.infra.settings import Settings

#: the one seed every synthetic number is drawn from
SEED = 20260302

#: ORT: "no" to every item; DAST-10: "no" to every item except item 3 ("able to stop")
ORT_NONE = [False] * 10
DAST_NONE = [False, False, True] + [False] * 7
ESCORTS = (("partner", "A. Partner"), ("friend", "B. Friend"), ("parent", "C. Parent"))


@dataclass(frozen=True)
class Person:
    """One synthetic patient and the course of care the demo gives them."""

    given: str
    family: str
    born: date
    sex: str
    weight: float
    height: float
    conditions: tuple[str, ...]
    medications: tuple[tuple[str, str], ...]
    allergies: tuple[str, ...] = ()
    group: str = "crps"  # crps, fibromyalgia, neuropathic, depression
    intake_days_ago: int = 120
    take_home: bool = False  # oral follow-on with take-home supplies after the IV course


@dataclass
class Staff:
    physician: Actor
    physician2: Actor
    nurse: Actor
    therapist: Actor


@dataclass
class Ctx:
    session: Session
    settings: Settings
    staff: Staff
    now: datetime
    rng: random.Random
    patient_ids: dict[int, int] = field(default_factory=dict)  # person index -> patient id
    counts: dict[str, int] = field(default_factory=dict)
    last_alerts: list[int] = field(default_factory=list)

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


Story = Iterator[datetime]


def run(stories: list[Story], *, now: datetime) -> None:
    """Step every story in time order until each ends (or reaches ``now``).

    A story yields the instant it next acts at and acts when resumed; ties go to the
    story listed first, so the order is fixed.
    """
    queue: list[tuple[datetime, int, Story]] = []
    for order, story in enumerate(stories):
        first = next(story, None)
        if first is not None:
            heapq.heappush(queue, (first, order, story))
    while queue:
        at, order, story = heapq.heappop(queue)
        if at > now:
            continue  # the story's next step is after today: it stops here
        following = next(story, None)
        if following is not None:
            heapq.heappush(queue, (max(following, at), order, story))


# --------------------------------------------------------------------------- scores


def _clamp(value: float, low: int, high: int) -> int:
    return max(low, min(high, round(value)))


def _phq9(total: int, rng: random.Random, *, item9: int = 0) -> list[int]:
    """Nine PHQ-9 answers (0-3) summing to ``total`` (item 9 as given)."""
    answers = [0] * 8
    left = max(0, min(24, total - item9))
    while left > 0:
        i = rng.randrange(8)
        if answers[i] < 3:
            answers[i] += 1
            left -= 1
    return [*answers, item9]


def _gad7(total: int, rng: random.Random) -> list[int]:
    answers = [0] * 7
    left = max(0, min(21, total))
    while left > 0:
        i = rng.randrange(7)
        if answers[i] < 3:
            answers[i] += 1
            left -= 1
    return answers


@dataclass
class Trajectory:
    """How one patient's scores move: a baseline, the course's effect, its durability."""

    baseline: float
    effect: float  # fraction of the baseline removed at the end of a course
    durable_days: int  # days after a course before the effect starts to fade
    fade_days: int = 35

    def value(
        self, *, sessions_done: int, course_len: int, days_since_course: float | None
    ) -> float:
        if sessions_done == 0:
            return self.baseline
        gained = self.effect * min(1.0, sessions_done / max(1, min(course_len, 6)))
        if days_since_course is not None and days_since_course > self.durable_days:
            faded = min(1.0, (days_since_course - self.durable_days) / self.fade_days)
            gained *= 1 - 0.85 * faded
        return self.baseline * (1 - gained)


# --------------------------------------------------------------------------- steps


def _at(day: date, clock: time, ctx: Ctx) -> datetime:
    return datetime.combine(day, clock, tzinfo=ctx.settings.zone)


def _assess(
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


def _intake(ctx: Ctx, person: Person, index: int, at: datetime) -> int:
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


def _screen(ctx: Ctx, patient_id: int, treatment: dict[str, str], at: datetime) -> None:
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


def _plan(
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


def _planned(ctx: Ctx, plan_id: int) -> list[dict[str, Any]]:
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


def _vitals(rng: random.Random, base: tuple[int, int, int], rise: int = 0) -> dict[str, Any]:
    sbp, dbp, hr = base
    return {
        "kind": "vitals",
        "sbp_mmhg": sbp + rise + rng.randint(-4, 6),
        "dbp_mmhg": dbp + rise // 2 + rng.randint(-3, 4),
        "hr_per_min": hr + rng.randint(-3, 8),
        "spo2_pct": rng.choice((96, 97, 98, 98, 99)),
        "rr_per_min": rng.choice((12, 14, 14, 16)),
    }


def _give_iv(ctx: Ctx, plan_id: int, number: int, start: datetime, *, alert: bool) -> datetime:
    """One IV session from check-in to discharge; returns when the patient left."""
    rng = ctx.rng
    row = sessions.open_session(
        session=ctx.session,
        actor=ctx.staff.nurse,
        settings=ctx.settings,
        plan_id=plan_id,
        session_number=number,
        now=start,
        opened_at=start,
    )
    chair = Chair(ctx, row.id, seq=sessions.head(session=ctx.session, session_id=row.id).last_seq)
    setup = sessions.state_of(session=ctx.session, session_id=row.id).setup
    base = (rng.randint(114, 130), rng.randint(70, 80), rng.randint(64, 80))
    t = start + timedelta(minutes=5)
    chair(t, kind="check_in")
    chair(t + timedelta(minutes=3), **_vitals(rng, base))
    checks = [
        c for c in setup.required_checks if c not in (sessions.RECORD_CHECK, "baseline_vitals")
    ]
    for i, item in enumerate(checks):
        chair(
            t + timedelta(minutes=5 + i),
            kind="pre_dose_check",
            item=item,
            ok=True,
            detail=f"lot K{start:%y%m}-{number:02d}" if item == "medication_lot" else "",
        )
    begin = t + timedelta(minutes=15)
    rate = float(setup.planned_rate_mg_per_h or 0)
    # the plan rounds the rate to 0.1 mg/h half up, which can land a hair above the
    # protocol's per-kg soft limit; the nurse then starts 0.1 mg/h lower, within it
    for _ in range(3):
        try:
            chair(begin, kind="start_infusion", rate_mg_per_h=rate)
            break
        except SoftLimitNeedsReview:
            chair.seq = sessions.head(session=ctx.session, session_id=row.id).last_seq
            rate = round(rate - 0.1, 1)
    duration = float(setup.planned_duration_min or 40)
    interval = float(setup.vitals_interval.value or 15)
    step = 1
    while step * interval < duration:
        at = begin + timedelta(minutes=step * interval)
        rise = 8 if step * interval >= 30 else 3
        if alert and step == 2:
            state = chair(at, **{**_vitals(rng, base, rise), "sbp_mmhg": 186, "dbp_mmhg": 98})
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
            chair(at, **_vitals(rng, base, rise))
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
        chair(end + timedelta(minutes=k * recovery), **_vitals(rng, base))
        k += 1
    leave = end + timedelta(minutes=observe + 2)
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
    chair(
        leave,
        kind="discharge",
        instructions="no driving or machinery until tomorrow; call the clinic with any concern",
    )
    ctx.count("sessions")
    return leave


def _complete(ctx: Ctx, plan_id: int, at: datetime, *, stop: str = "") -> None:
    plans.transition(
        session=ctx.session,
        actor=ctx.staff.physician,
        plan_id=plan_id,
        action="stop" if stop else "complete",
        now=at,
        reason=stop,
    )


def _consent(ctx: Ctx, patient_id: int, decision: str, at: datetime, note: str) -> None:
    research.record_consent(
        session=ctx.session,
        actor=ctx.staff.nurse,
        patient_id=patient_id,
        decision=decision,
        note=note,
        now=at,
    )
    ctx.count(f"research consents {decision}")


def _decide_booster(
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


# --------------------------------------------------------------------------- stories

IV = {"molecule": "ketamine", "route": "iv_infusion"}
ORAL = {"molecule": "ketamine", "route": "oral"}


@dataclass(frozen=True)
class Course:
    protocol: str
    give: int  # sessions given of the course (fewer than planned: stopped early)
    stop_reason: str = ""


def story(ctx: Ctx, person: Person, index: int, plan_notes: dict[int, Any]) -> Story:
    """One patient's care from intake to today: yields each step's instant."""
    rng = random.Random(SEED * 100 + index)
    today = ctx.now.astimezone(ctx.settings.zone).date()
    day0 = today - timedelta(days=person.intake_days_ago)
    slot = time(8 + index % 4, (index * 7) % 60)
    depression = person.group == "depression"
    measure = "phq9" if depression else "nrs_pain"
    protocol = "depression-iv" if depression else "crps-outpatient"
    responder = rng.random() < (0.55 if depression else 0.62)
    traj = Trajectory(
        baseline=rng.choice((16, 18, 19, 21, 23)) if depression else rng.choice((6, 7, 7, 8, 8, 9)),
        effect=rng.uniform(0.5, 0.8) if responder else rng.uniform(0.05, 0.25),
        durable_days=rng.randint(25, 110),
    )
    stop_early = not responder and rng.random() < 0.5
    course_len = 12 if depression else 10
    given = (
        rng.randint(4, 6)
        if stop_early
        else (rng.randint(6, course_len) if depression else course_len)
    )
    lost = rng.random() < 0.15  # stops answering follow-ups some weeks after the course
    consent = rng.random() < 0.75
    item9 = 1 if depression and index % 5 == 2 else 0

    # -- intake: record, questionnaires, consent, screening
    at = _at(day0, slot, ctx)
    yield at
    pid = _intake(ctx, person, index, at)
    ctx.patient_ids[index] = pid

    def score(value: float) -> int:
        return _clamp(value, 0, 27 if depression else 10)

    pain0 = traj.baseline if not depression else rng.choice((3, 4, 5))
    phq0 = traj.baseline if depression else rng.choice((6, 8, 11, 13))
    t = at + timedelta(minutes=20)
    _assess(
        ctx,
        patient_id=pid,
        instrument="nrs_pain",
        answers=[score(pain0) if not depression else pain0],
        context="intake",
        at=t,
        source="patient",
    )
    _assess(
        ctx,
        patient_id=pid,
        instrument="phq9",
        answers=_phq9(int(phq0), rng, item9=item9),
        context="intake",
        at=t + timedelta(minutes=3),
        source="patient",
    )
    if ctx.last_alerts and person.intake_days_ago > 30:
        for alert_id in ctx.last_alerts:
            assessments.acknowledge(
                session=ctx.session,
                actor=ctx.staff.physician,
                alert_id=alert_id,
                action="called the patient the same day: passive thoughts, no plan or intent; "
                "safety plan agreed, follow-up booked",
                now=t + timedelta(hours=1),
            )
    _assess(
        ctx,
        patient_id=pid,
        instrument="gad7",
        answers=_gad7(rng.randint(4, 14), rng),
        context="intake",
        at=t + timedelta(minutes=6),
        source="patient",
    )
    _assess(
        ctx,
        patient_id=pid,
        instrument="ort",
        answers=ORT_NONE,
        context="intake",
        at=t + timedelta(minutes=9),
    )
    _assess(
        ctx,
        patient_id=pid,
        instrument="dast10",
        answers=DAST_NONE,
        context="intake",
        at=t + timedelta(minutes=12),
    )
    if consent:
        _consent(
            ctx,
            pid,
            "granted",
            t + timedelta(minutes=15),
            "registry consent form v2 signed at intake",
        )
    _screen(ctx, pid, IV, t + timedelta(minutes=20))

    # -- the plan, signed and co-signed three days later
    at = _at(day0 + timedelta(days=3), time(13, 0), ctx)
    yield at
    goals: list[dict[str, object]] = [
        {
            "text": "reduce pain enough to walk 30 minutes"
            if not depression
            else "return to work part time"
        }
    ]
    plan_id = _plan(ctx, pid, protocol, dosing.DoseOptions(bag_mg=100, bag_ml=100), at, goals=goals)
    planned = _planned(ctx, plan_id)
    first_day = day0 + timedelta(days=7)

    # -- the course: each session with its questionnaires before and after
    last_leave: datetime | None = None
    for n, s in enumerate(planned[:given], start=1):
        start = _at(first_day + timedelta(days=int(s["day"]) - 1), slot, ctx)
        if start - timedelta(minutes=15) > ctx.now:  # the course goes on after today
            _book(ctx, plan_id, planned[n - 1 : given], first_day, slot, index)
            return
        yield start - timedelta(minutes=15)
        value = traj.value(sessions_done=n - 1, course_len=given, days_since_course=None)
        _assess(
            ctx,
            patient_id=pid,
            instrument=measure,
            answers=_answers(measure, score(value + rng.uniform(-0.8, 0.8)), rng),
            context="pre_session",
            at=start - timedelta(minutes=15),
            source="patient",
        )
        yield start
        last_leave = _give_iv(
            ctx, plan_id, int(s["number"]), start, alert=(index % 6 == 1 and n == 2)
        )
        yield last_leave + timedelta(hours=20)
        value = traj.value(sessions_done=n, course_len=given, days_since_course=None)
        _assess(
            ctx,
            patient_id=pid,
            instrument=measure,
            answers=_answers(measure, score(value + rng.uniform(-0.6, 0.6)), rng),
            context="post_session",
            at=last_leave + timedelta(hours=20),
            source="patient",
        )
    if last_leave is None:
        return
    end_day = last_leave.astimezone(ctx.settings.zone).date()
    at = _at(end_day + timedelta(days=2), time(12, 0), ctx)
    yield at
    if len(planned) > given:
        reason = (
            "no meaningful benefit after the sessions given"
            if not responder
            else "goals met early; patient preferred to stop"
        )
        _complete(ctx, plan_id, at, stop=reason)
    else:
        _complete(ctx, plan_id, at)
    _assess(
        ctx,
        patient_id=pid,
        instrument="pgic",
        answers=[rng.choice((5, 6, 6, 7)) if responder else rng.choice((3, 4))],
        context="follow_up",
        at=at + timedelta(minutes=5),
        source="patient",
    )
    plan_notes[pid] = {"responder": responder, "protocol": protocol}

    if person.take_home and responder:
        yield from _take_home(ctx, pid, end_day)
        responder = False  # on the oral follow-on: no IV booster

    # -- follow-up every two weeks; a booster course when a loss of response is confirmed
    course_end = last_leave
    boosters_given = 0
    day = end_day
    stop_after = rng.randint(30, 80) if lost else None
    while True:
        day = day + timedelta(days=14)
        at = _at(day, time(18, 30), ctx)
        if at > ctx.now:
            return
        if stop_after is not None and (day - end_day).days > stop_after:
            return  # lost to follow-up
        yield at
        since = (at - course_end).total_seconds() / 86400
        value = traj.value(sessions_done=given, course_len=given, days_since_course=since)
        last_score = _assess(
            ctx,
            patient_id=pid,
            instrument=measure,
            answers=_answers(measure, score(value + rng.uniform(-0.7, 0.7)), rng),
            context="follow_up",
            at=at,
            source="patient",
        )
        if not responder or boosters_given >= 2 or since < traj.durable_days + 20:
            continue
        decided = _at(day + timedelta(days=1), time(11, 0), ctx)
        if decided > ctx.now:
            return
        yield decided
        if not _decide_booster(ctx, pid, measure, last_score, decided):
            continue
        booster_day = day + timedelta(days=7)
        at = _at(booster_day - timedelta(days=3), time(13, 0), ctx)
        if _at(booster_day, slot, ctx) + timedelta(days=3) > ctx.now:
            return
        yield at
        booster = _plan(ctx, pid, protocol, dosing.DoseOptions(bag_mg=100, bag_ml=100), at)
        for s in _planned(ctx, booster)[:2]:
            start = _at(booster_day + timedelta(days=int(s["day"]) - 1), slot, ctx)
            yield start
            course_end = _give_iv(ctx, booster, int(s["number"]), start, alert=False)
        at = course_end + timedelta(hours=22)
        yield at
        _complete(ctx, booster, at)
        ctx.count("booster courses")
        boosters_given += 1
        traj = Trajectory(
            baseline=traj.baseline, effect=traj.effect * 0.95, durable_days=traj.durable_days
        )
        day = course_end.astimezone(ctx.settings.zone).date()


def _book(
    ctx: Ctx, plan_id: int, rest: list[dict[str, Any]], first_day: date, slot: time, index: int
) -> None:
    """Book the sessions of a course still to come on the clinic's open days (a session
    on a closed day moves to the next open day, as "book all sessions" places it; one the
    clinic's days or a clash with another booking cannot hold is left unbooked, as the
    front desk would), and an integration session with the therapist after the first."""
    hours = booking.clinic_hours(ctx.settings)
    wanted = [PlannedDay(int(s["number"]), int(s["day"])) for s in rest]
    try:
        days = {
            p.number: (p.date, p.why_moved)
            for p in place_sessions(sessions=wanted, start=first_day, hours=hours)
        }
    except InvalidInput:  # too far to move: only the sessions on open days
        days = {w.number: (first_day + timedelta(days=w.day - 1), None) for w in wanted}
    first_booked: date | None = None
    for number, (day, why) in days.items():
        try:
            booking.book(
                session=ctx.session,
                actor=ctx.staff.nurse,
                plan_id=plan_id,
                session_number=number,
                chair_id=1 + index % 4,
                starts_at=_at(day, slot, ctx),
                now=ctx.now,
                settings=ctx.settings,
                why_moved=why,
            )
            ctx.count("bookings")
            first_booked = first_booked or day
        except (Conflict, InvalidInput):
            continue
    if first_booked is not None:
        after = first_booked + timedelta(days=1)
        while hours.closed_because(after) is not None:
            after += timedelta(days=1)
        therapy.add_therapy(
            session=ctx.session,
            actor=ctx.staff.physician,
            plan_id=plan_id,
            kind="integration",
            therapist_id=ctx.staff.therapist.user_id or 0,
            planned_date=after,
            now=ctx.now,
        )
        ctx.count("therapy sessions planned")


#: the demo's oral follow-on dose: 50 mg, inside the 25-300 mg fixed doses Andrade 2019
#: reports (oral-followon protocol file) and the demo's EXAMPLE take-home limits
ORAL_DOSE_MG = 50


def _take_home(ctx: Ctx, pid: int, end_day: date) -> Story:
    """An oral follow-on plan after the IV course, with take-home supplies every 14 days."""
    at = _at(end_day + timedelta(days=6), time(14, 0), ctx)
    if at > ctx.now:
        return
    yield at
    _screen(ctx, pid, ORAL, at)
    plan_id = _plan(
        ctx, pid, "oral-followon", dosing.DoseOptions(dose_mg=ORAL_DOSE_MG), at + timedelta(hours=1)
    )
    day = end_day + timedelta(days=7)
    for number in range(1, 5):
        at = _at(day, time(15, 30), ctx)
        if at > ctx.now:
            return
        yield at
        safeguards.dispense(
            session=ctx.session,
            actor=ctx.staff.physician,
            settings=ctx.settings,
            plan_id=plan_id,
            form="oral solution",
            strength_mg=ORAL_DOSE_MG,
            units=14,
            days_supply=14,
            directions=f"{ORAL_DOSE_MG} mg by mouth once daily; keep locked away",
            lot=f"OS{at:%y%m}-{number}",
            pdmp_checked=True,
            now=at,
        )
        ctx.count("take-home supplies")
        day += timedelta(days=14)


def _answers(measure: str, total: int, rng: random.Random) -> list[int]:
    return _phq9(total, rng) if measure == "phq9" else [total]


def seed_history(
    *,
    session: Session,
    settings: Settings,
    now: datetime,
    staff: Staff,
    people: tuple[Person, ...],
) -> Ctx:
    """Make every person's history up to ``now``; returns the context with counts."""
    ctx = Ctx(session=session, settings=settings, staff=staff, now=now, rng=random.Random(SEED))
    first = now - timedelta(days=max(p.intake_days_ago for p in people) + 1)
    consent_demo.publish_examples(session=session, actor=staff.physician, at=first)
    notes: dict[int, Any] = {}
    stories = [story(ctx, p, i, notes) for i, p in enumerate(people)]
    with analytics.refresh_deferred(session):  # one rebuild below replaces them all
        run(stories, now=now)
    analytics.refresh_clinic(
        session=session,
        actor=staff.physician,
        now=now,
        loss_confirmations=settings.outcome_loss_confirmations,
    )
    return ctx
