"""An API key knows the chain of rotations it belongs to, so a retry across a rotation replays its
first answer.

A rotation leaves the old key working beside its successor so that a client can switch over at
any moment; a request sent with the old key and retried with the new one is still one request.
Idempotency-Keys were kept per key, so such a retry ran a second time. They are now kept per
chain: `api_keys.lineage_id`, the first key of the chain (a key's own id when it replaces none).

Existing keys get the first key of their chain. The stored answers of successors are moved to
their chain, except where the chain holds an answer under the same Idempotency-Key already
(two requests that ran both: the first key's is the one a retry finds).

A stored answer also keeps a fingerprint of its request's method and path alone
(`idempotency_records.target_fingerprint`), so that a key reused on another path is refused as
such, not as a different body. Answers stored before have none.

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-07 15:00:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0039"
down_revision: str | None = "0038"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

api_keys = sa.table(
    "api_keys",
    sa.column("id", sa.Uuid()),
    sa.column("replaces_id", sa.Uuid()),
    sa.column("lineage_id", sa.Uuid()),
)
records = sa.table(
    "idempotency_records",
    sa.column("id", sa.Uuid()),
    sa.column("scope", sa.String()),
    sa.column("key", sa.String()),
)


def _lineages(conn: sa.Connection) -> dict[uuid.UUID, uuid.UUID]:
    replaces: dict[uuid.UUID, uuid.UUID | None] = dict(
        conn.execute(sa.select(api_keys.c.id, api_keys.c.replaces_id)).all()
    )

    def first(key_id: uuid.UUID) -> uuid.UUID:
        seen = {key_id}
        while (earlier := replaces.get(key_id)) is not None and earlier not in seen:
            seen.add(earlier)
            key_id = earlier
        return key_id

    return {key_id: first(key_id) for key_id in replaces}


def upgrade() -> None:
    with op.batch_alter_table("idempotency_records") as batch:
        batch.add_column(sa.Column("target_fingerprint", sa.String(64), nullable=True))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("lineage_id", sa.Uuid(), nullable=True))
    conn = op.get_bind()
    lineages = _lineages(conn)
    for key_id, lineage in lineages.items():
        conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(lineage_id=lineage))
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("lineage_id", existing_type=sa.Uuid(), nullable=False)

    taken = {(scope, key) for scope, key in conn.execute(sa.select(records.c.scope, records.c.key))}
    for key_id, lineage in lineages.items():
        if key_id == lineage:
            continue
        old, new = f"api_key:{key_id}", f"api_key:{lineage}"
        stored = conn.execute(sa.select(records.c.id, records.c.key).where(records.c.scope == old))
        for record_id, key in stored.all():
            if (new, key) in taken:
                continue
            conn.execute(records.update().where(records.c.id == record_id).values(scope=new))
            taken.add((new, key))


def downgrade() -> None:
    # The answers moved to a chain stay with its first key: which key of the chain ran a request is
    # not kept, and after the downgrade a retry with the successor runs again, as it did before.
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("lineage_id")
    with op.batch_alter_table("idempotency_records") as batch:
        batch.drop_column("target_fingerprint")
