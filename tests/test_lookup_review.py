"""The parties' status lookup, over real HTTP on SQLite and PostgreSQL: one guesser with many
addresses, and what a party is told to do next."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from mediation.disputes.models import Dispute
from mediation.disputes.service import hash_query_code
from tests.support import CSRF, Api
from tests.test_guards import _agreement_effective_on
from tests.test_web import Page, signed_in


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


async def _known_code(api: Api, dispute: dict[str, Any]) -> str:
    """A query code for a case driven through its steps (the intake's answer, which prints it, is
    not kept along the way): set as the intake sets it."""
    code = "KNWN2345"
    async with api.app.state.db.writer() as session, session.begin():
        await session.execute(
            update(Dispute)
            .where(Dispute.id == uuid.UUID(dispute["id"]))
            .values(query_code_hash=hash_query_code(dispute["case_number"], code))
        )
    return code


async def _looked_up(api: Api, web: httpx.AsyncClient, dispute: dict[str, Any], code: str) -> tuple[str, str]:
    """The next step the party is told, through the API and on the page."""
    answer = await api.client.post(
        "/v1/status-lookup",
        json={"case_number": dispute["case_number"], "query_code": code},
        headers={"Authorization": ""},
    )
    assert answer.status_code == 200, answer.text
    page = await Page(web).post("/lookup", {"case_number": dispute["case_number"], "query_code": code})
    assert page.status_code == 200, page.text[:2000]
    return answer.json()["next_step"], page.text


async def test_a_party_is_not_told_to_apply_for_confirmation_after_the_period_ended(
    api: Api, web: httpx.AsyncClient, clock: Any
) -> None:
    """民事诉讼法 Art. 205: the joint application for judicial confirmation is made within 30 days of
    the agreement taking effect; past that the court takes none (the service refuses it too). A
    party looking up the case on day 31 was still told it may apply within thirty days. It is
    told the last day while it may, and, after it, what is left (人民调解法 Art. 32: a dispute
    over the agreement's performance goes to court)."""
    dispute = await _agreement_effective_on(api, clock, date(2026, 3, 2))
    code = await _known_code(api, dispute)
    clock.at += timedelta(days=30)
    step, page = await _looked_up(api, web, dispute, code)
    assert "2026-04-01" in step and "司法确认" in step
    assert step in page
    clock.at += timedelta(days=1)
    step, page = await _looked_up(api, web, dispute, code)
    assert "期限已过" in step and "起诉" in step and "三十日内" not in step
    assert step in page


async def test_a_reprinted_receipt_tells_the_confirmation_period_as_the_lookup_does(
    api: Api, web: httpx.AsyncClient, clock: Any
) -> None:
    """The receipt reprinted for a party at the window says the same as the lookup: the last day
    to apply for confirmation while it may, and after it that the period has passed."""
    dispute = await _agreement_effective_on(api, clock, date(2026, 3, 2))
    clock.at += timedelta(days=30)
    page = signed_in(web, api)
    receipt = await page.get(f"/cases/{dispute['id']}/receipt")
    # A paper, dated as papers are (the lookup's screen says 2026-04-01).
    assert receipt.status_code == 200 and "2026年4月1日" in receipt.text, receipt.text[:2000]
    clock.at += timedelta(days=1)
    receipt = await page.get(f"/cases/{dispute['id']}/receipt")
    assert "期限已过" in receipt.text and "三十日内" not in receipt.text
