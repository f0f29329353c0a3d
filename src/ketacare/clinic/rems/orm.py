"""Tables of the REMS (append-only: database triggers refuse UPDATE and DELETE)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ketacare.infra.db import Base, UTCDateTime


class RemsCertification(Base):
    """A clinic site's REMS certification as a treatment setting (or its end).

    The newest row of a site holds: ``certified`` with its identifier and date, or
    ``ended``.
    """

    __tablename__ = "rems_certifications"
    __table_args__ = (CheckConstraint("status IN ('certified', 'ended')", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(10))
    identifier: Mapped[str] = mapped_column(String(100))
    certified_on: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)


class RemsEnrolment(Base):
    """A patient's enrolment in the REMS (identifier and date); the newest holds."""

    __tablename__ = "rems_enrolments"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    identifier: Mapped[str] = mapped_column(String(100))
    enrolled_on: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)


class RemsFormEntry(Base):
    """One step of a session's Patient Monitoring Form: the answers recorded (the newest
    holds), the form marked ready (with the items it held then), or its submission (date,
    route, confirmation reference)."""

    __tablename__ = "rems_form_entries"
    __table_args__ = (CheckConstraint("kind IN ('answers', 'ready', 'submitted')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("dosing_sessions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
