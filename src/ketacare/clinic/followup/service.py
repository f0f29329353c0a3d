"""Self-report links (single use, with expiry) and the outbox (never sent twice)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from ketacare.clinic.assessments.orm import Assessment, ClinicalAlert
from ketacare.clinic.assessments.service import record_assessment, refuse_incomplete
from ketacare.clinic.audit import service as audit
from ketacare.clinic.followup.orm import OutboxMessage, SelfReportLink
from ketacare.clinic.followup.senders import Sender, why_not
from ketacare.clinic.patients.orm import Patient
from ketacare.clinic.patients.service import get_patient
from ketacare.core.errors import InvalidInput
from ketacare.core.instruments import IncompleteAnswers, get_instrument, self_report_ids
from ketacare.infra.errors import Conflict, NotFound

#: what a self-report link or an outcome schedule may ask for: the instruments whose data
#: file says a patient fills them in (the same list the assessments domain enforces)
SELF_REPORT = self_report_ids()
MAX_LINK_HOURS = 24 * 14


def link_expiry(expires_at: datetime, zone: ZoneInfo) -> str:
    """The sentence a patient's message ends with: until when the link works, in the
    clinic's time (the patient's own clock, not UTC).

    >>> from datetime import UTC
    >>> link_expiry(datetime(2026, 3, 9, 10, 0, tzinfo=UTC), ZoneInfo("Europe/Amsterdam"))
    'The link works once and until Mon 09 Mar 2026 11:00 (Europe/Amsterdam time).'
    """
    here = expires_at.astimezone(zone)
    return f"The link works once and until {here:%a %d %b %Y %H:%M} ({zone.key} time)."


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_link(
    *,
    session: Session,
    actor: audit.Actor,
    patient_id: int,
    instruments: list[str],
    valid_hours: float,
    now: datetime,
    base_url: str,
    zone: ZoneInfo,
    channel: str | None = None,
    sendable: Collection[str] = (),
    created_by: int | None = None,
) -> tuple[SelfReportLink, str]:
    """A single-use link for the patient; a reminder is queued when a channel is given.

    ``created_by`` names the account a link made by the system (a reminder run) is made
    for: the clinician who set the schedule. Otherwise it is the acting user.
    """
    patient = get_patient(session=session, patient_id=patient_id)
    if not instruments:
        raise InvalidInput("choose at least one questionnaire")
    for instrument in instruments:
        get_instrument(instrument)
        if instrument not in SELF_REPORT:
            raise InvalidInput(
                f"{instrument} is not a self-report questionnaire: allowed {', '.join(SELF_REPORT)}"
            )
    if not 0 < valid_hours <= MAX_LINK_HOURS:
        raise InvalidInput(
            f"valid_hours {valid_hours:g} is out of range: allowed up to {MAX_LINK_HOURS}"
        )
    if channel not in (None, "file", "email", "sms"):
        raise InvalidInput(f"channel {channel!r}: allowed file, email, sms")
    if channel is not None and channel not in sendable:
        raise InvalidInput(unsendable(channel, sendable))
    token = secrets.token_urlsafe(24)
    link = SelfReportLink(
        patient_id=patient_id,
        token_hash=_digest(token),
        instruments=list(dict.fromkeys(instruments)),
        created_at=now,
        created_by=created_by if created_by is not None else (actor.user_id or 0),
        expires_at=now + timedelta(hours=valid_hours),
    )
    audit.stored(
        link,
        session=session,
        actor=actor,
        at=now,
        resource_type="self_report_link",
        patient_id=patient_id,
        detail={"instruments": link.instruments},
    )
    if channel:
        recipient = patient.email if channel == "email" else patient.phone
        if channel in ("email", "sms") and not recipient:
            raise InvalidInput(
                f"patient {patient_id} has no {'email' if channel == 'email' else 'phone'}"
            )
        enqueue(
            session=session,
            patient_id=patient_id,
            channel=channel,
            recipient=recipient or f"patient {patient_id}",
            subject="Your questionnaires from the clinic",
            body=f"Please fill in your questionnaires: {base_url}/r/{token}\n"
            f"{link_expiry(link.expires_at, zone)}",
            dedupe_key=f"self-report-link:{link.id}",
            now=now,
        )
    return link, token


def open_link(*, session: Session, token: str, now: datetime) -> SelfReportLink:
    """The link behind a token, if it is still usable (else a clear refusal)."""
    link = session.scalar(select(SelfReportLink).where(SelfReportLink.token_hash == _digest(token)))
    if link is None:
        raise NotFound("this link is not valid: ask the clinic for a new one")
    if link.used_at is not None:
        raise Conflict("this link was already used: ask the clinic for a new one")
    if link.expires_at <= now:
        raise Conflict("this link has expired: ask the clinic for a new one")
    return link


def _link_actor(link: SelfReportLink, remote_addr: str | None) -> audit.Actor:
    return audit.Actor(None, f"patient-link-{link.id}", "patient", remote_addr)


def submit_via_link(
    *,
    session: Session,
    token: str,
    instrument_id: str,
    answers: Mapping[str, object],
    now: datetime,
    remote_addr: str | None,
    accept_partial: bool = False,
) -> tuple[SelfReportLink, Assessment, list[ClinicalAlert]]:
    """Record one questionnaire through the link; the link is used up when all are done.

    A questionnaire counts as done only with every required item answered: a blank one
    is refused (:class:`IncompleteAnswers`, see :func:`refuse_via_link`) or, where the
    clinic accepts partial answers, kept as incomplete while the link stays open for it.
    """
    link = open_link(session=session, token=token, now=now)
    if instrument_id not in link.instruments:
        raise InvalidInput(f"{instrument_id} is not part of this link")
    if instrument_id in link.completed:
        raise Conflict(f"{instrument_id} was already completed through this link")
    row, alerts = record_assessment(
        session=session,
        actor=_link_actor(link, remote_addr),
        patient_id=link.patient_id,
        instrument_id=instrument_id,
        answers=answers,
        context="follow_up",
        source="patient",
        now=now,
        accept_partial=accept_partial,
        alert_once_since=link.created_at,
    )
    if not row.missing:
        link.completed = [*link.completed, instrument_id]
    if set(link.completed) >= set(link.instruments):
        link.used_at = now
    return link, row, alerts


def refuse_via_link(
    *,
    session: Session,
    token: str,
    error: IncompleteAnswers,
    now: datetime,
    remote_addr: str | None,
) -> list[ClinicalAlert]:
    """After a link submission refused for blanks (rolled back): audit it and raise its
    alerts, an unanswered item 9 once per link while that alert is open. The link is
    left as it was: not spent."""
    link = open_link(session=session, token=token, now=now)
    return refuse_incomplete(
        session=session,
        actor=_link_actor(link, remote_addr),
        patient_id=link.patient_id,
        error=error,
        now=now,
        once_since=link.created_at,
    )


def enqueue(
    *,
    session: Session,
    patient_id: int,
    channel: str,
    recipient: str,
    subject: str,
    body: str,
    dedupe_key: str,
    now: datetime,
) -> OutboxMessage | None:
    """Queue a message once: a second message with the same key is not queued."""
    existing = session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key))
    if existing is not None:
        return None
    message = OutboxMessage(
        patient_id=patient_id,
        channel=channel,
        recipient=recipient,
        subject=subject,
        body=body,
        dedupe_key=dedupe_key,
        created_at=now,
    )
    session.add(message)
    session.flush()
    return message


def unsendable(channel: str, sendable: Collection[str]) -> str:
    """Why a reminder by ``channel`` is refused here: nothing is queued that cannot go out."""
    offered = ", ".join(sendable) if sendable else "none"
    return (
        f"a reminder by {channel} cannot be sent from this clinic ({why_not(channel)}): "
        f"channels it can send by: {offered}; or give the link in person (no channel)"
    )


def claim(*, session: Session, message_id: int, now: datetime) -> bool:
    """Take a pending message for sending; only one process ever wins (conditional update)."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.claimed_at.is_(None))
        .values(claimed_at=now, attempts=OutboxMessage.attempts + 1)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def pending(
    *, session: Session, limit: int = 100, channels: Collection[str] | None = None
) -> dict[int, str]:
    """Unclaimed messages, oldest first, with their channel; only those of ``channels``
    when given (the ones this clinic has a sender for)."""
    query = select(OutboxMessage.id, OutboxMessage.channel).where(
        OutboxMessage.claimed_at.is_(None)
    )
    if channels is not None:
        query = query.where(OutboxMessage.channel.in_(list(channels)))
    rows = session.execute(query.order_by(OutboxMessage.id).limit(limit)).tuples()
    return {int(message_id): str(channel) for message_id, channel in rows}


