"""The audit trail (append-only, hash-chained) and amendments to clinical records."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ketacare.infra.db import Base, UTCDateTime


class AuditEvent(Base):
    """Who did what to which record, when and from where.

    ``hash`` = SHA-256 over the row's fields and ``prev_hash``; ``prev_hash`` is
    unique, so the chain can never fork. Database triggers refuse UPDATE and DELETE.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        # the audit trail page's filters, newest first (keyset paging on id)
        Index("ix_audit_events_username_id", "username", "id"),
        Index("ix_audit_events_action_id", "action", "id"),
        Index("ix_audit_events_patient_id_id", "patient_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, default=None)
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(20))
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str | None] = mapped_column(String(64), default=None)
    patient_id: Mapped[int | None] = mapped_column(Integer, default=None)
    remote_addr: Mapped[str | None] = mapped_column(String(64), default=None)
    detail: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class Amendment(Base):
    """A correction of a clinical record: the values before and after, and why."""

    __tablename__ = "amendments"

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[int] = mapped_column(Integer)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    before: Mapped[dict[str, object]] = mapped_column(JSON)
    after: Mapped[dict[str, object]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    amended_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    amended_at: Mapped[datetime] = mapped_column(UTCDateTime)
