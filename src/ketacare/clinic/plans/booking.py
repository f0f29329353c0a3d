"""The clinic calendar: chairs, how long a session holds one, booking a plan's sessions.

A booking holds its chair for the planned dosing time plus the observation after it
(:func:`chair_hours`); a double-booked chair, or a session booked closer to another
than its protocol spaces them, is refused. Ending or superseding a plan cancels its
bookings (:mod:`ketacare.clinic.plans.service`).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from ketacare.clinic.audit import service as audit
from ketacare.clinic.plans.dosing import library
from ketacare.clinic.plans.orm import Appointment, Chair, Plan
from ketacare.clinic.plans.service import get_plan
from ketacare.core.errors import InvalidInput
from ketacare.core.protocols.lifecycle import GIVEN
from ketacare.core.sessions.orders import OBSERVATION
from ketacare.infra import policy as policies
from ketacare.infra.errors import Conflict
from ketacare.infra.settings import Settings


def chairs(*, session: Session) -> list[Chair]:
    return list(session.scalars(select(Chair).where(Chair.active).order_by(Chair.name)))


def _session_days(plan: Plan) -> dict[int, tuple[int, float]]:
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
    days = _session_days(plan)
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
) -> Appointment:
    """Book one dosing session; a double-booked chair or a session too soon is refused.

    The booking holds the chair for :func:`chair_hours` (dosing plus observation).
    """
    plan = get_plan(session=session, plan_id=plan_id)
    if plan.status not in GIVEN:
        raise Conflict(f"plan {plan_id} is {plan.status}: only a signed plan is booked")
    days = _session_days(plan)
    if session_number not in days:
        raise InvalidInput(f"plan {plan_id} has sessions 1 to {len(days)}, not {session_number}")
    chair = session.get(Chair, chair_id)
    if chair is None or not chair.active:
        raise InvalidInput(f"chair {chair_id} does not exist")
    if starts_at.tzinfo is None:
        raise InvalidInput("starts_at needs a time zone")
    ends_at = starts_at + timedelta(
        hours=chair_hours(settings=settings, plan=plan, session_number=session_number)
    )
    clash = session.scalar(
        select(Appointment)
        .where(
            Appointment.chair_id == chair_id,
            Appointment.status == "booked",
            and_(Appointment.starts_at < ends_at, Appointment.ends_at > starts_at),
        )
        .limit(1)
    )
    if clash is not None:
        raise Conflict(
            f"chair {chair.name} is booked from {clash.starts_at:%Y-%m-%d %H:%M} to "
            f"{clash.ends_at:%H:%M} UTC (plan {clash.plan_id}, session "
            f"{clash.session_number})"
        )
    booked = {
        a.session_number: a
        for a in session.scalars(
            select(Appointment).where(
                Appointment.plan_id == plan_id, Appointment.status == "booked"
            )
        )
    }
    if session_number in booked:
        raise Conflict(f"session {session_number} of plan {plan_id} is already booked")
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
    audit.record(
        session=session,
        actor=actor,
        action="book",
        resource_type="appointment",
        resource_id=row.id,
        patient_id=plan.patient_id,
        at=now,
        detail={"plan": plan_id, "session": session_number, "chair": chair.name},
    )
    return row


def book_course(
    *,
    session: Session,
    actor: audit.Actor,
    plan_id: int,
    chair_id: int,
    first_day: date,
    at_time: time,
    zone: ZoneInfo,
    now: datetime,
    settings: Settings,
) -> list[Appointment]:
    """Book every session of the plan on its protocol day, same chair and clock time."""
    plan = get_plan(session=session, plan_id=plan_id)
    out = []
    for number, (day, _) in sorted(_session_days(plan).items()):
        local = datetime.combine(first_day + timedelta(days=day - 1), at_time, tzinfo=zone)
        out.append(
            book(
                session=session,
                actor=actor,
                plan_id=plan_id,
                session_number=number,
                chair_id=chair_id,
                starts_at=local,
                now=now,
                settings=settings,
            )
        )
    return out


def calendar(
    *, session: Session, actor: audit.Actor, start: datetime, end: datetime, now: datetime
) -> list[Appointment]:
    """Booked appointments between two instants (each one's read audited)."""
    appointments = list(
        session.scalars(
            select(Appointment)
            .where(
                Appointment.status == "booked",
                Appointment.starts_at < end,
                Appointment.ends_at > start,
            )
            .order_by(Appointment.starts_at)
        )
    )
    for appt in appointments:
        audit.record(
            session=session,
            actor=actor,
            action="read",
            resource_type="appointment",
            resource_id=appt.id,
            patient_id=appt.patient_id,
            at=now,
        )
    return appointments
