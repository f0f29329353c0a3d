"""The demo clinic's months of synthetic history, made through the clinic's own services.

Every record here goes through the service a user's request would call (patients,
questionnaires, screenings, plans, bookings, sessions, boosters, take-home supplies,
research consents), under the demo's EXAMPLE site policy and with the demo accounts as
actors, so it is valid, audited and checked exactly as a user's would be. The clock is
injected: each patient's story is a generator that yields the instant of its next step,
and :func:`run` steps all of them in time order (the audit trail reads as months of
clinic life). One fixed random seed draws every number, so the same ``now`` gives the
same records.

The clinic's own work keeps to its opening days: each course is booked when its plan
is signed, on the days the clinic's "book all sessions" places it, and each session is
given at its booking. The people, scores and vitals are invented. The doses are the
protocols' (built by the plan service from the protocol library); the take-home
supplies keep inside the demo's EXAMPLE take-home limits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from itertools import product
from typing import Any

from sqlalchemy.orm import Session

from ketacare.clinic import demo_rems
from ketacare.clinic import demo_steps as steps
from ketacare.clinic.analytics import service as analytics
from ketacare.clinic.assessments import service as assessments
from ketacare.clinic.consent import demo as consent_demo
from ketacare.clinic.demo_model import (
    DAST_NONE,
    ORT_NONE,
    SEED,
    Ctx,
    Person,
    Staff,
    Story,
    Trajectory,
    answers_for,
    clamp,
    gad7_answers,
    phq9_answers,
    run,
)
from ketacare.clinic.followup import demo as followup_demo
from ketacare.clinic.followup.schedules import set_schedule
from ketacare.clinic.plans import booking, dosing, therapy
from ketacare.clinic.safeguards import service as safeguards
from ketacare.core.errors import InvalidInput
from ketacare.core.scheduling import PlannedDay, place_sessions
from ketacare.infra.errors import Conflict
from ketacare.infra.settings import Settings

__all__ = ["SEED", "Person", "Staff", "seed_history"]

# --------------------------------------------------------------------------- stories

IV = {"molecule": "ketamine", "route": "iv_infusion"}
#: the demo clinic's chairs (``Chair 1`` to ``Chair 4``, made with its accounts)
CHAIRS = 4
#: how far the demo's front desk moves a session by hand past a long closure (its own
#: bookings, not a clinical number: the booking still keeps the schedule's spacing)
BY_HAND_SHIFT_DAYS = 31
#: the second time of day the front desk tries when the morning's chairs are taken
AFTERNOON = time(13, 0)
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
    day0 = _open_day(ctx, today - timedelta(days=person.intake_days_ago))
    slot = time(8 + index % 4, (index * 7) % 60)
    depression = person.group == "depression"
    spray = person.esketamine
    measure = "phq9" if depression else "nrs_pain"
    protocol = demo_rems.PROTOCOL if spray else "depression-iv" if depression else "crps-outpatient"
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
    at = steps.local_at(day0, slot, ctx)
    yield at
    pid = steps.intake(ctx, person, index, at)
    ctx.patient_ids[index] = pid

    def score(value: float) -> int:
        return clamp(value, 0, 27 if depression else 10)

    pain0 = traj.baseline if not depression else rng.choice((3, 4, 5))
    phq0 = traj.baseline if depression else rng.choice((6, 8, 11, 13))
    t = at + timedelta(minutes=20)
    steps.assess(
        ctx,
        patient_id=pid,
        instrument="nrs_pain",
        answers=[score(pain0) if not depression else pain0],
        context="intake",
        at=t,
        source="patient",
    )
    steps.assess(
        ctx,
        patient_id=pid,
        instrument="phq9",
        answers=phq9_answers(int(phq0), rng, item9=item9),
        context="intake",
        at=t + timedelta(minutes=3),
        source="patient",
    )
    # the physician answers a self-harm item before any dose: only a patient whose course
    # has not begun yet (it begins a week after intake at the earliest) has it still open
    if ctx.last_alerts and person.intake_days_ago >= 7:
        for alert_id in ctx.last_alerts:
            assessments.acknowledge(
                session=ctx.session,
                actor=ctx.staff.physician,
                alert_id=alert_id,
                action="called the patient the same day: passive thoughts, no plan or intent; "
                "safety plan agreed, follow-up booked",
                now=t + timedelta(hours=1),
            )
    steps.assess(
        ctx,
        patient_id=pid,
        instrument="gad7",
        answers=gad7_answers(rng.randint(4, 14), rng),
        context="intake",
        at=t + timedelta(minutes=6),
        source="patient",
    )
    steps.assess(
        ctx,
        patient_id=pid,
        instrument="ort",
        answers=ORT_NONE,
        context="intake",
        at=t + timedelta(minutes=9),
    )
    steps.assess(
        ctx,
        patient_id=pid,
        instrument="dast10",
        answers=DAST_NONE,
        context="intake",
        at=t + timedelta(minutes=12),
    )
    if consent:
        steps.research_consent(
            ctx,
            pid,
            "granted",
            t + timedelta(minutes=15),
            "registry consent form v2 signed at intake",
        )
    steps.screen(ctx, pid, demo_rems.ESKETAMINE if spray else IV, t + timedelta(minutes=20))
    if spray:
        demo_rems.enrol(ctx, pid, t + timedelta(minutes=65))

    # -- the plan, signed and co-signed three days later, and the course booked
    at = steps.local_at(_open_day(ctx, day0 + timedelta(days=3)), time(13, 0), ctx)
    yield at
    goals: list[dict[str, object]] = [
        {"measure": "phq9", "target": "return to work part time"}
        if depression
        else {"measure": "bpi_interference", "target": "walk 30 minutes without stopping"}
    ]
    options = dosing.DoseOptions() if spray else dosing.DoseOptions(bag_mg=100, bag_ml=100)
    plan_id = steps.signed_plan(ctx, pid, protocol, options, at, goals=goals)
    planned = steps.planned_sessions(ctx, plan_id)
    first_day = _open_day(ctx, day0 + timedelta(days=7))
    starts = _book_course(ctx, plan_id, planned, first_day, slot, index, at + timedelta(hours=1))
    set_schedule(
        session=ctx.session,
        actor=ctx.staff.physician,
        plan_id=plan_id,
        spec=followup_demo.course_schedule(measure),
        reason="demo clinic: the course's questionnaires",
        now=at + timedelta(hours=1),
    )

    # -- the course: each session with its questionnaires before and after
    last_leave: datetime | None = None
    for n, s in enumerate(planned[:given], start=1):
        start = starts[int(s["number"])]
        if start - timedelta(minutes=15) > ctx.now:  # the course goes on after today
            _integration(ctx, pid, plan_id, at, start.astimezone(ctx.settings.zone).date())
            return
        yield start - timedelta(minutes=15)
        value = traj.value(sessions_done=n - 1, course_len=given, days_since_course=None)
        steps.assess(
            ctx,
            patient_id=pid,
            instrument=measure,
            answers=answers_for(measure, score(value + rng.uniform(-0.8, 0.8)), rng),
            context="pre_session",
            at=start - timedelta(minutes=15),
            source="patient",
        )
        yield start
        last_leave = (
            demo_rems.give_spray(ctx, plan_id, int(s["number"]), start)
            if spray
            else steps.give_iv(
                ctx, plan_id, int(s["number"]), start, alert=(index % 6 == 1 and n == 2)
            )
        )
        yield last_leave + timedelta(hours=20)
        value = traj.value(sessions_done=n, course_len=given, days_since_course=None)
        steps.assess(
            ctx,
            patient_id=pid,
            instrument=measure,
            answers=answers_for(measure, score(value + rng.uniform(-0.6, 0.6)), rng),
            context="post_session",
            at=last_leave + timedelta(hours=20),
            source="patient",
        )
    if last_leave is None:
        return
    end_day = last_leave.astimezone(ctx.settings.zone).date()
    at = steps.local_at(_open_day(ctx, end_day + timedelta(days=2)), time(12, 0), ctx)
    if len(planned) > given:
        # stopped at the review after the last session given, before the next one booked
        # (ending the plan cancels the bookings still to come, each with the reason)
        at = last_leave + timedelta(minutes=30)
    yield at
    if len(planned) > given:
        reason = (
            "no meaningful benefit after the sessions given"
            if not responder
            else "goals met early; patient preferred to stop"
        )
        steps.end_plan(ctx, plan_id, at, stop=reason)
    else:
        steps.end_plan(ctx, plan_id, at)
    steps.assess(
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
        at = steps.local_at(day, time(18, 30), ctx)
        if at > ctx.now:
            return
        if stop_after is not None and (day - end_day).days > stop_after:
            return  # lost to follow-up
        yield at
        since = (at - course_end).total_seconds() / 86400
        value = traj.value(sessions_done=given, course_len=given, days_since_course=since)
        last_score = steps.assess(
            ctx,
            patient_id=pid,
            instrument=measure,
            answers=answers_for(measure, score(value + rng.uniform(-0.7, 0.7)), rng),
            context="follow_up",
            at=at,
            source="patient",
        )
        if spray or not responder or boosters_given >= 2 or since < traj.durable_days + 20:
            continue
        decided = steps.local_at(_open_day(ctx, day + timedelta(days=1)), time(11, 0), ctx)
        if decided > ctx.now:
            return
        yield decided
        if not steps.decide_booster(ctx, pid, measure, last_score, decided):
            continue
        booster_day = _open_day(ctx, day + timedelta(days=7))
        at = steps.local_at(_open_day(ctx, booster_day - timedelta(days=3)), time(13, 0), ctx)
        last_day = max(day for day, _ in _placed(ctx, planned[:2], booster_day).values())
        if steps.local_at(last_day, slot, ctx) + timedelta(days=1) > ctx.now:
            return
        yield at
        booster = steps.signed_plan(
            ctx, pid, protocol, dosing.DoseOptions(bag_mg=100, bag_ml=100), at
        )
        two = steps.planned_sessions(ctx, booster)[:2]
        booked = _book_course(ctx, booster, two, booster_day, slot, index, at + timedelta(hours=1))
        for s in two:
            start = booked[int(s["number"])]
            yield start
            course_end = steps.give_iv(ctx, booster, int(s["number"]), start, alert=False)
        at = course_end + timedelta(hours=22)
        yield at
        steps.end_plan(ctx, booster, at, early="booster: the two sessions decided were given")
        ctx.count("booster courses")
        boosters_given += 1
        traj = Trajectory(
            baseline=traj.baseline, effect=traj.effect * 0.95, durable_days=traj.durable_days
        )
        day = course_end.astimezone(ctx.settings.zone).date()


def _open_day(ctx: Ctx, day: date) -> date:
    """``day``, or the clinic's next open day: the clinic's own work (intake, plans,
    sessions, supplies) keeps to its opening days (the demo's EXAMPLE clinic hours)."""
    hours = booking.clinic_hours(ctx.settings)
    while hours.closed_because(day) is not None:
        day += timedelta(days=1)
    return day


def _placed(
    ctx: Ctx, planned: list[dict[str, Any]], first_day: date
) -> dict[int, tuple[date, str | None]]:
    """Each session's day (and why it moved) as "book all sessions" places it: a session
    on a closed day moves to the next open day that keeps the schedule's spacing. Where a
    session would move further than the clinic's limit (a long closure), "book all" is
    refused and the front desk books the rest by hand on those same days."""
    wanted = [PlannedDay(int(s["number"]), int(s["day"])) for s in planned]
    hours = booking.clinic_hours(ctx.settings)
    try:
        placed = place_sessions(sessions=wanted, start=first_day, hours=hours)
    except InvalidInput:
        by_hand = replace(hours, max_shift_days=BY_HAND_SHIFT_DAYS)
        placed = place_sessions(sessions=wanted, start=first_day, hours=by_hand)
    return {p.number: (p.date, p.booking_reason) for p in placed}


def _book_course(
    ctx: Ctx,
    plan_id: int,
    planned: list[dict[str, Any]],
    first_day: date,
    slot: time,
    index: int,
    at: datetime,
) -> dict[int, datetime]:
    """Book the sessions at ``at``, as the front desk does once a plan is signed: each on
    its placed day at the patient's usual time on the patient's usual chair or the next
    free one, else in the afternoon. Each session's start by number (a session no chair
    can hold then is given unbooked at the usual time, as the chair nurse fits it in)."""
    chairs = [1 + (index + k) % CHAIRS for k in range(CHAIRS)]
    starts: dict[int, datetime] = {}
    for number, (day, why) in _placed(ctx, planned, first_day).items():
        starts[number] = steps.local_at(day, slot, ctx)
        for clock, chair_id in product((slot, AFTERNOON), chairs):
            try:
                booking.book(
                    session=ctx.session,
                    actor=ctx.staff.nurse,
                    plan_id=plan_id,
                    session_number=number,
                    chair_id=chair_id,
                    starts_at=steps.local_at(day, clock, ctx),
                    now=at,
                    settings=ctx.settings,
                    why_moved=why,
                )
            except (Conflict, InvalidInput):
                continue  # the chair is taken then, or the day's hours cannot hold it
            starts[number] = steps.local_at(day, clock, ctx)
            ctx.count("bookings")
            break
    return starts


def _integration(ctx: Ctx, pid: int, plan_id: int, signed: datetime, first_to_come: date) -> None:
    """An integration session with the therapist on the open day after the next session,
    the patient's psychotherapy consent signed with the plan (its own random draws)."""
    if consent_demo.consent_to(
        session=ctx.session,
        settings=ctx.settings,
        nurse=ctx.staff.nurse,
        physician=ctx.staff.physician,
        patient_id=pid,
        program=therapy.PROGRAM,
        at=signed,
        rng=random.Random(-pid),
    ):
        ctx.count("consents")
    therapy.add_therapy(
        session=ctx.session,
        actor=ctx.staff.physician,
        plan_id=plan_id,
        kind="integration",
        therapist_id=ctx.staff.therapist.user_id or 0,
        planned_date=_open_day(ctx, first_to_come + timedelta(days=1)),
        now=ctx.now,
    )
    ctx.count("therapy sessions planned")


#: the demo's oral follow-on dose: 50 mg, inside the 25-300 mg fixed doses Andrade 2019
#: reports (oral-followon protocol file) and the demo's EXAMPLE take-home limits
ORAL_DOSE_MG = 50


def _take_home(ctx: Ctx, pid: int, end_day: date) -> Story:
    """An oral follow-on plan after the IV course, with take-home supplies every 14 days."""
    at = steps.local_at(_open_day(ctx, end_day + timedelta(days=6)), time(14, 0), ctx)
    if at > ctx.now:
        return
    yield at
    steps.screen(ctx, pid, ORAL, at)
    plan_id = steps.signed_plan(
        ctx, pid, "oral-followon", dosing.DoseOptions(dose_mg=ORAL_DOSE_MG), at + timedelta(hours=1)
    )
    day = end_day + timedelta(days=7)
    for number in range(1, 5):
        at = steps.local_at(_open_day(ctx, day), time(15, 30), ctx)
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
    demo_rems.certify_site(ctx, first)
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