#: A message claimed this long ago and neither sent nor failed was left by a sender that
#: stopped mid-way (an operational bound, not a clinical number).
STUCK_AFTER = timedelta(minutes=15)


#: How far a queued message went: sent, waiting its turn, or taken and not sent.
Delivery = Literal["sent", "queued", "not_sent"]


def delivery(message: OutboxMessage, *, now: datetime) -> Delivery:
    """How far ``message`` went; "not_sent" exactly when :func:`not_sent` lists it."""
    if message.sent_at is not None:
        return "sent"
    if message.claimed_at is not None and (
        message.error is not None or message.claimed_at < now - STUCK_AFTER
    ):
        return "not_sent"
    return "queued"


def not_sent(*, session: Session, now: datetime) -> list[OutboxMessage]:
    """Messages taken for sending that did not go: failed (with their error), or claimed
    more than :data:`STUCK_AFTER` ago by a sender that stopped. None is retried by itself
    (it may have reached the patient before the failure was recorded): ``outbox send``
    lists them at every run until ``outbox retry`` releases them."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.claimed_at.is_not(None),
                OutboxMessage.sent_at.is_(None),
                or_(
                    OutboxMessage.error.is_not(None),
                    OutboxMessage.claimed_at < now - STUCK_AFTER,
                ),
            )
            .order_by(OutboxMessage.id)
        )
    )


def unsent_reminders(
    *, session: Session, actor: audit.Actor, now: datetime
) -> list[tuple[OutboxMessage, Patient]]:
    """The reminders that did not go out (:func:`not_sent`), each with its patient, for the
    staff's overview: they give those links in person (an audited read)."""
    rows = [
        (m, get_patient(session=session, patient_id=m.patient_id))
        for m in not_sent(session=session, now=now)
    ]
    if rows:
        audit.record(
            session=session,
            actor=actor,
            action="read",
            resource_type="outbox_message",
            at=now,
            detail={
                "messages": [m.id for m, _ in rows],
                "patients": sorted({p.id for _, p in rows}),
            },
        )
    return rows


