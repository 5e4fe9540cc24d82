"""A webhook whose key has lapsed is not redelivered to."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from mediation.identity.models import ApiKey
from tests.receiver import Receiver
from tests.support import Api
from tests.test_documents import problem

# ---- redelivering to a subscription whose key has lapsed ------------------------------------------


async def _statuses(api: Api, sub_id: str, headers: dict[str, str]) -> list[str]:
    response = await api.client.get(f"/v1/webhooks/{sub_id}/deliveries", headers=headers)
    assert response.status_code == 200, response.text
    return sorted(d["status"] for d in response.json())


async def test_a_subscription_whose_key_has_expired_is_not_redelivered_to_until_taken_on(
    api: Api, receiver: Receiver
) -> None:
    admin = await api.signed_in("body_admin", "village")
    made_key = await api.client.post(
        "/v1/api-keys",
        json={
            "organisation_id": str(api.bodies["village"]),
            "role": "body_admin",
            "name": "临时密钥",
            "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        },
        headers=admin,
    )
    assert made_key.status_code == 201, made_key.text
    key = {"X-API-Key": made_key.json()["secret"]}
    made = await api.client.post("/v1/webhooks", json={"url": receiver.url}, headers=key)
    assert made.status_code == 201, made.text
    sub_id = made.json()["id"]
    # A case event queued for it, cancelled when the integrator disabled it, which it enabled again.
    dispute = await api.step(await api.intake(), "accept")
    await api.step(dispute, "assign", {"body_id": str(api.bodies["village"])})
    assert (await api.client.post(f"/v1/webhooks/{sub_id}/disable", headers=key)).status_code == 200
    enabled = await api.client.post(f"/v1/webhooks/{sub_id}/enable", headers=key)
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["active"] is True
    (cancelled,) = (await api.client.get(f"/v1/webhooks/{sub_id}/deliveries", headers=admin)).json()
    assert cancelled["status"] == "cancelled"

    # The hour passes: the key expires, and the relay has not stopped the subscription yet.
    async with api.app.state.db.writer() as session, session.begin():
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(made_key.json()["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert (await api.client.get(f"/v1/webhooks/{sub_id}", headers=admin)).json()["active"] is False

    # Redelivering would queue what the relay then cancels: refused as for a disabled one, saying why.
    for language, says in (("en", "expired"), ("zh", "已过期")):
        refused = await api.client.post(
            f"/v1/webhooks/{sub_id}/redeliver", headers={**admin, "Accept-Language": language}
        )
        body = problem(refused, 409, "conflict")
        assert body["code"] == "subscriber_key_lapsed"
        assert says in body["detail"], body
    one = await api.client.post(
        f"/v1/webhook-deliveries/{cancelled['id']}/redeliver", headers={**admin, "Accept-Language": "en"}
    )
    assert problem(one, 409, "conflict")["code"] == "subscriber_key_lapsed"
    assert await _statuses(api, sub_id, admin) == ["cancelled"]

    # Nor does another key enable it: it could not know who chose the URL.
    other = await api.client.post(
        "/v1/api-keys",
        json={"organisation_id": str(api.bodies["village"]), "role": "body_admin", "name": "新密钥"},
        headers=admin,
    )
    assert other.status_code == 201, other.text
    not_enabled = await api.client.post(
        f"/v1/webhooks/{sub_id}/enable",
        headers={"X-API-Key": other.json()["secret"], "Accept-Language": "en"},
    )
    body = problem(not_enabled, 403, "forbidden")
    assert body["code"] == "subscriber_key_lapsed"
    assert "revoked or expired" in body["detail"]
    still = (await api.client.get(f"/v1/webhooks/{sub_id}", headers=admin)).json()
    assert (still["active"], still["created_by"]) == (False, made_key.json()["id"])
    assert await _statuses(api, sub_id, admin) == ["cancelled"]

    # Taken on by the signed-in administrator, its backlog is sent again.
    taken = await api.client.post(f"/v1/webhooks/{sub_id}/enable", headers=admin)
    assert taken.status_code == 200, taken.text
    assert (taken.json()["active"], taken.json()["disabled_reason"]) == (True, None)
    again = await api.client.post(f"/v1/webhooks/{sub_id}/redeliver", headers=admin)
    assert again.status_code == 200, again.text
    assert again.json() == {"redelivered": 1, "more": False}
    assert await _statuses(api, sub_id, admin) == ["pending"]
