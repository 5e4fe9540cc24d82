"""The pull feed GET /v1/events: CloudEvents in commit order, cursor paging that never repeats or
skips, type filters, visibility, long poll; events written outside a request; the catalogue."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select

from mediation.clocks.scheduler import tick
from mediation.core.clock import FrozenClock
from mediation.core.db import utcnow
from mediation.core.http import decode_cursor, encode_cursor
from mediation.core.principal import Principal, Role
from mediation.disputes.lifecycle import Action
from mediation.disputes.schemas import ACTION_PAYLOADS, DisputeCreate
from mediation.disputes.service import DisputeService
from mediation.events.models import OutboxEvent
from mediation.events.sequencer import sequence_pending
from mediation.events.service import SOURCE, TYPE_PREFIX
from tests.support import commit_elsewhere, intake_body
from tests.test_risk_flags import flag

BEIJING = ZoneInfo("Asia/Shanghai")

EVENTS_JSON = Path(__file__).resolve().parents[1] / "openapi" / "events.json"


async def feed(api: Any, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    response = await api.client.get("/v1/events", params=params, headers=headers or api.auth("clerk"))
    assert response.status_code == 200, response.text
    return response.json()


async def read_all(api: Any, headers: dict[str, str] | None = None, **params: Any) -> list[dict[str, Any]]:
    """Every page from the start, following next_cursor until an empty page."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await feed(api, headers, **({"after": cursor} if cursor else {}), **params)
        if not page["items"]:
            # Past events of other types or cases it may move on, never back.
            assert cursor is None or decode_cursor(page["next_cursor"])["p"] >= decode_cursor(cursor)["p"]
            return items
        items.extend(page["items"])
        cursor = page["next_cursor"]


def kinds(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["subject"], e["type"].removeprefix(TYPE_PREFIX)) for e in items]


def positions(items: list[dict[str, Any]]) -> list[int]:
    return [int(e["sequence"]) for e in items]


async def test_feed_is_in_commit_order_and_pages_without_repeats_or_gaps(api):
    expected: list[tuple[str, str]] = []
    a = await api.intake()
    expected.append((a["case_number"], "registered"))
    b = await api.intake()
    expected.append((b["case_number"], "registered"))
    a = await api.step(a, "accept")
    expected.append((a["case_number"], "accepted"))
    b = await api.step(b, "decline")
    expected.append((b["case_number"], "declined"))
    a = await api.step(a, "assign")
    expected.append((a["case_number"], "assigned"))
    a = await api.step(a, "sign_for")
    expected.append((a["case_number"], "signed_for"))
    c = await api.intake()
    expected.append((c["case_number"], "registered"))
    a = await api.step(a, "agree")
    # The agreement it records, drafted and signed by both parties, the mediator and the seal.
    expected.append((a["case_number"], "agreement_drafted"))
    expected += [(a["case_number"], "agreement_signature_recorded")] * 4
    expected.append((a["case_number"], "agreement_signed"))

    whole = await feed(api, limit=500)
    items = whole["items"]
    assert kinds(items) == expected
    seqs = positions(items)
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert len({e["id"] for e in items}) == len(items)
    for e in items:
        assert e["specversion"] == "1.0" and e["source"] == SOURCE
        assert e["datacontenttype"] == "application/json"
        assert e["data"]["case_number"] == e["subject"]
        uuid.UUID(e["id"])
    assert items[-1]["data"] == {
        "dispute_id": a["id"],
        "case_number": a["case_number"],
        "action": "agree",
        "from": "mediating",
        "to": "agreement_signed",
        "version": a["version"],
        "body_id": str(api.bodies["village"]),
        "mediator_id": str(api.mediators[api.bodies["village"]]),
    }

    # Small pages, followed by their cursors, give exactly the same events: none twice, none lost.
    for size in (1, 3, 5):
        paged = await read_all(api, limit=size)
        assert [e["id"] for e in paged] == [e["id"] for e in items], size

    # At the end, an empty page keeps the cursor where it was; a new event comes next.
    end = whole["next_cursor"]
    assert await feed(api, after=end) == {"items": [], "next_cursor": end}
    c = await api.step(c, "accept")
    page = await feed(api, after=end)
    assert kinds(page["items"]) == [(c["case_number"], "accepted")]
    assert int(page["items"][0]["sequence"]) > seqs[-1]

    # Filter by type (repeatable): the same order, only those types.
    registered = await feed(api, types=[TYPE_PREFIX + "registered", TYPE_PREFIX + "declined"])
    assert kinds(registered["items"]) == [k for k in expected if k[1] in ("registered", "declined")]
    paged = await read_all(api, types=TYPE_PREFIX + "registered", limit=1)
    assert kinds(paged) == [k for k in expected if k[1] == "registered"]


async def test_sequence_orders_the_events_as_text_and_as_a_number(api):
    """The CloudEvents sequence extension compares its values as strings: the position is written
    with leading zeros, so event 10 sorts after event 9 either way. The cursor is not affected."""
    for _ in range(11):
        await api.intake()
    page = await feed(api, limit=500)
    sequences = [e["sequence"] for e in page["items"]]
    assert len(sequences) == 11 and all(re.fullmatch(r"[0-9]{19}", s) for s in sequences)
    assert sorted(sequences) == sequences == sorted(sequences, key=int)
    assert sequences[9] == "0000000000000000010"
    assert page["next_cursor"] == encode_cursor({"p": 11})


