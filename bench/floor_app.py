"""The floor: what intake and a lifecycle action would cost with nothing but their SQL.

A minimal FastAPI app that runs, with asyncpg and no ORM, the statements the product runs for
`POST /v1/disputes` and `POST /v1/disputes/{id}/actions/accept`, in the same order and in one
transaction each: the same inserts, the same early-warning and related-case queries (and, once a
wave of cases reaches its threshold, the same writes to join its alert), the same clock rows, the
case-number counter, the journal head, the audit record and the events, written with their
positions. No authentication, no validation, no encryption, no rendering of the receipt, no
state machine. The product's throughput over this one's is the price of everything the product
adds; `bench/run.py` reports that ratio.

The product's statements were read off its SQL log (SQLAlchemy's `before_cursor_execute`); the
sign-in lookup (the account with its organisation, one query in the request's transaction) is left
out with the rest of authentication.

Run: MEDIATION_BENCH_DSN=postgresql://... uvicorn floor_app:app --app-dir bench --workers N
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

POOL_SIZE = int(os.environ.get("MEDIATION_BENCH_FLOOR_POOL", "10"))
SOURCE = "/mediation/disputes"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(
        os.environ["MEDIATION_BENCH_DSN"], min_size=POOL_SIZE, max_size=POOL_SIZE
    )
    yield
    await app.state.pool.close()


app = FastAPI(lifespan=lifespan, openapi_url=None)


def _hash(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


# An event: its type's last part, subject (the case number), case and data.
Event = tuple[str, str, uuid.UUID, dict[str, object]]
# A wave's cases: the statement and its arguments.
Wave = tuple[Any, ...]


async def _journal(
    conn: asyncpg.Connection, events: list[Event], audit: dict[str, object], now: datetime
) -> None:
    """What every write does last: take the journal head (and, in the same statement, the version of
    the webhook subscribers, which the service reads the list by only when it moved), write the
    events with their positions, chain the audit record."""
    head = await conn.fetchrow(
        "SELECT id, seq, hash, last_position, (SELECT token FROM webhook_subscribers_version WHERE id = 1) "
        "FROM audit_chain_head WHERE id = 1 FOR UPDATE OF audit_chain_head"
    )
    position = head["last_position"]
    seq = head["seq"] + 1
    digest = _hash(head["hash"], seq, json.dumps(audit, sort_keys=True))
    await conn.execute(
        "UPDATE audit_chain_head SET seq = $1, hash = $2, last_position = $3 WHERE id = 1",
        seq,
        digest,
        position + len(events),
    )
    await conn.executemany(
        "INSERT INTO outbox_events (id, type, source, subject, dispute_id, body_id, target_id, data, "
        "created_at, published_at, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $9, $10)",
        [
            (
                uuid.uuid4(),
                "cn.mediation.dispute." + kind,
                SOURCE,
                subject,
                case,
                None,  # a registration's or an acceptance's case has no body or court yet
                None,
                json.dumps(data),
                now,
                position + k,
            )
            for k, (kind, subject, case, data) in enumerate(events, start=1)
        ],
    )
    await conn.execute(
        "INSERT INTO audit_records (seq, occurred_at, actor_kind, actor_role, actor_id, organisation_id, action, "
        "object_type, object_id, outcome, status_code, request_id, client_address, details, prev_hash, hash) "
        "VALUES ($1, $2, 'user', 'clerk', 'floor', NULL, $3, 'dispute', $4, 'success', $5, $6, '127.0.0.1', "
        "$7::jsonb, $8, $9)",
        seq,
        now,
        audit["action"],
        audit["object_id"],
        audit["status"],
        uuid.uuid4().hex,
        "{}",
        head["hash"],
        digest,
    )


def _until_now(wave: Wave) -> Wave:
    """A wave's statement read under the counter: its window runs on to the present (and a minute
    past it), as the service reads it there. Its fourth part is the window's end."""
    return (*wave[:3], datetime.now(UTC) + timedelta(minutes=1), *wave[4:])


