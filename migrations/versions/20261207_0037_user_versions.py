"""A staff account has a version, for changing its role, organisation or name

Staff move between posts (a clerk becomes a supervisor, a mediator moves to another committee):
their account is now changed in place, keeping its audit history, instead of a second account
being made. Two administrators changing one account at once are told apart by the account's
version (the ETag an edit names in If-Match), moved on by every change an administrator makes.

Accounts that exist start at version 1.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("version")
