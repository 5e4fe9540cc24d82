"""Identity, encrypted personal data, hash-chained audit trail

- users and api_keys;
- parties' ID and phone numbers become AES-GCM ciphertext + masked copy + keyed hash index
  (existing rows are encrypted with the configured keys, then the plain columns are dropped);
- audit_records (append-only: no UPDATE; DELETE only of records past the legal minimum of 180
  days, 网络安全法 Art. 21) and the single-row audit_chain_head.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:00:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TZ = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUDIT_GUARD_SQLITE = [
    """CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
       BEGIN SELECT RAISE(ABORT, 'audit_records is append-only'); END""",
    """CREATE TRIGGER audit_records_retention BEFORE DELETE ON audit_records
       WHEN OLD.occurred_at > datetime('now', '-180 days')
       BEGIN SELECT RAISE(ABORT, 'audit records are kept at least 180 days'); END""",
]
AUDIT_GUARD_POSTGRESQL = [
    """CREATE FUNCTION audit_records_guard() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'UPDATE' THEN
           RAISE EXCEPTION 'audit_records is append-only';
         END IF;
         IF OLD.occurred_at > now() - interval '180 days' THEN
           RAISE EXCEPTION 'audit records are kept at least 180 days';
         END IF;
         RETURN OLD;
       END $$""",
    """CREATE TRIGGER audit_records_guard BEFORE UPDATE OR DELETE ON audit_records
       FOR EACH ROW EXECUTE FUNCTION audit_records_guard()""",
]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("password_changed_at", TZ, nullable=False),
        sa.Column("last_login_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["bodies.id"], name=op.f("fk_users_organisation_id_bodies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_index("ix_users_organisation_id", "users", ["organisation_id"])

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("replaces_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=True),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["bodies.id"], name=op.f("fk_api_keys_organisation_id_bodies")
        ),
        sa.ForeignKeyConstraint(
            ["replaces_id"], ["api_keys.id"], name=op.f("fk_api_keys_replaces_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_index("ix_api_keys_organisation_id", "api_keys", ["organisation_id"])

    with op.batch_alter_table("parties") as batch:
        batch.add_column(sa.Column("id_number_enc", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("id_number_masked", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("id_number_index", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("phone_enc", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("phone_masked", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("phone_index", sa.String(length=64), nullable=True))
    _encrypt_existing_parties()
    with op.batch_alter_table("parties") as batch:
        batch.drop_column("id_number")
        batch.drop_column("phone")
        batch.create_index("ix_parties_id_number_index", ["id_number_index"])
        batch.create_index("ix_parties_phone_index", ["phone_index"])

    op.create_table(
        "audit_records",
        sa.Column("seq", BIGINT, autoincrement=False, nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.String(length=120), nullable=False),
        sa.Column("organisation_id", sa.String(length=36), nullable=True),
        sa.Column("action", sa.String(length=80), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=True),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_records")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_records_hash")),
    )
    op.create_index("ix_audit_records_occurred_at", "audit_records", ["occurred_at"])
    op.create_index("ix_audit_records_object_id", "audit_records", ["object_id"])
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", BIGINT, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    op.execute("INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, '" + "0" * 64 + "')")
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in AUDIT_GUARD_POSTGRESQL if postgres else AUDIT_GUARD_SQLITE:
        op.execute(statement)


def _encrypt_existing_parties() -> None:
    """Encrypt numbers registered before this revision with the service's configured keys."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, id_number, phone FROM parties WHERE id_number IS NOT NULL OR phone IS NOT NULL")
    ).all()
    if not rows:
        return
    from mediation.core.pii import PiiCipher, mask_id_number, mask_phone
    from mediation.core.secrets import resolve_secrets
    from mediation.core.settings import get_settings

    secrets = resolve_secrets(get_settings())
    cipher = PiiCipher.from_secrets(secrets.pii_encryption_keys, secrets.pii_index_key)
    update = sa.text(
        "UPDATE parties SET id_number_enc = :ie, id_number_masked = :im, id_number_index = :ii,"
        " phone_enc = :pe, phone_masked = :pm, phone_index = :pi WHERE id = :id"
    )
    for party_id, id_number, phone in rows:
        # The ORM writes UUIDs as 32 hex digits on SQLite; the row id in the associated data is
        # always the canonical hyphenated form.
        row_id = str(uuid.UUID(str(party_id)))
        values = {"id": party_id, "ie": None, "im": None, "ii": None, "pe": None, "pm": None, "pi": None}
        if id_number:
            values["ie"] = cipher.encrypt(id_number, table="parties", column="id_number", row_id=row_id)
            values["im"] = mask_id_number(id_number)
            values["ii"] = cipher.index(id_number, kind="id_number")
        if phone:
            values["pe"] = cipher.encrypt(phone, table="parties", column="phone", row_id=row_id)
            values["pm"] = mask_phone(phone)
            values["pi"] = cipher.index(phone, kind="phone")
        bind.execute(update, values)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_records_guard ON audit_records")
        op.execute("DROP FUNCTION audit_records_guard()")
    op.drop_table("audit_chain_head")
    op.drop_index("ix_audit_records_object_id", table_name="audit_records")
    op.drop_index("ix_audit_records_occurred_at", table_name="audit_records")
    op.drop_table("audit_records")
    # Plain numbers are not restored: decrypting them back into the database is a decision for an
    # operator with the keys, not a side effect of a downgrade.
    with op.batch_alter_table("parties") as batch:
        batch.drop_index("ix_parties_phone_index")
        batch.drop_index("ix_parties_id_number_index")
        batch.add_column(sa.Column("id_number", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("phone", sa.String(length=20), nullable=True))
        batch.drop_column("phone_index")
        batch.drop_column("phone_masked")
        batch.drop_column("phone_enc")
        batch.drop_column("id_number_index")
        batch.drop_column("id_number_masked")
        batch.drop_column("id_number_enc")
    op.drop_index("ix_api_keys_organisation_id", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index("ix_users_organisation_id", table_name="users")
    op.drop_table("users")
