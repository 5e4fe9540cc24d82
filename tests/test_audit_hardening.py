"""The audit trail under odd input and against the ways around its guards.

- TRUNCATE (PostgreSQL) is refused like DELETE: an emptied journal with its head set back verified;
- records of personal data processing are kept three years, by a purge and by the database;
- whatever a request sends (a 65-character path segment, a NUL) is recorded on both databases,
  and a party's ID or phone number typed into a path or header is masked in the record.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections import Counter
from datetime import timedelta

import pytest
import rfc8785
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError

from mediation.audit.chain import AuditEntry, append, lock_head, purge
from mediation.audit.models import GENESIS_HASH, AuditRecord
from mediation.core.db import utcnow
from mediation.core.principal import SYSTEM, Principal, Role
from tests.support import CSRF, resident_id
from tests.test_audit import ID_NUMBER, MOBILE, entry, fill_chain, record_count, records, verified

# ---- TRUNCATE ----------------------------------------------------------------------------------


@pytest.mark.postgres_only
async def test_a_role_granted_truncate_cannot_empty_the_journal(api):
    """The service's own login need not be a superuser: granted every table privilege (TRUNCATE
    among them), it met the row triggers on DELETE but not on TRUNCATE, and an emptied journal
    with its head set back to the genesis verified as an intact, empty chain."""
    await fill_chain(api.app, 20)
    role = f"audit_probe_{uuid.uuid4().hex[:12]}"
    for table in ("audit_records", "audit_chain_head", "audit_seals"):
        async with api.app.state.db.writer() as session:
            # Role, grants and all are rolled back with the transaction.
            await session.execute(text(f"CREATE ROLE {role} NOLOGIN"))
            await session.execute(
                text(f"GRANT ALL ON audit_records, audit_chain_head, audit_seals TO {role}")
            )
            await session.execute(text(f"SET LOCAL ROLE {role}"))
            with pytest.raises(DBAPIError, match=f"{table} is append-only"):
                await session.execute(text(f"TRUNCATE {table}"))
            await session.rollback()
    assert await record_count(api.app) == 20
    result = await verified(api.app)
    assert (result["ok"], result["checked"]) == (True, 20)


@pytest.mark.postgres_only
async def test_a_role_granted_truncate_cannot_empty_the_case_timelines(api):
    """The timeline is append-only as the journal is: a TRUNCATE is refused to any role but a
    superuser (migration 0028)."""
    dispute = await api.intake()
    role = f"timeline_probe_{uuid.uuid4().hex[:12]}"
    async with api.app.state.db.writer() as session:
        await session.execute(text(f"CREATE ROLE {role} NOLOGIN"))
        await session.execute(text(f"GRANT ALL ON timeline_entries TO {role}"))
        await session.execute(text(f"SET LOCAL ROLE {role}"))
        with pytest.raises(DBAPIError, match="timeline_entries is append-only"):
            await session.execute(text("TRUNCATE timeline_entries"))
        await session.rollback()
    assert [e["action"] for e in await api.timeline(dispute)] == ["register"]


# ---- three years for records of processing -----------------------------------------------------


def disclosure() -> AuditEntry:
    reader = Principal(Role.clerk, str(uuid.uuid4()), organisation_id=uuid.uuid4())
    dispute_id = str(uuid.uuid4())
    return AuditEntry.by(
        reader,
        "pii.read",
        object_type="dispute",
        object_id=dispute_id,
        status_code=200,
        details={"via": "get_dispute", "disputes": [dispute_id], "fields": ["id_number", "phone"]},
    )


async def test_a_purge_keeps_disclosures_of_personal_data_for_three_years(api):
    db, now = api.app.state.db, utcnow()
    async with db.writer() as session, session.begin():
        await append(session, [entry(i) for i in range(1, 11)], now - timedelta(days=1200))  # 1-10
        await append(session, [entry(i) for i in range(11, 21)], now - timedelta(days=400))  # 11-20
        await append(session, [disclosure()], now - timedelta(days=400))  # 21
        await append(session, [entry(i) for i in range(22, 31)], now - timedelta(days=400))  # 22-30
        await append(session, [disclosure()], now - timedelta(days=1100))  # 31: past three years
    await api.intake()  # 32, 33

    # Everything before the disclosure of 400 days ago goes; it and all after it stay.
    async with db.writer() as session, session.begin():
        assert await purge(session, SYSTEM, retention_days=180, now=now) == 20
    remaining = await records(api.app)
    assert remaining[0].seq == 21 and remaining[0].action == "pii.read"
    assert (remaining[-1].action, remaining[-1].details["through_seq"]) == ("audit.purge", 20)
    assert (await verified(api.app))["ok"] is True

    # The database refuses it too, and lets the one past three years go.
    async with db.writer() as session:
        with pytest.raises(DBAPIError, match="three years"):
            await session.execute(text("DELETE FROM audit_records WHERE seq = 21"))
        await session.rollback()
        deleted = await session.execute(text("DELETE FROM audit_records WHERE seq = 31"))
        assert deleted.rowcount == 1
        await session.rollback()
    # Other records of the same age may still go, as before.
    async with db.writer() as session:
        deleted = await session.execute(text("DELETE FROM audit_records WHERE seq = 22"))
        assert deleted.rowcount == 1
        await session.rollback()


async def test_a_purge_with_nothing_past_its_period_cuts_nothing(api):
    db, now = api.app.state.db, utcnow()
    async with db.writer() as session, session.begin():
        await append(session, [disclosure()], now - timedelta(days=400))  # 1
        await append(session, [entry(i) for i in range(2, 6)], now - timedelta(days=400))  # 2-5
    async with db.writer() as session, session.begin():
        assert await purge(session, SYSTEM, retention_days=365, now=now) == 0
    assert [r.seq for r in await records(api.app)] == [1, 2, 3, 4, 5]


# ---- odd input ----------------------------------------------------------------------------------


async def test_a_refusal_is_recorded_whatever_the_path_holds(api, web):
    """PostgreSQL refused the record of a path segment longer than the object column, or holding
    a NUL, where SQLite took it: the refused attempt went unrecorded."""
    long_id = "a" * 80
    before = await record_count(api.app)
    refused = [
        await api.client.post(f"/v1/disputes/{long_id}/actions/accept", json={}),
        await api.client.post("/v1/disputes/%00/actions/accept", json={}),
        await web.post("/lookup", data={"case_number": "330681\x00", "query_code": "x", "csrf": CSRF}),
    ]
    assert [r.status_code for r in refused] == [422, 422, 422]
    added = (await records(api.app))[before:]
    assert [(r.action, r.outcome, r.status_code) for r in added] == [
        ("dispute_action_accept", "rejected", 422),
        ("dispute_action_accept", "rejected", 422),
        ("lookup", "rejected", 422),
    ]
    assert added[0].object_id == long_id[:64]
    assert added[0].details["path"] == f"/v1/disputes/{long_id}/actions/accept"
    assert added[1].object_id == "\ufffd"
    assert added[1].details["path"] == "/v1/disputes/\ufffd/actions/accept"
    assert added[2].details["case_number"] == "330681\ufffd"
    assert (await verified(api.app))["ok"] is True


async def test_one_unstorable_refusal_does_not_fail_the_disclosures_recorded_with_it(api):
    """Refusals and disclosures waiting at one moment are committed together: one record the
    database refused failed them all, and every read among them answered 503."""
    dispute = await api.intake()
    reads = [api.client.get(f"/v1/disputes/{dispute['id']}") for _ in range(20)]
    refusals = [
        api.client.get(f"/v1/disputes/{dispute['id']}", headers={"X-API-Key": "x" * 40}) for _ in range(5)
    ]
    bad = [api.client.post(f"/v1/disputes/{'b' * 70}/actions/accept", json={}) for _ in range(5)]
    responses = await asyncio.gather(*reads, *refusals, *bad)
    assert Counter(r.status_code for r in responses) == {200: 20, 401: 5, 422: 5}
    added = Counter(r.action for r in (await records(api.app))[2:])
    assert added == {"pii.read": 20, "get_dispute": 5, "dispute_action_accept": 5}


async def test_personal_numbers_in_a_path_or_request_id_are_masked_in_the_record(api):
    id_number, mobile = resident_id(3), "13912345678"
    before = await record_count(api.app)
    for typed in (id_number, mobile):
        response = await api.client.post(
            f"/v1/disputes/{typed}/actions/accept", json={}, headers={"X-Request-ID": f"lookup {typed}"}
        )
        assert response.status_code == 422
    added = (await records(api.app))[before:]
    assert len(added) == 2
    for record in added:
        row = json.dumps(
            {c.name: getattr(record, c.name) for c in AuditRecord.__table__.columns if "hash" not in c.name},
            default=str,
            ensure_ascii=False,
        )
        assert id_number not in row and mobile not in row, row
        assert not ID_NUMBER.search(row) and not MOBILE.search(row), row
    assert added[0].object_id == "330***********" + id_number[-4:]
    assert added[1].details["path"] == "/v1/disputes/139****5678/actions/accept"
    assert added[1].request_id == "lookup 139****5678"
    assert (await verified(api.app))["ok"] is True


# ---- numbers in details -------------------------------------------------------------------------


async def test_numbers_of_any_size_in_details_are_recorded_and_verify(api):
    """An integer beyond 2**53 could not be hashed (the change failed with it); a float of 2**53
    or more came back from PostgreSQL's JSONB as such an integer, and verification failed with an
    error on every run after."""
    details = {"share": 1e16, "count": 2**60, "ratio": 0.1, "whole": 3.0, "none": float("nan"), "n": -7}
    async with api.app.state.db.writer() as session, session.begin():
        await append(session, [AuditEntry.by(SYSTEM, "scheduler.test", details=details)], utcnow())
    [record] = await records(api.app)
    assert record.details == {
        "share": "1e+16",
        "count": str(2**60),
        "ratio": 0.1,
        "whole": 3.0,
        "none": "nan",
        "n": -7,
    }
    result = await verified(api.app)
    assert (result["ok"], result["checked"]) == (True, 1), result


async def test_a_large_float_written_before_is_verified_as_written(api):
    """A record written with a float of 2**53 or more (as append wrote it, hashed as a float)."""
    at = utcnow()
    row = {
        "seq": 1,
        "occurred_at": at,
        "actor_kind": "system",
        "actor_role": "system",
        "actor_id": "system",
        "organisation_id": None,
        "action": "scheduler.test",
        "object_type": None,
        "object_id": None,
        "outcome": "success",
        "status_code": None,
        "request_id": None,
        "client_address": None,
        "details": {"share": 1e16},
        "prev_hash": GENESIS_HASH,
    }
    hashed = {**row, "occurred_at": at.isoformat(timespec="microseconds").replace("+00:00", "Z")}
    row["hash"] = hashlib.sha256(rfc8785.dumps(hashed)).hexdigest()
    async with api.app.state.db.writer() as session, session.begin():
        head = await lock_head(session)
        head.seq, head.hash = 1, row["hash"]
        await session.flush()
        await session.execute(insert(AuditRecord), row)
    result = await verified(api.app)
    assert (result["ok"], result["checked"]) == (True, 1), result
