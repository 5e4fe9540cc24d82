"""Documents, their content-addressed blobs, and dossiers frozen at handoff

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TZ = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "document_blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", BIGINT, nullable=False),
        sa.Column("media_type", sa.String(length=120), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_document_blobs")),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dispute_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("original_name", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", BIGINT, nullable=False),
        sa.Column("media_type", sa.String(length=120), nullable=False),
        sa.Column("submitted_by_kind", sa.String(length=10), nullable=False),
        sa.Column("submitted_by_party_id", sa.Uuid(), nullable=True),
        sa.Column("submitted_by", sa.String(length=120), nullable=False),
        sa.Column("submitted_role", sa.String(length=20), nullable=False),
        sa.Column("stage", sa.String(length=24), nullable=False),
        sa.Column("generated", sa.Boolean(), nullable=False),
        sa.Column("contains_personal_data", sa.Boolean(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("withdrawn_reason", sa.Text(), nullable=True),
        sa.Column("withdrawn_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["dispute_id"], ["disputes.id"], name=op.f("fk_documents_dispute_id_disputes")
        ),
        sa.ForeignKeyConstraint(
            ["sha256"], ["document_blobs.sha256"], name=op.f("fk_documents_sha256_document_blobs")
        ),
        sa.ForeignKeyConstraint(
            ["submitted_by_party_id"], ["parties.id"], name=op.f("fk_documents_submitted_by_party_id_parties")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
    )
    op.create_index("ix_documents_dispute_id", "documents", ["dispute_id"])
    op.create_table(
        "dossiers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dispute_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("case_version", sa.Integer(), nullable=False),
        sa.Column("manifest", JSON, nullable=False),
        sa.Column("frozen_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["dispute_id"], ["disputes.id"], name=op.f("fk_dossiers_dispute_id_disputes")
        ),
        sa.ForeignKeyConstraint(["target_id"], ["bodies.id"], name=op.f("fk_dossiers_target_id_bodies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossiers")),
    )
    op.create_index("ix_dossiers_dispute_id", "dossiers", ["dispute_id"])


def downgrade() -> None:
    op.drop_index("ix_dossiers_dispute_id", table_name="dossiers")
    op.drop_table("dossiers")
    op.drop_index("ix_documents_dispute_id", table_name="documents")
    op.drop_table("documents")
    op.drop_table("document_blobs")
