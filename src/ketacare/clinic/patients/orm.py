"""Tables of the patient record. Rows are corrected by amendments, never deleted."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ketacare.infra.db import Base, UTCDateTime


class Patient(Base):
    """Demographics and contact."""

    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    mrn: Mapped[str] = mapped_column(String(32), unique=True)
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100), index=True)
    birth_date: Mapped[date] = mapped_column(Date, index=True)  # the duplicate check
    sex: Mapped[str] = mapped_column(String(10))  # female | male | other | unknown
    phone: Mapped[str | None] = mapped_column(String(40), default=None)
    email: Mapped[str | None] = mapped_column(String(200), default=None)
    address: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(
        default=None
    )  # user id (no FK: users link to patients)
    version: Mapped[int] = mapped_column(default=1)
    responsible_clinician_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", use_alter=True), default=None
    )
    # retired as entered in error (a duplicate, a wrong person): kept, hidden from lists,
    # closed to writes; never deleted
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    retired_by: Mapped[int | None] = mapped_column(default=None)  # user id (see created_by)
    retired_reason: Mapped[str | None] = mapped_column(Text, default=None)

    weights: Mapped[list[BodyMeasurement]] = relationship(
        back_populates="patient", order_by="BodyMeasurement.measured_at"
    )
    conditions: Mapped[list[Condition]] = relationship(order_by="Condition.id")
    medications: Mapped[list[Medication]] = relationship(order_by="Medication.id")
    allergies: Mapped[list[Allergy]] = relationship(order_by="Allergy.id")


class BodyMeasurement(Base):
    """A measured weight (and height, when measured) at a time: dosing needs the current one."""

    __tablename__ = "body_measurements"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    weight_kg: Mapped[float] = mapped_column(Float)
    height_cm: Mapped[float | None] = mapped_column(Float, default=None)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    status: Mapped[str] = mapped_column(String(20), default="final")  # final | entered-in-error
    patient: Mapped[Patient] = relationship(back_populates="weights")


class Condition(Base):
    """A diagnosis with its ICD-10-CM code."""

    __tablename__ = "conditions"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    icd10_code: Mapped[str] = mapped_column(String(10))
    display: Mapped[str] = mapped_column(String(200))
    onset_date: Mapped[date | None] = mapped_column(Date, default=None)
    status: Mapped[str] = mapped_column(String(20), default="active")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)


class Medication(Base):
    """A current (or stopped) medication; RxNorm RxCUI where known."""

    __tablename__ = "medications"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    rxnorm_code: Mapped[str | None] = mapped_column(String(12), default=None)
    dose_text: Mapped[str | None] = mapped_column(String(200), default=None)
    status: Mapped[str] = mapped_column(String(20), default="active")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)


class Allergy(Base):
    """An allergy or intolerance."""

    __tablename__ = "allergies"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    substance: Mapped[str] = mapped_column(String(200))
    reaction: Mapped[str | None] = mapped_column(String(200), default=None)
    severity: Mapped[str | None] = mapped_column(String(20), default=None)
    status: Mapped[str] = mapped_column(String(20), default="active")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
