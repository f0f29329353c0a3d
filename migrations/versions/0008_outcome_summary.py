"""outcome summary

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 12:00:00.000000

The clinic dashboard's per-patient outcome summary (one row per treated patient and
outcome definition, recomputable from the record at any time) and the log of
whole-clinic rebuilds with the setting each used.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ketacare.infra.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # fixed-width columns the dashboard reads first, then the rest (see the ORM's notes)
    op.create_table(
        "outcome_summaries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("cohort_entry", ketacare.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_contact", ketacare.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("met_at_last", sa.Boolean(), nullable=False),
        sa.Column("sessions_given", sa.Integer(), nullable=False),
        sa.Column("follow_ups", sa.Integer(), nullable=False),
        sa.Column("definition_id", sa.String(length=64), nullable=False),
        sa.Column("condition", sa.String(length=60), nullable=False),
        sa.Column("protocol_id", sa.String(length=64), nullable=False),
        sa.Column("durability_days", sa.Integer(), nullable=True),
        sa.Column("durability_event", sa.Boolean(), nullable=True),
        sa.Column("baseline", sa.Float(), nullable=True),
        sa.Column("last_follow_up", ketacare.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.Column("first_response", ketacare.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("loss_at", ketacare.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("loss_confirmations", sa.Integer(), nullable=True),
        sa.Column("refreshed_at", ketacare.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_outcome_summaries_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcome_summaries")),
        sa.UniqueConstraint("patient_id", "definition_id", name="uq_outcome_summaries_patient"),
    )
    with op.batch_alter_table("outcome_summaries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outcome_summaries_rates",
            [
                "definition_id",
                "condition",
                "protocol_id",
                "status",
                "met_at_last",
                "last_contact",
                "cohort_entry",
                "durability_days",
                "durability_event",
            ],
            unique=False,
        )
        batch_op.create_index(
            "ix_outcome_summaries_durability",
            [
                "status",
                "definition_id",
                "durability_days",
                "durability_event",
                "cohort_entry",
                "condition",
                "protocol_id",
            ],
            unique=False,
        )

    op.create_table(
        "outcome_summary_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", ketacare.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("loss_confirmations", sa.Integer(), nullable=True),
        sa.Column("patients", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcome_summary_runs")),
    )


def downgrade() -> None:
    op.drop_table("outcome_summary_runs")
    with op.batch_alter_table("outcome_summaries", schema=None) as batch_op:
        batch_op.drop_index("ix_outcome_summaries_durability")
        batch_op.drop_index("ix_outcome_summaries_rates")
    op.drop_table("outcome_summaries")