async def test_feed_refuses_unknown_types_and_bad_cursors(api):
    await api.intake()
    response = await api.client.get("/v1/events", params={"types": TYPE_PREFIX + "teleported"})
    assert response.status_code == 422, response.text
    assert "teleported" in response.text
    mixed = await api.client.get("/v1/events", params={"types": [TYPE_PREFIX + "registered", "nope"]})
    assert mixed.status_code == 422
    for cursor in (
        "!!!",
        "bm90IGpzb24",  # base64, not JSON
        encode_cursor({"p": "7"}),
        encode_cursor({"p": -1}),
        encode_cursor({"p": 1.5}),
        encode_cursor({}),
    ):
        response = await api.client.get("/v1/events", params={"after": cursor})
        assert response.status_code == 422, (cursor, response.text)
        assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("after", "invalid_cursor")]
        assert response.headers["content-type"].startswith("application/problem+json")
    for params in ({"limit": 0}, {"limit": 501}, {"wait": -1}, {"wait": 61}):
        assert (await api.client.get("/v1/events", params=params)).status_code == 422, params


async def test_the_feed_pages_by_cursor_as_every_list_does_and_still_by_after(api):
    """`next_cursor` goes back as `cursor`, the name every other list takes; `after`, the feed's
    first name for it, still works, and both may be sent when they agree."""
    for _ in range(3):
        await api.intake()
    first = await feed(api, limit=1)
    by_cursor = await feed(api, cursor=first["next_cursor"], limit=1)
    assert by_cursor == await feed(api, after=first["next_cursor"], limit=1)
    assert by_cursor == await feed(api, cursor=first["next_cursor"], after=first["next_cursor"], limit=1)
    assert by_cursor["items"] and by_cursor["items"][0]["id"] != first["items"][0]["id"]
    following = await feed(api, cursor=by_cursor["next_cursor"], limit=1)
    assert [e["id"] for e in first["items"] + by_cursor["items"] + following["items"]] == [
        e["id"] for e in (await feed(api))["items"]
    ]


async def test_the_feed_refuses_a_cursor_and_an_after_that_disagree(api):
    await api.intake()
    await api.intake()
    first = await feed(api, limit=1)
    response = await api.client.get(
        "/v1/events", params={"cursor": first["next_cursor"], "after": encode_cursor({"p": 0})}
    )
    assert response.status_code == 422, response.text
    assert [(e["field"], e["location"], e["code"]) for e in response.json()["errors"]] == [
        ("cursor", "query", "cursor_conflict")
    ]
    # A bad cursor is refused under the name it came in.
    bad = await api.client.get("/v1/events", params={"cursor": "!!!"})
    assert bad.status_code == 422, bad.text
    assert [(e["field"], e["code"]) for e in bad.json()["errors"]] == [("cursor", "invalid_cursor")]


async def test_a_short_page_moves_the_cursor_to_the_newest_position_and_a_full_one_to_its_last_event(api):
    village = api.auth("body_mediator", "village")
    mine = await api.drive("assigned")
    for _ in range(3):
        await api.intake()  # the center's cases, which the village committee does not see
    newest = max(positions(await read_all(api)))

    # Everything it may see up to the newest event is on the page: the next starts after the
    # others' events instead of reading them again.
    page = await feed(api, village)
    assert kinds(page["items"]) == [(mine["case_number"], "assigned")]
    assert page["next_cursor"] == encode_cursor({"p": newest})
    assert await feed(api, village, after=page["next_cursor"]) == page | {"items": []}
    # A full page may stop before other events it may see: it goes on from its last event.
    mine = await api.step(mine, "sign_for")
    full = await feed(api, village, limit=1)
    assert kinds(full["items"]) == [(mine["case_number"], "assigned")]
    assert full["next_cursor"] == encode_cursor({"p": positions(full["items"])[0]})
    rest = await feed(api, village, after=full["next_cursor"], limit=1)
    assert kinds(rest["items"]) == [(mine["case_number"], "signed_for")]
    # Another's event after it: a short page jumps to the newest again.
    await api.intake()
    newest = max(positions(await read_all(api)))
    assert await feed(api, village, after=rest["next_cursor"]) == {
        "items": [],
        "next_cursor": encode_cursor({"p": newest}),
    }


# Numbers an event as a writer does, under the journal head, in one transaction: a copy of the
# newest event, at the next position.
NUMBER_ANOTHER_EVENT = """
WITH head AS (
    UPDATE audit_chain_head SET last_position = last_position + 1 WHERE id = 1 RETURNING last_position
)
INSERT INTO outbox_events
    (id, type, source, subject, dispute_id, body_id, target_id, data, created_at, published_at, position)
SELECT gen_random_uuid(), type, source, subject, dispute_id, body_id, target_id, data, created_at,
    published_at, head.last_position
FROM outbox_events, head WHERE position = head.last_position - 1
"""


