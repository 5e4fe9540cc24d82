"""Body registry (jurisdiction, categories, capacity, mediators, conflicts), triage rules,
assignments and case links

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 18:00:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TZ = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _prefix(code: str) -> str:
    """region_prefix of the application, frozen here as the migration's own copy."""
    full = code.ljust(12, "0")
    for cut in (2, 4, 6, 9):
        if full[cut:] == "0" * (12 - cut):
            return full[:cut]
    return full


def upgrade() -> None:
    with op.batch_alter_table("bodies") as batch:
        batch.add_column(sa.Column("suspended_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("categories", JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("capacity", sa.Integer(), nullable=False, server_default="30"))
        batch.add_column(sa.Column("address", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("contact_phone", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("updated_at", TZ, nullable=True))

    op.create_table(
        "body_jurisdictions",
        sa.Column("body_id", sa.Uuid(), nullable=False),
        sa.Column("region_prefix", sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(
            ["body_id"], ["bodies.id"], name=op.f("fk_body_jurisdictions_body_id_bodies")
        ),
        sa.PrimaryKeyConstraint("body_id", "region_prefix", name=op.f("pk_body_jurisdictions")),
    )
    op.create_index("ix_body_jurisdictions_region_prefix", "body_jurisdictions", ["region_prefix"])
    # Every existing body covers its own region, as before.
    bind = op.get_bind()
    jurisdictions = sa.table(
        "body_jurisdictions", sa.column("body_id", sa.Uuid()), sa.column("region_prefix", sa.String())
    )
    rows = bind.execute(sa.text("SELECT id, region_code FROM bodies")).all()
    if rows:
        op.bulk_insert(
            jurisdictions,
            [{"body_id": _uuid(body_id), "region_prefix": _prefix(code)} for body_id, code in rows],
        )

    op.create_table(
        "mediators",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("body_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=60), nullable=True),
        sa.Column("specialties", JSON, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(["body_id"], ["bodies.id"], name=op.f("fk_mediators_body_id_bodies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mediators")),
    )
    op.create_index("ix_mediators_body_id", "mediators", ["body_id"])

    op.create_table(
        "mediator_conflicts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("mediator_id", sa.Uuid(), nullable=False),
        sa.Column("dispute_id", sa.Uuid(), nullable=True),
        sa.Column("person_name", sa.String(length=100), nullable=True),
        sa.Column("id_number_index", sa.String(length=64), nullable=True),
        sa.Column("id_number_masked", sa.String(length=40), nullable=True),
        sa.Column("relation", sa.String(length=200), nullable=False),
        sa.Column("declared_by", sa.String(length=120), nullable=False),
        sa.Column("declared_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["mediator_id"], ["mediators.id"], name=op.f("fk_mediator_conflicts_mediator_id_mediators")
        ),
        sa.ForeignKeyConstraint(
            ["dispute_id"], ["disputes.id"], name=op.f("fk_mediator_conflicts_dispute_id_disputes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mediator_conflicts")),
    )
    op.create_index("ix_mediator_conflicts_mediator_id", "mediator_conflicts", ["mediator_id"])
    op.create_index("ix_mediator_conflicts_id_number_index", "mediator_conflicts", ["id_number_index"])

    with op.batch_alter_table("disputes") as batch:
        batch.add_column(sa.Column("mediator_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("sign_for_due_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("attention", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("escalated_tier", sa.String(length=10), nullable=True))
        batch.create_foreign_key(
            op.f("fk_disputes_mediator_id_mediators"), "mediators", ["mediator_id"], ["id"]
        )
        batch.create_index("ix_disputes_attention", ["attention"])
    with op.batch_alter_table("parties") as batch:
        batch.add_column(sa.Column("name_key", sa.String(length=200), nullable=True))
        batch.create_index("ix_parties_name_key", ["name_key"])

    op.create_table(
        "assignments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dispute_id", sa.Uuid(), nullable=False),
        sa.Column("body_id", sa.Uuid(), nullable=False),
        sa.Column("assigned_at", TZ, nullable=False),
        sa.Column("assigned_by", sa.String(length=120), nullable=False),
        sa.Column("sign_by", sa.Date(), nullable=False),
        sa.Column("signed_for_at", TZ, nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("recommendation", JSON, nullable=False),
        sa.Column("ended_at", TZ, nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("outcome_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dispute_id"], ["disputes.id"], name=op.f("fk_assignments_dispute_id_disputes")
        ),
        sa.ForeignKeyConstraint(["body_id"], ["bodies.id"], name=op.f("fk_assignments_body_id_bodies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
    )
    op.create_index("ix_assignments_dispute_id", "assignments", ["dispute_id"])
    op.create_index("ix_assignments_body_id", "assignments", ["body_id"])

    op.create_table(
        "case_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("first_id", sa.Uuid(), nullable=False),
        sa.Column("second_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["first_id"], ["disputes.id"], name=op.f("fk_case_links_first_id_disputes")),
        sa.ForeignKeyConstraint(
            ["second_id"], ["disputes.id"], name=op.f("fk_case_links_second_id_disputes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_links")),
        sa.UniqueConstraint("first_id", "second_id", name=op.f("uq_case_links_first_id")),
    )
    op.create_index("ix_case_links_first_id", "case_links", ["first_id"])
    op.create_index("ix_case_links_second_id", "case_links", ["second_id"])

    op.create_table(
        "triage_rule_sets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rules", JSON, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triage_rule_sets")),
        sa.UniqueConstraint("version", name=op.f("uq_triage_rule_sets_version")),
    )


def _uuid(value: object) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def downgrade() -> None:
    op.drop_table("triage_rule_sets")
    op.drop_index("ix_case_links_second_id", table_name="case_links")
    op.drop_index("ix_case_links_first_id", table_name="case_links")
    op.drop_table("case_links")
    op.drop_index("ix_assignments_body_id", table_name="assignments")
    op.drop_index("ix_assignments_dispute_id", table_name="assignments")
    op.drop_table("assignments")
    with op.batch_alter_table("parties") as batch:
        batch.drop_index("ix_parties_name_key")
        batch.drop_column("name_key")
    with op.batch_alter_table("disputes") as batch:
        batch.drop_index("ix_disputes_attention")
        batch.drop_constraint(op.f("fk_disputes_mediator_id_mediators"), type_="foreignkey")
        batch.drop_column("escalated_tier")
        batch.drop_column("attention")
        batch.drop_column("sign_for_due_on")
        batch.drop_column("mediator_id")
    op.drop_index("ix_mediator_conflicts_id_number_index", table_name="mediator_conflicts")
    op.drop_index("ix_mediator_conflicts_mediator_id", table_name="mediator_conflicts")
    op.drop_table("mediator_conflicts")
    op.drop_index("ix_mediators_body_id", table_name="mediators")
    op.drop_table("mediators")
    op.drop_index("ix_body_jurisdictions_region_prefix", table_name="body_jurisdictions")
    op.drop_table("body_jurisdictions")
    with op.batch_alter_table("bodies") as batch:
        for name in (
            "updated_at",
            "version",
            "description",
            "contact_phone",
            "address",
            "capacity",
            "categories",
            "suspended_reason",
        ):
            batch.drop_column(name)
