"""Tables of the screenings domain."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ketacare.infra.db import Base, UTCDateTime


class Screening(Base):
    """An eligibility decision, with the input it was made from and its sign-off."""

    __tablename__ = "screenings"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    input: Mapped[dict[str, object]] = mapped_column(JSON)
    result: Mapped[dict[str, object]] = mapped_column(JSON)
    decision: Mapped[str] = mapped_column(String(30))
    ruleset_version: Mapped[str] = mapped_column(String(60))
    molecule: Mapped[str] = mapped_column(String(20))
    route: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    status: Mapped[str] = mapped_column(String(20), default="draft")  # draft|signed|superseded
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    signed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    sign_note: Mapped[str | None] = mapped_column(Text, default=None)
    valid_until: Mapped[date | None] = mapped_column(Date, default=None)