async def _join_alert(
    conn: asyncpg.Connection,
    key: str,
    alert: asyncpg.Record | None,
    raising: tuple[Wave, list[uuid.UUID]] | None,
    dispute_id: uuid.UUID,
    number: str,
    version: int,
    now: datetime,
    *,
    current: bool = False,
) -> Event | None:
    """A wave's alert joined, or raised by the case whose wave reached its threshold (`raising`:
    the wave's statement, and its cases as the case read them): the alert (`alert`, locked by the
    caller with the case's other waves), the cases it does not list yet added, and the joining
    case's timeline entry and event under its version (the case's row takes the version when its
    number is written). A wave raised is read again, under the
    county's counter. A case that only joins finds no alert open: nothing."""
    if alert is None and raising is None:
        return None
    ids = [dispute_id]
    may_know = alert is not None  # a new alert lists nothing; a joining new case is in none
    if alert is None and raising is not None:
        # Read again under the counter, unless it was read there (`current`).
        ids = raising[1] if current else [r["id"] for r in await conn.fetch(*_until_now(raising[0]))]
        alert = await conn.fetchrow(
            "INSERT INTO alerts (id, kind, key, open_key, level, region_code, title, details, status, case_count, "
            "raised_at, last_seen_at, version) VALUES ($1, 'cluster', $2, $2, 'high', $3, 'floor', '{}'::jsonb, "
            "'open', 0, $4, $4, 1) ON CONFLICT (open_key) DO NOTHING RETURNING *",
            uuid.uuid4(),
            key,
            number[:6],
            now,
        )
        if alert is None:  # raised by another intake since the lock: joined as the service does
            alert = await conn.fetchrow("SELECT * FROM alerts WHERE open_key = $1 FOR UPDATE", key)
            may_know = True
    elif raising is not None:  # raised meanwhile by another intake: joined with the cases read
        ids = raising[1]
    assert alert is not None
    known: set[uuid.UUID] = set()
    if may_know and ids != [dispute_id]:
        known = {
            r["dispute_id"]
            for r in await conn.fetch(
                "SELECT dispute_id FROM alert_cases WHERE alert_id = $1 AND dispute_id = ANY($2::uuid[])",
                alert["id"],
                ids,
            )
        }
    new = [i for i in ids if i not in known]
    await conn.executemany(
        "INSERT INTO alert_cases (id, alert_id, dispute_id, matched, added_at) VALUES ($1, $2, $3, '{}'::jsonb, $4)",
        [(uuid.uuid4(), alert["id"], case, now) for case in new],
    )
    await conn.execute(
        "INSERT INTO timeline_entries (id, dispute_id, seq, action, from_status, to_status, actor_role, actor_id, "
        "payload, occurred_at) VALUES ($1, $2, $3, 'alert_raised', 'registered', 'registered', 'system', 'system', "
        "$4::jsonb, $5)",
        uuid.uuid4(),
        dispute_id,
        version,
        json.dumps({"alert_id": str(alert["id"])}),
        now,
    )
    await conn.execute(
        "UPDATE alerts SET case_count = $1, last_seen_at = $2, version = version + 1, details = $3::jsonb "
        "WHERE id = $4",
        alert["case_count"] + len(new),
        now,
        json.dumps({"rule": key.split(":")[1]}),
        alert["id"],
    )
    return ("alert_raised", number, dispute_id, {"alert_id": str(alert["id"]), "version": version})


