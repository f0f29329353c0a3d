"""Tables of outcomes: a clinician's decision on a booster suggestion (append-only)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ketacare.infra.db import Base, UTCDateTime

#: a suggestion (one measure's raising score) has one first decision; corrections chain on it
FIRST_DECISION_WHERE = text("supersedes_id IS NULL")


class BoosterDecision(Base):
    """A physician accepted or dismissed the booster a score suggested.

    The decision is tied to the score that raised the suggestion (``assessment_id``), so
    a dismissal holds until a newer score raises a suggestion again. Rows are never
    changed or deleted (database triggers refuse it): a mistaken decision is superseded
    by a new row naming it in ``supersedes_id`` (unique, so the chain never forks).
    ``basis`` keeps the rules in force and the core's words at the time of the decision.
    """

    __tablename__ = "booster_decisions"
    __table_args__ = (
        CheckConstraint("decision IN ('accepted', 'dismissed')", name="decision"),
        CheckConstraint("decision = 'accepted' OR note IS NOT NULL", name="dismiss_reason"),
        UniqueConstraint("supersedes_id", name="uq_booster_decisions_supersedes_id"),
        Index(
            "uq_booster_decisions_first",
            "assessment_id",
            "measure",
            unique=True,
            sqlite_where=FIRST_DECISION_WHERE,
            postgresql_where=FIRST_DECISION_WHERE,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    measure: Mapped[str] = mapped_column(String(40))
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id"))
    score_value: Mapped[float] = mapped_column(Float)
    decision: Mapped[str] = mapped_column(String(10))  # accepted | dismissed
    note: Mapped[str | None] = mapped_column(Text, default=None)
    basis: Mapped[dict[str, object]] = mapped_column(JSON)
    supersedes_id: Mapped[int | None] = mapped_column(
        ForeignKey("booster_decisions.id"), default=None
    )
    decided_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
