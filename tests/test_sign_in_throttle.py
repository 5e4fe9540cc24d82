"""Wrong passwords are held against where they come from (等保 level 3, GB/T 22239-2019 8.1.4.1 b:
登录失败处理), so they are no lever against the account's owner: a stranger who knows a clerk's user
name and fails the password from elsewhere is locked out, the clerk at the center's own address is
not. Guessing stays bounded: one address locks the account for itself after a few tries and waits
longer and longer once it has failed many; many addresses together lock the account everywhere
but at the addresses it signed in from lately.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mediation.audit.models import AuditRecord
from mediation.core.db import utcnow
from tests.support import CSRF, Api
from tests.test_faults import serve

PASSWORD = "correct horse battery staple"  # every test user's (tests/support.py)
CLERK = "test-clerk-center"
CENTER = "198.51.100.10"  # the center's own address: the clerk's window
STRANGER = "203.0.113.66"


@asynccontextmanager
async def _from(app: Any, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser or client whose requests come from `address`, the CSRF cookie set."""
    transport = httpx.ASGITransport(app=app, client=(address, 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as client:
        client.cookies.set("mediation_csrf", CSRF)
        yield client


async def _sign_in(client: httpx.AsyncClient, password: str, username: str = CLERK) -> httpx.Response:
    return await client.post("/v1/auth/token", json={"username": username, "password": password})


async def _web_login(client: httpx.AsyncClient, password: str, username: str = CLERK) -> httpx.Response:
    form = {"username": username, "password": password, "next": "", "csrf": CSRF}
    return await client.post("/login", data=form)


def _code(response: httpx.Response) -> str | None:
    code: str | None = response.json().get("code")
    return code


class _Moment:
    """The throttle's time, standing still until moved on (waits are whole seconds)."""

    def __init__(self, app: Any) -> None:
        self.at = utcnow()
        app.state.identity.throttle.now = lambda: self.at

    def advance(self, by: timedelta) -> None:
        self.at += by


async def test_a_stranger_failing_the_clerks_password_does_not_lock_the_clerk_out_at_the_window(
    api: Api, app: Any
) -> None:
    # Twenty wrong passwords from four addresses: each address locks the account for itself.
    for n in range(4):
        async with _from(app, f"{STRANGER[:-2]}{n + 10}") as stranger:
            statuses = [(await _sign_in(stranger, f"guess {n}.{i}")).status_code for i in range(5)]
            assert statuses == [401] * 5
            refused = await _sign_in(stranger, PASSWORD)  # even the right password, from there
            assert refused.status_code == 401 and _code(refused) == "account_locked", refused.text
    # The clerk at the center's address signs in, on the page and through the API.
    async with _from(app, CENTER) as window:
        page = await _web_login(window, PASSWORD)
        assert page.status_code == 303, page.text[:500]
        signed_in = await _sign_in(window, PASSWORD)
        assert signed_in.status_code == 200, signed_in.text


async def test_the_clerks_own_wrong_passwords_still_lock_the_account_at_the_window(
    api: Api, app: Any
) -> None:
    async with _from(app, CENTER) as window:
        assert [(await _sign_in(window, "wrong password")).status_code for _ in range(5)] == [401] * 5
        locked = await _web_login(window, PASSWORD)
        assert locked.status_code == 401 and "锁定" in locked.text
    async with _from(app, STRANGER) as elsewhere:
        # From another address the right password still signs in: a guesser there has no lock.
        assert (await _sign_in(elsewhere, PASSWORD)).status_code == 200


@pytest.mark.parametrize("overrides", [{"sign_in_account_max_failures": 8}], ids=["account-wide-at-8"])
async def test_many_addresses_lock_the_account_everywhere_but_where_it_signed_in_lately(
    api: Api, app: Any
) -> None:
    async with _from(app, CENTER) as window:
        assert (await _sign_in(window, PASSWORD)).status_code == 200  # a sign-in of last week
    for n in range(2):
        async with _from(app, f"203.0.113.{n + 1}") as stranger:
            assert [(await _sign_in(stranger, "wrong password")).status_code for _ in range(4)] == [401] * 4
    # Eight from two addresses, four each (under the per-address five): locked everywhere ...
    async with _from(app, "203.0.113.3") as third:
        refused = await _sign_in(third, PASSWORD)
        assert refused.status_code == 401 and _code(refused) == "account_locked", refused.text
    # ... but at the address the clerk signed in from.
    async with _from(app, CENTER) as window:
        assert (await _sign_in(window, PASSWORD)).status_code == 200
    async with _from(app, "203.0.113.4") as fourth:
        # And that sign-in did not lift the lock for the others.
        refused = await _sign_in(fourth, PASSWORD)
        assert refused.status_code == 401 and _code(refused) == "account_locked", refused.text
    async with app.state.db.reader() as session:
        records = list(
            (
                await session.scalars(
                    select(AuditRecord).where(AuditRecord.action == "sign_in").order_by(AuditRecord.seq)
                )
            ).all()
        )
    [locking] = [r for r in records if "account_locked_until" in r.details]
    assert locking.client_address == "203.0.113.2"


async def test_an_address_that_keeps_failing_waits_longer_and_longer(api: Api, app: Any) -> None:
    moment = _Moment(app)
    async with _from(app, STRANGER) as stranger:
        # Ten wrong sign-ins over many names (twice the per-account limit) are free.
        for n in range(11):
            response = await _sign_in(stranger, "wrong password", f"someone-{n}")
            assert response.status_code == 401, (n, response.text)
        waited = await _sign_in(stranger, PASSWORD)
        assert waited.status_code == 429 and waited.headers["retry-after"] == "1", waited.text
        assert waited.json()["type"] == "/problems/rate-limited"
        moment.advance(timedelta(seconds=1))
        assert (await _sign_in(stranger, "wrong password", "someone-else")).status_code == 401
        # The next wait is twice as long, and the sign-in page says it in Chinese.
        page = await _web_login(stranger, PASSWORD)
        assert page.status_code == 429 and page.headers["retry-after"] == "2"
        assert "请 2 秒后再试" in page.text and "text/html" in page.headers["content-type"]
    # Another address does not wait.
    async with _from(app, CENTER) as window:
        assert (await _sign_in(window, PASSWORD)).status_code == 200


@pytest.mark.parametrize("overrides", [{"anonymous_rate_limit_per_minute": 100}], ids=["100-per-minute"])
async def test_a_right_password_ends_an_addresss_wait(api: Api, app: Any) -> None:
    moment = _Moment(app)
    async with _from(app, CENTER) as window:
        for n in range(11):
            assert (await _sign_in(window, "typo", f"someone-{n}")).status_code == 401
        moment.advance(timedelta(seconds=1))
        assert (await _sign_in(window, PASSWORD)).status_code == 200
        # The clerks' typing errors before it no longer count.
        for n in range(10):
            assert (await _sign_in(window, "typo", f"someone-{n}")).status_code == 401


async def test_an_administrator_unlocking_the_account_lifts_its_lock_at_every_address(
    api: Api, app: Any
) -> None:
    async with _from(app, STRANGER) as stranger:
        for _ in range(5):
            await _sign_in(stranger, "wrong password")
        assert _code(await _sign_in(stranger, PASSWORD)) == "account_locked"
    clerk_id = str(api.users[("clerk", api.bodies["center"])])
    done = await api.client.post(f"/v1/users/{clerk_id}/activate", headers=api.auth("admin"))
    assert done.status_code == 200, done.text
    async with _from(app, STRANGER) as stranger:
        assert (await _sign_in(stranger, PASSWORD)).status_code == 200


async def test_a_lock_at_an_address_ends_by_itself(api: Api, app: Any) -> None:
    moment = _Moment(app)
    async with _from(app, STRANGER) as stranger:
        for _ in range(5):
            await _sign_in(stranger, "wrong password")
        assert _code(await _sign_in(stranger, PASSWORD)) == "account_locked"
        moment.advance(timedelta(minutes=15, seconds=1))
        assert (await _sign_in(stranger, PASSWORD)).status_code == 200


async def test_behind_a_trusted_proxy_the_forwarded_address_is_what_is_locked(
    api: Api, settings: Any, tmp_path: Any
) -> None:
    async with (
        serve(settings, tmp_path) as served,
        httpx.AsyncClient(base_url=served.url, timeout=10) as client,
    ):

        async def sign_in(password: str, forwarded_for: str) -> httpx.Response:
            return await client.post(
                "/v1/auth/token",
                json={"username": CLERK, "password": password},
                headers={"X-Forwarded-For": forwarded_for},
            )

        for _ in range(5):
            assert (await sign_in("wrong password", STRANGER)).status_code == 401
        refused = await sign_in(PASSWORD, STRANGER)
        assert refused.status_code == 401 and _code(refused) == "account_locked"
        # The proxy is one address (127.0.0.1) for both: the clerk behind it is told apart.
        assert (await sign_in(PASSWORD, CENTER)).status_code == 200


async def test_addresses_of_one_ipv6_network_count_as_one_place_for_wrong_passwords(
    api: Api, app: Any
) -> None:
    """An IPv6 subscriber holds a whole /64 (RFC 6177) and may take a new address in it for every
    try (RFC 8981): five wrong passwords from five addresses of it lock the account for the
    network, as five from one address would. The center's window elsewhere is not locked."""
    for n in range(5):
        async with _from(app, f"2001:db8:66:1::{n + 1:x}") as stranger:
            assert (await _sign_in(stranger, f"guess {n}")).status_code == 401
    async with _from(app, "2001:db8:66:1:abcd::9") as stranger:
        refused = await _sign_in(stranger, PASSWORD)
        assert refused.status_code == 401 and _code(refused) == "account_locked", refused.text
        page = await _web_login(stranger, PASSWORD)
        assert page.status_code != 303, page.text[:500]
    async with _from(app, "2001:db8:66:2::1") as window:
        assert (await _sign_in(window, PASSWORD)).status_code == 200


@pytest.mark.parametrize("overrides", [{"anonymous_rate_limit_per_minute": 3}], ids=["3-per-minute"])
async def test_the_online_application_limit_counts_an_ipv6_network_once(api: Api, app: Any) -> None:
    """The online application form's per-minute limit is the anonymous limit, counted per network."""
    statuses = []
    for n in range(4):
        async with _from(app, f"2001:db8:77:1::{n + 1:x}") as applicant:
            statuses.append((await applicant.post("/apply", data={"csrf": CSRF})).status_code)
    assert statuses[:3] != [429] * 3 and statuses[3] == 429, statuses
