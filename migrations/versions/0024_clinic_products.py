"""products a clinic registers from its supplier's label

Revision ID: 0024
Revises: 0023
Create Date: 2027-01-20 09:00:00.000000

``clinic_products``: the products a clinic stocks that ketacare's library does not hold
(a compounding pharmacy's ketamine oral solution or troche), registered from the
supplier's label or certificate of analysis, with who entered each and when. Append-only
like the ledger (migration 0016): an amendment or a retirement is a new row naming the
first in ``registration_id``; triggers refuse UPDATE and DELETE (and TRUNCATE on
PostgreSQL). Take-home supplies draw from the ledger's existing ``take_home_id`` column.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ketacare.infra.db

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

TABLE = "clinic_products"


def _append_only(table: str) -> None:
    """Refuse UPDATE and DELETE of a row in the database itself (as migration 0016)."""
    message = f"{table} is append-only: amend or retire a product by a new entry instead"
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
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=True),
        sa.Column("molecule", sa.String(length=30), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("form", sa.String(length=40), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=False),
        sa.Column("mg_per_unit", sa.Float(), nullable=False),
        sa.Column("strength_mg_per_ml", sa.Float(), nullable=True),
        sa.Column("volume_ml", sa.Float(), nullable=True),
        sa.Column("supplier", sa.Text(), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("entered_by", sa.Integer(), nullable=False),
        sa.Column("entered_at", ketacare.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("mg_per_unit > 0", name=op.f("ck_clinic_products_mg_per_unit")),
        sa.CheckConstraint(
            "strength_mg_per_ml IS NULL OR strength_mg_per_ml > 0",
            name=op.f("ck_clinic_products_strength_mg_per_ml"),
        ),
        sa.CheckConstraint(
            "volume_ml IS NULL OR volume_ml > 0", name=op.f("ck_clinic_products_volume_ml")
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["clinic_products.id"],
            name=op.f("fk_clinic_products_registration_id_clinic_products"),
        ),
        sa.ForeignKeyConstraint(
            ["entered_by"], ["users.id"], name=op.f("fk_clinic_products_entered_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinic_products")),
    )
    op.create_index(
        op.f("ix_clinic_products_registration_id"), TABLE, ["registration_id"], unique=False
    )
    _append_only(TABLE)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for event in ("update", "delete", "truncate"):
        if event == "truncate" and dialect != "postgresql":
            continue
        op.execute(
            f"DROP TRIGGER IF EXISTS {TABLE}_no_{event}"
            + (f" ON {TABLE}" if dialect == "postgresql" else "")
        )
    if dialect == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {TABLE}_append_only()")
    op.drop_index(op.f("ix_clinic_products_registration_id"), table_name=TABLE)
    op.drop_table(TABLE)
