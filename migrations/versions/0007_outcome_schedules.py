"""outcome schedules

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 09:00:00.000000

A plan's outcome schedule is kept in versions: a change adds a row and marks the
previous one superseded, so what was asked of the patient at any time stays
readable. A self-report link may name the schedule it was made for and the
occurrences that were due then.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ketacare.infra.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outcome_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", ketacare.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", ketacare.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_outcome_schedules_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_outcome_schedules_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_outcome_schedules_plan_id_plans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcome_schedules")),
        sa.UniqueConstraint("plan_id", "version", name="uq_outcome_schedules_plan_version"),
    )
    with op.batch_alter_table("outcome_schedules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outcome_schedules_plan_id"), ["plan_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_outcome_schedules_patient_id"), ["patient_id"], unique=False
        )

    with op.batch_alter_table("self_report_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("schedule_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("occurrences", sa.JSON(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_self_report_links_schedule_id_outcome_schedules"),
            "outcome_schedules",
            ["schedule_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("self_report_links", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_self_report_links_schedule_id_outcome_schedules"), type_="foreignkey"
        )
        batch_op.drop_column("occurrences")
        batch_op.drop_column("schedule_id")

    with op.batch_alter_table("outcome_schedules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outcome_schedules_patient_id"))
        batch_op.drop_index(batch_op.f("ix_outcome_schedules_plan_id"))

    op.drop_table("outcome_schedules")
