"""API shapes of screenings (details are validated by the screening engine)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Treatment(BaseModel):
    molecule: Literal["ketamine", "esketamine"]
    route: Literal["intramuscular", "intranasal", "iv_bolus", "iv_infusion", "oral", "sublingual"]
    setting: Literal["in_clinic", "take_home"] = "in_clinic"


class Vitals(BaseModel):
    systolic_mmhg: float | None = Field(default=None, ge=40, le=300)
    diastolic_mmhg: float | None = Field(default=None, ge=20, le=200)
    heart_rate_bpm: float | None = Field(default=None, ge=20, le=250)


class Lab(BaseModel):
    test: Literal["alt", "ast", "alp", "ggt", "bilirubin"]
    value: float = Field(ge=0)
    upper_limit_normal: float = Field(gt=0)
    unit: str | None = Field(default=None, max_length=20)


class ScreeningCreate(BaseModel):
    """What the clinician adds to the record's facts (see `ketacare screen --schema`)."""

    treatment: Treatment
    history: dict[str, bool | str] = Field(default_factory=dict)
    vitals: Vitals | None = None
    labs: list[Lab] = Field(default_factory=list)
    pregnancy_status: Literal["pregnant", "not_pregnant", "not_applicable"] | None = None
    breastfeeding: bool | None = None


class SignOff(BaseModel):
    note: str = Field(default="", max_length=2000)
    valid_until: date | None = Field(default=None, description="Needed when no site policy")


class ScreeningRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    patient_id: int
    decision: str
    ruleset_version: str
    molecule: str
    route: str
    input: dict[str, object]
    result: dict[str, object]
    created_at: datetime
    status: str
    signed_at: datetime | None
    signed_by: int | None
    sign_note: str | None
    valid_until: date | None
    superseded_at: datetime | None = None
    superseded_by: int | None = Field(
        default=None, description="The newer screening of the same molecule and route"
    )
