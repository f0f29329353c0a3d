"""Tables of treatment consent (all append-only: database triggers refuse UPDATE and DELETE).

A template version, a patient's signature, its countersignature and a withdrawal are
each one row that is never changed: a new version never alters a signed consent, and a
withdrawal is recorded beside the consent it ends, which stays on record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ketacare.infra.db import Base, UTCDateTime


class ConsentTemplate(Base):
    """One published version of a program's consent text (the clinic's own words)."""

    __tablename__ = "consent_templates"
    __table_args__ = (UniqueConstraint("program", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    program: Mapped[str] = mapped_column(String(40), index=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    #: the checked template (``ketacare.core.consent.template_to_dict``)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    reconsent_required: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)


class Consent(Base):
    """A patient's signature on one template version: typed name, drawn signature, answers."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("consent_templates.id"))
    typed_name: Mapped[str] = mapped_column(String(200))
    signature_png: Mapped[bytes] = mapped_column(LargeBinary)
    #: the teach-back answers given ({question id: choice index})
    teach_back: Mapped[dict[str, int]] = mapped_column(JSON)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)

    template: Mapped[ConsentTemplate] = relationship(lazy="joined")


class ConsentCountersignature(Base):
    """The witness's or clinician's countersignature, and the signed document it completes."""

    __tablename__ = "consent_countersignatures"
    __table_args__ = (CheckConstraint("capacity IN ('witness', 'clinician')", name="capacity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    consent_id: Mapped[int] = mapped_column(ForeignKey("consents.id"), unique=True)
    capacity: Mapped[str] = mapped_column(String(10))
    signed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    signer_name: Mapped[str] = mapped_column(String(200))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    pdf_sha256: Mapped[str] = mapped_column(String(64))


class ConsentWithdrawal(Base):
    """The patient withdrew a consent: no further dose of its program under it."""

    __tablename__ = "consent_withdrawals"

    id: Mapped[int] = mapped_column(primary_key=True)
    consent_id: Mapped[int] = mapped_column(ForeignKey("consents.id"), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    withdrawn_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
