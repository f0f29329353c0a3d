"""API shapes of the REMS records."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

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
