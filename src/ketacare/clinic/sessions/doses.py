"""The doses a patient was given, from the session logs, and the limits on their total.

Two limits stop a session before anything is stored: the clinic's caps on the
cumulative dose (its session policy, :func:`check_cumulative_dose`) and the hard
ceiling per course of the protocol (:func:`check_course_ceiling`), checked when a
session is opened and again before each dose is charted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ketacare.clinic.plans import service as plans
from ketacare.clinic.sessions.cache import state_for
from ketacare.clinic.sessions.orm import DosingSession
from ketacare.core.errors import DoseLimitExceeded, HardLimitNotSet
from ketacare.core.safeguards import CapCheck, CumulativeCap, DoseGiven, PlannedDose, check_caps
from ketacare.core.sessions import FINAL_STATES, delivered_mg
from ketacare.infra import policy as policies
from ketacare.infra.settings import Settings

# Built once: the chart and every dose check read it.
_SESSIONS = (
    select(DosingSession)
    .where(DosingSession.patient_id == bindparam("patient_id"))
    .order_by(DosingSession.id)
)


def doses_given(
    *,
    session: Session,
    patient_id: int,
    now: datetime,
    before: datetime | None = None,
    pending: bool = False,
) -> list[DoseGiven]:
    """Every session of the patient in which dosing started, with what its log says was
    delivered (to the end of dosing, or to ``now`` while still dosing).

    ``before`` keeps only doses whose dosing started at or before it. With ``pending``
    (what a cap check needs) a session opened and not ended whose dosing has not
    started counts too, at its scheduled time with its planned dose, and a session
    still dosing counts with at least its planned dose. Not audited: the caller audits
    its own read.
    """
    roots = plans.course_roots(session=session, patient_id=patient_id)
    out: list[DoseGiven] = []
    for row in session.scalars(_SESSIONS, {"patient_id": patient_id}):
        state = state_for(session=session, row=row)
        started = state.dosing_started_at
        planned_mg = state.setup.planned_dose_mg or 0.0
        if started is None:
            if not pending or state.state in FINAL_STATES:
                continue
            at, mg, ongoing = state.scheduled_at, planned_mg, True
        else:
            ended = state.dosing_ended_at or state.finished_at
            at, mg, ongoing = started, delivered_mg(state, at=ended or now), ended is None
            if pending and ongoing:
                mg = max(mg, planned_mg)
        if before is not None and at > before:
            continue
        out.append(
            DoseGiven(
                session_id=row.id,
                course_id=roots.get(row.plan_id, row.plan_id),
                at=at,
                molecule=state.setup.molecule,
                route=state.setup.route,
                mg=mg,
                weight_kg=state.setup.weight_kg,
                ongoing=ongoing,
            )
        )
    out.sort(key=lambda d: (d.at, d.session_id))
    return out


def given_by_plan(*, session: Session, patient_id: int, now: datetime) -> dict[int, float]:
    """The mg delivered in each of the patient's plans, by plan id (a plan none of whose
    sessions started dosing is absent): what was given beside what was planned. Not
    audited: the caller's read of the plans is."""
    plan_of = dict(
        session.execute(
            select(DosingSession.id, DosingSession.plan_id).where(
                DosingSession.patient_id == patient_id
            )
        )
        .tuples()
        .all()
    )
    out: dict[int, float] = {}
    for dose in doses_given(session=session, patient_id=patient_id, now=now):
        plan_id = plan_of[dose.session_id]
        out[plan_id] = out.get(plan_id, 0.0) + dose.mg
    return out


def cumulative_caps(settings: Settings) -> tuple[CumulativeCap, ...]:
    """The clinic's caps on the cumulative dose (none unless its session policy sets them)."""
    policy = policies.session_policy(settings)
    return policy.cumulative_caps if policy is not None else ()