@pytest.mark.postgres_only
@pytest.mark.parametrize("moment", ["before_cursor_execute", "after_cursor_execute"])
async def test_an_event_that_commits_while_a_short_page_is_read_comes_on_the_next_page(api, moment):
    """The newest position is read before the page, and bounds it: an event that commits just
    before the page's statement or just after it is neither stepped over by the cursor nor handed
    out twice."""
    await api.intake()
    cursor = (await feed(api))["next_cursor"]
    await api.intake()
    pending = [True]

    def commit_meanwhile(conn: Any, db_cursor: Any, statement: str, *_: Any) -> None:
        if "JOIN disputes" in statement and "FROM outbox_events" in statement and pending:
            pending.clear()
            commit_elsewhere(api.app.state.db, NUMBER_ANOTHER_EVENT)

    engine = api.app.state.db.engine.sync_engine
    event.listen(engine, moment, commit_meanwhile)
    try:
        page = await feed(api, after=cursor)
    finally:
        event.remove(engine, moment, commit_meanwhile)
    assert not pending, "the page was read without the hook"
    following = await feed(api, after=page["next_cursor"])
    seen = positions(page["items"]) + positions(following["items"])
    async with api.app.state.db.reader() as session:
        after_cursor = decode_cursor(cursor)["p"]
        committed = list(
            await session.scalars(
                select(OutboxEvent.position)
                .where(OutboxEvent.position > after_cursor)
                .order_by(OutboxEvent.position)
            )
        )
    assert len(committed) == 2
    assert seen == committed


# Times the long poll's refusal: alone, after the parallel part.
@pytest.mark.serial
async def test_a_cursor_ahead_of_the_feed_is_refused_with_where_the_feed_stands(api):
    """A cursor past the newest event was never handed out by this feed: the database was restored
    to an earlier point. The events numbered next would take the positions it covers and be
    skipped, so it is refused, naming the oldest and the newest cursor."""
    for _ in range(3):
        await api.intake()
    everything = await read_all(api)
    newest = max(positions(everything))
    for ahead in (newest + 1, 10_000, 2**63 - 1):
        response = await api.client.get("/v1/events", params={"after": encode_cursor({"p": ahead})})
        assert response.status_code == 410, (ahead, response.text)
        problem = response.json()
        assert problem["type"] == "/problems/feed-position-expired"
        assert problem["oldest_cursor"] == encode_cursor({"p": 0})
        assert problem["newest_cursor"] == encode_cursor({"p": newest})
        assert "newest_cursor" in problem["detail"]
    # Also while waiting: the long poll does not wait to refuse it.
    started = time.monotonic()
    waiting = await api.client.get(
        "/v1/events", params={"after": encode_cursor({"p": newest + 1}), "wait": 5}
    )
    assert waiting.status_code == 410 and time.monotonic() - started < 2
    # The newest cursor is where the feed goes on: the next event comes on its page.
    later = await api.intake()
    page = await feed(api, after=problem["newest_cursor"])
    assert kinds(page["items"]) == [(later["case_number"], "registered")]
    # Up to the newest, every cursor is taken.
    assert await feed(api, after=encode_cursor({"p": newest})) == page


async def test_feed_shows_each_caller_only_its_own_cases(api):
    mine = await api.drive("assigned")  # assigned to the village committee
    town = await api.drive("accepted")
    town = await api.step(town, "assign", {"body_id": str(api.bodies["town"])})
    unassigned = await api.intake()

    everything = await read_all(api)
    assert {e["subject"] for e in everything} == {
        mine["case_number"],
        town["case_number"],
        unassigned["case_number"],
    }

    newest = encode_cursor({"p": max(positions(everything))})
    village = await read_all(api, api.auth("body_mediator", "village"))
    assert village and {e["subject"] for e in village} == {mine["case_number"]}
    # From the assignment on: what came before was the center's.
    assert [e["type"].removeprefix(TYPE_PREFIX) for e in village] == ["assigned"]
    town_feed = await read_all(api, api.auth("body_admin", "town"))
    assert {e["subject"] for e in town_feed} == {town["case_number"]}
    # Another region's center, a court the case was never handed to, another region's body: nothing.
    for headers in (
        api.auth("clerk", "other_center"),
        api.auth("supervisor", "other_center"),
        api.auth("court", "court"),
        api.auth("body_mediator", "other_village"),
    ):
        assert await feed(api, headers) == {"items": [], "next_cursor": newest}

    # Handed to the court: now the court reads that case, and only that one.
    signed = await api.step(mine, "sign_for")
    signed = await api.step(signed, "agree")
    await api.step(signed, "request_confirmation")
    court = await read_all(api, api.auth("court", "court"))
    assert {e["subject"] for e in court} == {mine["case_number"]}
    assert court[-1]["type"] == TYPE_PREFIX + "confirmation_requested"
    assert await read_all(api, api.auth("court", "other_court")) == []
    # Without credentials there is no feed at all.
    response = await api.client.get("/v1/events", headers={"Authorization": ""})
    assert response.status_code == 401


async def test_a_body_or_court_keeps_the_events_of_a_case_taken_away_and_learns_of_it(api):
    # The village committee transfers its case; the court's rejected confirmation is mediated
    # again. Each keeps what it was told, hears of the change that took the case away, and hears
    # nothing of the case after it.
    village_headers = api.auth("body_mediator", "village")
    dispute = await api.step(await api.drive("assigned"), "sign_for")
    dispute = await api.step(dispute, "transfer", {"reason": "需由镇调委会调处"})
    dispute = await api.step(
        dispute, "assign", {"body_id": str(api.bodies["town"]), "override_reason": "转镇"}
    )
    village = [e["type"].removeprefix(TYPE_PREFIX) for e in await read_all(api, village_headers)]
    assert village == ["assigned", "signed_for", "transferred"]
    town = [e["type"].removeprefix(TYPE_PREFIX) for e in await read_all(api, api.auth("body_admin", "town"))]
    assert town == ["assigned"]

    court_headers = api.auth("court", "court")
    rejected = await api.drive("confirmation_rejected")
    before = [e["type"].removeprefix(TYPE_PREFIX) for e in await read_all(api, court_headers)]
    assert before[0] == "confirmation_requested" and before[-1] == "confirmation_rejected"
    again = await api.step(rejected, "remediate")
    await api.step(again, "withdraw")
    after = [e for e in await read_all(api, court_headers) if e["subject"] == rejected["case_number"]]
    assert [e["type"].removeprefix(TYPE_PREFIX) for e in after][: len(before)] == before
    assert after[-1]["type"].removeprefix(TYPE_PREFIX) == "remediation_started"
    assert all(e["data"]["version"] <= again["version"] for e in after if "version" in e["data"])


