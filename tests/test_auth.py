"""Staff sign-in, access tokens and API keys."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from mediation.identity.models import User
from tests.support import intake_body

PASSWORD = "correct horse battery staple"


def _token(api, **changes) -> str:
    """A token for the test clerk, with some claims changed (None removes a claim)."""
    settings = api.app.state.settings
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(api.users[("clerk", api.bodies["center"])]),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "sid": uuid.uuid4().hex,
        "gen": 0,
        "role": "clerk",
    }
    key = changes.pop("_key", settings.jwt_secret)
    algorithm = changes.pop("_alg", "HS256")
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return jwt.encode(claims, key, algorithm=algorithm)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def _me(api, token: str):
    return await api.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})


async def test_a_valid_token_is_accepted(api):
    response = await _me(api, _token(api))
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "clerk"
    assert "pii:read" in response.json()["permissions"]


def _unsigned(api) -> str:
    valid = _token(api)
    payload = valid.split(".")[1]
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."


def _forged_alg(api) -> str:
    # HS512 with the right key: a valid signature, but not an algorithm on the allow-list.
    return _token(api, _alg="HS512")


BAD_TOKENS = {
    "alg_none": _unsigned,
    "wrong_signature": lambda api: _token(api, _key="another-secret-another-secret-32b"),
    "wrong_audience": lambda api: _token(api, aud="somebody-else"),
    "wrong_issuer": lambda api: _token(api, iss="https://evil.example"),
    "expired": lambda api: _token(
        api, iat=int(time.time()) - 3600, nbf=int(time.time()) - 3600, exp=int(time.time()) - 1800
    ),
    "not_yet_valid": lambda api: _token(api, nbf=int(time.time()) + 3600, exp=int(time.time()) + 7200),
    "missing_expiry": lambda api: _token(api, exp=None),
    "disallowed_algorithm": _forged_alg,
    "unknown_user": lambda api: _token(api, sub=str(uuid.uuid4())),
    # A token naming no session could not be signed out: not taken at all.
    "no_session": lambda api: _token(api, sid=None),
    "no_generation": lambda api: _token(api, gen=None),
    "session_not_text": lambda api: _token(api, sid=12345),
    "garbage": lambda api: "not-a-jwt",
}


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the HS512 forgery
@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
async def test_bad_tokens_answer_401(api, case):
    response = await _me(api, BAD_TOKENS[case](api))
    assert response.status_code == 401, f"{case}: {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "/problems/unauthenticated"
    assert "Bearer" in response.headers["www-authenticate"]
    # The refusal is the same for reads and writes.
    write = await api.client.post(
        "/v1/disputes", json=intake_body(), headers={"Authorization": f"Bearer {BAD_TOKENS[case](api)}"}
    )
    assert write.status_code == 401


async def test_no_credentials_answer_401_everywhere_but_public_endpoints(api):
    anonymous = {"Authorization": ""}
    assert (await api.client.get("/v1/disputes", headers=anonymous)).status_code == 401
    assert (await api.client.get("/v1/bodies", headers=anonymous)).status_code == 401
    assert (await api.client.get("/v1/lifecycle", headers=anonymous)).status_code == 200
    assert (await api.client.get("/healthz", headers=anonymous)).status_code == 200


async def test_sign_in_issues_a_working_token_and_refuses_wrong_passwords(api):
    username = "test-clerk-center"
    ok = await api.client.post("/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 15 * 60
    assert (await _me(api, body["access_token"])).json()["id"] == str(
        api.users[("clerk", api.bodies["center"])]
    )

    wrong = await api.client.post("/v1/auth/token", json={"username": username, "password": "wrong password"})
    unknown = await api.client.post("/v1/auth/token", json={"username": "nobody", "password": PASSWORD})
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.json()["type"] == "/problems/unauthenticated"
    # Same answer whether the account exists or not.
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_a_deactivated_account_is_refused_at_once(api):
    token = api.tokens[("clerk", api.bodies["center"])]
    assert (await _me(api, token)).status_code == 200
    user_id = api.users[("clerk", api.bodies["center"])]
    response = await api.client.post(f"/v1/users/{user_id}/deactivate", headers=api.auth("admin"))
    assert response.status_code == 200 and response.json()["active"] is False
    assert (await _me(api, token)).status_code == 401


async def test_password_hashes_are_upgraded_when_parameters_change(api):
    old = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1).hash(PASSWORD)
    user_id = api.users[("supervisor", api.bodies["center"])]
    async with api.app.state.db.writer() as session, session.begin():
        user = await session.get(User, user_id)
        user.password_hash = old
    response = await api.client.post(
        "/v1/auth/token", json={"username": "test-supervisor-center", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    async with api.app.state.db.reader() as session:
        upgraded = await session.scalar(select(User.password_hash).where(User.id == user_id))
    assert upgraded != old
    assert upgraded.startswith("$argon2id$") and "m=1024,t=1,p=1" in upgraded
    # ...and the new hash still verifies.
    again = await api.client.post(
        "/v1/auth/token", json={"username": "test-supervisor-center", "password": PASSWORD}
    )
    assert again.status_code == 200


async def test_users_are_created_by_admins_with_argon2id(api):
    body = {
        "username": "window-2",
        "display_name": "窗口二",
        "role": "clerk",
        "organisation_id": str(api.bodies["center"]),
        "password": "a long enough password",
    }
    assert (await api.client.post("/v1/users", json=body, headers=api.auth("clerk"))).status_code == 403
    created = await api.client.post("/v1/users", json=body, headers=api.auth("admin"))
    assert created.status_code == 201, created.text
    assert body["password"] not in created.text and "argon2" not in created.text
    assert not {"password", "password_hash"} & set(created.json())
    assert (await api.client.post("/v1/users", json=body, headers=api.auth("admin"))).status_code == 409
    short = {**body, "username": "window-3", "password": "short"}
    assert (await api.client.post("/v1/users", json=short, headers=api.auth("admin"))).status_code == 422
    wrong_org = {**body, "username": "window-4", "organisation_id": str(api.bodies["village"])}
    response = await api.client.post("/v1/users", json=wrong_org, headers=api.auth("admin"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "organisation_mismatch"
    # No organisation named for a role that needs one: said so, not "the wrong kind".
    no_org = {key: value for key, value in body.items() if key != "organisation_id"}
    response = await api.client.post(
        "/v1/users", json={**no_org, "username": "window-5"}, headers=api.auth("admin")
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "organisation_required", response.text
    assert "须指定所属机构" in response.json()["errors"][0]["message"]
    async with api.app.state.db.reader() as session:
        stored = await session.scalar(select(User.password_hash).where(User.username == "window-2"))
    assert stored.startswith("$argon2id$")


# ---- API keys -----------------------------------------------------------------------------------


async def _create_key(api, headers, org="village", role="body_mediator"):
    return await api.client.post(
        "/v1/api-keys",
        json={"organisation_id": str(api.bodies[org]), "role": role, "name": "调解系统对接"},
        headers=headers,
    )


async def test_api_key_is_shown_once_and_stored_as_a_hash(api):
    response = await _create_key(api, api.auth("admin"))
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created["secret"]
    assert secret.startswith(created["prefix"] + "_")
    listed = await api.client.get("/v1/api-keys", headers=api.auth("admin"))
    assert secret not in listed.text and created["prefix"] in listed.text
    async with api.app.state.db.reader() as session:
        from mediation.identity.models import ApiKey

        key = await session.get(ApiKey, uuid.UUID(created["id"]))
    assert key.secret_hash != secret and secret not in key.secret_hash
    me = await api.client.get("/v1/me", headers={"X-API-Key": secret, "Authorization": ""})
    assert me.status_code == 200 and me.json()["organisation_id"] == str(api.bodies["village"])
    # Also accepted as a bearer token, for clients that only speak Authorization.
    bearer = await api.client.get("/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert bearer.status_code == 200 and bearer.json()["kind"] == "api_key"


async def test_revoked_key_answers_401(api):
    created = (await _create_key(api, api.auth("admin"))).json()
    key_headers = {"X-API-Key": created["secret"], "Authorization": ""}
    assert (await api.client.get("/v1/disputes", headers=key_headers)).status_code == 200
    revoked = await api.client.post(f"/v1/api-keys/{created['id']}/revoke", headers=api.auth("admin"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    response = await api.client.get("/v1/disputes", headers=key_headers)
    assert response.status_code == 401 and response.json()["type"] == "/problems/unauthenticated"
    # A tampered key (right prefix, wrong secret) is refused too.
    tampered = created["secret"][:-4] + "AAAA"
    assert (
        await api.client.get("/v1/me", headers={"X-API-Key": tampered, "Authorization": ""})
    ).status_code == 401


async def test_rotation_keeps_both_keys_valid_until_the_old_one_is_revoked(api):
    # A body's own administrator, signed in, rotates its key, without the center's help.
    owner = await api.signed_in("body_admin", "village")
    old = (await _create_key(api, owner)).json()
    rotated = await api.client.post(f"/v1/api-keys/{old['id']}/rotate", headers=owner)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["replaces_id"] == old["id"] and new["secret"] != old["secret"]
    # One successor at a time: rotating the old key again is refused, naming the successor.
    again = await api.client.post(f"/v1/api-keys/{old['id']}/rotate", headers=owner)
    assert again.status_code == 409 and again.json()["code"] == "already_rotated"
    assert new["prefix"] in again.json()["detail"]
    # The API's answers are kept by no cache, whichever credential asked.
    me = await api.client.get("/v1/me", headers={"X-API-Key": new["secret"], "Authorization": ""})
    assert me.headers["cache-control"] == "no-store"
    for secret in (old["secret"], new["secret"]):
        response = await api.client.get("/v1/me", headers={"X-API-Key": secret, "Authorization": ""})
        assert response.status_code == 200, "both keys work during rotation"
    await api.client.post(f"/v1/api-keys/{old['id']}/revoke", headers=owner)
    assert (
        await api.client.get("/v1/me", headers={"X-API-Key": old["secret"], "Authorization": ""})
    ).status_code == 401
    assert (
        await api.client.get("/v1/me", headers={"X-API-Key": new["secret"], "Authorization": ""})
    ).status_code == 200


async def test_a_body_admin_manages_only_its_own_keys(api):
    theirs = (await _create_key(api, api.auth("admin"), org="town")).json()
    mine = await api.signed_in("body_admin", "village")
    assert (await _create_key(api, mine, org="town")).status_code == 403
    assert (await api.client.post(f"/v1/api-keys/{theirs['id']}/revoke", headers=mine)).status_code == 404
    assert (await api.client.post(f"/v1/api-keys/{theirs['id']}/rotate", headers=mine)).status_code == 404
    listed = await api.client.get("/v1/api-keys", headers=mine)
    assert listed.status_code == 200 and theirs["prefix"] not in listed.text
    assert all(k["organisation_id"] == str(api.bodies["village"]) for k in listed.json())
    # Machine roles only: a key cannot make a clerk or an admin.
    response = await api.client.post(
        "/v1/api-keys",
        json={"organisation_id": str(api.bodies["village"]), "role": "admin", "name": "x"},
        headers=api.auth("admin"),
    )
    assert response.status_code == 422


async def test_the_keys_are_walked_page_by_page(api):
    """Every rotation adds a key and revoked ones are kept: the list pages, a JSON array as before
    with the next page in a `Link` header, oldest first, none twice; a body's administrator walks
    its own keys only. A cursor not handed out is 422 `invalid_cursor`."""
    admin = api.auth("admin")
    made = [(await _create_key(api, admin)).json() for _ in range(3)]
    rotated = await api.client.post(f"/v1/api-keys/{made[0]['id']}/rotate", headers=admin)
    assert rotated.status_code == 201, rotated.text
    made.append(rotated.json())
    await api.client.post(f"/v1/api-keys/{made[1]['id']}/revoke", headers=admin)
    await _create_key(api, admin, org="town")

    async def walk(headers: dict[str, str], **params: Any) -> list[list[dict[str, Any]]]:
        pages: list[list[dict[str, Any]]] = []
        url: str | None = "/v1/api-keys"
        query: dict[str, Any] | None = params
        while url is not None:
            response = await api.client.get(url, params=query, headers=headers)
            assert response.status_code == 200, response.text
            pages.append(response.json())
            link = response.links.get("next")
            url, query = (link["url"], None) if link else (None, None)
            assert len(pages) < 50
        return pages

    whole = (await api.client.get("/v1/api-keys", headers=admin)).json()
    assert len(whole) > 2 and "link" not in (await api.client.get("/v1/api-keys", headers=admin)).headers
    pages = await walk(admin, limit=2)
    assert all(0 < len(p) <= 2 for p in pages) and len(pages) == -(-len(whole) // 2)
    assert [k["id"] for p in pages for k in p] == [k["id"] for k in whole]
    village = str(api.bodies["village"])
    own = await walk(await api.signed_in("body_admin", "village"), limit=1)
    ids = [k[0]["id"] for k in own]
    assert len(ids) == len(set(ids)) and {k["id"] for k in made} <= set(ids)
    assert all(p[0]["organisation_id"] == village for p in own)
    # The filter is kept from page to page.
    filtered = await walk(admin, organisation_id=village, limit=2)
    assert [k["id"] for p in filtered for k in p] == ids
    refused = await api.client.get("/v1/api-keys", params={"cursor": "!"}, headers=admin)
    assert refused.status_code == 422
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [("cursor", "invalid_cursor")]


async def test_an_api_key_cannot_make_rotate_revoke_or_list_keys(api):
    """A key that made keys could outlive itself: one it made to never expire, or its own successor,
    would work on after it was revoked. A body's keys are managed by its administrator signed in."""
    own_key = api.auth("body_admin", "village")
    with_key = {**own_key, "Authorization": ""}
    me = (await api.client.get("/v1/me", headers=with_key)).json()
    assert "keys:manage_own" not in me["permissions"] and "cases:read" in me["permissions"]
    existing = (await _create_key(api, api.auth("admin"))).json()
    attempts = [
        await _create_key(api, with_key),
        await _create_key(api, with_key, role="body_admin"),
        await api.client.post(f"/v1/api-keys/{existing['id']}/rotate", headers=with_key),
        await api.client.post(f"/v1/api-keys/{existing['id']}/revoke", headers=with_key),
        await api.client.get("/v1/api-keys", headers=with_key),
    ]
    for refused in attempts:
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "staff_only"
    # A mediator's key holds no key management either: refused as any role without it.
    mediator = await _create_key(api, {**api.auth("body_mediator", "village"), "Authorization": ""})
    assert mediator.status_code == 403 and "code" not in mediator.json()
    # Nothing was made, rotated or revoked.
    listed = (
        await api.client.get("/v1/api-keys", headers=await api.signed_in("body_admin", "village"))
    ).json()
    assert [k["id"] for k in listed if k["name"] == "调解系统对接"] == [existing["id"]]
    assert [k["replaces_id"] for k in listed if k["replaces_id"]] == []
    assert next(k for k in listed if k["id"] == existing["id"])["revoked_at"] is None
    me = await api.client.get("/v1/me", headers={"X-API-Key": existing["secret"], "Authorization": ""})
    assert me.status_code == 200


async def test_keys_of_a_suspended_body_stop_working(api):
    suspended = api.auth("body_mediator", "suspended")
    assert (await api.client.get("/v1/me", headers={**suspended, "Authorization": ""})).status_code == 401


async def test_a_sign_in_is_audited_with_the_account_and_its_organisation(api):
    from mediation.audit.models import AuditRecord

    ok = await api.client.post("/v1/auth/token", json={"username": "test-clerk-center", "password": PASSWORD})
    assert ok.status_code == 200
    bad = await api.client.post("/v1/auth/token", json={"username": "test-clerk-center", "password": "nope"})
    assert bad.status_code == 401
    async with api.app.state.db.reader() as session:
        rows = (
            await session.scalars(
                select(AuditRecord).where(AuditRecord.action == "sign_in").order_by(AuditRecord.seq)
            )
        ).all()
    assert [r.outcome for r in rows] == ["success", "denied"]
    assert rows[0].actor_id == str(api.users[("clerk", api.bodies["center"])])
    assert rows[0].organisation_id == str(api.bodies["center"])
    assert rows[1].actor_kind == "anonymous" and rows[1].details["username"] == "test-clerk-center"
    assert "nope" not in str(rows[1].details)
