"""Webhooks over months of operation: old deliveries are deleted, a receiver failing for days is
disabled, and once it is back its backlog is sent again in one request.

Time is moved by ageing rows in the database, as the relay judges it by the database's clock.
Receivers are real HTTP servers on 127.0.0.1; the relay is driven by hand or runs its own loop.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update

from mediation.events.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscribersVersion,
    WebhookSubscription,
)
from mediation.events.relay import Outcome, Relay
from tests.receiver import Receiver
from tests.support import Api
from tests.test_audit import records
from tests.test_webhooks import (
    attempts_of,
    cancelling_order,
    deliveries_of,
    holding,
    lock_waiters,
    parse_time,
    pump,
    subscribe,
)


async def age(app: Any, delivery_ids: list[uuid.UUID], days: float) -> None:
    """Moves deliveries and their attempts `days` into the past, and with them the start of their
    subscription's failure (`failing_since`) when one of those attempts began it."""
    back = timedelta(days=days)
    async with app.state.db.writer() as session, session.begin():
        subscription_ids = set()
        for d in await session.scalars(select(WebhookDelivery).where(WebhookDelivery.id.in_(delivery_ids))):
            d.created_at -= back
            d.next_attempt_at -= back
            if d.delivered_at is not None:
                d.delivered_at -= back
            subscription_ids.add(d.subscription_id)
        started = set()
        for a in await session.scalars(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids))
        ):
            started.add(a.started_at)
            a.started_at -= back
        for sub in await session.scalars(
            select(WebhookSubscription).where(WebhookSubscription.id.in_(subscription_ids))
        ):
            if sub.failing_since is not None and sub.failing_since in started:
                sub.failing_since -= back


async def rows(app: Any) -> dict[uuid.UUID, tuple[str, int]]:
    """Every delivery: its status and how many attempts the log keeps of it."""
    async with app.state.db.reader() as session:
        found = {d.id: (d.status, 0) for d in await session.scalars(select(WebhookDelivery))}
        for attempt in await session.scalars(select(WebhookAttempt)):
            status, n = found[attempt.delivery_id]
            found[attempt.delivery_id] = (status, n + 1)
    return found


def ids_of(listed: list[dict[str, Any]]) -> list[uuid.UUID]:
    return [uuid.UUID(d["id"]) for d in listed]


# ---- retention ------------------------------------------------------------------------------------


async def _old_and_new(api: Api, app: Any, relay: Relay, receiver: Receiver) -> dict[str, list[uuid.UUID]]:
    """Deliveries of every kind, the old ones aged past the retention period (30 days)."""
    app.state.settings.webhook_retry_schedule_seconds = [3600.0]  # a failure waits an hour, then dies
    sub = await subscribe(api, receiver.url, receiver=receiver)
    kinds: dict[str, list[uuid.UUID]] = {}

    async def make(kind: str, answers: list[int], attempts: int) -> None:
        receiver.script = list(answers)
        await api.intake()
        seen = set(kinds.get("all", []))
        for n in range(attempts):
            assert await relay.run_once() == 1
            if n < attempts - 1:
                # Due again at once: the retry's wait (an hour, give or take its jitter) aged away.
                (listed,) = [d for d in await deliveries_of(api, sub) if uuid.UUID(d["id"]) not in seen]
                await age(app, [uuid.UUID(listed["id"])], 2 / 24)
        (made,) = [d for d in await deliveries_of(api, sub) if uuid.UUID(d["id"]) not in seen]
        kinds.setdefault(kind, []).append(uuid.UUID(made["id"]))
        kinds.setdefault("all", []).append(uuid.UUID(made["id"]))

    await make("old_delivered", [500, 200], 2)
    await make("old_delivered", [200], 1)
    await make("old_dead", [500, 500], 2)
    await make("old_retrying", [500], 1)
    await make("new_delivered", [200], 1)
    await make("new_dead", [500, 500], 2)
    await make("new_retrying", [500], 1)
    # A dead one sent again (attempts numbered from 1 again) a day ago, after thirty days dead.
    await make("redelivered", [500, 500], 2)
    await api.client.post(
        f"/v1/webhook-deliveries/{kinds['redelivered'][0]}/redeliver", headers=sub["_headers"]
    )
    await age(app, kinds["redelivered"], 40)
    receiver.script = [200]
    await relay.run_once()
    await age(app, kinds["redelivered"], 1)

    old = kinds["old_delivered"] + kinds["old_dead"] + kinds["old_retrying"]
    await age(app, old, 40)
    # The old pending one is in retry still: its next attempt is not due yet.
    async with app.state.db.writer() as session, session.begin():
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(kinds["old_retrying"]))
            .values(next_attempt_at=datetime.now(UTC) + timedelta(hours=1))
        )
    before = await rows(app)
    assert [before[i][0] for i in old] == ["delivered", "delivered", "dead", "pending"]
    assert [before[i][1] for i in old] == [2, 1, 2, 1]
    return kinds


