"""Tables of research: a patient's decisions on the registry (append-only)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ketacare.infra.db import Base, UTCDateTime


class ResearchConsent(Base):
    """A patient granted or withdrew consent to the research registry.

    The newest decision holds; none is changed or deleted (database triggers refuse
    it), so when consent was given and withdrawn stays on record. Without a decision
    a patient is not in any export.
    """

    __tablename__ = "research_consents"
    __table_args__ = (CheckConstraint("decision IN ('granted', 'withdrawn')", name="decision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    decision: Mapped[str] = mapped_column(String(10))
    note: Mapped[str] = mapped_column(Text)  # e.g. the consent form and its version
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
