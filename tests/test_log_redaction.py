"""Personal data stays out of the service's logs, whatever a caller puts in a URL or a failure."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import time

import httpx

from tests.support import person
from tests.test_faults import serve

ID_NUMBER = person("applicant", "张三", 1)["id_number"]
# Every line the service writes starts with when, to the millisecond, with its UTC offset: an
# operator reading a log file or `docker logs` relates it to a case's timeline.
_STAMP = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2} "


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
            lines = [
                line
                for line in text.splitlines()
                if re.match(_STAMP + "INFO mediation.access: GET /v1/", line)
            ]
            if len(lines) >= requests or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    assert len(lines) == requests, text[-4000:]
    assert all("GET /v1/disputes?q=138****0001 401" in line for line in lines), lines
    assert "13800000001" not in text


_LOGGED_AS_THE_SERVER_DOES = """
import logging.config
from mediation.cli import _uvicorn_logging

# The handlers' filters alone (records made before the redacting factory is installed, or elsewhere).
logging.config.dictConfig(_uvicorn_logging())
logging.getLogger("mediation.access").info("GET /v1/disputes?q=%s 200", "13800000001")
logging.getLogger("uvicorn.error").info("Application startup complete.")
# As uvicorn's access log writes a request (uvicorn.protocols.http).
logging.getLogger("uvicorn.access").info(
    '%s - "%s %s HTTP/%s" %d', "127.0.0.1:50312", "GET", "/v1/disputes?q=13800000001", "1.1", 200
)
"""


def test_every_log_line_starts_with_an_iso_8601_timestamp_and_stays_redacted(tmp_path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MEDIATION_")}
    # The process's own zone, written as its offset.
    environment["TZ"] = "Asia/Shanghai"
    done = subprocess.run(
        [sys.executable, "-c", _LOGGED_AS_THE_SERVER_DOES],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    service, server = done.stderr.splitlines(), done.stdout.splitlines()
    stamped = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+08:00 "  # in the process's zone
    assert len(service) == 2 and len(server) == 1, (service, server)
    assert re.fullmatch(
        stamped + r"INFO mediation\.access: GET /v1/disputes\?q=138\*\*\*\*0001 200", service[0]
    )
    assert re.fullmatch(stamped + r"INFO uvicorn\.error: Application startup complete\.", service[1])
    assert re.fullmatch(
        stamped
        + r'INFO uvicorn\.access: 127\.0\.0\.1:50312 - "GET /v1/disputes\?q=138\*\*\*\*0001 HTTP/1\.1" 200',
        server[0],
    )