async def test_old_finished_deliveries_are_deleted_by_the_relay_loop_and_pending_ones_kept(
    api, app, relay, receiver
):
    """Delivered and dead deliveries whose last attempt is older than the retention period go, with
    their attempts, the next time the relay's loop looks; one still in retry stays whatever its
    age, and so do newer ones, and one sent again recently after a month dead."""
    kinds = await _old_and_new(api, app, relay, receiver)
    stop = asyncio.Event()
    looping = Relay(app.state.db, app.state.settings, app.state.identity.cipher, relay_id="relay-loop")
    task = asyncio.create_task(looping.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while set(kinds["old_delivered"] + kinds["old_dead"]) & set(await rows(app)):
            assert asyncio.get_running_loop().time() < deadline, "old deliveries were never deleted"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)

    left = await rows(app)
    kept = kinds["old_retrying"] + kinds["new_delivered"] + kinds["new_dead"] + kinds["new_retrying"]
    kept += kinds["redelivered"]
    assert sorted(left) == sorted(kept)
    assert left[kinds["old_retrying"][0]] == ("pending", 1)
    assert left[kinds["redelivered"][0]] == ("delivered", 3)
    async with app.state.db.reader() as session:
        orphans = await session.scalars(
            select(WebhookAttempt.id).where(WebhookAttempt.delivery_id.not_in(list(left)))
        )
        assert list(orphans) == []


async def test_retention_deletes_in_bounded_batches_and_relays_share_the_work(api, app, relay, receiver):
    """Each pass deletes at most its batch, in its own short transaction; two relays deleting at
    the same time delete each delivery once between them, and neither fails."""
    app.state.settings.webhook_retry_schedule_seconds = []  # a failure is dead at once
    receiver.default = 500
    await subscribe(api, receiver.url, receiver=receiver)
    for _ in range(7):
        await api.intake()
    while await relay.run_once():
        pass
    finished = list(await rows(app))
    assert len(finished) == 7
    await age(app, finished, 31)
    second = Relay(app.state.db, app.state.settings, app.state.identity.cipher, relay_id="relay-second")
    try:
        deleted: list[int] = []
        while True:
            done = await asyncio.gather(relay.purge_expired(batch=2), second.purge_expired(batch=2))
            assert all(n <= 2 for n in done), done
            deleted.extend(done)
            if not any(done):
                break
    finally:
        await second.client.aclose()
    assert sum(deleted) == 7
    assert await rows(app) == {}


async def test_a_delivery_cancelled_while_it_is_out_is_not_deleted_until_its_outcome_is_in(
    api, app, relay, receiver
):
    """An old delivery of a backlog is being sent when its subscription is disabled, which cancels
    it: finished and past the retention period, it would be the retention pass's to delete, but not
    while the relay sending it holds its claim. Its outcome is then recorded, attempt and all."""
    sub = await subscribe(api, receiver.url, receiver=receiver)
    await api.intake()
    (old,) = await deliveries_of(api, sub)
    await age(app, ids_of([old]), 40)
    [job] = await relay.claim()
    outcome = await relay.send(job)
    response = await api.client.post(f"/v1/webhooks/{sub['id']}/disable", json={}, headers=sub["_headers"])
    assert response.status_code == 200, response.text
    second = Relay(app.state.db, app.state.settings, app.state.identity.cipher, relay_id="relay-second")
    try:
        assert await second.purge_expired() == 0
    finally:
        await second.client.aclose()
    await relay.record([outcome])
    (row,) = await deliveries_of(api, sub)
    assert (row["status"], row["attempts"], row["last_status_code"]) == ("delivered", 1, 200)
    assert [a["status_code"] for a in await attempts_of(api, sub, row["id"])] == [200]


# ---- a receiver failing for days ----------------------------------------------------------------------


