"""The clinic calendar: chairs, how long a session holds one, booking a plan's sessions.

A booking holds its chair for the planned dosing time plus the observation after it
(:func:`chair_hours`); a double-booked chair, a session booked closer to another than
its protocol spaces them, a closed day or a time outside the clinic's hours
(``KETACARE_CLINIC_HOURS_FILE``) is refused. "Book all sessions" (:func:`book_course`)
follows the plan's own dates and moves a session planned on a closed day to the next
open day (:mod:`ketacare.core.scheduling.placement`). An appointment is moved or
cancelled with a reason and keeps its history (:class:`AppointmentEvent`, append-only);
one whose start has passed with no session opened is marked not attended (a no-show,
:func:`mark_not_attended`); ending or superseding a plan cancels its bookings still to
come (:func:`cancel_for_ended_plan`).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from ketacare.clinic.audit import service as audit
from ketacare.clinic.plans.dosing import library
from ketacare.clinic.plans.orm import Appointment, AppointmentEvent, Chair, Plan
from ketacare.clinic.plans.service import get_plan
from ketacare.core.errors import InvalidInput
from ketacare.core.protocols.lifecycle import GIVEN
from ketacare.core.scheduling import ClinicHours, PlannedDay, place_sessions
from ketacare.core.sessions.orders import OBSERVATION
from ketacare.infra import policy as policies
from ketacare.infra.db import existing
from ketacare.infra.errors import Conflict
from ketacare.infra.settings import Settings

#: an appointment in one of these holds its chair and its place in the course (a booking
#: still to come, or one the patient came to: a session was opened for it)
HOLDING = ("booked", "attended")


def chairs(*, session: Session) -> list[Chair]:
    return list(session.scalars(select(Chair).where(Chair.active).order_by(Chair.name)))


def session_days(plan: Plan) -> dict[int, tuple[int, float]]:
    """session number -> (day, dosing hours; 0 for a dose given at once) from the schedule."""
    out = {}
    for s in plan.schedule["sessions"]:
        duration = s.get("duration_h") or 0.0
        out[int(s["number"] if "number" in s else s["session"])] = (int(s["day"]), float(duration))
    return out


def observation_min(*, settings: Settings, plan: Plan) -> float | None:
    """The minimum observation after dosing, as a session of ``plan`` will enforce it.

    The plan's monitoring order where it carries one (it is at least the protocol's
    sourced minimum); otherwise the stricter of the protocol's and the clinic's; None
    when nobody set it (the session will not open: see the sessions service).
    """
    ordered = plan.monitoring_order["values"].get(OBSERVATION) if plan.monitoring_order else None
    if ordered is not None:
        return float(ordered)
    protocol = library(settings).get(protocol_id=plan.protocol_id)
    values = [protocol.monitoring.observation_min.value]
    site = policies.session_policy(settings)
    if site is not None:
        values.append(site.for_protocol(plan.protocol_id).observation_min)
    known = [v for v in values if v is not None]
    return max(known) if known else None


def chair_hours(*, settings: Settings, plan: Plan, session_number: int) -> float:
    """How long a session holds its chair: the planned dosing time plus the observation.

    Why: the chair stays taken until the patient may leave. A session with no known
    minimum observation is refused (it could not open either: fail closed) rather than
    given an invented length.
    """
    days = session_days(plan)
    if session_number not in days:
        raise InvalidInput(f"plan {plan.id} has sessions 1 to {len(days)}, not {session_number}")
    dosing_h = days[session_number][1]
    observation = observation_min(settings=settings, plan=plan)
    if observation is None:
        raise InvalidInput(
            f"session {session_number} of plan {plan.id} has no known chair time: no minimum "
            "observation after dosing is set (its protocol publishes none, the plan's "
            "monitoring order has none); set observation_min in the session policy "
            "(KETACARE_SESSION_POLICY_FILE) or sign a new version of the plan with one"
        )
    return dosing_h + observation / 60.0


def clinic_hours(settings: Settings) -> ClinicHours:
    """The clinic's opening days, hours and closures (none set: every day is bookable)."""
    return policies.clinic_hours(settings) or ClinicHours()


