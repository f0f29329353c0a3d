"""Patients retired as entered in error; indexes of the audit trail's filters

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-15 09:00:00.000000

Patients gain ``retired_at``, ``retired_by`` and ``retired_reason`` (a record entered in
error is kept, hidden from lists and closed to writes) and an index on ``birth_date``
(the duplicate check at registration). The audit trail gains indexes for its filters
read newest first: (username, id), (action, id) and (patient_id, id), the last replacing
the index on patient_id alone. Indexes are created outside a batch so that SQLite does
not copy the append-only audit table (whose triggers refuse UPDATE and DELETE).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ketacare.infra.db

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("retired_at", ketacare.infra.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("retired_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("retired_reason", sa.Text(), nullable=True))
    op.create_index("ix_patients_birth_date", "patients", ["birth_date"], unique=False)
    op.create_index("ix_audit_events_username_id", "audit_events", ["username", "id"])
    op.create_index("ix_audit_events_action_id", "audit_events", ["action", "id"])
    op.create_index("ix_audit_events_patient_id_id", "audit_events", ["patient_id", "id"])
    op.drop_index("ix_audit_events_patient_id", table_name="audit_events")


def downgrade() -> None:
    op.create_index("ix_audit_events_patient_id", "audit_events", ["patient_id"])
    op.drop_index("ix_audit_events_patient_id_id", table_name="audit_events")
    op.drop_index("ix_audit_events_action_id", table_name="audit_events")
    op.drop_index("ix_audit_events_username_id", table_name="audit_events")
    op.drop_index("ix_patients_birth_date", table_name="patients")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_column("retired_reason")
        batch_op.drop_column("retired_by")
        batch_op.drop_column("retired_at")
