"""Wrong passwords in a row lock an account for a while

An account counts the wrong passwords typed for it since its last sign-in; the fifth in a row (by
default) locks it for fifteen minutes (等保 level 3, GB/T 22239-2019 8.1.4.1 b: 登录失败处理,
限制非法登录次数). The count lives in the database, so every process of the service and every
restart share it, as a guesser's attempts would.

Accounts that exist start with no wrong passwords counted and unlocked.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("failed_sign_ins", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("locked_until")
        batch.drop_column("failed_sign_ins")
