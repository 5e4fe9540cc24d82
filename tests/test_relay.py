"""The relay as its own process (`mediation relay`): crash safety, several relays at once, graceful
shutdown, and the pull feed read while many writers commit.

Relays run as real subprocesses against the test's database and deliver to a real HTTP receiver
that verifies every delivery with the Standard Webhooks library. Crashes are injected with
`MEDIATION_RELAY_FAULT` (the relay SIGKILLs itself after its claim commits, or after it sent a
batch but before it recorded the outcome).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mediation.core.db import utcnow
from mediation.core.settings import Settings
from mediation.events.models import OutboxEvent
from mediation.events.service import SOURCE, TYPE_PREFIX
from mediation.events.webhooks import SECRET_PREFIX
from tests.conftest import TEST_SECRETS
from tests.receiver import Receiver, attempts_of, deliveries_of
from tests.support import PATHS, person

# Relays in processes of their own, with leases and send timeouts measured in seconds.
pytestmark = pytest.mark.serial

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The feed test sends ~1,000 requests in well under a minute through a handful of principals.
    return settings.model_copy(update={"rate_limit_per_minute": 1_000_000})


# ---- relay subprocesses ---------------------------------------------------------------------------


@dataclass
class RelayProcess:
    proc: asyncio.subprocess.Process
    log: Path

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    async def exited(self, seconds: float = 30.0) -> int:
        try:
            return await asyncio.wait_for(self.proc.wait(), seconds)
        except TimeoutError:
            raise AssertionError(f"relay did not exit in {seconds}s; its log:\n{self.output()}") from None

    async def started(self, seconds: float = 30.0) -> None:
        """Until the relay logs that its loop runs."""
        deadline = time.monotonic() + seconds
        while " started" not in self.output():
            assert self.returncode is None, self.output()
            assert time.monotonic() < deadline, f"relay did not start in {seconds}s:\n{self.output()}"
            await asyncio.sleep(0.05)

    async def terminate(self, seconds: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return await self.exited(seconds)

    async def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


@contextlib.asynccontextmanager
async def relays(api: Any, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[RelayProcess]]]:
    """`start(name, **env)` launches `mediation relay`; every one is killed when the block ends."""
    started: list[RelayProcess] = []

    async def start(name: str, **env: str) -> RelayProcess:
        base = {k: v for k, v in os.environ.items() if not k.startswith("MEDIATION_")}
        base.update(
            {
                "MEDIATION_DATABASE_URL": api.app.state.settings.database_url,
                "MEDIATION_JWT_SECRET": TEST_SECRETS["jwt_secret"],
                "MEDIATION_PII_ENCRYPTION_KEYS": TEST_SECRETS["pii_encryption_keys"],
                "MEDIATION_PII_INDEX_KEY": TEST_SECRETS["pii_index_key"],
                "MEDIATION_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
                "MEDIATION_RELAY_POLL_SECONDS": "0.1",
                # The receiver answers at once; a short send timeout allows the short leases below.
                "MEDIATION_WEBHOOK_TIMEOUT_SECONDS": "1",
                "MEDIATION_SECRETS_FILE": str(tmp_path / "unused.secrets.json"),
                "PYTHONPATH": str(ROOT / "src"),
            }
        )
        base.update({f"MEDIATION_{k.upper()}": v for k, v in env.items()})
        log = tmp_path / f"relay-{name}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "mediation.cli",
                "relay",
                env=base,
                cwd=tmp_path,  # no stray .env file
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        relay = RelayProcess(proc, log)
        started.append(relay)
        return relay

    try:
        yield start
    finally:
        for relay in started:
            await relay.kill()


# ---- data -------------------------------------------------------------------------------------------


async def subscribe(api: Any, receiver: Receiver) -> uuid.UUID:
    """Starts the receiver and subscribes it, as the center's clerk (who sees every case of the
    region), to every event type."""
    url = await receiver.start()
    response = await api.client.post("/v1/webhooks", json={"url": url}, headers=api.auth("clerk"))
    assert response.status_code == 201, response.text
    secret = response.json()["secret"]
    assert secret.startswith(SECRET_PREFIX)
    receiver.secrets = [secret]
    return uuid.UUID(response.json()["id"])


async def insert_events(api: Any, dispute: dict[str, Any], count: int) -> None:
    """Events committed outside a request (as maintenance commands write them): unnumbered, so the
    relay's sequencer numbers them and fans them out."""
    now = utcnow()
    async with api.app.state.db.writer() as session, session.begin():
        for i in range(count):
            session.add(
                OutboxEvent(
                    id=uuid.uuid4(),
                    type=TYPE_PREFIX + "registered",
                    source=SOURCE,
                    subject=dispute["case_number"],
                    dispute_id=uuid.UUID(dispute["id"]),
                    data={"dispute_id": dispute["id"], "case_number": dispute["case_number"], "n": i},
                    created_at=now,
                )
            )


