"""REMS records

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 13:00:00.000000

The SPRAVATO REMS: clinic sites' certifications as treatment settings (or their end) and
patients' enrolments, each with its identifier and date; and the steps of each session's
Patient Monitoring Form (answers, ready, submitted). Append-only: triggers refuse
UPDATE and DELETE (and TRUNCATE on PostgreSQL); the newest record holds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ketacare.infra.db

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

TABLES = ("rems_certifications", "rems_enrolments", "rems_form_entries")


def _append_only(table: str) -> None:
    message = f"{table} is append-only: record a new row instead"
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
        "rems_certifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("identifier", sa.String(length=100), nullable=False),
        sa.Column("certified_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", utc, nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('certified', 'ended')", name=op.f("ck_rems_certifications_status")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_rems_certifications_recorded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rems_certifications")),
    )
    with op.batch_alter_table("rems_certifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rems_certifications_site"), ["site"], unique=False)
    op.create_table(
        "rems_enrolments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=100), nullable=False),
        sa.Column("enrolled_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", utc, nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_rems_enrolments_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_rems_enrolments_recorded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rems_enrolments")),
    )
    with op.batch_alter_table("rems_enrolments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rems_enrolments_patient_id"), ["patient_id"], unique=False
        )
    op.create_table(
        "rems_form_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("recorded_at", utc, nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('answers', 'ready', 'submitted')", name=op.f("ck_rems_form_entries_kind")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_rems_form_entries_recorded_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["dosing_sessions.id"],
            name=op.f("fk_rems_form_entries_session_id_dosing_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rems_form_entries")),
    )
    with op.batch_alter_table("rems_form_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rems_form_entries_session_id"), ["session_id"], unique=False
        )
    for table in TABLES:
        _append_only(table)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in TABLES:
        for event in ("update", "delete", "truncate"):
            if event == "truncate" and dialect != "postgresql":
                continue
            op.execute(
                f"DROP TRIGGER IF EXISTS {table}_no_{event}"
                + (f" ON {table}" if dialect == "postgresql" else "")
            )
        if dialect == "postgresql":
            op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
    with op.batch_alter_table("rems_form_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rems_form_entries_session_id"))
    op.drop_table("rems_form_entries")
    with op.batch_alter_table("rems_enrolments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rems_enrolments_patient_id"))
    with op.batch_alter_table("rems_certifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rems_certifications_site"))
    op.drop_table("rems_enrolments")
    op.drop_table("rems_certifications")
