"""API shapes of plans."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Goal(BaseModel):
    measure: str = Field(max_length=60, description="e.g. nrs_pain, phq9")
    target: str = Field(max_length=300, description="e.g. 30% lower than baseline")


class DoseChoice(BaseModel):
    bag_mg: float | None = Field(default=None, gt=0, le=10_000)
    bag_ml: float | None = Field(default=None, gt=0, le=10_000)
    dose_mg_per_kg_per_h: float | None = Field(default=None, gt=0, le=100)
    dose_mg: float | None = Field(default=None, gt=0, le=10_000)
    start_date: date | None = None


class PlanCreate(DoseChoice):
    protocol: str = Field(max_length=60)
    goals: list[Goal] = Field(default_factory=list, max_length=20)
    booster_policy: str | None = Field(default=None, max_length=2000)
    preparation_required: bool = False


class PlanPreviewRequest(DoseChoice):
    protocol: str = Field(max_length=60)
    weight_kg: float = Field(description="20-350 kg")


class SignRequest(BaseModel):
    reason: str = Field(default="", max_length=2000)
    weight_confirmed: bool = False
    safeguards_accepted: list[str] = Field(default_factory=list, max_length=20)
    #: the monitoring order (supervised sessions): field -> value; what the clinic's
    #: session policy sets may be left out (see ketacare.core.sessions.orders.FIELDS);
    #: ``news2_spo2_scale`` 2 with its ``news2_spo2_scale_basis`` text prescribes NEWS2
    #: SpO2 scale 2 (otherwise scale 1)
    monitoring_order: dict[str, float | str | None] = Field(default_factory=dict, max_length=20)


class EndRequest(BaseModel):
    action: Literal["activate", "complete", "stop"]
    reason: str = Field(default="", max_length=2000)


class TherapyCreate(BaseModel):
    kind: Literal["preparation", "integration"]
    therapist_id: int = Field(ge=1, le=2**31 - 1)
    planned_date: date | None = None


class TherapyNote(BaseModel):
    goals: str = Field(max_length=4000)
    what_came_up: str = Field(max_length=4000)
    integration_steps: str = Field(max_length=4000)
    risk_check: str = Field(max_length=4000)
    risk_concern: bool = False


class TherapyMove(BaseModel):
    planned_date: date
    reason: str = Field(max_length=2000)


class AdjunctCreate(BaseModel):
    drug: str = Field(min_length=1, max_length=200)
    dose_text: str | None = Field(default=None, max_length=200)
    use: str = Field(min_length=1, max_length=200)


class BookingRequest(BaseModel):
    session_number: int = Field(ge=1, le=1000)
    chair_id: int = Field(ge=1, le=2**31 - 1)
    starts_at: datetime


class CourseBookingRequest(BaseModel):
    chair_id: int = Field(ge=1, le=2**31 - 1)
    at_time: time = Field(description="The clinic's local clock time of every session")
    first_day: date | None = Field(
        default=None, description="Only for a plan without a start date: its first day"
    )


class MoveRequest(BaseModel):
    starts_at: datetime = Field(description="The new start, with its time zone")
    chair_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="Default: same")
    reason: str = Field(max_length=2000, description="Why it moves (kept in its history)")


class CancelRequest(BaseModel):
    reason: str = Field(max_length=2000, description="Why it is cancelled (kept)")


class NotAttendedRequest(BaseModel):
    reason: str = Field(max_length=2000, description="Why the patient did not come (kept)")


class AdjunctRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    drug: str
    dose_text: str | None
    use: str
    source: str | None
    interactions: list[dict[str, object]]


class TherapyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    plan_id: int
    kind: str
    therapist_id: int
    planned_date: date | None
    status: str
    note: dict[str, object] | None
    documented_at: datetime | None


class AppointmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    plan_id: int
    patient_id: int
    session_number: int
    chair_id: int
    starts_at: datetime
    ends_at: datetime
    status: str


class AppointmentEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    kind: str
    at: datetime
    by: int | None
    reason: str | None
    starts_at_before: datetime | None
    chair_id_before: int | None
    starts_at: datetime
    chair_id: int


class AppointmentWithHistory(AppointmentRead):
    history: list[AppointmentEventRead]


class PlanRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    patient_id: int
    version: int
    supersedes_id: int | None
    protocol_id: str
    status: str
    weight_kg: float
    start_date: date | None
    schedule: dict[str, object]
    total_dose_mg: float
    requires_review: bool
    review_reason: str | None
    goals: list[dict[str, object]]
    booster_policy: str | None
    preparation_required: bool
    safeguards: list[dict[str, object]]
    screening_id: int | None
    created_at: datetime
    signed_by: int | None
    signed_at: datetime | None
    cosigned_by: int | None
    cosigned_at: datetime | None
    end_reason: str | None
    monitoring_order: dict[str, object] | None = None
