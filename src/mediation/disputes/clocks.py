"""Clocks that act on cases by themselves: a case not signed for in time goes back to triage.

The body that was assigned a case signs for it or returns it within the set working days (center
practice after 在线调解规则 Art. 12). When the last day has passed, the system returns the case
in the body's stead, the assignment is recorded as lapsed, re-triage leaves that body out, and a
case with no candidate left is flagged to a supervisor, as for any return.

Each case is its own transaction, so one failure (say, a clerk acting on the case at the same
moment: the version check refuses the older writer) never holds up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from mediation.core.clock import Clock
from mediation.core.db import Database, utcnow
from mediation.core.errors import ProblemError
from mediation.core.http import etag_for
from mediation.core.pii import PiiCipher
from mediation.core.principal import SYSTEM
from mediation.core.settings import Settings
from mediation.disputes.lifecycle import Action
from mediation.disputes.schemas import ReturnPayload
from mediation.disputes.service import DisputeService
from mediation.events.sequencer import number_before_commit

log = logging.getLogger(__name__)

LAPSE_REASON = "逾期未签收: 受指派组织未在 {n} 个工作日内签收或退回, 由系统退回重新分流"


@dataclass(frozen=True, slots=True)
class TickReport:
    lapsed: int
    failed: int


async def tick(db: Database, clock: Clock, settings: Settings, cipher: PiiCipher) -> TickReport:
    async with db.reader() as session:
        overdue = await DisputeService(session, clock, settings, cipher).overdue_assignments()
    lapsed = failed = 0
    reason = ReturnPayload(reason=LAPSE_REASON.format(n=settings.sign_for_working_days))
    for dispute_id, version in overdue:
        try:
            async with db.writer() as session, session.begin():
                service = DisputeService(session, clock, settings, cipher)
                await service.apply(dispute_id, Action.return_, reason, SYSTEM, etag_for(version))
                await number_before_commit(session, utcnow())
            lapsed += 1
        except ProblemError as exc:
            # Someone acted on the case meanwhile (signed for it, returned it): nothing to do.
            log.info("case %s not returned by the clock: %s", dispute_id, exc.slug)
            failed += 1
    if lapsed:
        log.info("clock returned %d case(s) not signed for in time", lapsed)
    return TickReport(lapsed=lapsed, failed=failed)


async def run(db: Database, clock: Clock, settings: Settings, cipher: PiiCipher, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await tick(db, clock, settings, cipher)
        except Exception:
            log.exception("clock tick failed; retrying at the next interval")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.clock_interval_seconds)
