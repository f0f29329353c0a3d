"""take-home supplies

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 20:30:00.000000

Take-home supplies dispensed under a signed plan, and their voids. Both tables are
append-only: triggers refuse UPDATE and DELETE; a dispense entered in error is voided by
a row naming it (one void per dispense).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ketacare.infra.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = ("take_home_dispenses", "take_home_voids")


def _message(table: str) -> str:
    return f"{table} is append-only: void a dispense entered in error instead"


def _append_only(table: str) -> None:
    """Refuse UPDATE and DELETE of a row in the database itself."""
    message = _message(table)
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
    when = ketacare.infra.db.UTCDateTime(timezone=True)
    op.create_table(
        "take_home_dispenses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("molecule", sa.String(length=30), nullable=False),
        sa.Column("route", sa.String(length=40), nullable=False),
        sa.Column("form", sa.String(length=80), nullable=False),
        sa.Column("strength_mg", sa.Float(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("days_supply", sa.Float(), nullable=False),
        sa.Column("directions", sa.Text(), nullable=False),
        sa.Column("lot", sa.String(length=60), nullable=False),
        sa.Column("pdmp_checked", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("dispensed_at", when, nullable=False),
        sa.Column("dispensed_by", sa.Integer(), nullable=False),
        sa.Column("recorded_at", when, nullable=False),
        sa.CheckConstraint("units >= 1", name=op.f("ck_take_home_dispenses_units")),
        sa.CheckConstraint(
            "strength_mg > 0 AND days_supply > 0", name=op.f("ck_take_home_dispenses_positive")
        ),
        sa.ForeignKeyConstraint(
            ["dispensed_by"], ["users.id"], name=op.f("fk_take_home_dispenses_dispensed_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_take_home_dispenses_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_take_home_dispenses_plan_id_plans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_take_home_dispenses")),
    )
    with op.batch_alter_table("take_home_dispenses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_take_home_dispenses_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_take_home_dispenses_plan_id"), ["plan_id"], unique=False
        )
    op.create_table(
        "take_home_voids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dispense_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("voided_by", sa.Integer(), nullable=False),
        sa.Column("voided_at", when, nullable=False),
        sa.ForeignKeyConstraint(
            ["dispense_id"],
            ["take_home_dispenses.id"],
            name=op.f("fk_take_home_voids_dispense_id_take_home_dispenses"),
        ),
        sa.ForeignKeyConstraint(
            ["voided_by"], ["users.id"], name=op.f("fk_take_home_voids_voided_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_take_home_voids")),
        sa.UniqueConstraint("dispense_id", name=op.f("uq_take_home_voids_dispense_id")),
    )
    for table in TABLES:
        _append_only(table)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in reversed(TABLES):
        for event in ("update", "delete", "truncate"):
            if event == "truncate" and dialect != "postgresql":
                continue
            op.execute(
                f"DROP TRIGGER IF EXISTS {table}_no_{event}"
                + (f" ON {table}" if dialect == "postgresql" else "")
            )
        if dialect == "postgresql":
            op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
    op.drop_table("take_home_voids")
    with op.batch_alter_table("take_home_dispenses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_take_home_dispenses_plan_id"))
        batch_op.drop_index(batch_op.f("ix_take_home_dispenses_patient_id"))
    op.drop_table("take_home_dispenses")