async def test_a_receiver_failing_for_five_days_is_disabled_and_its_backlog_sent_again_once_back(
    api, app, relay, receiver
):
    app.state.settings.webhook_retry_schedule_seconds = [0.05]
    receiver.default = 500
    sub = await subscribe(api, receiver.url, receiver=receiver)
    headers = sub["_headers"]

    async def subscription() -> dict[str, Any]:
        response = await api.client.get(f"/v1/webhooks/{sub['id']}", headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    async def dead(n: int) -> bool:
        return len(await deliveries_of(api, sub, "dead")) == n

    # Dead within the day: the subscription stays, the failures have not lasted five days yet.
    await api.intake()
    await pump(relay, lambda: dead(1))
    assert (await subscription())["active"] is True

    # Four days on, still failing: still active.
    await age(app, ids_of(await deliveries_of(api, sub)), 4)
    await api.intake()
    await pump(relay, lambda: dead(2))
    assert (await subscription())["active"] is True

    # Two more days: the first failure was six days ago and nothing succeeded since. The next
    # delivery to go dead disables the subscription; what was still pending is cancelled.
    await age(app, ids_of(await deliveries_of(api, sub)), 2)
    app.state.settings.relay_batch_size = 1
    await api.intake()
    await api.intake()
    await pump(relay, lambda: dead(3))
    got = await subscription()
    assert got["active"] is False
    reason = got["disabled_reason"]
    assert "no delivery succeeded" in reason and "5 days" in reason, reason
    [audited] = [r for r in await records(app) if r.action == "relay.webhook_disabled"]
    assert (audited.actor_role, audited.object_id, audited.details) == (
        "system",
        sub["id"],
        {"reason": reason},
    )
    started: list[datetime] = []
    for d in await deliveries_of(api, sub):
        response = await api.client.get(f"/v1/webhook-deliveries/{d['id']}/attempts", headers=headers)
        started.extend(parse_time(a["started_at"]) for a in response.json())
    first_failure = min(started)
    assert first_failure.strftime("%Y-%m-%d %H:%M") in reason
    assert abs((parse_time(got["updated_at"]) - datetime.now(UTC)).total_seconds()) < 60
    assert parse_time(got["updated_at"]).strftime("%Y-%m-%d %H:%M") in reason
    statuses = sorted(d["status"] for d in await deliveries_of(api, sub))
    assert statuses == ["cancelled", "dead", "dead", "dead"]
    sent = len(receiver.deliveries)
    await api.intake()  # nothing more goes to it
    assert await relay.run_once() == 0
    assert len(receiver.deliveries) == sent

    # Its backlog cannot be sent while it is disabled ...
    since = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    response = await api.client.post(
        f"/v1/webhooks/{sub['id']}/redeliver", json={"since": since}, headers=headers
    )
    assert response.status_code == 409, response.text

    # ... and once the receiver is fixed and the subscription enabled, it goes in bounded requests:
    # the three of the last three days, two and then one, then (nothing asked) the six days old one.
    receiver.default = 200
    response = await api.client.post(f"/v1/webhooks/{sub['id']}/enable", headers=headers)
    assert response.status_code == 200 and response.json()["disabled_reason"] is None
    for asked, answer in (
        ({"since": since, "limit": 2}, {"redelivered": 2, "more": True}),
        ({"since": since, "limit": 2}, {"redelivered": 1, "more": False}),
        ({"since": since}, {"redelivered": 0, "more": False}),
        (None, {"redelivered": 1, "more": False}),
    ):
        response = await api.client.post(f"/v1/webhooks/{sub['id']}/redeliver", json=asked, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == answer, asked
    await pump(relay, lambda: len(receiver.ok()) == 4)
    assert sorted(d["status"] for d in await deliveries_of(api, sub)) == ["delivered"] * 4
    assert len({d.webhook_id for d in receiver.ok()}) == 4

    # Never what is pending or delivered already.
    response = await api.client.post(f"/v1/webhooks/{sub['id']}/redeliver", headers=headers)
    assert response.json() == {"redelivered": 0, "more": False}
    response = await api.client.post(
        f"/v1/webhooks/{sub['id']}/redeliver", json={"since": "2026-01-01T00:00:00"}, headers=headers
    )
    assert response.status_code == 422, "a time without its offset is ambiguous"


async def test_a_success_within_the_period_keeps_the_subscription(api, app, relay, receiver):
    """Failing since six days ago, but one delivery got through four days ago: the failures have
    lasted four days, not five, and the subscription stays."""
    app.state.settings.webhook_retry_schedule_seconds = []
    sub = await subscribe(api, receiver.url, receiver=receiver)
    receiver.script = [500]
    await api.intake()
    await relay.run_once()
    (first,) = await deliveries_of(api, sub)
    await age(app, ids_of([first]), 6)
    receiver.script = [200]
    await api.intake()
    await relay.run_once()
    (second,) = [d for d in await deliveries_of(api, sub) if d["id"] != first["id"]]
    assert second["status"] == "delivered"
    await age(app, ids_of([second]), 4)

    receiver.script = [500]
    await api.intake()
    assert await relay.run_once() == 1
    assert sorted(d["status"] for d in await deliveries_of(api, sub)) == ["dead", "dead", "delivered"]
    response = await api.client.get(f"/v1/webhooks/{sub['id']}", headers=sub["_headers"])
    assert response.json()["active"] is True
    async with app.state.db.reader() as session:
        row = await session.get(WebhookSubscription, uuid.UUID(sub["id"]))
        assert row is not None and row.disabled_reason is None


@pytest.mark.postgres_only
async def test_a_backlog_redelivery_counts_only_the_deliveries_it_set_pending(api, app, relay, receiver):
    """Two dead deliveries are chosen to be sent again; before the request sets them pending, one
    of them is redelivered by another transaction, which commits first. The request leaves that one
    alone, and its answer counts the one it set pending, not the two it chose."""
    app.state.settings.webhook_retry_schedule_seconds = []
    receiver.default = 500
    sub = await subscribe(api, receiver.url, receiver=receiver)
    await api.intake()
    await api.intake()
    await pump(relay, lambda: len(receiver.deliveries) == 2)
    first, _ = sorted(ids_of(await deliveries_of(api, sub, "dead")))
    async with app.state.db.engine.connect() as other:
        await other.execute(
            text("UPDATE webhook_deliveries SET status = 'pending', attempts = 0 WHERE id = :id"),
            {"id": first},
        )
        asking = asyncio.create_task(
            api.client.post(f"/v1/webhooks/{sub['id']}/redeliver", json={}, headers=sub["_headers"])
        )
        await lock_waiters(app, 1)
        await other.commit()
    response = await asking
    assert response.status_code == 200, response.text
    assert response.json() == {"redelivered": 1, "more": False}
    assert sorted(d["status"] for d in await deliveries_of(api, sub)) == ["pending", "pending"]


# ---- when a receiver started failing --------------------------------------------------------------


async def failing_since(app: Any, sub: dict[str, Any]) -> datetime | None:
    async with app.state.db.reader() as session:
        row = await session.get(WebhookSubscription, uuid.UUID(sub["id"]))
        assert row is not None
        return row.failing_since


async def subscribers_version(app: Any) -> str:
    async with app.state.db.reader() as session:
        return str(await session.scalar(select(WebhookSubscribersVersion.token)))


async def test_the_subscription_keeps_when_its_receiver_started_failing(api, app, relay, receiver):
    """The first failure after the last acceptance starts the count, later failures leave it, an
    acceptance ends it; in a batch, its outcomes count in the order they were sent. Who receives
    events does not change with it: the subscribers' version stays."""
    app.state.settings.webhook_retry_schedule_seconds = [3600.0]  # a failure is retried an hour on
    sub = await subscribe(api, receiver.url, receiver=receiver)
    version = await subscribers_version(app)

    async def one(answer: int) -> datetime:
        receiver.script = [answer]
        await api.intake()
        [job] = await relay.claim()
        outcome = await relay.send(job)
        await relay.record([outcome])
        assert outcome.status_code == answer
        return outcome.started_at

    assert await failing_since(app, sub) is None
    first_failure = await one(500)
    assert await failing_since(app, sub) == first_failure
    (row,) = await deliveries_of(api, sub)
    (attempt,) = await attempts_of(api, sub, row["id"])
    assert parse_time(attempt["started_at"]) == first_failure, "as the attempt log has it"
    await one(503)
    assert await failing_since(app, sub) == first_failure
    await one(200)
    assert await failing_since(app, sub) is None
    await one(200)
    assert await failing_since(app, sub) is None
    again = await one(500)
    assert await failing_since(app, sub) == again

    # One batch: a failure sent before an acceptance ends with it; one sent after starts anew.
    for _ in range(3):
        await api.intake()
    jobs = await relay.claim()
    assert len(jobs) == 3
    receiver.script = [500, 200, 500]
    outcomes = [await relay.send(job) for job in jobs]  # one after the other, in the script's order
    assert [o.status_code for o in outcomes] == [500, 200, 500]
    await relay.record(list(reversed(outcomes)))
    assert await failing_since(app, sub) == outcomes[2].started_at
    assert await subscribers_version(app) == version


async def test_a_receiver_is_disabled_on_time_after_its_first_failures_were_deleted(
    api, app, relay, receiver
):
    """Retention as short as the disable period allows: the delivery whose failure started the
    count is deleted with its attempts before the period is up. The count stands all the same,
    and the next delivery to go dead disables the subscription, naming the first failure."""
    app.state.settings.webhook_retry_schedule_seconds = []  # dead at once
    app.state.settings.webhook_retention_days = app.state.settings.webhook_disable_after_failing_days = 5
    receiver.default = 500
    sub = await subscribe(api, receiver.url, receiver=receiver)
    await api.intake()
    await relay.run_once()
    (first,) = await deliveries_of(api, sub, "dead")
    await age(app, ids_of([first]), 4)
    await api.intake()
    await relay.run_once()
    assert len(await deliveries_of(api, sub, "dead")) == 2
    await age(app, ids_of(await deliveries_of(api, sub)), 2)
    (attempt,) = await attempts_of(api, sub, first["id"])
    started = parse_time(attempt["started_at"])
    assert await failing_since(app, sub) == started
    assert await relay.purge_expired() == 1
    assert first["id"] not in {d["id"] for d in await deliveries_of(api, sub)}

    await api.intake()
    await relay.run_once()
    got = (await api.client.get(f"/v1/webhooks/{sub['id']}", headers=sub["_headers"])).json()
    assert got["active"] is False
    assert f"failing since {started:%Y-%m-%d %H:%M} UTC" in got["disabled_reason"]


async def test_an_enabled_subscription_fails_for_the_whole_period_again_before_it_is_disabled(
    api, app, relay, receiver
):
    """Disabled after five days of failures and enabled again, the receiver is given five days
    afresh: its backlog failing once more does not disable it at once, five more days of failure
    do. Enabling a subscription that is enabled already leaves its count as it is."""
    app.state.settings.webhook_retry_schedule_seconds = []
    receiver.default = 500
    sub = await subscribe(api, receiver.url, receiver=receiver)
    headers = sub["_headers"]

    async def active() -> bool:
        response = await api.client.get(f"/v1/webhooks/{sub['id']}", headers=headers)
        return bool(response.json()["active"])

    await api.intake()
    await relay.run_once()
    await age(app, ids_of(await deliveries_of(api, sub)), 6)
    await api.intake()
    await relay.run_once()
    assert not await active()
    assert await failing_since(app, sub) is not None

    response = await api.client.post(f"/v1/webhooks/{sub['id']}/enable", headers=headers)
    assert response.status_code == 200, response.text
    assert await failing_since(app, sub) is None
    response = await api.client.post(f"/v1/webhooks/{sub['id']}/redeliver", json={}, headers=headers)
    assert response.json() == {"redelivered": 2, "more": False}
    while await relay.run_once():
        pass
    assert len(await deliveries_of(api, sub, "dead")) == 2
    assert await active(), "failing since moments ago, not for five days"
    since = await failing_since(app, sub)
    assert since is not None
    response = await api.client.post(f"/v1/webhooks/{sub['id']}/enable", headers=headers)
    assert response.status_code == 200, response.text
    assert await failing_since(app, sub) == since

    await age(app, ids_of(await deliveries_of(api, sub)), 6)
    await api.intake()
    await relay.run_once()
    assert not await active()


@pytest.mark.postgres_only
async def test_a_receiver_starting_to_fail_while_its_subscription_is_disabled_does_not_deadlock(
    api, app, relay, receiver
):
    """The relay records a delivery's first failure (a retry is due later, so nothing disables the
    subscription, but the count starts on its row) while the owner disables the subscription,
    which cancels its pending deliveries, that one among them. The owner's request waits for the
    subscription first; were the relay to write the delivery and then wait for the subscription,
    the request, let in first, would wait for that delivery, and PostgreSQL would end one of them
    with a deadlock. A third transaction holds the subscription's row until both wait."""
    app.state.settings.webhook_retry_schedule_seconds = [3600.0]
    receiver.script = [500]
    sub = await subscribe(api, receiver.url, receiver=receiver)
    await api.intake()
    [job] = await relay.claim()
    outcome = await relay.send(job)
    assert outcome.status_code == 500
    async with holding(app, "webhook_subscriptions", uuid.UUID(sub["id"])):
        disabling = asyncio.create_task(
            api.client.post(f"/v1/webhooks/{sub['id']}/disable", json={}, headers=sub["_headers"])
        )
        await lock_waiters(app, 1)
        recording = asyncio.create_task(relay.record([outcome]))
        await lock_waiters(app, 2)
    response = await disabling
    assert response.status_code == 200, response.text
    await recording
    assert await failing_since(app, sub) == outcome.started_at
    (row,) = await deliveries_of(api, sub)
    assert row["status"] == "cancelled"
    assert [a["status_code"] for a in await attempts_of(api, sub, row["id"])] == [500]


@pytest.mark.postgres_only
async def test_recording_an_outcome_that_moves_nothing_does_not_deadlock_with_a_disable(
    api, app, relay, receiver
):
    """The receiver has been failing for an hour: another 500 changes nothing on the subscription.
    Its deliveries are still updated, so the subscription is locked first all the same: the owner
    disabling it (the subscription, then its pending deliveries) and the relay recording two
    outcomes in the other order would otherwise hold one delivery each and wait for the other."""
    app.state.settings.webhook_retry_schedule_seconds = [3600.0, 3600.0]
    receiver.script = [500, 500]
    sub = await subscribe(api, receiver.url, receiver=receiver)
    sub_id = uuid.UUID(sub["id"])
    async with app.state.db.writer() as session, session.begin():
        await session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == sub_id)
            .values(failing_since=datetime.now(UTC) - timedelta(hours=1))
        )
    await api.intake()
    await api.intake()
    jobs = {j.delivery_id: j for j in await relay.claim()}
    assert len(jobs) == 2
    # The order a disable takes the subscription's pending deliveries in; the relay records the
    # last of them first.
    order = await cancelling_order(app, sub_id)
    first, last = order[0], order[-1]
    outcomes = [await relay.send(jobs[last]), await relay.send(jobs[first])]
    assert [o.status_code for o in outcomes] == [500, 500]
    async with holding(app, "webhook_deliveries", first):
        disabling = asyncio.create_task(
            api.client.post(f"/v1/webhooks/{sub['id']}/disable", json={}, headers=sub["_headers"])
        )
        await lock_waiters(app, 1)  # the disable holds the subscription and waits for `first`
        recording = asyncio.create_task(relay.record(outcomes))
        await lock_waiters(app, 2)  # the relay waits too
    disabled, recorded = await asyncio.wait_for(
        asyncio.gather(disabling, recording, return_exceptions=True), 20
    )
    assert not isinstance(recorded, BaseException), recorded
    assert not isinstance(disabled, BaseException) and disabled.status_code == 200, disabled
    rows = await deliveries_of(api, sub)
    assert {r["status"] for r in rows} == {"cancelled"}
    assert {r["attempts"] for r in rows} == {0}  # cancelled while out: the outcomes hand back their claims


