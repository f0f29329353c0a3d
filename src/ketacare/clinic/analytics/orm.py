"""Tables of the clinic dashboard: a per-patient outcome summary, derived from the record.

The summary is a cache, not a clinical record: every row can be recomputed from the
assessments, sessions, plans and diagnoses (``ketacare analytics refresh``), so a row is
replaced, never amended. One row per patient and outcome definition lets the dashboard
answer with aggregate SQL instead of reading every measurement.

Layout for speed (``bench/dashboard.py``): the fixed-width columns the dashboard reads
come first, ``status`` is a small integer, and two covering indexes hold every column
of the two dashboard queries, so both are answered from an index alone (SQLite walks
the rates index already in group order).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ketacare.infra.db import Base, UTCDateTime


class OutcomeSummary(Base):
    """One treated patient judged on one response or remission definition.

    ``status`` is the core's patient state, an index into
    :data:`ketacare.core.outcomes.STATUS_NAMES` (1 no baseline, 2 baseline not
    assessed, 3 no follow-up, 4 non-responder, 5 responder). ``condition`` is a
    condition-group key (:func:`ketacare.clinic.analytics.reference.condition_group`).
    ``last_contact`` is the last value of the definition's measure after cohort entry,
    or cohort entry itself: the dashboard compares it with the follow-up window at query
    time, because being lost to follow-up depends on the day of the query.
    """

    __tablename__ = "outcome_summaries"
    __table_args__ = (
        UniqueConstraint("patient_id", "definition_id", name="uq_outcome_summaries_patient"),
        Index(
            "ix_outcome_summaries_rates",
            "definition_id",
            "condition",
            "protocol_id",
            "status",
            "met_at_last",
            "last_contact",
            "cohort_entry",
            "durability_days",
            "durability_event",
        ),
        Index(
            "ix_outcome_summaries_durability",
            "status",
            "definition_id",
            "durability_days",
            "durability_event",
            "cohort_entry",
            "condition",
            "protocol_id",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    cohort_entry: Mapped[datetime] = mapped_column(UTCDateTime)
    last_contact: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[int] = mapped_column(SmallInteger)
    met_at_last: Mapped[bool] = mapped_column(Boolean)
    sessions_given: Mapped[int] = mapped_column(Integer)
    follow_ups: Mapped[int] = mapped_column(Integer)
    definition_id: Mapped[str] = mapped_column(String(64))
    condition: Mapped[str] = mapped_column(String(60))
    protocol_id: Mapped[str] = mapped_column(String(64))
    durability_days: Mapped[int | None] = mapped_column(Integer, default=None)
    durability_event: Mapped[bool | None] = mapped_column(Boolean, default=None)
    baseline: Mapped[float | None] = mapped_column(Float, default=None)
    last_follow_up: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_value: Mapped[float | None] = mapped_column(Float, default=None)
    first_response: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    loss_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    loss_confirmations: Mapped[int | None] = mapped_column(Integer, default=None)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutcomeSummaryRun(Base):
    """One whole-clinic rebuild of the summary, and the clinic setting it used."""

    __tablename__ = "outcome_summary_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    loss_confirmations: Mapped[int | None] = mapped_column(Integer, default=None)
    patients: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)
