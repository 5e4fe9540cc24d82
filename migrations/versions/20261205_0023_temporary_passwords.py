"""Passwords an administrator set are temporary until their user changes them

An account created by an administrator (API or command line) or whose password an administrator
reset holds a password someone else knows: `password_change_required` is set, and until the user
changes the password themselves the account may only read `/v1/me`, change its password and sign
out (等保 level 3: an initial or reset password is changed at first use).

Accounts that exist already keep working as they are: their passwords are not marked temporary.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("password_change_required", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_change_required")
