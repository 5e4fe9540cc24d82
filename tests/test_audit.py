"""The audit trail: hash-chained and append-only, complete under concurrency, free of personal data.

Tampering is done the way a DBA with full rights would do it, past the append-only triggers: on
PostgreSQL with `session_replication_role = replica` for one transaction, on SQLite by dropping the
triggers and recreating them (from their stored SQL) in the same transaction.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from mediation.audit.chain import AuditEntry, append, purge, record_hash, verify
from mediation.audit.models import GENESIS_HASH, AuditChainHead, AuditRecord
from mediation.core.db import utcnow
from mediation.core.principal import SYSTEM, Principal, Role
from tests.conftest import TEST_SECRETS
from tests.support import intake_body, person, resident_id

CHAIN_LENGTH = 1000
# What a verification adds when no seal was made yet (audit/seal.py).


class _WithinTheHour:
    """Equal to an ISO 8601 time within the hour before now: the oldest unsealed record's time,
    which is the host's clock when the test wrote it."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str):
            return False
        at = datetime.fromisoformat(other.replace("Z", "+00:00"))
        return timedelta(0) <= datetime.now(UTC) - at < timedelta(hours=1)

    def __repr__(self) -> str:
        return "<a time within the hour>"


# The chain walked alone (chain.verify): no seals looked at.
UNSEALED = {"seals_checked": 0, "sealed_through": None, "last_sealed_at": None, "unsealed_since": None}
# Verified with its seals (the command, the API): nothing sealed yet (the tests run no scheduler),
# and records younger than sealing is due.
NOT_SEALED_YET = {**UNSEALED, "unsealed_since": _WithinTheHour()}
# Personal numbers that must never reach the trail: mainland resident IDs and mobile numbers.
ID_NUMBER = re.compile(r"\d{17}[\dXx]")
MOBILE = re.compile(r"1[3-9]\d{9}")
UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


# ---- helpers ------------------------------------------------------------------------------------


