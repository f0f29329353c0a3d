"""API shapes of assessments and alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ketacare.core.errors import KetacareError
from ketacare.core.instruments import get_instrument, incomplete_label

Context = Literal["intake", "pre_session", "post_session", "follow_up", "session"]


class AssessmentCreate(BaseModel):
    instrument: str = Field(max_length=40, description="Instrument id, e.g. phq9")
    answers: list[bool | int | float | None] | dict[str, bool | int | float | None] = Field(
        description="Raw responses in item order, or an object keyed by item id"
    )
    context: Context = "intake"


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    patient_id: int
    kind: str
    message: str
    routes_to: str | None
    assessment_id: int | None
    recipient_id: int | None
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: int | None
    action: str | None
    session_id: int | None = None
    session_alert: str | None = None


class AssessmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    patient_id: int
    instrument_id: str
    instrument_version: str
    answers: dict[str, object]
    total: float | None
    band: str | None
    flags: list[str]
    subscores: dict[str, object]
    missing: list[str]
    context: str
    source: str
    completed_at: datetime
    status: str
    incomplete: str | None = Field(
        default=None,
        description="Set when required items were left blank (kept under the clinic's "
        "partial-answers setting): 'incomplete: items 3, 9 unanswered'; no total then",
    )

    @model_validator(mode="after")
    def _incomplete(self) -> AssessmentRead:
        if self.missing and self.incomplete is None:
            try:
                instrument = get_instrument(self.instrument_id)
            except KetacareError:
                self.incomplete = f"incomplete: items {', '.join(self.missing)} unanswered"
            else:
                self.incomplete = incomplete_label(instrument, self.missing) or None
        return self


class AssessmentResult(BaseModel):
    assessment: AssessmentRead
    alerts: list[AlertRead]


class Acknowledge(BaseModel):
    action: str = Field(min_length=3, max_length=2000, description="What was done about it")
