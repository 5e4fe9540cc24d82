"""Mediation sessions, structured agreements (obligations, signatures), follow-ups, and handoffs to
courts and commissions; a party's domicile region and a case's inviting court

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TZ = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agreements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dispute_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("disputed_matters", sa.Text(), nullable=False),
        sa.Column("responsibility", sa.Text(), nullable=False),
        sa.Column("terms", JSON, nullable=False),
        sa.Column("body_id", sa.Uuid(), nullable=False),
        sa.Column("body_name", sa.String(length=200), nullable=False),
        sa.Column("mediator_id", sa.Uuid(), nullable=True),
        sa.Column("mediator_name", sa.String(length=100), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=True),
        sa.Column("effective_at", TZ, nullable=True),
        sa.Column("supersedes_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["body_id"], ["bodies.id"], name=op.f("fk_agreements_body_id_bodies")),
        sa.ForeignKeyConstraint(
            ["dispute_id"], ["disputes.id"], name=op.f("fk_agreements_dispute_id_disputes")
        ),
        sa.ForeignKeyConstraint(
            ["mediator_id"], ["mediators.id"], name=op.f("fk_agreements_mediator_id_mediators")
        ),
        sa.ForeignKeyConstraint(
            ["supersedes_id"], ["agreements.id"], name=op.f("fk_agreements_supersedes_id_agreements")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreements")),
        sa.UniqueConstraint("dispute_id", "number", name=op.f("uq_agreements_dispute_id_number")),
    )
    with op.batch_alter_table("agreements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agreements_dispute_id"), ["dispute_id"], unique=False)

    op.create_table(
        "agreement_signatures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agreement_id", sa.Uuid(), nullable=False),
        sa.Column("signer", sa.String(length=10), nullable=False),
        sa.Column("signer_key", sa.String(length=40), nullable=False),
        sa.Column("party_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=12), nullable=False),
        sa.Column("signed_at", TZ, nullable=False),
        sa.Column("document_hash", sa.String(length=64), nullable=True),
        sa.Column("recorded_by", sa.String(length=120), nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["agreement_id"], ["agreements.id"], name=op.f("fk_agreement_signatures_agreement_id_agreements")
        ),
        sa.ForeignKeyConstraint(
            ["party_id"], ["parties.id"], name=op.f("fk_agreement_signatures_party_id_parties")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreement_signatures")),
        sa.UniqueConstraint(
            "agreement_id", "signer_key", name=op.f("uq_agreement_signatures_agreement_id_signer_key")
        ),
    )
    with op.batch_alter_table("agreement_signatures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agreement_signatures_agreement_id"), ["agreement_id"], unique=False
        )

    op.create_table(
        "handoffs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dispute_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=14), nullable=False),
        sa.Column("agreement_id", sa.Uuid(), nullable=True),
        sa.Column("basis", sa.String(length=30), nullable=True),
        sa.Column("applicant_party_ids", JSON, nullable=False),
        sa.Column("claims", sa.Text(), nullable=True),
        sa.Column("arbitration_agreement", sa.Text(), nullable=True),
        sa.Column("warnings", JSON, nullable=False),
        sa.Column("requested_on", sa.Date(), nullable=False),
        sa.Column("accept_due_on", sa.Date(), nullable=False),
        sa.Column("accepted_on", sa.Date(), nullable=True),
        sa.Column("target_case_number", sa.String(length=100), nullable=True),
        sa.Column("decide_due_on", sa.Date(), nullable=True),
        sa.Column("extended_days", sa.Integer(), nullable=False),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("decision", JSON, nullable=True),
        sa.Column("enforcement_deadline", sa.Date(), nullable=True),
        sa.Column("overdue_flagged", sa.String(length=10), nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agreement_id"], ["agreements.id"], name=op.f("fk_handoffs_agreement_id_agreements")
        ),
        sa.ForeignKeyConstraint(
            ["dispute_id"], ["disputes.id"], name=op.f("fk_handoffs_dispute_id_disputes")
        ),
        sa.ForeignKeyConstraint(["target_id"], ["bodies.id"], name=op.f("fk_handoffs_target_id_bodies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoffs")),
    )
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_handoffs_dispute_id"), ["dispute_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_handoffs_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_handoffs_target_id"), ["target_id"], unique=False)

    op.create_table(
        "mediation_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dispute_id", sa.Uuid(), nullable=False),
        sa.Column("body_id", sa.Uuid(), nullable=False),
        sa.Column("scheduled_at", TZ, nullable=False),
        sa.Column("place", sa.String(length=200), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("held_at", TZ, nullable=True),
        sa.Column("attendees", JSON, nullable=False),
        sa.Column("minutes", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=30), nullable=True),
        sa.Column("party_id", sa.Uuid(), nullable=True),
        sa.Column("mediator_name", sa.String(length=100), nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["body_id"], ["bodies.id"], name=op.f("fk_mediation_sessions_body_id_bodies")
        ),
        sa.ForeignKeyConstraint(
            ["dispute_id"], ["disputes.id"], name=op.f("fk_mediation_sessions_dispute_id_disputes")
        ),
        sa.ForeignKeyConstraint(
            ["party_id"], ["parties.id"], name=op.f("fk_mediation_sessions_party_id_parties")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mediation_sessions")),
    )
    with op.batch_alter_table("mediation_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mediation_sessions_dispute_id"), ["dispute_id"], unique=False)

    op.create_table(
        "obligations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agreement_id", sa.Uuid(), nullable=False),
        sa.Column("dispute_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("obligor_party_id", sa.Uuid(), nullable=False),
        sa.Column("obligee_party_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=True),
        sa.Column("manner", sa.String(length=200), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("overdue_since", sa.Date(), nullable=True),
        sa.Column("performed_on", sa.Date(), nullable=True),
        sa.Column("performance_note", sa.Text(), nullable=True),
        sa.Column("performance_recorded_by", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(
            ["agreement_id"], ["agreements.id"], name=op.f("fk_obligations_agreement_id_agreements")
        ),
        sa.ForeignKeyConstraint(
            ["dispute_id"], ["disputes.id"], name=op.f("fk_obligations_dispute_id_disputes")
        ),
        sa.ForeignKeyConstraint(
            ["obligee_party_id"], ["parties.id"], name=op.f("fk_obligations_obligee_party_id_parties")
        ),
        sa.ForeignKeyConstraint(
            ["obligor_party_id"], ["parties.id"], name=op.f("fk_obligations_obligor_party_id_parties")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_obligations")),
    )
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_obligations_agreement_id"), ["agreement_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_obligations_dispute_id"), ["dispute_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_obligations_due_on"), ["due_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_obligations_status"), ["status"], unique=False)

    op.create_table(
        "follow_ups",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dispute_id", sa.Uuid(), nullable=False),
        sa.Column("body_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("obligation_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("raised_at", TZ, nullable=False),
        sa.Column("done_at", TZ, nullable=True),
        sa.Column("done_by", sa.String(length=120), nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.ForeignKeyConstraint(["body_id"], ["bodies.id"], name=op.f("fk_follow_ups_body_id_bodies")),
        sa.ForeignKeyConstraint(
            ["dispute_id"], ["disputes.id"], name=op.f("fk_follow_ups_dispute_id_disputes")
        ),
        sa.ForeignKeyConstraint(
            ["obligation_id"], ["obligations.id"], name=op.f("fk_follow_ups_obligation_id_obligations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_ups")),
        sa.UniqueConstraint("kind", "obligation_id", name=op.f("uq_follow_ups_kind_obligation_id")),
    )
    with op.batch_alter_table("follow_ups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_follow_ups_body_id"), ["body_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_follow_ups_dispute_id"), ["dispute_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_follow_ups_status"), ["status"], unique=False)

    with op.batch_alter_table("disputes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inviting_court_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_disputes_inviting_court_id_bodies"), "bodies", ["inviting_court_id"], ["id"]
        )

    with op.batch_alter_table("parties", schema=None) as batch_op:
        batch_op.add_column(sa.Column("region_code", sa.String(length=12), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("parties", schema=None) as batch_op:
        batch_op.drop_column("region_code")

    with op.batch_alter_table("disputes", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_disputes_inviting_court_id_bodies"), type_="foreignkey")
        batch_op.drop_column("inviting_court_id")

    with op.batch_alter_table("follow_ups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_follow_ups_status"))
        batch_op.drop_index(batch_op.f("ix_follow_ups_dispute_id"))
        batch_op.drop_index(batch_op.f("ix_follow_ups_body_id"))

    op.drop_table("follow_ups")
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_obligations_status"))
        batch_op.drop_index(batch_op.f("ix_obligations_due_on"))
        batch_op.drop_index(batch_op.f("ix_obligations_dispute_id"))
        batch_op.drop_index(batch_op.f("ix_obligations_agreement_id"))

    op.drop_table("obligations")
    with op.batch_alter_table("mediation_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mediation_sessions_dispute_id"))

    op.drop_table("mediation_sessions")
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handoffs_target_id"))
        batch_op.drop_index(batch_op.f("ix_handoffs_status"))
        batch_op.drop_index(batch_op.f("ix_handoffs_dispute_id"))

    op.drop_table("handoffs")
    with op.batch_alter_table("agreement_signatures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agreement_signatures_agreement_id"))

    op.drop_table("agreement_signatures")
    with op.batch_alter_table("agreements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agreements_dispute_id"))

    op.drop_table("agreements")
