"""Behind a reverse proxy: whose forwarded addresses `mediation serve` believes.

The client address is what the per-address limits count (sign-in, the party's status lookup, the
online application) and what the audit trail records. Behind a proxy on another host, every caller
arrives from the proxy's one address; unless the proxy is trusted (`MEDIATION_FORWARDED_ALLOW_IPS`),
they all share its bucket, twenty sign-ins a minute for the whole center.
"""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from mediation.core.settings import Settings
from tests.test_faults import serve


async def _sign_in(served_url: str, username: str, forwarded_for: str) -> int:
    async with httpx.AsyncClient(base_url=served_url, timeout=10) as client:
        response = await client.post(
            "/v1/auth/token",
            json={"username": username, "password": "not the password"},
            headers={"X-Forwarded-For": forwarded_for},
        )
        return response.status_code


async def test_a_trusted_proxys_callers_are_told_apart_by_their_forwarded_address(settings, tmp_path):
    async with serve(settings, tmp_path, anonymous_rate_limit_per_minute=1) as served:
        # The proxy is this host (127.0.0.1, trusted by default): two residents behind it.
        assert await _sign_in(served.url, "first", "203.0.113.7") == 401
        assert await _sign_in(served.url, "second", "203.0.113.8") == 401
        assert await _sign_in(served.url, "third", "203.0.113.7") == 429


async def test_forwarded_addresses_from_a_proxy_not_listed_are_not_believed(settings, tmp_path):
    async with serve(
        settings, tmp_path, anonymous_rate_limit_per_minute=1, forwarded_allow_ips="10.20.30.0/24"
    ) as served:
        # 127.0.0.1 is not a listed proxy: what it says a caller's address is counts for nothing,
        # so a caller cannot get a fresh bucket by making addresses up.
        assert await _sign_in(served.url, "first", "203.0.113.7") == 401
        assert await _sign_in(served.url, "second", "203.0.113.8") == 429


@pytest.mark.parametrize("value", ["10.0.0.1", "10.0.0.0/8, 192.168.1.5", "*", "::1,127.0.0.1"])
def test_proxies_are_addresses_networks_or_everyone(value: str) -> None:
    assert Settings(forwarded_allow_ips=value).forwarded_allow_ips == ",".join(
        part.strip() for part in value.split(",")
    )


@pytest.mark.parametrize("value", ["", "proxy.internal", "10.0.0.1,,10.0.0.2", "10.0.0.0/33"])
def test_anything_else_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValidationError, match="forwarded_allow_ips"):
        Settings(forwarded_allow_ips=value)
