"""Realistic data at any size, fast: the demo's cases cloned inside PostgreSQL.

`mediation seed-demo` makes a few dozen cases the way a center would: through the services, with
their parties (personal data encrypted and indexed), timelines, events, assignments, clocks,
agreements and hand-offs. Cloning those rows with `INSERT ... SELECT ... generate_series` gives a
million cases in minutes with exactly the shapes the product writes, which a generator written
by hand would drift from. Each copy gets new ids, its own case number, its own party index values
(so no two copies look like the same person to the early-warning rules) and a place further back
in time, so a million cases spread over about a year as a province's would.

Cloned per case: the case, its parties, timeline, events and assignments; plus, for the pools the
lifecycle benchmark accepts, the case's running clocks. Not cloned: agreements, documents,
hand-offs and sessions (only the demo's own cases have them). The audit chain is not touched, so
`mediation audit verify` still holds after seeding.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import asyncpg
from sqlalchemy import Date, DateTime

import mediation.app  # noqa: F401  (imports every model so the metadata is complete)
from mediation.core.db import Base
from mediation.core.pii import PiiCipher

# How far back each copy moves: copy g of template t starts g * STEP + t * SPREAD earlier.
STEP = timedelta(minutes=17)
SPREAD = timedelta(seconds=23)
POOL_FIRST_COPY = 500_000  # pools' copy numbers start here, far above any `grow` reaches
CLONED = ("disputes", "parties", "timeline_entries", "outbox_events", "assignments")


def _new_id(column: str) -> str:
    # Deterministic, so a child row finds its cloned parent without a lookup table.
    return f"md5({column}::text || ':' || g.n)::uuid"


def _shifted(table: str, overrides: dict[str, str], shift: str) -> list[tuple[str, str]]:
    """Every column of the table with its expression: overrides first, then times moved back."""
    columns = []
    for column in Base.metadata.tables[table].columns:
        name = column.name
        if name in overrides:
            expression = overrides[name]
        elif isinstance(column.type, DateTime):
            expression = f"t.{name} - {shift}"
        elif isinstance(column.type, Date):
            expression = f"(t.{name} - ({shift}))::date"
        else:
            expression = f"t.{name}"
        columns.append((name, expression))
    return columns


def _insert(table: str, columns: list[tuple[str, str]], source: str) -> str:
    names = ", ".join(f'"{name}"' for name, _ in columns)
    expressions = ",\n       ".join(expression for _, expression in columns)
    return f"INSERT INTO {table} ({names})\nSELECT {expressions}\n{source}"


async def templates(conn: asyncpg.Connection) -> list[uuid.UUID]:
    """The cases to copy: the demo's, remembered at the first call so that cases the benchmark
    registers later are never copied."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS bench_templates AS "
        "SELECT id, status FROM disputes WHERE case_number NOT LIKE '%-B%'"
    )
    rows = await conn.fetch(
        "SELECT t.id FROM bench_templates t JOIN disputes d USING (id) ORDER BY d.created_at, t.id"
    )
    return [row["id"] for row in rows]


async def clone(
    conn: asyncpg.Connection,
    template_ids: list[uuid.UUID],
    first: int,
    last: int,
    *,
    cipher: PiiCipher,
    shift_back: bool = True,
    with_clocks: bool = False,
) -> None:
    """Copies first..last (inclusive) of every template, in one transaction per table."""
    shift = (
        f"(g.n * interval '{int(STEP.total_seconds())} seconds' + "
        f"tt.ordinal * interval '{int(SPREAD.total_seconds())} seconds')"
        if shift_back
        else "interval '0 seconds'"
    )
    series = f"generate_series({first}, {last}) AS g(n)"
    templates_cte = (
        "WITH tt AS (SELECT id, ordinal FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, ordinal))\n"
    )
    dispute_source = f"FROM disputes t JOIN tt ON tt.id = t.id CROSS JOIN {series}"
    new_dispute = "md5(t.dispute_id::text || ':' || g.n)::uuid"
    number = (
        f"left(t.case_number, 6) || '-' || extract(year FROM t.created_at - {shift})::int || '-B' || "
        "lpad((g.n * 1000 + tt.ordinal)::text, 9, '0')"
    )
    disputes = _shifted(
        "disputes",
        {
            "id": _new_id("t.id"),
            "case_number": number,
            "query_code_hash": "encode(sha256(convert_to(t.query_code_hash || g.n, 'UTF8')), 'hex')",
            "external_reference": "NULL",
        },
        shift,
    )
    await conn.execute(templates_cte + _insert("disputes", disputes, dispute_source), template_ids)

    child_source = (
        "FROM {table} t JOIN tt ON tt.id = t.dispute_id CROSS JOIN " + series + " "
        "JOIN disputes d ON d.id = " + new_dispute
    )
    await _clone_parties(conn, cipher, template_ids, first, last)
    timeline = _shifted("timeline_entries", {"id": _new_id("t.id"), "dispute_id": new_dispute}, shift)
    await conn.execute(
        templates_cte + _insert("timeline_entries", timeline, child_source.format(table="timeline_entries")),
        template_ids,
    )
    assignments = _shifted("assignments", {"id": _new_id("t.id"), "dispute_id": new_dispute}, shift)
    await conn.execute(
        templates_cte + _insert("assignments", assignments, child_source.format(table="assignments")),
        template_ids,
    )
    if with_clocks:
        clocks = _shifted("case_clocks", {"id": _new_id("t.id"), "dispute_id": new_dispute}, shift)
        await conn.execute(
            templates_cte
            + _insert(
                "case_clocks",
                clocks,
                child_source.format(table="case_clocks") + " WHERE t.stopped_at IS NULL",
            ),
            template_ids,
        )
    # Events: already sequenced, in the order of their (moved) times, after every existing one.
    base = await conn.fetchval("SELECT coalesce(max(position), 0) FROM outbox_events")
    events = _shifted(
        "outbox_events",
        {
            "id": _new_id("t.id"),
            "dispute_id": new_dispute,
            "subject": "d.case_number",
            "data": "t.data || jsonb_build_object('dispute_id', d.id::text, 'case_number', d.case_number)",
            "published_at": f"t.created_at - {shift}",
            "position": f"{base} + row_number() OVER (ORDER BY t.created_at - {shift}, t.id, g.n)",
        },
        shift,
    )
    await conn.execute(
        templates_cte + _insert("outbox_events", events, child_source.format(table="outbox_events")),
        template_ids,
    )
    # The journal head hands out positions after the last one it knows: it must know these.
    await conn.execute(
        "UPDATE audit_chain_head SET last_position = (SELECT coalesce(max(position), 0) FROM outbox_events)"
    )


