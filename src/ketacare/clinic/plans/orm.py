"""Tables of the plans domain. Plans are versioned: a signed plan changes only by a new one."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ketacare.core.protocols.plan import PlanDoc
from ketacare.core.sessions.orders import OrderDoc
from ketacare.infra.db import Base, UTCDateTime


class Plan(Base):
    """One version of a patient's treatment plan."""

    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"), default=None)
    protocol_id: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    weight_kg: Mapped[float] = mapped_column(Float)
    weight_measured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    bag_mg: Mapped[float | None] = mapped_column(Float, default=None)
    bag_ml: Mapped[float | None] = mapped_column(Float, default=None)
    dose_mg_per_kg_per_h: Mapped[float | None] = mapped_column(Float, default=None)
    dose_mg: Mapped[float | None] = mapped_column(Float, default=None)
    start_date: Mapped[date | None] = mapped_column(Date, default=None)
    schedule: Mapped[PlanDoc] = mapped_column(JSON)
    total_dose_mg: Mapped[float] = mapped_column(Float)
    requires_review: Mapped[bool] = mapped_column(Boolean, default=False)
    review_reason: Mapped[str | None] = mapped_column(Text, default=None)
    goals: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    booster_policy: Mapped[str | None] = mapped_column(Text, default=None)
    preparation_required: Mapped[bool] = mapped_column(Boolean, default=False)
    safeguards: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    #: the physician's monitoring order (supervised sessions): values, origins, who set it
    monitoring_order: Mapped[OrderDoc | None] = mapped_column(JSON, default=None)
    screening_id: Mapped[int | None] = mapped_column(ForeignKey("screenings.id"), default=None)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    cosigned_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    cosigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    end_reason: Mapped[str | None] = mapped_column(Text, default=None)


class TherapySession(Base):
    """A psychotherapy session around the doses: preparation or integration."""

    __tablename__ = "therapy_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # preparation | integration
    therapist_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    planned_date: Mapped[date | None] = mapped_column(Date, default=None)
    # planned | documented | cancelled (the row stays, with who cancelled it, when and why)
    status: Mapped[str] = mapped_column(String(20), default="planned")
    note: Mapped[dict[str, object] | None] = mapped_column(JSON, default=None)
    documented_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    documented_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    cancelled_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    cancel_reason: Mapped[str | None] = mapped_column(Text, default=None)


class Adjunct(Base):
    """An adjunct medicine of the plan (pre-medication, rescue), checked for interactions."""

    __tablename__ = "plan_adjuncts"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    drug: Mapped[str] = mapped_column(String(200))
    dose_text: Mapped[str | None] = mapped_column(String(200), default=None)
    use: Mapped[str] = mapped_column(String(200))
    source: Mapped[str | None] = mapped_column(Text, default=None)
    interactions: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)


class Chair(Base):
    """An infusion chair (or a room for supervised intranasal dosing)."""

    __tablename__ = "chairs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Appointment(Base):
    """A booked dosing session on the clinic calendar."""

    __tablename__ = "appointments"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    session_number: Mapped[int] = mapped_column(Integer)
    chair_id: Mapped[int] = mapped_column(ForeignKey("chairs.id"), index=True)
    nurse_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # booked | attended (a session was opened for it) | not_attended (a no-show) | cancelled
    status: Mapped[str] = mapped_column(String(20), default="booked")
    booked_by: Mapped[int] = mapped_column(ForeignKey("users.id"))


class AppointmentEvent(Base):
    """One step of an appointment's history: booked, moved, attended, not attended or
    cancelled (append-only).

    A move changes the appointment's time or chair and keeps the one before here; a
    cancellation keeps the row (status ``cancelled``); opening its dosing session marks
    it attended (status ``attended``); a no-show is marked after its start with a reason
    (status ``not_attended``). Database triggers refuse changes.
    """

    __tablename__ = "appointment_events"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('booked', 'moved', 'attended', 'not_attended', 'cancelled')", name="kind"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # booked | moved | (not_)attended | cancelled
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    starts_at_before: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    chair_id_before: Mapped[int | None] = mapped_column(ForeignKey("chairs.id"), default=None)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    chair_id: Mapped[int] = mapped_column(ForeignKey("chairs.id"))
