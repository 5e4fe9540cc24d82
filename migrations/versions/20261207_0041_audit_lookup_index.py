"""A case's lookups in the audit trail are found by an index of their own

The status lookup counts a case's wrong query codes within a window, since the last right code or
new code (disputes/lookup.py `recent_failures`): audit records of one case (`object_id`), of a few
actions (`action`), within the window (`occurred_at`). The index on `object_id` alone read every
record of the case and filtered them; this one reads only the window's records of those actions.

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-07 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0041"
down_revision: str | None = "0040"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_audit_records_object_id_action_occurred_at"


def upgrade() -> None:
    op.create_index(INDEX, "audit_records", ["object_id", "action", "occurred_at"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="audit_records")