# Times the long poll: alone, after the parallel part.
@pytest.mark.serial
async def test_long_poll_returns_as_soon_as_an_event_commits(api):
    await api.intake()
    cursor = (await feed(api))["next_cursor"]

    # Idle: waits about as long as asked, then answers an empty page with the same cursor.
    started = time.monotonic()
    idle = await feed(api, after=cursor, wait=0.3)
    elapsed = time.monotonic() - started
    assert idle == {"items": [], "next_cursor": cursor}
    assert 0.25 <= elapsed < 1.5, elapsed

    waiting = asyncio.create_task(feed(api, after=cursor, wait=2))
    await asyncio.sleep(0.4)
    assert not waiting.done(), "the long poll answered before anything happened"
    committed = time.monotonic()
    dispute = await api.intake()
    page = await asyncio.wait_for(waiting, 3)
    latency = time.monotonic() - committed
    assert kinds(page["items"]) == [(dispute["case_number"], "registered")]
    assert latency < 1.0, latency
    assert page["next_cursor"] != cursor
    # Picking up from there, nothing is repeated.
    cursor = page["next_cursor"]
    assert await feed(api, after=cursor) == {"items": [], "next_cursor": cursor}

    # A body polling for its cases is not woken by a case it cannot see.
    body = api.auth("body_mediator", "village")
    body_cursor = (await feed(api, body))["next_cursor"]
    polling = asyncio.create_task(feed(api, body, after=body_cursor, wait=0.6))
    await asyncio.sleep(0.1)
    await api.intake()
    woken = await asyncio.wait_for(polling, 3)
    assert woken["items"] == []
    clerk = await feed(api, after=cursor)
    assert len(clerk["items"]) == 1  # the clerk sees that case
    # The body's next page starts after it all the same: it is not read again.
    after_it = await feed(api, body, after=woken["next_cursor"])
    assert after_it == {"items": [], "next_cursor": clerk["next_cursor"]}


async def test_paging_while_many_writers_commit_never_skips(api):
    """A reader follows the feed while twelve clients register and act at once; whatever order
    their transactions commit in, the reader sees every event exactly once, in position order."""
    seen: list[dict[str, Any]] = []
    writers_done = asyncio.Event()

    async def reader() -> None:
        cursor = None
        while True:
            finished = writers_done.is_set()
            page = await feed(api, **({"after": cursor} if cursor else {}), limit=4)
            seen.extend(page["items"])
            cursor = page["next_cursor"]
            if finished and not page["items"]:
                return
            await asyncio.sleep(0)

    async def writer(i: int) -> None:
        dispute = await api.intake()
        dispute = await api.step(dispute, "accept")
        if i % 2:
            await api.step(dispute, "assign")

    task = asyncio.create_task(reader())
    await asyncio.gather(*(writer(i) for i in range(12)))
    writers_done.set()
    await asyncio.wait_for(task, 30)

    everything = (await feed(api, limit=500))["items"]
    assert len(everything) == 12 * 2 + 6
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)), "an event was read twice"
    assert ids == [e["id"] for e in everything], "an event was skipped or read out of order"
    seqs = positions(seen)
    assert seqs == sorted(seqs)
    # Within a case, the feed's order is the case's own order.
    by_case: dict[str, list[int]] = {}
    for e in seen:
        by_case.setdefault(e["subject"], []).append(e["data"]["version"])
    assert all(v == sorted(v) and v[0] == 1 for v in by_case.values())


