"""API shapes of treatment consent."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ketacare.clinic.consent.orm import ConsentTemplate
from ketacare.clinic.consent.service import ConsentEntry
from ketacare.core.consent import Standing


class TemplateIn(BaseModel):
    program: str = Field(max_length=40, description="The consent program")
    content: dict[str, Any] | None = Field(
        default=None,
        description="The clinic's template (template, section, risk with sources, teach_back, "
        "sources); omitted: the shipped EXAMPLE for the program, marked as one",
    )
    reconsent_required: bool = Field(
        default=False, description="Patients who signed an earlier version must sign this one"
    )
    note: str = Field(default="", max_length=2000)


class TemplateRead(BaseModel):
    id: int
    program: str
    version: int
    title: str
    example: bool
    reconsent_required: bool
    published_at: datetime
    content: dict[str, Any]

    @classmethod
    def of(cls, row: ConsentTemplate) -> TemplateRead:
        return cls(
            id=row.id,
            program=row.program,
            version=row.version,
            title=row.title,
            example=bool(row.content["template"].get("example", False)),
            reconsent_required=row.reconsent_required,
            published_at=row.published_at,
            content=row.content,
        )


class SignIn(BaseModel):
    template_id: int = Field(ge=1, le=2**31 - 1)
    typed_name: str = Field(min_length=1, max_length=200)
    signature: str = Field(
        min_length=1,
        max_length=800_000,
        description="The drawn signature as a PNG data URL (data:image/png;base64,...)",
    )
    teach_back: dict[str, int] = Field(
        description="The answer to each teach-back question: {question id: choice index}"
    )


class CountersignIn(BaseModel):
    capacity: Literal["witness", "clinician"]


class WithdrawIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class ConsentRead(BaseModel):
    id: int
    patient_id: int
    template_id: int
    program: str
    version: int
    typed_name: str
    signed_at: datetime
    status: Literal["awaiting countersignature", "signed", "withdrawn"]
    countersigned_by: str | None
    countersigned_as: str | None
    countersigned_at: datetime | None
    pdf_sha256: str | None
    withdrawn_at: datetime | None
    withdrawal_reason: str | None

    @classmethod
    def of(cls, e: ConsentEntry) -> ConsentRead:
        c, cs, w = e.consent, e.countersignature, e.withdrawal
        return cls(
            id=c.id,
            patient_id=c.patient_id,
            template_id=c.template_id,
            program=c.template.program,
            version=c.template.version,
            typed_name=c.typed_name,
            signed_at=c.signed_at,
            status=e.status,
            countersigned_by=cs.signer_name if cs else None,
            countersigned_as=cs.capacity if cs else None,
            countersigned_at=cs.signed_at if cs else None,
            pdf_sha256=cs.pdf_sha256 if cs else None,
            withdrawn_at=w.withdrawn_at if w else None,
            withdrawal_reason=w.reason if w else None,
        )


class StandingRead(BaseModel):
    program: str
    in_force: bool
    consent_id: int | None
    problem: str | None
    reconsent_due: bool
    withdrawn: bool

    @classmethod
    def of(cls, s: Standing) -> StandingRead:
        return cls(
            program=s.program,
            in_force=s.ok,
            consent_id=s.consent.id if s.consent else None,
            problem=s.problem,
            reconsent_due=s.reconsent_due,
            withdrawn=s.withdrawn,
        )


class PatientConsents(BaseModel):
    standings: list[StandingRead]
    consents: list[ConsentRead]


class ReconsentFlag(BaseModel):
    patient_id: int
    program: str
    consent_id: int
    signed_version: int
    problem: str | None
