"""Appointments not attended (a no-show)

Revision ID: 0026
Revises: 0025
Create Date: 2027-02-03 09:00:00.000000

``appointment_events`` accept the kind ``not_attended``: a booked appointment whose start
has passed with no dosing session opened is marked not attended with a reason (its
status becomes ``not_attended``; ``appointments.status`` has no check to change). The
table is append-only (migration 0021): on SQLite the check is changed by copying the
table, so its triggers are dropped first and created again after; on PostgreSQL the
constraint is replaced in place (its triggers stay).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ketacare.infra.db

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


EVENTS = "appointment_events"
CHECK = "ck_appointment_events_kind"
BEFORE = ("booked", "moved", "attended", "cancelled")
AFTER = ("booked", "moved", "attended", "not_attended", "cancelled")


def _condition(kinds: tuple[str, ...]) -> str:
    return "kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")"


def _events_table(kinds: tuple[str, ...]) -> sa.Table:
    """``appointment_events`` as migration 0021 made it, with the check on ``kinds``
    (the copy SQLite's batch mode works from, instead of reflecting it)."""
    utc = ketacare.infra.db.UTCDateTime(timezone=True)
    return sa.Table(
        EVENTS,
        sa.MetaData(),
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
        sa.CheckConstraint(_condition(kinds), name=CHECK),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name="fk_appointment_events_appointment_id_appointments",
        ),
        sa.ForeignKeyConstraint(["by"], ["users.id"], name="fk_appointment_events_by_users"),
        sa.ForeignKeyConstraint(
            ["chair_id_before"], ["chairs.id"], name="fk_appointment_events_chair_id_before_chairs"
        ),
        sa.ForeignKeyConstraint(
            ["chair_id"], ["chairs.id"], name="fk_appointment_events_chair_id_chairs"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_appointment_events"),
        sa.Index("ix_appointment_events_appointment_id", "appointment_id"),
    )


def _event_kinds(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    """Replace the check on ``appointment_events.kind`` (rows and triggers kept)."""
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f(CHECK), EVENTS, type_="check")
        op.create_check_constraint(op.f(CHECK), EVENTS, _condition(new))
        return
    message = f"{EVENTS} is append-only: record a new event instead"
    for event in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {EVENTS}_no_{event}")
    with op.batch_alter_table(EVENTS, copy_from=_events_table(old), recreate="always") as batch_op:
        batch_op.drop_constraint(op.f(CHECK), type_="check")
        batch_op.create_check_constraint(op.f(CHECK), _condition(new))
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {EVENTS}_no_{event.lower()} BEFORE {event} ON {EVENTS} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )


def upgrade() -> None:
    _event_kinds(BEFORE, AFTER)


def downgrade() -> None:
    # refused by the check while an appointment's history holds a not_attended event
    _event_kinds(AFTER, BEFORE)
