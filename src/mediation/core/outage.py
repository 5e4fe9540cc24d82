"""How a background loop (the relay, the scheduler) waits and speaks while its turns keep failing,
as they do all the time the database is away: a turn is tried again after a pause that doubles up
to a cap, the first failure is logged with its traceback, each further one in one line, and the
recovery in one line. A loop retrying every second with a traceback each time fills the log (over a
thousand lines in seven seconds of a database restart) and hides what happened."""

from __future__ import annotations

import logging
import time


class FailingTurns:
    """The failures in a row of one loop's turns. `pause`: the loop's usual wait, the first pause
    after a failure; `cap`: the longest (never shorter than `pause`)."""

    def __init__(self, log: logging.Logger, what: str, pause: float, cap: float) -> None:
        self.log = log
        self.what = what
        self.pause = pause
        self.cap = max(cap, pause)
        self.failures = 0
        self._since = 0.0  # monotonic, the first failure in a row

    def failed(self, exc: BaseException) -> float:
        """Log this failure (call it from the `except`); returns how long to wait before the next try."""
        self.failures += 1
        wait: float = min(self.cap, self.pause * 2.0 ** (self.failures - 1))
        if self.failures == 1:
            self._since = time.monotonic()
            self.log.exception("%s failed; retrying in %.1f s", self.what, wait)
        else:
            said = str(exc).strip().splitlines()
            self.log.warning(
                "%s failed again (%d in a row, for %.0f s): %s%s; retrying in %.1f s",
                self.what,
                self.failures,
                time.monotonic() - self._since,
                type(exc).__name__,
                f": {said[0][:200]}" if said else "",
                wait,
            )
        return wait

    def succeeded(self) -> None:
        """A turn went through: after failures, say so once and start afresh."""
        if self.failures:
            self.log.info(
                "%s works again after %d failures in a row (%.0f s)",
                self.what,
                self.failures,
                time.monotonic() - self._since,
            )
            self.failures = 0
