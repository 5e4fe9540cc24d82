"""Indexes for the filtered case list and for triage's body load, found by make bench at a
million cases

- `GET /v1/disputes?status=...&category=...` took 2.5 s: the status index alone meant reading
  every case in that state to find the newest of one category.
- Triage took 4.5 s: each body's load (its assigned and mediating cases) was counted from the
  table; a partial index on body_id over active cases answers it from the index.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "status IN ('assigned', 'mediating')"


def upgrade() -> None:
    op.create_index(
        "ix_disputes_status_category_created_at", "disputes", ["status", "category", "created_at", "id"]
    )
    op.create_index(
        "ix_disputes_active_body",
        "disputes",
        ["body_id"],
        postgresql_where=sa.text(ACTIVE),
        sqlite_where=sa.text(ACTIVE),
    )


def downgrade() -> None:
    op.drop_index("ix_disputes_active_body", table_name="disputes")
    op.drop_index("ix_disputes_status_category_created_at", table_name="disputes")
