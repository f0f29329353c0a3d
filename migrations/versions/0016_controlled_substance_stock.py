"""controlled-substance stock

Revision ID: 0016
Revises: 0015
Create Date: 2027-01-10 09:00:00.000000

Lots of controlled substances and the stock ledger (receipts, draws, witnessed wastes,
counts, disposals, resolutions, witnesses, voids). Both tables are append-only:
triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL); an entry made in error
is voided by an entry naming it, with the reason.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ketacare.infra.db

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TABLES = ("stock_lots", "stock_entries")
KINDS = ("receipt", "draw", "waste", "count", "disposal", "resolution", "witness", "void")


def _append_only(table: str) -> None:
    """Refuse UPDATE and DELETE of a row in the database itself."""
    message = f"{table} is append-only: void an entry made in error instead"
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
        "stock_lots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=60), nullable=False),
        sa.Column("product", sa.String(length=80), nullable=False),
        sa.Column("lot", sa.String(length=60), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_stock_lots_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_lots")),
        sa.UniqueConstraint("site", "product", "lot", name=op.f("uq_stock_lots_site")),
    )
    op.create_table(
        "stock_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("at", when, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=True),
        sa.Column("units", sa.Integer(), nullable=True),
        sa.Column("mg", sa.Float(), nullable=True),
        sa.Column("ml", sa.Float(), nullable=True),
        sa.Column("dosing_session_id", sa.Integer(), nullable=True),
        sa.Column("take_home_id", sa.Integer(), nullable=True),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("supplier", sa.Text(), nullable=True),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("method", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("recorded_at", when, nullable=False),
        sa.CheckConstraint(
            "kind IN (" + ", ".join(f"'{k}'" for k in KINDS) + ")",
            name=op.f("ck_stock_entries_kind"),
        ),
        sa.CheckConstraint("units IS NULL OR units >= 0", name=op.f("ck_stock_entries_units")),
        sa.CheckConstraint("mg IS NULL OR mg > 0", name=op.f("ck_stock_entries_mg")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_stock_entries_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["stock_lots.id"], name=op.f("fk_stock_entries_lot_id_stock_lots")
        ),
        sa.ForeignKeyConstraint(
            ["dosing_session_id"],
            ["dosing_sessions.id"],
            name=op.f("fk_stock_entries_dosing_session_id_dosing_sessions"),
        ),
        sa.ForeignKeyConstraint(
            ["take_home_id"],
            ["take_home_dispenses.id"],
            name=op.f("fk_stock_entries_take_home_id_take_home_dispenses"),
        ),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["stock_entries.id"],
            name=op.f("fk_stock_entries_target_id_stock_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_entries")),
    )
    with op.batch_alter_table("stock_entries", schema=None) as batch_op:
        for column in ("kind", "lot_id", "dosing_session_id", "take_home_id", "target_id"):
            batch_op.create_index(batch_op.f(f"ix_stock_entries_{column}"), [column], unique=False)
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
    with op.batch_alter_table("stock_entries", schema=None) as batch_op:
        for column in ("target_id", "take_home_id", "dosing_session_id", "lot_id", "kind"):
            batch_op.drop_index(batch_op.f(f"ix_stock_entries_{column}"))
    op.drop_table("stock_entries")
    op.drop_table("stock_lots")