def _day(value: datetime | date) -> str:
    return f"{value:%a %d %b %Y}"


def _check_clinic_time(
    *, settings: Settings, session_number: int, starts_at: datetime, ends_at: datetime
) -> None:
    """Refuse a booking on a closed day or outside the opening hours (local time)."""
    zone = settings.zone
    local_start, local_end = starts_at.astimezone(zone), ends_at.astimezone(zone)
    day = local_start.date()
    hours = clinic_hours(settings)
    closed = hours.closed_because(day)
    if closed is not None:
        raise InvalidInput(f"session {session_number} cannot be booked on {_day(day)}: {closed}")
    ends = local_end.time() if local_end.date() == day else None
    outside = hours.outside_hours(day, local_start.time(), ends)
    if outside is not None:
        raise InvalidInput(
            f"session {session_number} on {_day(day)} holds its chair {outside} "
            f"({settings.timezone})"
        )


def _check_chair(
    session: Session,
    chair: Chair,
    held: tuple[datetime, datetime],
    *,
    skip: int | None,
    zone: ZoneInfo,
) -> None:
    """No other booking holds ``chair`` for any of ``held`` (from, to); Conflict naming
    it in the clinic's time."""
    starts_at, ends_at = held
    query = select(Appointment).where(
        Appointment.chair_id == chair.id,
        Appointment.status.in_(HOLDING),
        and_(Appointment.starts_at < ends_at, Appointment.ends_at > starts_at),
    )
    if skip is not None:
        query = query.where(Appointment.id != skip)
    clash = session.scalar(query.limit(1))
    if clash is not None:
        starts, ends = clash.starts_at.astimezone(zone), clash.ends_at.astimezone(zone)
        raise Conflict(
            f"chair {chair.name} is booked from {_day(starts)} {starts:%H:%M} to "
            f"{ends:%H:%M} ({zone.key} time; plan {clash.plan_id}, session "
            f"{clash.session_number})"
        )


def _check_spacing(
    *, session: Session, plan: Plan, session_number: int, starts_at: datetime, skip: int | None
) -> None:
    """Refuse a session closer to the plan's other booked sessions than the schedule spaces them."""
    days = session_days(plan)
    booked = {
        a.session_number: a
        for a in session.scalars(
            select(Appointment).where(
                Appointment.plan_id == plan.id, Appointment.status.in_(HOLDING)
            )
        )
        if a.id != skip
    }
    if session_number in booked:
        raise Conflict(f"session {session_number} of plan {plan.id} is already booked")
    for other, appt in booked.items():
        gap_days = days[session_number][0] - days[other][0]
        if gap_days > 0:
            earliest = appt.starts_at + timedelta(days=gap_days)
            if starts_at.date() < earliest.date():
                raise Conflict(
                    f"session {session_number} is too soon: the protocol spaces it {gap_days} "
                    f"day(s) after session {other} ({appt.starts_at:%Y-%m-%d}), so not before "
                    f"{earliest:%Y-%m-%d}"
                )
        elif (
            gap_days < 0 and starts_at.date() > (appt.starts_at - timedelta(days=-gap_days)).date()
        ):
            raise Conflict(
                f"session {session_number} must come {-gap_days} day(s) before "
                f"session {other} ({appt.starts_at:%Y-%m-%d})"
            )


def _event(
    session: Session,
    *,
    appt: Appointment,
    kind: str,
    actor: audit.Actor,
    now: datetime,
    reason: str | None,
    before: tuple[datetime, int] | None = None,
) -> None:
    session.add(
        AppointmentEvent(
            appointment_id=appt.id,
            kind=kind,
            at=now,
            by=actor.user_id,
            reason=reason,
            starts_at_before=before[0] if before else None,
            chair_id_before=before[1] if before else None,
            starts_at=appt.starts_at,
            chair_id=appt.chair_id,
        )
    )


