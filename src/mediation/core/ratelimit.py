"""Token-bucket rate limiting, in process.

Each key (a principal, or a client address for anonymous endpoints) has a bucket holding up to
`per_minute` tokens, refilled continuously. In a deployment with several processes each keeps its
own buckets, so the effective limit is per process; a shared limiter belongs at the gateway.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable

from mediation.core.errors import TooManyRequests
from mediation.core.i18n import Text


class RateLimiter:
    def __init__(
        self, per_minute: int, *, max_keys: int = 100_000, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.max_keys = max_keys
        self.now = now
        self.buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated_at)

    def retry_after(self, key: str) -> float:
        """Take one token for `key`; 0 when allowed, else the seconds until one is available."""
        now = self.now()
        tokens = self._tokens(key, now)
        if tokens >= 1:
            self.buckets[key] = (tokens - 1, now)
            self._bound()
            return 0.0
        self.buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate

    def _tokens(self, key: str, now: float) -> float:
        tokens, updated = self.buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - updated) * self.rate)

    def check(self, key: str) -> None:
        self._refuse(self.retry_after(key))

    def give_back(self, key: str) -> None:
        """Return the token `check` took for `key`: for an endpoint whose failures alone count (a
        right query code costs the party nothing). Taken first and given back after, not counted
        after the fact: requests sent at once each hold their token while they run."""
        now = self.now()
        self.buckets[key] = (min(self.capacity, self._tokens(key, now) + 1), now)

    @staticmethod
    def _refuse(wait: float) -> None:
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise TooManyRequests(
                Text("请求过于频繁, 请 {s} 秒后再试", "Too many requests; retry in {s} s").format(s=seconds),
                headers={"Retry-After": str(seconds)},
                retry_after_seconds=seconds,
            )

    def _bound(self) -> None:
        # Full buckets carry no information: drop them when the table grows too large.
        if len(self.buckets) <= self.max_keys:
            return
        now = self.now()
        full = [k for k, (t, u) in self.buckets.items() if t + (now - u) * self.rate >= self.capacity]
        for key in full:
            del self.buckets[key]


def caller_network(address: str) -> str:
    """The bucket of an anonymous caller at `address`: an IPv6 address by its /64, an IPv4 one as
    it is. An IPv6 subscriber is handed a whole /64 (RFC 6177), and a phone picks new addresses in
    it at will (RFC 8981): keyed on the full address, every new one would be a fresh bucket. An
    IPv4 address a dual-stack listener reports as ::ffff:a.b.c.d is that IPv4 address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an address ("unknown", a test client's name): a bucket of its own
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
