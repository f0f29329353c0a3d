"""login throttling replaces the account lock

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 09:00:00.000000

Failed logins are counted per (account, address) pair and per address by the login
throttle (the `limits` library), never on the account: the lock columns go.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ketacare.infra.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("locked_until")
        batch_op.drop_column("failed_logins")


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("locked_until", ketacare.infra.db.UTCDateTime(timezone=True), nullable=True)
        )
