"""Reminders for the questionnaires an outcome schedule makes due (the reminder run).

- A reminder is queued once per occurrence: its outbox key names the plan line and
  the occurrence, and the outbox refuses a key twice.
- Only by a channel the clinic can send by (``sendable``): nothing is queued that
  cannot go out.
- Staff see, per occurrence, whether its reminder went (:func:`reminders_of`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ketacare.clinic.audit import service as audit
from ketacare.clinic.followup.orm import OutboxMessage
from ketacare.clinic.followup.schedules import (
    CHANNELS,
    PlanDue,
    chain,
    due_for_patient,
    effective,
    live_plans,
    occurrence_record,
)
from ketacare.clinic.followup.service import (
    Delivery,
    create_link,
    delivery,
    enqueue,
    link_expiry,
    unsendable,
)
from ketacare.clinic.patients.service import get_patient
from ketacare.clinic.plans.orm import Plan
from ketacare.core.errors import InvalidInput
from ketacare.core.instruments import get_instrument
from ketacare.core.outcomes.schedule_status import ItemStatus


@dataclass(frozen=True)
class RemindResult:
    """What one patient's reminder run did."""

    queued: int
    already_queued: int
    no_address: int


def reminder_key(plan: Plan, session: Session, occurrence_key: str) -> str:
    """The outbox key of one occurrence: the first plan of the line and the occurrence."""
    return _key(chain(session=session, plan=plan)[-1], occurrence_key)


def _key(root: Plan, occurrence_key: str) -> str:
    return f"outcome:{root.id}:{occurrence_key}"[:120]


def reminders_of(
    *, session: Session, found: Iterable[PlanDue], now: datetime
) -> dict[tuple[int, str], tuple[OutboxMessage, Delivery]]:
    """The reminder queued for each occurrence shown, by (plan id, occurrence key), with
    how far it went (none: not queued), so staff see one that waits or failed and can give
    the link themselves."""
    keys: dict[str, tuple[int, str]] = {}
    for d in found:
        root = chain(session=session, plan=d.plan)[-1]  # once per plan, not per item
        for s in d.status.items:
            if s.occurrence is not None:
                keys[_key(root, s.occurrence.key)] = (d.plan.id, s.occurrence.key)
    if not keys:
        return {}
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.dedupe_key.in_(keys)))
    return {keys[m.dedupe_key]: (m, delivery(m, now=now)) for m in rows}


def patients_to_remind(*, session: Session) -> list[int]:
    """Patients with a live plan that has a schedule (the reminder run visits them)."""
    ids: list[int] = []
    for plan in live_plans(session):
        if plan.patient_id not in ids and effective(session=session, plan=plan) is not None:
            ids.append(plan.patient_id)
    return ids


def remind_patient(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    now: datetime,
    base_url: str,
    zone: ZoneInfo,
    valid_hours: float,
    channel: str,
    sendable: Collection[str],
) -> RemindResult:
    """Queue one reminder per due or overdue occurrence not reminded before.

    Each reminder carries its own single-use link for that questionnaire. An
    occurrence already in the outbox (sent or not) is skipped, so no occurrence is
    reminded twice, however often the run is repeated.
    """
    if channel not in CHANNELS:
        raise InvalidInput(f"channel {channel!r}: allowed {', '.join(CHANNELS)}")
    if channel not in sendable:
        raise InvalidInput(unsendable(channel, sendable))
    patient = get_patient(session=session, patient_id=patient_id)
    found = due_for_patient(session=session, actor=actor, patient_id=patient_id, now=now)
    recipient = {"email": patient.email, "sms": patient.phone}.get(channel, f"patient {patient_id}")
    queued = already = missing = 0
    for plan_due in found:
        for status in plan_due.outstanding:
            occurrence = status.occurrence
            assert occurrence is not None
            key = reminder_key(plan_due.plan, session, occurrence.key)
            if session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key)):
                already += 1
                continue
            if not recipient:
                missing += 1
                continue
            try:
                with session.begin_nested():  # a run racing this one may queue it first
                    queued += _queue_one(
                        session,
                        actor,
                        plan_due,
                        status,
                        key,
                        recipient,
                        channel,
                        now,
                        base_url,
                        zone,
                        valid_hours,
                    )
            except IntegrityError:
                already += 1
    return RemindResult(queued=queued, already_queued=already, no_address=missing)


def _queue_one(
    session: Session,
    actor: audit.Actor,
    plan_due: PlanDue,
    status: ItemStatus,
    key: str,
    recipient: str,
    channel: str,
    now: datetime,
    base_url: str,
    zone: ZoneInfo,
    valid_hours: float,
) -> int:
    """One occurrence's link and reminder; 0 when the outbox already had the key."""
    occurrence = status.occurrence
    assert occurrence is not None
    patient_id = plan_due.plan.patient_id
    link, token = create_link(
        session=session,
        actor=actor,
        patient_id=patient_id,
        instruments=[occurrence.instrument],
        valid_hours=valid_hours,
        now=now,
        base_url=base_url,
        zone=zone,
        created_by=actor.user_id or plan_due.schedule.created_by,
    )
    link.schedule_id = plan_due.schedule.id
    link.occurrences = [occurrence_record(plan_due.plan.id, status)]
    title = get_instrument(occurrence.instrument).title
    message = enqueue(
        session=session,
        patient_id=patient_id,
        channel=channel,
        recipient=recipient,
        subject=f"Questionnaire due: {title}",
        body=f"Please fill in {title} ({occurrence.label}): {base_url}/r/{token}\n"
        f"{link_expiry(link.expires_at, zone)}",
        dedupe_key=key,
        now=now,
    )
    if message is None:
        return 0
    audit.record(
        session=session,
        actor=actor,
        action="remind",
        resource_type="outbox_message",
        resource_id=message.id,
        patient_id=patient_id,
        at=now,
        detail={"occurrence": occurrence.key, "channel": channel},
    )
    return 1
