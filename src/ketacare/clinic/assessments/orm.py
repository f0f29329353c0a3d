"""Tables of the assessments domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ketacare.infra.db import Base, UTCDateTime


class Assessment(Base):
    """One completed instrument, scored when it was recorded (score kept as computed)."""

    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    instrument_id: Mapped[str] = mapped_column(String(40), index=True)
    instrument_version: Mapped[str] = mapped_column(String(40))
    answers: Mapped[dict[str, object]] = mapped_column(JSON)
    total: Mapped[float | None] = mapped_column(Float, default=None)
    band: Mapped[str | None] = mapped_column(String(40), default=None)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    subscores: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    missing: Mapped[list[str]] = mapped_column(JSON, default=list)
    context: Mapped[str] = mapped_column(String(20), default="intake")
    source: Mapped[str] = mapped_column(String(10))  # staff | patient
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    entered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    status: Mapped[str] = mapped_column(String(20), default="final")


class ClinicalAlert(Base):
    """A safety signal for the responsible clinician; acknowledged with an action, never deleted."""

    __tablename__ = "clinical_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    kind: Mapped[str] = mapped_column(String(60))
    message: Mapped[str] = mapped_column(Text)
    routes_to: Mapped[str | None] = mapped_column(String(40), default=None)
    assessment_id: Mapped[int | None] = mapped_column(ForeignKey("assessments.id"), default=None)
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    action: Mapped[str | None] = mapped_column(Text, default=None)
    #: a session's vitals alert: the session and the alert's id in its log
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("dosing_sessions.id"), default=None, index=True
    )
    session_alert: Mapped[str | None] = mapped_column(String(120), default=None)
