"""screenings per molecule and route

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 15:30:00.000000

One signed screening in force for each (patient, molecule, route), held by a partial
unique index; a superseded screening keeps when, and by which screening, it was
superseded. Screenings that the old rule (one per patient) superseded stay
superseded: the patient is screened again for that treatment.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ketacare.infra.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

IN_FORCE = sa.text("status = 'signed'")


def upgrade() -> None:
    with op.batch_alter_table("screenings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("superseded_at", ketacare.infra.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("superseded_by", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_screenings_superseded_by_screenings"),
            "screenings",
            ["superseded_by"],
            ["id"],
        )
        batch_op.create_index(
            "uq_screenings_in_force",
            ["patient_id", "molecule", "route"],
            unique=True,
            sqlite_where=IN_FORCE,
            postgresql_where=IN_FORCE,
        )


def downgrade() -> None:
    with op.batch_alter_table("screenings", schema=None) as batch_op:
        batch_op.drop_index("uq_screenings_in_force")
        batch_op.drop_constraint(
            batch_op.f("fk_screenings_superseded_by_screenings"), type_="foreignkey"
        )
        batch_op.drop_column("superseded_by")
        batch_op.drop_column("superseded_at")
