"""Tables of follow-up: outcome schedules, self-report links and the outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ketacare.infra.db import Base, UTCDateTime


class OutcomeSchedule(Base):
    """One version of a plan's outcome schedule (see :mod:`ketacare.core.outcomes.schedule`).

    A plan has at most one ``current`` version; a change adds a version and marks the
    previous one ``superseded`` (kept, never deleted), so what was asked when stays known.
    """

    __tablename__ = "outcome_schedules"
    __table_args__ = (
        UniqueConstraint("plan_id", "version", name="uq_outcome_schedules_plan_version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # current | superseded
    spec: Mapped[dict[str, object]] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class SelfReportLink(Base):
    """A single-use link a patient follows to fill what is due; only its token's hash is kept."""

    __tablename__ = "self_report_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    instruments: Mapped[list[str]] = mapped_column(JSON)
    completed: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: set when the link was made for what a schedule had due: the schedule and occurrences
    schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("outcome_schedules.id"), default=None
    )
    occurrences: Mapped[list[dict[str, object]] | None] = mapped_column(JSON, default=None)


class OutboxMessage(Base):
    """A reminder waiting to be sent; ``dedupe_key`` is unique so nothing is queued twice."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))  # email | sms | file
    recipient: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
