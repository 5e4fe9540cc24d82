"""Keyed seals of the audit chain's head

The hash chain shows an edit made without rehashing what follows it; someone with full rights over
the database can rehash. A seal is an HMAC of the head's number and hash under a key the database
does not hold (audit/seal.py), made by the scheduler every few minutes: a chain rewritten up to a
sealed record no longer matches its seal, and a new seal cannot be made without the key.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_seals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_seals")),
    )
    op.create_index(op.f("ix_audit_seals_seq"), "audit_seals", ["seq"])


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_seals_seq"), table_name="audit_seals")
    op.drop_table("audit_seals")
