"""The relay against receivers that misbehave and a database that goes away: an answer trickled
byte by byte or never ending, a target that fails in a way nobody expected, PostgreSQL's
connections dropped while a batch is out. Receivers are real HTTP servers on 127.0.0.1; the
database is the test's."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url
from starlette.responses import StreamingResponse

from mediation.core.db import Database
from mediation.core.errors import is_connection_problem
from mediation.events import relay as relay_module
from mediation.events import webhooks
from mediation.events.models import WebhookDelivery, WebhookSubscription
from mediation.events.relay import JITTER, RECORD_TRIES, Relay
from tests.receiver import Receiver, attempts_of, deliveries_of
from tests.support import Api
from tests.test_webhook_upkeep import age

# Relays and receivers in processes of their own, timed against the clock.
pytestmark = pytest.mark.serial

TIMEOUT = 0.5  # the relay's webhook timeout in these tests
LEASE = 1.5  # its claims' lease: longer than the timeout, as settings require


@pytest.fixture
def settings(settings: Any) -> Any:
    return settings.model_copy(
        update={"webhook_timeout_seconds": TIMEOUT, "relay_lease_seconds": LEASE, "relay_poll_seconds": 0.05}
    )


@pytest.fixture
async def relays(app: Any) -> AsyncIterator[list[Relay]]:
    """Two relays of one database, as two worker processes run them."""
    made = [
        Relay(app.state.db, app.state.settings, app.state.identity.cipher, relay_id=f"relay-{n}")
        for n in (1, 2)
    ]
    yield made
    for relay in made:
        await relay.client.aclose()


async def subscribe(
    api: Api, receiver: Receiver | None, url: str | None = None, host: str | None = None
) -> uuid.UUID:
    """The center's clerk subscribes `url` (else the started receiver, under `host` if given) to
    every event."""
    if receiver is not None:
        url = await receiver.start()
        if host is not None:
            url = url.replace("127.0.0.1", host)
    response = await api.client.post("/v1/webhooks", json={"url": url}, headers=api.auth("clerk"))
    assert response.status_code == 201, response.text
    if receiver is not None:
        receiver.secrets = [response.json()["secret"]]
    return uuid.UUID(response.json()["id"])


async def _one_cycle_within(relay: Relay, seconds: float) -> int:
    """One relay cycle, which must end within `seconds` (cancelled and failed otherwise): how many
    deliveries it sent."""
    started = time.monotonic()
    cycle = asyncio.create_task(relay.run_once())
    try:
        sent = await asyncio.wait_for(asyncio.shield(cycle), seconds)
    finally:
        cycle.cancel()
    assert time.monotonic() - started < seconds
    return sent


@dataclass
class TricklingReceiver(Receiver):
    """Verifies each delivery and answers its status at once, then sends its body a few bytes at a
    time, every `every` seconds, for `seconds` (for ever when None). Counts the requests open at
    once for each webhook-id."""

    every: float = 0.05
    seconds: float | None = None
    open_now: dict[str, int] = field(default_factory=dict)
    most_at_once: int = 0
    body_sent: int = 0

    async def _app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        delivery = await self.receive_delivery(scope, receive)
        self.deliveries.append(delivery)
        status, webhook_id = delivery.answered, delivery.webhook_id
        self.open_now[webhook_id] = self.open_now.get(webhook_id, 0) + 1
        self.most_at_once = max(self.most_at_once, self.open_now[webhook_id])

        async def trickle() -> AsyncIterator[bytes]:
            started = time.monotonic()
            try:
                while self.seconds is None or time.monotonic() - started < self.seconds:
                    self.body_sent += 64
                    yield b"x" * 64
                    await asyncio.sleep(self.every)
            finally:
                self.open_now[webhook_id] -= 1

        await StreamingResponse(trickle(), status_code=status)(scope, receive, send)


class TricklingHeaders:
    """A server that answers each request with its status line and then one header line every
    `every` seconds, for `seconds`: every read the client makes gets a few bytes in time, yet the
    answer takes as long as the server likes."""

    def __init__(self, seconds: float, every: float = 0.1) -> None:
        self.seconds, self.every = seconds, every
        self.arrived = asyncio.Event()
        self.requests = 0
        self.open_now = 0
        self.most_at_once = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hooks"

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.requests += 1
        self.arrived.set()
        self.open_now += 1
        self.most_at_once = max(self.most_at_once, self.open_now)
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\n")
            started = time.monotonic()
            while time.monotonic() - started < self.seconds:
                writer.write(b"x-wait: 1\r\n")
                await writer.drain()
                await asyncio.sleep(self.every)
            writer.write(b"content-length: 0\r\n\r\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open_now -= 1
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


# ---- a receiver's answer ---------------------------------------------------------------------------


async def test_an_endless_answer_body_is_cut_short_and_the_delivery_is_recorded(
    api: Api, relays: list[Relay]
) -> None:
    """The receiver answers 200 and then streams its body for ever (or a huge one, slowly). Standard
    Webhooks asks for the status alone: the relay takes it, reads no more of the body than the
    timeout leaves it (never the whole of it), and records the delivery as delivered."""
    receiver = TricklingReceiver(seconds=None)
    relay = relays[0]
    try:
        sub_id = await subscribe(api, receiver)
        await api.intake()
        assert await _one_cycle_within(relay, TIMEOUT * 4) == 1
        [row] = await deliveries_of(api, sub_id)
        assert (row.status, row.last_status_code, row.attempts, row.claimed_by) == ("delivered", 200, 1, None)
        assert receiver.body_sent < 64 * 1024, "the body was not read"
        assert [d.verified for d in receiver.deliveries] == [True]
    finally:
        await receiver.stop()


async def test_an_answer_trickled_past_the_timeout_ends_the_send_at_the_timeout(
    api: Api, relays: list[Relay]
) -> None:
    """The receiver sends a header line every 0.1 s for six seconds: each read the client makes
    returns in time, so only a deadline on the whole send ends it. It ends at the timeout, and the
    attempt is recorded as failed, to be retried on the schedule."""
    receiver = TricklingHeaders(seconds=6)
    relay = relays[0]
    try:
        sub_id = await subscribe(api, None, await receiver.start())
        await api.intake()
        assert await _one_cycle_within(relay, TIMEOUT * 4) == 1
        [row] = await deliveries_of(api, sub_id)
        assert (row.status, row.last_status_code, row.attempts, row.claimed_by) == ("pending", None, 1, None)
        assert row.last_error is not None and "timed out" in row.last_error
    finally:
        await receiver.stop()


@pytest.mark.postgres_only
async def test_a_slow_receiver_never_gets_one_delivery_from_two_relays_at_once(
    api: Api, relays: list[Relay]
) -> None:
    """Two relays, as two worker processes run them. The first sends a delivery to a receiver that
    takes six seconds to answer. Its claim's lease is 1.5 s: were its send not ended at the timeout,
    the second relay would find the lease lapsed and send the same delivery while the first still
    waits (the relay promises never to)."""
    receiver = TricklingHeaders(seconds=6)
    first, second = relays
    try:
        await subscribe(api, None, await receiver.start())
        await api.intake()
        sending = asyncio.create_task(first.run_once())
        await asyncio.wait_for(receiver.arrived.wait(), 10)
        deadline = time.monotonic() + LEASE * 2
        while time.monotonic() < deadline:
            await second.run_once()
            await asyncio.sleep(0.05)
        sending.cancel()
        assert (receiver.requests, receiver.most_at_once) == (1, 1)
    finally:
        await receiver.stop()


# ---- a target nobody expected to fail that way -------------------------------------------------------


async def test_a_target_failing_unexpectedly_fails_its_own_delivery_not_the_batch(api: Api, app: Any) -> None:
    """One subscription's host name has a label longer than DNS allows: resolving it raises
    UnicodeError, not OSError. The other delivery of the same batch (to a private address, which a
    relay refusing private targets refuses) is recorded all the same, and so is the odd one, as a
    failed attempt: neither is left claimed until its lease lapses, to fail the next batch too."""
    private = await subscribe(api, None, "http://127.0.0.1:9/hooks")
    odd = await subscribe(api, None, "http://" + "a" * 70 + ".example.com/hooks")
    await api.intake()
    strict = app.state.settings.model_copy(update={"webhook_allow_private_targets": False})
    relay = Relay(app.state.db, strict, app.state.identity.cipher, relay_id="relay-strict")
    try:
        assert await relay.run_once() == 2
    finally:
        await relay.client.aclose()
    [refused] = await deliveries_of(api, private)
    [unresolved] = await deliveries_of(api, odd)
    for row in (refused, unresolved):
        assert (row.status, row.attempts, row.claimed_by, row.last_status_code) == ("pending", 1, None, None)
        assert [a.error for a in await attempts_of(api, row.subscription_id)] == [row.last_error]
    assert refused.last_error is not None and "non-public address" in refused.last_error
    assert unresolved.last_error is not None and "does not resolve" in unresolved.last_error
    assert relay.in_flight == set()


async def test_a_host_name_dns_cannot_carry_is_refused_at_subscription(api: Api, app: Any) -> None:
    app.state.settings.webhook_allow_private_targets = False
    response = await api.client.post(
        "/v1/webhooks", json={"url": "http://" + "a" * 70 + ".example.com/hooks"}, headers=api.auth("clerk")
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["code"] == "target_refused"


async def test_a_host_name_whose_lookup_hangs_holds_up_no_other_receiver(
    api: Api, app: Any, relays: list[Relay], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One receiver's name server never answers: the system resolver blocks the thread looking its
    host name up until it gives up. Its thirteen deliveries share one lookup, each waiting until its
    send's deadline, so that name holds one thread: the other receiver's name is looked up and its
    delivery sent in time, and the process's other threads (`asyncio.to_thread`) stay free."""
    hanging = threading.Event()
    looked_up: list[str] = []
    system_lookup = socket.getaddrinfo

    def getaddrinfo(host: str, port: object, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(host)
        if host == "stuck.example":
            hanging.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return system_lookup("127.0.0.1" if host == "fast.example" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    relay = relays[0]
    fast = Receiver()
    try:
        stuck_id = await subscribe(api, None, "http://stuck.example:9/hooks")
        for _ in range(12):
            await api.intake()
        await age(app, [d.id for d in await deliveries_of(api, stuck_id)], 1 / 1440)  # sent first
        fast_id = await subscribe(api, fast, host="fast.example")
        await api.intake()

        cycle = asyncio.create_task(_one_cycle_within(relay, TIMEOUT * 4))
        while "stuck.example" not in looked_up:  # noqa: ASYNC110 - the lookup runs in a thread
            await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.to_thread(lambda: None), TIMEOUT)
        assert await cycle == 14
        [delivered] = await deliveries_of(api, fast_id)
        assert (delivered.status, delivered.last_status_code) == ("delivered", 200)
        stuck = await deliveries_of(api, stuck_id)
        assert len(stuck) == 13
        assert {(d.status, d.attempts, d.last_error) for d in stuck} == {
            ("pending", 1, f"timed out: no answer within {TIMEOUT:g} s")
        }
        assert looked_up.count("stuck.example") == 1, "one lookup for every send to that name"
    finally:
        hanging.set()
        while webhooks._looking_up:  # noqa: ASYNC110 - the lookup's thread ends it
            await asyncio.sleep(0.01)
        await fast.stop()


# ---- the database goes away ---------------------------------------------------------------------------


@dataclass
class HoldingReceiver(Receiver):
    """Holds each delivery until `release` is set, then answers as `Receiver` does."""

    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def _app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.arrived.set()
            await self.release.wait()
        await super()._app(scope, receive, send)


@dataclass
class UnansweringReceiver(HoldingReceiver):
    """A `HoldingReceiver` that counts the requests it holds, and the most it held at once."""

    holding: int = 0
    most_held: int = 0

    async def _app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await super()._app(scope, receive, send)
        self.holding += 1
        self.most_held = max(self.most_held, self.holding)
        try:
            await super()._app(scope, receive, send)
        finally:
            self.holding -= 1


async def test_a_receiver_that_does_not_answer_holds_up_only_its_own_deliveries(api: Api, app: Any) -> None:
    """One receiver takes every delivery and answers none (until the timeout, three seconds); another
    answers at once. The relay's loop sends while it waits: a delivery to the healthy receiver,
    made while the other's are out, arrives in a moment, not when they time out. The slow receiver
    holds no more of the relay's sends than its share (two here), so the third of its deliveries
    waits and the healthy receiver still finds a free one."""
    patient = app.state.settings.model_copy(
        update={
            "webhook_timeout_seconds": 3.0,
            "relay_lease_seconds": 4.0,
            "relay_max_in_flight": 3,
            "relay_max_in_flight_per_subscription": 2,
        }
    )
    slow, fast = UnansweringReceiver(), Receiver()
    relay = Relay(app.state.db, patient, app.state.identity.cipher, relay_id="relay-loop")
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    try:
        slow_id = await subscribe(api, slow)
        for _ in range(3):
            await api.intake()
        fast_id = await subscribe(api, fast)
        task = asyncio.create_task(relay.run(stop))
        await asyncio.wait_for(slow.arrived.wait(), 10)
        await asyncio.sleep(0.3)  # room for more of the slow receiver's deliveries to go out

        made = time.monotonic()
        await api.intake()
        await fast.wait_for(lambda r: len(r.ok()) == 1, seconds=10)
        took = time.monotonic() - made
        assert took < 1.0, f"the healthy receiver waited {took:.1f} s"
        assert slow.holding == 2 and slow.most_held == 2, (slow.holding, slow.most_held)
        [delivered] = await deliveries_of(api, fast_id)
        deadline = time.monotonic() + 5
        while delivered.status != "delivered" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            [delivered] = await deliveries_of(api, fast_id)
        assert (delivered.status, delivered.attempts) == ("delivered", 1)
    finally:
        slow.release.set()
        stop.set()
        if task is not None:
            await asyncio.wait_for(task, 10)
        await slow.stop()
        await fast.stop()
    # Stopped gracefully: the two it held were answered and recorded, the other two never left.
    rows = await deliveries_of(api, slow_id)
    assert sorted((r.status, r.attempts) for r in rows) == [("delivered", 1)] * 2 + [("pending", 0)] * 2
    assert all(r.claimed_by is None for r in rows)


async def _terminate_backends(api: Api) -> int:
    import asyncpg

    from tests.conftest import PG_ADMIN_DSN

    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        return int(
            await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                api.app.state.settings.database_url.rsplit("/", 1)[1],
            )
        )
    finally:
        await admin.close()