async def all_event_ids(api: Any) -> set[str]:
    async with api.app.state.db.reader() as session:
        return {str(i) for i in await session.scalars(select(OutboxEvent.id))}


async def eventually(
    check: Callable[[], Awaitable[bool]], seconds: float, what: str, relay: RelayProcess | None = None
) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            log = f"; relay log:\n{relay.output()}" if relay else ""
            raise AssertionError(f"not within {seconds}s: {what}{log}")
        await asyncio.sleep(0.1)


async def all_delivered(api: Any, sub_id: uuid.UUID, count: int) -> bool:
    rows = await deliveries_of(api, sub_id)
    return len(rows) == count and all(d.status == "delivered" for d in rows)


def received(receiver: Receiver) -> Counter[str]:
    """How often each webhook-id arrived (verified, answered 2xx)."""
    for d in receiver.ok():
        # A redelivery is the same message: same id in the header and in the CloudEvent.
        assert d.event["id"] == d.webhook_id
    return Counter(d.webhook_id for d in receiver.ok())


# ---- 1. crash safety -----------------------------------------------------------------------------

LEASE = 2.0


async def _crash_setup(api: Any, receiver: Receiver) -> tuple[uuid.UUID, set[str]]:
    sub_id = await subscribe(api, receiver)
    for _ in range(3):
        await api.drive("mediating")  # 4 events each, numbered and fanned out at commit
    deliveries = await deliveries_of(api, sub_id)
    event_ids = {str(d.event_id) for d in deliveries}
    assert len(deliveries) == 3 * (1 + len(PATHS["mediating"])) == 12
    assert event_ids == await all_event_ids(api)  # the clerk's subscription sees all of them
    return sub_id, event_ids


async def test_relay_killed_after_sending_resends_after_the_lease_with_the_same_webhook_id(api, tmp_path):
    receiver = Receiver()
    try:
        sub_id, event_ids = await _crash_setup(api, receiver)
        async with relays(api, tmp_path) as start:
            crashing = await start("crash", relay_fault="after_send", relay_lease_seconds=str(LEASE))
            assert await crashing.exited() == -signal.SIGKILL, crashing.output()
            assert "injected crash at after_send" in crashing.output()

            # It sent the whole batch, and the receiver accepted it ...
            assert received(receiver) == Counter(event_ids)
            assert all(d.verified for d in receiver.deliveries)
            # ... but died before recording anything: every delivery is still pending under its claim.
            claimed = await deliveries_of(api, sub_id)
            assert {d.status for d in claimed} == {"pending"}
            assert all(d.claimed_by and d.claimed_until and d.attempts == 0 for d in claimed)
            assert await attempts_of(api, sub_id) == []
            lease_ends = {d.id: d.claimed_until for d in claimed}

            relay = await start("restart", relay_lease_seconds=str(LEASE))
            await eventually(lambda: all_delivered(api, sub_id, len(event_ids)), 30, "all delivered", relay)
            assert relay.returncode is None, relay.output()
            assert await relay.terminate() == 0, relay.output()

        rows = await deliveries_of(api, sub_id)
        for d in rows:
            # Not sent again while the dead relay's lease still held.
            assert d.delivered_at is not None and d.delivered_at >= lease_ends[d.id]
            assert d.attempts == 1 and d.claimed_by is None and d.claimed_until is None
        attempts = await attempts_of(api, sub_id)
        assert len(attempts) == len(event_ids)
        assert all(a.status_code == 200 for a in attempts)
        # At least once: every event twice (before the crash and after), always with its own id.
        counts = received(receiver)
        assert set(counts) == event_ids
        assert all(n == 2 for n in counts.values()), counts
        assert all(d.verified for d in receiver.deliveries)
    finally:
        await receiver.stop()


