"""Wrong passwords counted where they come from (等保 level 3, GB/T 22239-2019 8.1.4.1 b: 登录失败处理).

A lock on the account alone is a lever against its owner: whoever knows a clerk's user name could
type wrong passwords from anywhere and keep the clerk out at the window. So a run of wrong
passwords locks the account at the address they came from (`sign_in_max_failures` in a row), and an
address that keeps failing, whatever accounts it names, waits a growing delay before each further
try. The account-wide count, in the database (`count_failed_sign_in`), bounds guessing spread over
many addresses with a longer threshold; it spares the addresses the account signed in from before.

An address is counted by its network (`caller_network`: an IPv6 caller by its /64, from which it
may pick a new address for every try), and kept in the process, as the rate limiter's buckets are:
with several worker processes each counts its own share, which the account-wide count in the
database still bounds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from mediation.core.db import utcnow
from mediation.core.errors import TooManyRequests
from mediation.core.i18n import Text
from mediation.core.ratelimit import caller_network

# Wrong passwords an address may type in a row, over every account it names, before each further
# try waits; then the wait doubles from one second, up to `LONGEST_WAIT`. A center's clerks share
# its one address, and their typing errors must not slow each other down.
ADDRESS_FREE_FAILURES_PER_ACCOUNT_LIMIT = 2
LONGEST_WAIT = timedelta(minutes=1)


@dataclass(slots=True)
class _Run:
    """Wrong passwords in a row, the last one's time, and the lock they brought (if any)."""

    failures: int = 0
    last: datetime | None = None
    locked_until: datetime | None = None


class SignInThrottle:
    def __init__(
        self,
        max_failures: int,
        lock_for: timedelta,
        *,
        max_keys: int = 100_000,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.max_failures = max_failures
        self.lock_for = lock_for
        self.address_free_failures = ADDRESS_FREE_FAILURES_PER_ACCOUNT_LIMIT * max_failures
        self.max_keys = max_keys
        self.now = now
        self.pairs: dict[tuple[str, str], _Run] = {}  # (username, address) -> run
        self.addresses: dict[str, _Run] = {}

    def locked_here(self, username: str, address: str) -> datetime | None:
        """Until when the account is locked at this address, if it is."""
        address = caller_network(address)
        run = self.pairs.get((username, address))
        if run is None or run.locked_until is None:
            return None
        if run.locked_until > self.now():
            return run.locked_until
        # The lock is over: the count starts afresh.
        del self.pairs[(username, address)]
        return None

    def check_address(self, address: str) -> None:
        """Refuse (429, with how long to wait) a try from an address that must wait still."""
        address = caller_network(address)
        run = self.addresses.get(address)
        if run is None or run.last is None or run.failures <= self.address_free_failures:
            return
        wait = min(LONGEST_WAIT, timedelta(seconds=2 ** (run.failures - self.address_free_failures - 1)))
        left = (run.last + wait - self.now()).total_seconds()
        if left > 0:
            seconds = max(1, math.ceil(left))
            raise TooManyRequests(
                Text(
                    "此地址连续登录失败次数过多, 请 {s} 秒后再试",
                    "Too many failed sign-ins from this address; retry in {s} s",
                ).format(s=seconds),
                headers={"Retry-After": str(seconds)},
                retry_after_seconds=seconds,
            )

    def failed(self, username: str | None, address: str) -> datetime | None:
        """One more wrong password from `address` (for `username`, when it names an account).
        Returns when the lock ends, if this one locked the account at this address."""
        address = caller_network(address)
        now = self.now()
        at_address = self.addresses.setdefault(address, _Run())
        at_address.failures += 1
        at_address.last = now
        locked = None
        if username is not None:
            run = self.pairs.setdefault((username, address), _Run())
            if run.locked_until is not None and run.locked_until > now:
                # Counted while locked (many at once): neither lengthens the lock nor locks again.
                return None
            if run.locked_until is not None:
                run.failures, run.locked_until = 0, None
            run.failures += 1
            run.last = now
            if run.failures >= self.max_failures:
                run.failures, run.locked_until = 0, now + self.lock_for
                locked = run.locked_until
        self._bound(now)
        return locked

    def succeeded(self, username: str, address: str) -> None:
        """A right password: the wrong ones before it, at this address, no longer count."""
        address = caller_network(address)
        self.pairs.pop((username, address), None)
        self.addresses.pop(address, None)

    def forget_account(self, username: str) -> None:
        """An administrator unlocked the account: its locks at every address end."""
        for key in [key for key in self.pairs if key[0] == username]:
            del self.pairs[key]

    def _bound(self, now: datetime) -> None:
        # Runs that lock nothing and make no one wait carry no information once the table is large.
        if len(self.pairs) + len(self.addresses) <= self.max_keys:
            return
        stale = now - max(self.lock_for, LONGEST_WAIT)
        for table in (self.pairs, self.addresses):
            for key in [k for k, run in table.items() if run.last is None or run.last < stale]:
                del table[key]  # type: ignore[arg-type]