def _set_status(
    session: Session,
    *,
    appt: Appointment,
    status: str,
    action: str,
    actor: audit.Actor,
    now: datetime,
    reason: str,
    detail: dict[str, object],
) -> Appointment:
    """The appointment's new status, an event of that kind in its history, audited."""
    appt.status = status
    session.flush()
    _event(session, appt=appt, kind=status, actor=actor, now=now, reason=reason)
    audit.record(
        session=session,
        actor=actor,
        action=action,
        resource_type="appointment",
        resource_id=appt.id,
        patient_id=appt.patient_id,
        at=now,
        detail=detail,
    )
    return appt


def active_chair(session: Session, chair_id: int) -> Chair:
    """The chair in use, or InvalidInput naming it."""
    chair = session.get(Chair, chair_id)
    if chair is None or not chair.active:
        raise InvalidInput(f"chair {chair_id} does not exist")
    return chair


def book(
    *,
    session: Session,
    actor: audit.Actor,
    plan_id: int,
    session_number: int,
    chair_id: int,
    starts_at: datetime,
    now: datetime,
    settings: Settings,
    why_moved: str | None = None,
) -> Appointment:
    """Book one dosing session; a double-booked chair, a session too soon, a closed day
    or a time outside the clinic's hours is refused.

    The booking holds the chair for :func:`chair_hours` (dosing plus observation).
    ``why_moved``: why the session is not on its planned day (kept in its history).
    """
    plan = get_plan(session=session, plan_id=plan_id)
    if plan.status not in GIVEN:
        raise Conflict(f"plan {plan_id} is {plan.status}: only a signed plan is booked")
    days = session_days(plan)
    if session_number not in days:
        raise InvalidInput(f"plan {plan_id} has sessions 1 to {len(days)}, not {session_number}")
    chair = active_chair(session, chair_id)
    if starts_at.tzinfo is None:
        raise InvalidInput("starts_at needs a time zone")
    ends_at = starts_at + timedelta(
        hours=chair_hours(settings=settings, plan=plan, session_number=session_number)
    )
    _check_clinic_time(
        settings=settings, session_number=session_number, starts_at=starts_at, ends_at=ends_at
    )
    _check_chair(session, chair, (starts_at, ends_at), skip=None, zone=settings.zone)
    _check_spacing(
        session=session, plan=plan, session_number=session_number, starts_at=starts_at, skip=None
    )
    row = Appointment(
        plan_id=plan_id,
        patient_id=plan.patient_id,
        session_number=session_number,
        chair_id=chair_id,
        starts_at=starts_at,
        ends_at=ends_at,
        booked_by=actor.user_id or 0,
    )
    session.add(row)
    session.flush()
    _event(session, appt=row, kind="booked", actor=actor, now=now, reason=why_moved)
    audit.record(
        session=session,
        actor=actor,
        action="book",
        resource_type="appointment",
        resource_id=row.id,
        patient_id=plan.patient_id,
        at=now,
        detail={"plan": plan_id, "session": session_number, "chair": chair.name}
        | ({"moved": why_moved} if why_moved else {}),
    )
    return row


