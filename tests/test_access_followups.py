"""Access follow-ups: a webhook subscribed by an API key stops when that key can no longer be
trusted (revoked, expired), and only a signed-in member of staff takes it on again; reading a
case's timeline unmasked is a disclosure on record; a body does not read the reasons another body
gave for handing a case back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from mediation.events.relay import Relay
from mediation.identity.models import ApiKey
from tests.receiver import Receiver
from tests.support import Api
from tests.test_audit import records
from tests.test_web import Page
from tests.test_web_forms import at_the_body
from tests.test_webhooks import pump, subscribe

# A reason that quotes a party's mobile number, as a mediator might type it.
RETURN_REASON = "本村调委会成员与当事人有亲属关系, 当事人电话13800001234"


def _later(api: Api, minutes: int = 30) -> None:
    api.app.state.clock.at += timedelta(minutes=minutes)


async def _returned_by_village_then_at_town(api: Api) -> dict[str, Any]:
    """A case the village committee returned with a reason, then assigned to the town's."""
    dispute = await api.step(await api.intake(), "accept")
    dispute = await api.step(dispute, "assign", {"body_id": str(api.bodies["village"])})
    _later(api)
    dispute = await api.step(dispute, "return", {"reason": RETURN_REASON})
    _later(api)
    return await api.step(dispute, "assign", {"body_id": str(api.bodies["town"])})