async def test_relay_killed_after_claiming_sends_nothing_and_the_restart_delivers_once(api, tmp_path):
    receiver = Receiver()
    try:
        sub_id, event_ids = await _crash_setup(api, receiver)
        async with relays(api, tmp_path) as start:
            crashing = await start("crash", relay_fault="after_claim", relay_lease_seconds=str(LEASE))
            assert await crashing.exited() == -signal.SIGKILL, crashing.output()
            assert "injected crash at after_claim" in crashing.output()
            assert receiver.deliveries == []
            claimed = await deliveries_of(api, sub_id)
            assert {d.status for d in claimed} == {"pending"}
            assert all(d.claimed_by and d.claimed_until for d in claimed)
            lease_ends = {d.id: d.claimed_until for d in claimed}

            relay = await start("restart", relay_lease_seconds=str(LEASE))
            await eventually(lambda: all_delivered(api, sub_id, len(event_ids)), 30, "all delivered", relay)
            await asyncio.sleep(0.5)  # room for a stray second send to show up
            assert await relay.terminate() == 0, relay.output()

        for d in await deliveries_of(api, sub_id):
            assert d.delivered_at is not None and d.delivered_at >= lease_ends[d.id]
            assert d.attempts == 1 and d.claimed_by is None
        assert received(receiver) == Counter(event_ids)  # each exactly once
        assert len(receiver.deliveries) == len(event_ids) and all(d.verified for d in receiver.deliveries)
    finally:
        await receiver.stop()


# ---- 2. several relays ---------------------------------------------------------------------------


@pytest.mark.postgres_only
async def test_two_relays_deliver_each_of_a_thousand_events_exactly_once(api, tmp_path):
    receiver = Receiver()
    try:
        dispute = await api.intake()  # before the subscription: its event goes to nobody
        before = await all_event_ids(api)
        sub_id = await subscribe(api, receiver)
        async with relays(api, tmp_path) as start:
            # Both running before the events exist, so they race for every batch from the start.
            one = await start("one", relay_batch_size="10")
            two = await start("two", relay_batch_size="10")
            await one.started()
            await two.started()
            await insert_events(api, dispute, 1000)
            await receiver.wait_for(lambda r: len(r.ok()) >= 1000, seconds=60)
            await eventually(lambda: all_delivered(api, sub_id, 1000), 30, "all delivered", one)
            await asyncio.sleep(0.5)  # room for a stray second send to show up
            assert one.returncode is None and two.returncode is None, one.output() + two.output()
            assert await one.terminate() == 0 and await two.terminate() == 0

        rows = await deliveries_of(api, sub_id)
        event_ids = {str(d.event_id) for d in rows}
        assert len(event_ids) == 1000
        assert event_ids == await all_event_ids(api) - before
        counts = received(receiver)
        assert len(counts) == 1000 and set(counts) == event_ids
        assert counts.most_common(1)[0][1] == 1, counts.most_common(3)
        assert len(receiver.deliveries) == 1000 and all(d.verified for d in receiver.deliveries)
        attempts = await attempts_of(api, sub_id)
        assert len(attempts) == 1000 and {a.attempt for a in attempts} == {1}
        by_relay = Counter(a.relay_id for a in attempts)
        assert len(by_relay) == 2, by_relay  # both took part
        # The sequencer numbered the 1,000 events once, densely, whichever relay got there first.
        async with api.app.state.db.reader() as session:
            positions = list(
                await session.scalars(select(OutboxEvent.position).order_by(OutboxEvent.position))
            )
        assert positions == list(range(1, 1002))
    finally:
        await receiver.stop()


# ---- 3. the feed under concurrent writers --------------------------------------------------------

WRITERS = 20
EVENTS_PER_WRITER = 50