async def test_an_acceptance_recorded_before_an_earlier_failure_does_not_disable_the_subscription(
    api, app, relay, receiver
):
    """Two sends out at once: the first times out, the second, sent a second later, is accepted at
    once and recorded first. The failure recorded then starts a count on the subscription's row,
    though the log shows an acceptance after it. Six days on, when that failure's delivery goes
    dead, the log is read before the subscription is disabled, and the count corrected."""
    app.state.settings.webhook_retry_schedule_seconds = []  # a first failure goes dead
    sub = await subscribe(api, receiver.url, receiver=receiver)
    sub_id = uuid.UUID(sub["id"])
    await api.intake()
    await api.intake()
    first, second = await relay.claim()
    six_days_ago = datetime.now(UTC) - timedelta(days=6)
    await relay.record([Outcome(second, six_days_ago + timedelta(seconds=1), 200, 40, None)])
    await relay.record([Outcome(first, six_days_ago, None, 10_000, "timed out")])

    async with app.state.db.reader() as session:
        subscription = await session.get(WebhookSubscription, sub_id)
    assert subscription is not None
    assert (subscription.active, subscription.failing_since) == (True, None)
    statuses = sorted(r["status"] for r in await deliveries_of(api, sub))
    assert statuses == ["dead", "delivered"]