async def test_events_written_outside_a_request_are_numbered_later_and_not_skipped(api):
    app = api.app
    first = await api.intake()
    page = await feed(api)
    assert kinds(page["items"]) == [(first["case_number"], "registered")]
    cursor_after_first = page["next_cursor"]
    first_position = int(page["items"][0]["sequence"])

    # Written the way `mediation demo` does: through the service, in a writer session of its own,
    # where no request numbers the events before commit.
    clock = FrozenClock(app.state.clock.now())
    clerk = Principal(Role.clerk, "maintenance", api.bodies["center"], region="330681")
    async with app.state.db.writer() as session, session.begin():
        service = DisputeService(session, clock, app.state.settings, app.state.identity.cipher)
        outside, _code = await service.register(DisputeCreate.model_validate(intake_body()), clerk)
        outside = await service.apply(
            outside.id, Action.accept, ACTION_PAYLOADS["accept"].model_validate({}), clerk, '"1"'
        )
    # And one event added by hand to the first case.
    raw_id = uuid.uuid4()
    async with app.state.db.writer() as session, session.begin():
        session.add(
            OutboxEvent(
                id=raw_id,
                type=TYPE_PREFIX + "escalated",
                source=SOURCE,
                subject=first["case_number"],
                dispute_id=uuid.UUID(first["id"]),
                data={"dispute_id": first["id"], "case_number": first["case_number"], "action": "escalate"},
                created_at=utcnow(),
            )
        )
    async with app.state.db.reader() as session:
        waiting = (await session.scalars(select(OutboxEvent).where(OutboxEvent.position.is_(None)))).all()
    assert len(waiting) == 3, "committed, but not numbered yet"

    # Meanwhile a request commits: it numbers its own event at once, ahead of those still waiting.
    later = await api.intake()
    async with app.state.db.reader() as session:
        numbered = await session.scalar(
            select(OutboxEvent.position).where(OutboxEvent.dispute_id == uuid.UUID(later["id"]))
        )
    assert numbered == first_position + 1

    # The feed sequences what waits before it reads: a reader one page at a time, already past the
    # first positions, gets the request's event and then the three late ones, none skipped.
    pages: list[dict[str, Any]] = []
    cursor = cursor_after_first
    while True:
        page = await feed(api, after=cursor, limit=1)
        if not page["items"]:
            break
        pages.extend(page["items"])
        cursor = page["next_cursor"]
    assert kinds(pages) == [
        (later["case_number"], "registered"),
        (outside.case_number, "registered"),
        (outside.case_number, "accepted"),
        (first["case_number"], "escalated"),
    ]
    assert positions(pages) == list(range(first_position + 1, first_position + 5))
    assert pages[-1]["id"] == str(raw_id)
    assert await sequence_pending(app.state.db, utcnow()) == 0  # nothing waits any more

    # Written outside a request after the reader's cursor: numbered after everything so far.
    async with app.state.db.writer() as session, session.begin():
        service = DisputeService(session, clock, app.state.settings, app.state.identity.cipher)
        await service.apply(
            outside.id,
            Action.assign,
            ACTION_PAYLOADS["assign"].model_validate({"body_id": str(api.bodies["village"])}),
            clerk,
            '"2"',
        )
    assert await sequence_pending(app.state.db, utcnow()) == 1
    page = await feed(api, after=cursor)
    assert kinds(page["items"]) == [(outside.case_number, "assigned")]
    assert positions(page["items"]) == [first_position + 5]


