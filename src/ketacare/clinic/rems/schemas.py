"""API shapes of the REMS records."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class CertificationIn(BaseModel):
    site: str = Field(min_length=1, max_length=200, description="The clinic site")
    identifier: str = Field(min_length=1, max_length=100, description="REMS certification id")
    certified_on: date
    status: Literal["certified", "ended"] = "certified"


class CertificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site: str
    status: str
    identifier: str
    certified_on: date
    recorded_at: datetime


class EnrolmentIn(BaseModel):
    identifier: str = Field(min_length=1, max_length=100, description="REMS patient id")
    enrolled_on: date


class EnrolmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    patient_id: int
    identifier: str
    enrolled_on: date
    recorded_at: datetime


class FormItem(BaseModel):
    name: str
    label: str
    value: str
    field_status: str = Field(
        description="form-2021: printed on the 11/2021 form; unconfirmed: named only in the "
        "FDA or Janssen summaries (none is confirmed against the 12/31/2024 update)"
    )


class MissingItem(BaseModel):
    name: str
    where: str


class FormRead(BaseModel):
    session_id: int
    complete: bool
    items: list[FormItem]
    missing: list[MissingItem]


class AnswersIn(BaseModel):
    answers: dict[str, Any] = Field(
        description="Items the session log does not hold: yes/no (true/false), "
        "{'present': bool, 'at': 'HH:MM'} for sedation, dissociation and respiratory "
        "depression, whole minutes for ready_to_leave_min, text for provider telephone/email"
    )


class SubmittedIn(BaseModel):
    submitted_on: date
    route: Literal["online", "fax"]
    reference: str = Field(min_length=1, max_length=200)


class QueueRowRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    session_id: int
    patient_id: int
    patient: str
    treated_on: date
    due: date
    status: Literal["due", "overdue", "submitted"]
    ready: bool
    submitted_on: str | None
    route: str | None
    reference: str | None
