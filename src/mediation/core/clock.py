"""Time source. The service never calls datetime.now() directly, so legal deadlines can be tested."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


class Clock:
    def __init__(self, timezone: str = "Asia/Shanghai") -> None:
        self.zone = ZoneInfo(timezone)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self) -> date:
        """The local (China Standard Time) calendar day, which is what legal periods count in."""
        return self.now().astimezone(self.zone).date()


class FrozenClock(Clock):
    def __init__(self, at: datetime, timezone: str = "Asia/Shanghai") -> None:
        super().__init__(timezone)
        self.at = at

    def now(self) -> datetime:
        return self.at
