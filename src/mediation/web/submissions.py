"""A form sent twice a moment apart, known at once.

Every form of the pages that changes something carries a one-time key (`idempotency_key`, a fresh
one each time the page is shown). A double click on 提交, or a browser sending the form again,
sends the same form with the same key from the same browser. Such a second submission, while the
first is still at work in this process, is recognised as it arrives, before it queues for a turn to
write (`MEDIATION_WRITE_CONCURRENCY`) or takes a connection: it waits for the first, holding
neither, and then answers the first's outcome through the form's own replay (the stored answer of
the key), skipping the queue: it does no work but read that answer back and record itself in the
audit trail. Queued behind the first for a turn instead, it waited as long as the first's work and
every write queued meanwhile, and gave up (503) when that outlasted the wait for a turn.

The first refused (a stale page, a field to correct) left nothing behind, so the second is then
handled as any form is. One that arrives in another process, where the first is not known, is
handled by the key's claim as before (`forms.run_once`).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response

from mediation.web.session import CSRF_COOKIE

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

FORM_KEY = re.compile(rb"(?:^|&)idempotency_key=[^&]")
# How long a second submission waits for the first, at most, before the page says the form was
# sent already and is still being handled: well inside the request's time limit.
LONGEST_WAIT_SECONDS = 10.0


class SubmissionsInFlight:
    """The forms being handled in this process: their submission's mark, and whether the first
    submission succeeded once it is done."""

    def __init__(self) -> None:
        self.running: dict[str, asyncio.Future[bool]] = {}


def _in_flight(request: Request) -> SubmissionsInFlight:
    state = request.app.state
    found: SubmissionsInFlight | None = getattr(state, "submissions_in_flight", None)
    if found is None:
        found = state.submissions_in_flight = SubmissionsInFlight()
    return found


async def _mark(request: Request) -> str | None:
    """What makes two submissions the same: the browser (its CSRF cookie), the address posted to
    and the whole form, one-time key included. None for a request that is no such form."""
    if request.method != "POST":
        return None
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    browser = request.cookies.get(CSRF_COOKIE)
    if not browser:
        return None  # refused by the CSRF check anyway
    body = await request.body()
    if not FORM_KEY.search(body):
        return None
    digest = hashlib.sha256()
    for part in (browser.encode(), request.url.path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def once_per_submission(
    request: Request, handler: Handler, still_running: Callable[[Request], Response]
) -> Response:
    """`handler` for the request; a second submission of a form the first is still at work on waits
    for it, then replays its outcome without queueing for a write (`still_running`: the page for
    one the first has not answered within `LONGEST_WAIT_SECONDS`)."""
    mark = await _mark(request)
    if mark is None:
        return await handler(request)
    in_flight = _in_flight(request)
    first = in_flight.running.get(mark)
    if first is not None:
        limit = min(LONGEST_WAIT_SECONDS, request.app.state.settings.request_timeout_seconds / 2)
        try:
            async with asyncio.timeout(limit):
                # Shielded: this request given up (its client gone) leaves the first's outcome be.
                succeeded = await asyncio.shield(first)
        except TimeoutError:
            return still_running(request)
        # The first's answer is stored under the key, committed: this one only reads it back.
        request.state.replaying_form = succeeded
        return await handler(request)
    done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    in_flight.running[mark] = done
    succeeded = False
    try:
        response = await handler(request)
        succeeded = response.status_code < 400
        return response
    finally:
        del in_flight.running[mark]
        done.set_result(succeeded)
