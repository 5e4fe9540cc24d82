"""A request from its first byte to its last: what a failure after the answer was made gives back
(the idempotency key), what the time limit covers (the handler's work, not the client's line speed),
how long a long poll may wait, and which disclosures of personal data reach the audit trail when the
answer is a replay or a refusal. Over real HTTP through the ASGI app, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from mediation.alerts.service import AlertService
from mediation.app import create_app
from mediation.core.clock import FrozenClock
from mediation.core.settings import Settings
from mediation.disputes.models import Dispute
from mediation.documents.service import DocumentService
from mediation.events.router import TIME_LIMIT_MARGIN_SECONDS
from tests.conftest import DEFAULT_NOW, TEST_SECRETS
from tests.support import Api, at_beijing, intake_body, resident_id
from tests.test_audit import by_request_id, records
from tests.test_documents import PDF_HEAD, docs_url, pdf, problem, snapshot, staging_leftovers, uploaded
from tests.test_supervision_and_warning import _wage_claim
from tests.test_web import signed_in

# A time limit of two seconds, so the tests see it run out (the long poll kept within it).
TWO_SECONDS = {"request_timeout_seconds": 2.0, "feed_max_wait_seconds": 1.0}


async def _cases(api: Api) -> int:
    async with api.app.state.db.reader() as session:
        return int(await session.scalar(select(func.count()).select_from(Dispute)) or 0)


def _failing_once_before_commit(app: Any, failure: Any) -> list[int]:
    """The first request to commit meets `failure` where its events are numbered, just before its
    commit, after its handler made its answer; later ones commit as usual."""
    hooks = list(app.state.before_commit)
    met: list[int] = []

    async def hook(session: Any) -> None:
        if not met:
            met.append(1)
            await failure()
        for original in hooks:
            await original(session)

    app.state.before_commit = [hook]
    return met


# ---- the idempotency key after a failure at the commit ---------------------------------------------


async def test_a_failure_at_the_commit_gives_the_key_back_for_the_retry(api: Api) -> None:
    async def journal_lock_timed_out() -> None:
        raise OperationalError("SELECT ... FOR UPDATE", {}, Exception("canceling statement due to timeout"))

    met = _failing_once_before_commit(api.app, journal_lock_timed_out)
    key = {"Idempotency-Key": "court-retry-1"}
    failed = await api.client.post("/v1/disputes", json=intake_body(), headers=key)
    assert met and failed.status_code == 503, failed.text
    assert failed.headers["retry-after"] == "1"
    assert await _cases(api) == 0

    # Retried as told, at once: the request runs afresh rather than answering 409 for a minute.
    retried = await api.client.post("/v1/disputes", json=intake_body(), headers=key)
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    again = await api.client.post("/v1/disputes", json=intake_body(), headers=key)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == retried.json()["id"]
    assert await _cases(api) == 1


@pytest.mark.parametrize("overrides", [TWO_SECONDS], ids=["2s"])
async def test_a_request_cut_off_by_the_time_limit_gives_the_key_back(api: Api) -> None:
    async def journal_lock_never_comes() -> None:
        await asyncio.sleep(60)

    met = _failing_once_before_commit(api.app, journal_lock_never_comes)
    key = {"Idempotency-Key": "court-retry-2"}
    started = time.perf_counter()
    cut_off = await api.client.post("/v1/disputes", json=intake_body(), headers=key)
    assert met and time.perf_counter() - started < 10
    problem(cut_off, 503, "request-timeout")
    assert cut_off.headers["retry-after"] == "1"

    retried = await api.client.post("/v1/disputes", json=intake_body(), headers=key)
    assert retried.status_code == 201, retried.text
    assert await _cases(api) == 1


# ---- the time limit: the handler's work, not the client's line ------------------------------------


def _multipart(parts: list[bytes], pause: float, boundary: str = "slowline") -> tuple[Any, dict[str, str]]:
    """A one-file upload sent in `parts`, `pause` seconds apart, as a slow line sends it."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="scan.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()

    async def body() -> AsyncIterator[bytes]:
        yield head + PDF_HEAD
        for part in parts:
            await asyncio.sleep(pause)
            yield part
        yield f"\r\n--{boundary}--\r\n".encode()

    return body(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


@pytest.mark.parametrize("overrides", [TWO_SECONDS], ids=["2s"])
async def test_a_slow_but_steady_upload_outlasts_the_time_limit(api: Api) -> None:
    dispute = await api.intake()
    part = b"1 0 obj << /Type /Page >> endobj\n" * 2000
    content, headers = _multipart([part] * 8, pause=0.5)
    started = time.perf_counter()
    response = await api.client.post(docs_url(dispute), content=content, headers=headers)
    assert time.perf_counter() - started > 2  # longer than a request may take, all of it sending
    assert response.status_code == 201, response.text
    assert response.json()["size"] == len(PDF_HEAD) + 8 * len(part)


@pytest.mark.parametrize("overrides", [TWO_SECONDS], ids=["2s"])
async def test_an_upload_that_stops_sending_is_refused(api: Api) -> None:
    dispute = await api.intake()
    before = await snapshot(api)
    content, headers = _multipart([b"% the rest never comes\n"], pause=30)
    started = time.perf_counter()
    response = await api.client.post(docs_url(dispute), content=content, headers=headers)
    assert time.perf_counter() - started < 10
    problem(response, 408, "request-body-timeout")
    assert response.headers["connection"] == "close"
    assert await snapshot(api) == before and staging_leftovers(api) == []


@pytest.mark.parametrize("overrides", [TWO_SECONDS], ids=["2s"])
async def test_an_upload_whose_handler_stalls_is_still_cut_off(api: Api, monkeypatch: Any) -> None:
    dispute = await api.intake()

    async def stalled(*args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr(DocumentService, "upload", stalled)
    started = time.perf_counter()
    response = await api.client.post(
        docs_url(dispute), files={"file": ("scan.pdf", pdf(4096), "application/pdf")}
    )
    assert time.perf_counter() - started < 10
    problem(response, 503, "request-timeout")


@pytest.mark.parametrize("overrides", [TWO_SECONDS], ids=["2s"])
async def test_a_slow_reader_gets_the_whole_download(api: Api) -> None:
    dispute = await api.intake()
    content = pdf(12 * 65536, "dossier")
    document = await uploaded(api, dispute, content)
    path = document["href"]
    headers = [(k.lower().encode(), v.encode()) for k, v in api.client.headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"host", b"mediation.test")],
        "client": ("127.0.0.1", 50_000),
        "server": ("mediation.test", 80),
    }
    got: dict[str, Any] = {"status": None, "body": b"", "complete": False}

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)  # the client says nothing more, and stays
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            got["status"] = message["status"]
        elif message["type"] == "http.response.body":
            await asyncio.sleep(0.25)  # the socket's buffer is full: the client reads slowly
            got["body"] += message.get("body", b"")
            got["complete"] = not message.get("more_body", False)

    started = time.perf_counter()
    await api.app(scope, receive, send)
    assert time.perf_counter() - started > 2
    assert got["status"] == 200
    assert got["complete"] and got["body"] == content


