"""Measured drug levels (laboratory results with their sample times)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ketacare.infra.db import Base, UTCDateTime


class DrugLevel(Base):
    """A measured plasma level; ``value`` is empty when below the quantification limit."""

    __tablename__ = "drug_levels"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    sampled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    analyte: Mapped[str] = mapped_column(String(20))  # plasma | metabolite
    value_ng_per_ml: Mapped[float | None] = mapped_column(Float, default=None)
    lloq_ng_per_ml: Mapped[float | None] = mapped_column(Float, default=None)
    status: Mapped[str] = mapped_column(String(20), default="final")
    entered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
