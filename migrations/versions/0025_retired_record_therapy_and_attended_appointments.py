"""Therapy sessions cancelled with a reason (a record retired as entered in error)

Revision ID: 0025
Revises: 0024
Create Date: 2027-01-27 09:00:00.000000

``therapy_sessions`` gain ``cancelled_at``, ``cancelled_by`` and ``cancel_reason``: a
psychotherapy session still to come of a record retired as entered in error is cancelled,
not deleted (status ``cancelled``), with who cancelled it, when and why.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ketacare.infra.db

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("therapy_sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("cancelled_at", ketacare.infra.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("cancelled_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cancel_reason", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_therapy_sessions_cancelled_by_users"), "users", ["cancelled_by"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("therapy_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_therapy_sessions_cancelled_by_users"), type_="foreignkey"
        )
        batch_op.drop_column("cancel_reason")
        batch_op.drop_column("cancelled_by")
        batch_op.drop_column("cancelled_at")