# ---- the long poll ---------------------------------------------------------------------------------


# As long a wait as a request may take: the long poll's longest before it was kept within the limit.
@pytest.mark.parametrize(
    "overrides", [{"request_timeout_seconds": 6.0, "feed_max_wait_seconds": 6.0}], ids=["6s"]
)
async def test_the_longest_long_poll_answers_its_page_within_the_time_limit(api: Api) -> None:
    court = api.auth("court")
    cursor = (await api.client.get("/v1/events", headers=court)).json()["next_cursor"]
    started = time.perf_counter()
    response = await api.client.get("/v1/events", params={"after": cursor, "wait": 60}, headers=court)
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": cursor}
    assert time.perf_counter() - started < 6


def test_a_long_poll_may_not_wait_as_long_as_a_request_may_take(tmp_path: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
            request_timeout_seconds=30,
            feed_max_wait_seconds=30,
            **TEST_SECRETS,
        )
    message = str(refused.value)
    assert "MEDIATION_FEED_MAX_WAIT_SECONDS" in message and "MEDIATION_REQUEST_TIMEOUT_SECONDS" in message
    # As shipped, the longest wait leaves the time limit its margin.
    fields = Settings.model_fields
    longest, limit = fields["feed_max_wait_seconds"].default, fields["request_timeout_seconds"].default
    assert longest <= limit - TIME_LIMIT_MARGIN_SECONDS


# ---- disclosures of personal data: replays and refusals (个人信息保护法 Art. 55) --------------------


async def test_a_replayed_answer_records_the_personal_data_it_shows(api: Api) -> None:
    key = {"Idempotency-Key": "hotline-replay-1"}
    first = await api.client.post("/v1/disputes", json=intake_body(), headers=key)
    assert first.status_code == 201, first.text
    replay = await api.client.post(
        "/v1/disputes", json=intake_body(), headers={**key, "X-Request-ID": "req-replay"}
    )
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["parties"][0]["id_number"] == resident_id(1)
    assert not [name for name in replay.headers if name.startswith(":")]  # the stored list is not sent

    read = [r for r in await by_request_id(api.app, "req-replay") if r.action == "pii.read"]
    assert [(r.object_id, r.outcome, r.status_code) for r in read] == [(first.json()["id"], "success", 201)]
    assert read[0].details["disputes"] == [first.json()["id"]]


