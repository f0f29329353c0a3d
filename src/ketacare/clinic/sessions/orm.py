"""Tables of dosing sessions. Events are append-only (database triggers refuse changes)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ketacare.infra.db import Base, UTCDateTime


class DosingSession(Base):
    """One dosing session of a plan; its state is derived from its events (cached here)."""

    __tablename__ = "dosing_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    session_number: Mapped[int] = mapped_column(Integer)
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"), default=None)
    chair_id: Mapped[int | None] = mapped_column(ForeignKey("chairs.id"), default=None)
    state: Mapped[str] = mapped_column(String(20), index=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    #: the day the session was booked for, when it opened on another day, and why
    booked_day: Mapped[date | None] = mapped_column(Date, default=None)
    off_schedule_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SessionEvent(Base):
    """One entry of a session's log; ``(session_id, seq)`` is unique, so writes never collide."""

    __tablename__ = "session_events"
    __table_args__ = (UniqueConstraint("session_id", "seq", name="uq_session_events_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("dosing_sessions.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(30))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    data: Mapped[dict[str, object]] = mapped_column(JSON)
