"""Tables of safeguards: take-home supplies and their voids (both append-only)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ketacare.infra.db import Base, UTCDateTime


class TakeHomeDispense(Base):
    """A take-home supply handed to a patient under a signed plan.

    Never changed or deleted (database triggers refuse it): a dispense entered in error
    is voided by a :class:`TakeHomeVoid` naming it, with the reason. ``findings`` keeps
    what the checks said when it was dispensed (an early refill and its reason, ...).
    """

    __tablename__ = "take_home_dispenses"
    __table_args__ = (
        CheckConstraint("units >= 1", name="units"),
        CheckConstraint("strength_mg > 0 AND days_supply > 0", name="positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    molecule: Mapped[str] = mapped_column(String(30))
    route: Mapped[str] = mapped_column(String(40))
    form: Mapped[str] = mapped_column(String(80))
    strength_mg: Mapped[float] = mapped_column(Float)
    units: Mapped[int] = mapped_column(Integer)
    days_supply: Mapped[float] = mapped_column(Float)
    directions: Mapped[str] = mapped_column(Text)
    lot: Mapped[str] = mapped_column(String(60))
    pdmp_checked: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    findings: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    dispensed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dispensed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TakeHomeVoid(Base):
    """A dispense entered in error, voided with the reason (the dispense row stays)."""

    __tablename__ = "take_home_voids"

    id: Mapped[int] = mapped_column(primary_key=True)
    dispense_id: Mapped[int] = mapped_column(ForeignKey("take_home_dispenses.id"), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    voided_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    voided_at: Mapped[datetime] = mapped_column(UTCDateTime)
