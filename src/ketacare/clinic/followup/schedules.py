"""Outcome schedules of plans: set (versioned), what is due now, and links for it.

The rules live in :mod:`ketacare.core.outcomes.schedule` and
:mod:`ketacare.core.outcomes.schedule_status`; this module gathers their
inputs from the database (the plan's sessions given and booked, the patient's
completed assessments, the plan's end) and keeps the versions.

- A plan has one current schedule; a change adds a version and supersedes the old
  one (kept). A new version of a plan inherits the schedule of the version before
  until one is set on it, and its sessions count together with the earlier ones.
- A session is *given* when dosing started (:func:`sessions.state_of`); an opened
  session not yet dosing and a booked appointment are *booked* sessions.
- The schedule starts when its first version was set on the plan line.

The reminder run over these schedules is :mod:`ketacare.clinic.followup.reminders`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ketacare.clinic.assessments.orm import Assessment
from ketacare.clinic.audit import service as audit
from ketacare.clinic.followup.orm import OutcomeSchedule, SelfReportLink
from ketacare.clinic.followup.service import (
    SELF_REPORT,
    create_link,
)
from ketacare.clinic.patients.orm import Patient
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.plans.orm import Appointment, Plan
from ketacare.clinic.plans.service import get_plan
from ketacare.clinic.sessions.orm import DosingSession
from ketacare.clinic.sessions.service import state_of
from ketacare.core.errors import InvalidInput
from ketacare.core.outcomes.schedule import Schedule, parse_schedule
from ketacare.core.outcomes.schedule_status import (
    ItemStatus,
    Measurement,
    PlanEnd,
    ScheduleStatus,
    SessionTime,
    evaluate_schedule,
)
from ketacare.core.protocols.lifecycle import FINAL
from ketacare.core.protocols.plan import SessionDoc
from ketacare.infra.errors import Conflict

#: Plans whose schedule is evaluated (a draft has no sessions; a superseded plan's
#: schedule lives on in the version after it).
LIVE = ("signed", "active", "completed", "stopped")
CHANNELS = ("file", "email", "sms")


@dataclass(frozen=True)
class PlanDue:
    """One plan line's schedule evaluated now."""

    plan: Plan
    schedule: OutcomeSchedule
    status: ScheduleStatus

    @property
    def outstanding(self) -> tuple[ItemStatus, ...]:
        return self.status.outstanding


def parse(spec: object) -> Schedule:
    """A schedule from a dict, limited to the self-report questionnaires."""
    return parse_schedule(spec, instruments=SELF_REPORT)


def chain(*, session: Session, plan: Plan) -> list[Plan]:
    """The plan and the versions before it, newest first."""
    out = [plan]
    while out[-1].supersedes_id is not None:
        older = session.get(Plan, out[-1].supersedes_id)
        if older is None:
            break
        out.append(older)
    return out


def _current(session: Session, plan_ids: Iterable[int]) -> OutcomeSchedule | None:
    """The current schedule of the newest plan in ``plan_ids`` (newest first) that has one."""
    for plan_id in plan_ids:
        row = session.scalar(
            select(OutcomeSchedule).where(
                OutcomeSchedule.plan_id == plan_id, OutcomeSchedule.status == "current"
            )
        )
        if row is not None:
            return row
    return None


def effective(*, session: Session, plan: Plan) -> OutcomeSchedule | None:
    """The schedule that applies to ``plan``: its own, or the one of the version before."""
    return _current(session, [p.id for p in chain(session=session, plan=plan)])


def versions(*, session: Session, plan_id: int) -> list[OutcomeSchedule]:
    """Every version of a plan's own schedule, newest first."""
    return list(
        session.scalars(
            select(OutcomeSchedule)
            .where(OutcomeSchedule.plan_id == plan_id)
            .order_by(OutcomeSchedule.version.desc())
        )
    )


def set_schedule(
    *,
    session: Session,
    actor: audit.Actor,
    plan_id: int,
    spec: Mapping[str, Any],
    now: datetime,
    reason: str | None = None,
) -> OutcomeSchedule:
    """Set or replace a plan's schedule: a new version; the previous one is superseded."""
    # one writer per plan at a time (PostgreSQL row lock; SQLite writes are serialised)
    session.execute(select(Plan.id).where(Plan.id == plan_id).with_for_update())
    plan = get_plan(session=session, plan_id=plan_id)
    if plan.status == "superseded":
        raise Conflict(
            f"plan {plan_id} is superseded: set the schedule on the plan's newest version"
        )
    schedule = parse(spec)
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > 2000:
        raise InvalidInput("reason is too long: at most 2000 characters")
    previous = session.scalar(
        select(OutcomeSchedule).where(
            OutcomeSchedule.plan_id == plan_id, OutcomeSchedule.status == "current"
        )
    )
    if previous is not None:
        previous.status = "superseded"
        previous.superseded_at = now
        session.flush()
    last = session.scalar(
        select(func.max(OutcomeSchedule.version)).where(OutcomeSchedule.plan_id == plan_id)
    )
    row = OutcomeSchedule(
        plan_id=plan_id,
        patient_id=plan.patient_id,
        version=(last or 0) + 1,
        status="current",
        spec=schedule.to_dict(),
        reason=reason,
        created_by=actor.user_id or 0,
        created_at=now,
    )
    return audit.stored(
        row,
        session=session,
        actor=actor,
        at=now,
        resource_type="outcome_schedule",
        patient_id=plan.patient_id,
        detail={
            "plan": plan_id,
            "version": row.version,
            "items": [i.key for i in schedule.items],
            **({"reason": reason} if reason else {}),
            **({"supersedes": previous.id} if previous is not None else {}),
        },
        action="replace" if previous is not None else "create",
    )


