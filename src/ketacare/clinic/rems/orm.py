"""Tables of the REMS (append-only: database triggers refuse UPDATE and DELETE)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, String
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
