"""Dosing sessions: open from a signed plan, append events (optimistic), derive everything.

The log is the record; the chair view, the board and the summary are replays of it
(:func:`ketacare.core.sessions.replay`). Two staff writing at once never lose each
other's entries: each write names the sequence number it saw, and a stale one is
refused with a message saying to reload.

A write claims the next entry number on the session row, guarded by the number it
saw, then inserts the entry (:mod:`~ketacare.clinic.sessions.log`); when this
process's cached state (:mod:`~ketacare.clinic.sessions.cache`) is the one the writer
saw, it does so without reading the row first. The doses given and their limits are in
:mod:`~ketacare.clinic.sessions.doses`, the alerts' inbox in
:mod:`~ketacare.clinic.sessions.inbox`, the view in :mod:`~ketacare.clinic.sessions.view`
and the nurses' board in :mod:`~ketacare.clinic.sessions.board`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ketacare.clinic.analytics import service as analytics
from ketacare.clinic.audit import service as audit
from ketacare.clinic.plans import booking, dosing, therapy
from ketacare.clinic.plans import service as plans
from ketacare.clinic.plans.gates import MOLECULES, ROUTES, treatment_problems
from ketacare.clinic.plans.orm import Appointment
from ketacare.clinic.screenings import service as screenings
from ketacare.clinic.sessions import doses
from ketacare.clinic.sessions.cache import CHUNK, state_for, states_for
from ketacare.clinic.sessions.inbox import ALERT_KINDS, sync_inbox
from ketacare.clinic.sessions.log import SessionHead, append, fast_append, head
from ketacare.clinic.sessions.orm import DosingSession
from ketacare.clinic.sessions.words import STATE_WORDS
from ketacare.core.errors import InvalidInput
from ketacare.core.protocols import PlannedSession
from ketacare.core.protocols.lifecycle import GIVEN, next_status
from ketacare.core.protocols.plan import PlanDoc
from ketacare.core.safeguards import PlannedDose
from ketacare.core.sessions import (
    Amendment,
    MonitoringOrder,
    PreDoseCheck,
    Scheduled,
    SessionState,
    apply_order,
    event_from_dict,
    needs_order,
    session_setup,
)
from ketacare.core.sessions.events import Medication
from ketacare.core.terminology.units import stated_dose
from ketacare.infra import policy as policies
from ketacare.infra.db import existing
from ketacare.infra.errors import Conflict, NotFound
from ketacare.infra.settings import Settings


def get_session(*, session: Session, session_id: int) -> DosingSession:
    return existing(session, DosingSession, session_id, "session")


def state_of(*, session: Session, session_id: int) -> SessionState:
    """The replayed state of a session."""
    return state_for(session=session, row=get_session(session=session, session_id=session_id))


def states_of(*, session: Session, session_ids: Sequence[int]) -> dict[int, SessionState]:
    """The replayed states of many sessions (their logs read a few queries at a time);
    an id that is not a session is refused as :class:`NotFound`."""
    rows = [
        row
        for start in range(0, len(session_ids), CHUNK)
        for row in session.scalars(
            select(DosingSession).where(DosingSession.id.in_(session_ids[start : start + CHUNK]))
        )
    ]
    missing = set(session_ids) - {row.id for row in rows}
    if missing:
        raise NotFound(f"session {min(missing)} does not exist")
    return states_for(session=session, rows=rows)


def _planned(plan_schedule: PlanDoc, number: int) -> dict[str, Any] | None:
    for s in plan_schedule["sessions"]:
        if int(s["number"]) == number:
            return dict(s)
    return None


def _not_twice_the_same_day(
    *, session: Session, plan: Any, session_number: int, at: datetime, zone: ZoneInfo, now: datetime
) -> None:
    """Refuse a session of a course on a clinic day another of its sessions was dosed,
    when the protocol places the two on different days (a daily course is one infusion a
    day). Moving a session is the booking's; changing the spacing is a new version of
    the plan, by a physician."""
    planned = {int(s["number"]): int(s["day"]) for s in plan.schedule["sessions"]}
    roots = plans.course_roots(session=session, patient_id=plan.patient_id)
    course = {p for p, root in roots.items() if root == roots.get(plan.id, plan.id)}
    others = dict(
        session.execute(
            select(DosingSession.id, DosingSession.session_number).where(
                DosingSession.plan_id.in_(course), DosingSession.session_number != session_number
            )
        )
        .tuples()
        .all()
    )
    day = at.astimezone(zone).date()
    for dose in doses.doses_given(session=session, patient_id=plan.patient_id, now=now):
        number = others.get(dose.session_id)
        if number is None or dose.at.astimezone(zone).date() != day:
            continue
        if planned.get(number) == planned.get(session_number):
            continue  # the protocol gives both on one day
        raise Conflict(
            f"session {number} of this course was given today at "
            f"{dose.at.astimezone(zone):%H:%M} ({dose.mg:g} mg): the protocol places "
            f"session {session_number} on another day (day {planned.get(session_number)}, "
            f"not day {planned.get(number)}), so it is not given the same day. Book it for "
            "its own day; a physician changes the schedule with a new version of the plan"
        )


def open_session(
    *,
    session: Session,
    actor: audit.Actor,
    settings: Settings,
    plan_id: int,
    session_number: int,
    now: datetime,
    appointment_id: int | None = None,
    opened_at: datetime | None = None,
    off_schedule_reason: str | None = None,
    chair_id: int | None = None,
    chair_required: bool = False,
) -> DosingSession:
    """Open a session of a signed plan (a required preparation session must be documented,
    and the patient's consent to the treatment's program must be in force).

    The session sits on ``chair_id`` when one is named (a booked session moved to
    another chair), else on its booking's chair; with ``chair_required`` (the chair's
    page), a session with no booking must name its chair, so the board and the calendar
    show where the patient is.

    A session booked for another day (its appointment, or the plan's booking of that
    session) opens only with ``off_schedule_reason``; the booked day and the reason are
    kept on the session and shown in its record.
    """
    plan = plans.get_plan(session=session, plan_id=plan_id)
    if plan.status not in GIVEN:
        raise Conflict(f"plan {plan_id} is {plan.status}: only a signed plan's sessions are given")
    if not therapy.preparation_done(session=session, plan=plan):
        raise InvalidInput(
            "this plan requires a documented preparation session before the first dose"
        )
    if _planned(plan.schedule, session_number) is None:
        raise InvalidInput(f"plan {plan_id} has no session {session_number}")
    existing = session.scalar(
        select(DosingSession).where(
            DosingSession.plan_id == plan_id,
            DosingSession.session_number == session_number,
            DosingSession.state.not_in(("stopped_early",)),
        )
    )
    if existing is not None:
        raise Conflict(
            f"session {session_number} of plan {plan_id} "
            + _opened_before(session=session, row=existing, zone=settings.zone)
        )
    chosen = None if chair_id is None else booking.active_chair(session, chair_id).id
    chair_id = None
    appt: Appointment | None = None
    if appointment_id is not None:
        appt = session.get(Appointment, appointment_id)
        if appt is None or appt.plan_id != plan_id:
            raise InvalidInput(f"appointment {appointment_id} is not part of plan {plan_id}")
        if appt.session_number != session_number:
            raise InvalidInput(
                f"appointment {appointment_id} is booked for session {appt.session_number}, "
                f"not session {session_number}"
            )
        if appt.status not in booking.HOLDING:
            raise Conflict(
                f"appointment {appointment_id} is {appt.status}: a session cannot be opened "
                "for it (book the session again, or open it without the appointment)"
            )
        chair_id = appt.chair_id
    else:
        appt = session.scalar(
            select(Appointment).where(
                Appointment.plan_id == plan_id,
                Appointment.session_number == session_number,
                # attended: a session opened for it was stopped early and is opened again
                Appointment.status.in_(booking.HOLDING),
            )
        )
        if appt is not None:
            appointment_id, chair_id = appt.id, appt.chair_id
    chair_id = chosen if chosen is not None else chair_id
    protocol = dosing.library(settings).get(protocol_id=plan.protocol_id)
    built = dosing.rebuild_undated(settings=settings, plan=plan, protocol=protocol)
    planned: PlannedSession = next(s for s in built.sessions if s.number == session_number)
    setup = session_setup(
        protocol=protocol,
        weight_kg=plan.weight_kg,
        planned=planned,
        policy=policies.session_policy(settings),
        limit_policy=dosing.protocol_policy(settings),
    )
    problem = next(
        treatment_problems(
            session=session,
            patient_id=plan.patient_id,
            protocol=protocol,
            on=(opened_at or now).date(),
        ),
        None,
    )
    if problem is not None:
        raise InvalidInput(f"no session opens for plan {plan_id}: {problem}")
    if needs_order(protocol):
        if not plan.monitoring_order:
            raise InvalidInput(
                f"plan {plan_id} was signed without a monitoring order: a physician must sign "
                "a new version with one before a supervised session is given"
            )
        setup = apply_order(setup, MonitoringOrder.from_dict(plan.monitoring_order))
    if setup.observation.value is None:
        # fail closed: without a minimum observation, discharge could never be checked
        raise InvalidInput(
            f"no minimum observation after dosing is set for plan {plan_id} (protocol "
            f"{plan.protocol_id} publishes none, the plan's monitoring order has none and the "
            "clinic's session policy sets no observation_min): a physician must sign a new "
            "version of the plan with one, or the clinic must set it, before a session opens"
        )
    at = opened_at or now
    if at.tzinfo is None or at > now:
        raise InvalidInput(
            "the session's start must be a past time with a time zone "
            "(charting after the fact is allowed, ahead of time is not)"
        )
    if chair_id is None and chair_required:  # asked last: the clinical refusals come first
        raise InvalidInput(
            f"session {session_number} of plan {plan_id} has no booking: choose the chair "
            "it is given on"
        )
    _not_twice_the_same_day(
        session=session,
        plan=plan,
        session_number=session_number,
        at=at,
        zone=settings.zone,
        now=now,
    )
    booked_day, off_schedule = _off_schedule(
        appt=appt,
        at=at,
        zone=settings.zone,
        session_number=session_number,
        plan_id=plan_id,
        reason=off_schedule_reason,
    )
    # the clinic's caps on the cumulative dose, before anything is stored
    doses.check_cumulative_dose(
        session=session,
        settings=settings,
        patient_id=plan.patient_id,
        planned=PlannedDose(
            molecule=setup.molecule,
            mg=setup.planned_dose_mg or 0.0,
            weight_kg=setup.weight_kg,
        ),
        at=at,
        now=now,
    )
    doses.check_course_ceiling(
        session=session, patient_id=plan.patient_id, plan_id=plan_id, setup=setup, now=now
    )
    row = DosingSession(
        plan_id=plan_id,
        patient_id=plan.patient_id,
        session_number=session_number,
        appointment_id=appointment_id,
        chair_id=chair_id,
        state="scheduled",
        last_seq=0,
        booked_day=booked_day,
        off_schedule_reason=off_schedule,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    append(session, row, None, Scheduled(at=at, by=actor.username, setup=setup), 0, actor, now)
    if appt is not None:
        # the patient came for this booking: the calendar shows it attended
        booking.mark_attended(
            session=session, actor=actor, appointment=appt, dosing_session_id=row.id, now=now
        )
    audit.record(
        session=session,
        actor=actor,
        action="create",
        resource_type="session",
        resource_id=row.id,
        patient_id=plan.patient_id,
        at=now,
        detail={"plan": plan_id, "session": session_number}
        | (
            {"booked_day": booked_day.isoformat(), "off_schedule_reason": off_schedule}
            if booked_day
            else {}
        ),
    )
    return row


def _opened_before(*, session: Session, row: DosingSession, zone: ZoneInfo) -> str:
    """Why a session number does not open again: given (discharged, when) or still open."""
    if row.state == "discharged":
        ended = state_for(session=session, row=row).finished_at or row.updated_at
        when = ended.astimezone(zone).strftime("%a %d %b %Y %H:%M")
        return f"was already given (session {row.id}, discharged {when})"
    return f"is already open (session {row.id}, {STATE_WORDS.get(row.state, row.state)})"


def _off_schedule(
    *,
    appt: Appointment | None,
    at: datetime,
    zone: ZoneInfo,
    session_number: int,
    plan_id: int,
    reason: str | None,
) -> tuple[date | None, str | None]:
    """The booked day and the reason when a session opens on another day than booked.

    Nothing when it has no booking or opens on the booked day (in the clinic's zone);
    refused without a reason.
    """
    if appt is None or appt.status not in booking.HOLDING:
        return None, None
    booked = appt.starts_at.astimezone(zone).date()
    opened = at.astimezone(zone).date()
    if booked == opened:
        return None, None
    text = (reason or "").strip()
    if len(text) < 3:
        raise InvalidInput(
            f"session {session_number} of plan {plan_id} is booked for {booked:%a %d %b %Y}, "
            f"not {opened:%a %d %b %Y}: opening it on another day needs a reason "
            "(off_schedule_reason)"
        )
    return booked, text


DOSE_KINDS = frozenset({"start_infusion", "bolus", "self_administration", "amendment"})
"""Entries after which the clinic dashboard's summary of the patient is recomputed."""


def record(
    *,
    session: Session,
    actor: audit.Actor,
    session_id: int,
    data: Mapping[str, Any],
    expected_seq: int,
    now: datetime,
) -> SessionState:
    """Append one event (kind and fields as in the event model); who and when are ours."""
    return record_entry(
        session=session,
        actor=actor,
        session_id=session_id,
        data=data,
        expected_seq=expected_seq,
        now=now,
    )[1]


def record_entry(
    *,
    session: Session,
    actor: audit.Actor,
    session_id: int,
    data: Mapping[str, Any],
    expected_seq: int,
    now: datetime,
) -> tuple[SessionHead, SessionState]:
    """As :func:`record`, also giving the session's head (for the answer)."""
    payload = {k: v for k, v in data.items() if k not in ("by", "seq")}
    at = payload.get("at")
    payload["at"] = now.isoformat() if at in (None, "") else at
    payload["by"] = actor.username
    event = event_from_dict(payload)
    if event.at > now:
        raise InvalidInput(f"at {event.at.isoformat()} is in the future")
    if isinstance(event, Medication):
        stated_dose(event.dose)  # a new entry names its unit; older logs read as written
    _refuse_a_hand_screening_check(event)
    if payload.get("kind") in doses.COURSE_KINDS:
        _course_ceiling_at_the_chair(session, session_id, now)
    if payload.get("kind") in ("start_infusion", "self_administration"):
        _open_alerts_hold_the_first_dose(session, session_id)
        expected_seq = _screening_from_record(session, session_id, event, expected_seq, actor, now)
    fast = fast_append(session, session_id, event, expected_seq, actor, now)
    if fast is not None:
        row, state = fast
    else:
        row = head(session=session, session_id=session_id)
        state = append(
            session, row, state_for(session=session, row=row), event, expected_seq, actor, now
        )
    if payload.get("kind") in ALERT_KINDS:
        sync_inbox(session=session, actor=actor, head=row, state=state, now=now)
    if payload.get("kind") in DOSE_KINDS:
        # a dose given (or an entry corrected) can change the patient's outcome summary
        analytics.refresh_patient(session=session, patient_id=row.patient_id, now=now)
    if state.state == "dosing" and payload.get("kind") in ("start_infusion", "self_administration"):
        plan = plans.get_plan(session=session, plan_id=row.plan_id)
        activated = next_status(plan.status, "activate")  # the first dose activates a plan
        if activated is not None:
            plan.status = activated
    audit.record(
        session=session,
        actor=actor,
        action="record",
        resource_type="session",
        resource_id=row.id,
        patient_id=row.patient_id,
        at=now,
        detail={"kind": payload.get("kind"), "seq": state.last_seq},
    )
    return row, state


#: The pre-dose item read from the record when dosing starts, never ticked by hand.
RECORD_CHECK = "screening_valid"


def _refuse_a_hand_screening_check(event: Any) -> None:
    """Whether a screening holds is the record's answer, not a tick (nor a corrected tick)."""
    entry = event.replacement if isinstance(event, Amendment) else event
    if isinstance(entry, PreDoseCheck) and entry.item == RECORD_CHECK:
        raise InvalidInput(
            "the screening is not ticked by hand: it is read from the record when dosing "
            "starts (a physician-signed screening in force for the plan's molecule and route)"
        )


def screening_for_session(
    *, session: Session, patient_id: int, state: SessionState, at: datetime
) -> screenings.Coverage:
    """The record's screening for the session's molecule and route at ``at`` (a Coverage)."""
    setup = state.setup
    assert setup is not None  # the first entry of every session carries its setup
    return screenings.coverage(
        session=session,
        patient_id=patient_id,
        molecule=MOLECULES[setup.molecule],
        route=ROUTES[setup.route],
        at=at,
    )


def _screening_from_record(
    session: Session,
    session_id: int,
    event: Any,
    expected_seq: int,
    actor: audit.Actor,
    now: datetime,
) -> int:
    """Before the first dose, enter the screening check from the record (or refuse).

    The check is entered by the same write as the dose, dated with it, naming the
    screening it read; without a signed, unexpired screening that allows the plan's
    molecule and route, dosing does not start and nothing is stored. Gives the entry
    number the dose is then written after.
    """
    row = head(session=session, session_id=session_id)
    before = state_for(session=session, row=row)
    if (
        before.last_seq != expected_seq  # stale: the write below says so
        or before.state != "pre_dose_checks"
        or before.dosing_started_at is not None
        or before.setup is None
        or RECORD_CHECK not in before.setup.required_checks
    ):
        return expected_seq
    covered = screening_for_session(
        session=session, patient_id=row.patient_id, state=before, at=event.at
    )
    if not covered.ok:
        raise InvalidInput(f"dosing cannot start: {covered.problem}")
    check = PreDoseCheck(
        at=event.at,
        by=actor.username,
        item=RECORD_CHECK,
        ok=True,
        detail=f"from the record: {covered.describe()}",
    )
    return append(session, row, before, check, expected_seq, actor, now).last_seq


def _open_alerts_hold_the_first_dose(session: Session, session_id: int) -> None:
    """Dosing does not start while an alert of the patient raised elsewhere (a
    questionnaire's self-harm item, a therapist's risk concern, an earlier session's
    alert) is unacknowledged: the chair's banner asks for it to be reviewed before the
    dose, and this makes that so. Whoever may acknowledge alerts records what was done
    (the physician's call, a C-SSRS), then the dose goes ahead. Later doses of a session
    already dosing are not held: the session's own alerts stand at the chair."""
    from ketacare.clinic.assessments.service import open_alerts

    row = head(session=session, session_id=session_id)
    if state_for(session=session, row=row).dosing_started_at is not None:
        return
    held = [
        a for a in open_alerts(session=session, patient_id=row.patient_id) if a.session_id != row.id
    ]
    if held:
        listed = "; ".join(
            f'"{a.message.rstrip(".")}" (raised {a.raised_at.isoformat(timespec="minutes")})'
            for a in held
        )
        raise Conflict(
            f"dosing cannot start: {len(held)} alert(s) of this patient are open: {listed}. "
            "Acknowledge each on the Alerts page with what was done (for a self-harm answer: "
            "the risk assessed, with the responsible physician), then start the dose"
        )


def _course_ceiling_at_the_chair(session: Session, session_id: int, now: datetime) -> None:
    """Before a dose is charted: the course ceiling with the sessions opened since."""
    row = head(session=session, session_id=session_id)
    state = state_for(session=session, row=row)
    if state.setup is None:
        return
    doses.check_course_ceiling(
        session=session,
        patient_id=row.patient_id,
        plan_id=row.plan_id,
        setup=state.setup,
        now=now,
        exclude_session=row.id,
    )


def sessions_of_plan(*, session: Session, plan_id: int) -> list[DosingSession]:
    return list(
        session.scalars(
            select(DosingSession)
            .where(DosingSession.plan_id == plan_id)
            .order_by(DosingSession.session_number, DosingSession.id)
        )
    )


def record_read(*, session: Session, actor: audit.Actor, row: DosingSession, now: datetime) -> None:
    """Audit a read of the session (the chair view, the API)."""
    audit.read_row(row, session=session, actor=actor, at=now, resource_type="session")


def record_summary_read(
    *,
    session: Session,
    actor: audit.Actor,
    row: DosingSession,
    now: datetime,
    export: str | None = None,
) -> None:
    """Audit a read of the session's summary, or its export (``export`` names the format)."""
    audit.record(
        session=session,
        actor=actor,
        action="read" if export is None else "export",
        resource_type="session_summary",
        resource_id=row.id,
        patient_id=row.patient_id,
        at=now,
        detail=None if export is None else {"format": export},
    )