async def produce_every_event_type(api: Any) -> None:
    """Cases through every transition of the lifecycle and every other change that makes an event
    (needs the fixture calendar_package_until_2026: it loads 2027's holiday schedule)."""
    # Cases through every transition of the lifecycle, and a consent.
    long = await api.intake()
    party = long["parties"][0]["id"]
    response = await api.client.post(
        f"/v1/disputes/{long['id']}/parties/{party}/consent",
        json={"decision": "given"},
        headers={"If-Match": f'"{long["version"]}"'},
    )
    assert response.status_code == 200, response.text
    long = response.json()
    for action, payload, role in [
        ("accept", None, None),
        ("assign", None, None),
        ("return", None, None),
        ("assign", None, None),
        ("sign_for", None, None),
        ("transfer", None, None),
        ("assign", None, None),
        ("sign_for", None, None),
        ("escalate", None, "supervisor"),
        ("assign", {"body_id": str(api.bodies["town"])}, None),
        ("sign_for", None, None),
        ("agree", None, None),
        ("request_confirmation", None, None),
        ("not_accept", None, None),
        ("remediate", None, None),
        ("agree", None, None),
        ("request_confirmation", None, None),
        ("court_accept", None, None),
        ("reject", None, None),
        ("refer_litigation", None, None),
        ("court_accept", None, None),
        ("record_outcome", None, None),
        ("archive", None, None),
    ]:
        if action == "court_accept":
            long = await api.target_accepts(long)
            continue
        if action == "agree" and long["id"] not in api.agreements:
            # A draft revised before the agreement `agree` records is drafted over it and signed.
            draft = await api.draft_agreement(long)
            revised = await api.client.put(
                f"/v1/disputes/{long['id']}/agreements/{draft['id']}",
                json=api.agreement_content(long, terms=["双方互相谅解。"]),
                headers={**api.acting("body_mediator", long), "If-Match": f'"{draft["version"]}"'},
            )
            assert revised.status_code == 200, revised.text
            long = await api.get(long)
        long = await api.step(long, action, payload, **({"role": role} if role else {}))
    assert long["status"] == "archived"
    await api.drive("archived")  # performed, closed
    await api.drive("confirmed")
    await api.drive("declined")
    await api.drive("withdrawn")
    arbitration = await api.drive("mediation_failed")
    arbitration = await api.step(arbitration, "refer_arbitration")
    arbitration = await api.target_accepts(arbitration, "绍仲案字(2026)第1号")
    await api.step(
        arbitration,
        "record_outcome",
        {"outcome": "award", "reference_number": "绍仲裁字(2026)第1号", "decided_on": api.today.isoformat()},
        role="arbitration",
    )
    # A labour commission does not accept: the applicant may sue (劳动争议调解仲裁法 Art. 29).
    refused = await api.drive("mediation_failed", category="labour")
    refused = await api.step(
        refused, "refer_arbitration", {"commission_id": str(api.bodies["labour_commission"])}
    )
    refused = await api.step(refused, "not_accept", {"reason_code": "other"}, role="arbitration")
    assert refused["status"] == "mediation_failed"

    # A document added and withdrawn.
    upload = await api.client.post(
        f"/v1/disputes/{arbitration['id']}/documents",
        files={"file": ("note.txt", "调解笔录".encode(), "text/plain")},
        data={"kind": "minutes"},
    )
    assert upload.status_code == 201, upload.text
    withdrawn = await api.client.post(
        f"/v1/disputes/{arbitration['id']}/documents/{upload.json()['id']}/withdraw",
        json={"reason": "上传错误"},
        headers=await api.if_match(arbitration),
    )
    assert withdrawn.status_code == 200, withdrawn.text

    # Every candidate returns a labour case: triage is exhausted and a supervisor is flagged.
    labour = await api.step(await api.intake(category="labour"), "accept")
    for body in ("labour_mediation", "town"):
        labour = await api.step(labour, "assign", {"body_id": str(api.bodies[body])})
        labour = await api.step(labour, "return")
    assert labour["attention"] == "triage_exhausted"
    # A mediator named after sign-for, and two cases linked.
    mediating = await api.drive("mediating")
    named = await api.client.put(
        f"/v1/disputes/{mediating['id']}/mediator",
        json={"mediator_id": str(api.mediators[api.bodies["village"]])},
        headers={**api.auth("body_admin", "village"), "If-Match": f'"{mediating["version"]}"'},
    )
    assert named.status_code == 200, named.text
    linked = await api.client.post(f"/v1/disputes/{labour['id']}/links", json={"dispute_id": mediating["id"]})
    assert linked.status_code == 201, linked.text
    # The link made by mistake, removed.
    unlinked = await api.client.post(
        f"/v1/disputes/{labour['id']}/links/{mediating['id']}/removal", json={"reason": "并非关联纠纷"}
    )
    assert unlinked.status_code == 200, unlinked.text

    # A session scheduled and recorded.
    mediating = await api.get(mediating)
    scheduled = await api.client.post(
        f"/v1/disputes/{mediating['id']}/sessions",
        json={"scheduled_at": "2026-06-02T09:00:00+08:00", "place": "枫源村调委会"},
        headers=api.acting("body_mediator", mediating),
    )
    assert scheduled.status_code == 201, scheduled.text
    recorded = await api.client.post(
        f"/v1/disputes/{mediating['id']}/sessions/{scheduled.json()['id']}/record",
        json={
            "held_at": "2026-06-01T09:30:00+08:00",
            "attendees": [{"name": "张三", "capacity": "申请人", "party_id": mediating["parties"][0]["id"]}],
            "minutes": "双方陈述意见, 约定下次继续调解。",
            "outcome": "continued",
        },
        headers={**api.acting("body_mediator", mediating), "If-Match": scheduled.headers["ETag"]},
    )
    assert recorded.status_code == 200, recorded.text
    # Another scheduled, then called off.
    again = await api.client.post(
        f"/v1/disputes/{mediating['id']}/sessions",
        json={"scheduled_at": "2026-06-09T09:00:00+08:00", "place": "枫源村调委会"},
        headers=api.acting("body_mediator", mediating),
    )
    assert again.status_code == 201, again.text
    called_off = await api.client.post(
        f"/v1/disputes/{mediating['id']}/sessions/{again.json()['id']}/cancel",
        json={"reason": "被申请人外出务工, 无法到场"},
        headers={**api.acting("body_mediator", mediating), "If-Match": again.headers["ETag"]},
    )
    assert called_off.status_code == 200, called_off.text
    # Another scheduled, then moved to another day.
    moving = await api.client.post(
        f"/v1/disputes/{mediating['id']}/sessions",
        json={"scheduled_at": "2026-06-10T09:00:00+08:00", "place": "枫源村调委会"},
        headers=api.acting("body_mediator", mediating),
    )
    assert moving.status_code == 201, moving.text
    moved = await api.client.post(
        f"/v1/disputes/{mediating['id']}/sessions/{moving.json()['id']}/reschedule",
        json={"scheduled_at": "2026-06-12T14:00:00+08:00", "reason": "调解室被占用"},
        headers={**api.acting("body_mediator", mediating), "If-Match": moving.headers["ETag"]},
    )
    assert moved.status_code == 200, moved.text
    # An obligation performed; another overdue, followed up; a confirmation request withdrawn;
    # another accepted, extended, and late.
    performed = await api.drive("agreement_signed")
    obligation = (await api.client.get(f"/v1/disputes/{performed['id']}/agreements")).json()[0][
        "obligations"
    ][0]
    done = await api.client.post(
        f"/v1/disputes/{performed['id']}/obligations/{obligation['id']}/performance",
        json={"performed_on": api.today.isoformat()},
        headers={
            **api.acting("body_mediator", performed),
            "If-Match": f'"{(await api.get(performed))["version"]}"',
        },
    )
    assert done.status_code == 200, done.text
    late = await api.drive("agreement_signed")
    pending = await api.drive("confirmation_pending")
    await api.step(pending, "withdraw_confirmation")
    extended = await api.target_accepts(await api.drive("confirmation_pending"))
    handoff = (await api.handoff(extended))["handoff"]
    response = await api.client.post(
        f"/v1/handoffs/{handoff['id']}/extension",
        json={"days": 10, "reason": "案情复杂, 经院长批准延长"},
        headers={**api.auth("court", "court"), "If-Match": f'"{handoff["version"]}"'},
    )
    assert response.status_code == 200, response.text
    # Accepted, the parties' withdrawal is a request for the court's ruling.
    asked = await api.act(await api.get(extended), "withdraw_confirmation")
    assert asked.status_code == 200 and asked.json()["status"] == "confirmation_pending", asked.text
    # The court asks two applications for more materials: one is supplied, the other left late.
    for supplied in (True, False):
        short = await api.drive("confirmation_pending")
        handoff = (await api.handoff(short))["handoff"]
        due = (api.today + timedelta(days=3)).isoformat()
        response = await api.client.post(
            f"/v1/handoffs/{handoff['id']}/materials-request",
            json={"items": ["身份证复印件"], "due_on": due},
            headers={**api.auth("court", "court"), "If-Match": f'"{handoff["version"]}"'},
        )
        assert response.status_code == 200, response.text
        if supplied:
            copy = await api.client.post(
                f"/v1/disputes/{short['id']}/documents",
                files={"file": ("身份证.pdf", b"%PDF-1.4 copy", "application/pdf")},
                data={"kind": "identity_document"},
            )
            assert copy.status_code == 201, copy.text
            response = await api.client.post(
                f"/v1/handoffs/{handoff['id']}/materials-supplied",
                json={"document_ids": [copy.json()["id"]]},
                headers={**api.acting("body_mediator", short), "If-Match": response.headers["etag"]},
            )
            assert response.status_code == 200, response.text
    clock = api.app.state.clock
    clock.at += timedelta(days=40)
    app = api.app
    report = await tick(app.state.db, clock, app.state.settings, app.state.identity.cipher)
    assert report.obligations_overdue >= 1 and report.handoffs_overdue >= 1
    inbox = await api.client.get(
        f"/v1/bodies/{late['body_id']}/follow-ups", headers=api.auth("body_mediator", "village")
    )
    assert inbox.status_code == 200, inbox.text
    task = next(t for t in inbox.json()["items"] if t["dispute_id"] == late["id"])
    result = await api.client.post(
        f"/v1/follow-ups/{task['id']}/result",
        json={"contacted_on": api.today.isoformat(), "method": "phone", "outcome": "performing"},
        headers={**api.auth("body_mediator", "village"), **await api.case_if_match(late["id"])},
    )
    assert result.status_code == 200, result.text

    # Deadlines paused, resumed, extended, at risk; a supervision order answered and another
    # escalated; an owner; an alert acknowledged and resolved; follow-up visits.
    risky = await api.drive("mediating")
    owner = {**api.acting("body_mediator", risky)}
    for step, body in (("pause", {"reason": "waiting_party"}), ("resume", {})):
        risky = await api.get(risky)
        response = await api.client.post(
            f"/v1/disputes/{risky['id']}/clocks/mediation/{step}",
            json=body,
            headers={**owner, "If-Match": f'"{risky["version"]}"'},
        )
        assert response.status_code == 200, response.text
    risky = await api.get(risky)
    response = await api.client.post(
        f"/v1/disputes/{risky['id']}/clocks/mediation/extension",
        json={"units": 1, "reason": "双方同意", "consenting_party_ids": [p["id"] for p in risky["parties"]]},
        headers={**owner, "If-Match": f'"{risky["version"]}"'},
    )
    assert response.status_code == 200, response.text
    supervisor = api.auth("supervisor")
    for due in (None, api.today.isoformat()):
        risky = await api.get(risky)
        order = await api.client.post(
            f"/v1/disputes/{risky['id']}/supervision-orders",
            json={"instruction": "报告进展", **({"due_on": due} if due else {})},
            headers={**supervisor, "If-Match": f'"{risky["version"]}"'},
        )
        assert order.status_code == 201, order.text
    answered = await api.client.post(
        f"/v1/supervision-orders/{order.json()['id']}/response",
        json={"response": "已约见双方"},
        headers={**owner, "If-Match": order.headers["ETag"]},
    )
    assert answered.status_code == 200, answered.text
    # An order closed with its case when the party withdraws.
    lapsing = await api.drive("mediating")
    issued = await api.client.post(
        f"/v1/disputes/{lapsing['id']}/supervision-orders",
        json={"instruction": "报告进展"},
        headers={**supervisor, "If-Match": f'"{lapsing["version"]}"'},
    )
    assert issued.status_code == 201, issued.text
    await api.step(await api.get(lapsing), "withdraw")
    risky = await api.get(risky)
    owned = await api.client.put(
        f"/v1/disputes/{risky['id']}/owner",
        json={"name": "王副书记", "title": "镇党委副书记", "reason": "疑难案件"},
        headers={**supervisor, "If-Match": f'"{risky["version"]}"'},
    )
    assert owned.status_code == 200, owned.text
    risky = await api.get(risky)
    respondent = next(p for p in risky["parties"] if p["role"] == "respondent")
    corrected = await api.client.post(
        f"/v1/disputes/{risky['id']}/corrections",
        json={
            "reason": "核实了被申请人住址",
            "parties": [{"party_id": respondent["id"], "address": "枫桥镇新村1号"}],
        },
        headers={**owner, "If-Match": f'"{risky["version"]}"'},
    )
    assert corrected.status_code == 200, corrected.text
    # A party who lost the receipt is given a new query code at the window.
    risky = await api.get(risky)
    reissued = await api.client.post(
        f"/v1/disputes/{risky['id']}/query-code",
        json={"cause": "lost"},
        headers={**api.auth("clerk"), "If-Match": f'"{risky["version"]}"'},
    )
    assert reissued.status_code == 200, reissued.text
    # A danger seen and reported by hand (人民调解法 Art. 25).
    hand_flagged = await flag(api, await api.get(risky), headers=api.auth("supervisor"))
    assert hand_flagged.status_code == 200, hand_flagged.text
    flagged = await api.intake(description="被申请人扬言要拿刀砍人, 情绪激动。")
    (alert,) = [
        a
        for a in (await api.client.get(f"/v1/disputes/{flagged['id']}/alerts")).json()
        if a["kind"] == "risk"
    ]
    acknowledged = await api.client.post(
        f"/v1/alerts/{alert['id']}/acknowledgement",
        json={},
        headers={**supervisor, "If-Match": f'"{alert["version"]}"'},
    )
    assert acknowledged.status_code == 200, acknowledged.text
    resolved = await api.client.post(
        f"/v1/alerts/{alert['id']}/resolution",
        json={"resolution": "已报告派出所, 双方情绪平稳"},
        headers={**supervisor, "If-Match": acknowledged.headers["ETag"]},
    )
    assert resolved.status_code == 200, resolved.text
    for outcome in ("attempted", "completed", "impossible"):
        closed = await api.drive("closed")
        (task,) = (
            await api.client.get(
                "/v1/follow-ups", params={"kind": "visit", "dispute_id": closed["id"]}, headers=supervisor
            )
        ).json()["items"]
        visiting = {**supervisor, "If-Match": f'"{closed["version"]}"'}
        if outcome == "impossible":
            response = await api.client.post(
                f"/v1/follow-ups/{task['id']}/impossible", json={"reason": "当事人已迁居"}, headers=visiting
            )
        else:
            reached = outcome == "completed"
            response = await api.client.post(
                f"/v1/follow-ups/{task['id']}/visit",
                json={
                    "visited_on": api.today.isoformat(),
                    "contact_method": "phone",
                    "reached": reached,
                    **({"satisfaction": 5} if reached else {}),
                },
                headers=visiting,
            )
        assert response.status_code == 200, response.text
    clock.at += timedelta(days=25)  # the extended mediation clock is at risk; the order is overdue
    report = await tick(app.state.db, clock, app.state.settings, app.state.identity.cipher)
    assert report.at_risk >= 1 and report.orders_escalated == 1
    # A deadline counted on weekends only into 2027, counted again once 2027's schedule is loaded.
    clock.at = datetime(2026, 12, 29, 10, tzinfo=BEIJING)
    provisional = await api.step(await api.step(await api.intake(), "accept"), "assign")
    assert provisional["clock"]["provisional"] is True
    response = await api.client.put(
        "/v1/calendar/years/2027",
        json={"reference": "测试用", "holidays": [{"date": "2027-01-01", "name": "元旦"}]},
        headers=api.auth("admin"),
    )
    assert response.status_code == 200, response.text
    report = await tick(app.state.db, clock, app.state.settings, app.state.identity.cipher)
    assert report.clocks_recounted >= 1