async def _timeline(api: Api, dispute: dict[str, Any], headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await api.client.get(f"/v1/disputes/{dispute['id']}/timeline", headers=headers)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    return entries


# ---- reading the timeline unmasked is a disclosure ------------------------------------------------


async def test_an_unmasked_timeline_read_is_recorded_as_a_disclosure(api: Api) -> None:
    dispute = await _returned_by_village_then_at_town(api)
    clerk = api.headers("clerk", **{"X-Request-ID": "req-timeline-unmasked"})
    entries = await _timeline(api, dispute, clerk)
    (returned,) = [e for e in entries if e["action"] == "return"]
    assert returned["reason"] == RETURN_REASON  # the clerk holds pii:read
    reads = [r for r in await records(api.app) if r.request_id == "req-timeline-unmasked"]
    assert [(r.action, r.outcome, r.status_code) for r in reads] == [("pii.read", "success", 200)]
    (read,) = reads
    assert (read.object_type, read.object_id, read.actor_role) == ("dispute", dispute["id"], "clerk")
    assert read.details == {
        "via": "get_timeline",
        "disputes": [dispute["id"]],
        "fields": ["id_number", "phone"],
    }


async def test_a_masked_or_number_free_timeline_read_records_no_disclosure(api: Api) -> None:
    dispute = await _returned_by_village_then_at_town(api)
    # A supervisor lacks pii:read: the number is masked, and nothing was disclosed.
    supervisor = api.headers("supervisor", **{"X-Request-ID": "req-timeline-masked"})
    (returned,) = [e for e in await _timeline(api, dispute, supervisor) if e["action"] == "return"]
    assert "13800001234" not in returned["reason"]
    plain = await api.step(await api.intake(), "accept")
    clerk = api.headers("clerk", **{"X-Request-ID": "req-timeline-plain"})
    assert [e["action"] for e in await _timeline(api, plain, clerk)] == ["register", "accept"]
    requests = {r.request_id for r in await records(api.app)}
    assert not {"req-timeline-masked", "req-timeline-plain"} & requests


# ---- another body's reasons stay with it -------------------------------------------------------------


async def test_a_body_reads_another_bodys_return_on_the_timeline_without_its_reason(api: Api) -> None:
    dispute = await _returned_by_village_then_at_town(api)
    town = api.headers("body_mediator", "town", **{"X-Request-ID": "req-town-timeline"})
    entries = await _timeline(api, dispute, town)
    # The entry stays (the case came back to the center), its reason does not.
    (returned,) = [e for e in entries if e["action"] == "return"]
    assert (returned["from_status"], returned["to_status"]) == ("assigned", "accepted")
    assert returned["reason"] is None and returned["payload"]["reason"] is None
    assert returned["reason_withheld"] is True
    assert not any(e["reason_withheld"] for e in entries if e is not returned)
    # What is withheld was not disclosed either.
    assert [r for r in await records(api.app) if r.request_id == "req-town-timeline"] == []
    # As /assignments has it: the other body's part is not the town's business.
    history = await api.client.get(f"/v1/disputes/{dispute['id']}/assignments", headers=town)
    assert [a["body_id"] for a in history.json()] == [str(api.bodies["town"])]

    # The center reads it as written (the body that wrote it, once the case is back with it: below).
    (own,) = [e for e in await _timeline(api, dispute, api.auth("clerk")) if e["action"] == "return"]
    assert (own["reason"], own["reason_withheld"]) == (RETURN_REASON, False)


async def test_a_body_reads_its_own_return_reasons_but_not_the_next_bodys(api: Api) -> None:
    """Withheld is another body's text only: sent back to the village, the village reads its own
    reason for returning the case, and not the town's."""
    dispute = await _returned_by_village_then_at_town(api)
    _later(api)
    dispute = await api.step(dispute, "return", {"reason": "本镇调委会无法联系被申请人"})
    _later(api)
    dispute = await api.step(
        dispute,
        "assign",
        {"body_id": str(api.bodies["village"]), "override_reason": "亲属已回避, 由其他调解员调解"},
    )
    village = api.auth("body_mediator", "village")
    returns = [e for e in await _timeline(api, dispute, village) if e["action"] == "return"]
    assert [(e["reason"], e["reason_withheld"]) for e in returns] == [
        (RETURN_REASON, False),
        (None, True),
    ]


async def test_the_case_page_withholds_another_bodys_return_reason(web: Any, api: Api) -> None:
    dispute = await _returned_by_village_then_at_town(api)
    page: Page = await at_the_body(web, api, dispute)
    html = (await page.get(f"/cases/{dispute['id']}")).text
    assert "本村调委会成员与当事人有亲属关系" not in html
    assert "其他调解组织" in html  # the page says a reason was withheld, not that none was given
    clerk_view = await api.client.get(f"/v1/disputes/{dispute['id']}/timeline")
    assert any(e["reason"] == RETURN_REASON for e in clerk_view.json())


# ---- a webhook stops with the key that made it ------------------------------------------------------


async def _key_id(api: Api, headers: dict[str, str]) -> str:
    me = await api.client.get("/v1/me", headers={**headers, "Authorization": ""})
    assert me.status_code == 200, me.text
    return str(me.json()["id"])


async def _subscription(api: Api, sub: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    response = await api.client.get(f"/v1/webhooks/{sub['id']}", headers=headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def _statuses(api: Api, sub: dict[str, Any], headers: dict[str, str]) -> list[str]:
    response = await api.client.get(f"/v1/webhooks/{sub['id']}/deliveries", headers=headers)
    assert response.status_code == 200, response.text
    return sorted(d["status"] for d in response.json())


async def _at_the_village(api: Api) -> dict[str, Any]:
    """A case assigned to the village: its events are the village's to receive."""
    dispute = await api.step(await api.intake(), "accept")
    return await api.step(dispute, "assign", {"body_id": str(api.bodies["village"])})


async def test_revoking_a_key_stops_its_webhooks_at_once_and_spares_the_staffs(
    api: Api, relay: Relay
) -> None:
    by_key, by_staff = Receiver(), Receiver()
    for r in (by_key, by_staff):
        await r.start()
    try:
        key = api.auth("body_admin", "village")
        key_id = await _key_id(api, key)
        admin = await api.signed_in("body_admin", "village")
        key_sub = await subscribe(api, by_key.url, role="body_admin", org="village", receiver=by_key)
        made = await api.client.post("/v1/webhooks", json={"url": by_staff.url}, headers=admin)
        assert made.status_code == 201, made.text
        staff_sub = made.json()
        by_staff.secrets = [staff_sub["secret"]]
        await _at_the_village(api)  # queued for both, not sent yet
        assert await _statuses(api, key_sub, admin) == ["pending"]

        revoked = await api.client.post(
            f"/v1/api-keys/{key_id}/revoke", headers={**admin, "X-Request-ID": "req-revoke-key"}
        )
        assert revoked.status_code == 200, revoked.text
        # Stopped in the revocation itself: disabled, saying why, its queue cancelled.
        stopped = await _subscription(api, key_sub, admin)
        assert stopped["active"] is False
        assert stopped["disabled_reason"].startswith("subscriber_key_lapsed: ")
        assert "revoked" in stopped["disabled_reason"]
        assert stopped["created_by"] == key_id
        assert await _statuses(api, key_sub, admin) == ["cancelled"]
        # The relay sends the staff's subscription what was queued, and the key's nothing.
        await pump(relay, lambda: len(by_staff.ok()) == 1)
        dispute = await api.step(await _at_the_village(api), "sign_for")
        while await relay.run_once():
            pass
        assert by_key.deliveries == []
        assert len(by_staff.ok()) == 3
        assert (await _subscription(api, staff_sub, admin))["active"] is True
        assert await _statuses(api, key_sub, admin) == ["cancelled"]
        assert dispute["status"] == "mediating"

        # On record: the revocation names what it stopped, and each subscription has its entry.
        trail = await records(api.app)
        (revoking,) = [r for r in trail if r.request_id == "req-revoke-key"]
        assert (revoking.action, revoking.object_id) == ("revoke_key", key_id)
        assert revoking.details["webhooks_stopped"] == [key_sub["id"]]
        (entry,) = [r for r in trail if r.action == "webhook.subscriber_key_lapsed"]
        assert (entry.object_type, entry.object_id) == ("webhook_subscription", key_sub["id"])
        assert (entry.actor_kind, entry.actor_id) == (
            "user",
            str(api.users[("body_admin", api.bodies["village"])]),
        )
        assert entry.details["api_key"] == key_id
        assert entry.details["reason"] == stopped["disabled_reason"]
    finally:
        for r in (by_key, by_staff):
            await r.stop()


async def test_only_a_signed_in_administrator_takes_on_a_stopped_webhook(
    api: Api, relay: Relay, receiver: Receiver
) -> None:
    key = api.auth("body_admin", "village")
    key_id = await _key_id(api, key)
    admin = await api.signed_in("body_admin", "village")
    sub = await subscribe(api, receiver.url, role="body_admin", org="village", receiver=receiver)
    assert (await api.client.post(f"/v1/api-keys/{key_id}/revoke", headers=admin)).status_code == 200

    # The successor key could not know who chose the URL: refused, and nothing changes.
    successor = await api.client.post(
        "/v1/api-keys",
        json={"organisation_id": str(api.bodies["village"]), "role": "body_admin", "name": "新密钥"},
        headers=admin,
    )
    assert successor.status_code == 201, successor.text
    refused = await api.client.post(
        f"/v1/webhooks/{sub['id']}/enable", headers={"X-API-Key": successor.json()["secret"]}
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "subscriber_key_lapsed"
    unchanged = await _subscription(api, sub, admin)
    assert (unchanged["active"], unchanged["created_by"]) == (False, key_id)
    # Nor does redelivering bring it back.
    assert (await api.client.post(f"/v1/webhooks/{sub['id']}/redeliver", headers=admin)).status_code == 409

    enabled = await api.client.post(
        f"/v1/webhooks/{sub['id']}/enable", headers={**admin, "X-Request-ID": "req-take-on"}
    )
    assert enabled.status_code == 200, enabled.text
    admin_id = str(api.users[("body_admin", api.bodies["village"])])
    assert (enabled.json()["active"], enabled.json()["disabled_reason"]) == (True, None)
    assert enabled.json()["created_by"] == admin_id
    (taking_on,) = [r for r in await records(api.app) if r.request_id == "req-take-on"]
    assert taking_on.details["created_by"] == {"was": key_id, "now": admin_id}
    # Taken on, it receives the village's events again, and the relay leaves it on.
    await _at_the_village(api)
    await pump(relay, lambda: len(receiver.ok()) == 1)
    assert (await _subscription(api, sub, admin))["active"] is True


async def test_a_webhook_stops_when_the_key_that_made_it_expires(
    api: Api, relay: Relay, receiver: Receiver
) -> None:
    admin = await api.signed_in("body_admin", "village")
    expiring_key = await api.expiring_key()
    key_id = expiring_key["id"]
    made = await api.client.post(
        "/v1/webhooks", json={"url": receiver.url}, headers={"X-API-Key": expiring_key["secret"]}
    )
    assert made.status_code == 201, made.text
    sub = made.json()
    receiver.secrets = [sub["secret"]]
    await _at_the_village(api)
    # The hour passes with the delivery queued: the key expires, nothing revokes it.
    async with api.app.state.db.writer() as session, session.begin():
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(key_id))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    while await relay.run_once():
        pass
    assert receiver.deliveries == []
    stopped = await _subscription(api, sub, admin)
    assert stopped["active"] is False
    assert stopped["disabled_reason"].startswith("subscriber_key_lapsed: ")
    assert "expired" in stopped["disabled_reason"]
    assert await _statuses(api, sub, admin) == ["cancelled"]
    (entry,) = [r for r in await records(api.app) if r.action == "webhook.subscriber_key_lapsed"]
    assert (entry.actor_kind, entry.object_id) == ("system", sub["id"])

    # One that expired with nothing to send is found too, when the relay looks after its upkeep.
    enabled = await api.client.post(f"/v1/webhooks/{sub['id']}/enable", headers=admin)
    assert enabled.status_code == 200
    assert await relay.stop_lapsed() == []


async def test_the_handoff_dossier_withholds_another_bodys_return_reason(api: Api) -> None:
    """The dossier a failed case is handed on with carries the case's timeline: a body reading it
    reads there what it reads on the timeline itself, without the reasons another body gave."""
    dispute = await _returned_by_village_then_at_town(api)
    for action in ("sign_for", "fail", "refer_litigation"):
        _later(api)
        dispute = await api.step(dispute, action)
    town = api.auth("body_mediator", "town")
    dossier = await api.client.get(f"/v1/handoffs/{dispute['handoff']['id']}", headers=town)
    assert dossier.status_code == 200, dossier.text
    (returned,) = [e for e in dossier.json()["timeline"] if e["action"] == "return"]
    assert (returned["reason"], returned["reason_withheld"]) == (None, True)
    assert "13800001234" not in dossier.text and "138****1234" not in dossier.text
    # The court a failed mediation is referred to reads the course of the case, not what was said
    # in it (特邀调解规定 Art. 22): the entry is there, its reason is not.
    court = await api.handoff(dispute)
    assert court["mediation_record_withheld"] is True
    (for_court,) = [e for e in court["timeline"] if e["action"] == "return"]
    assert (for_court["reason"], for_court["reason_withheld"]) == (None, True)