def read_schedule(
    *, session: Session, actor: audit.Actor, plan_id: int, now: datetime
) -> tuple[Plan, OutcomeSchedule | None, list[OutcomeSchedule]]:
    """A plan, the schedule that applies to it and its own versions (audited read)."""
    plan = get_plan(session=session, plan_id=plan_id)
    current = effective(session=session, plan=plan)
    rows = versions(session=session, plan_id=plan_id)
    audit.record(
        session=session,
        actor=actor,
        action="read",
        resource_type="outcome_schedule",
        resource_id=current.id if current else None,
        patient_id=plan.patient_id,
        at=now,
        detail={"plan": plan_id},
    )
    return plan, current, rows


# --------------------------------------------------------------------------- inputs


def _label(number: int, plan_id: int, several: bool) -> str:
    return f"session {number} (plan {plan_id})" if several else f"session {number}"


def _sessions(session: Session, plans: list[Plan]) -> list[SessionTime]:
    """The sessions of a plan line: given (dosing started) and booked."""
    head = plans[0]
    planned: list[SessionDoc] = list(head.schedule["sessions"])
    last_number = max((int(s.get("number", 0)) for s in planned), default=0)
    several = len(plans) > 1
    out: list[SessionTime] = []
    for plan in plans:
        taken: set[int] = set()
        rows = session.scalars(
            select(DosingSession).where(DosingSession.plan_id == plan.id).order_by(DosingSession.id)
        )
        for row in rows:
            state = state_of(session=session, session_id=row.id)
            key = f"{plan.id}.{row.session_number}"
            if state.dosing_started_at is not None:
                if row.session_number in taken:
                    key = f"{key}.{row.id}"  # given again after an early stop
                taken.add(row.session_number)
                at = state.dosing_started_at
                out.append(
                    SessionTime(
                        at=at,
                        given=True,
                        key=key,
                        label=_label(row.session_number, plan.id, several),
                        last_of_course=plan is head and row.session_number == last_number,
                    )
                )
            elif row.state not in ("discharged", "stopped_early"):
                taken.add(row.session_number)
                out.append(
                    SessionTime(
                        at=state.scheduled_at,
                        given=False,
                        key=key,
                        label=_label(row.session_number, plan.id, several),
                        last_of_course=plan is head and row.session_number == last_number,
                    )
                )
        if plan.status in FINAL:
            # an ended plan's bookings to come were cancelled; one whose start passed with
            # no session opened is kept booked for its no-show, not a session to come
            continue
        for appt in session.scalars(
            select(Appointment).where(
                Appointment.plan_id == plan.id, Appointment.status == "booked"
            )
        ):
            if appt.session_number in taken:
                continue
            out.append(
                SessionTime(
                    at=appt.starts_at,
                    given=False,
                    key=f"{plan.id}.{appt.session_number}",
                    label=_label(appt.session_number, plan.id, several),
                    last_of_course=plan is head and appt.session_number == last_number,
                )
            )
    return out


def _measurements(session: Session, patient_id: int, instruments: set[str]) -> list[Measurement]:
    rows = session.execute(
        select(Assessment.instrument_id, Assessment.completed_at).where(
            Assessment.patient_id == patient_id,
            Assessment.status == "final",
            Assessment.instrument_id.in_(sorted(instruments)),
            (Assessment.total.is_not(None)) | (Assessment.band.is_not(None)),
        )
    )
    return [Measurement(instrument=i, at=at) for i, at in rows]


def _plan_end(plan: Plan) -> PlanEnd | None:
    if plan.status in ("completed", "stopped") and plan.ended_at is not None:
        return PlanEnd(at=plan.ended_at, stopped=plan.status == "stopped")
    return None


