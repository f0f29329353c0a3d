"""booster decisions

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 09:00:00.000000

A physician's decision (accepted or dismissed) on a booster suggestion, tied to the
score that raised it. Append-only: triggers refuse UPDATE and DELETE; a mistaken
decision is superseded by a new row naming it (``supersedes_id``, unique). A partial
unique index allows one first decision per raising score.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ketacare.infra.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

MESSAGE = "booster_decisions is append-only: record a new decision that supersedes it"
FIRST = sa.text("supersedes_id IS NULL")


def _append_only() -> None:
    """Refuse UPDATE and DELETE of a decision in the database itself."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION booster_decisions_append_only() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{MESSAGE}'; END; $$ LANGUAGE plpgsql"
        )
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER booster_decisions_no_{event.lower()} BEFORE {event} "
                "ON booster_decisions FOR EACH ROW EXECUTE FUNCTION "
                "booster_decisions_append_only()"
            )
        op.execute(
            "CREATE TRIGGER booster_decisions_no_truncate BEFORE TRUNCATE ON booster_decisions "
            "FOR EACH STATEMENT EXECUTE FUNCTION booster_decisions_append_only()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER booster_decisions_no_{event.lower()} BEFORE {event} "
                f"ON booster_decisions BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            )


def upgrade() -> None:
    op.create_table(
        "booster_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("measure", sa.String(length=40), nullable=False),
        sa.Column("assessment_id", sa.Integer(), nullable=False),
        sa.Column("score_value", sa.Float(), nullable=False),
        sa.Column("decision", sa.String(length=10), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("basis", sa.JSON(), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=False),
        sa.Column("decided_at", ketacare.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "decision IN ('accepted', 'dismissed')", name=op.f("ck_booster_decisions_decision")
        ),
        sa.CheckConstraint(
            "decision = 'accepted' OR note IS NOT NULL",
            name=op.f("ck_booster_decisions_dismiss_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessments.id"],
            name=op.f("fk_booster_decisions_assessment_id_assessments"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_booster_decisions_decided_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_booster_decisions_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["supersedes_id"],
            ["booster_decisions.id"],
            name=op.f("fk_booster_decisions_supersedes_id_booster_decisions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booster_decisions")),
        sa.UniqueConstraint("supersedes_id", name="uq_booster_decisions_supersedes_id"),
    )
    with op.batch_alter_table("booster_decisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_booster_decisions_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(
            "uq_booster_decisions_first",
            ["assessment_id", "measure"],
            unique=True,
            sqlite_where=FIRST,
            postgresql_where=FIRST,
        )
    _append_only()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for event in ("update", "delete", "truncate"):
        if event == "truncate" and dialect != "postgresql":
            continue
        op.execute(
            f"DROP TRIGGER IF EXISTS booster_decisions_no_{event}"
            + (" ON booster_decisions" if dialect == "postgresql" else "")
        )
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS booster_decisions_append_only()")
    with op.batch_alter_table("booster_decisions", schema=None) as batch_op:
        batch_op.drop_index("uq_booster_decisions_first")
        batch_op.drop_index(batch_op.f("ix_booster_decisions_patient_id"))
    op.drop_table("booster_decisions")