def _copy_id(template: uuid.UUID, copy: int) -> uuid.UUID:
    """The same id as `_new_id` computes in SQL: md5 of "<template id>:<copy>"."""
    return uuid.UUID(hashlib.md5(f"{template}:{copy}".encode()).hexdigest())


def _other(value: str | None, copy: int) -> str | None:
    return None if value is None else hashlib.sha256(f"{value}{copy}".encode()).hexdigest()


async def _clone_parties(
    conn: asyncpg.Connection, cipher: PiiCipher, template_ids: list[uuid.UUID], first: int, last: int
) -> None:
    """Parties are copied in Python: their ID and phone numbers are encrypted bound to the row's id
    (so a ciphertext moved to another row fails its integrity check), and a copy is another person,
    with lookup index values of its own."""
    rows = await conn.fetch("SELECT * FROM parties WHERE dispute_id = ANY($1::uuid[])", template_ids)
    plain = []
    for row in rows:
        values = dict(row)
        for column in ("id_number", "phone"):
            token = values[f"{column}_enc"]
            values[column] = (
                cipher.decrypt(token, table="parties", column=column, row_id=str(row["id"]))
                if token
                else None
            )
        plain.append(values)
    columns = [c.name for c in Base.metadata.tables["parties"].columns]
    records = []
    for copy in range(first, last + 1):
        for values in plain:
            new_id = _copy_id(values["id"], copy)
            record = {
                **values,
                "id": new_id,
                "dispute_id": _copy_id(values["dispute_id"], copy),
                "id_number_index": _other(values["id_number_index"], copy),
                "phone_index": _other(values["phone_index"], copy),
            }
            for column in ("id_number", "phone"):
                if values[column] is not None:
                    record[f"{column}_enc"] = cipher.encrypt(
                        values[column], table="parties", column=column, row_id=str(new_id)
                    )
            records.append(tuple(record[c] for c in columns))
    await conn.copy_records_to_table("parties", records=records, columns=columns)


async def grow(dsn: str, cipher: PiiCipher, target: int, *, batch_copies: int = 2_000) -> int:
    """Clones the demo's cases until there are `target` cases; answers the count reached."""
    conn = await asyncpg.connect(dsn)
    try:
        template_ids = await templates(conn)
        cases = await conn.fetchval("SELECT count(*) FROM disputes")
        done = await conn.fetchval(
            "SELECT coalesce(max(split_part(case_number, '-B', 2)::bigint / 1000), 0) FROM disputes "
            "WHERE case_number LIKE '%-B%' AND split_part(case_number, '-B', 2)::bigint < $1",
            POOL_FIRST_COPY * 1000,
        )
        while cases < target:
            copies = min(batch_copies, max(1, (target - cases) // len(template_ids)))
            async with conn.transaction():
                await clone(conn, template_ids, done + 1, done + copies, cipher=cipher)
            done += copies
            cases += copies * len(template_ids)
        # The reads are measured on a database at rest, as a live one is between bursts: vacuumed
        # (visibility map set, so index-only scans need not visit the heap), analysed, and with the
        # load's dirty pages written out. Otherwise autovacuum works through the millions of rows
        # just inserted while the reads are timed, and they share two cores with it.
        await conn.execute("VACUUM (ANALYZE)")
        await conn.execute("CHECKPOINT")
        return int(cases)
    finally:
        await conn.close()


async def pool(
    dsn: str, cipher: PiiCipher, status: str, size: int, first_copy: int
) -> list[tuple[uuid.UUID, int]]:
    """`size` fresh copies of the demo's cases in `status`, with their running clocks: cases a
    lifecycle action can act on once each, as (id, version). Copies are numbered from `first_copy` (kept apart from
    `grow`'s) and stay at the template's time."""
    conn = await asyncpg.connect(dsn)
    try:
        await templates(conn)
        template_ids = [
            row["id"]
            for row in await conn.fetch(
                "SELECT id FROM bench_templates WHERE status = $1 ORDER BY id", status
            )
        ]
        if not template_ids:
            raise RuntimeError(f"the demo data has no case in {status}")
        copies = -(-size // len(template_ids))
        async with conn.transaction():
            await clone(
                conn,
                template_ids,
                first_copy,
                first_copy + copies - 1,
                cipher=cipher,
                shift_back=False,
                with_clocks=True,
            )
        rows = await conn.fetch(
            "SELECT d.id, d.version FROM unnest($1::uuid[]) AS t(id) CROSS JOIN generate_series($2::int, $3::int) "
            "AS g(n) JOIN disputes d ON d.id = md5(t.id::text || ':' || g.n)::uuid",
            template_ids,
            first_copy,
            first_copy + copies - 1,
        )
        await conn.execute("ANALYZE disputes")
        return [(row["id"], row["version"]) for row in rows][:size]
    finally:
        await conn.close()
