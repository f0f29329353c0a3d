"""Ending a plan early is a decision with a reason, shown before it is made.

Completing a plan whose course still has sessions not given, or stopping one, ends the
course: the bookings still to come are cancelled and no further session opens. Either
needs the physician's reason (kept on the plan and in each cancelled booking's
history), and the page shows what will change (sessions given of the course, the
bookings to be cancelled) before it is confirmed. A plan whose every session was given
completes without a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ketacare.clinic.audit import service as audit
from ketacare.clinic.plans.orm import Appointment, Plan
from ketacare.clinic.sessions.orm import DosingSession
from ketacare.core.errors import InvalidInput

#: the shortest reason taken for ending a course or moving a therapy session (a word,
#: not a keystroke)
MIN_REASON = 3


@dataclass(frozen=True, slots=True)
class Ending:
    """What completing or stopping ``plan`` would do, before it is confirmed."""

    plan: Plan
    action: str
    reason: str
    given: int
    planned: int
    to_cancel: tuple[Appointment, ...]

    @property
    def early(self) -> bool:
        """Whether sessions of the course would be left not given."""
        return self.given < self.planned


def sessions_given(session: Session, plan_id: int) -> int:
    """Sessions of the plan given to the end (discharged)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(DosingSession)
            .where(DosingSession.plan_id == plan_id, DosingSession.state == "discharged")
        )
        or 0
    )


def refuse_unexplained(*, session: Session, plan: Plan, action: str, reason: str) -> int:
    """Refuse a stop, or a completion with sessions not given, without a reason; the
    number of sessions given."""
    given = sessions_given(session, plan.id)
    planned = len(plan.schedule.get("sessions", []))
    explained = len(reason.strip()) >= MIN_REASON
    if action == "stop" and not explained:
        raise InvalidInput("stopping a plan needs a reason (why the course ends now)")
    if action == "complete" and given < planned and not explained:
        raise InvalidInput(
            f"plan {plan.id} has {given} of its {planned} sessions given: completing it "
            "now ends the course early and needs a reason (why it ends now), or stop it"
        )
    return given


def preview(
    *, session: Session, actor: audit.Actor, plan_id: int, action: str, reason: str, now: datetime
) -> Ending:
    """What ``action`` (complete or stop) would do to the plan, refused as the change
    itself would be; nothing is changed (an audited read of the plan)."""
    from ketacare.clinic.plans.service import get_plan, moved_status, record_read

    if action not in ("complete", "stop"):
        raise InvalidInput(f"only complete and stop end a plan, not {action!r}")
    plan = get_plan(session=session, plan_id=plan_id)
    moved_status(plan, action)
    given = refuse_unexplained(session=session, plan=plan, action=action, reason=reason)
    to_cancel = session.scalars(
        select(Appointment)
        .where(
            Appointment.plan_id == plan.id,
            Appointment.status == "booked",
            Appointment.starts_at >= now,
        )
        .order_by(Appointment.starts_at, Appointment.id)
    ).all()
    record_read(session=session, actor=actor, plan=plan, now=now)
    return Ending(
        plan=plan,
        action=action,
        reason=reason.strip(),
        given=given,
        planned=len(plan.schedule.get("sessions", [])),
        to_cancel=tuple(to_cancel),
    )