def release(
    *, session: Session, actor: audit.Actor, message_id: int, now: datetime
) -> OutboxMessage:
    """Put a message that was not sent back in the queue (after its cause was fixed); the
    error it had is kept in the audit trail."""
    message = session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound(f"no outbox message {message_id}")
    if message.sent_at is not None:
        raise Conflict(f"outbox message {message_id} was sent: nothing to retry")
    if message.claimed_at is None:
        raise Conflict(f"outbox message {message_id} is already waiting to be sent")
    audit.record(
        session=session,
        actor=actor,
        action="retry",
        resource_type="outbox_message",
        resource_id=message.id,
        patient_id=message.patient_id,
        at=now,
        detail={"channel": message.channel, "error": message.error, "attempts": message.attempts},
    )
    message.claimed_at = None
    message.error = None
    return message


def waiting(*, session: Session, sendable: Collection[str]) -> dict[str, int]:
    """How many unclaimed messages wait, per channel outside ``sendable`` (no sender here)."""
    rows = session.execute(
        select(OutboxMessage.channel, func.count())
        .where(OutboxMessage.claimed_at.is_(None), OutboxMessage.channel.not_in(list(sendable)))
        .group_by(OutboxMessage.channel)
        .order_by(OutboxMessage.channel)
    )
    return {str(channel): int(count) for channel, count in rows}


def deliver(*, session: Session, message_id: int, sender: Sender, now: datetime) -> bool:
    """Send one claimed message; a failure is recorded and the message is not retried blindly.

    Only a sender of the message's own channel sends it: an email reminder written to a
    file has not reached the patient, so it must not be marked sent.
    """
    message = session.get(OutboxMessage, message_id)
    if message is None or message.sent_at is not None:
        return False
    if sender.channel != message.channel:
        raise ValueError(
            f"message {message_id} is for channel {message.channel!r}; a {sender.channel!r} "
            "sender cannot send it"
        )
    try:
        sender.send(message)
    except Exception as exc:  # a sender's failure is stored for the operator, not raised
        message.error = f"{type(exc).__name__}: {exc}"
        return False
    message.sent_at = now
    return True
