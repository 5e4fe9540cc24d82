"""Who an order, a webhook delivery or a registry edit can reach: supervision orders go only to a
body that could answer them, a suspended body's queued deliveries stop with it, a registry patch
never clears a column that must hold a value, and a feed cursor past the positions' range is
refused as a cursor."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import update

from mediation.bodies.models import Body
from mediation.core.http import encode_cursor
from mediation.events.models import WebhookSubscription
from mediation.events.relay import Relay
from tests.receiver import Receiver, deliveries_of
from tests.support import Api
from tests.test_webhooks import subscribe

SUSPENSION = {"active": False, "suspended_reason": "违规泄露当事人信息, 暂停工作"}


def _if_match(thing: dict[str, Any]) -> dict[str, str]:
    return {"If-Match": f'"{thing["version"]}"'}


def _errors(response: Any) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in response.json()["errors"]]


def _contract(api: Api, name: str) -> dict[str, Any]:
    schema: dict[str, Any] = api.app.openapi()["components"]["schemas"][name]
    return schema


# ---- supervision orders --------------------------------------------------------------------------


async def _issue(api: Api, dispute: dict[str, Any], body_id: Any) -> Any:
    return await api.client.post(
        f"/v1/disputes/{dispute['id']}/supervision-orders",
        json={"instruction": "请于三日内报告调解进展", "body_id": str(body_id)},
        headers={**api.auth("supervisor"), **_if_match(dispute)},
    )


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ("court", "body_not_mediating"),
        ("other_center", "body_not_mediating"),
        ("suspended", "body_suspended"),
        ("other_village", "body_outside_jurisdiction"),
        ("nowhere", "body_not_found"),
    ],
)
async def test_an_order_goes_only_to_a_body_that_could_mediate_the_case(
    api: Api, target: str, code: str
) -> None:
    dispute = await api.drive("mediating")
    refused = await _issue(api, dispute, api.bodies.get(target, uuid.uuid4()))
    assert refused.status_code == 422, refused.text
    assert _errors(refused) == [("body_id", code)]
    # Nothing was issued: the case is unchanged, and no body lists an order on it.
    assert (await api.get(dispute))["version"] == dispute["version"]
    listed = await api.client.get("/v1/supervision-orders", headers=api.auth("supervisor"))
    assert listed.json()["items"] == []
    if target == "other_village":
        theirs = await api.client.get(
            "/v1/supervision-orders", headers=api.auth("body_admin", "other_village")
        )
        assert theirs.status_code == 200 and theirs.json()["items"] == []


async def test_an_order_to_another_body_covering_the_case_stays_with_it_and_is_answered(api: Api) -> None:
    dispute = await api.drive("mediating")  # at the village committee
    town = api.bodies["town"]  # its jurisdiction (the town) covers the village
    issued = await _issue(api, dispute, town)
    assert issued.status_code == 201, issued.text
    order = issued.json()
    assert order["body_id"] == str(town)
    answered = await api.client.post(
        f"/v1/supervision-orders/{order['id']}/response",
        json={"response": "已指导村调委会约见双方"},
        headers={**api.auth("body_admin", "town"), **_if_match(order)},
    )
    assert answered.status_code == 200, answered.text
    assert (answered.json()["status"], answered.json()["body_id"]) == ("responded", str(town))
    # Naming the case's own body is the default, and stays allowed.
    own = await _issue(api, await api.get(dispute), dispute["body_id"])
    assert own.status_code == 201, own.text


# ---- a suspended body's webhooks ------------------------------------------------------------------


async def _patch_body(api: Api, key: str, changes: dict[str, Any]) -> Any:
    body_id = api.bodies[key]
    got = await api.client.get(f"/v1/bodies/{body_id}")
    return await api.client.patch(
        f"/v1/bodies/{body_id}", json=changes, headers={**api.auth("admin"), "If-Match": got.headers["ETag"]}
    )


async def test_suspending_a_body_cancels_its_queued_deliveries_until_it_is_resumed(
    api: Api, app: Any, relay: Relay, receiver: Receiver
) -> None:
    app.state.settings.relay_batch_size = 1
    app.state.settings.webhook_retry_schedule_seconds = [0.0, 0.0]
    receiver.script = [500]  # the first try fails: a retry is queued with the first tries
    sub = await subscribe(api, receiver.url, role="body_admin", org="village", receiver=receiver)
    await api.drive("mediating")  # assigned to the village, signed for: events for its systems
    assert await relay.run_once() == 1
    queued = await deliveries_of(api, uuid.UUID(sub["id"]))
    assert len(queued) >= 2 and {d.status for d in queued} == {"pending"}
    assert [d.attempts for d in queued].count(1) == 1  # the retry

    suspended = await _patch_body(api, "village", SUSPENSION)
    assert suspended.status_code == 200, suspended.text
    while await relay.run_once():
        pass
    assert len(receiver.deliveries) == 1  # only the first try, before the suspension
    assert {d.status for d in await deliveries_of(api, uuid.UUID(sub["id"]))} == {"cancelled"}

    # Resumed, the body sends its backlog again when it asks for it, and only then.
    resumed = await _patch_body(api, "village", {"active": True})
    assert resumed.status_code == 200, resumed.text
    assert await relay.run_once() == 0
    redelivered = await api.client.post(f"/v1/webhooks/{sub['id']}/redeliver", headers=sub["_headers"])
    assert redelivered.status_code == 200, redelivered.text
    assert redelivered.json() == {"redelivered": len(queued), "more": False}
    while await relay.run_once():
        pass
    assert len(receiver.ok()) == len(queued)
    assert {d.status for d in await deliveries_of(api, uuid.UUID(sub["id"]))} == {"delivered"}


@pytest.mark.parametrize("stopped", ["organisation", "subscription"])
async def test_the_relay_sends_nothing_to_a_stopped_receiver(
    api: Api, app: Any, relay: Relay, receiver: Receiver, stopped: str
) -> None:
    """A delivery left pending for a receiver that no longer takes any (made by a fan-out that read
    the subscribers before the suspension or the disabling committed) waits; it goes out once the
    receiver is back."""
    sub = await subscribe(api, receiver.url, role="body_admin", org="village", receiver=receiver)
    await api.drive("mediating")
    queued = await deliveries_of(api, uuid.UUID(sub["id"]))
    assert queued and {d.status for d in queued} == {"pending"}
    if stopped == "organisation":
        table, row_id = Body, api.bodies["village"]
    else:
        table, row_id = WebhookSubscription, uuid.UUID(sub["id"])

    async def set_active(active: bool) -> None:
        # Past the service, which would cancel what is pending: the window the relay guards.
        async with app.state.db.writer() as session, session.begin():
            await session.execute(update(table).where(table.id == row_id).values(active=active))

    await set_active(False)
    assert await relay.run_once() == 0
    assert receiver.deliveries == []
    assert {d.status for d in await deliveries_of(api, uuid.UUID(sub["id"]))} == {"pending"}
    await set_active(True)
    while await relay.run_once():
        pass
    assert len(receiver.ok()) == len(queued)


# ---- registry patches ----------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["name", "tier", "region_code", "categories", "capacity", "active"])
async def test_a_body_patch_cannot_clear_a_required_field(api: Api, field: str) -> None:
    village = api.bodies["village"]
    before = await api.client.get(f"/v1/bodies/{village}")
    response = await api.client.patch(
        f"/v1/bodies/{village}",
        json={field: None},
        headers={**api.auth("admin"), "If-Match": before.headers["ETag"]},
    )
    assert response.status_code == 422, response.text
    assert _errors(response) == [(field, "null_not_allowed")]
    assert (await api.client.get(f"/v1/bodies/{village}")).json() == before.json()
    # The contract offers no null for it either.
    schema = _contract(api, "BodyPatch")["properties"][field]
    assert "null" not in str(schema) and "default" not in schema


async def test_a_body_patch_still_clears_what_may_be_empty(api: Api) -> None:
    village = api.bodies["village"]
    got = await api.client.get(f"/v1/bodies/{village}")
    cleared = await api.client.patch(
        f"/v1/bodies/{village}",
        json={"address": None, "contact_phone": None, "description": None},
        headers={**api.auth("body_admin", "village"), "If-Match": got.headers["ETag"]},
    )
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["address"], cleared.json()["contact_phone"]) == (None, None)


@pytest.mark.parametrize("field", ["name", "specialties", "active"])
async def test_a_mediator_patch_cannot_clear_a_required_field(api: Api, field: str) -> None:
    village = api.bodies["village"]
    mediator = api.mediators[village]
    path = f"/v1/bodies/{village}/mediators/{mediator}"
    roster = await api.client.get(
        f"/v1/bodies/{village}/mediators", headers=api.auth("body_admin", "village")
    )
    (before,) = [m for m in roster.json() if m["id"] == str(mediator)]
    response = await api.client.patch(
        path, json={field: None}, headers={**api.auth("body_admin", "village"), **_if_match(before)}
    )
    assert response.status_code == 422, response.text
    assert _errors(response) == [(field, "null_not_allowed")]
    schema = _contract(api, "MediatorPatch")["properties"][field]
    assert "null" not in str(schema) and "default" not in schema
    # The title may be cleared.
    cleared = await api.client.patch(
        path, json={"title": None}, headers={**api.auth("body_admin", "village"), **_if_match(before)}
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["title"] is None


# ---- the event feed's cursor ---------------------------------------------------------------------


async def test_a_feed_cursor_past_the_positions_range_is_refused(api: Api) -> None:
    await api.drive("accepted")
    for position in (2**63, 2**64, 10**30):
        response = await api.client.get("/v1/events", params={"after": encode_cursor({"p": position})})
        assert response.status_code == 422, (position, response.text)
        assert _errors(response) == [("after", "invalid_cursor")]
    # The largest position is a cursor, if one ahead of this feed (test_event_feed): refused as such.
    last = encode_cursor({"p": 2**63 - 1})
    response = await api.client.get("/v1/events", params={"after": last})
    assert response.status_code == 410, response.text
    assert response.json()["type"] == "/problems/feed-position-expired"
