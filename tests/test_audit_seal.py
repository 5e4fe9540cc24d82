"""Keyed seals of the audit chain: a rewrite by someone with full rights over the database shows.

The hash chain alone is rewritten the way such a person would: edit a record, recompute its hash
and every hash after it, and wind the head forward to the new last hash. The walk finds nothing;
the seal, an HMAC under a key the database does not hold, does.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from mediation.audit.chain import append, purge, record_hash
from mediation.audit.models import AuditRecord, AuditSeal
from mediation.audit.seal import SealKeys, seal
from mediation.core.db import utcnow
from mediation.core.principal import SYSTEM
from tests.test_audit import cli, cli_verify, entry, fill_chain, record_count, tamper, verified

EVERY = timedelta(minutes=5)
OTHER_KEY = "another-key-that-is-at-least-32-bytes-long"


def keys_of(app: Any) -> SealKeys:
    keys: SealKeys = app.state.seal_keys
    return keys


async def seal_now(app: Any) -> AuditSeal:
    made = await seal(app.state.db, keys_of(app), utcnow(), timedelta(0))
    assert made is not None
    return made


async def seals(app: Any) -> list[AuditSeal]:
    async with app.state.db.reader() as session:
        return list((await session.scalars(select(AuditSeal).order_by(AuditSeal.id))).all())


async def rewrite_from(app: Any, seq: int) -> None:
    """Turn record `seq` (a refused attempt) into a success, and rehash the chain from it on."""
    async with app.state.db.reader() as session:
        rows = list(
            (
                await session.scalars(
                    select(AuditRecord).where(AuditRecord.seq >= seq).order_by(AuditRecord.seq)
                )
            ).all()
        )
        session.expunge_all()
    assert rows[0].outcome == "denied"
    rows[0].outcome, rows[0].status_code = "success", 200
    statements = []
    prev = rows[0].prev_hash
    for row in rows:
        # Another record's old hash may still be in place while this one is rewritten (the column
        # is unique): each row goes through a placeholder first.
        row.prev_hash = prev
        row.hash = prev = record_hash(row)
        statements.append(
            f"UPDATE audit_records SET outcome = '{row.outcome}', status_code = {row.status_code}, "
            f"prev_hash = '{row.prev_hash}', hash = 'x{row.seq}' WHERE seq = {row.seq}"
        )
    statements += [f"UPDATE audit_records SET hash = '{row.hash}' WHERE seq = {row.seq}" for row in rows]
    statements.append(f"UPDATE audit_chain_head SET hash = '{prev}' WHERE id = 1")
    await tamper(app, *statements)


async def test_a_rehashed_rewrite_passes_the_walk_and_fails_at_its_seal(api):
    app = api.app
    await fill_chain(app, 600)
    sealed = await seal_now(app)
    assert sealed.seq == 600
    await fill_chain(app, 700)  # records after the seal

    await rewrite_from(app, 500)
    # The walk alone finds every link and hash consistent again.
    assert (await verified(app))["ok"] is True

    code, report, line = await cli_verify(app)
    assert code == 1, line
    assert report["ok"] is False
    # The walk checked every record: each link and hash is consistent again.
    assert report["checked"] == 700
    assert (report["broken_seq"], report["problem"]) == (
        600,
        "record 600 does not match its seal: the chain was rewritten",
    )
    response = await api.client.get("/v1/audit-records/verification", headers=api.headers("auditor"))
    assert response.status_code == 200
    assert response.json() == report


async def test_an_intact_sealed_chain_reports_its_seals(api):
    app = api.app
    await fill_chain(app, 300)
    first = await seal_now(app)
    await fill_chain(app, 400)
    second = await seal_now(app)
    await fill_chain(app, 450)

    code, report, line = await cli_verify(app)
    assert code == 0, line
    assert report["ok"] is True
    assert (report["checked"], report["seals_checked"], report["sealed_through"]) == (450, 2, 400)
    assert (first.seq, second.seq) == (300, 400)
    assert report["last_sealed_at"] == second.sealed_at.isoformat(timespec="microseconds").replace(
        "+00:00", "Z"
    )
    assert (
        line
        == f"audit chain intact: 450 records, 2 seals; sealed through record 400 at {report['last_sealed_at']}"
    )
    response = await api.client.get("/v1/audit-records/verification", headers=api.headers("auditor"))
    assert response.json()["sealed_through"] == 400


async def test_a_forged_seal_and_a_seal_of_an_unknown_key_are_told_apart(api):
    app = api.app
    await fill_chain(app, 200)
    made = await seal_now(app)
    await tamper(app, f"UPDATE audit_seals SET mac = '{'0' * 64}' WHERE id = {made.id}")
    code, report, _ = await cli_verify(app)
    assert code == 1
    assert (report["broken_seq"], report["problem"]) == (200, "the seal of record 200 is forged")

    # Sealed with a key this service does not hold: said as such, not called a forgery.
    foreign = SealKeys.parse(OTHER_KEY)
    at = utcnow()
    mac = foreign.mac(200, made.hash, at)
    await tamper(
        app,
        f"DELETE FROM audit_seals WHERE id = {made.id}",
        "INSERT INTO audit_seals (seq, hash, sealed_at, key_id, mac) VALUES "
        f"(200, '{made.hash}', '{at.isoformat()}', '{foreign.current}', '{mac}')",
    )
    code, report, _ = await cli_verify(app)
    assert code == 1
    assert report["problem"] == (
        f"the seal of record 200 was made with a key this service does not hold ({foreign.current})"
    )

    # Once that key is configured as an older one, beside a new current key, the seal verifies
    # and the next seal is made with the new key.
    new_key = "the-new-current-seal-key-of-at-least-32-bytes"
    code, out, err = await cli(app, "audit", "seal", MEDIATION_AUDIT_SEAL_KEYS=f"{new_key},{OTHER_KEY}")
    assert code == 0, err
    assert out.strip() == "sealed through record 200"
    code, out, err = await cli(app, "audit", "verify", MEDIATION_AUDIT_SEAL_KEYS=f"{new_key},{OTHER_KEY}")
    assert code == 0, (out, err)
    assert json.loads(out.splitlines()[0])["seals_checked"] == 2
    # The service's own key (derived, none configured) holds neither: it refuses both seals.
    code, _, _ = await cli_verify(app)
    assert code == 1


async def test_a_chain_cut_back_behind_its_seal_is_detected(api):
    app = api.app
    await fill_chain(app, 300)
    await seal_now(app)
    async with app.state.db.reader() as session:
        last_kept = await session.get(AuditRecord, 250)
        assert last_kept is not None
        kept_hash = last_kept.hash
    # The tail goes, and the head is wound back to the last record kept: the walk alone is content.
    await tamper(
        app,
        "DELETE FROM audit_records WHERE seq > 250",
        f"UPDATE audit_chain_head SET seq = 250, hash = '{kept_hash}' WHERE id = 1",
    )
    code, report, _ = await cli_verify(app)
    assert code == 1
    assert (report["checked"], report["broken_seq"]) == (250, 251)
    assert report["problem"] == "records after 250 are missing behind a seal of record 300"


async def test_the_scheduler_seals_once_per_interval_and_writes_the_seal_to_the_log(api, caplog):
    from mediation.clocks.scheduler import tick

    app = api.app
    await api.drive("assigned")
    state = app.state
    caplog.set_level(logging.INFO, logger="mediation.audit.seal")
    report = await tick(state.db, state.clock, state.settings, state.identity.cipher, state.seal_keys)
    made = await seals(app)
    assert len(made) == 1
    assert report.sealed_through == made[0].seq == await record_count(app)
    logged = [r.getMessage() for r in caplog.records if r.name == "mediation.audit.seal"]
    assert logged == [
        f"audit seal seq={made[0].seq} hash={made[0].hash} "
        f"sealed_at={made[0].sealed_at.isoformat(timespec='microseconds').replace('+00:00', 'Z')} "
        f"key={made[0].key_id} mac={made[0].mac}"
    ]

    # Within the interval: no second seal, though the chain grew.
    await api.intake()
    report = await tick(state.db, state.clock, state.settings, state.identity.cipher, state.seal_keys)
    assert report.sealed_through is None
    assert len(await seals(app)) == 1
    # Past it: the head as it is now.
    state.clock.at += timedelta(seconds=state.settings.audit_seal_seconds)
    report = await tick(state.db, state.clock, state.settings, state.identity.cipher, state.seal_keys)
    made = await seals(app)
    assert len(made) == 2
    assert report.sealed_through == made[1].seq == await record_count(app)
    code, report_json, line = await cli_verify(app)
    assert code == 0, line
    assert report_json["seals_checked"] == 2


async def test_schedulers_in_several_processes_seal_a_moment_once(api):
    app = api.app
    await fill_chain(app, 50)
    now = utcnow()
    results = await asyncio.gather(*(seal(app.state.db, keys_of(app), now, EVERY) for _ in range(6)))
    assert sum(r is not None for r in results) == 1
    assert len(await seals(app)) == 1


async def test_an_empty_chain_is_not_sealed(api):
    assert await seal(api.app.state.db, keys_of(api.app), utcnow(), timedelta(0)) is None
    assert await seals(api.app) == []


async def test_a_purge_takes_the_seals_of_the_records_it_removes(api):
    app, db = api.app, api.app.state.db
    now = utcnow()
    async with db.writer() as session, session.begin():
        await append(session, [entry(1) for _ in range(20)], now - timedelta(days=400))
    await seal_now(app)  # seals record 20, which the purge removes
    async with db.writer() as session, session.begin():
        await append(session, [entry(1) for _ in range(10)], now)
    await seal_now(app)  # seals record 30, which stays
    async with db.writer() as session, session.begin():
        assert await purge(session, SYSTEM, retention_days=365, now=now) == 20
    remaining = await seals(app)
    assert [s.seq for s in remaining] == [30]
    code, report, line = await cli_verify(app)
    assert code == 0, line
    assert (report["first_seq"], report["last_seq"], report["seals_checked"]) == (21, 31, 1)


async def test_a_short_seal_key_stops_the_service_at_start(api):
    code, _out, err = await cli(api.app, "audit", "verify", MEDIATION_AUDIT_SEAL_KEYS="short,also-short")
    assert code == 2
    assert "configuration error" in err and "audit_seal_keys" in err.lower()
    assert "key #1 must be at least 32 bytes" in err
    assert "also-short" not in err  # key material is never echoed


async def test_seals_deleted_with_their_records_kept_fail_verification(api):
    """Rewrite a sealed chain, rehash it and delete every seal: no seal is left to disagree, but
    the chain holds records older than the scheduler ever leaves unsealed."""
    app = api.app
    two_hours_ago = utcnow() - timedelta(hours=2)
    await fill_chain(app, 600, at=two_hours_ago)
    await seal_now(app)
    assert (await cli_verify(app))[0] == 0
    await rewrite_from(app, 500)
    await tamper(app, "DELETE FROM audit_seals")

    code, report, line = await cli_verify(app)
    assert code == 1, line
    assert (report["ok"], report["broken_seq"], report["seals_checked"]) == (False, 1, 0)
    assert report["problem"].startswith("records from 1 on have no seal though the oldest of them is from ")
    assert report["unsealed_since"] == two_hours_ago.isoformat(timespec="microseconds").replace("+00:00", "Z")
    response = await api.client.get("/v1/audit-records/verification", headers=api.headers("auditor"))
    assert response.json() == report


async def test_records_younger_than_the_sealing_interval_may_wait_for_their_seal(api):
    app = api.app
    await fill_chain(app, 300, at=utcnow() - timedelta(hours=2))
    await seal_now(app)
    await fill_chain(app, 350)  # just now: the scheduler seals them at its next pass
    code, report, line = await cli_verify(app)
    assert code == 0, line
    assert (report["sealed_through"], report["last_seq"]) == (300, 350)
    assert report["unsealed_since"] is not None
    # Configured to seal every second, the same records are overdue a few seconds later.
    await asyncio.sleep(2.5)
    fast = {"MEDIATION_AUDIT_SEAL_SECONDS": "0.5", "MEDIATION_CLOCK_INTERVAL_SECONDS": "0.5"}
    code, report, line = await cli_verify(app, **fast)
    assert code == 1 and line.startswith(
        "audit chain broken at record 301: records from 301 on have no seal"
    ), line


async def test_seals_of_the_derived_key_verify_once_keys_are_configured(api):
    """A service starts without MEDIATION_AUDIT_SEAL_KEYS (its seals made with the key derived from
    the index key), and its operator configures keys later: the earlier seals still verify."""
    app = api.app
    await fill_chain(app, 300)
    await seal_now(app)
    configured = {"MEDIATION_AUDIT_SEAL_KEYS": OTHER_KEY}
    code, out, err = await cli(app, "audit", "seal", **configured)
    assert (code, out.strip()) == (0, "sealed through record 300"), err  # again, under the new key
    code, report, line = await cli_verify(app, **configured)
    assert code == 0, line
    assert report["seals_checked"] == 2
    # Once sealed under the current key, sealing again has nothing to do, and says why.
    code, out, err = await cli(app, "audit", "seal", **configured)
    assert (code, out.strip()) == (0, "nothing to seal: the chain is sealed through its last record, 300")


async def test_the_scheduler_seals_even_when_a_step_of_its_pass_fails(api, monkeypatch):
    from mediation.clocks import scheduler

    app, state = api.app, api.app.state
    await api.intake()

    async def broken(*args: Any) -> int:
        raise RuntimeError("the statistics could not be refreshed")

    monkeypatch.setattr(scheduler.stats, "refresh", broken)
    with pytest.raises(RuntimeError, match="statistics"):  # the failure is not swallowed
        await scheduler.tick(state.db, state.clock, state.settings, state.identity.cipher, state.seal_keys)
    assert [s.seq for s in await seals(app)] == [await record_count(app)]


async def test_a_scheduler_stopping_seals_the_chain_to_its_last_record(api):
    """Stopped (a deployment, a restart), the service leaves nothing unsealed behind it: verified
    while it is down, its last minutes' records would otherwise fail once the interval passed."""
    from mediation.clocks import scheduler

    app, state = api.app, api.app.state
    await api.intake()
    stop = asyncio.Event()
    running = asyncio.create_task(
        scheduler.run(state.db, state.clock, state.settings, state.identity.cipher, stop, state.seal_keys)
    )
    for _ in range(200):  # the first pass seals the chain as it is
        if await seals(app):
            break
        await asyncio.sleep(0.05)
    first = [s.seq for s in await seals(app)]
    assert first == [await record_count(app)]
    await fill_chain(app, first[0] + 40)  # within the interval: the passes leave them unsealed
    stop.set()
    await asyncio.wait_for(running, 30)
    assert [s.seq for s in await seals(app)] == [first[0], first[0] + 40]
