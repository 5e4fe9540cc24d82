"""The parties' status lookup against one guesser with many addresses, over real HTTP on SQLite
and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.support import CSRF, Api


@asynccontextmanager
async def _client_from(app: Any, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from `address` (what the lookup's limit keys on)."""
    transport = httpx.ASGITransport(app=app, client=(address, 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as client:
        yield client


@pytest.mark.parametrize("overrides", [{"anonymous_rate_limit_per_minute": 3}], ids=["3-per-minute"])
async def test_query_codes_cannot_be_guessed_past_the_limit_from_one_ipv6_network(api: Api) -> None:
    """An IPv6 subscriber is given a whole /64 (RFC 6177; a phone on a mobile network changes the
    address inside it at will, RFC 8981): one address after another of it is still one guesser,
    and counts against one limit, through the API as on the page. Another network has its own."""
    dispute = await api.intake()
    right = {"case_number": dispute["case_number"], "query_code": dispute["query_code"]}
    wrong = {**right, "query_code": "WRONGCODE"}
    for host in range(1, 4):
        async with _client_from(api.app, f"2001:db8:1:2::{host:x}") as guesser:
            answer = await guesser.post("/v1/status-lookup", json=wrong)
            assert answer.status_code == 404, answer.text
    async with _client_from(api.app, "2001:db8:1:2:ffff:ffff:ffff:fffe") as guesser:
        refused = await guesser.post("/v1/status-lookup", json=right)
        assert refused.status_code == 429, refused.text
        guesser.cookies.set("mediation_csrf", CSRF)
        page = await guesser.post("/lookup", data={**right, "csrf": CSRF})
        assert page.status_code == 429, page.text[:2000]
    async with _client_from(api.app, "2001:db8:1:3::1") as party:
        answered = await party.post("/v1/status-lookup", json=right)
        assert answered.status_code == 200, answered.text


@pytest.mark.parametrize("overrides", [{"anonymous_rate_limit_per_minute": 3}], ids=["3-per-minute"])
async def test_an_ipv4_address_written_as_ipv6_shares_the_limit_of_that_ipv4_address(api: Api) -> None:
    """A dual-stack listener sees an IPv4 caller as ::ffff:a.b.c.d; the same caller is one guesser
    whichever way its address is written, and IPv4 neighbours keep limits of their own."""
    dispute = await api.intake()
    wrong = {"case_number": dispute["case_number"], "query_code": "WRONGCODE"}
    for address in ("198.51.100.7", "::ffff:198.51.100.7", "198.51.100.7"):
        async with _client_from(api.app, address) as guesser:
            assert (await guesser.post("/v1/status-lookup", json=wrong)).status_code == 404
    async with _client_from(api.app, "::ffff:198.51.100.7") as guesser:
        assert (await guesser.post("/v1/status-lookup", json=wrong)).status_code == 429
    async with _client_from(api.app, "198.51.100.8") as neighbour:
        assert (await neighbour.post("/v1/status-lookup", json=wrong)).status_code == 404