def evaluate_plan(*, session: Session, plan: Plan, now: datetime) -> PlanDue | None:
    """The plan line's schedule evaluated at ``now`` (None when it has no schedule)."""
    plans = chain(session=session, plan=plan)
    row = _current(session, [p.id for p in plans])
    if row is None:
        return None
    schedule = parse(row.spec)
    start = session.scalar(
        select(func.min(OutcomeSchedule.created_at)).where(
            OutcomeSchedule.plan_id.in_([p.id for p in plans])
        )
    )
    status = evaluate_schedule(
        schedule,
        now=now,
        start=start or row.created_at,
        sessions=_sessions(session, plans),
        measurements=_measurements(
            session, plan.patient_id, {i.instrument for i in schedule.items}
        ),
        plan_end=_plan_end(plan),
    )
    return PlanDue(plan=plan, schedule=row, status=status)


def live_plans(session: Session, patient_id: int | None = None) -> list[Plan]:
    query = select(Plan).where(Plan.status.in_(LIVE)).order_by(Plan.id)
    if patient_id is not None:
        query = query.where(Plan.patient_id == patient_id)
    # a record retired as entered in error is asked nothing and reminded of nothing
    retired = select(Patient.id).where(Patient.retired_at.is_not(None))
    return list(session.scalars(query.where(Plan.patient_id.not_in(retired))))


def _due_unaudited(session: Session, patient_id: int, now: datetime) -> list[PlanDue]:
    out = []
    for plan in live_plans(session, patient_id):
        found = evaluate_plan(session=session, plan=plan, now=now)
        if found is not None:
            out.append(found)
    return out


def due_for_patient(
    *, session: Session, actor: audit.Actor, patient_id: int, now: datetime, audited: bool = True
) -> list[PlanDue]:
    """Each scheduled plan of the patient with every item's status now (an audited read;
    ``audited`` False only for a page's refresh of what its first load audited)."""
    get_patient(session=session, patient_id=patient_id)
    found = _due_unaudited(session, patient_id, now)
    if not audited:
        return found
    audit.record(
        session=session,
        actor=actor,
        action="read",
        resource_type="outcome_due",
        patient_id=patient_id,
        at=now,
        detail={
            "plans": [d.plan.id for d in found],
            "outstanding": sum(len(d.outstanding) for d in found),
        },
    )
    return found


def outstanding_instruments(found: list[PlanDue]) -> list[str]:
    """The instruments due or overdue, once each, in schedule order."""
    return list(dict.fromkeys(s.item.instrument for d in found for s in d.outstanding))


@dataclass(frozen=True)
class OverviewRow:
    """One patient in the clinician's list of due and overdue questionnaires."""

    patient: Patient
    due: int
    overdue: int
    items: tuple[tuple[int, ItemStatus], ...]  # (plan id, status)


def overview(*, session: Session, actor: audit.Actor, now: datetime) -> list[OverviewRow]:
    """Patients with questionnaires due or overdue now, most overdue first (audited read)."""
    by_patient: dict[int, list[tuple[int, ItemStatus]]] = {}
    for plan in live_plans(session):
        found = evaluate_plan(session=session, plan=plan, now=now)
        if found is None:
            continue
        for status in found.outstanding:
            by_patient.setdefault(plan.patient_id, []).append((plan.id, status))
    rows = []
    for patient_id, items in by_patient.items():
        patient = get_patient(session=session, patient_id=patient_id)
        overdue = sum(1 for _, s in items if s.status == "overdue")
        rows.append(OverviewRow(patient, len(items) - overdue, overdue, tuple(items)))
    rows.sort(key=lambda r: (-r.overdue, -r.due, r.patient.family_name, r.patient.id))
    audit.record(
        session=session,
        actor=actor,
        action="read",
        resource_type="outcome_due",
        at=now,
        detail={"patients": [r.patient.id for r in rows]},
    )
    return rows


def occurrence_record(plan_id: int, status: ItemStatus) -> dict[str, object]:
    occurrence = status.occurrence
    assert occurrence is not None
    return {
        "plan_id": plan_id,
        "key": occurrence.key,
        "instrument": occurrence.instrument,
        "label": occurrence.label,
        "status": status.status,
        "opens_at": occurrence.opens_at.isoformat(),
        "overdue_at": occurrence.overdue_at.isoformat(),
    }


def link_for_due(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    valid_hours: float,
    now: datetime,
    base_url: str,
    zone: ZoneInfo,
    channel: str | None = None,
    sendable: Collection[str] = (),
) -> tuple[SelfReportLink, str]:
    """A single-use link for exactly what is due now; the link keeps which occurrences."""
    found = due_for_patient(session=session, actor=actor, patient_id=patient_id, now=now)
    instruments = outstanding_instruments(found)
    if not instruments:
        raise Conflict(f"nothing is due for patient {patient_id} now")
    link, token = create_link(
        session=session,
        actor=actor,
        patient_id=patient_id,
        instruments=instruments,
        valid_hours=valid_hours,
        now=now,
        base_url=base_url,
        zone=zone,
        channel=channel,
        sendable=sendable,
    )
    link.schedule_id = found[0].schedule.id if len(found) == 1 else None
    link.occurrences = [occurrence_record(d.plan.id, s) for d in found for s in d.outstanding]
    return link, token


# --------------------------------------------------------------------------- reminders
