"""monitoring orders

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 15:20:00.000000

A plan for a supervised session carries the physician's monitoring order (values, who
set them, their origin) as JSON; a session's vitals alert also reaches the responsible
clinician's inbox (clinical_alerts), linked to its session and the session's alert id.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("monitoring_order", sa.JSON(), nullable=True))
    with op.batch_alter_table("clinical_alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("session_alert", sa.String(length=120), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_clinical_alerts_session_id_dosing_sessions"),
            "dosing_sessions",
            ["session_id"],
            ["id"],
        )
        batch_op.create_index(
            batch_op.f("ix_clinical_alerts_session_id"), ["session_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("clinical_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clinical_alerts_session_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_clinical_alerts_session_id_dosing_sessions"), type_="foreignkey"
        )
        batch_op.drop_column("session_alert")
        batch_op.drop_column("session_id")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_column("monitoring_order")
