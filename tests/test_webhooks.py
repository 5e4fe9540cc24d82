"""Webhooks: Standard Webhooks signatures over CloudEvents, retries, 410, dead letters and
redelivery, secret rotation, visibility, SSRF refusal, atomicity with the change, graceful shutdown.

The relay is driven by hand (`run_once`, `claim`, `release`) so each test sees deliveries exactly
when it expects; the receiver is a real HTTP server verifying with the reference library.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from mediation.app import create_app
from mediation.core.http import encode_cursor
from mediation.events import webhooks
from mediation.events.models import (
    OutboxEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscribersVersion,
    WebhookSubscription,
)
from mediation.events.relay import Outcome, Relay
from tests.receiver import Receiver
from tests.support import Api, person, resident_id
from tests.test_audit import records, verified

PREFIX = "cn.mediation.dispute."


# ---- helpers ------------------------------------------------------------------------------------


async def subscribe(
    api: Any,
    url: str,
    *,
    role: str = "clerk",
    org: str | None = None,
    event_types: list[str] | None = None,
    receiver: Receiver | None = None,
) -> dict[str, Any]:
    headers = api.auth(role, org)
    response = await api.client.post(
        "/v1/webhooks", json={"url": url, "event_types": event_types or []}, headers=headers
    )
    assert response.status_code == 201, response.text
    sub = response.json()
    assert sub["secret"].startswith("whsec_")
    assert sub["active"] is True
    sub["_headers"] = headers
    if receiver is not None:
        receiver.secrets = [sub["secret"]]
    return sub


async def deliveries_of(api: Any, sub: dict[str, Any], status: str | None = None) -> list[dict[str, Any]]:
    params = {"status": status} if status else {}
    response = await api.client.get(
        f"/v1/webhooks/{sub['id']}/deliveries", params=params, headers=sub["_headers"]
    )
    assert response.status_code == 200, response.text
    return response.json()


async def attempts_of(api: Any, sub: dict[str, Any], delivery_id: str) -> list[dict[str, Any]]:
    response = await api.client.get(f"/v1/webhook-deliveries/{delivery_id}/attempts", headers=sub["_headers"])
    assert response.status_code == 200, response.text
    return response.json()


async def pump(relay: Relay, until: Callable[[], Any], seconds: float = 15.0) -> None:
    """Run relay cycles until `until()` holds (it may be async)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        await relay.run_once()
        done = until()
        if inspect.isawaitable(done):
            done = await done
        if done:
            return
        if loop.time() > deadline:
            raise AssertionError(f"relay: condition not met in {seconds}s")
        await asyncio.sleep(0.02)


async def delivery_count(app: Any, subscription_id: str) -> int:
    async with app.state.db.reader() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(WebhookDelivery)
                .where(WebhookDelivery.subscription_id == uuid.UUID(subscription_id))
            )
            or 0
        )


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def cancelling_order(app: Any, sub_id: uuid.UUID) -> list[uuid.UUID]:
    """The order in which cancelling a subscription's pending deliveries takes them (found by
    cancelling them in a transaction rolled back)."""
    async with app.state.db.engine.connect() as probe:
        order = await probe.execute(
            text(
                "UPDATE webhook_deliveries SET status = 'cancelled'"
                " WHERE subscription_id = :id AND status = 'pending' RETURNING id"
            ),
            {"id": sub_id},
        )
        taken = list(order.scalars())
        await probe.rollback()
    return taken


@asynccontextmanager
async def holding(app: Any, table: str, row_id: uuid.UUID) -> AsyncIterator[None]:
    """A third transaction holds the row (PostgreSQL) until the block ends."""
    async with app.state.db.engine.connect() as holder:
        await holder.execute(text(f"SELECT 1 FROM {table} WHERE id = :id FOR NO KEY UPDATE"), {"id": row_id})
        try:
            yield
        finally:
            await holder.rollback()


async def lock_waiters(app: Any, count: int, seconds: float = 10.0) -> None:
    """Waits until `count` of the test database's sessions wait for a row lock (PostgreSQL)."""
    import asyncpg

    from tests.conftest import PG_ADMIN_DSN

    name = app.state.settings.database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            waiting = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", name
            )
            if waiting >= count:
                return
            assert asyncio.get_running_loop().time() < deadline, f"{waiting} sessions wait for a lock"
            await asyncio.sleep(0.02)
    finally:
        await admin.close()


# ---- 1. format and signatures -------------------------------------------------------------------