# The service's claimant count (alerts.service), as its SQL log shows it on PostgreSQL.
_IDENTITY = (
    "CASE WHEN p.id_number_index IS NOT NULL AND p.id_number_index != '' THEN 'id:' || p.id_number_index "
    "WHEN p.kind = 'organisation' AND p.name_key IS NOT NULL AND p.name_key != '' THEN 'name:' || p.name_key "
    "WHEN p.phone_index IS NOT NULL AND p.phone_index != '' THEN 'phone:' || p.phone_index ELSE NULL END"
)
CLAIMANTS = (
    "SELECT count(*) FROM (SELECT DISTINCT coalesce((SELECT "
    + _IDENTITY
    + " FROM parties p WHERE p.dispute_id = d.id AND p.role = 'applicant' AND "
    + _IDENTITY
    + " IS NOT NULL ORDER BY p.position LIMIT 1), CAST(d.id AS VARCHAR)) AS claimant FROM disputes d "
    "WHERE d.id = ANY($1::uuid[]) LIMIT $2) AS claimants"
)


async def _clocks(conn: asyncpg.Connection, dispute_id: uuid.UUID) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT * FROM case_clocks WHERE dispute_id = $1 AND stopped_at IS NULL ORDER BY started_at, name",
            dispute_id,
        )
    )