def book_course(
    *,
    session: Session,
    actor: audit.Actor,
    plan_id: int,
    chair_id: int,
    at_time: time,
    zone: ZoneInfo,
    now: datetime,
    settings: Settings,
    first_day: date | None = None,
) -> list[Appointment]:
    """Book every session not yet booked on the plan's own dates, same chair and clock time.

    The dates run from the plan's start date (``first_day`` when the plan has none; a
    different ``first_day`` is refused: the plan's table and its bookings must agree).
    A session planned on a closed day moves to the next open day within the clinic's
    ``max_shift_days``, keeping the schedule's spacing; otherwise nothing is booked and
    the reason names the session and the day. Sessions already booked keep their day.
    """
    plan = get_plan(session=session, plan_id=plan_id)
    start = plan.start_date or first_day
    if start is None:
        raise InvalidInput(f"plan {plan_id} has no start date: give the first day of its course")
    if plan.start_date is not None and first_day is not None and first_day != plan.start_date:
        raise InvalidInput(
            f"plan {plan_id} starts on {_day(plan.start_date)} (the dates of its table); "
            f"its sessions are booked from that day, not {_day(first_day)}: to start on "
            "another day, sign a new version of the plan with that start date"
        )
    already = {
        a.session_number: a.starts_at.astimezone(zone).date()
        for a in session.scalars(
            select(Appointment).where(
                Appointment.plan_id == plan_id, Appointment.status.in_(HOLDING)
            )
        )
    }
    placements = place_sessions(
        sessions=[PlannedDay(n, day) for n, (day, _) in session_days(plan).items()],
        start=start,
        hours=clinic_hours(settings),
        booked=already,
    )
    out = []
    for p in placements:
        if p.already_booked:
            continue
        why = p.booking_reason
        out.append(
            book(
                session=session,
                actor=actor,
                plan_id=plan_id,
                session_number=p.number,
                chair_id=chair_id,
                starts_at=datetime.combine(p.date, at_time, tzinfo=zone),
                now=now,
                settings=settings,
                why_moved=why,
            )
        )
    if not out:
        raise Conflict(f"every session of plan {plan_id} is already booked")
    return out


def _booked(session: Session, appointment_id: int, what: str = "moved or cancelled") -> Appointment:
    appt = existing(session, Appointment, appointment_id, "appointment")
    if appt.status != "booked":
        raise Conflict(
            f"appointment {appointment_id} is {appt.status}: only a booked appointment is {what}"
        )
    return appt


def _reason(reason: str, what: str) -> str:
    text = reason.strip()
    if len(text) < 3:
        raise InvalidInput(f"{what} an appointment needs a reason (at least 3 characters)")
    return text


def move(
    *,
    session: Session,
    actor: audit.Actor,
    appointment_id: int,
    starts_at: datetime,
    reason: str,
    now: datetime,
    settings: Settings,
    chair_id: int | None = None,
) -> Appointment:
    """Move one appointment to another time (and chair), with a reason kept in its history.

    The same checks as a booking hold (clinic days and hours, a free chair, the
    schedule's spacing to the plan's other bookings); refused, nothing changes.
    """
    appt = _booked(session, appointment_id)
    text = _reason(reason, "moving")
    if starts_at.tzinfo is None:
        raise InvalidInput("starts_at needs a time zone")
    plan = get_plan(session=session, plan_id=appt.plan_id)
    chair = active_chair(session, chair_id if chair_id is not None else appt.chair_id)
    if starts_at == appt.starts_at and chair.id == appt.chair_id:
        raise InvalidInput(f"appointment {appointment_id} is already at that time and chair")
    ends_at = starts_at + (appt.ends_at - appt.starts_at)
    _check_clinic_time(
        settings=settings,
        session_number=appt.session_number,
        starts_at=starts_at,
        ends_at=ends_at,
    )
    _check_chair(session, chair, (starts_at, ends_at), skip=appt.id, zone=settings.zone)
    _check_spacing(
        session=session,
        plan=plan,
        session_number=appt.session_number,
        starts_at=starts_at,
        skip=appt.id,
    )
    before = (appt.starts_at, appt.chair_id)
    appt.starts_at, appt.ends_at, appt.chair_id = starts_at, ends_at, chair.id
    session.flush()
    _event(session, appt=appt, kind="moved", actor=actor, now=now, reason=text, before=before)
    audit.record(
        session=session,
        actor=actor,
        action="move",
        resource_type="appointment",
        resource_id=appt.id,
        patient_id=appt.patient_id,
        at=now,
        detail={
            "reason": text,
            "from": before[0].isoformat(),
            "to": starts_at.astimezone(before[0].tzinfo).isoformat(),
            "chair": chair.name,
        },
    )
    return appt