class DatabaseLine:
    """A TCP relay between the relay under test and PostgreSQL, which the test can cut: every
    connection through it is dropped and new ones are refused, as while the server restarts, for
    that relay alone (the test's own connections go straight to the server)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.server: asyncio.Server | None = None
        self.open: set[asyncio.StreamWriter] = set()
        self.listen_port = 0

    async def up(self) -> None:
        self.server = await asyncio.start_server(self._connect, "127.0.0.1", self.listen_port)
        self.listen_port = self.server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.open):
            writer.transport.abort()
        await self.server.wait_closed()

    async def _connect(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        server_reader, server_writer = await asyncio.open_connection(self.host, self.port)
        self.open.update((client_writer, server_writer))

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                self.open.discard(writer)
                writer.transport.abort()

        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))


@pytest.mark.postgres_only
async def test_an_outcome_the_database_was_down_for_is_recorded_once_it_is_back(
    api: Api, app: Any, settings: Any
) -> None:
    """PostgreSQL goes away while a delivery is out (the relay's claim committed before): the
    receiver accepts it, and the relay cannot record that. Once the database is back the relay
    records the outcome it kept, on its next cycle: the delivery is not sent a second time when its
    claim's lease lapses, and its attempt is in the log."""
    target = make_url(settings.database_url)
    line = DatabaseLine(target.host or "127.0.0.1", target.port or 5432)
    await line.up()
    through_line = settings.model_copy(
        update={"database_url": target.set(host="127.0.0.1", port=line.listen_port).render_as_string(False)}
    )
    db = Database(through_line)
    relay = Relay(db, through_line, app.state.identity.cipher, relay_id="relay-cut-off")
    receiver = HoldingReceiver()
    try:
        sub_id = await subscribe(api, receiver)
        await api.intake()
        cycle = asyncio.create_task(relay.run_once())
        await asyncio.wait_for(receiver.arrived.wait(), 10)
        await line.down()
        receiver.release.set()
        with pytest.raises(Exception) as failed:
            await cycle
        assert is_connection_problem(failed.value), repr(failed.value)
        [row] = await deliveries_of(api, sub_id)
        assert (row.status, row.claimed_by) == ("pending", "relay-cut-off")

        await line.up()
        deadline = time.monotonic() + LEASE * 3  # long enough for the claim to lapse
        while time.monotonic() < deadline:
            await relay.run_once()
            await asyncio.sleep(0.05)
        [row] = await deliveries_of(api, sub_id)
        assert (row.status, row.attempts, row.claimed_by) == ("delivered", 1, None)
        assert [d.answered for d in receiver.deliveries] == [200], "sent once"
        assert [a.status_code for a in await attempts_of(api, sub_id)] == [200]
        assert relay.in_flight == set()
    finally:
        await receiver.stop()
        await relay.client.aclose()
        await db.dispose()
        await line.down()


# ---- clocks ---------------------------------------------------------------------------------------------


def _host_clock_off_by(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The relay's host clock runs `seconds` off (skewed, or just jumped)."""
    monkeypatch.setattr(relay_module, "utcnow", lambda: datetime.now(UTC) + timedelta(seconds=seconds))


@pytest.mark.postgres_only
async def test_a_relay_whose_clock_runs_ahead_does_not_take_a_claim_still_held(
    api: Api, relays: list[Relay], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first relay claims a delivery for its lease. The second relay's host clock is two
    minutes ahead: judged by that clock the lease has long lapsed, so it would send the delivery
    while the first does. Leases are judged by the database's clock, which every relay shares."""
    first, second = relays
    await subscribe(api, None, "http://127.0.0.1:9/hooks")
    await api.intake()
    [job] = await first.claim()
    _host_clock_off_by(monkeypatch, 120)
    assert await second.claim() == []
    await first.release()
    [taken] = await second.claim()  # handed back: taken at once, whatever its clock says
    assert taken.delivery_id == job.delivery_id


@pytest.mark.postgres_only
async def test_a_relay_whose_clock_runs_behind_waits_out_the_retry_schedule(
    api: Api, app: Any, relays: list[Relay], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relay whose host clock is an hour behind takes the new delivery as due (by its own clock
    it would not be for an hour), signs it with a time the receiver accepts (Standard Webhooks
    allows five minutes either way: the receiver answers 500, not 400) and records the failed
    attempt: the retry is due the schedule's wait after it by the database's clock, not an hour
    early (which every other relay would take as due at once, running the schedule through in
    seconds)."""
    app.state.settings.webhook_retry_schedule_seconds = [300.0, 300.0]
    receiver = Receiver(default=500)
    behind, on_time = relays
    try:
        sub_id = await subscribe(api, receiver)
        await api.intake()
        _host_clock_off_by(monkeypatch, -3600)
        assert await behind.run_once() == 1
        monkeypatch.undo()
        assert await on_time.run_once() == 0, "the retry is not due for five minutes"
        [row] = await deliveries_of(api, sub_id)
        async with api.app.state.db.reader() as session:
            database_now = await session.scalar(select(func.now()))
        wait = (row.next_attempt_at - database_now).total_seconds()
        assert 300 * (1 - JITTER) - 5 <= wait <= 300 * (1 + JITTER), wait
        assert [d.answered for d in receiver.deliveries] == [500]
    finally:
        await receiver.stop()


async def _lease_lapsed(app: Any, delivery_id: uuid.UUID) -> None:
    """The claim's lease ends a moment ago (time moved on, as the database's clock judges it)."""
    async with app.state.db.writer() as session, session.begin():
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(claimed_until=datetime.now(UTC) - timedelta(seconds=1))
        )


async def test_an_outcome_whose_delivery_was_deleted_meanwhile_is_dropped_and_the_relay_goes_on(
    api: Api, app: Any, relays: list[Relay], caplog: pytest.LogCaptureFixture
) -> None:
    """The relay sent an old delivery and could not record the outcome (the database was away).
    By the time it can, the subscription was disabled, the claim's lease lapsed and another relay's
    retention pass deleted the cancelled delivery. The outcome has no delivery left to go with: it
    is dropped with a log line, and the relay claims and sends the rest as before."""
    first, second = relays
    gone, other = Receiver(), Receiver()
    try:
        gone_id = await subscribe(api, gone)
        await api.intake()
        [old] = await deliveries_of(api, gone_id)
        await age(app, [old.id], 40)
        [job] = await first.claim()
        outcome = await first.send(job)
        assert outcome.status_code == 200
        first.unrecorded.append(outcome)  # the database was away when the answer came
        response = await api.client.post(
            f"/v1/webhooks/{gone_id}/disable", json={}, headers=api.auth("clerk")
        )
        assert response.status_code == 200, response.text
        await _lease_lapsed(app, old.id)
        assert await second.purge_expired() == 1

        other_id = await subscribe(api, other)
        await api.intake()
        with caplog.at_level(logging.WARNING, logger="mediation.events.relay"):
            assert await first.run_once() == 1
        assert f"webhook delivery {old.id} was deleted while attempt 1 was out" in caplog.text
        assert first.unrecorded == [] and first.in_flight == set()
        [delivered] = await deliveries_of(api, other_id)
        assert (delivered.status, delivered.attempts) == ("delivered", 1)
    finally:
        await gone.stop()
        await other.stop()


_REFUSE_418 = {
    "sqlite": (
        [
            "CREATE TRIGGER refuse_418 BEFORE INSERT ON webhook_attempts WHEN NEW.status_code = 418"
            " BEGIN SELECT RAISE(ABORT, 'attempts answered 418 are refused'); END"
        ],
        ["DROP TRIGGER IF EXISTS refuse_418"],
    ),
    "postgresql": (
        [
            "CREATE FUNCTION refuse_418() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.status_code = 418 THEN RAISE EXCEPTION 'attempts answered 418 are refused'; END IF;"
            " RETURN NEW; END $$",
            "CREATE TRIGGER refuse_418 BEFORE INSERT ON webhook_attempts"
            " FOR EACH ROW EXECUTE FUNCTION refuse_418()",
        ],
        ["DROP TRIGGER IF EXISTS refuse_418 ON webhook_attempts", "DROP FUNCTION IF EXISTS refuse_418()"],
    ),
}


async def test_an_outcome_the_database_refuses_holds_back_nothing_and_is_dropped_after_a_few_tries(
    api: Api, app: Any, relays: list[Relay], caplog: pytest.LogCaptureFixture
) -> None:
    """The database refuses to record one outcome (a rule refusing attempts answered 418 stands in
    for any error but the database being away). The batch's other outcome is recorded all the
    same; the refused one is tried again on the next turns, which go on claiming and sending, and
    after the last try it is dropped with a log line. Its claim lapses, and the delivery goes again."""
    relay = relays[0]
    teapot, healthy = Receiver(script=[418]), Receiver()
    dialect = app.state.db.engine.dialect.name
    create, drop = _REFUSE_418[dialect]
    async with app.state.db.writer() as session, session.begin():
        for statement in create:
            await session.execute(text(statement))
    try:
        teapot_id = await subscribe(api, teapot)
        healthy_id = await subscribe(api, healthy)
        await api.intake()
        with caplog.at_level(logging.WARNING, logger="mediation.events.relay"):
            assert await relay.run_once() == 2
            assert [d.status for d in await deliveries_of(api, healthy_id)] == ["delivered"]
            [refused] = await deliveries_of(api, teapot_id)
            for _ in range(RECORD_TRIES - 1):
                assert [o.job.delivery_id for o in relay.unrecorded] == [refused.id]
                await api.intake()
                assert await relay.run_once() == 2, "claiming and sending go on"
        assert relay.unrecorded == [] and relay.in_flight == set()
        assert (
            f"webhook delivery {refused.id} attempt 1 dropped, not recorded after {RECORD_TRIES} tries"
            in (caplog.text)
        )
        assert len(healthy.ok()) == RECORD_TRIES
        [row] = [d for d in await deliveries_of(api, teapot_id) if d.id == refused.id]
        assert (row.status, row.attempts, row.claimed_by) == ("pending", 0, relay.relay_id)

        await _lease_lapsed(app, refused.id)
        assert await relay.run_once() == 1
        [row] = [d for d in await deliveries_of(api, teapot_id) if d.id == refused.id]
        assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 200)
        assert [d.answered for d in teapot.deliveries if d.webhook_id == teapot.deliveries[0].webhook_id] == [
            418,
            200,
        ]
    finally:
        async with app.state.db.writer() as session, session.begin():
            for statement in drop:
                await session.execute(text(statement))
        await teapot.stop()
        await healthy.stop()


async def test_a_relay_does_not_claim_again_a_delivery_whose_outcome_it_still_holds(
    api: Api, app: Any, relays: list[Relay]
) -> None:
    """The relay sent a delivery and holds its outcome, not recorded yet (the database was away),
    past the claim's lease. Another relay may take the delivery over (at least once), but this one
    does not claim it a second time while the first outcome is still its own to record."""
    first, second = relays
    receiver = Receiver()
    try:
        await subscribe(api, receiver)
        await api.intake()
        [job] = await first.claim()
        first.unrecorded.append(await first.send(job))
        await _lease_lapsed(app, job.delivery_id)
        assert await first.claim() == []
        assert [j.delivery_id for j in await second.claim()] == [job.delivery_id]
    finally:
        await receiver.stop()


async def test_a_subscription_whose_secret_cannot_be_read_holds_up_no_other_receiver(
    api: Api, app: Any, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A secret encrypted under a key no longer configured (retired from
    MEDIATION_PII_ENCRYPTION_KEYS too early): that subscription's delivery cannot be signed. It
    waits, pending and unclaimed, for the key; the other receiver's delivery, made after it, goes."""
    lost = await subscribe(api, None, "http://127.0.0.1:9/hooks")
    async with app.state.db.writer() as session:
        await session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == lost)
            .values(secret_enc="retired.AAAA")
        )
        await session.commit()
    working = await subscribe(api, receiver)
    await api.intake()
    relay = Relay(app.state.db, app.state.settings, app.state.identity.cipher, relay_id="relay-keys")
    try:
        with caplog.at_level(logging.ERROR, logger="mediation.events.relay"):
            assert await relay.run_once() == 1
            assert await relay.run_once() == 0  # left out, not tried and logged again each cycle
    finally:
        await relay.client.aclose()
    [sent] = await deliveries_of(api, working)
    assert sent.status == "delivered" and len(receiver.ok()) == 1
    [waiting] = await deliveries_of(api, lost)
    assert (waiting.status, waiting.attempts, waiting.claimed_by) == ("pending", 0, None)
    assert sum(str(lost) in r.getMessage() for r in caplog.records) == 1