async def test_deliveries_are_signed_cloudevents_without_personal_data(api, relay, receiver):
    sub = await subscribe(api, receiver.url, receiver=receiver)
    dispute = await api.intake()
    dispute = await api.step(dispute, "accept")
    dispute = await api.step(dispute, "assign")

    await pump(relay, lambda: len(receiver.deliveries) >= 3)
    assert len(receiver.deliveries) == 3
    assert all(d.verified for d in receiver.deliveries), "every delivery verifies with the reference library"
    assert [d.answered for d in receiver.deliveries] == [200, 200, 200]

    events = sorted((d.event for d in receiver.deliveries), key=lambda e: int(e["sequence"]))
    assert [e["type"] for e in events] == [PREFIX + "registered", PREFIX + "accepted", PREFIX + "assigned"]
    assert len({e["id"] for e in events}) == 3
    for d in receiver.deliveries:
        event = d.event
        assert d.headers["webhook-id"] == event["id"]
        assert abs(int(d.headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60
        signatures = d.headers["webhook-signature"].split(" ")
        assert len(signatures) == 1 and signatures[0].startswith("v1,")
        assert d.headers["content-type"].startswith("application/cloudevents+json")
        assert event["specversion"] == "1.0"
        assert event["source"] == "/mediation/disputes"
        assert event["subject"] == dispute["case_number"]
        assert event["data"]["case_number"] == dispute["case_number"]
        assert event["data"]["dispute_id"] == dispute["id"]
        assert parse_time(event["time"]) == api.app.state.clock.now()  # when the change happened
        assert event["datacontenttype"] == "application/json"
        uuid.UUID(event["id"])
    assigned = events[-1]["data"]
    assert assigned["from"] == "accepted" and assigned["to"] == "assigned"
    assert assigned["body_id"] == str(api.bodies["village"]) and assigned["version"] == 3

    # Thin payloads: nothing of the parties leaves the center.
    for d in receiver.deliveries:
        text = d.body.decode()
        for secret_fact in (
            "张三",
            "李四",
            resident_id(1),
            resident_id(2),
            person("applicant", "张三", 1)["phone"],
            person("respondent", "李四", 2)["phone"],
            "枫桥镇",
            "院墙滴水",
        ):
            assert secret_fact not in text, secret_fact

    # The same bytes with one character changed, or re-signed for ten minutes ago, are refused.
    secret = sub["secret"]
    good = receiver.deliveries[0]
    Webhook(secret).verify(good.body, good.headers)  # the original still verifies
    tampered = good.body.replace(dispute["case_number"].encode(), b"330681-2026-999999", 1)
    assert tampered != good.body
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, good.headers)
    for when, verifies in ((datetime.now(UTC) - timedelta(minutes=10), False), (datetime.now(UTC), True)):
        headers = {
            "webhook-id": good.headers["webhook-id"],
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": Webhook(secret).sign(good.headers["webhook-id"], when, good.body.decode()),
        }
        if verifies:
            Webhook(secret).verify(good.body, headers)  # only the timestamp differs between the two
        else:
            with pytest.raises(WebhookVerificationError):
                Webhook(secret).verify(good.body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo3ODkwMTI=").verify(good.body, good.headers)

    # The API agrees: three deliveries, each delivered at the first attempt.
    listed = await deliveries_of(api, sub)
    assert sorted(d["event_id"] for d in listed) == sorted(e["id"] for e in events)
    assert {(d["status"], d["attempts"], d["last_status_code"]) for d in listed} == {("delivered", 1, 200)}


# ---- 2. retries, 410, dead letters --------------------------------------------------------------


async def test_deliveries_carry_the_feeds_sequence_which_orders_as_text(api, relay, receiver):
    """Receivers order deliveries by `sequence`, which CloudEvents compares as strings: past the
    ninth event it still sorts in commit order, and it is the feed's own."""
    await subscribe(api, receiver.url, receiver=receiver)
    for _ in range(11):
        await api.intake()
    await pump(relay, lambda: len(receiver.ok()) >= 11)
    delivered = {d.event["id"]: d.event["sequence"] for d in receiver.deliveries}
    fed = (await api.client.get("/v1/events", params={"limit": 500})).json()["items"]
    assert delivered == {e["id"]: e["sequence"] for e in fed}
    in_commit_order = [delivered[e["id"]] for e in fed]
    assert sorted(delivered.values()) == in_commit_order
    assert [int(s) for s in in_commit_order] == list(range(1, 12))


async def test_retries_follow_the_schedule_until_delivered(api, app, relay, receiver):
    schedule = [1.0, 0.3, 0.2]
    app.state.settings.webhook_retry_schedule_seconds = schedule
    receiver.script = [500, 500, 500]
    sub = await subscribe(api, receiver.url, receiver=receiver)
    await api.intake()

    assert await relay.run_once() == 1
    assert [d.answered for d in receiver.deliveries] == [500]
    # Not due yet: a cycle right away sends nothing.
    assert await relay.run_once() == 0
    assert len(receiver.deliveries) == 1
    (pending,) = await deliveries_of(api, sub)
    assert pending["status"] == "pending" and pending["attempts"] == 1 and pending["last_status_code"] == 500
    wait = (parse_time(pending["next_attempt_at"]) - datetime.now(UTC)).total_seconds()
    assert 0 < wait <= schedule[0] * 1.2 + 0.05, wait

    await pump(relay, lambda: len(receiver.ok()) == 1)
    assert [d.answered for d in receiver.deliveries] == [500, 500, 500, 200]
    assert all(d.verified for d in receiver.deliveries)
    # The same webhook-id on every retry, so the receiver can drop duplicates.
    assert len({d.webhook_id for d in receiver.deliveries}) == 1

    (delivered,) = await deliveries_of(api, sub)
    assert delivered["status"] == "delivered"
    assert delivered["attempts"] == 4
    assert delivered["last_status_code"] == 200 and delivered["delivered_at"] is not None
    assert delivered["event_id"] == receiver.deliveries[0].webhook_id
    attempts = await attempts_of(api, sub, delivered["id"])
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert [a["status_code"] for a in attempts] == [500, 500, 500, 200]
    assert all(isinstance(a["latency_ms"], int) and a["latency_ms"] >= 0 for a in attempts)
    assert {a["relay_id"] for a in attempts} == {"relay-test"}
    # Each wait is the schedule's, give or take the 20 % jitter.
    started = [parse_time(a["started_at"]) for a in attempts]
    for i, expected in enumerate(schedule):
        gap = (started[i + 1] - started[i]).total_seconds()
        assert gap >= expected * 0.8 - 0.01, (i, gap)
        assert gap < expected * 1.2 + 1.0, (i, gap)


async def test_410_disables_the_subscription_and_cancels_what_is_pending(api, app, relay, receiver):
    app.state.settings.relay_batch_size = 1  # one delivery per cycle: the second is still pending
    receiver.script = [410]
    sub = await subscribe(api, receiver.url, receiver=receiver)
    dispute = await api.intake()
    dispute = await api.step(dispute, "accept")

    assert await relay.run_once() == 1
    assert [d.answered for d in receiver.deliveries] == [410]
    assert await relay.run_once() == 0

    got = (await api.client.get(f"/v1/webhooks/{sub['id']}", headers=sub["_headers"])).json()
    assert got["active"] is False
    assert "410" in got["disabled_reason"]
    deliveries = await deliveries_of(api, sub)
    assert len(deliveries) == 2
    assert {d["status"] for d in deliveries} == {"cancelled"}
    assert await deliveries_of(api, sub, "pending") == []
    answered = [d for d in deliveries if d["last_status_code"] == 410]
    assert len(answered) == 1 and answered[0]["attempts"] == 1
    attempts = await attempts_of(api, sub, answered[0]["id"])
    assert [a["status_code"] for a in attempts] == [410]
    # The relay's change is audited, by the system, as the owner's disabling would be.
    [disabled] = [r for r in await records(app) if r.action == "relay.webhook_disabled"]
    assert (disabled.actor_kind, disabled.object_type, disabled.object_id) == (
        "system",
        "webhook_subscription",
        sub["id"],
    )
    assert disabled.details == {"reason": "endpoint answered 410 Gone"}

    # New events reach nobody: no delivery is even created for a disabled subscription.
    receiver.script = []
    dispute = await api.step(dispute, "assign")
    assert await relay.run_once() == 0
    assert len(receiver.deliveries) == 1
    assert len(await deliveries_of(api, sub)) == 2
    # A cancelled delivery cannot be redelivered while the subscription stays disabled.
    response = await api.client.post(
        f"/v1/webhook-deliveries/{answered[0]['id']}/redeliver", headers=sub["_headers"]
    )
    assert response.status_code == 409, response.text


async def test_always_failing_endpoint_goes_dead_and_can_be_redelivered(api, app, receiver):
    schedule = [0.05, 0.05, 0.05]
    app.state.settings.webhook_retry_schedule_seconds = schedule
    app.state.settings.relay_poll_seconds = 0.02
    receiver.default = 500
    sub = await subscribe(api, receiver.url, receiver=receiver)
    await api.intake()

    # The relay's own loop, as in production, until the delivery is dead.
    stop = asyncio.Event()
    looping = Relay(app.state.db, app.state.settings, app.state.identity.cipher, relay_id="relay-loop")
    task = asyncio.create_task(looping.run(stop))
    try:

        async def dead() -> bool:
            return bool(await deliveries_of(api, sub, "dead"))

        deadline = asyncio.get_running_loop().time() + 15
        while not await dead():
            assert asyncio.get_running_loop().time() < deadline, "never went dead"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a few more idle cycles: a dead delivery is not retried
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)

    assert [d.answered for d in receiver.deliveries] == [500] * (len(schedule) + 1)
    (dead_one,) = await deliveries_of(api, sub, "dead")
    assert dead_one["attempts"] == len(schedule) + 1 and dead_one["last_status_code"] == 500
    assert await deliveries_of(api, sub, "pending") == []
    attempts = await attempts_of(api, sub, dead_one["id"])
    assert [a["status_code"] for a in attempts] == [500] * 4

    # The receiver is fixed; redeliver the dead letter by hand.
    receiver.default = 200
    response = await api.client.post(
        f"/v1/webhook-deliveries/{dead_one['id']}/redeliver", headers=sub["_headers"]
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "pending" and response.json()["attempts"] == 0
    relay = Relay(app.state.db, app.state.settings, app.state.identity.cipher, relay_id="relay-redeliver")
    try:
        await pump(relay, lambda: len(receiver.ok()) == 1)
    finally:
        await relay.client.aclose()
    assert receiver.ok()[0].webhook_id == dead_one["event_id"]
    (delivered,) = await deliveries_of(api, sub)
    assert delivered["status"] == "delivered" and delivered["attempts"] == 1
    assert await deliveries_of(api, sub, "dead") == []
    # The attempt log keeps the whole history, in the order it happened.
    attempts = await attempts_of(api, sub, dead_one["id"])
    assert [a["status_code"] for a in attempts] == [500, 500, 500, 500, 200]
    # Nothing left to redeliver.
    again = await api.client.post(
        f"/v1/webhook-deliveries/{dead_one['id']}/redeliver", headers=sub["_headers"]
    )
    assert again.status_code == 409


async def test_each_refused_redelivery_says_why_in_its_code(api, relay, receiver):
    """A delivery with nothing to send again and a subscription disabled are two situations: a
    client tells them apart by `code`, not by the prose of `detail`."""
    sub = await subscribe(api, receiver.url, receiver=receiver)
    await api.intake()
    (pending,) = await deliveries_of(api, sub)
    redeliver = f"/v1/webhook-deliveries/{pending['id']}/redeliver"

    refused = await api.client.post(redeliver, headers=sub["_headers"])
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert (problem["type"], problem["code"], problem["status_now"]) == (
        "/problems/conflict",
        "nothing_to_redeliver",
        "pending",
    )
    assert await relay.run_once() == 1
    refused = await api.client.post(redeliver, headers=sub["_headers"])
    assert (refused.json()["code"], refused.json()["status_now"]) == ("nothing_to_redeliver", "delivered")

    response = await api.client.post(f"/v1/webhooks/{sub['id']}/disable", json={}, headers=sub["_headers"])
    assert response.status_code == 200, response.text
    for path in (redeliver, f"/v1/webhooks/{sub['id']}/redeliver"):
        refused = await api.client.post(path, headers=sub["_headers"])
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "subscription_disabled"


async def test_a_delivery_redelivered_while_it_is_out_is_not_sent_twice_at_once(api, app, relay, receiver):
    """A relay is sending a delivery when its subscription is disabled (which cancels it), enabled
    again, and its backlog redelivered. The delivery keeps the claim it is being sent under, so
    neither that relay nor another sends it a second time meanwhile (two sends at once with one
    webhook-id). The first send's outcome, a 500 on what was its last attempt, belongs to that
    claim: it does not make the redelivered delivery dead, and the next send delivers it."""
    app.state.settings.webhook_retry_schedule_seconds = []  # one attempt, then dead
    sub = await subscribe(api, receiver.url, receiver=receiver)
    headers = sub["_headers"]
    await api.intake()
    [first] = await relay.claim()
    for step in ("disable", "enable"):
        response = await api.client.post(f"/v1/webhooks/{sub['id']}/{step}", json={}, headers=headers)
        assert response.status_code == 200, response.text
    response = await api.client.post(f"/v1/webhooks/{sub['id']}/redeliver", json={}, headers=headers)
    assert response.json() == {"redelivered": 1, "more": False}
    other = Relay(app.state.db, app.state.settings, app.state.identity.cipher, relay_id="relay-other")
    try:
        assert await relay.claim() == [] and await other.claim() == []
    finally:
        await other.client.aclose()

    receiver.script = [500]
    await relay.record([await relay.send(first)])
    (row,) = await deliveries_of(api, sub)
    assert (row["status"], row["attempts"]) == ("pending", 0), "the redelivery's schedule stands"
    assert await relay.run_once() == 1
    (row,) = await deliveries_of(api, sub)
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("delivered", 1, 200)
    assert [d.answered for d in receiver.deliveries] == [500, 200]
    assert [a["status_code"] for a in await attempts_of(api, sub, row["id"])] == [500, 200]


async def test_a_delivery_cancelled_while_it_is_out_and_accepted_is_delivered(api, relay, receiver):
    """The subscription is disabled while one of its deliveries is out; the receiver accepts it.
    It was delivered, and says so; nothing of it is claimed any more."""
    sub = await subscribe(api, receiver.url, receiver=receiver)
    await api.intake()
    [job] = await relay.claim()
    response = await api.client.post(f"/v1/webhooks/{sub['id']}/disable", json={}, headers=sub["_headers"])
    assert response.status_code == 200, response.text
    await relay.record([await relay.send(job)])
    (row,) = await deliveries_of(api, sub)
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("delivered", 1, 200)
    assert relay.in_flight == set()
    async with api.app.state.db.reader() as session:
        assert (await session.get(WebhookDelivery, job.delivery_id)).claimed_by is None


@pytest.mark.postgres_only
async def test_disabling_a_subscription_while_the_relay_records_its_410_does_not_deadlock(
    api, app, relay, receiver
):
    """The relay records a 410 (which disables the subscription and cancels what is pending for
    it) while the subscription's owner disables it. Both take the subscription's row before its
    deliveries', so one waits for the other. Were the relay to hold the delivery it records while
    it waits for the subscription, and the owner's request the subscription's other delivery while
    it waits for that one, PostgreSQL would end one of them with a deadlock. A third transaction
    holds the subscription's row until both are under way, so that they meet; the relay records the
    delivery that cancelling the subscription's deliveries comes to last (found by cancelling them
    in a transaction rolled back)."""
    receiver.script = [410]
    sub = await subscribe(api, receiver.url, receiver=receiver)
    await api.intake()
    await api.intake()
    jobs = await relay.claim()
    last = (await cancelling_order(app, uuid.UUID(sub["id"])))[-1]
    [job] = [j for j in jobs if j.delivery_id == last]
    outcome = await relay.send(job)
    assert outcome.status_code == 410
    async with holding(app, "webhook_subscriptions", uuid.UUID(sub["id"])):
        recording = asyncio.create_task(relay.record([outcome]))
        await lock_waiters(app, 1)
        disabling = asyncio.create_task(
            api.client.post(f"/v1/webhooks/{sub['id']}/disable", json={}, headers=sub["_headers"])
        )
        await lock_waiters(app, 2)
    await recording
    response = await disabling
    assert response.status_code == 200, response.text
    got = (await api.client.get(f"/v1/webhooks/{sub['id']}", headers=sub["_headers"])).json()
    assert got["active"] is False
    rows = await deliveries_of(api, sub)
    assert sorted((d["status"], d["last_status_code"] or 0) for d in rows) == [
        ("cancelled", 0),
        ("cancelled", 410),
    ]
    # The relay disabled it first: its change is audited, and the owner's request after it too.
    audited = [r.action for r in await records(app) if r.object_id == sub["id"]]
    assert audited[-2:] == ["relay.webhook_disabled", "disable_subscription"], audited
    assert (await verified(app))["ok"] is True


# ---- 3. secret rotation -------------------------------------------------------------------------


async def test_rotated_secret_signs_alongside_the_old_one(api, app, relay, receiver):
    sub = await subscribe(api, receiver.url, receiver=receiver)
    old = sub["secret"]
    dispute = await api.intake()
    await pump(relay, lambda: len(receiver.ok()) == 1)
    assert len(receiver.deliveries[0].headers["webhook-signature"].split(" ")) == 1

    response = await api.client.post(f"/v1/webhooks/{sub['id']}/rotate-secret", headers=sub["_headers"])
    assert response.status_code == 200, response.text
    new = response.json()["secret"]
    assert new.startswith("whsec_") and new != old
    assert response.json()["previous_secret_expires_at"] is not None

    receiver.secrets = [new]  # a receiver that already switched to the new secret
    dispute = await api.step(dispute, "accept")
    await pump(relay, lambda: len(receiver.ok()) == 2)
    delivery = receiver.deliveries[-1]
    signatures = delivery.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    # One receiver knowing only the old secret and one knowing only the new both accept it.
    assert Receiver(secrets=[old]).verify(delivery.body, delivery.headers)
    assert Receiver(secrets=[new]).verify(delivery.body, delivery.headers)
    assert delivery.event["type"] == PREFIX + "accepted"

    # With no overlap, the previous secret stops signing at once.
    app.state.settings.webhook_secret_overlap_hours = 0
    response = await api.client.post(f"/v1/webhooks/{sub['id']}/rotate-secret", headers=sub["_headers"])
    newest = response.json()["secret"]
    receiver.secrets = [newest]
    await api.step(dispute, "assign")
    await pump(relay, lambda: len(receiver.ok()) == 3)
    delivery = receiver.deliveries[-1]
    assert len(delivery.headers["webhook-signature"].split(" ")) == 1
    assert Receiver(secrets=[newest]).verify(delivery.body, delivery.headers)
    assert not Receiver(secrets=[new]).verify(delivery.body, delivery.headers)
    assert not Receiver(secrets=[old]).verify(delivery.body, delivery.headers)


async def test_a_rotation_after_a_leak_stops_the_old_secret_signing_at_once(api, app, relay, receiver):
    """The deployment keeps the old secret signing for a day; whoever rotates because it leaked
    asks for no overlap, and may ask for another length within a week."""
    sub = await subscribe(api, receiver.url, receiver=receiver)
    rotate = f"/v1/webhooks/{sub['id']}/rotate-secret"
    for odd in ({"overlap_hours": -1}, {"overlap_hours": 168.5}, {"overlap_hours": "soon"}, []):
        refused = await api.client.post(rotate, json=odd, headers=sub["_headers"])
        assert refused.status_code == 422, (odd, refused.text)
    assert (await api.client.get(f"/v1/webhooks/{sub['id']}", headers=sub["_headers"])).json()[
        "previous_secret_expires_at"
    ] is None, "a refused rotation rotates nothing"

    response = await api.client.post(rotate, json={"overlap_hours": 0}, headers=sub["_headers"])
    assert response.status_code == 200, response.text
    receiver.secrets = [response.json()["secret"]]
    await api.intake()
    await pump(relay, lambda: len(receiver.ok()) == 1)
    delivery = receiver.deliveries[-1]
    assert len(delivery.headers["webhook-signature"].split(" ")) == 1
    assert not Receiver(secrets=[sub["secret"]]).verify(delivery.body, delivery.headers)

    asked = await api.client.post(rotate, json={"overlap_hours": 2}, headers=sub["_headers"])
    assert asked.status_code == 200, asked.text
    left = datetime.fromisoformat(asked.json()["previous_secret_expires_at"]) - datetime.now(UTC)
    assert timedelta(hours=2) - timedelta(minutes=1) < left <= timedelta(hours=2)


# ---- 4. visibility and filters ------------------------------------------------------------------


async def test_subscriptions_see_only_what_their_organisation_may_see(api, relay):
    court, other_court, typed = Receiver(), Receiver(), Receiver()
    for r in (court, other_court, typed):
        await r.start()
    try:
        court_sub = await subscribe(api, court.url, role="court", org="court", receiver=court)
        other_sub = await subscribe(
            api, other_court.url, role="court", org="other_court", receiver=other_court
        )
        typed_sub = await subscribe(api, typed.url, event_types=[PREFIX + "assigned"], receiver=typed)
        assert typed_sub["event_types"] == [PREFIX + "assigned"]

        dispute = await api.drive("agreement_signed")
        while await relay.run_once():
            pass
        assert court.deliveries == [] and other_court.deliveries == []
        assert [d.event["type"] for d in typed.deliveries] == [PREFIX + "assigned"]

        # Handed to the court: from now on the court hears about the case, the other court never.
        dispute = await api.step(dispute, "request_confirmation")
        dispute = await api.target_accepts(dispute)
        dispute = await api.step(dispute, "confirm")
        await pump(relay, lambda: len(court.ok()) == 3)
        while await relay.run_once():
            pass
        assert sorted(d.event["type"] for d in court.deliveries) == [
            PREFIX + "confirmation_requested",
            PREFIX + "confirmed",
            PREFIX + "handoff_accepted",
        ]
        assert all(d.event["subject"] == dispute["case_number"] for d in court.deliveries)
        assert other_court.deliveries == []
        assert [d.event["type"] for d in typed.deliveries] == [PREFIX + "assigned"]
        assert len(await deliveries_of(api, court_sub)) == 3
        assert await deliveries_of(api, other_sub) == []
        assert await delivery_count(api.app, other_sub["id"]) == 0

        # A subscription is its organisation's alone.
        response = await api.client.get(
            f"/v1/webhooks/{court_sub['id']}", headers=api.auth("court", "other_court")
        )
        assert response.status_code == 404
        listed = (await api.client.get("/v1/webhooks", headers=api.auth("court", "other_court"))).json()
        assert [s["id"] for s in listed] == [other_sub["id"]]
        assert "secret" not in listed[0]
    finally:
        for r in (court, other_court, typed):
            await r.stop()


async def test_a_body_whose_case_is_transferred_is_told_so_by_its_webhook(api, relay):
    village = Receiver()
    await village.start()
    try:
        await subscribe(api, village.url, role="body_admin", org="village", receiver=village)
        dispute = await api.step(await api.drive("assigned"), "sign_for")
        dispute = await api.step(dispute, "transfer", {"reason": "需由镇调委会调处"})
        await api.step(dispute, "assign", {"body_id": str(api.bodies["town"]), "override_reason": "转镇"})
        await pump(relay, lambda: len(village.ok()) == 3)
        while await relay.run_once():
            pass
        assert sorted(d.event["type"] for d in village.deliveries) == [
            PREFIX + "assigned",
            PREFIX + "signed_for",
            PREFIX + "transferred",
        ]
    finally:
        await village.stop()


async def test_a_change_of_subscribers_reaches_every_process_at_its_next_write(api, app, settings, clock):
    """Each process keeps who receives events under a version that database triggers renew
    (migration 0015), so a subscription made through one worker, or switched off by an operator's
    SQL, counts from the very next write of another worker, which had kept the list before."""
    other = create_app(settings, clock)  # a second worker over the same database
    async with (
        other.router.lifespan_context(other),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://second") as client,
    ):
        second = Api(client, other)
        second.bodies, second.keys, second.tokens = api.bodies, api.keys, api.tokens
        second.users, second.mediators = api.users, api.mediators
        await second.intake()
        await second.intake()  # the list (no subscription yet) is kept now

        sub = await subscribe(api, "http://127.0.0.1:9/hook")
        await second.intake()
        assert await delivery_count(app, sub["id"]) == 1

        async def version() -> str:
            async with app.state.db.reader() as session:
                return str(await session.scalar(select(WebhookSubscribersVersion.token)))

        async def operator(statement: str) -> str:
            before = await version()
            async with app.state.db.engine.begin() as conn:
                await conn.execute(text(statement))
            return before

        before = await operator("UPDATE webhook_subscriptions SET active = false")
        assert await version() != before
        await second.intake()
        assert await delivery_count(app, sub["id"]) == 1

        await operator("UPDATE webhook_subscriptions SET active = true")
        await second.intake()
        assert await delivery_count(app, sub["id"]) == 2

        # The organisation's standing and region decide what its subscriptions see; its other
        # columns do not, and leave the version alone.
        # A suspended center's own staff are stopped too, so the change it must not hear of is
        # a body's, on a case of its region.
        center = api.bodies["center"]
        assigned = await second.drive("assigned")
        seen = await delivery_count(app, sub["id"])
        before = await operator(f"UPDATE bodies SET description = 'x' WHERE id = '{center.hex}'")
        assert await version() == before
        before = await operator(f"UPDATE bodies SET active = false WHERE id = '{center.hex}'")
        assert await version() != before
        await second.step(assigned, "sign_for")
        assert await delivery_count(app, sub["id"]) == seen
        await operator(f"UPDATE bodies SET active = true WHERE id = '{center.hex}'")
        before = await operator(f"UPDATE bodies SET region_code = region_code WHERE id = '{center.hex}'")
        assert await version() != before
        await second.intake()
        assert await delivery_count(app, sub["id"]) == seen + 1

        # An emptied version table: the next write reads the list itself and writes a version.
        async with app.state.db.engine.begin() as conn:
            await conn.execute(text("DELETE FROM webhook_subscribers_version"))
        await second.intake()
        assert await delivery_count(app, sub["id"]) == seen + 2
        assert await version() not in ("", "None")
        await second.intake()
        assert await delivery_count(app, sub["id"]) == seen + 3


async def test_a_subscription_names_the_key_or_account_that_made_it(api):
    """A body's administrator tells which of its keys subscribed a URL, e.g. to disable what a key
    revoked since had subscribed."""
    key = {**api.auth("body_admin", "village"), "Authorization": ""}
    key_id = (await api.client.get("/v1/me", headers=key)).json()["id"]
    by_key = await subscribe(api, "https://hooks.example.org/by-key", role="body_admin", org="village")
    assert by_key["created_by"] == key_id
    admin = await api.signed_in("body_admin", "village")
    response = await api.client.post(
        "/v1/webhooks", json={"url": "https://hooks.example.org/by-hand"}, headers=admin
    )
    assert response.status_code == 201, response.text
    by_hand = response.json()
    assert by_hand["created_by"] == str(api.users[("body_admin", api.bodies["village"])])

    listed = {s["id"]: s["created_by"] for s in (await api.client.get("/v1/webhooks", headers=admin)).json()}
    assert listed == {by_key["id"]: key_id, by_hand["id"]: by_hand["created_by"]}
    one = await api.client.get(f"/v1/webhooks/{by_key['id']}", headers=admin)
    assert one.json()["created_by"] == key_id
    assert key_id in {k["id"] for k in (await api.client.get("/v1/api-keys", headers=admin)).json()}


async def test_only_the_bodys_administrator_manages_its_webhooks(api):
    """Where a body's events go is its administrator's to set: a mediator's key reads the body's
    subscriptions, but cannot subscribe, rotate a secret, disable, enable or redeliver (403), and
    the subscription is left as it was."""
    sub = await subscribe(api, "https://hooks.example.org/village", role="body_admin", org="village")
    mediator = {**api.auth("body_mediator", "village"), "Authorization": ""}
    attempts = {
        "subscribe": ("/v1/webhooks", {"url": "https://elsewhere.example.net/hook"}),
        "rotate": (f"/v1/webhooks/{sub['id']}/rotate-secret", {"overlap_hours": 0}),
        "disable": (f"/v1/webhooks/{sub['id']}/disable", {}),
        "enable": (f"/v1/webhooks/{sub['id']}/enable", None),
        "redeliver": (f"/v1/webhooks/{sub['id']}/redeliver", {}),
        "redeliver one": (f"/v1/webhook-deliveries/{uuid.uuid4()}/redeliver", None),
    }
    for name, (path, body) in attempts.items():
        refused = await api.client.post(path, json=body, headers=mediator)
        assert refused.status_code == 403, (name, refused.text)
        assert refused.json()["required_permission"] == "webhooks:manage", name
    seen = await api.client.get(f"/v1/webhooks/{sub['id']}", headers=mediator)
    assert seen.status_code == 200
    assert (seen.json()["active"], seen.json()["previous_secret_expires_at"]) == (True, None)
    assert [s["id"] for s in (await api.client.get("/v1/webhooks", headers=mediator)).json()] == [sub["id"]]
    assert (await api.client.get(f"/v1/webhooks/{sub['id']}/deliveries", headers=mediator)).status_code == 200
    # The administrator's key still manages it.
    rotated = await api.client.post(
        f"/v1/webhooks/{sub['id']}/rotate-secret", json={"overlap_hours": 0}, headers=sub["_headers"]
    )
    assert rotated.status_code == 200 and rotated.json()["secret"] != sub["secret"]


# ---- paging the lists: deliveries, subscriptions, attempts ----------------------------------------


async def walk(api: Any, path: str, headers: dict[str, str], **params: Any) -> list[list[dict[str, Any]]]:
    """Every page of a list answered as a JSON array, following `Link: rel="next"` to the end."""
    pages = []
    url: str | None = path
    query: dict[str, Any] | None = params
    while url is not None:
        response = await api.client.get(url, params=query, headers=headers)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        link = response.links.get("next")
        url, query = (link["url"], None) if link else (None, None)
        assert len(pages) < 50, "the pages do not end"
    return pages


async def walk_deliveries(api: Any, sub: dict[str, Any], **params: Any) -> list[list[dict[str, Any]]]:
    """Every page of the subscription's deliveries."""
    return await walk(api, f"/v1/webhooks/{sub['id']}/deliveries", sub["_headers"], **params)


async def test_an_outage_of_dead_letters_is_walked_page_by_page(api, app):
    """More dead letters than one page: the list answers a JSON array as before, and the `Link`
    header's next page walks them all, newest first, none twice and none left out, even where
    several were made at the same instant (ties go by id), and with the status filter kept."""
    sub = await subscribe(api, "https://hooks.example.org/outage")
    for _ in range(4):
        await api.intake()
    made = await deliveries_of(api, sub)
    assert len(made) >= 4
    ids = [uuid.UUID(d["id"]) for d in made]
    # All but one dead, most of them at one instant: a cursor by time alone would skip or repeat.
    same = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    async with app.state.db.writer() as session, session.begin():
        await session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id.in_(ids[1:])).values(status="dead")
        )
        await session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id.in_(ids[2:])).values(created_at=same)
        )
    dead = set(ids[1:])

    pages = await walk_deliveries(api, sub, status="dead", limit=2)
    assert len(pages) == -(-len(dead) // 2) and all(pages), [len(p) for p in pages]
    walked = [uuid.UUID(d["id"]) for page in pages for d in page]
    assert len(walked) == len(set(walked)) and set(walked) == dead
    assert {d["status"] for page in pages for d in page} == {"dead"}
    # One order on every page: newest first, ties by id, the same as one page holding them all.
    keys = [(parse_time(d["created_at"]), uuid.UUID(d["id"])) for page in pages for d in page]
    assert keys == sorted(keys, reverse=True)
    assert walked == [uuid.UUID(d["id"]) for d in await deliveries_of(api, sub, "dead")]

    # Without the filter, one a page: every delivery once; the last page names no next one.
    every = await walk_deliveries(api, sub, limit=1)
    assert [len(p) for p in every] == [1] * len(ids)
    assert sorted(uuid.UUID(p[0]["id"]) for p in every) == sorted(ids)
    last = await api.client.get(f"/v1/webhooks/{sub['id']}/deliveries", headers=sub["_headers"])
    assert "link" not in last.headers


async def test_the_subscriptions_are_walked_page_by_page(api, app):
    """The organisation's subscriptions, more than a page: a JSON array as before, the `Link`
    header's next page walking them all, oldest first, ties by id, none twice; another
    organisation's are not among them."""
    subs = [await subscribe(api, f"https://hooks.example.org/s{n}") for n in range(5)]
    await subscribe(api, "https://hooks.example.org/elsewhere", org="other_center")
    ids = [uuid.UUID(s["id"]) for s in subs]
    same = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    async with app.state.db.writer() as session, session.begin():
        await session.execute(
            update(WebhookSubscription).where(WebhookSubscription.id.in_(ids[1:4])).values(created_at=same)
        )
    headers = subs[0]["_headers"]
    pages = await walk(api, "/v1/webhooks", headers, limit=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    keys = [(parse_time(s["created_at"]), uuid.UUID(s["id"])) for page in pages for s in page]
    assert keys == sorted(keys) and sorted(k[1] for k in keys) == sorted(ids)
    assert [k[1] for k in keys] == [uuid.UUID(s["id"]) for s in (await walk(api, "/v1/webhooks", headers))[0]]
    one = await api.client.get("/v1/webhooks", params={"limit": 5}, headers=headers)
    assert len(one.json()) == 5 and "link" not in one.headers


async def test_a_deliverys_attempts_are_walked_page_by_page(api, app):
    """A delivery sent again and again has attempts without bound: they page as the deliveries
    do, in the order they were made (a redelivery numbers them from 1 again), ties by id."""
    sub = await subscribe(api, "https://hooks.example.org/attempts")
    await api.intake()
    [delivery] = await deliveries_of(api, sub)
    start = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    made = [
        (1, start),
        (2, start + timedelta(minutes=5)),
        (1, start + timedelta(hours=1)),  # redelivered
        (2, start + timedelta(hours=2)),
        (3, start + timedelta(hours=2)),  # the same instant: ties go by id
    ]
    async with app.state.db.writer() as session, session.begin():
        for attempt, at in made:
            session.add(
                WebhookAttempt(
                    id=uuid.uuid4(),
                    delivery_id=uuid.UUID(delivery["id"]),
                    attempt=attempt,
                    relay_id="test",
                    started_at=at,
                    status_code=500,
                    latency_ms=10,
                )
            )
    path = f"/v1/webhook-deliveries/{delivery['id']}/attempts"
    pages = await walk(api, path, sub["_headers"], limit=2)
    assert [len(p) for p in pages] == [2, 2, 1]
    walked = [a for page in pages for a in page]
    assert [a["attempt"] for a in walked][:3] == [1, 2, 1]
    assert [parse_time(a["started_at"]) for a in walked] == [at for _, at in made]
    assert walked == await attempts_of(api, sub, delivery["id"])


async def test_a_cursor_not_handed_out_is_refused_on_every_webhook_list(api):
    sub = await subscribe(api, "https://hooks.example.org/cursor")
    await api.intake()
    [delivery] = await deliveries_of(api, sub)
    for path, params in (
        (f"/v1/webhooks/{sub['id']}/deliveries", {"status": "dead"}),
        ("/v1/webhooks", {}),
        (f"/v1/webhook-deliveries/{delivery['id']}/attempts", {}),
    ):
        for cursor in (
            "!",
            "bm90IGpzb24",  # base64, not JSON
            encode_cursor({"p": 7}),  # the event feed's
            encode_cursor({"k": "yesterday", "id": str(uuid.uuid4())}),
            encode_cursor({"k": "0001-01-01T00:00:00+14:00", "id": str(uuid.uuid4())}),
            encode_cursor({"k": datetime.now(UTC).isoformat(), "id": "7"}),
        ):
            response = await api.client.get(
                path, params={**params, "cursor": cursor}, headers=sub["_headers"]
            )
            assert response.status_code == 422, (path, cursor, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            errors = response.json()["errors"]
            assert [(e["field"], e["code"]) for e in errors] == [("cursor", "invalid_cursor")], path


async def test_unknown_event_type_is_refused(api, receiver):
    response = await api.client.post(
        "/v1/webhooks", json={"url": receiver.url, "event_types": [PREFIX + "teleported"]}
    )
    assert response.status_code == 422, response.text
    assert "teleported" in response.text
    assert (await api.client.get("/v1/webhooks")).json() == []


# ---- 5. SSRF ------------------------------------------------------------------------------------


async def test_private_and_non_http_targets_are_refused(api, app, relay, receiver):
    # Made while private targets were allowed (as in these tests); refused once they are not.
    early = await subscribe(api, receiver.url, receiver=receiver)
    app.state.settings.webhook_allow_private_targets = False
    for url in (
        receiver.url,
        "http://127.0.0.1:8080/hooks",
        "http://10.0.0.1/hooks",
        "http://192.168.1.10/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",  # Alibaba Cloud's metadata, in 100.64.0.0/10
        "http://100.64.0.1/hooks",
        "http://198.18.0.1/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",  # 169.254.169.254 through NAT64
        "http://[64:ff9b::a00:1]/hooks",
        "http://[::a9fe:a9fe]/hooks",
        "http://[::127.0.0.1]/hooks",
        "http://[2002:a00:1::]/hooks",  # 6to4 of 10.0.0.1
        "http://[fd00::1]/hooks",
        "http://[::1]/hooks",
        "http://localhost:8080/hooks",
        "https://0.0.0.0/hooks",
    ):
        response = await api.client.post("/v1/webhooks", json={"url": url})
        assert response.status_code == 422, (url, response.text)
        assert [e["code"] for e in response.json()["errors"]] == ["target_refused"], (url, response.text)
    chinese = await api.client.post("/v1/webhooks", json={"url": "http://100.64.0.1/hooks"})
    assert "非公网地址" in chinese.json()["errors"][0]["message"]
    assert "resolves" not in chinese.text
    for url in (
        "ftp://example.com/hooks",
        "file:///etc/passwd",
        "gopher://example.com/",
        "example.com/hooks",
    ):
        response = await api.client.post("/v1/webhooks", json={"url": url})
        assert response.status_code == 422, (url, response.text)
    listed = (await api.client.get("/v1/webhooks")).json()
    assert [s["id"] for s in listed] == [early["id"]]

    # The relay checks again when it sends: nothing reaches the private address.
    await api.intake()
    assert await relay.run_once() == 1
    assert receiver.deliveries == []
    (delivery,) = await deliveries_of(api, early)
    assert delivery["status"] == "pending" and delivery["attempts"] == 1
    assert delivery["last_status_code"] is None and "refused" in delivery["last_error"]


async def test_a_name_that_does_not_resolve_is_refused_and_never_asked_of_a_resolver_elsewhere(
    api, app, no_name_lookups_beyond_this_machine
):
    app.state.settings.webhook_allow_private_targets = False
    for language, phrase in (("zh", "主机名无法解析"), ("en", "the host does not resolve")):
        response = await api.client.post(
            "/v1/webhooks", json={"url": "https://hooks.example.org/x"}, headers={"Accept-Language": language}
        )
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert error["code"] == "target_refused" and phrase in error["message"], error
    # Answered on this machine, by the tests' lookup: no query left for the configured resolver.
    assert no_name_lookups_beyond_this_machine == ["hooks.example.org", "hooks.example.org"]
    assert (await api.client.get("/v1/webhooks")).json() == []


class RebindingResolver:
    """A name server under an attacker's control: the first lookup of a name answers a public
    address, every later one 127.0.0.1 (a TTL of zero is all it takes)."""

    def __init__(self, first: str = "93.184.215.14") -> None:
        self.first = first
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        self.lookups.append(host)
        answer = self.first if len(self.lookups) == 1 else "127.0.0.1"
        return [ipaddress.ip_address(answer)]


async def test_a_host_that_rebinds_to_loopback_after_the_check_is_never_reached(
    api, app, receiver, monkeypatch, loopback_only
):
    """DNS rebinding: the name answers a public address when it is checked and 127.0.0.1 when it is
    connected to. The address checked is the address connected to, so the local receiver never
    hears of the delivery, and the name is looked up once per send."""
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    sub = await subscribe(api, f"http://localhost:{port}/hooks", receiver=receiver)
    await api.intake()
    rebinding = RebindingResolver()
    monkeypatch.setattr(webhooks, "resolve", rebinding)
    strict = app.state.settings.model_copy(
        update={"webhook_allow_private_targets": False, "webhook_timeout_seconds": 0.5}
    )
    relay = Relay(app.state.db, strict, app.state.identity.cipher, relay_id="relay-strict")
    try:
        assert await relay.run_once() == 1
    finally:
        await relay.client.aclose()
    assert receiver.deliveries == [], "the request reached the loopback receiver"
    assert rebinding.lookups == ["localhost"]
    # It went for the address it checked (refused by the tests' own guard before leaving).
    assert loopback_only == [("93.184.215.14", port)]
    (delivery,) = await deliveries_of(api, sub)
    assert delivery["status"] == "pending" and delivery["attempts"] == 1
    assert delivery["last_status_code"] is None and delivery["last_error"]


async def test_the_connection_goes_to_the_checked_address_under_the_host_name(
    api, app, receiver, monkeypatch
):
    """The relay connects to the address it looked up, and sends the URL's name in the Host header.
    A name with one public and one internal address is refused: every address is checked."""
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    sub = await subscribe(api, f"http://hooks.example:{port}/hooks", receiver=receiver)
    answers = {"hooks.example": ["127.0.0.1"]}
    lookups: list[str] = []

    async def resolver(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        lookups.append(host)
        return [ipaddress.ip_address(a) for a in answers[host]]

    monkeypatch.setattr(webhooks, "resolve", resolver)
    await api.intake()
    relay = Relay(app.state.db, app.state.settings, app.state.identity.cipher, relay_id="relay-pinned")
    try:
        assert await relay.run_once() == 1
        assert [d.answered for d in receiver.deliveries] == [200]
        assert receiver.deliveries[0].headers["host"] == f"hooks.example:{port}"
        assert lookups == ["hooks.example"]

        app.state.settings.webhook_allow_private_targets = False
        answers["hooks.example"] = ["93.184.215.14", "127.0.0.1"]
        await api.intake()
        await relay.client.aclose()  # no kept-alive connection: the next send opens one
        relay.client = httpx.AsyncClient(transport=webhooks.WebhookTransport(lambda: False), timeout=0.5)
        assert await relay.run_once() == 1
    finally:
        await relay.client.aclose()
    assert len(receiver.deliveries) == 1
    pending = [d for d in await deliveries_of(api, sub) if d["status"] == "pending"]
    assert len(pending) == 1 and "non-public address (127.0.0.1)" in pending[0]["last_error"]


def _certificate(name: str, issuer_key: Any = None, issuer: Any = None) -> tuple[Any, Any]:
    """A key and a certificate for `name`, signed by `issuer` (self-signed, a CA, when None)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    return key, builder.sign(issuer_key or key, hashes.SHA256())


async def test_tls_to_the_checked_address_still_names_and_verifies_the_host(api, app, tmp_path, monkeypatch):
    """Over https the connection goes to the address looked up, and TLS still speaks the URL's host
    name: the receiver is asked for it (SNI), and its certificate must be for it."""
    import ssl

    from cryptography.hazmat.primitives import serialization

    ca_key, ca = _certificate("Test CA")
    trusted = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    asked: list[str | None] = []

    async def serve(name: str) -> tuple[asyncio.Server, int]:
        key, cert = _certificate(name, ca_key, ca)
        (tmp_path / f"{name}.pem").write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
            + key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tmp_path / f"{name}.pem")
        context.sni_callback = lambda _sock, server_name, _ctx: asked.append(server_name)

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
        return server, server.sockets[0].getsockname()[1]

    async def to_loopback(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(webhooks, "resolve", to_loopback)
    right, right_port = await serve("hooks.example")
    wrong, wrong_port = await serve("elsewhere.example")
    try:
        good = await subscribe(api, f"https://hooks.example:{right_port}/hooks")
        bad = await subscribe(api, f"https://hooks.example:{wrong_port}/hooks")
        await api.intake()
        client = httpx.AsyncClient(
            transport=webhooks.WebhookTransport(lambda: True, verify=trusted), timeout=5
        )
        relay = Relay(app.state.db, app.state.settings, app.state.identity.cipher, client=client)
        try:
            assert await relay.run_once() == 2
        finally:
            await client.aclose()
    finally:
        right.close()
        wrong.close()
    assert asked == ["hooks.example", "hooks.example"]
    (delivered,) = await deliveries_of(api, good)
    assert (delivered["status"], delivered["last_status_code"]) == ("delivered", 204)
    (refused,) = await deliveries_of(api, bad)
    assert refused["status"] == "pending" and refused["last_status_code"] is None
    assert "CERTIFICATE_VERIFY_FAILED" in refused["last_error"], refused["last_error"]


# ---- 6. atomicity -------------------------------------------------------------------------------


async def test_failed_transition_leaves_no_event_timeline_or_delivery(api, app, relay, receiver):
    sub = await subscribe(api, receiver.url, receiver=receiver)
    dispute = await api.intake()
    dispute = await api.step(dispute, "accept")
    before = {
        "outbox": await api.outbox_count(dispute["id"]),
        "timeline": await api.timeline_count(dispute["id"]),
        "deliveries": await delivery_count(app, sub["id"]),
    }
    assert before == {"outbox": 2, "timeline": 2, "deliveries": 2}

    seen: dict[str, Any] = {}

    async def fail_once(session: Any) -> None:
        if seen:
            return
        # Runs after the sequencer: the event is numbered and fanned out in this transaction, and
        # written by the flush that the commit (or the audit record) would make.
        await session.flush()
        seen["outbox"] = await session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.dispute_id == uuid.UUID(dispute["id"]))
        )
        seen["numbered"] = await session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.dispute_id == uuid.UUID(dispute["id"]), OutboxEvent.position.is_not(None))
        )
        seen["deliveries"] = await session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == uuid.UUID(sub["id"]))
        )
        raise RuntimeError("injected failure just before commit")

    app.state.before_commit.append(fail_once)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as raw:
        response = await raw.post(
            f"/v1/disputes/{dispute['id']}/actions/assign",
            json=api.payload("assign", dispute),
            headers={**api.auth("clerk"), "If-Match": f'"{dispute["version"]}"'},
        )
    assert response.status_code == 500, response.text
    assert seen == {"outbox": 3, "numbered": 3, "deliveries": 3}, "the change was written before it failed"

    after = {
        "outbox": await api.outbox_count(dispute["id"]),
        "timeline": await api.timeline_count(dispute["id"]),
        "deliveries": await delivery_count(app, sub["id"]),
    }
    assert after == before
    current = await api.get(dispute)
    assert current["version"] == dispute["version"] and current["status"] == "accepted"
    feed = (await api.client.get("/v1/events", params={"limit": 500})).json()["items"]
    assert [e["type"] for e in feed] == [PREFIX + "registered", PREFIX + "accepted"]
    await pump(relay, lambda: len(receiver.ok()) == 2)
    assert await relay.run_once() == 0
    assert sorted(d.event["type"] for d in receiver.deliveries) == [
        PREFIX + "accepted",
        PREFIX + "registered",
    ]

    # The same action succeeds now, once, and takes the position the failed one never kept.
    dispute = await api.step(dispute, "assign")
    feed = (await api.client.get("/v1/events", params={"limit": 500})).json()["items"]
    assert [e["type"] for e in feed] == [PREFIX + "registered", PREFIX + "accepted", PREFIX + "assigned"]
    assert [int(e["sequence"]) for e in feed] == [1, 2, 3]
    await pump(relay, lambda: len(receiver.ok()) == 3)
    assert receiver.deliveries[-1].event["type"] == PREFIX + "assigned"


# ---- 7. graceful shutdown -----------------------------------------------------------------------


async def test_release_hands_claimed_deliveries_back_at_once(api, app, receiver):
    await subscribe(api, receiver.url, receiver=receiver)
    dispute = await api.intake()
    await api.step(dispute, "accept")
    app.state.settings.relay_lease_seconds = 60  # no claim lapses by itself during the test
    cipher, settings, db = app.state.identity.cipher, app.state.settings, app.state.db
    first = Relay(db, settings, cipher, relay_id="relay-first")
    second = Relay(db, settings, cipher, relay_id="relay-second")
    try:
        jobs = await first.claim()
        assert len(jobs) == 2
        assert first.in_flight == {j.delivery_id for j in jobs}
        # Leased: another relay cannot take them while the first one holds them.
        assert await second.claim() == []

        await first.release()  # shutting down before it sent anything
        assert first.in_flight == set()
        taken = await second.claim()  # immediately, without waiting for the lease to lapse
        assert sorted(j.delivery_id for j in taken) == sorted(j.delivery_id for j in jobs)
        assert sorted(j.webhook_id for j in taken) == sorted(j.webhook_id for j in jobs)
        assert all(j.attempt == 1 for j in taken)
        await first.release()  # nothing of its own left; the second relay's claims stay
        assert await first.claim() == []

        await second.record(list(await asyncio.gather(*(second.send(j) for j in taken))))
        assert len(receiver.ok()) == 2
        assert second.in_flight == set()
        assert await first.run_once() == 0 and await second.run_once() == 0
        assert len(receiver.deliveries) == 2
    finally:
        await first.client.aclose()
        await second.client.aclose()

    async with db.reader() as session:
        rows = (await session.scalars(select(WebhookDelivery))).all()
    assert {(r.status, r.attempts, r.claimed_by) for r in rows} == {("delivered", 1, None)}


async def test_stopping_the_loop_mid_send_releases_its_claims(api, app):
    """The relay is stopped (cancelled, as the app's shutdown does after its grace period) while
    its requests hang: its claims go back at once instead of waiting out the lease."""
    hanging: list[asyncio.StreamWriter] = []

    async def never_answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hanging.append(writer)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sub = await subscribe(api, f"http://127.0.0.1:{port}/hooks")
    await api.intake()
    cipher, settings, db = app.state.identity.cipher, app.state.settings, app.state.db
    stopping = Relay(db, settings, cipher, relay_id="relay-stopping")
    task = asyncio.create_task(stopping.run(asyncio.Event()))
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while not (stopping.in_flight and hanging):
            assert asyncio.get_running_loop().time() < deadline, "the relay never sent"
            await asyncio.sleep(0.02)
        async with db.reader() as session:
            (row,) = (await session.scalars(select(WebhookDelivery))).all()
        assert row.claimed_by == "relay-stopping" and row.claimed_until is not None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        server.close()
        for writer in hanging:
            writer.close()
    assert stopping.in_flight == set()
    async with db.reader() as session:
        (row,) = (await session.scalars(select(WebhookDelivery))).all()
    assert row.claimed_by is None and row.claimed_until is None
    assert row.status == "pending" and row.attempts == 0

    # Another relay takes it over at once, without waiting for the lease to lapse.
    successor = Relay(db, settings, cipher, relay_id="relay-successor")
    try:
        taken = await successor.claim()
        assert [j.delivery_id for j in taken] == [row.id]
        assert taken[0].url == sub["url"] and taken[0].attempt == 1
    finally:
        await successor.client.aclose()


@pytest.mark.postgres_only
async def test_a_redelivery_does_not_undo_a_delivery_recorded_meanwhile(
    api, app, relay, receiver, monkeypatch
):
    """A delivery cancelled while it was out (the subscription disabled, then enabled), and the send
    accepted: the relay records it delivered while its owner asks to redeliver it. The redelivery
    takes its turn after the relay's record, finds it delivered and is refused; it used to set it
    pending again, to be sent twice."""
    sub = await subscribe(api, receiver.url, receiver=receiver)
    headers = sub["_headers"]
    await api.intake()
    [job] = await relay.claim()
    for action in ("disable", "enable"):
        assert (
            await api.client.post(f"/v1/webhooks/{sub['id']}/{action}", json={}, headers=headers)
        ).status_code == 200
    accepted = Outcome(job, job.claimed_at, 200, 5, None)
    go_on, reached = asyncio.Event(), asyncio.Event()
    execute = AsyncSession.execute

    async def execute_then_wait(self: AsyncSession, statement: Any, *args: Any, **kwargs: Any) -> Any:
        result = await execute(self, statement, *args, **kwargs)
        if str(statement).startswith("UPDATE webhook_deliveries") and "delivered_at" in str(statement):
            reached.set()  # the delivery marked delivered, not committed yet
            await go_on.wait()
        return result

    monkeypatch.setattr(AsyncSession, "execute", execute_then_wait)
    recording = asyncio.create_task(relay.record([accepted]))
    await asyncio.wait_for(reached.wait(), 10)
    redelivering = asyncio.create_task(
        api.client.post(f"/v1/webhook-deliveries/{job.delivery_id}/redeliver", headers=headers)
    )
    await lock_waiters(app, 1)
    go_on.set()
    await asyncio.wait_for(recording, 10)
    refused = await asyncio.wait_for(redelivering, 10)
    assert refused.status_code == 409, refused.text
    [row] = await deliveries_of(api, sub)
    assert (row["status"], row["attempts"]) == ("delivered", 1)
