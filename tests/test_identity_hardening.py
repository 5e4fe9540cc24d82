"""Credentials at the edges: suspended organisations, passwords taken as typed, the guessing limit,
what a failed sign-in leaves in the audit trail, retried creations, settings refused at start-up,
and the command line's account and demo commands."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, update

from mediation import cli
from mediation.audit.models import AuditRecord
from mediation.core.db import utcnow
from mediation.core.settings import Settings, get_settings
from mediation.identity import cli as identity_cli
from mediation.identity.models import ApiKey, User
from tests.support import Api

PASSWORD = "correct horse battery staple"
CSRF = "c" * 43


async def _new_user(api: Api, username: str, password: str, role: str, org: str | None) -> dict[str, Any]:
    body = {
        "username": username,
        "display_name": "新账号",
        "role": role,
        "organisation_id": str(api.bodies[org]) if org else None,
        "password": password,
    }
    response = await api.client.post("/v1/users", json=body, headers=api.auth("admin"))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _sign_in(api: Api, username: str, password: str, **headers: str) -> httpx.Response:
    return await api.client.post(
        "/v1/auth/token", json={"username": username, "password": password}, headers=headers
    )


async def _web_login(app: Any, username: str, password: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as web:
        web.cookies.set("mediation_csrf", CSRF)
        form = {"username": username, "password": password, "next": "", "csrf": CSRF}
        return await web.post("/login", data=form)


async def _suspend(api: Api, org: str) -> None:
    body_id = api.bodies[org]
    current = await api.client.get(f"/v1/bodies/{body_id}", headers=api.auth("admin"))
    assert current.status_code == 200, current.text
    response = await api.client.patch(
        f"/v1/bodies/{body_id}",
        json={"active": False, "suspended_reason": "换届期间暂停工作"},
        headers={**api.auth("admin"), "If-Match": current.headers["etag"]},
    )
    assert response.status_code == 200, response.text


async def _audit(app: Any, action: str) -> list[AuditRecord]:
    async with app.state.db.reader() as session:
        rows = await session.scalars(
            select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.seq)
        )
        return list(rows.all())


def _cli_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    identity_cli.add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


# ---- a suspended organisation -------------------------------------------------------------------


async def test_staff_of_a_suspended_body_are_refused_like_its_keys(api: Api, app: Any) -> None:
    await _new_user(api, "village-mediator", "a temporary password", "body_mediator", "village")
    token = (await _sign_in(api, "village-mediator", "a temporary password")).json()["access_token"]
    staff = {"Authorization": f"Bearer {token}"}
    # The password the administrator set is changed first (the session goes on).
    changed = await api.client.post(
        "/v1/me/password",
        json={"current_password": "a temporary password", "new_password": PASSWORD},
        headers=staff,
    )
    assert changed.status_code == 204, changed.text
    inbox = f"/v1/bodies/{api.bodies['village']}/cases"
    assert (await api.client.get(inbox, headers=staff)).status_code == 200

    await _suspend(api, "village")

    # The token signed before the suspension stops working at once, as the body's key does.
    refused = await api.client.get(inbox, headers=staff)
    assert refused.status_code == 401, refused.text
    assert refused.json()["code"] == "organisation_suspended"
    # A fresh sign-in with the right password is refused, saying why.
    again = await _sign_in(api, "village-mediator", PASSWORD)
    assert again.status_code == 401 and again.json()["code"] == "organisation_suspended"
    # A wrong password still says only that: the suspension is no hint to a stranger.
    wrong = await _sign_in(api, "village-mediator", "wrong password, long enough")
    assert wrong.status_code == 401 and "code" not in wrong.json()
    # The page refuses the sign-in with the reason.
    page = await _web_login(app, "village-mediator", PASSWORD)
    assert page.status_code == 401 and "暂停" in page.text
    # Staff of other bodies are untouched.
    assert (await api.client.get("/v1/me", headers=api.auth("clerk"))).status_code == 200


async def test_a_suspended_bodys_key_is_told_so_in_either_language(api: Api) -> None:
    key = {**api.auth("body_mediator", "suspended"), "Authorization": ""}
    zh = await api.client.get("/v1/me", headers={**key, "Accept-Language": "zh"})
    en = await api.client.get("/v1/me", headers={**key, "Accept-Language": "en"})
    for response in (zh, en):
        assert response.status_code == 401
        assert response.json()["code"] == "organisation_suspended"
    assert "暂停" in zh.json()["detail"] and "吊销" not in zh.json()["detail"]
    assert "suspended" in en.json()["detail"] and "revoked" not in en.json()["detail"]
    # A revoked key of an active body is still just invalid or revoked.
    created = await api.client.post(
        "/v1/api-keys",
        json={"organisation_id": str(api.bodies["village"]), "role": "body_mediator", "name": "x"},
        headers=api.auth("admin"),
    )
    await api.client.post(f"/v1/api-keys/{created.json()['id']}/revoke", headers=api.auth("admin"))
    revoked = await api.client.get(
        "/v1/me", headers={"X-API-Key": created.json()["secret"], "Authorization": ""}
    )
    assert revoked.status_code == 401 and "code" not in revoked.json()


# ---- passwords as typed -------------------------------------------------------------------------


SPACED = "  Space-pass-123  "


async def test_a_password_made_through_the_api_is_kept_exactly_as_typed(api: Api, app: Any) -> None:
    await _new_user(api, "spaced-clerk", SPACED, "clerk", "center")
    assert (await _sign_in(api, "spaced-clerk", SPACED)).status_code == 200
    assert (await _sign_in(api, "spaced-clerk", SPACED.strip())).status_code == 401
    page = await _web_login(app, "spaced-clerk", SPACED)
    assert page.status_code == 303, page.text


async def test_a_password_made_on_the_command_line_signs_in_through_the_api(
    api: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEW_CLERK_PASSWORD", SPACED)
    args = _cli_args(
        "users",
        "create",
        "--username",
        "cli-clerk",
        "--name",
        "窗口三",
        "--role",
        "clerk",
        "--organisation",
        str(api.bodies["center"]),
        "--password-env",
        "NEW_CLERK_PASSWORD",
    )
    assert await identity_cli.run(settings, args) == 0, capsys.readouterr().err
    signed_in = await _sign_in(api, "cli-clerk", SPACED)
    assert signed_in.status_code == 200
    # The operator chose it: the user changes it before anything else.
    assert signed_in.json()["password_change_required"] is True
    refused = await api.client.get(
        "/v1/disputes", headers={"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    )
    assert refused.status_code == 403 and refused.json()["code"] == "password_change_required"


# ---- the guessing limit -------------------------------------------------------------------------


async def test_padding_the_username_does_not_escape_the_per_account_limit(api: Api, app: Any) -> None:
    limiter = app.state.identity.anonymous_limiter
    while limiter.retry_after("signin-user:test-clerk-center@127.0.0.1") == 0:
        pass  # the account's guesses from this address for this minute are used up
    for typed in (" test-clerk-center", "test-clerk-center  ", "\ttest-clerk-center\u3000"):
        assert (await _web_login(app, typed, PASSWORD)).status_code == 429, repr(typed)
        assert (await _sign_in(api, typed, PASSWORD)).status_code == 429, repr(typed)


# ---- the audit trail ----------------------------------------------------------------------------


# Written with digit separators (which the query parser accepts): 18 digits in a row in the access
# log would read as an ID number to the suite's personal-data log scan.
@pytest.mark.parametrize("after", [2**63, 10**30], ids=["2**63", "10**30"])
async def test_an_audit_page_after_an_impossible_number_is_a_bad_request(api: Api, after: int) -> None:
    response = await api.client.get(f"/v1/audit-records?after={after:_}", headers=api.auth("auditor"))
    assert response.status_code == 422, response.text
    last = await api.client.get(f"/v1/audit-records?after={2**63 - 1:_}", headers=api.auth("auditor"))
    assert last.status_code == 200 and last.json()["items"] == []


async def test_a_failed_sign_in_keeps_no_phone_number_in_the_audit_trail(api: Api, app: Any) -> None:
    assert (await _sign_in(api, "13912345678", "wrong password")).status_code == 401
    assert (await _web_login(app, "13912345678", "wrong password")).status_code == 401
    records = [*await _audit(app, "sign_in"), *await _audit(app, "login")]
    assert len(records) == 2
    for record in records:
        assert record.outcome == "denied"
        assert "13912345678" not in str(record.details)
        # No account has that name: kept as its first character and length, and a digest.
        assert record.details["username"] == "1**********"


# ---- retried creations --------------------------------------------------------------------------


async def _key_count(app: Any, **where: Any) -> int:
    async with app.state.db.reader() as session:
        stmt = select(func.count()).select_from(ApiKey)
        for column, value in where.items():
            stmt = stmt.where(getattr(ApiKey, column) == value)
        return int(await session.scalar(stmt) or 0)


async def test_a_retried_key_creation_gives_the_same_key(api: Api, app: Any) -> None:
    body = {"organisation_id": str(api.bodies["village"]), "role": "body_mediator", "name": "重试的密钥"}
    headers = {**api.auth("admin"), "Idempotency-Key": "create-key-1"}
    first = await api.client.post("/v1/api-keys", json=body, headers=headers)
    second = await api.client.post("/v1/api-keys", json=body, headers=headers)
    assert first.status_code == second.status_code == 201, second.text
    assert second.headers.get("idempotent-replayed") == "true"
    assert second.json() == first.json()
    assert await _key_count(app, name="重试的密钥") == 1
    # The key is the caller's: another body's administrator with the same key gets its own key.
    other = await api.client.post(
        "/v1/api-keys",
        json={**body, "organisation_id": str(api.bodies["town"])},
        headers={**await api.signed_in("body_admin", "town"), "Idempotency-Key": "create-key-1"},
    )
    assert other.status_code == 201 and other.json()["secret"] != first.json()["secret"]


async def test_a_retried_rotation_gives_the_same_successor(api: Api, app: Any) -> None:
    owner = await api.signed_in("body_admin", "village")
    old = await api.client.post(
        "/v1/api-keys",
        json={"organisation_id": str(api.bodies["village"]), "role": "body_mediator", "name": "轮换"},
        headers=owner,
    )
    path = f"/v1/api-keys/{old.json()['id']}/rotate"
    first = await api.client.post(path, headers={**owner, "Idempotency-Key": "rotate-1"})
    retry = await api.client.post(path, headers={**owner, "Idempotency-Key": "rotate-1"})
    assert first.status_code == retry.status_code == 201, retry.text
    assert retry.json()["secret"] == first.json()["secret"]
    assert await _key_count(app, replaces_id=uuid.UUID(old.json()["id"])) == 1
    me = await api.client.get("/v1/me", headers={"X-API-Key": retry.json()["secret"], "Authorization": ""})
    assert me.status_code == 200
    # Without a key a second rotation is still refused.
    assert (await api.client.post(path, headers=owner)).status_code == 409


async def test_a_retried_account_creation_gives_the_same_account(api: Api, app: Any) -> None:
    body = {
        "username": "retried-clerk",
        "display_name": "重试",
        "role": "clerk",
        "organisation_id": str(api.bodies["center"]),
        "password": PASSWORD,
    }
    headers = {**api.auth("admin"), "Idempotency-Key": "create-user-1"}
    first = await api.client.post("/v1/users", json=body, headers=headers)
    second = await api.client.post("/v1/users", json=body, headers=headers)
    assert first.status_code == second.status_code == 201, second.text
    assert second.json()["id"] == first.json()["id"]
    changed = await api.client.post("/v1/users", json={**body, "display_name": "别的"}, headers=headers)
    assert changed.status_code == 422 and changed.json()["type"] == "/problems/idempotency-key-mismatch"


async def test_a_retried_body_registration_gives_the_same_body(api: Api) -> None:
    body = {
        "name": "城东镇重试人民调解委员会",
        "kind": "people_mediation_committee",
        "tier": "town",
        "region_code": "330681001000",
    }
    before = len((await api.client.get("/v1/bodies")).json())
    headers = {**api.auth("admin"), "Idempotency-Key": "register-body-1"}
    first = await api.client.post("/v1/bodies", json=body, headers=headers)
    second = await api.client.post("/v1/bodies", json=body, headers=headers)
    assert first.status_code == second.status_code == 201, second.text
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["location"] == first.headers["location"]
    assert len((await api.client.get("/v1/bodies")).json()) == before + 1
    changed = await api.client.post("/v1/bodies", json={**body, "name": "别的委员会"}, headers=headers)
    assert changed.status_code == 422 and changed.json()["type"] == "/problems/idempotency-key-mismatch"


# ---- settings -----------------------------------------------------------------------------------


UNSAFE_SETTINGS = {
    "MEDIATION_JWT_SECRET": "x",
    "MEDIATION_ARGON2_MEMORY_KIB": "1",
    "MEDIATION_MAX_BODY_BYTES": "-5",
    "MEDIATION_MIN_PASSWORD_LENGTH": "1",
    "MEDIATION_DEFAULT_LANGUAGE": "fr",
}


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no .env file of the checkout
    for name in UNSAFE_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("name", sorted(UNSAFE_SETTINGS))
def test_unsafe_or_meaningless_settings_are_refused(clean_environment: pytest.MonkeyPatch, name: str) -> None:
    clean_environment.setenv(name, UNSAFE_SETTINGS[name])
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert name.removeprefix("MEDIATION_").lower() in str(refused.value)


def test_argon2_memory_must_give_each_lane_8_kib(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("MEDIATION_ARGON2_PARALLELISM", "4")
    clean_environment.setenv("MEDIATION_ARGON2_MEMORY_KIB", "16")
    with pytest.raises(ValidationError, match="8 KiB per lane"):
        Settings()


def test_sound_settings_are_accepted(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("MEDIATION_JWT_SECRET", "s" * 32)
    clean_environment.setenv("MEDIATION_DEFAULT_LANGUAGE", "en")
    clean_environment.setenv("MEDIATION_MIN_PASSWORD_LENGTH", "8")
    settings = Settings()
    assert (settings.default_language, settings.min_password_length) == ("en", 8)


def test_the_command_line_names_a_refused_setting_without_a_traceback(
    clean_environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_environment.setenv("MEDIATION_JWT_SECRET", "short-secret")
    get_settings.cache_clear()
    try:
        assert cli.main(["lifecycle"]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "MEDIATION_JWT_SECRET" in err and "32 bytes" in err
    assert "short-secret" not in err and "Traceback" not in err


# ---- the command line ---------------------------------------------------------------------------


async def test_seed_demo_on_a_database_with_cases_skips_the_accounts_too(
    api: Api,
    app: Any,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await api.intake()
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    code = await asyncio.to_thread(cli.main, ["seed-demo"])
    out = capsys.readouterr().out
    assert code == 0
    assert "demo data skipped" in out and "password" not in out
    async with app.state.db.reader() as session:
        demo_users = await session.scalar(
            select(func.count()).select_from(User).where(User.username == "clerk")
        )
    assert demo_users == 0


async def test_keys_list_shows_an_expired_key_as_expired(
    api: Api, app: Any, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    created = await api.client.post(
        "/v1/api-keys",
        json={
            "organisation_id": str(api.bodies["court"]),
            "role": "court",
            "name": "过期",
            "expires_at": (utcnow() + timedelta(days=1)).isoformat(),
        },
        headers=api.auth("admin"),
    )
    assert created.status_code == 201, created.text
    expired_at = (utcnow() - timedelta(hours=1)).replace(microsecond=0)
    async with app.state.db.writer() as session, session.begin():
        await session.execute(
            update(ApiKey).where(ApiKey.id == uuid.UUID(created.json()["id"])).values(expires_at=expired_at)
        )
    assert (
        await identity_cli.run(
            settings, _cli_args("keys", "list", "--organisation", str(api.bodies["court"]))
        )
        == 0
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if created.json()["prefix"] in line]
    assert len(lines) == 1 and " expired " in lines[0] and " active " not in lines[0]
    # The list says when each key stops working, so that a rotation can be planned from it.
    assert f" expires={expired_at.isoformat(timespec='seconds')} " in lines[0]


async def test_an_account_cannot_have_the_system_role(
    api: Api, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _cli_args("users", "create", "--username", "robot", "--name", "系统", "--role", "system")
    assert await identity_cli.run(settings, args) == 2
    err = capsys.readouterr().err
    assert "API 密钥" not in err and "系统内部" in err
    # A court or commission still hears that it uses API keys.
    court = _cli_args(
        "users",
        "create",
        "--username",
        "court-x",
        "--name",
        "法院",
        "--role",
        "court",
        "--organisation",
        str(api.bodies["court"]),
    )
    assert await identity_cli.run(settings, court) == 2
    assert "API 密钥" in capsys.readouterr().err


async def test_an_instant_given_with_an_offset_is_answered_as_every_read_gives_it(api: Api) -> None:
    """The answer to the write that set an instant names it in UTC, as the database gives it back
    to every later read: a client comparing the two sees the same string (one place for every
    table: core.db holds each instant set on a row in UTC)."""
    local = (utcnow() + timedelta(days=30)).astimezone(timezone(timedelta(hours=8))).replace(microsecond=0)
    created = await api.client.post(
        "/v1/api-keys",
        json={
            "organisation_id": str(api.bodies["court"]),
            "role": "court",
            "name": "时区",
            "expires_at": local.isoformat(),
        },
        headers=api.auth("admin"),
    )
    assert created.status_code == 201, created.text
    assert "+08:00" in local.isoformat() and created.json()["expires_at"].endswith("Z"), created.text
    listed = (await api.client.get("/v1/api-keys", headers=api.auth("admin"))).json()
    [read] = [k for k in listed if k["id"] == created.json()["id"]]
    assert read["expires_at"] == created.json()["expires_at"]