async def cli(app: Any, *args: str, **env: str) -> tuple[int, str, str]:
    """Run the real `mediation` command against the test's database, in a process of its own."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MEDIATION_")}
    environment.update(
        MEDIATION_DATABASE_URL=app.state.settings.database_url,
        MEDIATION_JWT_SECRET=TEST_SECRETS["jwt_secret"],
        MEDIATION_PII_ENCRYPTION_KEYS=TEST_SECRETS["pii_encryption_keys"],
        MEDIATION_PII_INDEX_KEY=TEST_SECRETS["pii_index_key"],
        **env,
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mediation.cli",
        *args,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def cli_verify(app: Any, **env: str) -> tuple[int, dict[str, Any], str]:
    """`mediation audit verify`: exit status, its JSON report and its one-line summary."""
    code, out, err = await cli(app, "audit", "verify", **env)
    lines = out.strip().splitlines()
    assert len(lines) == 2, (out, err)
    return code, json.loads(lines[0]), lines[1]


async def tamper(app: Any, *statements: str) -> None:
    """Raw SQL in one transaction, with the append-only triggers out of the way for its duration."""
    db = app.state.db
    async with db.write_engine.begin() as conn:
        if db.is_sqlite:
            query = (
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_records'"
            )
            triggers = (await conn.execute(text(query))).all()
            assert {name for name, _ in triggers} == {"audit_records_no_update", "audit_records_retention"}
            for name, _ in triggers:
                await conn.execute(text(f"DROP TRIGGER {name}"))
        else:
            # Superuser only, and for this transaction only (the pooled connection goes back clean).
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in statements:
            await conn.execute(text(statement))
        if db.is_sqlite:
            for _, sql in triggers:
                await conn.execute(text(sql))


async def records(app: Any) -> list[AuditRecord]:
    async with app.state.db.reader() as session:
        return list((await session.scalars(select(AuditRecord).order_by(AuditRecord.seq))).all())


async def record_count(app: Any) -> int:
    async with app.state.db.reader() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditRecord)) or 0)


async def verified(app: Any) -> dict[str, Any]:
    async with app.state.db.reader() as session:
        return (await verify(session)).as_dict()


def entry(seq_hint: int) -> AuditEntry:
    """A realistic record of a case action; every hundredth one a refused attempt."""
    refused = seq_hint % 100 == 0
    principal = Principal(
        Role.auditor if refused else Role.clerk, str(uuid.uuid4()), organisation_id=uuid.uuid4()
    )
    dispute_id = str(uuid.uuid4())
    return AuditEntry.by(
        principal,
        "dispute_action_accept",
        "denied" if refused else "success",
        object_type="dispute",
        object_id=dispute_id,
        status_code=403 if refused else 200,
        request_id=uuid.uuid4().hex,
        client_address="10.20.30.40",
        details={"method": "POST", "path": f"/v1/disputes/{dispute_id}/actions/accept"},
    )


async def fill_chain(app: Any, total: int, at: datetime | None = None, batch: int = 250) -> None:
    """Append records in batches (one transaction each) until the chain holds `total`."""
    db = app.state.db
    count = await record_count(app)
    while count < total:
        size = min(batch, total - count)
        async with db.writer() as session, session.begin():
            await append(session, [entry(count + i + 1) for i in range(size)], at or utcnow())
        count += size


async def audited_chain(api: Any, total: int = CHAIN_LENGTH) -> dict[str, Any]:
    """A chain of `total` records: a few real requests through the API, then direct appends."""
    dispute = await api.drive("assigned")  # intake, accept, assign: each with its pii.read
    await api.get(dispute)  # an unmasked read
    refused = await api.act(dispute, "sign_for", role="auditor")
    assert refused.status_code == 403
    assert await record_count(api.app) == 8
    await fill_chain(api.app, total)
    assert await record_count(api.app) == total
    return dispute


# ---- 1. tamper evidence -------------------------------------------------------------------------


async def test_the_schedulers_changes_are_on_record_as_the_systems(api):
    # A case left unsigned past its sign-for deadline is returned by the scheduler, and its clock
    # reported overdue: each change is an audit record by the system, naming the case, in the
    # same unbroken chain as the users' records.
    from mediation.clocks.scheduler import tick

    dispute = await api.drive("assigned")
    api.app.state.clock.at += timedelta(days=10)
    app = api.app
    report = await tick(app.state.db, app.state.clock, app.state.settings, app.state.identity.cipher)
    assert report.lapsed == 1
    async with app.state.db.reader() as session:
        rows = (
            await session.scalars(
                select(AuditRecord).where(AuditRecord.actor_id == "system").order_by(AuditRecord.seq)
            )
        ).all()
    actions = [(r.action, r.object_type, r.object_id, r.actor_role) for r in rows]
    assert ("scheduler.returned", "dispute", dispute["id"], "system") in actions, actions
    assert all(r.outcome == "success" and r.details["job"] for r in rows)
    timeline = [e for e in await api.timeline(dispute) if e["actor_role"] == "system"]
    assert len(rows) == len(timeline)
    async with app.state.db.reader() as session:
        assert (await verify(session)).ok


async def test_cli_reports_a_chain_of_a_thousand_audited_actions_intact(api):
    await audited_chain(api)
    actions = [r.action for r in (await records(api.app))[:8]]
    assert actions == [
        "register_dispute",
        "pii.read",
        "dispute_action_accept",
        "pii.read",
        "dispute_action_assign",
        "pii.read",
        "pii.read",
        "dispute_action_sign_for",
    ]
    code, report, line = await cli_verify(api.app)
    assert code == 0, (report, line)
    assert report == {
        "ok": True,
        "checked": CHAIN_LENGTH,
        "first_seq": 1,
        "last_seq": CHAIN_LENGTH,
        "broken_seq": None,
        "problem": None,
        **NOT_SEALED_YET,
    }
    assert line == f"audit chain intact: {CHAIN_LENGTH} records, 0 seals; not sealed yet"


TAMPERING = {
    # Turning a refused attempt (record 500 is one) into a success.
    "edit": (
        ["UPDATE audit_records SET outcome = 'success', status_code = 200 WHERE seq = 500"],
        500,
        "content does not match its hash",
    ),
    "edit_details": (
        ['UPDATE audit_records SET details = \'{"method": "GET"}\' WHERE seq = 500'],
        500,
        "content does not match its hash",
    ),
    "delete": (["DELETE FROM audit_records WHERE seq = 500"], 500, "record 500 is missing"),
    # Everything but the position changes places (the hash stays unique at every step).
    "swap": (
        [
            "UPDATE audit_records SET seq = -1 WHERE seq = 300",
            "UPDATE audit_records SET seq = 300 WHERE seq = 700",
            "UPDATE audit_records SET seq = 700 WHERE seq = -1",
        ],
        300,
        "link to the previous record is broken",
    ),
    # Cutting off the end leaves every remaining link intact: only the chain head gives it away.
    "truncate_tail": (
        [f"DELETE FROM audit_records WHERE seq > {CHAIN_LENGTH - 5}"],
        CHAIN_LENGTH - 4,
        f"records after {CHAIN_LENGTH - 5} are missing",
    ),
    "delete_first": (["DELETE FROM audit_records WHERE seq = 1"], 1, "record 1 is missing"),
}


@pytest.mark.parametrize("how", list(TAMPERING))
async def test_tampering_is_detected_at_the_exact_record(api, how):
    statements, broken_seq, problem = TAMPERING[how]
    await audited_chain(api)
    assert (await verified(api.app))["ok"] is True
    before = await record_count(api.app)

    await tamper(api.app, *statements)

    removed = {"delete": 1, "delete_first": 1, "truncate_tail": 5}.get(how, 0)
    assert await record_count(api.app) == before - removed
    code, report, line = await cli_verify(api.app)
    assert code == 1, (report, line)
    assert report["ok"] is False
    assert report["broken_seq"] == broken_seq
    assert report["problem"] == problem
    assert line == f"audit chain broken at record {broken_seq}: {problem}"
    # Everything before the break checked out.
    assert report["checked"] == (broken_seq - 1 if how != "truncate_tail" else CHAIN_LENGTH - 5)
    # The auditors' endpoint tells the same story.
    response = await api.client.get("/v1/audit-records/verification", headers=api.headers("auditor"))
    assert response.status_code == 200
    assert response.json() == report


async def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(api):
    """Rehashing an edited record does not help: its successor still names the old hash."""
    await audited_chain(api)
    async with api.app.state.db.reader() as session:
        record = await session.get(AuditRecord, 500)
        assert record is not None and record.outcome == "denied"
        session.expunge(record)
    record.outcome, record.status_code = "success", 200
    forged = record_hash(record)
    await tamper(
        api.app,
        f"UPDATE audit_records SET outcome = 'success', status_code = 200, hash = '{forged}' WHERE seq = 500",
    )
    code, report, _ = await cli_verify(api.app)
    assert code == 1
    assert (report["broken_seq"], report["problem"]) == (501, "link to the previous record is broken")


async def test_a_record_committed_during_verification_is_not_taken_for_tampering(api, monkeypatch):
    """Verification runs against a live service. On PostgreSQL each statement of a transaction
    sees the latest commits: another request commits a record before every one of verify's
    queries here, and the walk must neither report a cut-off tail nor chase the tail for ever."""
    await fill_chain(api.app, 300)
    appended = 0

    async def append_one() -> None:
        nonlocal appended
        async with api.app.state.db.writer() as writer, writer.begin():
            await append(writer, [entry(1)], utcnow())
        appended += 1

    async with api.app.state.db.reader() as session:
        for name in ("execute", "scalar", "scalars", "get"):
            original = getattr(session, name)

            async def interleaved(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                await append_one()
                return await _original(*args, **kwargs)

            monkeypatch.setattr(session, name, interleaved)
        result = await asyncio.wait_for(verify(session, batch_size=100), timeout=30)
    assert appended >= 3
    assert result.ok, result
    assert result.first_seq == 1
    assert 300 <= result.last_seq < 300 + appended  # what came after the start is left for next time
    assert result.checked == result.last_seq
    assert await verified(api.app) == {
        "ok": True,
        "checked": 300 + appended,
        "first_seq": 1,
        "last_seq": 300 + appended,
        "broken_seq": None,
        "problem": None,
        **UNSEALED,
    }


async def test_verification_while_writers_keep_appending_never_reports_a_break(api):
    await fill_chain(api.app, 200)
    db, stop = api.app.state.db, asyncio.Event()

    async def writer() -> int:
        written = 0
        while not stop.is_set():
            async with db.writer() as session, session.begin():
                await append(session, [entry(written + 1)], utcnow())
            written += 1
            await asyncio.sleep(0)
        return written

    writers = [asyncio.create_task(writer()) for _ in range(4)]
    try:
        results = [await verified(api.app) for _ in range(40)]
    finally:
        stop.set()
        written = sum(await asyncio.gather(*writers))
    assert written > 0
    assert [r for r in results if not r["ok"]] == []
    assert results[-1]["last_seq"] > results[0]["last_seq"] >= 200  # the chain grew while being checked
    assert (await verified(api.app))["checked"] == 200 + written


# ---- 1b. the chain head -------------------------------------------------------------------------


async def test_a_head_wound_back_behind_existing_records_is_detected(api):
    await fill_chain(api.app, 100)
    async with api.app.state.db.reader() as session:
        record = await session.get(AuditRecord, 90)
        assert record is not None
    await tamper(api.app, f"UPDATE audit_chain_head SET seq = 90, hash = '{record.hash}'")
    code, report, line = await cli_verify(api.app)
    assert code == 1, line
    assert (report["broken_seq"], report["problem"]) == (91, "records after 90 are beyond the chain head")


# ---- 2. append-only for the application ---------------------------------------------------------


async def test_the_application_cannot_update_or_delete_recent_audit_records(api):
    await api.intake()
    before = await records(api.app)
    assert len(before) == 2
    snapshot = [(r.seq, r.outcome, r.actor_id, r.details, r.hash) for r in before]
    attempts = [
        ("UPDATE audit_records SET outcome = 'denied' WHERE seq = 1", "append-only"),
        ("UPDATE audit_records SET details = '{}'", "append-only"),
        ("DELETE FROM audit_records WHERE seq = 1", "at least six months"),
        ("DELETE FROM audit_records", "at least six months"),
    ]
    async with api.app.state.db.writer() as session:
        for statement, message in attempts:
            with pytest.raises(DBAPIError, match=message):
                await session.execute(text(statement))
            await session.rollback()
        # Through the ORM, too.
        record = await session.get(AuditRecord, 2)
        assert record is not None
        record.outcome = "denied"
        with pytest.raises(DBAPIError, match="append-only"):
            await session.flush()
        await session.rollback()
    after = await records(api.app)
    assert [(r.seq, r.outcome, r.actor_id, r.details, r.hash) for r in after] == snapshot
    assert (await verified(api.app))["ok"] is True


async def test_the_retention_guard_lets_only_old_records_go_and_never_edits(api):
    db = api.app.state.db
    async with db.writer() as session, session.begin():
        await append(session, [entry(1)], utcnow() - timedelta(days=185))
        # Past 180 days but not six months of every count (184 days: July to December).
        await append(session, [entry(2)], utcnow() - timedelta(days=182))
    async with db.writer() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text("UPDATE audit_records SET outcome = 'error' WHERE seq = 1"))
        await session.rollback()
        with pytest.raises(DBAPIError, match="at least six months"):
            await session.execute(text("DELETE FROM audit_records WHERE seq = 2"))
        await session.rollback()
        deleted = await session.execute(text("DELETE FROM audit_records WHERE seq = 1"))
        assert deleted.rowcount == 1  # past the legal minimum, the database allows it
        await session.rollback()
    assert [r.seq for r in await records(api.app)] == [1, 2]


# ---- 3. concurrency -----------------------------------------------------------------------------


async def test_concurrent_actions_make_one_contiguous_chain(api):
    clerk, auditor = api.headers(), api.headers("auditor")
    requests = [(f"intake-{i:03d}", clerk if i % 10 else auditor) for i in range(100)]
    responses = await asyncio.gather(
        *(
            api.client.post("/v1/disputes", json=intake_body(), headers={**who, "X-Request-ID": rid})
            for rid, who in requests
        )
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 90, 403: 10}, [r.text for r in responses if r.status_code >= 500]
    created = {r.json()["id"] for r in responses if r.status_code == 201}

    chain = await records(api.app)
    # Each intake is audited with the unmasked read of its answer; each refusal on its own.
    assert len(chain) == 90 * 2 + 10
    assert [r.seq for r in chain] == list(range(1, len(chain) + 1))
    assert chain[0].prev_hash == GENESIS_HASH
    for previous, record in itertools.pairwise(chain):
        assert record.prev_hash == previous.hash, record.seq
    assert len({r.prev_hash for r in chain}) == len(chain)  # no record has two successors
    async with api.app.state.db.reader() as session:
        head = await session.get(AuditChainHead, 1)
    assert head is not None and (head.seq, head.hash) == (chain[-1].seq, chain[-1].hash)

    by_request: dict[str, list[AuditRecord]] = {}
    for record in chain:
        by_request.setdefault(str(record.request_id), []).append(record)
    assert set(by_request) == {rid for rid, _ in requests}
    for rid, who in requests:
        kinds = sorted((r.action, r.outcome) for r in by_request[rid])
        if who is auditor:
            assert kinds == [("register_dispute", "denied")]
        else:
            assert kinds == [("pii.read", "success"), ("register_dispute", "success")]
    assert {r.object_id for r in chain if r.outcome == "success"} == created
    assert await verified(api.app) == {
        "ok": True,
        "checked": len(chain),
        "first_seq": 1,
        "last_seq": len(chain),
        "broken_seq": None,
        "problem": None,
        **UNSEALED,
    }


async def test_reads_and_refusals_at_once_are_each_on_record_in_one_unbroken_chain(api):
    """Records of disclosures and refusals are committed in groups (one journal lock for all who
    wait at that moment); each request still answers only after its own record is written."""
    dispute = await api.intake()
    before = await record_count(api.app)
    clerk = api.headers()
    reads = [
        api.client.get(f"/v1/disputes/{dispute['id']}", headers={**clerk, "X-Request-ID": f"read-{i:02d}"})
        for i in range(40)
    ]
    refusals = [
        api.client.get(
            f"/v1/disputes/{dispute['id']}",
            headers={"Authorization": "Bearer not-a-token", "X-Request-ID": f"anon-{i:02d}"},
        )
        for i in range(10)
    ]
    responses = await asyncio.gather(*reads, *refusals)
    assert Counter(r.status_code for r in responses) == {200: 40, 401: 10}
    chain = await records(api.app)
    assert len(chain) == before + 50
    added = chain[before:]
    assert sorted(r.request_id for r in added if r.action == "pii.read") == [
        f"read-{i:02d}" for i in range(40)
    ]
    assert sorted(r.request_id for r in added if r.outcome == "denied") == [
        f"anon-{i:02d}" for i in range(10)
    ]
    assert [r.seq for r in chain] == list(range(1, len(chain) + 1))
    assert (await verified(api.app))["ok"] is True


# ---- 4. what a record holds ---------------------------------------------------------------------


async def by_request_id(app: Any, request_id: str) -> list[AuditRecord]:
    return [r for r in await records(app) if r.request_id == request_id]


async def test_a_successful_action_records_who_what_which_when_where_and_outcome(api):
    dispute = await api.intake()
    started = utcnow()
    response = await api.act(dispute, "accept", headers={"X-Request-ID": "req-accept-0001"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "req-accept-0001"
    action, read = await by_request_id(api.app, "req-accept-0001")
    center = api.bodies["center"]
    assert action.actor_kind == "user"
    assert action.actor_role == "clerk"
    assert action.actor_id == str(api.users[("clerk", center)])
    assert action.organisation_id == str(center)
    assert action.action == "dispute_action_accept"
    assert (action.object_type, action.object_id) == ("dispute", dispute["id"])
    assert (action.outcome, action.status_code) == ("success", 200)
    assert action.client_address == "127.0.0.1"
    assert action.details == {"method": "POST", "path": f"/v1/disputes/{dispute['id']}/actions/accept"}
    assert started - timedelta(seconds=1) <= action.occurred_at <= utcnow()
    # The answer showed the parties unmasked, so the disclosure is on record as well.
    assert (read.action, read.object_id, read.outcome) == ("pii.read", dispute["id"], "success")
    assert read.details["via"] == "dispute_action_accept"


async def test_refused_attempts_are_recorded_although_the_change_rolled_back(api):
    dispute = await api.intake()
    forbidden = await api.act(dispute, "accept", role="auditor", headers={"X-Request-ID": "req-forbidden"})
    assert forbidden.status_code == 403
    stale = await api.act(dispute, "accept", headers={"If-Match": '"99"', "X-Request-ID": "req-stale"})
    assert stale.status_code == 412

    [denied] = await by_request_id(api.app, "req-forbidden")
    assert (denied.action, denied.outcome, denied.status_code) == ("dispute_action_accept", "denied", 403)
    assert (denied.actor_role, denied.actor_id) == ("auditor", str(api.users[("auditor", None)]))
    assert denied.object_id == dispute["id"]
    [rejected] = await by_request_id(api.app, "req-stale")
    assert (rejected.action, rejected.outcome, rejected.status_code) == (
        "dispute_action_accept",
        "rejected",
        412,
    )
    assert rejected.actor_role == "clerk"
    # Nothing changed, and nothing was shown.
    after = await api.get(dispute)
    assert (after["status"], after["version"]) == ("registered", dispute["version"])
    assert [e["action"] for e in await api.timeline(dispute)] == ["register"]
    assert (await verified(api.app))["ok"] is True


async def test_unmasked_reads_are_recorded_and_masked_reads_are_not(api):
    dispute = await api.intake()
    before = await record_count(api.app)

    response = await api.client.get(f"/v1/disputes/{dispute['id']}", headers={"X-Request-ID": "req-read"})
    assert response.status_code == 200
    assert response.json()["parties"][0]["id_number"] == resident_id(1)
    [read] = await by_request_id(api.app, "req-read")
    assert (read.action, read.outcome, read.status_code) == ("pii.read", "success", 200)
    assert (read.object_type, read.object_id) == ("dispute", dispute["id"])
    assert read.actor_role == "clerk"
    assert read.details == {
        "via": "get_dispute",
        "disputes": [dispute["id"]],
        "fields": ["id_number", "phone"],
    }

    masked = await api.client.get(
        f"/v1/disputes/{dispute['id']}", headers=api.headers("supervisor", **{"X-Request-ID": "req-masked"})
    )
    assert masked.status_code == 200
    assert masked.json()["parties"][0]["id_number"] != resident_id(1)
    assert await by_request_id(api.app, "req-masked") == []
    assert await record_count(api.app) == before + 1


async def test_no_record_holds_an_id_or_phone_number(api):
    first, second = person("applicant", "王五", 7), person("respondent", "赵六", 8)
    dispute = await api.intake(parties=[first, second])
    dispute = await api.step(dispute, "accept")
    await api.get(dispute)
    for query in ({"id_number": first["id_number"]}, {"phone": second["phone"]}):
        found = await api.client.post("/v1/disputes/search-by-party", json=query)
        assert found.status_code == 200 and found.json()["items"]
    refused = await api.client.post(
        "/v1/disputes/search-by-party", json={"phone": first["phone"]}, headers=api.headers("auditor")
    )
    assert refused.status_code == 403
    invalid = await api.client.post("/v1/disputes", json=intake_body(parties=[{**first, "phone": "123"}]))
    assert invalid.status_code == 422

    chain = await records(api.app)
    assert {r.action for r in chain} >= {"register_dispute", "search_by_party", "pii.read"}
    assert any(r.outcome == "rejected" and r.status_code == 422 for r in chain)
    numbers = [first["id_number"], second["id_number"], first["phone"], second["phone"]]
    for record in chain:
        row = json.dumps(
            {c.name: getattr(record, c.name) for c in AuditRecord.__table__.columns},
            default=str,
            ensure_ascii=False,
        )
        assert not any(n in row for n in numbers), row
        details = UUID_TEXT.sub("", json.dumps(record.details, ensure_ascii=False))
        assert not ID_NUMBER.search(details), details
        assert not MOBILE.search(details), details


# ---- 5. the auditors' endpoints -----------------------------------------------------------------


async def test_audit_records_are_for_auditors_and_page_in_chain_order(api):
    dispute = await api.drive("accepted")
    await api.get(dispute)
    for path in ("/v1/audit-records", "/v1/audit-records/verification"):
        response = await api.client.get(path)  # as the window clerk
        assert response.status_code == 403, path
        assert response.headers["content-type"].startswith("application/problem+json")
    # The refused reads are themselves on record.
    denied = [r for r in await records(api.app) if r.outcome == "denied"]
    assert [(r.action, r.actor_role) for r in denied] == [
        ("list_audit_records", "clerk"),
        ("verify_audit_chain", "clerk"),
    ]
    total = await record_count(api.app)
    assert total == 7

    auditor = api.headers("auditor")
    seen: list[dict[str, Any]] = []
    after, pages = 0, 0
    while after is not None:
        response = await api.client.get(
            "/v1/audit-records", params={"after": after, "limit": 2}, headers=auditor
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        seen += page["items"]
        after, pages = page["next_after"], pages + 1
    assert [r["seq"] for r in seen] == list(range(1, total + 1))
    assert pages == (total + 1) // 2
    assert seen[0]["prev_hash"] == GENESIS_HASH
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(seen))
    assert {"actor_role", "action", "object_id", "outcome", "request_id", "client_address"} <= set(seen[0])

    filtered = await api.client.get("/v1/audit-records", params={"action": "pii.read"}, headers=auditor)
    assert filtered.status_code == 200
    assert [r["action"] for r in filtered.json()["items"]] == ["pii.read"] * 3
    assert filtered.json()["next_after"] is None

    verification = await api.client.get("/v1/audit-records/verification", headers=auditor)
    assert verification.status_code == 200
    assert verification.json() == {
        "ok": True,
        "checked": total,
        "first_seq": 1,
        "last_seq": total,
        "broken_seq": None,
        "problem": None,
        **NOT_SEALED_YET,
    }


# ---- 6. retention -------------------------------------------------------------------------------


async def test_purge_keeps_the_legal_minimum_and_leaves_a_verifiable_chain(api):
    app, db = api.app, api.app.state.db
    now = utcnow()
    for age in (400, 200, 100):  # 20 records of each age: seqs 1-20, 21-40, 41-60
        async with db.writer() as session, session.begin():
            await append(session, [entry(1) for _ in range(20)], now - timedelta(days=age))
    await api.intake()  # 61, 62: today
    assert await record_count(app) == 62

    # The command honours the configured retention: only the 400-day-old records go.
    code, out, err = await cli(app, "audit", "purge", MEDIATION_AUDIT_RETENTION_DAYS="365")
    assert code == 0, err
    assert out.strip() == "purged 20 audit records older than 365 days"
    remaining = await records(app)
    assert (remaining[0].seq, remaining[-1].seq, remaining[-1].action) == (21, 63, "audit.purge")
    assert remaining[-1].details["through_seq"] == 20
    assert remaining[-1].actor_kind == "system"
    assert (await verified(app))["ok"] is True

    # A shorter retention than the law allows is raised to six months (184 days): the 100-day-old
    # records stay.
    async with db.writer() as session, session.begin():
        assert await purge(session, SYSTEM, retention_days=30, now=now) == 20
    remaining = await records(app)
    assert remaining[0].seq == 41
    assert min(r.occurred_at for r in remaining) >= now - timedelta(days=184)
    marker = remaining[-1]
    assert (marker.seq, marker.action) == (64, "audit.purge")
    assert (marker.details["through_seq"], marker.details["retention_days"]) == (40, 184)
    async with db.writer() as session, session.begin():
        assert await purge(session, SYSTEM, retention_days=30, now=now) == 0  # nothing more to cut
    assert await record_count(app) == 24
    # Records a hundred days old and never sealed fail verification (no scheduler ran here);
    # sealed, the purged chain verifies.
    code, report, line = await cli_verify(app)
    assert code == 1 and report["broken_seq"] == 41 and "have no seal" in report["problem"], line
    assert (await cli(app, "audit", "seal"))[0] == 0
    code, report, line = await cli_verify(app)
    assert code == 0, line
    assert (report["checked"], report["first_seq"], report["last_seq"]) == (24, 41, 64)

    # The database itself refuses to delete what the law still requires to keep.
    async with db.writer() as session:
        with pytest.raises(DBAPIError, match="at least six months"):
            await session.execute(text("DELETE FROM audit_records WHERE seq = 41"))
        await session.rollback()

    # Removing the first record after the cut is still noticed.
    await tamper(app, "DELETE FROM audit_records WHERE seq = 41")
    code, report, line = await cli_verify(app)
    assert code == 1
    assert (report["broken_seq"], report["problem"]) == (41, "record 41 is missing")
