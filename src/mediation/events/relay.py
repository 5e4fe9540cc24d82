"""The relay: sequences committed events and delivers them to webhook subscriptions.

Runs inside the API process by default and as `mediation relay`. Several relays may run at
once: a relay claims due deliveries in a short transaction (`FOR UPDATE SKIP LOCKED` on
PostgreSQL) with a lease, judged by the database's clock, sends them, each within the timeout,
then records the outcome. A relay killed between claim and
record leaves a claim whose lease lapses; another relay (or the same one restarted) sends the
delivery again with the same `webhook-id`, so receivers can drop the duplicate. Delivery is
therefore at least once, and never concurrent for one delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import ColumnElement, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from mediation.core.db import Database, utcnow
from mediation.core.pii import PiiCipher
from mediation.core.settings import Settings
from mediation.events.models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookSubscription
from mediation.events.sequencer import sequence_pending
from mediation.events.service import cloudevent
from mediation.events.webhooks import TargetRefused, WebhookService, cancel_pending, check_target

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
JITTER = 0.2
# How much of an answer's body is read: its status is the answer, the body at most a short note.
ANSWER_READ_LIMIT = 64 * 1024


async def database_now(session: AsyncSession) -> datetime:
    """The time leases and retries are judged by: on PostgreSQL the database's clock, the one
    clock every relay shares whatever host it runs on. By each relay's own clock, a relay whose
    host runs a minute ahead (or whose clock jumps) would take over claims still held and send their
    deliveries a second time at once, and one running behind would schedule retries that others
    find due at once, or take nothing due until its clock caught up. (SQLite's relays share the
    one host the database file is on, and its clock.)"""
    if session.get_bind().dialect.name == "postgresql":
        now: datetime = (await session.execute(_DATABASE_NOW)).scalar_one()
        return now
    return utcnow()


_DATABASE_NOW = select(func.now())


def _due(now: datetime | ColumnElement[datetime]) -> tuple[ColumnElement[bool], ...]:
    """Deliveries due at `now` and not claimed, or claimed under a lease that has lapsed."""
    return (
        WebhookDelivery.status == "pending",
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
    )


@dataclass(slots=True)
class Job:
    delivery_id: uuid.UUID
    attempt: int
    url: str
    subscription_id: uuid.UUID
    webhook_id: str
    body: str
    secrets: list[str]
    # When it was claimed, by the database's clock (`database_now`), and by this process's
    # monotonic one: the time of sending follows from them whatever the host's clock does.
    claimed_at: datetime
    claimed_at_monotonic: float

    def now(self) -> datetime:
        return self.claimed_at + timedelta(seconds=time.monotonic() - self.claimed_at_monotonic)


@dataclass(slots=True)
class Outcome:
    job: Job
    started_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None


class Relay:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        cipher: PiiCipher,
        *,
        relay_id: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.cipher = cipher
        self.relay_id = relay_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.client = client or httpx.AsyncClient(
            timeout=settings.webhook_timeout_seconds, follow_redirects=False
        )
        self._owns_client = client is None
        self.in_flight: set[uuid.UUID] = set()
        # Outcomes a cycle sent but could not record (the database went away meanwhile).
        self.unrecorded: list[Outcome] = []

    # ---- the loop -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        log.info("relay %s started", self.relay_id)
        try:
            while not stop.is_set():
                try:
                    busy = await self.run_once()
                except Exception:
                    log.exception("relay %s: cycle failed; retrying", self.relay_id)
                    busy = 0
                if busy:
                    continue  # more may be due right away
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.settings.relay_poll_seconds)
        finally:
            await self.release()
            if self._owns_client:
                await self.client.aclose()
            log.info("relay %s stopped", self.relay_id)

    async def run_once(self) -> int:
        if self.unrecorded:
            # Recorded first, under the claims they were sent with (still this relay's unless
            # another took them over after the lease): a delivery the receiver accepted while the
            # database was away is not sent again once it is back, and its attempt is in the log.
            kept, self.unrecorded = self.unrecorded, []
            await self._record_or_keep(kept)
        await sequence_pending(self.db, utcnow())
        jobs = await self.claim()
        if not jobs:
            return 0
        self._fault("after_claim")
        outcomes = await asyncio.gather(*(self.send(job) for job in jobs))
        self._fault("after_send")
        await self._record_or_keep(outcomes)
        return len(jobs)

    async def _record_or_keep(self, outcomes: list[Outcome]) -> None:
        try:
            await self.record(outcomes)
        except BaseException:
            self.unrecorded.extend(outcomes)
            raise

    def _fault(self, point: str) -> None:
        # Test-only crash injection (settings.relay_fault); never set in production.
        if self.settings.relay_fault == point:
            log.warning("relay %s: injected crash at %s", self.relay_id, point)
            os.kill(os.getpid(), signal.SIGKILL)

    # ---- claim, send, record --------------------------------------------------------------------

    async def claim(self) -> list[Job]:
        # A plain read first: an idle relay must not take SQLite's write lock every poll.
        async with self.db.reader() as probe:
            now_in_sql = func.now() if probe.get_bind().dialect.name == "postgresql" else utcnow()
            if not await probe.scalar(select(exists().where(*_due(now_in_sql)))):
                return []
        async with self.db.writer() as session, session.begin():
            now = await database_now(session)
            now_monotonic = time.monotonic()
            lease = now + timedelta(seconds=self.settings.relay_lease_seconds)
            stmt = (
                select(WebhookDelivery)
                .where(*_due(now))
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(self.settings.relay_batch_size)
            )
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True, of=WebhookDelivery)
            deliveries = list((await session.scalars(stmt)).all())
            if not deliveries:
                return []
            subs = {
                s.id: s
                for s in await session.scalars(
                    select(WebhookSubscription).where(
                        WebhookSubscription.id.in_({d.subscription_id for d in deliveries})
                    )
                )
            }
            events = {
                e.id: e
                for e in await session.scalars(
                    select(OutboxEvent).where(OutboxEvent.id.in_({d.event_id for d in deliveries}))
                )
            }
            signer = WebhookService(session, self.cipher, self.settings.webhook_allow_private_targets)
            jobs = []
            for d in deliveries:
                d.claimed_by, d.claimed_until = self.relay_id, lease
                sub, event = subs[d.subscription_id], events[d.event_id]
                jobs.append(
                    Job(
                        delivery_id=d.id,
                        attempt=d.attempts + 1,
                        url=sub.url,
                        subscription_id=sub.id,
                        webhook_id=str(event.id),
                        body=json.dumps(cloudevent(event), ensure_ascii=False, separators=(",", ":")),
                        secrets=signer.secrets_of(sub, now),
                        claimed_at=now,
                        claimed_at_monotonic=now_monotonic,
                    )
                )
        self.in_flight.update(j.delivery_id for j in jobs)
        return jobs

    async def send(self, job: Job) -> Outcome:
        """One attempt, ended at the timeout whatever the receiver does. The answer's status is all
        Standard Webhooks asks of it: its body is read no further than `ANSWER_READ_LIMIT`, so a
        receiver answering with a huge or endless one costs neither memory nor more than the
        timeout. Whatever goes wrong is this delivery's failed attempt, never the batch's: an
        exception escaping here would leave every delivery of the batch claimed and unrecorded
        until its lease lapsed, and sent again then."""
        started = job.now()
        clock = time.perf_counter()
        status: int | None = None
        error: str | None = None
        timeout = self.settings.webhook_timeout_seconds
        try:
            # One deadline for the whole send, the host name's lookup included. httpx's timeout
            # bounds each read and write alone: a receiver sending a byte now and then would hold
            # the send past the claim's lease, and another relay would send the delivery meanwhile.
            async with asyncio.timeout(timeout):
                await check_target(job.url, self.settings.webhook_allow_private_targets)
                # The receiver checks this against its own clock (Standard Webhooks allows five
                # minutes either way): the database's, as for the leases, not a host's gone astray.
                sent_at = job.now()
                signatures = " ".join(Webhook(s).sign(job.webhook_id, sent_at, job.body) for s in job.secrets)
                request = self.client.build_request(
                    "POST",
                    job.url,
                    content=job.body.encode(),
                    headers={
                        "content-type": CONTENT_TYPE,
                        "webhook-id": job.webhook_id,
                        "webhook-timestamp": str(int(sent_at.timestamp())),
                        "webhook-signature": signatures,
                        "user-agent": "mediation-webhooks/1",
                    },
                )
                response = await self.client.send(request, stream=True)
                status = response.status_code
                try:
                    # A short answer is read to its end, so its connection serves the next delivery;
                    # past the limit it is dropped rather than drained.
                    taken = 0
                    async for chunk in response.aiter_raw():
                        taken += len(chunk)
                        if taken > ANSWER_READ_LIMIT:
                            break
                finally:
                    await response.aclose()
        except TimeoutError:
            if status is None:  # else the receiver answered, and only its body was cut short
                error = f"timed out: no answer within {timeout:g} s"
        except TargetRefused as exc:
            error = f"target refused: {exc}"
        except httpx.HTTPError as exc:
            if status is None:
                error = f"{type(exc).__name__}: {exc}"[:500]
        except Exception as exc:
            log.exception("webhook delivery %s attempt %d: unexpected failure", job.delivery_id, job.attempt)
            error = f"{type(exc).__name__}: {exc}"[:500]
        latency = int((time.perf_counter() - clock) * 1000)
        return Outcome(job, started, status, latency, error)

    async def record(self, outcomes: list[Outcome]) -> None:
        schedule = self.settings.webhook_retry_schedule_seconds
        async with self.db.writer() as session, session.begin():
            now = await database_now(session)
            # 410s last: the batch's other outcomes for that subscription are recorded first, then
            # whatever is still pending for it is cancelled.
            for o in sorted(outcomes, key=lambda o: o.status_code == 410):
                session.add(
                    WebhookAttempt(
                        id=uuid.uuid4(),
                        delivery_id=o.job.delivery_id,
                        attempt=o.job.attempt,
                        relay_id=self.relay_id,
                        started_at=o.started_at,
                        status_code=o.status_code,
                        latency_ms=o.latency_ms,
                        error=o.error,
                    )
                )
                values: dict[str, object] = {
                    "attempts": o.job.attempt,
                    "last_status_code": o.status_code,
                    "last_error": o.error,
                    "claimed_by": None,
                    "claimed_until": None,
                }
                if o.status_code is not None and 200 <= o.status_code < 300:
                    values.update(status="delivered", delivered_at=now)
                elif o.status_code == 410:
                    values.update(status="cancelled")
                elif o.job.attempt > len(schedule):
                    values.update(status="dead")
                else:
                    wait = schedule[o.job.attempt - 1] * random.uniform(1 - JITTER, 1 + JITTER)
                    values.update(next_attempt_at=now + timedelta(seconds=wait))
                # Only while the claim is still ours: a relay whose lease lapsed must not overwrite
                # the outcome of the relay that took over.
                await session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.id == o.job.delivery_id, WebhookDelivery.claimed_by == self.relay_id
                    )
                    .values(**values)
                )
                if o.status_code == 410:
                    # The receiver says the endpoint is gone for good: stop sending it anything. After
                    # the update above, which needs this relay's claim that cancel_pending clears.
                    await session.execute(
                        update(WebhookSubscription)
                        .where(WebhookSubscription.id == o.job.subscription_id)
                        .values(active=False, disabled_reason="endpoint answered 410 Gone", updated_at=now)
                    )
                    await cancel_pending(session, o.job.subscription_id)
                if o.status_code is None or not 200 <= o.status_code < 300:
                    log.info(
                        "webhook delivery %s attempt %d failed: %s",
                        o.job.delivery_id,
                        o.job.attempt,
                        o.status_code or o.error,
                    )
        self.in_flight.difference_update(o.job.delivery_id for o in outcomes)

    async def release(self) -> None:
        """Graceful shutdown: record what was sent and not yet recorded if the database allows,
        and hand back the other claims, so another relay sends them now."""
        if self.unrecorded:
            kept, self.unrecorded = self.unrecorded, []
            try:
                await self.record(kept)
            except Exception:
                log.warning("relay %s: %d outcomes left unrecorded", self.relay_id, len(kept))
        if not self.in_flight:
            return
        async with self.db.writer() as session, session.begin():
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(self.in_flight), WebhookDelivery.claimed_by == self.relay_id)
                .values(claimed_by=None, claimed_until=None)
            )
        log.info("relay %s released %d claimed deliveries", self.relay_id, len(self.in_flight))
        self.in_flight.clear()


async def run_standalone(settings: Settings) -> None:
    """`mediation relay`: run until SIGTERM or SIGINT, then hand back claimed work and exit."""
    from mediation.core.secrets import resolve_secrets

    secrets = resolve_secrets(settings)
    cipher = PiiCipher.from_secrets(secrets.pii_encryption_keys, secrets.pii_index_key)
    db = Database(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await Relay(db, settings, cipher).run(stop)
    finally:
        await db.dispose()