@pytest.mark.postgres_only
async def test_feed_reads_every_event_once_in_commit_order_while_twenty_writers_commit(api):
    actions = PATHS["archived"]  # a case: intake plus 7 actions, 8 events
    serials = itertools.count(200, 2)

    async def writer() -> int:
        written = 0
        while written < EVENTS_PER_WRITER:
            # Different parties each time: the same two coming back after an archived case would
            # (rightly) raise a repeat-dispute alert, an event this count does not expect.
            serial = next(serials)
            parties = [person("applicant", "甲", serial), person("respondent", "乙", serial + 1)]
            dispute = await api.intake(parties=parties)
            written += 1
            for action in actions[: EVENTS_PER_WRITER - written]:
                dispute = await api.step(dispute, action)
                written += 1
        return written

    seen: list[dict[str, Any]] = []
    writers_done = asyncio.Event()

    async def reader() -> int:
        cursor, pages = None, 0
        while True:
            done = writers_done.is_set()  # read before the page: an empty page after it is final
            params: dict[str, Any] = {"limit": 37}
            if cursor:
                params["after"] = cursor
            response = await api.client.get("/v1/events", params=params, headers=api.auth("clerk"))
            assert response.status_code == 200, response.text
            page = response.json()
            pages += 1
            seen.extend(page["items"])
            if not page["items"]:
                assert page["next_cursor"] == cursor or cursor is None
                if done:
                    return pages
                await asyncio.sleep(0.01)
            cursor = page["next_cursor"]

    async def write_all() -> list[int]:
        try:
            return await asyncio.gather(*(writer() for _ in range(WRITERS)))
        finally:
            writers_done.set()

    started = time.monotonic()
    written, pages = await asyncio.wait_for(asyncio.gather(write_all(), reader()), timeout=120)
    assert sum(written) == WRITERS * EVENTS_PER_WRITER == 1000
    # 1000 lifecycle events, plus the early-warning alerts that 125 neighbour disputes in one
    # village within minutes rightly raise (a cluster, which each later case joins).
    everything = await all_event_ids(api)
    total = len(everything)
    assert total >= 1000
    # The reader really read alongside the writers, not after them.
    assert pages > total // 37 + 1, (pages, time.monotonic() - started)

    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)) == total  # no event twice
    assert set(ids) == everything  # and none skipped
    sequences = [int(e["sequence"]) for e in seen]
    assert sequences == list(range(1, total + 1))  # strictly increasing, without gaps: commit order
    versions: dict[str, list[int]] = defaultdict(list)
    for e in seen:
        versions[e["data"]["dispute_id"]].append(e["data"]["version"])
    assert sum(len(v) for v in versions.values()) == total
    for dispute_id, case_versions in versions.items():
        assert case_versions == list(range(1, len(case_versions) + 1)), (dispute_id, case_versions)
    async with api.app.state.db.reader() as session:
        assert await session.scalar(select(func.count()).where(OutboxEvent.position.is_(None))) == 0


# ---- 4. graceful shutdown -------------------------------------------------------------------------


@dataclass
class SlowReceiver(Receiver):
    """Holds each request for `delay` seconds before answering, so a batch is in flight for a while."""

    delay: float = 0.0
    holding: int = 0

    async def _app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.delay:
            self.holding += 1
            try:
                await asyncio.sleep(self.delay)
            finally:
                self.holding -= 1
        await super()._app(scope, receive, send)


async def test_sigterm_stops_the_relay_cleanly_and_leaves_nothing_claimed(api, tmp_path):
    receiver = SlowReceiver(delay=0.4)
    try:
        dispute = await api.intake()
        sub_id = await subscribe(api, receiver)
        await insert_events(api, dispute, 200)
        async with relays(api, tmp_path) as start:
            # A long lease: a claim left behind would hold its delivery for the rest of the test. A
            # long send timeout: a send the receiver took but answered after the timeout (a busy
            # machine) is a failed attempt, sent again by design (at least once), which is not
            # what this test is about.
            relay = await start(
                "graceful", relay_batch_size="10", relay_lease_seconds="600", webhook_timeout_seconds="30"
            )
            await receiver.wait_for(lambda r: len(r.ok()) >= 10 and r.holding > 0, seconds=30)
            assert relay.returncode is None, relay.output()
            assert await relay.terminate() == 0, relay.output()

            rows = await deliveries_of(api, sub_id)
            assert len(rows) == 200
            pending = [d for d in rows if d.status == "pending"]
            assert pending, "the relay was stopped mid-work"
            assert all(d.claimed_by is None and d.claimed_until is None for d in rows)
            # The batch in flight at SIGTERM was finished and recorded, not left to be sent again.
            delivered = {str(d.event_id) for d in rows if d.status == "delivered"}
            assert delivered == set(received(receiver)), "every accepted send is recorded"
            assert all(d.attempts == 0 for d in pending)

            # Nothing waits for a lease: the next relay picks up the rest at once.
            receiver.delay = 0
            relay = await start(
                "next", relay_batch_size="50", relay_lease_seconds="600", webhook_timeout_seconds="30"
            )
            await eventually(lambda: all_delivered(api, sub_id, 200), 30, "all delivered", relay)
            await asyncio.sleep(0.3)
            assert await relay.terminate() == 0, relay.output()

        counts = received(receiver)
        assert len(counts) == 200 and set(counts.values()) == {1}
        assert all(d.verified for d in receiver.deliveries)
    finally:
        await receiver.stop()
