"""Session activity: last seen, user agent

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08 10:00:00.000000

Login sessions and API tokens gain the time of their last request (for the idle
timeout and the holder's list of sessions) and the user agent that opened them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ketacare.infra.db

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_seen_at", ketacare.infra.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("user_agent", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.drop_column("user_agent")
        batch_op.drop_column("last_seen_at")