async def test_catalogue_lists_every_type_the_feed_produces(api, calendar_package_until_2026):
    await produce_every_event_type(api)
    produced = {e["type"] for e in await read_all(api, limit=500)}
    response = await api.client.get("/v1/events/catalogue")
    assert response.status_code == 200
    catalogue = response.json()
    listed = [e["type"] for e in catalogue]
    assert len(listed) == len(set(listed))
    assert produced <= set(listed), produced - set(listed)
    assert produced == set(listed), f"never produced: {set(listed) - produced}"
    for entry in catalogue:
        assert entry["source"] == SOURCE
        assert set(entry["data"]["required"]) == {"dispute_id", "case_number", "action", "version"}
    # The catalogue the service answers is the one committed with the code.
    committed = json.loads(EVENTS_JSON.read_text())
    assert committed["events"] == catalogue


def payload_problems(schema: dict[str, Any], value: Any, path: str) -> list[str]:
    """Where `value` departs from a catalogue schema: a type, a format, a bound, a required field
    missing, or a field the catalogue does not list (a receiver that validates against the
    committed catalogue would refuse it, or never learn what it means)."""
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
    }
    declared = schema.get("type")
    types = declared if isinstance(declared, list) else [declared] if declared else []
    if types and not any(checks[t](value) for t in types):
        return [f"{path}: {value!r} is not {' or '.join(types)}"]
    problems = []
    if isinstance(value, str) and "format" in schema:
        parse = {"uuid": uuid.UUID, "date": date.fromisoformat, "date-time": datetime.fromisoformat}
        try:
            parse[schema["format"]](value)
        except ValueError:
            problems.append(f"{path}: {value!r} is not a {schema['format']}")
    if checks["number"](value) and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        problems.append(f"{path}: {value!r} out of bounds")
    if isinstance(value, list):
        for i, item in enumerate(value):
            problems += payload_problems(schema.get("items", {}), item, f"{path}[{i}]")
    if isinstance(value, dict) and "properties" in schema:
        problems += [f"{path}: {name} missing" for name in schema.get("required", []) if name not in value]
        for name, item in value.items():
            if name in schema["properties"]:
                problems += payload_problems(schema["properties"][name], item, f"{path}.{name}")
            else:
                problems.append(f"{path}.{name}: not in the catalogue")
    return problems


async def test_every_event_payload_matches_its_catalogue_entry(api, calendar_package_until_2026):
    await produce_every_event_type(api)
    entries = {e["type"]: e for e in json.loads(EVENTS_JSON.read_text())["events"]}
    problems = set()
    for e in await read_all(api, limit=500):
        entry = entries[e["type"]]
        problems.update(payload_problems(entry["data"], e["data"], e["type"]))
        if e["data"].get("action") not in entry["actions"]:
            problems.add(f"{e['type']}: action {e['data'].get('action')!r} not in {entry['actions']}")
    assert not problems, sorted(problems)