@app.post("/v1/disputes", status_code=201)
async def intake(request: Request) -> JSONResponse:
    data = json.loads(await request.body())
    now = datetime.now(UTC)
    dispute_id = uuid.uuid4()
    region, category = data["region_code"], data["category"]
    parties = data["parties"]
    indexes = [_hash("id", p["id_number"]) for p in parties]
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn, conn.transaction():
        await conn.fetchrow("SELECT * FROM triage_rule_sets ORDER BY version DESC LIMIT 1")
        provisional = "~" + dispute_id.hex[:31]
        await conn.execute(
            "INSERT INTO disputes (id, case_number, query_code_hash, category, subject_matters, description, channel, "
            "region_code, amount_in_dispute, people_involved, severity, is_group, is_risk, tier, status, version, "
            "complexity, applied_on, created_by, created_at, updated_at, ever_overdue, clock, clock_level, "
            "clock_due_at) VALUES ($1, $2, $2, $3, '[]'::jsonb, $4, $5, $6, $7, $8, 'ordinary', false, false, "
            "'village', 'registered', 1, 'general', $9, 'floor', $10, $10, false, $11::jsonb, 'normal', $12)",
            dispute_id,
            provisional,
            category,
            data["description"],
            data["channel"],
            region,
            float(data.get("amount_in_dispute") or 0),
            data["people_involved"],
            now.date(),
            now,
            # The row is written with its clock summary, as the service writes it.
            json.dumps({"name": "acceptance", "due_at": (now + timedelta(days=1)).isoformat()}),
            now + timedelta(days=1),
        )
        await conn.executemany(
            "INSERT INTO parties (id, dispute_id, position, role, kind, name, id_type, id_number_enc, "
            "id_number_masked, id_number_index, phone_enc, phone_masked, phone_index, address, region_code, consent, "
            "name_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'pending', $16)",
            [
                (
                    uuid.uuid4(),
                    dispute_id,
                    i,
                    p["role"],
                    p["kind"],
                    p["name"],
                    p["id_type"],
                    p["id_number"],
                    p["id_number"][:4] + "*" * 10,
                    indexes[i],
                    p["phone"],
                    p["phone"][:3] + "****",
                    _hash("phone", p["phone"]),
                    p.get("address"),
                    region,
                    _hash("name", p["name"]),
                )
                for i, p in enumerate(parties)
            ],
        )
        # Early warning: the same respondent in the county this week; the same category in the town.
        # A wave with its alert open is joined without reading it; otherwise its cases are read and
        # their distinct claimants counted, as the service does.
        respondent = next((i for i, p in enumerate(parties) if p["role"] == "respondent"), 0)
        respondent_key = f"cluster:respondent:{region[:6]}:id:{indexes[respondent]}"
        category_key = f"cluster:category:{region[:6]}:category:{region[:9]}:{category}"
        # Cases a resolved alert of the same wave already covered do not count again.
        handled = (
            "NOT EXISTS (SELECT * FROM alert_cases ac JOIN alerts a ON a.id = ac.alert_id "
            "WHERE ac.dispute_id = d.id AND a.key = ${n} AND a.status = 'resolved')"
        )
        by_respondent: Wave = (
            "SELECT d.id FROM disputes d WHERE d.region_code LIKE $1 || '%' AND d.created_at >= $2 AND "
            "d.created_at <= $3 AND EXISTS (SELECT * FROM parties p WHERE p.dispute_id = d.id AND p.role = "
            "'respondent' AND p.id_number_index = $4) AND " + handled.format(n=5),
            region[:6],
            now - timedelta(days=7),
            now,
            indexes[respondent],
            respondent_key,
        )
        by_category: Wave = (
            "SELECT d.id FROM disputes d WHERE d.region_code LIKE $1 || '%' AND d.created_at >= $2 AND "
            "d.created_at <= $3 AND substr(d.region_code, 1, 9) = $4 AND d.category = $5 AND "
            + handled.format(n=6),
            region[:6],
            now - timedelta(days=3),
            now,
            region[:9],
            category,
            category_key,
        )
        # Each wave: its key, the case's reading if it raises it, and else what the case saw of it
        # (the cases, the threshold) when the wave was read, to read it again under the counter.
        joins: list[tuple[str, tuple[Wave, list[uuid.UUID]] | None, tuple[Wave, int, int] | None]] = []
        waves = ((by_respondent, respondent_key, 5), (by_category, category_key, 15))
        # Which waves have an open alert, and where the county's counter stands, in one statement.
        looked = await conn.fetch(
            "SELECT open_key, NULL::bigint AS counted FROM alerts WHERE open_key = ANY($1::varchar[]) UNION ALL "
            "SELECT NULL, last_value FROM case_number_counters WHERE region = $2 AND year = $3",
            [key for _, key, _ in waves],
            region[:6],
            now.year,
        )
        open_keys = {r["open_key"] for r in looked if r["open_key"] is not None}
        counted = next((r["counted"] for r in looked if r["counted"] is not None), 0)
        for wave, key, least in waves:
            if key in open_keys:
                joins.append((key, None, None))
                continue
            ids = [r["id"] for r in await conn.fetch(*wave)]
            # Distinct claimants, counted in the database up to the threshold: each case stands
            # for its first recognisable applicant (a wave shorter than the threshold never asks).
            if len(ids) >= least and await conn.fetchval(CLAIMANTS, ids, least) >= least:
                joins.append((key, (wave, ids), None))
            else:  # joins the alert if another intake raised it by the time the counter is ours
                joins.append((key, None, (wave, len(ids), least)))
        await conn.fetch(
            "SELECT d.id FROM disputes d WHERE d.id != $1 AND d.created_at >= $2 AND d.status IN ('closed', 'archived') "
            "AND EXISTS (SELECT * FROM parties p1 WHERE p1.dispute_id = d.id AND p1.id_number_index = $3) "
            "AND EXISTS (SELECT * FROM parties p2 WHERE p2.dispute_id = d.id AND p2.id_number_index = $4)",
            dispute_id,
            now - timedelta(days=365),
            indexes[0],
            indexes[-1],
        )
        # The cases that share a party with this one, answered with it (the clerk sees them at once).
        related = await conn.fetch(
            "SELECT d.* FROM disputes d WHERE d.region_code LIKE $1 || '%' AND d.id != $2 AND EXISTS (SELECT * FROM "
            "parties p1, parties p2 WHERE p1.dispute_id = d.id AND p2.dispute_id = $2 AND (p1.id_number_index IS NOT "
            "NULL AND p1.id_number_index = p2.id_number_index OR p1.phone_index IS NOT NULL AND p1.phone_index = "
            "p2.phone_index OR p1.name_key IS NOT NULL AND p1.name_key = p2.name_key AND p1.role = 'respondent' AND "
            "p2.role = 'respondent' AND (p1.id_number_index IS NULL OR p2.id_number_index IS NULL))) "
            "ORDER BY d.created_at DESC, d.id DESC LIMIT 20",
            region[:6],
            dispute_id,
        )
        if related:  # which of them are linked to it: only asked when there are any, as the service does
            await conn.fetch(
                "SELECT first_id, second_id FROM case_links WHERE first_id = $1 OR second_id = $1", dispute_id
            )
        await conn.execute(
            "INSERT INTO case_clocks (id, dispute_id, name, rule_id, source, unit, length, pausable, started_at, "
            "due_on, due_at, warn_at, provisional, extended_by, level, history) VALUES ($1, $2, 'acceptance', "
            "'acceptance', 'floor', 'working_days', 1, false, $3, $4, $5, $6, false, 0, 'normal', '[]'::jsonb)",
            uuid.uuid4(),
            dispute_id,
            now,
            (now + timedelta(days=1)).date(),
            now + timedelta(days=1),
            now + timedelta(hours=18),
        )
        await conn.execute(
            "INSERT INTO timeline_entries (id, dispute_id, seq, action, from_status, to_status, actor_role, actor_id, "
            "payload, occurred_at) VALUES ($1, $2, 1, 'register', NULL, 'registered', 'clerk', 'floor', '{}'::jsonb, $3)",
            uuid.uuid4(),
            dispute_id,
            now,
        )
        value = await conn.fetchval(
            "UPDATE case_number_counters SET last_value = last_value + 1 WHERE region = $1 AND year = $2 "
            "RETURNING last_value",
            region[:6],
            now.year,
        )
        if value is None:
            value = await conn.fetchval(
                "INSERT INTO case_number_counters (region, year, last_value) VALUES ($1, $2, 1) ON CONFLICT "
                "(region, year) DO UPDATE SET last_value = case_number_counters.last_value + 1 RETURNING last_value",
                region[:6],
                now.year,
            )
        number = f"{region[:6]}-{now.year}-{value:06d}"
        events: list[Event] = [
            (
                "registered",
                number,
                dispute_id,
                {
                    "dispute_id": str(dispute_id),
                    "case_number": number,
                    "action": "register",
                    "to": "registered",
                },
            )
        ]
        # The waves joined after the number and before the receipt, as the service does.
        version = 1
        locked = {
            r["open_key"]: r
            for r in await conn.fetch(
                "SELECT * FROM alerts WHERE open_key = ANY($1::varchar[]) ORDER BY open_key FOR UPDATE",
                sorted(key for key, _, _ in joins),
            )
        }
        for key, raising, short in joins:
            alert = locked.get(key)
            current = False
            since = value - 1 - counted
            if alert is None and short is not None and since > 0 and short[1] + since >= short[2]:
                # Intakes numbered since this one looked may have brought the wave to its threshold.
                ids = [r["id"] for r in await conn.fetch(*_until_now(short[0]))]
                if len(ids) >= short[2] and await conn.fetchval(CLAIMANTS, ids, short[2]) >= short[2]:
                    raising, current = (short[0], ids), True
            joined = await _join_alert(
                conn, key, alert, raising, dispute_id, number, version + 1, now, current=current
            )
            if joined is not None:
                version += 1
                events.append(joined)
        receipt = _hash("receipt", number)
        await conn.execute(
            "INSERT INTO document_blobs (sha256, size, media_type, created_at) VALUES ($1, 444, 'text/html', $2) "
            "ON CONFLICT (sha256) DO NOTHING",
            receipt,
            now,
        )
        # The number, and the version of each alert joined, in one write of the row (the service's
        # unit of work writes them together).
        await conn.execute(
            "UPDATE disputes SET case_number = $1, query_code_hash = $2, version = $3, updated_at = $4 "
            "WHERE id = $5 AND version = 1",
            number,
            _hash("query", number),
            version,
            now,
            dispute_id,
        )
        await conn.execute(
            "INSERT INTO documents (id, dispute_id, kind, original_name, sha256, size, media_type, submitted_by_kind, "
            "submitted_by, submitted_role, stage, generated, contains_personal_data, late, status, created_at) VALUES "
            "($1, $2, 'receipt', $3, $4, 444, 'text/html', 'center', 'floor', 'clerk', 'registered', true, true, "
            "false, 'active', $5)",
            uuid.uuid4(),
            dispute_id,
            f"受理回执-{number}.html",
            receipt,
            now,
        )
        await _journal(
            conn, events, {"action": "register_dispute", "object_id": str(dispute_id), "status": 201}, now
        )
    return JSONResponse(
        {"id": str(dispute_id), "case_number": number, "status": "registered", "related_cases": len(related)},
        status_code=201,
        headers={"ETag": '"1"', "Location": f"/v1/disputes/{dispute_id}"},
    )


