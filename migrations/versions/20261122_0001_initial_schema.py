"""Initial schema: bodies, disputes, parties, timeline, outbox, idempotency

Revision ID: 0001
Revises:
Create Date: 2026-11-22 01:25:56.742930
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Column types as the database sees them (the ORM adds UTC handling on top).
TZ = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The timeline is append-only: the database itself refuses to change or delete an entry.
APPEND_ONLY_SQLITE = [
    """CREATE TRIGGER timeline_entries_no_update BEFORE UPDATE ON timeline_entries
       BEGIN SELECT RAISE(ABORT, 'timeline_entries is append-only'); END""",
    """CREATE TRIGGER timeline_entries_no_delete BEFORE DELETE ON timeline_entries
       BEGIN SELECT RAISE(ABORT, 'timeline_entries is append-only'); END""",
]
APPEND_ONLY_POSTGRESQL = [
    """CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$""",
    """CREATE TRIGGER timeline_entries_append_only BEFORE UPDATE OR DELETE ON timeline_entries
       FOR EACH ROW EXECUTE FUNCTION refuse_change()""",
]


def _append_only() -> None:
    for statement in (
        APPEND_ONLY_POSTGRESQL if op.get_bind().dialect.name == "postgresql" else APPEND_ONLY_SQLITE
    ):
        op.execute(statement)


def upgrade() -> None:
    op.create_table(
        "bodies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("tier", sa.String(length=10), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bodies")),
    )
    op.create_index("ix_bodies_kind", "bodies", ["kind"])
    op.create_index("ix_bodies_region_code", "bodies", ["region_code"])

    op.create_table(
        "case_number_counters",
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("region", "year", name=op.f("pk_case_number_counters")),
    )
    op.create_table(
        "idempotency_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("scope", sa.String(length=160), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_headers", JSON, nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("locked_until", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint("scope", "key", name=op.f("uq_idempotency_records_scope_key")),
    )
    op.create_index("ix_idempotency_records_expires_at", "idempotency_records", ["expires_at"])

    op.create_table(
        "disputes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_number", sa.String(length=32), nullable=False),
        sa.Column("query_code_hash", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("subject_matters", JSON, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("external_reference", sa.String(length=64), nullable=True),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("amount_in_dispute", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("people_involved", sa.Integer(), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("is_group", sa.Boolean(), nullable=False),
        sa.Column("is_risk", sa.Boolean(), nullable=False),
        sa.Column("tier", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body_id", sa.Uuid(), nullable=True),
        sa.Column("handoff_target_id", sa.Uuid(), nullable=True),
        sa.Column("mediator_name", sa.String(length=100), nullable=True),
        sa.Column("applied_on", sa.Date(), nullable=False),
        sa.Column("mediation_started_on", sa.Date(), nullable=True),
        sa.Column("agreement", JSON, nullable=True),
        sa.Column("agreement_effective_on", sa.Date(), nullable=True),
        sa.Column("handoff", JSON, nullable=True),
        sa.Column("outcome", JSON, nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("closed_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(["body_id"], ["bodies.id"], name=op.f("fk_disputes_body_id_bodies")),
        sa.ForeignKeyConstraint(
            ["handoff_target_id"], ["bodies.id"], name=op.f("fk_disputes_handoff_target_id_bodies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disputes")),
        sa.UniqueConstraint("case_number", name=op.f("uq_disputes_case_number")),
        sa.UniqueConstraint(
            "channel", "external_reference", name=op.f("uq_disputes_channel_external_reference")
        ),
    )
    op.create_index("ix_disputes_body_id", "disputes", ["body_id"])
    op.create_index("ix_disputes_category", "disputes", ["category"])
    op.create_index("ix_disputes_channel", "disputes", ["channel"])
    op.create_index("ix_disputes_created_at_id", "disputes", ["created_at", "id"])
    op.create_index("ix_disputes_handoff_target_id", "disputes", ["handoff_target_id"])
    op.create_index("ix_disputes_region_code", "disputes", ["region_code"])
    op.create_index("ix_disputes_status_created_at", "disputes", ["status", "created_at"])

    op.create_table(
        "outbox_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=80), nullable=False),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("dispute_id", sa.Uuid(), nullable=True),
        sa.Column("data", JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("published_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["dispute_id"], ["disputes.id"], name=op.f("fk_outbox_events_dispute_id_disputes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
    )
    op.create_index("ix_outbox_events_dispute_id", "outbox_events", ["dispute_id"])
    op.create_index("ix_outbox_events_type", "outbox_events", ["type"])

    op.create_table(
        "parties",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dispute_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("id_type", sa.String(length=40), nullable=True),
        sa.Column("id_number", sa.String(length=40), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("consent", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(["dispute_id"], ["disputes.id"], name=op.f("fk_parties_dispute_id_disputes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parties")),
    )
    op.create_index("ix_parties_dispute_id", "parties", ["dispute_id"])

    op.create_table(
        "timeline_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dispute_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("from_status", sa.String(length=24), nullable=True),
        sa.Column("to_status", sa.String(length=24), nullable=True),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.String(length=120), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["dispute_id"], ["disputes.id"], name=op.f("fk_timeline_entries_dispute_id_disputes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timeline_entries")),
        sa.UniqueConstraint("dispute_id", "seq", name=op.f("uq_timeline_entries_dispute_id_seq")),
    )
    _append_only()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER timeline_entries_append_only ON timeline_entries")
        op.execute("DROP FUNCTION refuse_change()")
    op.drop_table("timeline_entries")
    op.drop_index("ix_parties_dispute_id", table_name="parties")

    op.drop_table("parties")
    op.drop_index("ix_outbox_events_type", table_name="outbox_events")
    op.drop_index("ix_outbox_events_dispute_id", table_name="outbox_events")

    op.drop_table("outbox_events")
    op.drop_index("ix_disputes_status_created_at", table_name="disputes")
    op.drop_index("ix_disputes_region_code", table_name="disputes")
    op.drop_index("ix_disputes_handoff_target_id", table_name="disputes")
    op.drop_index("ix_disputes_created_at_id", table_name="disputes")
    op.drop_index("ix_disputes_channel", table_name="disputes")
    op.drop_index("ix_disputes_category", table_name="disputes")
    op.drop_index("ix_disputes_body_id", table_name="disputes")

    op.drop_table("disputes")
    op.drop_index("ix_idempotency_records_expires_at", table_name="idempotency_records")

    op.drop_table("idempotency_records")
    op.drop_table("case_number_counters")
    op.drop_index("ix_bodies_region_code", table_name="bodies")
    op.drop_index("ix_bodies_kind", table_name="bodies")

    op.drop_table("bodies")
