"""API shapes of the patient record (validation of values lives in the service)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Sex = Literal["female", "male", "other", "unknown"]


class PatientCreate(BaseModel):
    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    birth_date: date
    sex: Sex
    mrn: str | None = Field(default=None, max_length=32, description="Generated when omitted")
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=500)
    weight_kg: float | None = Field(default=None, description="Measured weight, 20-350 kg")
    height_cm: float | None = Field(default=None, description="Measured height, 50-260 cm")
    confirm_duplicate: bool = Field(
        default=False,
        description="Register even though the name and birth date (or the MRN, ignoring "
        "case) match a record already registered: without it such a request answers 409 "
        "with the matching record ids in `duplicates`. An MRN already on record is always "
        "refused.",
    )


class RetireRequest(BaseModel):
    """Retire a record entered in error: kept, hidden from lists, closed to writes."""

    reason: str = Field(min_length=3, max_length=1000)


class PatientAmend(BaseModel):
    """A correction of demographics or contact: the changed fields and why."""

    reason: str = Field(min_length=3, max_length=1000)
    version: int = Field(description="The version you corrected (optimistic concurrency)")
    given_name: str | None = Field(default=None, min_length=1, max_length=100)
    family_name: str | None = Field(default=None, min_length=1, max_length=100)
    birth_date: date | None = None
    sex: Sex | None = None
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=500)


class WeightCreate(BaseModel):
    weight_kg: float = Field(description="20-350 kg")
    height_cm: float | None = Field(default=None, description="50-260 cm")
    measured_at: datetime | None = Field(default=None, description="Defaults to now; not future")


class ConditionCreate(BaseModel):
    icd10_code: str = Field(max_length=10, description="ICD-10-CM, e.g. G90.511")
    display: str | None = Field(default=None, max_length=200)
    onset_date: date | None = None


class MedicationCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    rxnorm_code: str | None = Field(default=None, max_length=12, description="RxCUI digits")
    dose_text: str | None = Field(default=None, max_length=200)


class AllergyCreate(BaseModel):
    substance: str = Field(min_length=1, max_length=200)
    reaction: str | None = Field(default=None, max_length=200)
    severity: Literal["mild", "moderate", "severe"] | None = None


class StatusChange(BaseModel):
    """Retire or correct an entry: it stays in the record with its history."""

    status: str = Field(max_length=20)
    reason: str = Field(min_length=3, max_length=1000)


class WeightRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    weight_kg: float
    height_cm: float | None
    measured_at: datetime
    status: str


class ConditionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    icd10_code: str
    display: str
    onset_date: date | None
    status: str


class MedicationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    rxnorm_code: str | None
    dose_text: str | None
    status: str


class AllergyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    substance: str
    reaction: str | None
    severity: str | None
    status: str


class PatientSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    mrn: str
    given_name: str
    family_name: str
    birth_date: date
    sex: str


class PatientRead(PatientSummary):
    phone: str | None
    email: str | None
    address: str | None
    version: int
    retired_at: datetime | None = Field(
        default=None, description="Set when the record was retired as entered in error"
    )
    retired_by: int | None = None
    retired_reason: str | None = None
    current_weight_kg: float | None = None
    current_weight_measured_at: datetime | None = None


class PatientsPage(BaseModel):
    items: list[PatientSummary]
    total: int


class AmendmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    resource_type: str
    resource_id: int
    before: dict[str, object]
    after: dict[str, object]
    reason: str
    amended_by: int
    amended_at: datetime


class PatientChart(BaseModel):
    patient: PatientRead
    weights: list[WeightRead]
    conditions: list[ConditionRead]
    medications: list[MedicationRead]
    allergies: list[AllergyRead]
    amendments: list[AmendmentRead]
