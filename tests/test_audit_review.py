"""Operations review: the audit chain's verification and `GET /metrics`, as an operator and an
attacker would meet them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.support import Api
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
