"""Operations review: the audit chain's verification and `GET /metrics`, as an operator and an
attacker would meet them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from mediation.audit.chain import append, purge, record_hash
from mediation.audit.models import AuditRecord
from mediation.core.db import utcnow
from mediation.core.principal import SYSTEM
from tests.support import Api
from tests.test_audit import cli_verify, entry, records, tamper
from tests.test_metrics import WITH_TOKEN, _scrape

# ---- metrics ------------------------------------------------------------------------------------


@WITH_TOKEN
async def test_a_request_method_made_up_by_a_client_adds_no_series_to_the_metrics(api: Api) -> None:
    """HTTP lets a client send any token as its method (RFC 9110 §9.1). Each one became a label
    value of its own, so a client sending random methods grew the scraped series without bound; the
    methods the service does not serve are counted together as `other`."""
    before = await _scrape(api.client)
    invented = [f"PROBE{n}" for n in range(5)]
    for method in invented:
        response = await api.client.request(method, "/v1/disputes", headers=api.auth("clerk"))
        assert response.status_code == 405
        response = await api.client.request(method, "/no/such/page")
        assert response.status_code in (404, 405)
    after = await _scrape(api.client)
    methods = {dict(labels).get("method") for _, labels in after}
    assert not methods & set(invented), methods
    name = "mediation_http_requests_total"
    added = {labels for sample, labels in after if sample == name} - {
        labels for sample, labels in before if sample == name
    }
    # At most: the invented methods on a route, off any route, and the scrape itself.
    assert len(added) <= 3, added
    counted = sum(
        value
        for (sample, labels), value in after.items()
        if sample == name and dict(labels).get("method") == "other"
    )
    assert counted >= 10


# ---- readiness ----------------------------------------------------------------------------------


async def test_a_database_not_migrated_for_this_release_is_not_ready(api: Api) -> None:
    """`/readyz` asked the database for `SELECT 1` only: one a release's migrations had not
    reached answered "ready", and the requests sent there failed on the tables missing."""
    app: Any = api.app
    assert (await api.client.get("/readyz")).json() == {"status": "ready"}
    async with app.state.db.engine.begin() as conn:
        head = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
        await conn.execute(text("UPDATE alembic_version SET version_num = '0029'"))
    try:
        response = await api.client.get("/readyz", headers={"Accept-Language": "en"})
        assert response.status_code == 503, response.text
        assert "mediation migrate" in response.json()["detail"]
        assert (await api.client.get("/healthz")).status_code == 200
        # Migrated by a newer release (a revision this one does not know): ready, as an older
        # release stays up while a newer one rolls out.
        async with app.state.db.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        assert (await api.client.get("/readyz")).status_code == 200
        async with app.state.db.engine.begin() as conn:
            await conn.execute(text("DELETE FROM alembic_version"))
        assert (await api.client.get("/readyz")).status_code == 503
    finally:
        async with app.state.db.engine.begin() as conn:
            await conn.execute(text("DELETE FROM alembic_version"))
            await conn.execute(
                text("INSERT INTO alembic_version (version_num) VALUES (:head)"), {"head": head}
            )


# ---- the chain after a purge --------------------------------------------------------------------


async def _purged_chain(api: Api) -> int:
    """Twenty records past the retention period, cut by a purge, and today's after them; the
    purge record's number."""
    app: Any = api.app
    db, now = app.state.db, utcnow()
    async with db.writer() as session, session.begin():
        await append(session, [entry(1) for _ in range(20)], now - timedelta(days=400))
    await api.intake()
    async with db.writer() as session, session.begin():
        assert await purge(session, SYSTEM, retention_days=365, now=now) == 20
    marker = (await records(app))[-1]
    assert marker.action == "audit.purge"
    code, report, line = await cli_verify(app)
    assert code == 0 and report["ok"] is True, line
    return marker.seq


PURGE_TAMPERING = {
    # Where the cut was made, forgotten; its hash left as it was, or recomputed for the new content.
    "details_emptied": "'{}'",
    "details_not_numbers": '\'{"through_seq": "the start", "through_hash": 7, "retention_days": 365}\'',
    "details_not_an_object": "'[1, 2]'",
}


@pytest.mark.parametrize("rehashed", [False, True], ids=["as_was", "rehashed"])
@pytest.mark.parametrize("how", list(PURGE_TAMPERING))
async def test_a_purge_record_rewritten_is_reported_at_it_not_a_crash(
    api: Api, how: str, rehashed: bool
) -> None:
    """Verification read where a purge cut the chain from the purge record's details before
    checking that record: details rewritten to lack the cut, or to hold something else than its
    number and hash, made `mediation audit verify` end in a traceback and the verification
    endpoint answer 500, instead of naming the record."""
    app: Any = api.app
    seq = await _purged_chain(api)
    statements = [f"UPDATE audit_records SET details = {PURGE_TAMPERING[how]} WHERE seq = {seq}"]
    if rehashed:
        async with app.state.db.reader() as session:
            record = await session.get(AuditRecord, seq)
            assert record is not None
            session.expunge(record)
        record.details = json.loads(PURGE_TAMPERING[how].strip("'"))
        statements.append(f"UPDATE audit_records SET hash = '{record_hash(record)}' WHERE seq = {seq}")
    await tamper(app, *statements)

    code, report, line = await cli_verify(app)
    assert code == 1, line
    assert report["ok"] is False and report["broken_seq"] == seq, report
    response = await api.client.get("/v1/audit-records/verification", headers=api.headers("auditor"))
    assert response.status_code == 200, response.text
    assert response.json() == report
