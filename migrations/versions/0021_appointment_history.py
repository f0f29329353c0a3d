"""Appointment history and off-schedule sessions

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-10 09:00:00.000000

Appointments keep their history: each booking, move (with the time and chair before)
and cancellation is a row of ``appointment_events`` with who, when and the reason;
append-only (triggers refuse UPDATE and DELETE, and TRUNCATE on PostgreSQL). A dosing
session opened on another day than its booking keeps the booked day and the reason.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ketacare.infra.db

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

TABLE = "appointment_events"


def _append_only(table: str) -> None:
    message = f"{table} is append-only: record a new event instead"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE FUNCTION {table}_append_only() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{message}'; END; $$ LANGUAGE plpgsql"
        )
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
            )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )


def upgrade() -> None:
    utc = ketacare.infra.db.UTCDateTime(timezone=True)
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("at", utc, nullable=False),
        sa.Column("by", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("starts_at_before", utc, nullable=True),
        sa.Column("chair_id_before", sa.Integer(), nullable=True),
        sa.Column("starts_at", utc, nullable=False),
        sa.Column("chair_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('booked', 'moved', 'cancelled')", name=op.f("ck_appointment_events_kind")
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_appointment_events_appointment_id_appointments"),
        ),
        sa.ForeignKeyConstraint(["by"], ["users.id"], name=op.f("fk_appointment_events_by_users")),
        sa.ForeignKeyConstraint(
            ["chair_id_before"],
            ["chairs.id"],
            name=op.f("fk_appointment_events_chair_id_before_chairs"),
        ),
        sa.ForeignKeyConstraint(
            ["chair_id"], ["chairs.id"], name=op.f("fk_appointment_events_chair_id_chairs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_events")),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_appointment_events_appointment_id"), ["appointment_id"], unique=False
        )
    _append_only(TABLE)
    with op.batch_alter_table("dosing_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("booked_day", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("off_schedule_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("dosing_sessions", schema=None) as batch_op:
        batch_op.drop_column("off_schedule_reason")
        batch_op.drop_column("booked_day")
    for event in ("update", "delete", "truncate"):
        if event == "truncate" and dialect != "postgresql":
            continue
        op.execute(
            f"DROP TRIGGER IF EXISTS {TABLE}_no_{event}"
            + (f" ON {TABLE}" if dialect == "postgresql" else "")
        )
    if dialect == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {TABLE}_append_only()")
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appointment_events_appointment_id"))
    op.drop_table(TABLE)