async def test_a_refused_page_that_shows_the_case_records_the_disclosure(
    api: Api,
    web: httpx.AsyncClient,
) -> None:
    case = await api.intake()
    page = signed_in(web, api, "clerk")
    before = len(await records(api.app))
    refused = await page.post(
        f"/cases/{case['id']}/actions/accept",
        # Sent from the page showing the numbers: the refusal shows the case again as it was.
        {"version": '"0"', "idempotency_key": uuid.uuid4().hex, "show": "numbers"},
        headers={"X-Request-ID": "req-refused-page"},
    )
    assert refused.status_code == 412
    assert resident_id(1) in refused.text  # the case is shown again beside the refusal, unmasked

    written = await by_request_id(api.app, "req-refused-page")
    assert len(await records(api.app)) == before + 2
    assert [(r.action, r.outcome, r.status_code, r.object_id) for r in written] == [
        ("take_action", "rejected", 412, case["id"]),
        ("pii.read", "success", 412, case["id"]),
    ]
    assert written[1].details["disputes"] == [case["id"]]
    # Sent from the page as it opens, masked: shown again masked, with nothing disclosed to record.
    masked = await page.post(
        f"/cases/{case['id']}/actions/accept",
        {"version": '"0"', "idempotency_key": uuid.uuid4().hex},
        headers={"X-Request-ID": "req-refused-masked"},
    )
    assert masked.status_code == 412 and resident_id(1) not in masked.text
    assert [r.action for r in await by_request_id(api.app, "req-refused-masked")] == ["take_action"]


# ---- a versioned row changed under the flush ----------------------------------------------------


@pytest.mark.postgres_only  # SQLite runs one writer at a time: the second reads the new version
async def test_two_supervisors_handling_one_alert_at_once_one_is_told_it_changed(
    api: Api, monkeypatch: Any
) -> None:
    for n in range(6):
        at_beijing(api, date(2026, 6, 1 + min(n, 4)))  # 1-5 June
        await _wage_claim(api, n)
    supervisor = api.auth("supervisor")
    [alert] = (await api.client.get("/v1/alerts", params={"kind": "cluster"}, headers=supervisor)).json()[
        "items"
    ]
    etag = (await api.client.get(f"/v1/alerts/{alert['id']}", headers=supervisor)).headers["etag"]

    # Both read the alert at the same version before either writes.
    both_read = asyncio.Barrier(2)
    get = AlertService.get

    async def get_then_wait(self: AlertService, alert_id: uuid.UUID, principal: Any) -> Any:
        found = await get(self, alert_id, principal)
        await asyncio.wait_for(both_read.wait(), timeout=10)
        return found

    monkeypatch.setattr(AlertService, "get", get_then_wait)
    url = f"/v1/alerts/{alert['id']}"
    headers = {**supervisor, "If-Match": etag}
    acknowledged, resolved = await asyncio.gather(
        api.client.post(
            f"{url}/acknowledgement",
            json={"note": "已通知人社所"},
            headers={**headers, "X-Request-ID": "req-acknowledge"},
        ),
        api.client.post(
            f"{url}/resolution",
            json={"resolution": "联合约谈企业"},
            headers={**headers, "X-Request-ID": "req-resolve"},
        ),
    )
    assert sorted([acknowledged.status_code, resolved.status_code]) == [200, 412], (
        acknowledged.text,
        resolved.text,
    )
    loser, request_id = (
        (acknowledged, "req-acknowledge") if acknowledged.status_code == 412 else (resolved, "req-resolve")
    )
    problem(loser, 412, "stale-version")
    # The refusal is on record as what the caller was told, not as a server error.
    [refusal] = await by_request_id(api.app, request_id)
    assert (refusal.outcome, refusal.status_code) == ("rejected", 412)


async def test_an_app_shut_down_is_freed_with_everything_it_built(settings: Settings) -> None:
    """A process may build app after app (an embedding program, this suite): the first one's startup
    keeps what it built out of the collector's sight for good, but the later ones must be freed when
    they shut down, or every app the process ever built stays in memory."""

    async def run_one() -> weakref.ref[Any]:
        application = create_app(settings, FrozenClock(DEFAULT_NOW))
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as c:
                assert (await c.get("/healthz")).status_code == 200
        return weakref.ref(application)

    await run_one()  # the process's first app, if this test runs alone
    later = await run_one()
    gc.collect()
    assert later() is None