@app.post("/v1/disputes/{dispute_id}/actions/accept")
async def accept(dispute_id: uuid.UUID, request: Request) -> JSONResponse:
    expected = int(request.headers.get("if-match", '"1"').strip('"'))
    now = datetime.now(UTC)
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT * FROM disputes WHERE id = $1 AND region_code LIKE $2 || '%' FOR UPDATE OF disputes",
            dispute_id,
            "330681",
        )
        if row is None or row["version"] != expected or row["status"] != "registered":
            return JSONResponse({"status": 412}, status_code=412)
        await conn.fetch(
            "SELECT * FROM parties WHERE dispute_id = ANY($1::uuid[]) ORDER BY position", [dispute_id]
        )
        version = row["version"] + 1
        for clock in await _clocks(conn, dispute_id):
            await conn.execute(
                "UPDATE case_clocks SET stopped_at = $1, outcome = 'met', history = history || $2::jsonb WHERE id = $3",
                now,
                json.dumps([{"at": now.isoformat(), "what": "stopped", "outcome": "met"}]),
                clock["id"],
            )
        due = now + timedelta(days=3)
        await conn.execute(
            "INSERT INTO case_clocks (id, dispute_id, name, rule_id, source, unit, length, pausable, started_at, "
            "due_on, due_at, warn_at, provisional, extended_by, level, history) VALUES ($1, $2, 'assignment', "
            "'assignment', 'floor', 'working_days', 3, false, $3, $4, $5, $6, false, 0, 'normal', '[]'::jsonb)",
            uuid.uuid4(),
            dispute_id,
            now,
            due.date(),
            due,
            now + timedelta(days=2),
        )
        await conn.execute(
            "UPDATE disputes SET status = 'accepted', version = $1, clock = $2::jsonb, clock_due_at = $3, "
            "updated_at = $4, accepted_at = $4 WHERE id = $5 AND version = $6",
            version,
            json.dumps({"name": "assignment", "due_at": due.isoformat()}),
            due,
            now,
            dispute_id,
            row["version"],
        )
        await conn.execute(
            "INSERT INTO timeline_entries (id, dispute_id, seq, action, from_status, to_status, actor_role, actor_id, "
            "payload, occurred_at) VALUES ($1, $2, $3, 'accept', 'registered', 'accepted', 'clerk', 'floor', "
            "'{\"note\": null}'::jsonb, $4)",
            uuid.uuid4(),
            dispute_id,
            version,
            now,
        )
        accepted: Event = (
            "accepted",
            row["case_number"],
            dispute_id,
            {"dispute_id": str(dispute_id), "action": "accept", "from": "registered", "to": "accepted"},
        )
        await _journal(
            conn,
            [accepted],
            {"action": "dispute_action_accept", "object_id": str(dispute_id), "status": 200},
            now,
        )
    return JSONResponse(
        {"id": str(dispute_id), "status": "accepted", "version": version}, headers={"ETag": f'"{version}"'}
    )
