"""Staff sessions that end when they are signed out, everywhere when the password changes

Signing out deleted the cookie and nothing else: a token copied from the browser (a shared
computer at the window) kept working until it expired, and the API had no sign-out at all. A
staff token now names its session (`sid`, kept when it is renewed); signing out records the
session here and its tokens are refused at once. The rows are needed only until the last token
of the session has expired (`expires_at`), and each sign-out deletes those past it.

A changed or reset password, and a deactivated account, end every session of the account: the
account's `session_generation` moves on and tokens of an older generation are refused, but for
the session a user changed their own password in (`kept_session_id`).

Tokens issued before this revision carry no session and are refused: staff sign in once more.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TZ = sa.DateTime(timezone=True)

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("kept_session_id", sa.String(length=32), nullable=True))
    op.create_table(
        "revoked_sessions",
        sa.Column("sid", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("revoked_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_revoked_sessions")),
    )
    op.create_index("ix_revoked_sessions_expires_at", "revoked_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_revoked_sessions_expires_at", table_name="revoked_sessions")
    op.drop_table("revoked_sessions")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("kept_session_id")
        batch.drop_column("session_generation")
