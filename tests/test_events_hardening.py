"""Events and webhooks at their edges: personal data typed into a case never leaves in an event,
a retried subscription or rotation does not act twice, and odd cursors and times are refused
with 422 rather than failing the request."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from mediation.core.http import encode_cursor
from mediation.events import webhooks
from mediation.events.models import OutboxEvent
from mediation.events.service import SOURCE
from tests.receiver import Receiver
from tests.support import Api, resident_id
from tests.test_event_feed import read_all
from tests.test_webhooks import PREFIX, deliveries_of, pump, subscribe

OWNER_PHONE = "13912345678"


async def _owner_with_numbers(api: Api) -> dict[str, Any]:
    """A case whose owner was set with a mobile number in the title and an ID number in the note,
    as a clerk in a hurry types them."""
    dispute = await api.drive("mediating")
    owned = await api.client.put(
        f"/v1/disputes/{dispute['id']}/owner",
        json={
            "name": "王副书记",
            "title": f"镇党委副书记 {OWNER_PHONE}",
            "reason": "疑难案件",
            "note": f"联系人身份证 {resident_id(7)}",
        },
        headers={**api.auth("supervisor"), "If-Match": f'"{dispute["version"]}"'},
    )
    assert owned.status_code == 200, owned.text
    # The case itself shows it masked to a supervisor, who does not hold pii:read.
    assert OWNER_PHONE not in owned.text and "139****5678" in owned.text
    return dispute


async def test_numbers_typed_into_an_event_field_are_masked_in_the_feed_and_in_webhooks(
    api: Api, relay: Any, receiver: Receiver
) -> None:
    await subscribe(
        api, receiver.url, role="supervisor", event_types=[PREFIX + "owner_changed"], receiver=receiver
    )
    dispute = await _owner_with_numbers(api)

    for role in ("supervisor", "clerk"):
        [owner_set] = [
            e for e in await read_all(api, api.auth(role)) if e["type"] == PREFIX + "owner_changed"
        ]
        text = json.dumps(owner_set, ensure_ascii=False)
        assert OWNER_PHONE not in text and resident_id(7) not in text, (role, text)
        assert owner_set["data"]["owner"]["title"] == "镇党委副书记 139****5678"
        assert owner_set["data"]["owner"]["name"] == "王副书记"
        assert owner_set["subject"] == dispute["case_number"]

    # Nor is it kept in the outbox: events carry ids and states only.
    async with api.app.state.db.reader() as session:
        stored = (
            await session.scalars(
                select(OutboxEvent.data).where(OutboxEvent.type == PREFIX + "owner_changed")
            )
        ).all()
    assert len(stored) == 1 and OWNER_PHONE not in json.dumps(stored[0], ensure_ascii=False)

    await pump(relay, lambda: len(receiver.ok()) == 1)
    [delivery] = receiver.deliveries
    assert delivery.verified
    body = delivery.body.decode()
    assert OWNER_PHONE not in body and resident_id(7) not in body, body
    assert delivery.event["data"]["owner"]["title"] == "镇党委副书记 139****5678"


async def test_an_owners_note_stays_on_the_timeline_and_is_not_sent_in_the_event(api: Api) -> None:
    """Free text names people: events carry ids and states (and the owner the catalogue lists), the
    note stays with the case, where its readers see it as their rights allow."""
    dispute = await _owner_with_numbers(api)
    [owner_set] = [e for e in await read_all(api) if e["type"] == PREFIX + "owner_changed"]
    assert set(owner_set["data"]) == {"dispute_id", "case_number", "action", "version", "owner"}
    [entry] = [t for t in await api.timeline(dispute) if t["action"] == "owner_set"]
    assert entry["payload"]["note"].startswith("联系人身份证 ")


async def test_a_subscription_retried_with_its_idempotency_key_is_made_once(
    api: Api, relay: Any, receiver: Receiver
) -> None:
    """The answer to a subscription is lost and the client sends it again: it gets the same
    subscription and secret back, and each event is delivered once."""
    headers = {**api.auth("clerk"), "Idempotency-Key": "subscribe-1"}
    body = {"url": receiver.url, "event_types": []}
    first = await api.client.post("/v1/webhooks", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await api.client.post("/v1/webhooks", json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    listed = (await api.client.get("/v1/webhooks")).json()
    assert [s["id"] for s in listed] == [first.json()["id"]]
    assert all("secret" not in s for s in listed)
    other = await api.client.post("/v1/webhooks", json={**body, "description": "另一个"}, headers=headers)
    assert other.status_code == 422, other.text

    receiver.secrets = [first.json()["secret"]]
    await api.intake()
    await pump(relay, lambda: len(receiver.deliveries) >= 1)
    while await relay.run_once():
        pass
    assert [(d.verified, d.answered) for d in receiver.deliveries] == [(True, 200)]


async def test_a_rotation_retried_with_its_idempotency_key_rotates_once(
    api: Api, relay: Any, receiver: Receiver
) -> None:
    """The answer to a rotation is lost: the retry shows the successor the first one made, and the
    secret the receiver still holds keeps signing through the overlap."""
    sub = await subscribe(api, receiver.url, receiver=receiver)
    old = sub["secret"]
    url = f"/v1/webhooks/{sub['id']}/rotate-secret"
    headers = {**sub["_headers"], "Idempotency-Key": "rotate-1"}
    first = await api.client.post(url, headers=headers)
    assert first.status_code == 200, first.text
    again = await api.client.post(url, headers=headers)
    assert again.status_code == 200, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    new = first.json()["secret"]
    assert again.json()["secret"] == new != old

    receiver.secrets = [old]  # the receiver has not switched yet
    await api.intake()
    await pump(relay, lambda: len(receiver.deliveries) >= 1)
    [delivery] = receiver.deliveries
    assert delivery.verified and delivery.answered == 200
    assert Receiver(secrets=[new]).verify(delivery.body, delivery.headers)


def _cursor(value: Any) -> str:
    raw = json.dumps({"p": value}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("position", [True, False])
async def test_a_cursor_holding_true_or_false_is_refused(api: Api, position: bool) -> None:
    await api.intake()
    response = await api.client.get("/v1/events", params={"after": _cursor(position)})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["code"] == "invalid_cursor"
    # The feed's own cursors still page.
    page = await api.client.get("/v1/events", params={"after": encode_cursor({"p": 0})})
    assert page.status_code == 200 and len(page.json()["items"]) == 1


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00"])
async def test_a_redelivery_since_a_time_out_of_range_is_refused(
    api: Api, receiver: Receiver, since: str
) -> None:
    sub = await subscribe(api, receiver.url, receiver=receiver)
    response = await api.client.post(
        f"/v1/webhooks/{sub['id']}/redeliver", json={"since": since}, headers=sub["_headers"]
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "since" and error["code"] == "date_out_of_range", error
    # A time in range is taken.
    fine = await api.client.post(
        f"/v1/webhooks/{sub['id']}/redeliver",
        json={"since": "2026-01-01T00:00:00+08:00"},
        headers=sub["_headers"],
    )
    assert fine.status_code == 200, fine.text
    assert fine.json() == {"redelivered": 0, "more": False}
    assert await deliveries_of(api, sub) == []


POLLERS = 3


@pytest.mark.postgres_only
@pytest.mark.parametrize(
    "overrides",
    [{"db_pool_size": POLLERS, "db_max_overflow": 0, "db_pool_timeout_seconds": 2.0}],
    ids=["pool-of-3"],
)
async def test_long_polls_hold_no_database_connection_while_they_wait(api: Api) -> None:
    """Courts and bodies long-poll the feed. A wait holds no pooled connection: as many pollers as
    the pool has connections still get their pages, and a clerk's request in the meantime is
    answered at once rather than after the pool timeout with 503."""
    dispute = await api.intake()
    callers = [api.auth("court", "court"), api.auth("court", "other_court"), api.auth("body_admin", "town")]
    assert len(callers) == POLLERS
    polls = [
        asyncio.create_task(api.client.get("/v1/events", params={"wait": 3}, headers=headers))
        for headers in callers
    ]
    await asyncio.sleep(0.5)  # every poller is waiting now
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await api.client.get(f"/v1/disputes/{dispute['id']}", headers=api.auth("clerk"))
    assert response.status_code == 200, response.text
    assert loop.time() - started < 1.5
    for poll in polls:
        page = await poll
        assert page.status_code == 200, page.text
        assert page.json()["items"] == []


@pytest.mark.parametrize("overrides", [{"webhook_timeout_seconds": 1.0}], ids=["1s"])
async def test_a_subscription_whose_host_name_never_resolves_is_refused_within_the_timeout(
    api: Api, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The subscriber's name server never answers. The subscription is refused once the webhook
    timeout has passed, instead of holding the request (a write's turn and its connection) until
    the system resolver gives up or the request's time limit ends it with 503."""
    app.state.settings.webhook_allow_private_targets = False
    hanging = threading.Event()
    system_lookup = socket.getaddrinfo

    def getaddrinfo(host: str, port: object, *args: Any, **kwargs: Any) -> Any:
        if host == "stuck.example":
            hanging.wait(60)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return system_lookup(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    try:
        for language, phrase in (("zh", "主机名解析超时"), ("en", "did not resolve within 1 s")):
            response = await asyncio.wait_for(
                api.client.post(
                    "/v1/webhooks",
                    json={"url": "https://stuck.example/hooks"},
                    headers={"Accept-Language": language},
                ),
                5,
            )
            assert response.status_code == 422, response.text
            [error] = response.json()["errors"]
            assert error["code"] == "target_refused" and phrase in error["message"], error
        assert (await api.client.get("/v1/webhooks")).json() == []
    finally:
        hanging.set()
        while webhooks._looking_up:  # noqa: ASYNC110 - the lookup's thread ends it
            await asyncio.sleep(0.01)


async def test_an_event_stored_with_a_number_before_masking_is_sent_masked(api: Api) -> None:
    """An outbox row written before events were masked as they are recorded still holds the
    number: it is masked as it is read."""
    dispute = await api.intake()
    async with api.app.state.db.writer() as session, session.begin():
        session.add(
            OutboxEvent(
                id=uuid.uuid4(),
                type=PREFIX + "owner_changed",
                source=SOURCE,
                subject=dispute["case_number"],
                dispute_id=uuid.UUID(dispute["id"]),
                data={
                    "dispute_id": dispute["id"],
                    "case_number": dispute["case_number"],
                    "action": "owner_set",
                    "version": 2,
                    "owner": {"name": "王副书记", "title": f"镇党委副书记 {OWNER_PHONE}"},
                },
                created_at=datetime.now(UTC),
            )
        )
    [owner_set] = [
        e for e in await read_all(api, api.auth("supervisor")) if e["type"] == PREFIX + "owner_changed"
    ]
    assert owner_set["data"]["owner"]["title"] == "镇党委副书记 139****5678"
