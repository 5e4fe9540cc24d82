"""The event feed keeps its events for a retention period, and says so when a reader fell behind it.

A city or province platform writes tens of millions of events a year, so the feed cannot keep
them for ever. The relay deletes those past `event_retention_days`, oldest first, in one unbroken
run of positions, and never one a webhook still owes a receiver. A reader whose cursor lies before
what is kept is told (410 `feed-position-expired`, with the oldest cursor) instead of being handed
the rest as if nothing were missing. The cases' timelines keep their history.

Time is moved by ageing the events' rows, as the relay judges them by the database's clock.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

from mediation.core.http import encode_cursor
from mediation.core.settings import Settings
from mediation.events.models import OutboxEvent, OutboxHorizon, WebhookAttempt, WebhookDelivery
from mediation.events.relay import Relay
from tests.receiver import Receiver
from tests.support import Api, commit_elsewhere
from tests.test_webhooks import deliveries_of, subscribe


async def positions_of(app: Any, dispute_ids: list[str]) -> list[int]:
    async with app.state.db.reader() as session:
        found = await session.scalars(
            select(OutboxEvent.position)
            .where(OutboxEvent.dispute_id.in_([uuid.UUID(d) for d in dispute_ids]))
            .order_by(OutboxEvent.position)
        )
        return [p for p in found if p is not None]


async def age_events(app: Any, dispute_ids: list[str], days: float) -> None:
    async with app.state.db.writer() as session, session.begin():
        found = await session.scalars(
            select(OutboxEvent).where(OutboxEvent.dispute_id.in_([uuid.UUID(d) for d in dispute_ids]))
        )
        for event in found:
            event.created_at -= timedelta(days=days)


async def horizon(app: Any) -> int:
    async with app.state.db.reader() as session:
        return int(await session.scalar(select(OutboxHorizon.purged_through)) or 0)


async def feed(api: Api, after: str | None = None) -> Any:
    params = {"limit": 500, **({"after": after} if after else {})}
    return await api.client.get("/v1/events", params=params)


async def test_old_events_go_oldest_first_and_a_cursor_from_before_them_is_told(api: Api, app: Any) -> None:
    old = [await api.intake(), await api.intake()]
    kept = await api.intake()
    first = await api.client.get("/v1/events", params={"limit": 1})
    assert first.status_code == 200, first.text
    behind = first.json()["next_cursor"]  # a reader that read one event, then stopped
    everything = (await feed(api)).json()["items"]
    timeline = await api.timeline(old[0])
    old_positions = await positions_of(app, [d["id"] for d in old])
    kept_positions = await positions_of(app, [kept["id"]])
    assert old_positions and kept_positions and max(old_positions) < min(kept_positions)
    await age_events(app, [d["id"] for d in old], days=400)

    # The relay's own loop deletes them.
    stop = asyncio.Event()
    looping = Relay(app.state.db, app.state.settings, app.state.identity.cipher, relay_id="relay-loop")
    task = asyncio.create_task(looping.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while await horizon(app) < max(old_positions):
            assert asyncio.get_running_loop().time() < deadline, "old events were never deleted"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)

    assert await horizon(app) == max(old_positions)
    assert await positions_of(app, [d["id"] for d in old]) == []
    assert await positions_of(app, [kept["id"]]) == kept_positions

    gone = await feed(api, behind)
    assert gone.status_code == 410, gone.text
    problem = gone.json()
    assert problem["type"] == "/problems/feed-position-expired"
    assert "保留期" in problem["detail"]
    resumed = await feed(api, problem["oldest_cursor"])
    assert resumed.status_code == 200, resumed.text
    rest = [e["id"] for e in everything if int(e["sequence"]) > max(old_positions)]
    assert [e["id"] for e in resumed.json()["items"]] == rest
    # A new reader starts at the oldest event kept; the cases' timelines keep their history.
    fresh = await feed(api)
    assert [e["id"] for e in fresh.json()["items"]] == rest
    assert await api.timeline(old[0]) == timeline
    english = await api.client.get("/v1/events", params={"after": behind}, headers={"Accept-Language": "en"})
    assert english.status_code == 410
    assert english.json()["title"] == "Events after this position are no longer in the feed"
    # Nothing old is left: the next look deletes nothing and the horizon stays.
    assert await looping.purge_events() == 0
    assert await horizon(app) == max(old_positions)


async def test_a_reader_that_had_read_everything_deleted_pages_on(api: Api, app: Any, relay: Relay) -> None:
    old = await api.intake()
    read = await feed(api)
    caught_up = read.json()["next_cursor"]
    old_positions = await positions_of(app, [old["id"]])
    assert [int(e["sequence"]) for e in read.json()["items"]] == old_positions
    kept = await api.intake()
    await age_events(app, [old["id"]], days=400)

    assert await relay.purge_events() == len(old_positions)
    assert await horizon(app) == max(old_positions)

    # Its cursor is the horizon itself: nothing after it is missing, so it goes on.
    page = await feed(api, caught_up)
    assert page.status_code == 200, page.text
    assert [int(e["sequence"]) for e in page.json()["items"]] == await positions_of(app, [kept["id"]])


async def test_a_reader_that_saw_nothing_new_is_not_told_it_missed_events_others_saw(
    api: Api, app: Any, relay: Relay
) -> None:
    """A court polls every day; the other cases' events are none of its business. Once they are
    deleted past the retention period, with its own, its cursor does not lie before them: it
    missed nothing, so it goes on, round after round."""
    court = api.auth("court")
    mine = await api.drive("confirmation_pending")
    page = await api.client.get("/v1/events", params={"limit": 500}, headers=court)
    assert page.status_code == 200 and page.json()["items"], page.text
    cursor = page.json()["next_cursor"]
    aged = [mine["id"]]
    for _ in range(2):
        others = [(await api.intake())["id"] for _ in range(3)]
        polled = await api.client.get("/v1/events", params={"after": cursor}, headers=court)
        assert polled.status_code == 200 and polled.json()["items"] == [], polled.text
        cursor = polled.json()["next_cursor"]
        aged += others
        newest = max(await positions_of(app, aged))
        await age_events(app, aged, days=400)
        assert await relay.purge_events() > 0
        assert await horizon(app) == newest  # deleted up to the court's cursor

        again = await api.client.get("/v1/events", params={"after": cursor}, headers=court)
        assert again.status_code == 200, again.text
        assert again.json() == {"items": [], "next_cursor": cursor}


async def test_a_cursor_at_position_zero_is_told_when_events_after_it_were_deleted(
    api: Api, app: Any, relay: Relay
) -> None:
    """An empty feed hands out position 0. A reader holding it that comes back after its events
    were deleted past the retention period has missed them, and is told, like any other cursor;
    only a request without a cursor starts at the oldest event kept."""
    court = api.auth("court")
    empty = await api.client.get("/v1/events", headers=court)
    assert empty.json() == {"items": [], "next_cursor": encode_cursor({"p": 0})}
    zero = empty.json()["next_cursor"]
    mine = await api.drive("confirmation_pending")
    kept = await api.drive("confirmation_pending")
    await age_events(app, [mine["id"]], days=400)
    assert await relay.purge_events() > 0

    gone = await api.client.get("/v1/events", params={"after": zero}, headers=court)
    assert gone.status_code == 410, gone.text
    assert gone.json()["oldest_cursor"] == encode_cursor({"p": await horizon(app)})
    fresh = await api.client.get("/v1/events", headers=court)
    assert fresh.status_code == 200, fresh.text
    assert {e["subject"] for e in fresh.json()["items"]} == {kept["case_number"]}


async def test_an_event_a_webhook_still_owes_stops_the_run(
    api: Api, app: Any, relay: Relay, receiver: Receiver
) -> None:
    sub = await subscribe(api, receiver.url, receiver=receiver)
    delivered = await api.intake()
    while await relay.run_once():
        pass
    assert {d["status"] for d in await deliveries_of(api, sub)} == {"delivered"}
    owed = await api.intake()  # its deliveries are pending: the relay has not sent them
    later = await api.intake()
    cases = [delivered["id"], owed["id"], later["id"]]
    await age_events(app, cases, days=400)

    deleted = await relay.purge_events()

    delivered_positions = await positions_of(app, [delivered["id"]]) or []
    assert delivered_positions == []
    assert deleted >= 1
    assert await positions_of(app, [owed["id"]]) != []
    assert await positions_of(app, [later["id"]]) != []
    assert await horizon(app) < min(await positions_of(app, [owed["id"]]))
    # The finished deliveries of the deleted events went with them, attempts included.
    async with app.state.db.reader() as session:
        events = set(await session.scalars(select(OutboxEvent.id)))
        delivery_events = set(await session.scalars(select(WebhookDelivery.event_id)))
        assert delivery_events <= events
        attempts = set(await session.scalars(select(WebhookAttempt.delivery_id)))
        assert attempts <= set(await session.scalars(select(WebhookDelivery.id)))
    assert {d["status"] for d in await deliveries_of(api, sub)} == {"pending"}

    # Once the receiver has them, the rest goes too.
    while await relay.run_once():
        pass
    assert await relay.purge_events() >= 2
    assert await positions_of(app, cases) == []


async def test_a_retention_of_zero_keeps_every_event(api: Api, app: Any, relay: Relay) -> None:
    dispute = await api.intake()
    await feed(api)  # numbered
    await age_events(app, [dispute["id"]], days=4000)
    app.state.settings.event_retention_days = 0
    assert await relay.purge_events() == 0
    assert await positions_of(app, [dispute["id"]]) != []
    assert await horizon(app) == 0


@pytest.mark.parametrize("days", [1, 7, 29, -1])
def test_a_retention_shorter_than_a_month_is_refused_at_start(days: int) -> None:
    with pytest.raises(ValidationError, match="event_retention_days"):
        Settings(event_retention_days=days)


def test_a_retention_of_zero_or_a_month_or_more_is_taken() -> None:
    assert Settings(event_retention_days=0).event_retention_days == 0
    assert Settings(event_retention_days=30).event_retention_days == 30
    assert Settings().event_retention_days == 365


@pytest.mark.postgres_only
async def test_a_delivery_sent_again_while_its_event_is_being_deleted_keeps_the_event(
    api: Api, app: Any, relay: Relay, receiver: Receiver
) -> None:
    """A dead delivery of an old event is sent again (made pending) between the purge's look and
    its deletions: the event stays, with the delivery, and the next purge stops before it."""
    app.state.settings.webhook_retry_schedule_seconds = []  # the first failure is dead at once
    sub = await subscribe(api, receiver.url, receiver=receiver)
    receiver.script = [500] * 10
    dispute = await api.intake()
    while await relay.run_once():
        pass
    dead = await deliveries_of(api, sub, "dead")
    assert dead
    await age_events(app, [dispute["id"]], days=400)
    again = [d["id"] for d in dead]

    def redeliver_meanwhile(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM WEBHOOK_ATTEMPTS") and again:
            ids, again[:] = ",".join(again), []
            commit_elsewhere(
                app.state.db,
                "UPDATE webhook_deliveries SET status = 'pending' WHERE id = ANY(string_to_array($1, ',')::uuid[])",
                ids,
            )

    engine = app.state.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", redeliver_meanwhile)
    try:
        with pytest.raises(IntegrityError):
            await relay.purge_events()
    finally:
        event.remove(engine, "before_cursor_execute", redeliver_meanwhile)

    assert await horizon(app) == 0
    assert await positions_of(app, [dispute["id"]]) != []
    assert {d["status"] for d in await deliveries_of(api, sub)} == {"pending"}
    # The next look stops at the event its receiver still waits for.
    assert await relay.purge_events() == 0
