"""The relay: sequences committed events and delivers them to webhook subscriptions.

Runs inside the API process by default and as `mediation relay`. Several relays may run at
once: a relay claims due deliveries in a short transaction (`FOR UPDATE SKIP LOCKED` on
PostgreSQL) with a lease, judged by the database's clock, sends them, each within the timeout,
then records the outcome. A relay killed between claim and
record leaves a claim whose lease lapses; another relay (or the same one restarted) sends the
delivery again with the same `webhook-id`, so receivers can drop the duplicate. Delivery is
therefore at least once, and never concurrent for one delivery.

The loop does not wait for a batch to finish before it claims more: each send is its own task,
its outcome recorded on the loop's next turn, so a receiver that answers slowly (or not at all,
until the timeout) holds up its own deliveries only. It also deletes finished deliveries, and the
feed's events, past their retention periods, a batch at a time.
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
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import ColumnElement, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from mediation.audit.chain import AuditEntry, append
from mediation.audit.models import AuditChainHead
from mediation.bodies.models import Body
from mediation.core.db import Database, insert_of, utcnow
from mediation.core.errors import is_connection_problem
from mediation.core.outage import FailingTurns
from mediation.core.pii import PiiCipher, PiiIntegrityError
from mediation.core.principal import SYSTEM
from mediation.core.secrets import KeyVerdict, check_keys_once_answered
from mediation.core.settings import Settings
from mediation.events.models import (
    OutboxEvent,
    OutboxHorizon,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from mediation.events.sequencer import sequence_pending
from mediation.events.service import cloudevent
from mediation.events.webhooks import (
    TargetRefused,
    WebhookService,
    WebhookTransport,
    cancel_pending,
    check_form,
    lapsed_keys,
    lock_subscriptions,
    stop_subscriptions_of_lapsed_keys,
)

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
JITTER = 0.2
# How much of an answer's body is read: its status is the answer, the body at most a short note.
ANSWER_READ_LIMIT = 64 * 1024
# Deliveries no relay will send again; the retention period deletes them (`Relay.purge_expired`).
FINISHED = ("delivered", "dead", "cancelled")
# Deleted per transaction, so a first pass over years of deliveries neither holds locks long nor
# keeps the loop from sending; the loop goes on a batch per turn until none is left, then
# looks again after PURGE_EVERY_SECONDS.
PURGE_BATCH = 500
PURGE_EVERY_SECONDS = 600.0
# How long a subscription whose secret cannot be read is left out before its key is looked for again.
UNREADABLE_RETRY_SECONDS = 300.0
# How many turns an outcome the database refuses (for any reason but being away) is tried again
# before it is dropped: its delivery is sent again once its claim's lease lapses.
RECORD_TRIES = 3
# The longest pause between the loop's turns while they fail (the database away): it doubles from
# the poll interval up to this, so the relay resumes within this long of the database's return.
FAILING_PAUSE_CAP_SECONDS = 30.0


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


# Deliveries whose subscription, and the organisation it belongs to, are active. Disabling a
# subscription and suspending its organisation cancel what is pending for it, in the transaction
# that does it (`WebhookService.set_active`, `BodyService.update`); this keeps one made pending
# while that transaction was under way (by a fan-out that read the subscribers before it) from
# going out to a receiver that no longer takes any. Left pending, it goes out once the
# subscription is enabled again or the organisation resumed.
_RECEIVING = WebhookDelivery.subscription_id.in_(
    select(WebhookSubscription.id)
    .join(Body, Body.id == WebhookSubscription.organisation_id)
    .where(WebhookSubscription.active.is_(True), Body.active.is_(True))
)


def _due(
    now: datetime | ColumnElement[datetime],
    busy: set[uuid.UUID] | frozenset[uuid.UUID] = frozenset(),
    sending: set[uuid.UUID] | frozenset[uuid.UUID] = frozenset(),
) -> tuple[ColumnElement[bool], ...]:
    """Deliveries due at `now` and not claimed, or claimed under a lease that has lapsed, except
    those of the `busy` subscriptions and those this relay is `sending` still (or has sent and not
    recorded): one relay never has two sends of a delivery out at once. Only deliveries to a
    receiver still taking them (`_RECEIVING`)."""
    due: tuple[ColumnElement[bool], ...] = (
        WebhookDelivery.status == "pending",
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
        _RECEIVING,
    )
    if busy:
        due = (*due, WebhookDelivery.subscription_id.not_in(busy))
    if sending:
        due = (*due, WebhookDelivery.id.not_in(sending))
    return due


def _passing(failure: BaseException) -> bool:
    """The database is away (it comes back), or the relay is being stopped: what was being
    recorded is kept whole, for as long as it takes."""
    return not isinstance(failure, Exception) or is_connection_problem(failure)


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
    # The claim it is sent under: its lease's end (`claimed_until`), which no other claim of the
    # delivery has, and when the delivery was due (`next_attempt_at`), which a redelivery changes.
    lease: datetime
    due: datetime

    def now(self) -> datetime:
        return self.claimed_at + timedelta(seconds=time.monotonic() - self.claimed_at_monotonic)


def _failing_since_after(failing_since: datetime | None, outcomes: list[Outcome]) -> datetime | None:
    """A subscription's `failing_since` once these outcomes of it are counted, in the order they
    were sent: a failure starts the count if none runs, an acceptance ends one begun no later than
    it was sent. (An acceptance recorded after a failure that was sent later leaves that failure's
    count standing.)"""
    for o in sorted(outcomes, key=lambda o: o.started_at):
        if o.accepted:
            if failing_since is not None and failing_since <= o.started_at:
                failing_since = None
        elif failing_since is None:
            failing_since = o.started_at
    return failing_since


@dataclass(slots=True)
class Outcome:
    job: Job
    started_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    tries: int = 0  # the times recording it failed, but for the database being away

    @property
    def accepted(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def _audit_disabled(
    session: AsyncSession, subscription_id: uuid.UUID, reason: str, now: datetime
) -> None:
    """The relay's disabling of a subscription is audited as its owner's would be, by the system,
    in the transaction that disables it: whoever finds a receiver cut off sees when and why."""
    entry = AuditEntry.by(
        SYSTEM,
        "relay.webhook_disabled",
        object_type="webhook_subscription",
        object_id=str(subscription_id),
        details={"reason": reason},
    )
    await append(session, [entry], now)


_HORIZON = select(OutboxHorizon).where(OutboxHorizon.id == 1).with_for_update()


async def _lock_horizon(session: AsyncSession) -> OutboxHorizon:
    horizon = (await session.execute(_HORIZON)).scalar_one_or_none()
    if horizon is None:
        # Only an emptied table gets here (the migration writes the row). Everything before the
        # oldest numbered event is taken as deleted, or, with none left, everything numbered.
        oldest = select(func.min(OutboxEvent.position) - 1).where(OutboxEvent.position.is_not(None))
        numbered = select(func.coalesce(func.max(AuditChainHead.last_position), 0))
        await session.execute(
            insert_of(session)(OutboxHorizon)
            .values(
                id=1,
                purged_through=func.coalesce(oldest.scalar_subquery(), numbered.scalar_subquery()),
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        horizon = (await session.execute(_HORIZON)).scalar_one()
    return horizon


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
            transport=WebhookTransport(lambda: self.settings.webhook_allow_private_targets),
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
        )
        self._owns_client = client is None
        # Claimed and not yet recorded: delivery -> its subscription.
        self.claimed: dict[uuid.UUID, uuid.UUID] = {}
        # Outcomes a cycle sent but could not record (the database went away meanwhile).
        self.unrecorded: list[Outcome] = []
        self._purge_at = 0.0  # monotonic; the loop's first turn purges
        # Subscriptions whose secret this process cannot read (the key that encrypted it is not in
        # MEDIATION_PII_ENCRYPTION_KEYS): left out of claims until then (monotonic), so one of them
        # cannot stop every other receiver's deliveries. Theirs wait, pending, for the key.
        self.unreadable: dict[uuid.UUID, float] = {}
        self._failing = FailingTurns(
            log, f"relay {self.relay_id}: cycle", settings.relay_poll_seconds, FAILING_PAUSE_CAP_SECONDS
        )

    @property
    def in_flight(self) -> set[uuid.UUID]:
        """The deliveries this relay has claimed and not recorded yet."""
        return set(self.claimed)

    # ---- the loop -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, keys: KeyVerdict | None = None) -> None:
        """Relays until `stop` is set. `keys`: the personal-data keys are to be checked once the
        database answers, before any work (the server's relay, or one whose database did not answer
        at its start), and KeysRefused is raised if they do not open the data (core/secrets.py)."""
        log.info("relay %s started", self.relay_id)
        sending: set[asyncio.Task[Outcome]] = set()
        try:
            if keys is not None:
                checking = FailingTurns(
                    log,
                    f"relay {self.relay_id}: personal-data key check",
                    self.settings.relay_poll_seconds,
                    FAILING_PAUSE_CAP_SECONDS,
                )
                await check_keys_once_answered(self.db, keys, stop, checking)
            while not stop.is_set():
                try:
                    started = await self._turn(sending)
                except Exception as exc:
                    # The database away, most likely: tried again after a growing pause, told of
                    # in one line each time after the first.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self._failing.failed(exc))
                    continue
                self._failing.succeeded()
                if started:
                    continue  # more may be due right away, and there is room to send them
                # Until a send ends (its outcome is recorded, and its room taken by the next), a
                # poll's time passes, or the relay is stopped.
                stopping = asyncio.create_task(stop.wait())
                try:
                    await asyncio.wait(
                        {stopping, *sending},
                        timeout=self.settings.relay_poll_seconds,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    stopping.cancel()
            # Stopped: what is out is answered (or timed out) within the timeout, then recorded.
            if sending:
                await asyncio.wait(sending)
        finally:
            for task in sending:
                task.cancel()
            for task in sending:
                with contextlib.suppress(asyncio.CancelledError):
                    self.unrecorded.append(await task)
            await self.release()
            if self._owns_client:
                await self.client.aclose()
            log.info("relay %s stopped", self.relay_id)

    async def _turn(self, sending: set[asyncio.Task[Outcome]]) -> int:
        """One turn of the loop: record what was sent, sequence, purge, and start sending what is
        due as far as there is room; returns how many sends it started."""
        for task in [t for t in sending if t.done()]:
            sending.discard(task)
            self.unrecorded.append(task.result())
        # The crash injected "after_send" (tests only) comes once everything claimed was sent and
        # nothing of it recorded: until then its outcomes wait.
        if self.unrecorded and not (sending and self.settings.relay_fault == "after_send"):
            self._fault("after_send")
            await self._record_kept()
        await sequence_pending(self.db, utcnow())
        await self._purge_when_due()
        room = self.settings.relay_max_in_flight - len(self.claimed)
        if room <= 0:
            return 0
        jobs = await self.claim(room)
        if jobs:
            self._fault("after_claim")
        sending.update(asyncio.create_task(self.send(job)) for job in jobs)
        return len(jobs)

    async def run_once(self) -> int:
        """Record what is left over, sequence, claim what is due, send it and record the outcomes:
        one batch from start to end (the tests drive the relay with it)."""
        if self.unrecorded:
            # Recorded first, under the claims they were sent with (still this relay's unless
            # another took them over after the lease): a delivery the receiver accepted while the
            # database was away is not sent again once it is back, and its attempt is in the log.
            await self._record_kept()
        await sequence_pending(self.db, utcnow())
        jobs = await self.claim()
        if not jobs:
            return 0
        self._fault("after_claim")
        outcomes = await asyncio.gather(*(self.send(job) for job in jobs))
        self._fault("after_send")
        await self._record_or_keep(outcomes)
        return len(jobs)

    async def _record_kept(self) -> None:
        """Records the outcomes kept from earlier turns. A failure is logged and the turn goes on:
        what could not be recorded never keeps the relay from claiming and sending the rest."""
        kept, self.unrecorded = self.unrecorded, []
        try:
            await self._record_or_keep(kept)
        except Exception as exc:
            if not is_connection_problem(exc):
                log.exception("relay %s: %d outcomes still not recorded", self.relay_id, len(self.unrecorded))
            else:
                # The database is away: the turn's own failure tells of it (with its traceback once).
                log.warning(
                    "relay %s: %d outcomes still not recorded (%s)",
                    self.relay_id,
                    len(self.unrecorded),
                    type(exc).__name__,
                )

    async def _record_or_keep(self, outcomes: list[Outcome]) -> None:
        """Records `outcomes`, and keeps in `unrecorded` what cannot be recorded now. While the
        database is away (a connection problem) every one is kept, as long as that lasts, and the
        failure raised. Any other failure lies in the batch: each outcome is then recorded alone, so
        one the database refuses does not hold back the others, and one refused `RECORD_TRIES`
        times is dropped with a log line."""
        try:
            await self.record(outcomes)
            return
        except BaseException as exc:
            if _passing(exc):
                self.unrecorded.extend(outcomes)
                raise
            if len(outcomes) == 1:
                self._refused(outcomes[0], exc)
                return
        for n, outcome in enumerate(outcomes):
            try:
                await self.record([outcome])
            except BaseException as exc:
                if _passing(exc):
                    self.unrecorded.extend(outcomes[n:])
                    raise
                self._refused(outcome, exc)

    def _refused(self, outcome: Outcome, failure: BaseException) -> None:
        """An outcome the database refused: kept for another try, or dropped after the last. Its
        claim then stays until the lease lapses, and the delivery is sent again."""
        job = outcome.job
        outcome.tries += 1
        said = str(failure).strip()
        reason = f"{type(failure).__name__}: {said.splitlines()[0][:200]}" if said else type(failure).__name__
        if outcome.tries < RECORD_TRIES:
            log.warning(
                "relay %s: webhook delivery %s attempt %d not recorded (%s); trying again",
                self.relay_id,
                job.delivery_id,
                job.attempt,
                reason,
            )
            self.unrecorded.append(outcome)
            return
        log.error(
            "relay %s: webhook delivery %s attempt %d dropped, not recorded after %d tries (%s)",
            self.relay_id,
            job.delivery_id,
            job.attempt,
            outcome.tries,
            reason,
        )
        self.claimed.pop(job.delivery_id, None)

    def _fault(self, point: str) -> None:
        # Test-only crash injection (settings.relay_fault); never set in production.
        if self.settings.relay_fault == point:
            log.warning("relay %s: injected crash at %s", self.relay_id, point)
            os.kill(os.getpid(), signal.SIGKILL)

    # ---- claim, send, record --------------------------------------------------------------------

    async def claim(self, room: int | None = None) -> list[Job]:
        """Claims up to `room` due deliveries (a batch at most), no more for one subscription than
        its share of this relay's sends (`relay_max_in_flight_per_subscription`): a receiver with
        a long backlog that answers slowly would otherwise take every send the relay has."""
        share = self.settings.relay_max_in_flight_per_subscription
        held = Counter(self.claimed.values())
        busy = {sub_id for sub_id, n in held.items() if n >= share}
        monotonic_now = time.monotonic()
        self.unreadable = {
            sub_id: until for sub_id, until in self.unreadable.items() if until > monotonic_now
        }
        busy |= self.unreadable.keys()
        limit = min(self.settings.relay_batch_size, room or self.settings.relay_batch_size)
        # A plain read first: an idle relay must not take SQLite's write lock every poll.
        async with self.db.reader() as probe:
            now_in_sql = func.now() if probe.get_bind().dialect.name == "postgresql" else utcnow()
            sending = frozenset(self.claimed)
            if not await probe.scalar(select(exists().where(*_due(now_in_sql, busy, sending)))):
                return []
        async with self.db.writer() as session, session.begin():
            now = await database_now(session)
            now_monotonic = time.monotonic()
            lease = now + timedelta(seconds=self.settings.relay_lease_seconds)
            stmt = (
                select(WebhookDelivery)
                .where(*_due(now, busy, sending))
                # Oldest first; a backlog sent again at once goes in the order it was made.
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.created_at, WebhookDelivery.id)
                .limit(limit)
            )
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True, of=WebhookDelivery)
            deliveries = []
            for d in (await session.scalars(stmt)).all():
                # Past a subscription's share the rest of its rows stay unclaimed; the next turn
                # leaves that subscription out of its query and finds the others' deliveries.
                if held[d.subscription_id] < share:
                    held[d.subscription_id] += 1
                    deliveries.append(d)
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
            # A key revoked while the revocation stopped its subscriptions is caught there; one that
            # expired since is caught here, before anything goes out under it (`stop_lapsed`).
            lapsed = await lapsed_keys(session, {sub.created_by for sub in subs.values()}, now)
            stopping = {sub.id for sub in subs.values() if sub.created_by in lapsed}
            signer = WebhookService(session, self.cipher, self.settings.webhook_allow_private_targets)
            jobs = []
            for d in deliveries:
                sub, event = subs[d.subscription_id], events[d.event_id]
                if sub.id in self.unreadable or sub.id in stopping:
                    continue
                try:
                    signing = signer.secrets_of(sub, now)
                except PiiIntegrityError:
                    self.unreadable[sub.id] = now_monotonic + UNREADABLE_RETRY_SECONDS
                    log.error(
                        "webhook subscription %s: its secret cannot be read with the configured keys "
                        "(MEDIATION_PII_ENCRYPTION_KEYS); its deliveries wait, the others go on",
                        sub.id,
                    )
                    continue
                d.claimed_by, d.claimed_until = self.relay_id, lease
                jobs.append(
                    Job(
                        delivery_id=d.id,
                        attempt=d.attempts + 1,
                        url=sub.url,
                        subscription_id=sub.id,
                        webhook_id=str(event.id),
                        body=json.dumps(cloudevent(event), ensure_ascii=False, separators=(",", ":")),
                        secrets=signing,
                        claimed_at=now,
                        claimed_at_monotonic=now_monotonic,
                        lease=lease,
                        due=d.next_attempt_at,
                    )
                )
        self.claimed.update((j.delivery_id, j.subscription_id) for j in jobs)
        if stopping:
            await self.stop_lapsed(stopping)
        return jobs

    async def stop_lapsed(self, subscription_ids: set[uuid.UUID] | None = None) -> list[uuid.UUID]:
        """Stops the subscriptions (these, or all) made by an API key that has expired or been
        revoked, as the system, in a transaction of its own: the subscription's row is taken
        before its deliveries', as every path takes them (`lock_subscriptions`)."""
        async with self.db.writer() as session, session.begin():
            now = await database_now(session)
            stopped = await stop_subscriptions_of_lapsed_keys(session, SYSTEM, now, subscription_ids)
        for sub_id in stopped:
            log.warning("webhook subscription %s disabled: the API key that made it has lapsed", sub_id)
        return stopped

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
                # The host's addresses are looked up and checked as the connection is opened, so
                # the address checked is the address connected to (WebhookTransport).
                check_form(job.url)
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
        """Records each outcome against the claim it was sent under, in one transaction.

        A claim is told apart by its lease's end (`claimed_until`): a relay claims a delivery once
        per transaction, each later than the last, so no two claims of one delivery share it, and
        neither a column nor a migration is needed for it. An outcome counts in full (its attempt
        number, the next retry, dead or delivered) only while that claim is still on the delivery
        and the delivery is as it was claimed: pending, with the attempts and the due time it had.
        Cancelling a delivery, and redelivering it, leave the claim in place (`cancel_pending`), so
        the delivery is not sent a second time while the first send is out; an outcome that comes
        back to such a delivery then only hands its claim back, and marks it delivered if the
        receiver accepted it, leaving the cancellation or the redelivery's fresh schedule as it is.
        An outcome whose claim lapsed and was taken over by another relay changes nothing but the
        attempt log. So an older send's outcome never overwrites a newer one's."""
        schedule = self.settings.webhook_retry_schedule_seconds
        async with self.db.writer() as session, session.begin():
            now = await database_now(session)
            # Every subscription of the batch is locked before any of its deliveries, in the order
            # every path takes them (`lock_subscriptions`), not only those this batch may disable
            # or whose `failing_since` it moves: a disable or a redelivery holds the subscription
            # and then takes its deliveries, so updating one of them without holding the
            # subscription could deadlock with it. Relays recording outcomes of one subscription
            # take turns on its row; the row itself is written only when something changes.
            by_subscription: dict[uuid.UUID, list[Outcome]] = {}
            for o in outcomes:
                by_subscription.setdefault(o.job.subscription_id, []).append(o)
            failing = {
                sub.id: sub.failing_since for sub in await lock_subscriptions(session, set(by_subscription))
            }
            locked = set(failing)
            kept = await self._still_kept(session, {o.job.delivery_id for o in outcomes})
            gone_dead: set[uuid.UUID] = set()
            # 410s last: the batch's other outcomes for that subscription are recorded first, then
            # whatever is still pending for it is cancelled.
            for o in sorted(outcomes, key=lambda o: o.status_code == 410):
                job = o.job
                if job.delivery_id not in kept:
                    # Its attempt has no delivery left to belong to: nothing to record, nothing to
                    # keep for later.
                    log.warning(
                        "webhook delivery %s was deleted while attempt %d was out; its outcome (%s) "
                        "is not recorded",
                        job.delivery_id,
                        job.attempt,
                        o.status_code or o.error,
                    )
                    continue
                session.add(
                    WebhookAttempt(
                        id=uuid.uuid4(),
                        delivery_id=job.delivery_id,
                        attempt=job.attempt,
                        relay_id=self.relay_id,
                        started_at=o.started_at,
                        status_code=o.status_code,
                        latency_ms=o.latency_ms,
                        error=o.error,
                    )
                )
                values: dict[str, object] = {
                    "attempts": job.attempt,
                    "last_status_code": o.status_code,
                    "last_error": o.error,
                    "claimed_by": None,
                    "claimed_until": None,
                }
                if o.accepted:
                    values.update(status="delivered", delivered_at=now)
                elif o.status_code == 410:
                    values.update(status="cancelled")
                elif job.attempt > len(schedule):
                    values.update(status="dead")
                else:
                    wait = schedule[job.attempt - 1] * random.uniform(1 - JITTER, 1 + JITTER)
                    values.update(next_attempt_at=now + timedelta(seconds=wait))
                claim = (
                    WebhookDelivery.id == job.delivery_id,
                    WebhookDelivery.claimed_by == self.relay_id,
                    WebhookDelivery.claimed_until == job.lease,
                )
                result = await session.execute(
                    update(WebhookDelivery)
                    .where(
                        *claim,
                        WebhookDelivery.status == "pending",
                        WebhookDelivery.attempts == job.attempt - 1,
                        WebhookDelivery.next_attempt_at == job.due,
                    )
                    .values(**values)
                )
                counted = bool(result.rowcount)  # type: ignore[attr-defined]
                if not counted:
                    # Cancelled or redelivered while it was out (or its claim taken over).
                    late: dict[str, object] = {"claimed_by": None, "claimed_until": None}
                    if o.accepted:
                        late.update(
                            status="delivered",
                            delivered_at=now,
                            attempts=job.attempt,
                            last_status_code=o.status_code,
                            last_error=None,
                        )
                    await session.execute(update(WebhookDelivery).where(*claim).values(**late))
                if values.get("status") == "dead" and counted:
                    gone_dead.add(job.subscription_id)
                if o.status_code == 410:
                    # The receiver says the endpoint is gone for good: stop sending it anything.
                    gone = "endpoint answered 410 Gone"
                    disabled = await session.execute(
                        update(WebhookSubscription)
                        .where(
                            WebhookSubscription.id == job.subscription_id,
                            WebhookSubscription.active.is_(True),
                        )
                        .values(active=False, disabled_reason=gone, updated_at=now)
                    )
                    if disabled.rowcount:  # type: ignore[attr-defined]
                        await _audit_disabled(session, job.subscription_id, gone, now)
                    await cancel_pending(session, job.subscription_id)
                if not o.accepted:
                    log.info(
                        "webhook delivery %s attempt %d failed: %s",
                        job.delivery_id,
                        job.attempt,
                        o.status_code or o.error,
                    )
            # The attempts the log now keeps move `failing_since`, as the backfill (migration 0024)
            # reads it off the log, in the order they were sent; written only when it changes. An
            # acceptance recorded before a failure sent earlier is not seen here: the disable
            # checks the log once before it acts (`_disable_if_failing_too_long`).
            for subscription_id in sorted(locked & set(failing)):
                was = failing[subscription_id]
                recorded = [o for o in by_subscription[subscription_id] if o.job.delivery_id in kept]
                failing[subscription_id] = _failing_since_after(was, recorded)
                if failing[subscription_id] != was:
                    await session.execute(
                        update(WebhookSubscription)
                        .where(WebhookSubscription.id == subscription_id)
                        .values(failing_since=failing[subscription_id])
                    )
            # After every outcome of the batch: disabling cancels what is pending.
            for subscription_id in gone_dead:
                await self._disable_if_failing_too_long(
                    session, subscription_id, failing.get(subscription_id), now
                )
        for o in outcomes:
            self.claimed.pop(o.job.delivery_id, None)

    @staticmethod
    async def _still_kept(session: AsyncSession, delivery_ids: set[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these deliveries still exist, kept from the retention pass until the
        transaction ends: on PostgreSQL a key-share lock, which the pass's `SKIP LOCKED` steps
        over, and which a delete already under way makes this wait for and then find the row
        gone. (SQLite has one writer at a time.)"""
        stmt = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.id.in_(delivery_ids))
            .order_by(WebhookDelivery.id)
            .with_for_update(read=True, key_share=True)
        )
        return set((await session.scalars(stmt)).all())

    async def _disable_if_failing_too_long(
        self, session: AsyncSession, subscription_id: uuid.UUID, failing_since: datetime | None, now: datetime
    ) -> None:
        """A subscription one of whose deliveries has just gone dead, and none of whose attempts
        has succeeded for `webhook_disable_after_failing_days` (counted from the first failure
        after its last success, `failing_since`), is disabled as a 410 disables it: what is pending
        is cancelled, and the reason says since when it failed and when it was disabled. Standard
        Webhooks and Svix do the same after five days: a receiver that is gone, or a URL mistyped,
        would otherwise be sent every event and all its retries for ever. Re-enabling it starts
        the count afresh (`WebhookService.set_active`), and redelivering its backlog
        (`POST /v1/webhooks/{id}/redeliver`) brings it back; if it still fails, it is disabled
        again when a delivery goes dead once it has failed for the whole period anew.

        The caller has locked the subscription and passes `failing_since` as this transaction
        left it: read off the subscription's row, not the attempt log, a dead delivery costs the
        same however many attempts the log keeps, and attempts deleted by the retention period
        take nothing of the count with them."""
        period = timedelta(days=self.settings.webhook_disable_after_failing_days)
        if failing_since is None or now - failing_since < period:
            return
        # Before disabling, once: the log must show no acceptance since. An acceptance recorded
        # before a failure that was sent earlier (two sends out at once; two relays) leaves the
        # failure's count standing on the row, as if nothing had been accepted after it. Counted
        # again from the log then, the row corrected, and the subscription spared if the
        # corrected count falls short. Only here, at most once a failing period: the scan costs
        # what the row spares every other outcome.
        counted = await self._failing_since_in_the_log(session, subscription_id, failing_since)
        if counted != failing_since:
            await session.execute(
                update(WebhookSubscription)
                .where(WebhookSubscription.id == subscription_id)
                .values(failing_since=counted)
            )
            if counted is None or now - counted < period:
                return
            failing_since = counted
        reason = (
            f"no delivery succeeded in {self.settings.webhook_disable_after_failing_days:g} days: "
            f"failing since {failing_since.astimezone(UTC):%Y-%m-%d %H:%M} UTC, "
            f"disabled {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        )
        disabled = await session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == subscription_id, WebhookSubscription.active.is_(True))
            .values(active=False, disabled_reason=reason, updated_at=now)
        )
        if disabled.rowcount:  # type: ignore[attr-defined]
            await cancel_pending(session, subscription_id)
            await _audit_disabled(session, subscription_id, reason, now)
            log.warning("webhook subscription %s disabled: %s", subscription_id, reason)

    @staticmethod
    async def _failing_since_in_the_log(
        session: AsyncSession, subscription_id: uuid.UUID, failing_since: datetime
    ) -> datetime | None:
        """`failing_since` as the attempt log has it, if it holds an acceptance sent after
        `failing_since`: the first failure sent after the last acceptance (None if none was)."""
        ours = (
            WebhookAttempt.delivery_id == WebhookDelivery.id,
            WebhookDelivery.subscription_id == subscription_id,
        )
        accepted = WebhookAttempt.status_code.between(200, 299)
        last_accepted = await session.scalar(
            select(func.max(WebhookAttempt.started_at)).where(
                *ours, accepted, WebhookAttempt.started_at >= failing_since
            )
        )
        if last_accepted is None:
            return failing_since
        first_failure: datetime | None = await session.scalar(
            select(func.min(WebhookAttempt.started_at)).where(
                *ours,
                or_(WebhookAttempt.status_code.is_(None), ~accepted),
                WebhookAttempt.started_at > last_accepted,
            )
        )
        return first_failure

    # ---- retention ------------------------------------------------------------------------------

    async def _purge_when_due(self) -> None:
        if time.monotonic() < self._purge_at:
            return
        try:
            deleted = await self.purge_expired()
        except Exception:
            # Deliveries still go out; the old ones wait for the next look.
            log.exception("relay %s: deleting old deliveries failed", self.relay_id)
            deleted = 0
        try:
            events = await self.purge_events()
        except Exception:
            log.exception("relay %s: deleting old events failed", self.relay_id)
            events = 0
        try:
            # Those of keys that expired with nothing to send meanwhile: shown disabled, and why.
            await self.stop_lapsed()
        except Exception:
            log.exception("relay %s: stopping subscriptions of lapsed keys failed", self.relay_id)
        if deleted < PURGE_BATCH and events < PURGE_BATCH:
            self._purge_at = time.monotonic() + PURGE_EVERY_SECONDS

    async def purge_expired(self, batch: int = PURGE_BATCH) -> int:
        """Deletes up to `batch` finished deliveries (delivered, dead or cancelled) whose last
        attempt is older than `webhook_retention_days`, with their attempts, in one short
        transaction; returns how many. A pending delivery is never deleted, however old. Relays
        purging at once take different rows (`SKIP LOCKED` on PostgreSQL; SQLite has one writer)."""
        async with self.db.writer() as session, session.begin():
            now = await database_now(session)
            cutoff = now - timedelta(days=self.settings.webhook_retention_days)
            # Never one a relay is sending still: a delivery cancelled while it was out keeps the
            # claim (`cancel_pending`) until its outcome is recorded.
            # `next_attempt_at` is when its last attempt was due (a redelivery sets it anew), so
            # the (status, next_attempt_at) index finds them; one delivered late by a relay that
            # was down stays its full period after it was delivered.
            stmt = (
                select(WebhookDelivery.id)
                .where(
                    WebhookDelivery.status.in_(FINISHED),
                    WebhookDelivery.next_attempt_at < cutoff,
                    or_(WebhookDelivery.delivered_at.is_(None), WebhookDelivery.delivered_at < cutoff),
                    or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
                )
                .limit(batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            ids = list((await session.scalars(stmt)).all())
            if not ids:
                return 0
            await session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)))
            await session.execute(
                delete(WebhookDelivery).where(
                    WebhookDelivery.id.in_(ids), WebhookDelivery.status.in_(FINISHED)
                )
            )
        log.info("relay %s deleted %d deliveries past the retention period", self.relay_id, len(ids))
        return len(ids)

    async def purge_events(self, batch: int = PURGE_BATCH) -> int:
        """Deletes up to `batch` of the feed's oldest events, those older than
        `event_retention_days`, in one short transaction, and moves the feed's horizon
        (`OutboxHorizon`) to the last position deleted; returns how many.

        Only a run of positions from the horizon on is deleted, so everything before the horizon
        is gone and everything after it is kept: the feed can then tell exactly whether a reader
        missed an event. The run ends at the first event too young, or one a webhook delivery is
        still pending for (a receiver that is down must still get it); finished deliveries of the
        events deleted go with them. An event not numbered yet is never deleted. Relays purging at
        once take turns on the horizon's row."""
        days = self.settings.event_retention_days
        if days <= 0:
            return 0
        async with self.db.writer() as session, session.begin():
            now = await database_now(session)
            horizon = await _lock_horizon(session)
            pending = exists().where(
                WebhookDelivery.event_id == OutboxEvent.id, WebhookDelivery.status.not_in(FINISHED)
            )
            rows = (
                await session.execute(
                    select(OutboxEvent.id, OutboxEvent.position, OutboxEvent.created_at, pending)
                    .where(OutboxEvent.position > horizon.purged_through)
                    .order_by(OutboxEvent.position)
                    .limit(batch)
                )
            ).all()
            cutoff = now - timedelta(days=days)
            run: list[uuid.UUID] = []
            last = horizon.purged_through
            for event_id, position, created_at, held in rows:
                if position is None or created_at >= cutoff or held:  # (numbered: position > horizon)
                    break
                run.append(event_id)
                last = position
            if not run:
                return 0
            # Finished ones only, still: a delivery made pending again since the read above (a
            # redelivery, on PostgreSQL) keeps its event, whose deletion the foreign key then
            # refuses, and the next turn's run stops before it. (SQLite's writer holds the
            # database from the read on.)
            finished = select(WebhookDelivery.id).where(
                WebhookDelivery.event_id.in_(run), WebhookDelivery.status.in_(FINISHED)
            )
            await session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(finished)))
            await session.execute(
                delete(WebhookDelivery).where(
                    WebhookDelivery.event_id.in_(run), WebhookDelivery.status.in_(FINISHED)
                )
            )
            await session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(run)))
            horizon.purged_through = last
            horizon.purged_at = now
        log.info(
            "relay %s deleted %d events past the retention period (through position %d)",
            self.relay_id,
            len(run),
            last,
        )
        return len(run)

    async def release(self) -> None:
        """Graceful shutdown: record what was sent and not yet recorded if the database allows,
        and hand back the other claims, so another relay sends them now."""
        if self.unrecorded:
            kept, self.unrecorded = self.unrecorded, []
            try:
                await self.record(kept)
            except Exception:
                log.warning("relay %s: %d outcomes left unrecorded", self.relay_id, len(kept))
        if not self.claimed:
            return
        async with self.db.writer() as session, session.begin():
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(self.claimed), WebhookDelivery.claimed_by == self.relay_id)
                .values(claimed_by=None, claimed_until=None)
            )
        log.info("relay %s released %d claimed deliveries", self.relay_id, len(self.claimed))
        self.claimed.clear()


async def run_standalone(settings: Settings, *, check_keys: bool = False) -> None:
    """`mediation relay`: run until SIGTERM or SIGINT, then hand back claimed work and exit.
    `check_keys`: the keys were not checked at start (the database did not answer then)."""
    from mediation.core.secrets import resolve_secrets

    secrets = resolve_secrets(settings)
    cipher = PiiCipher.from_secrets(secrets.pii_encryption_keys, secrets.pii_index_key)
    db = Database(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await Relay(db, settings, cipher).run(stop, keys=KeyVerdict(settings) if check_keys else None)
    finally:
        await db.dispose()
