"""Limits that keep one caller from exhausting the service: request rates (per principal, and per
client address for the anonymous endpoints), body size, page size and request time.

Each test builds its app with the limit under test lowered, through the `overrides` fixture.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import Request
from sqlalchemy import func, select, text

from mediation.bodies.models import Body
from mediation.core.db import UnitOfWorkRoute, session_of
from mediation.core.errors import TooManyRequests
from mediation.core.ratelimit import RateLimiter
from mediation.disputes.models import Dispute
from tests.support import intake_body

PASSWORD = "correct horse battery staple"  # every test user's (tests/support.py)


def _problem(response: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == type_ and body["status"] == status and body["title"]
    return body


def _retry_after(response: httpx.Response, at_most: int) -> int:
    value = response.headers["retry-after"]
    assert value.isdigit(), value
    seconds = int(value)
    assert 1 <= seconds <= at_most
    return seconds


@asynccontextmanager
async def _client_from(app: Any, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from `address` (what the anonymous limits key on)."""
    transport = httpx.ASGITransport(app=app, client=(address, 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as client:
        yield client


async def _count(api, model: Any) -> int:
    async with api.app.state.db.reader() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


# ---- rate limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [{"rate_limit_per_minute": 5}], ids=["5-per-minute"])
async def test_a_principal_over_its_rate_is_refused_with_429(api):
    for _ in range(5):
        assert (await api.client.get("/v1/disputes")).status_code == 200
    refused = await api.client.get("/v1/disputes")
    problem = _problem(refused, 429, "/problems/rate-limited")
    seconds = _retry_after(refused, at_most=12)  # one token comes back every 60/5 s
    assert problem["retry_after_seconds"] == seconds

    # The limit is the principal's, across endpoints, and a refused write changes nothing.
    before = await _count(api, Dispute)
    write = await api.client.post("/v1/disputes", json=intake_body())
    _problem(write, 429, "/problems/rate-limited")
    assert await _count(api, Dispute) == before

    # Other principals have buckets of their own: another user, a user elsewhere, a machine key.
    for headers in (
        api.headers("supervisor"),
        api.headers("clerk", "other_center"),
        api.headers("body_mediator"),
        api.headers("court"),
    ):
        assert (await api.client.get("/v1/disputes", headers=headers)).status_code == 200
    # The anonymous endpoints key on the address, not on this principal.
    signed_in = await api.client.post(
        "/v1/auth/token", json={"username": "test-auditor-none", "password": PASSWORD}
    )
    assert signed_in.status_code == 200, signed_in.text


@pytest.mark.parametrize("overrides", [{"rate_limit_per_minute": 4}], ids=["4-per-minute"])
async def test_an_api_key_and_its_rotated_successor_share_one_allowance(api):
    """During a rotation the old key works on beside the new one; a client sending with both has
    the one allowance, not one per key. Another key of the same body keeps its own."""
    owner = await api.signed_in("body_admin", "village")

    async def new_key() -> dict[str, Any]:
        created = await api.client.post(
            "/v1/api-keys",
            json={"organisation_id": str(api.bodies["village"]), "role": "body_mediator", "name": "对接"},
            headers=owner,
        )
        assert created.status_code == 201, created.text
        return dict(created.json())

    old = await new_key()
    rotated = await api.client.post(f"/v1/api-keys/{old['id']}/rotate", headers=owner)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    other = await new_key()

    def sent_with(key: dict[str, Any]) -> Any:
        return api.client.get("/v1/disputes", headers={"X-API-Key": key["secret"], "Authorization": ""})

    for key in (old, new, old, new):
        assert (await sent_with(key)).status_code == 200
    for key in (new, old):
        refused = await sent_with(key)
        _problem(refused, 429, "/problems/rate-limited")
        _retry_after(refused, at_most=15)
    for _ in range(4):
        assert (await sent_with(other)).status_code == 200
    _problem(await sent_with(other), 429, "/problems/rate-limited")


@pytest.mark.parametrize("overrides", [{"anonymous_rate_limit_per_minute": 3}], ids=["3-per-minute"])
async def test_status_lookup_is_limited_per_client_address(api):
    dispute = await api.intake()
    right = {"case_number": dispute["case_number"], "query_code": dispute["query_code"]}
    wrong = {**right, "query_code": "WRONGCODE"}
    async with _client_from(api.app, "198.51.100.7") as guesser:
        for _ in range(3):
            _problem(await guesser.post("/v1/status-lookup", json=wrong), 404, "/problems/not-found")
        # Even the right code is refused now: the limit is what keeps query codes from being guessed.
        refused = await guesser.post("/v1/status-lookup", json=right)
        problem = _problem(refused, 429, "/problems/rate-limited")
        assert problem["retry_after_seconds"] == _retry_after(refused, at_most=20)
        # Sign-in from the same address has a bucket of its own.
        signed_in = await guesser.post(
            "/v1/auth/token", json={"username": "test-clerk-center", "password": PASSWORD}
        )
        assert signed_in.status_code == 200, signed_in.text
    async with _client_from(api.app, "198.51.100.8") as party:
        answered = await party.post("/v1/status-lookup", json=right)
        assert answered.status_code == 200, answered.text
        assert answered.json()["status"] == "registered"
    # Signed-in callers are limited per principal, not by the anonymous bucket of their address.
    assert (await api.client.get("/v1/disputes")).status_code == 200


@pytest.mark.parametrize("overrides", [{"anonymous_rate_limit_per_minute": 3}], ids=["3-per-minute"])
async def test_sign_in_is_limited_per_address_and_per_account_at_it(api):
    async with _client_from(api.app, "198.51.100.20") as first:
        attempts = [
            ("test-clerk-center", PASSWORD, 200),
            ("test-supervisor-center", "wrong password", 401),
            ("nobody-at-all", "wrong password", 401),
        ]
        for username, password, status in attempts:
            response = await first.post("/v1/auth/token", json={"username": username, "password": password})
            assert response.status_code == status, response.text
        refused = await first.post(
            "/v1/auth/token", json={"username": "test-supervisor-center", "password": PASSWORD}
        )
        _problem(refused, 429, "/problems/rate-limited")
        _retry_after(refused, at_most=20)
        # The status lookup from this address is a different bucket.
        lookup = await first.post("/v1/status-lookup", json={"case_number": "x", "query_code": "WRONG"})
        _problem(lookup, 404, "/problems/not-found")
    async with _client_from(api.app, "198.51.100.21") as second:
        # The refused attempt above never reached the account's bucket: it still has room.
        response = await second.post(
            "/v1/auth/token", json={"username": "test-supervisor-center", "password": PASSWORD}
        )
        assert response.status_code == 200, response.text

    # Guessing one account's password from many addresses uses up no bucket the account's owner
    # draws on at their own address (a stranger could keep them out with it): those guesses are
    # bounded by the account-wide count of wrong passwords (tests/test_sign_in_throttle.py).
    statuses = []
    for i in range(4):
        async with _client_from(api.app, f"203.0.113.{i + 1}") as client:
            response = await client.post(
                "/v1/auth/token", json={"username": "test-auditor-none", "password": f"guess {i}"}
            )
            statuses.append(response.status_code)
    assert statuses == [401, 401, 401, 401]
    async with _client_from(api.app, "198.51.100.22") as owner:
        response = await owner.post(
            "/v1/auth/token", json={"username": "test-auditor-none", "password": PASSWORD}
        )
        assert response.status_code == 200, response.text


def test_rate_limiter_refills_with_time():
    clock = [1000.0]
    limiter = RateLimiter(2, now=lambda: clock[0])  # 2 a minute: one token every 30 s
    assert limiter.retry_after("a") == 0 and limiter.retry_after("a") == 0
    assert limiter.retry_after("a") == pytest.approx(30.0)
    assert limiter.retry_after("b") == 0  # keys do not share tokens

    clock[0] += 15  # half a token back
    assert limiter.retry_after("a") == pytest.approx(15.0)
    with pytest.raises(TooManyRequests) as refused:
        limiter.check("a")
    assert refused.value.http_status == 429
    assert refused.value.headers == {"Retry-After": "15"}
    assert refused.value.extensions["retry_after_seconds"] == 15

    clock[0] += 15  # a whole token
    limiter.check("a")
    assert limiter.retry_after("a") == pytest.approx(30.0)

    # Idle for an hour: the bucket holds at most its capacity, not sixty minutes' worth.
    clock[0] += 3600
    assert [limiter.retry_after("a") for _ in range(3)] == [0, 0, pytest.approx(30.0)]

    # A fraction of a second to wait is still announced as a whole second.
    clock[0] += 29.5
    with pytest.raises(TooManyRequests) as almost:
        limiter.check("a")
    assert almost.value.headers["Retry-After"] == "1"


def test_rate_limiter_forgets_full_buckets_when_its_table_grows():
    clock = [0.0]
    limiter = RateLimiter(2, max_keys=2, now=lambda: clock[0])
    limiter.retry_after("a")
    limiter.retry_after("b")
    clock[0] += 60  # both full again
    limiter.retry_after("c")
    assert set(limiter.buckets) == {"c"}
    # A bucket that is not full is never forgotten: its caller would get fresh tokens.
    limiter.retry_after("d")
    limiter.retry_after("e")
    assert {"c", "d", "e"} <= set(limiter.buckets)


# ---- body size -----------------------------------------------------------------------------------

LIMIT = 4096


def _intake_of_size(size: int) -> bytes:
    """An intake body of exactly `size` bytes (ASCII padding in the description)."""
    empty = json.dumps(intake_body(description=""), ensure_ascii=False).encode()
    padding = size - len(empty)
    assert padding >= 5
    raw = json.dumps(intake_body(description="x" * padding), ensure_ascii=False).encode()
    assert len(raw) == size
    return raw


async def _chunks(raw: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


@pytest.mark.parametrize("overrides", [{"max_body_bytes": LIMIT}], ids=["4KiB"])
async def test_bodies_over_the_limit_are_refused_with_413(api):
    json_headers = api.headers(**{"Content-Type": "application/json"})
    before = await _count(api, Dispute)

    over = await api.client.post("/v1/disputes", content=_intake_of_size(LIMIT + 1), headers=json_headers)
    problem = _problem(over, 413, "/problems/payload-too-large")
    assert str(LIMIT) in problem["detail"]
    chunked = await api.client.post(
        "/v1/disputes", content=_chunks(_intake_of_size(3 * LIMIT)), headers=json_headers
    )
    _problem(chunked, 413, "/problems/payload-too-large")
    # Anonymous endpoints too.
    token = await api.client.post(
        "/v1/auth/token",
        content=json.dumps({"username": "u" * LIMIT, "password": "p"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": ""},
    )
    _problem(token, 413, "/problems/payload-too-large")
    assert await _count(api, Dispute) == before

    # At the limit exactly, by either framing, the body is read and the case registered.
    exact = await api.client.post("/v1/disputes", content=_intake_of_size(LIMIT), headers=json_headers)
    assert exact.status_code == 201, exact.text
    streamed = await api.client.post(
        "/v1/disputes", content=_chunks(_intake_of_size(LIMIT)), headers=json_headers
    )
    assert streamed.status_code == 201, streamed.text
    assert await _count(api, Dispute) == before + 2


@pytest.mark.parametrize("overrides", [{"max_body_bytes": LIMIT}], ids=["4KiB"])
async def test_an_oversized_body_is_audited_as_refused_not_as_a_server_error(api):
    """The audit trail records refused writes with the status the caller got."""
    json_headers = api.headers(**{"Content-Type": "application/json"})
    for content in (_intake_of_size(LIMIT + 1), _chunks(_intake_of_size(3 * LIMIT))):
        response = await api.client.post("/v1/disputes", content=content, headers=json_headers)
        _problem(response, 413, "/problems/payload-too-large")
    async with api.app.state.db.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT outcome, status_code FROM audit_records WHERE action = 'register_dispute'")
            )
        ).all()
    # Whether the refusal is recorded at all is a choice; recording it as a 500 "error" is wrong.
    assert all((outcome, status) == ("rejected", 413) for outcome, status in rows), rows


# ---- page size -----------------------------------------------------------------------------------


async def test_page_size_is_capped_at_100(api):
    dispute = await api.intake()
    pages = [
        ("GET", "/v1/disputes", None),
        ("GET", f"/v1/disputes/{dispute['id']}/related", None),
        ("POST", "/v1/disputes/search-by-party", {"id_number": dispute["parties"][0]["id_number"]}),
    ]
    for method, url, body in pages:
        for limit in (101, 0, 10_000):
            response = await api.client.request(method, url, params={"limit": limit}, json=body)
            problem = _problem(response, 422, "/problems/validation-error")
            assert [(e["field"], e["location"]) for e in problem["errors"]] == [("limit", "query")]
        answered = await api.client.request(method, url, params={"limit": 100}, json=body)
        assert answered.status_code == 200, answered.text


# ---- request time --------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [{"request_timeout_seconds": 0.2}], ids=["0.2s"])
async def test_a_request_over_the_time_limit_answers_503_and_rolls_back(api):
    app = api.app

    # The handlers would run a minute: an answer within seconds can only be the limit's. The
    # margin is wide on purpose: a loaded machine can stall the event loop for a second or more
    # (a full garbage collection late in a long run), which says nothing about the limit.
    cancelled: list[str] = []

    async def stall(path: str) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(path)
            raise

    async def slow() -> dict[str, str]:
        await stall("/slow")
        return {"done": "too late"}

    marker = f"超时测试调解委员会 {uuid.uuid4().hex[:8]}"
    flushed = asyncio.Event()

    async def slow_write(request: Request) -> dict[str, str]:
        # Writes in the request's unit of work, then stalls holding the transaction.
        session = session_of(request)
        session.add(
            Body(
                id=uuid.uuid4(),
                name=marker,
                kind="people_mediation_committee",
                tier="village",
                region_code="330681105201",
                active=True,
                created_at=datetime.now(UTC),
            )
        )
        await session.flush()
        flushed.set()
        await stall("/slow-write")
        return {"done": "too late"}

    app.add_api_route("/slow", slow)
    app.router.add_api_route(
        "/slow-write", slow_write, methods=["POST"], route_class_override=UnitOfWorkRoute
    )

    for method, path in (("GET", "/slow"), ("POST", "/slow-write")):
        started = time.perf_counter()
        response = await api.client.request(method, path)
        elapsed = time.perf_counter() - started
        problem = _problem(response, 503, "/problems/request-timeout")
        assert response.headers["retry-after"] == "1"
        assert "0.2" in problem["detail"]
        assert elapsed < 5, f"{path} answered after {elapsed:.2f} s"

    assert cancelled == ["/slow", "/slow-write"]  # the handlers were stopped, not left running
    assert flushed.is_set()  # the row was written before the time ran out

    # The stalled transaction was rolled back and released its locks: a new write goes through.
    async def write_and_count() -> int:
        async with app.state.db.writer() as session, session.begin():
            session.add(
                Body(
                    id=uuid.uuid4(),
                    name="超时之后",
                    kind="people_mediation_committee",
                    tier="village",
                    region_code="330681105201",
                    active=True,
                    created_at=datetime.now(UTC),
                )
            )
        async with app.state.db.reader() as session:
            return int(await session.scalar(select(func.count()).where(Body.name == marker)) or 0)

    assert await asyncio.wait_for(write_and_count(), timeout=5) == 0
    # Quick requests are unaffected by the limit.
    assert (await api.client.get("/v1/lifecycle")).status_code == 200
