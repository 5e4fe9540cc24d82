"""A refused credential that names an account or a key is named in the audit record.

The answer stays the same for every refusal (401, nothing said of what exists). The record of a
revoked or expired key, a disabled account, a signed-out session or a suspended organisation's
credential names it, with the reason, so an auditor can tell a court's system still sending its
revoked key from a stranger guessing (GB/T 22239-2019 8.1.4.3, 安全审计). A credential that
names nothing is recorded as before, anonymous and unnamed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mediation.identity.credentials import key_prefix
from mediation.identity.models import ApiKey
from tests.support import Api
from tests.test_audit import record_count, records


async def _refused(api: Api, headers: dict[str, str]) -> tuple[dict[str, Any], Any]:
    """Asks for the case list with `headers`; the 401's body and the audit record it left."""
    before = await record_count(api.app)
    response = await api.client.get("/v1/disputes", headers=headers)
    assert response.status_code == 401, response.text
    [record] = [r for r in (await records(api.app))[before:] if r.status_code == 401]
    assert (record.actor_kind, record.outcome) == ("anonymous", "denied")
    body = response.json()
    body.pop("instance", None)
    return body, record


async def _key(api: Api, role: str = "court") -> tuple[str, ApiKey]:
    secret = api.auth(role)["X-API-Key"]
    async with api.app.state.db.reader() as session:
        key = (await session.scalars(select(ApiKey).where(ApiKey.prefix == key_prefix(secret)))).one()
    return secret, key


async def test_a_revoked_key_and_a_wrong_secret_are_named_in_the_record(api: Api) -> None:
    secret, key = await _key(api)
    unknown_body, unknown = await _refused(api, {"X-API-Key": "mk_zzzzzzzz_" + "x" * 40})
    assert "credential" not in unknown.details

    _, wrong = await _refused(api, {"X-API-Key": secret[:-4] + "zzzz"})
    assert wrong.details["credential"] == {
        "kind": "api_key",
        "key_id": str(key.id),
        "prefix": key.prefix,
        "reason": "wrong_secret",
    }

    revoked = await api.client.post(f"/v1/api-keys/{key.id}/revoke", headers=api.auth("admin"))
    assert revoked.status_code == 200, revoked.text
    body, record = await _refused(api, {"X-API-Key": secret})
    assert record.details["credential"]["reason"] == "revoked"
    assert record.details["credential"]["key_id"] == str(key.id)
    # The caller learns nothing of it: the answer is the one for a key that does not exist.
    assert body == unknown_body
    assert secret not in str(record.details)


async def test_a_disabled_account_and_a_signed_out_session_are_named_in_the_record(api: Api) -> None:
    clerk = api.auth("clerk")
    signed_out = await api.client.post("/v1/auth/logout", headers=clerk)
    assert signed_out.status_code in (200, 204), signed_out.text
    _, record = await _refused(api, clerk)
    user_id = str(api.users[("clerk", api.bodies["center"])])
    assert record.details["credential"]["kind"] == "user"
    assert record.details["credential"]["user_id"] == user_id
    assert record.details["credential"]["reason"] == "signed_out"

    supervisor = api.auth("supervisor")
    supervisor_id = api.users[("supervisor", api.bodies["center"])]
    disabled = await api.client.post(f"/v1/users/{supervisor_id}/deactivate", headers=api.auth("admin"))
    assert disabled.status_code == 200, disabled.text
    _, record = await _refused(api, supervisor)
    assert record.details["credential"] == {
        "kind": "user",
        "user_id": str(supervisor_id),
        "session_id": record.details["credential"]["session_id"],
        "reason": "account_disabled",
    }
