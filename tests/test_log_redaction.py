"""Personal data stays out of the service's logs, whatever a caller puts in a URL or a failure."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx

from tests.support import person
from tests.test_faults import serve

ID_NUMBER = person("applicant", "张三", 1)["id_number"]


async def test_access_log_masks_numbers_in_search_text(api, caplog):
    caplog.set_level(logging.INFO, logger="mediation.access")
    await api.intake()
    response = await api.client.get("/v1/disputes", params={"q": "13800000001"})
    assert response.status_code == 200
    await api.client.get("/v1/disputes", params={"q": ID_NUMBER})
    # Percent-encoded Chinese right before the number: logged decoded, so the number stands apart.
    await api.client.get("/v1/disputes", params={"q": "电话13800000001"})
    lines = [r.getMessage() for r in caplog.records if r.name == "mediation.access"]
    searches = [line for line in lines if "q=" in line]
    assert len(searches) == 3, lines
    assert "q=138****0001" in searches[0]
    assert f"q={ID_NUMBER[:3]}" in searches[1] and ID_NUMBER not in searches[1]
    assert "q=电话138****0001" in searches[2]
    assert all("13800000001" not in line for line in lines)


async def test_unexpected_errors_are_logged_without_the_numbers_in_them(api, caplog):
    async def explode() -> None:
        raise RuntimeError(f"could not notify {ID_NUMBER} at 13800000001")

    api.app.add_api_route("/explode", explode)
    # Starlette re-raises after answering 500; a real server logs that and carries on.
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as client:
        response = await client.get("/explode")
    assert response.status_code == 500
    assert response.json()["type"] == "/problems/internal-error"
    assert ID_NUMBER not in response.text
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert logged, "the failure must still reach the log"
    text = "\n".join((r.getMessage() + (r.exc_text or "")) for r in logged)
    assert "RuntimeError" in text and "138****0001" in text
    assert ID_NUMBER not in text and "13800000001" not in text


async def test_every_worker_process_writes_the_service_log_redacted(settings, tmp_path):
    """`mediation serve --workers 2`: the workers log the service's lines (the access log among
    them) as one process does, masked. uvicorn configures logging anew in each worker, and with
    only its own configuration a worker wrote uvicorn's lines and lost every one of the service's."""
    requests = 12
    async with serve(settings, tmp_path, workers=2) as served:
        for _ in range(requests):
            # A connection each, so the requests spread over the workers.
            async with httpx.AsyncClient(base_url=served.url, timeout=10) as once:
                response = await once.get("/v1/disputes", params={"q": "13800000001"})
                assert response.status_code == 401
        deadline = time.monotonic() + 10
        while True:
            text = served.log.read_text("utf-8", errors="replace")
            lines = [line for line in text.splitlines() if line.startswith("INFO mediation.access: GET /v1/")]
            if len(lines) >= requests or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    assert len(lines) == requests, text[-4000:]
    assert all("GET /v1/disputes?q=138****0001 401" in line for line in lines), lines
    assert "13800000001" not in text