def cancel(
    *, session: Session, actor: audit.Actor, appointment_id: int, reason: str, now: datetime
) -> Appointment:
    """Cancel one appointment with a reason; the row stays (status cancelled) with its history."""
    appt = _booked(session, appointment_id)
    text = _reason(reason, "cancelling")
    return _set_status(
        session,
        appt=appt,
        status="cancelled",
        action="cancel",
        actor=actor,
        now=now,
        reason=text,
        detail={"reason": text},
    )


def mark_not_attended(
    *,
    session: Session,
    actor: audit.Actor,
    appointment_id: int,
    reason: str,
    now: datetime,
    settings: Settings,
) -> Appointment:
    """The patient did not come: a booked appointment whose start has passed (no session
    was opened for it) becomes ``not_attended``, with the reason in its history; audited.

    It no longer holds its chair or its place in the course (the session can be booked
    again) and cannot be moved or cancelled. Refused before its start (cancel it instead)
    and for an appointment not booked; refused, nothing changes.
    """
    appt = _booked(session, appointment_id, "marked not attended")
    if now < appt.starts_at:
        raise Conflict(
            f"appointment {appointment_id} starts "
            f"{appt.starts_at.astimezone(settings.zone):%a %d %b %Y %H:%M} "
            f"({settings.timezone}): it has not started yet, so it cannot be marked not "
            "attended; to call it off before then, cancel it instead"
        )
    text = _reason(reason, "recording a no-show for")
    return _set_status(
        session,
        appt=appt,
        status="not_attended",
        action="not_attended",
        actor=actor,
        now=now,
        reason=text,
        detail={"reason": text},
    )


def mark_attended(
    *,
    session: Session,
    actor: audit.Actor,
    appointment: Appointment,
    dosing_session_id: int,
    now: datetime,
) -> None:
    """The patient came: a session was opened for this booked appointment. Its status
    becomes ``attended`` (it keeps its chair and can no longer be moved or cancelled),
    with an ``attended`` event in its history naming the session; audited. An
    appointment not booked (cancelled, or already attended) is left as it is."""
    if appointment.status != "booked":
        return
    _set_status(
        session,
        appt=appointment,
        status="attended",
        action="attend",
        actor=actor,
        now=now,
        reason=f"dosing session {dosing_session_id} opened",
        detail={"session": dosing_session_id},
    )


def cancel_for_retired_record(
    *, session: Session, actor: audit.Actor, patient_id: int, reason: str, now: datetime
) -> list[int]:
    """Cancel every chair booking of a record retired as entered in error that has not
    begun, each with the retirement's reason kept in its history (its chair is free
    again); the cancelled appointments' ids."""
    return _cancel_to_come(
        session,
        actor,
        Appointment.patient_id == patient_id,
        reason=f"the patient's record was retired as entered in error: {reason}",
        now=now,
    )


def cancel_for_ended_plan(
    *, session: Session, actor: audit.Actor, plan_id: int, reason: str, now: datetime
) -> list[int]:
    """Cancel the bookings of a plan that has ended (completed, stopped or superseded)
    that have not begun, each with the reason in its history and audited; the cancelled
    appointments' ids.

    One whose start has passed with no session opened is left booked: the calendar shows
    it as "no session opened" until someone records whether the patient came (a no-show
    is kept as one, not rewritten as a cancellation).
    """
    return _cancel_to_come(session, actor, Appointment.plan_id == plan_id, reason=reason, now=now)


def _cancel_to_come(
    session: Session, actor: audit.Actor, whose: ColumnElement[bool], *, reason: str, now: datetime
) -> list[int]:
    booked = session.scalars(
        select(Appointment.id)
        .where(whose, Appointment.status == "booked", Appointment.starts_at >= now)
        .order_by(Appointment.starts_at, Appointment.id)
    ).all()
    for appointment_id in booked:
        cancel(
            session=session,
            actor=actor,
            appointment_id=appointment_id,
            reason=reason[:500],
            now=now,
        )
    return list(booked)