def check_cumulative_dose(
    *,
    session: Session,
    settings: Settings,
    patient_id: int,
    planned: PlannedDose,
    at: datetime,
    now: datetime,
) -> tuple[CapCheck, ...]:
    """The clinic's caps against the patient's doses with ``planned`` added at ``at``.

    Every dose counts, also one later than ``at`` (a session charted after the fact
    falls inside the windows of the doses given since), and so does every session
    opened and not ended: one not yet dosing with its planned dose, one still dosing
    with at least its planned dose (two sessions opened before either is given would
    otherwise each pass a cap that both together exceed).

    Raises
    ------
    DoseLimitExceeded
        When the planned dose would take a total above a cap; the message names the
        totals, the cap and who approved it. Nothing is stored.
    """
    caps = cumulative_caps(settings)
    if not caps:
        return ()
    doses = doses_given(session=session, patient_id=patient_id, now=now, pending=True)
    checks = check_caps(doses, caps=caps, at=at, planned=planned)
    over = [c for c in checks if c.exceeded]
    if over:
        open_ = sorted(d.session_id for d in doses if d.ongoing and d.molecule == planned.molecule)
        note = (
            f" (counted with their planned dose: session(s) {', '.join(map(str, open_))} "
            "opened and not finished; end one that will not be given)"
            if open_
            else ""
        )
        raise DoseLimitExceeded(
            "this session would exceed the clinic's cap on the cumulative dose: "
            + "; ".join(c.message() for c in over)
            + note
            + ". A physician must change the plan (or the clinic its policy)."
        )
    return checks


#: Entries that give a dose: the course ceiling is checked again before each is written.
COURSE_KINDS = frozenset({"start_infusion", "bolus", "self_administration"})


def check_course_ceiling(
    *,
    session: Session,
    patient_id: int,
    plan_id: int,
    setup: Any,
    now: datetime,
    exclude_session: int | None = None,
) -> float:
    """The course's total with this session's planned dose, refused above the hard ceiling
    per course (the protocol's ``course_mg``, from its source or the clinic's protocol policy).

    The course is the plan and the versions it supersedes (:func:`plans.course_roots`);
    its total counts every session of it as :func:`doses_given` does for a cap (what was
    given, a session still open with at least its planned dose), leaving out
    ``exclude_session`` (the session being charted, counted by its planned dose: the
    chair refuses any entry above it). Gives the total.

    Raises
    ------
    DoseLimitExceeded
        Naming the dose (given so far and this session's), the limit and the protocol.
        Nothing is stored.
    HardLimitNotSet
        When the session's protocol has no hard ceiling per course (fail closed).
    """
    ceiling = next(
        (lim for lim in setup.limits if lim.key == "course_mg" and lim.level == "hard"), None
    )
    pid = setup.protocol_id or "(no protocol)"
    if ceiling is None or ceiling.value is None:
        raise HardLimitNotSet(
            f"protocol {pid}: the hard limit per course (course_mg) is not set: no dose is "
            f"given until it is set in the protocol policy file ([{pid}.limits.course_mg] "
            "hard = ...)"
        )
    course = plans.course_roots(session=session, patient_id=patient_id).get(plan_id, plan_id)
    given = [
        d
        for d in doses_given(session=session, patient_id=patient_id, now=now, pending=True)
        if d.course_id == course and d.session_id != exclude_session
    ]
    so_far = sum(d.mg for d in given)
    planned = setup.planned_dose_mg or 0.0
    total = so_far + planned
    if total > ceiling.value * (1 + 1e-9) + 1e-9:
        where = f"sourced: {ceiling.source}" if ceiling.basis == "sourced" else "site policy"
        raise DoseLimitExceeded(
            f"course dose {total:.4g} mg ({so_far:.4g} mg in {len(given)} earlier session(s) of "
            f"this course + this session's planned {planned:.4g} mg) exceeds the hard limit "
            f"{ceiling.value:g} mg per course of protocol {pid} ({where}): no more ketamine in "
            "this course; a physician decides what follows"
        )
    return total
