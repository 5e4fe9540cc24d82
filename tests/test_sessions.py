"""Staff sessions: signing out ends a session on the server (a copied token is refused at once, on
the API and on the pages), or every session of the account, a renewed token stays in its session, a
password changed or reset ends the account's other sessions, a password an administrator set must be
changed before anything else, deactivation and activation (from the command line too) keep the
center from locking itself out, rotated keys take their own expiry, and a sign-in to a dead account
is recorded against it."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import event, func, select, text, update

from mediation import cli
from mediation.audit.models import AuditRecord
from mediation.core.db import utcnow
from mediation.core.idempotency import IdempotencyRecord, fingerprint
from mediation.core.settings import Settings
from mediation.identity import cli as identity_cli
from mediation.identity import credentials
from mediation.identity.models import ApiKey, RevokedSession, User
from mediation.identity.service import IdentityService
from tests.conftest import TEST_SECRETS
from tests.support import Api, intake_body

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a new and longer passphrase"
CSRF = "c" * 43
CLERK = "test-clerk-center"
ADMIN = "test-admin-none"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _sign_in(api: Api, username: str = CLERK, password: str = PASSWORD) -> httpx.Response:
    return await api.client.post("/v1/auth/token", json={"username": username, "password": password})


async def _token(api: Api, username: str = CLERK, password: str = PASSWORD) -> str:
    response = await _sign_in(api, username, password)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def _me(api: Api, token: str) -> httpx.Response:
    return await api.client.get("/v1/me", headers=_bearer(token))


def _ended(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["type"] == "/problems/unauthenticated"
    assert response.json()["code"] == "session_ended"


@asynccontextmanager
async def _browser(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of its own: its own cookies, the CSRF cookie set."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as web:
        web.cookies.set("mediation_csrf", CSRF)
        yield web


async def _page_sign_in(web: httpx.AsyncClient, username: str = CLERK, password: str = PASSWORD) -> str:
    response = await web.post(
        "/login", data={"username": username, "password": password, "next": "", "csrf": CSRF}
    )
    assert response.status_code == 303, response.text
    token = web.cookies.get("mediation_session")
    assert token
    return str(token)


async def _audit(app: Any, **where: Any) -> list[AuditRecord]:
    async with app.state.db.reader() as session:
        stmt = select(AuditRecord).order_by(AuditRecord.seq)
        for column, value in where.items():
            stmt = stmt.where(getattr(AuditRecord, column) == value)
        return list((await session.scalars(stmt)).all())


async def _user(app: Any, user_id: uuid.UUID) -> User:
    async with app.state.db.reader() as session:
        user = await session.get(User, user_id)
    assert user is not None
    return user


def _clerk_id(api: Api) -> uuid.UUID:
    return api.users[("clerk", api.bodies["center"])]


async def _past_first_change(api: Api, username: str, password: str = PASSWORD) -> str:
    """A token of an account an admin made, once its user has changed the temporary password
    (to NEW_PASSWORD): the session the change was made in goes on."""
    token = await _token(api, username, password)
    changed = await api.client.post(
        "/v1/me/password",
        json={"current_password": password, "new_password": NEW_PASSWORD},
        headers=_bearer(token),
    )
    assert changed.status_code == 204, changed.text
    return token


async def _create_user(
    api: Api,
    username: str,
    display_name: str,
    role: str,
    body: str | None = None,
    password: str = PASSWORD,
    by: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An account made by an administrator (`by`, the fixture's by default; so its password is
    temporary), of `body` when named."""
    fields: dict[str, Any] = {"username": username, "display_name": display_name, "role": role}
    if body is not None:
        fields["organisation_id"] = str(api.bodies[body])
    created = await api.client.post(
        "/v1/users", json={**fields, "password": password}, headers=by or api.auth("admin")
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def _set_body_active(api: Api, body: str, active: bool, reason: str = "整顿期间暂停工作") -> None:
    path = f"/v1/bodies/{api.bodies[body]}"
    current = await api.client.get(path, headers=api.auth("admin"))
    change: dict[str, Any] = {"active": active}
    if not active:
        change["suspended_reason"] = reason
    response = await api.client.patch(
        path, json=change, headers={**api.auth("admin"), "If-Match": current.headers["etag"]}
    )
    assert response.status_code == 200, response.text


# ---- signing out --------------------------------------------------------------------------------


async def test_a_copied_token_is_refused_once_its_session_is_signed_out(api: Api, app: Any) -> None:
    token = await _token(api)
    copy = str(token)
    assert (await _me(api, copy)).status_code == 200

    signed_out = await api.client.post("/v1/auth/logout", headers=_bearer(token))
    assert signed_out.status_code == 204, signed_out.text
    # At once, with minutes of the token's life left, on reads and writes alike.
    _ended(await _me(api, copy))
    _ended(await api.client.get("/v1/disputes", headers=_bearer(copy)))
    # Signing out again is no error: a client cleaning up twice hears 204 twice.
    again = await api.client.post("/v1/auth/logout", headers=_bearer(copy))
    assert again.status_code == 204, again.text

    records = await _audit(app, action="sign_out")
    assert [r.outcome for r in records] == ["success", "success"]
    assert {r.actor_id for r in records} == {str(_clerk_id(api))}
    assert {r.object_id for r in records} == {str(_clerk_id(api))}


async def test_another_session_of_the_same_account_survives_a_sign_out(api: Api) -> None:
    at_the_window = await _token(api)
    at_home = await _token(api)
    assert (await api.client.post("/v1/auth/logout", headers=_bearer(at_the_window))).status_code == 204
    _ended(await _me(api, at_the_window))
    assert (await _me(api, at_home)).status_code == 200


async def test_signing_out_needs_a_staff_token(api: Api) -> None:
    nothing = await api.client.post("/v1/auth/logout", headers={"Authorization": ""})
    assert nothing.status_code == 401
    garbage = await api.client.post("/v1/auth/logout", headers=_bearer("not-a-jwt"))
    assert garbage.status_code == 401
    key = await api.client.post("/v1/auth/logout", headers={**api.auth("court"), "Authorization": ""})
    assert key.status_code == 403 and "API" in key.json()["detail"]
    as_bearer = await api.client.post("/v1/auth/logout", headers=_bearer(api.auth("court")["X-API-Key"]))
    assert as_bearer.status_code == 403
    # The court's key still works: refusing to sign it out changed nothing.
    court = await api.client.get("/v1/me", headers={**api.auth("court"), "Authorization": ""})
    assert court.status_code == 200


async def test_signing_out_on_the_page_ends_the_session_for_every_copy(api: Api, app: Any) -> None:
    async with _browser(app) as web:
        token = await _page_sign_in(web)
        assert (await web.get("/queue")).status_code == 200
        signed_out = await web.post("/logout", data={"csrf": CSRF})
        assert signed_out.status_code == 303 and signed_out.headers["location"] == "/login"
        assert "mediation_session" not in web.cookies
    # The cookie's token, copied before the sign-out, works neither on the API nor on the pages.
    _ended(await _me(api, token))
    async with _browser(app) as thief:
        thief.cookies.set("mediation_session", token)
        page = await thief.get("/queue")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        assert (await thief.get("/session/renew")).status_code == 401
    [record] = await _audit(app, action="logout")
    assert record.outcome == "success" and record.actor_id == str(_clerk_id(api))


async def test_a_renewed_token_stays_in_its_session(
    api: Api, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page renews a token past half its life; the fresh token belongs to the same session, so
    signing out with the old one ends the new one too (a copy cannot outlive the sign-out by
    having been renewed)."""
    tokens = app.state.identity.tokens
    real = time.time
    monkeypatch.setattr(credentials.time, "time", lambda: real() - tokens.lifetime * 0.6)
    old = await _token(api)
    monkeypatch.setattr(credentials.time, "time", real)
    async with _browser(app) as web:
        web.cookies.set("mediation_session", old)
        renewed = await web.get("/session/renew")
        assert renewed.status_code == 204
        fresh = renewed.cookies.get("mediation_session")
    assert fresh and fresh != old
    assert tokens.verify(fresh)["sid"] == tokens.verify(old)["sid"]
    assert tokens.verify(fresh)["exp"] > tokens.verify(old)["exp"]
    assert (await _me(api, fresh)).status_code == 200

    assert (await api.client.post("/v1/auth/logout", headers=_bearer(old))).status_code == 204
    _ended(await _me(api, fresh))


async def test_signed_out_sessions_are_forgotten_once_their_tokens_have_expired(api: Api, app: Any) -> None:
    first, second = await _token(api), await _token(api)
    tokens = app.state.identity.tokens
    assert (await api.client.post("/v1/auth/logout", headers=_bearer(first))).status_code == 204
    async with app.state.db.reader() as session:
        [row] = (await session.scalars(select(RevokedSession))).all()
    # Kept as long as a token of the session can live, and no longer.
    assert row.sid == tokens.verify(first)["sid"]
    life = (row.expires_at - row.revoked_at).total_seconds()
    assert life == tokens.lifetime + tokens.leeway
    async with app.state.db.writer() as session, session.begin():
        await session.execute(update(RevokedSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert (await api.client.post("/v1/auth/logout", headers=_bearer(second))).status_code == 204
    async with app.state.db.reader() as session:
        left = (await session.scalars(select(RevokedSession.sid))).all()
    assert left == [tokens.verify(second)["sid"]]


async def test_a_signed_out_token_of_a_longer_lifetime_is_remembered_until_it_expires(
    api: Api, app: Any, settings: Settings
) -> None:
    """A token issued before the lifetime was shortened (the service restarted with fewer minutes)
    outlives every token issued today: its sign-out is kept until the token itself expires, or the
    next sign-out after today's lifetime would forget it while it is still in date."""
    tokens = app.state.identity.tokens
    longer = settings.model_copy(update={"access_token_minutes": settings.access_token_minutes * 4})
    earlier = credentials.Tokens(longer, tokens.secret)
    old = earlier.issue(_clerk_id(api), "clerk", api.bodies["center"]).token
    assert (await _me(api, old)).status_code == 200
    assert (await api.client.post("/v1/auth/logout", headers=_bearer(old))).status_code == 204
    _ended(await _me(api, old))
    async with app.state.db.reader() as session:
        [row] = (await session.scalars(select(RevokedSession))).all()
    last_accepted = datetime.fromtimestamp(tokens.verify(old)["exp"] + tokens.leeway, UTC)
    assert row.expires_at >= last_accepted
    assert row.expires_at - row.revoked_at > timedelta(seconds=tokens.longest_life)


async def test_the_account_and_its_session_are_checked_in_one_statement(api: Api, app: Any) -> None:
    token = await _token(api)
    statements: list[str] = []

    def log(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    engine = app.state.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", log)
    try:
        assert (await _me(api, token)).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", log)
    reads = [s for s in statements if "FROM users" in s]
    assert len(reads) == 1, statements
    assert "revoked_sessions" in reads[0] and "bodies" in reads[0]


# ---- passwords ----------------------------------------------------------------------------------


async def test_changing_ones_password_ends_the_other_sessions_but_not_this_one(api: Api, app: Any) -> None:
    here, elsewhere = await _token(api), await _token(api)
    changed = await api.client.post(
        "/v1/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=_bearer(here),
    )
    assert changed.status_code == 204, changed.text
    assert (await _me(api, here)).status_code == 200
    _ended(await _me(api, elsewhere))
    # The fixture's token, signed long before, went with the others.
    _ended(await api.client.get("/v1/me", headers=api.auth("clerk")))
    assert (await _sign_in(api, password=PASSWORD)).status_code == 401
    fresh = await _token(api, password=NEW_PASSWORD)
    assert (await _me(api, fresh)).status_code == 200
    # The session the change was made in can still be signed out of.
    assert (await api.client.post("/v1/auth/logout", headers=_bearer(here))).status_code == 204
    _ended(await _me(api, here))
    assert (await _me(api, fresh)).status_code == 200

    [record] = await _audit(app, action="change_own_password")
    assert record.outcome == "success" and record.actor_id == str(_clerk_id(api))
    assert record.object_id == str(_clerk_id(api))
    assert record.details["sessions_ended"] == "others"
    for any_record in await _audit(app):
        assert PASSWORD not in json.dumps(any_record.details, ensure_ascii=False)
        assert NEW_PASSWORD not in json.dumps(any_record.details, ensure_ascii=False)


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        (
            {"current_password": "not the password", "new_password": NEW_PASSWORD},
            "current_password",
            "wrong_password",
        ),
        ({"current_password": PASSWORD, "new_password": "short"}, "new_password", "too_short"),
        ({"current_password": PASSWORD, "new_password": PASSWORD}, "new_password", "same_as_current"),
    ],
    ids=["wrong-current", "too-short", "unchanged"],
)
async def test_a_password_change_is_refused_at_its_field(
    api: Api, app: Any, body: dict[str, str], field: str, code: str
) -> None:
    elsewhere = await _token(api)
    refused = await api.client.post("/v1/me/password", json=body, headers=api.auth("clerk"))
    assert refused.status_code == 422, refused.text
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [(field, code)]
    # Nothing changed: the old password signs in, no session ended.
    assert (await _me(api, elsewhere)).status_code == 200
    assert (await _sign_in(api)).status_code == 200
    [record] = await _audit(app, action="change_own_password")
    assert (record.outcome, record.status_code) == ("rejected", 422)


async def test_the_current_password_is_a_guess_under_the_sign_in_limit(api: Api, app: Any) -> None:
    limiter = app.state.identity.anonymous_limiter
    while limiter.retry_after(f"signin-user:{CLERK}@127.0.0.1") == 0:
        pass  # the account's guesses from this address for this minute are used up
    limited = await api.client.post(
        "/v1/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=api.auth("clerk"),
    )
    assert limited.status_code == 429 and "retry-after" in limited.headers
    assert (await api.client.get("/v1/me", headers=api.auth("clerk"))).status_code == 200
    async with app.state.db.reader() as session:
        kept = await session.scalar(select(User.password_hash).where(User.username == CLERK))
    assert app.state.identity.passwords.verify(kept, PASSWORD)


async def test_an_api_key_has_no_password_to_change(api: Api) -> None:
    response = await api.client.post(
        "/v1/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers={**api.auth("court"), "Authorization": ""},
    )
    assert response.status_code == 403


async def test_a_retried_password_change_answers_as_the_first(api: Api, app: Any) -> None:
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    headers = {**api.auth("clerk"), "Idempotency-Key": "change-password-1"}
    first = await api.client.post("/v1/me/password", json=body, headers=headers)
    retry = await api.client.post("/v1/me/password", json=body, headers=headers)
    assert first.status_code == retry.status_code == 204, retry.text
    assert retry.headers.get("idempotent-replayed") == "true"
    assert (await _sign_in(api, password=NEW_PASSWORD)).status_code == 200
    # The stored fingerprint is keyed: no plain hash of the passwords for a reader of the table.
    async with app.state.db.reader() as session:
        stored = await session.scalar(
            select(IdempotencyRecord.fingerprint).where(IdempotencyRecord.key == "change-password-1")
        )
    plain = fingerprint("POST", "/v1/me/password", json.dumps(body).encode())
    assert stored is not None and stored != plain


async def test_an_admin_resets_a_password_and_every_session_of_it_ends(api: Api, app: Any) -> None:
    clerk_id = _clerk_id(api)
    session = await _token(api)
    before = (await _user(app, clerk_id)).password_changed_at
    path = f"/v1/users/{clerk_id}/password"
    assert (await api.client.post(path, json={"password": NEW_PASSWORD})).status_code == 403
    short = await api.client.post(path, json={"password": "short"}, headers=api.auth("admin"))
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "password"

    reset = await api.client.post(path, json={"password": NEW_PASSWORD}, headers=api.auth("admin"))
    assert reset.status_code == 200, reset.text
    assert reset.json()["id"] == str(clerk_id) and "password" not in reset.json()
    assert (await _user(app, clerk_id)).password_changed_at > before
    _ended(await _me(api, session))
    _ended(await api.client.get("/v1/me", headers=api.auth("clerk")))
    assert (await _sign_in(api)).status_code == 401
    assert (await _sign_in(api, password=NEW_PASSWORD)).status_code == 200
    unknown = await api.client.post(
        f"/v1/users/{uuid.uuid4()}/password", json={"password": NEW_PASSWORD}, headers=api.auth("admin")
    )
    assert unknown.status_code == 404

    [record] = await _audit(app, action="reset_password", outcome="success")
    assert record.actor_id == str(api.users[("admin", None)]) and record.object_id == str(clerk_id)
    assert record.details["sessions_ended"] == "all"
    for any_record in await _audit(app):
        assert NEW_PASSWORD not in json.dumps(any_record.details, ensure_ascii=False)


async def test_an_admin_changes_their_own_password_only_with_the_current_one(api: Api) -> None:
    admin_id = api.users[("admin", None)]
    own = await api.client.post(
        f"/v1/users/{admin_id}/password",
        json={"password": NEW_PASSWORD},
        headers={**api.auth("admin"), "Accept-Language": "en"},
    )
    assert own.status_code == 409 and own.json()["code"] == "own_account"
    assert "current" in own.json()["detail"]
    changed = await api.client.post(
        "/v1/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=api.auth("admin"),
    )
    assert changed.status_code == 204, changed.text


# ---- the password page ------------------------------------------------------------------------


def _password_form(current: str, new: str, again: str | None = None, key: str = "") -> dict[str, str]:
    return {
        "current_password": current,
        "new_password": new,
        "new_password_again": new if again is None else again,
        "csrf": CSRF,
        "idempotency_key": key,
    }


async def test_the_password_page_changes_the_password_and_keeps_this_session(api: Api, app: Any) -> None:
    async with _browser(app) as here, _browser(app) as elsewhere:
        await _page_sign_in(here)
        await _page_sign_in(elsewhere)
        queue = await here.get("/queue")
        assert 'href="/account/password"' in queue.text and "修改密码" in queue.text
        form = await here.get("/account/password")
        assert form.status_code == 200
        assert 'autocomplete="current-password"' in form.text and "至少 12 位" in form.text

        changed = await here.post("/account/password", data=_password_form(PASSWORD, NEW_PASSWORD))
        assert changed.status_code == 303, changed.text
        assert changed.headers["location"] == "/account/password?changed=true"
        shown = await here.get(changed.headers["location"])
        assert 'id="password-changed"' in shown.text and "密码已修改" in shown.text
        assert (await here.get("/queue")).status_code == 200
        # The other browser is signed out.
        away = await elsewhere.get("/queue")
        assert away.status_code == 303 and away.headers["location"].startswith("/login")
    assert (await _sign_in(api, password=NEW_PASSWORD)).status_code == 200
    [record] = await _audit(app, action="change_password")
    assert record.outcome == "success" and record.actor_id == str(_clerk_id(api))
    assert record.details["via"] == "web"


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        (_password_form("not the password", NEW_PASSWORD), "current_password", "当前密码不正确"),
        (
            _password_form(PASSWORD, NEW_PASSWORD, "a different passphrase"),
            "new_password_again",
            "两次输入的新密码不一致",
        ),
        (_password_form(PASSWORD, "short"), "new_password", "密码至少 12 位"),
        (_password_form(PASSWORD, PASSWORD), "new_password", "新密码不能与当前密码相同"),
        (_password_form("", NEW_PASSWORD), "current_password", "此项为必填项"),
    ],
    ids=["wrong-current", "mismatch", "too-short", "unchanged", "blank"],
)
async def test_the_password_page_says_what_is_wrong_at_the_field(
    api: Api, app: Any, form: dict[str, str], field: str, message: str
) -> None:
    async with _browser(app) as web:
        await _page_sign_in(web)
        refused = await web.post("/account/password", data=form)
        assert refused.status_code == 422, refused.text
        assert f'<p class="error" id="f-{field}-error" role="alert">{message}</p>' in refused.text
        assert f'id="f-{field}" name="{field}"' in refused.text
        assert (await web.get("/queue")).status_code == 200
    assert (await _sign_in(api)).status_code == 200


async def test_the_password_page_takes_a_double_click_as_one_change(api: Api, app: Any) -> None:
    async with _browser(app) as web:
        await _page_sign_in(web)
        form = _password_form(PASSWORD, NEW_PASSWORD, key="form-shown-once")
        first = await web.post("/account/password", data=form)
        second = await web.post("/account/password", data=form)
        assert first.status_code == second.status_code == 303, second.text
        assert second.headers["location"] == "/account/password?changed=true"
    assert (await _sign_in(api, password=NEW_PASSWORD)).status_code == 200


async def test_the_password_page_sent_again_with_other_passwords_is_not_reported_as_changed(
    api: Api, app: Any
) -> None:
    """Back to the page already sent (its form key with it), other passwords typed: that is another
    change, not the first one again. It is refused, saying so, rather than answered 密码已修改 for a
    change never made."""
    again = "yet another long passphrase"
    async with _browser(app) as web:
        await _page_sign_in(web)
        first = await web.post("/account/password", data=_password_form(PASSWORD, NEW_PASSWORD, key="k1"))
        assert first.status_code == 303, first.text
        second = await web.post("/account/password", data=_password_form(NEW_PASSWORD, again, key="k1"))
        assert second.status_code == 422, second.text
        assert "这张表单已经提交过" in second.text and "本次填写的内容未被采用" in second.text
        assert 'id="password-changed"' not in second.text
        # The page shown offers a fresh form: filled in again, the change is made.
        key = second.text.split('name="idempotency_key" value="')[1].split('"')[0]
        assert key != "k1"
        third = await web.post("/account/password", data=_password_form(NEW_PASSWORD, again, key=key))
        assert third.status_code == 303, third.text
    assert (await _sign_in(api, password=again)).status_code == 200


async def test_the_password_page_needs_its_csrf_token_and_a_session(api: Api, app: Any) -> None:
    async with _browser(app) as web:
        await _page_sign_in(web)
        forged = await web.post(
            "/account/password", data={**_password_form(PASSWORD, NEW_PASSWORD), "csrf": "x" * 43}
        )
        assert forged.status_code == 403
    async with _browser(app) as stranger:
        assert (await stranger.get("/account/password")).headers["location"].startswith("/login")
        refused = await stranger.post("/account/password", data=_password_form(PASSWORD, NEW_PASSWORD))
        assert refused.status_code == 401
    assert (await _sign_in(api)).status_code == 200


# ---- deactivation and activation ---------------------------------------------------------------


async def test_an_admin_cannot_deactivate_their_own_account(api: Api, app: Any) -> None:
    admin_id = api.users[("admin", None)]
    zh = await api.client.post(f"/v1/users/{admin_id}/deactivate", headers=api.auth("admin"))
    en = await api.client.post(
        f"/v1/users/{admin_id}/deactivate", headers={**api.auth("admin"), "Accept-Language": "en"}
    )
    for response in (zh, en):
        assert response.status_code == 409, response.text
        assert response.json()["type"] == "/problems/conflict" and response.json()["code"] == "own_account"
    assert "自己" in zh.json()["detail"] and "your own account" in en.json()["detail"]
    assert (await _user(app, admin_id)).active
    records = await _audit(app, action="deactivate_user")
    assert [(r.outcome, r.status_code, r.object_id) for r in records] == [
        ("rejected", 409, str(admin_id))
    ] * 2


def _cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    identity_cli.add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


async def test_the_last_active_admin_cannot_be_deactivated(
    api: Api, app: Any, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Over the API an admin is never the last one (the caller is another); the command line can
    be asked to, and is refused, naming why."""
    admin_id = api.users[("admin", None)]
    assert await identity_cli.run(settings, _cli("users", "deactivate", str(admin_id))) == 2
    err = capsys.readouterr().err
    assert "最后一个" in err and "管理员" in err
    assert (await _user(app, admin_id)).active
    # With a second administrator, the first may go.
    second = await _create_user(api, "second-admin", "第二管理员", "admin")
    assert await identity_cli.run(settings, _cli("users", "deactivate", str(admin_id))) == 0
    assert not (await _user(app, admin_id)).active
    # An account may be named by its username too, as `users activate` names it.
    assert await identity_cli.run(settings, _cli("users", "activate", ADMIN)) == 0
    assert await identity_cli.run(settings, _cli("users", "deactivate", " second-admin ")) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "deactivated second-admin"
    assert not (await _user(app, uuid.UUID(second["id"]))).active
    assert await identity_cli.run(settings, _cli("users", "deactivate", "nobody-here")) == 2
    assert "用户不存在" in capsys.readouterr().err


async def _requests_waiting_on_a_lock(app: Any, count: int) -> None:
    async with app.state.db.engine.connect() as watcher:
        for _ in range(500):
            waiting = await watcher.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            if waiting == count:
                return
            await watcher.rollback()
            await asyncio.sleep(0.01)
    raise AssertionError(f"{count} requests never waited on the held rows")


@pytest.mark.postgres_only
async def test_two_admins_deactivating_each_other_at_once_leave_one(api: Api, app: Any) -> None:
    """Each finds the other still active; without the administrators' rows locked in one order,
    both would succeed and leave the center with none."""
    created = await _create_user(api, "other-admin", "另一管理员", "admin")
    first_id, second_id = api.users[("admin", None)], uuid.UUID(created["id"])
    second = await _past_first_change(api, "other-admin")
    # Both requests signed in and on their way before either may write: the rows are held here.
    async with app.state.db.engine.connect() as holder:
        held = await holder.begin()
        await holder.execute(select(User.id).where(User.role == "admin").with_for_update())
        racing = asyncio.gather(
            api.client.post(f"/v1/users/{second_id}/deactivate", headers=api.auth("admin")),
            api.client.post(f"/v1/users/{first_id}/deactivate", headers=_bearer(second)),
        )
        await _requests_waiting_on_a_lock(app, 2)
        await held.rollback()
    responses = await racing
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    [refused] = [r for r in responses if r.status_code == 409]
    assert refused.json()["code"] == "last_admin"
    async with app.state.db.reader() as session:
        active = await session.scalar(
            select(func.count()).select_from(User).where(User.role == "admin", User.active.is_(True))
        )
    assert active == 1


@pytest.mark.postgres_only
@pytest.mark.parametrize("meanwhile", ["sign_out_everywhere", "deactivate"])
async def test_a_password_change_keeps_no_session_ended_while_it_waited(
    api: Api, app: Any, meanwhile: str
) -> None:
    """The change was authenticated, then waited for the account's row while every session of the
    account ended (signed out everywhere from another browser, or the account deactivated). It may
    not keep its session: that would bring back a token already refused, and one an activation
    promises stays refused."""
    clerk = _clerk_id(api)
    token = await _token(api)
    async with app.state.db.writer() as holder, holder.begin():
        await holder.get(User, clerk, with_for_update=True)
        changing = asyncio.ensure_future(
            api.client.post(
                "/v1/me/password",
                json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                headers=_bearer(token),
            )
        )
        await _requests_waiting_on_a_lock(app, 1)
        service = IdentityService(holder)
        if meanwhile == "deactivate":
            await service.set_active(clerk, False)
        else:
            await service.sign_out_everywhere(clerk)
    _ended(await changing)
    if meanwhile == "deactivate":
        activated = await api.client.post(f"/v1/users/{clerk}/activate", headers=api.auth("admin"))
        assert activated.status_code == 200, activated.text
    _ended(await _me(api, token))
    # Nothing was changed: the password is the one from before.
    assert (await _sign_in(api, password=NEW_PASSWORD)).status_code == 401
    assert (await _sign_in(api)).status_code == 200


@pytest.mark.postgres_only
async def test_a_sign_in_upgrading_the_hash_does_not_undo_a_reset_made_meanwhile(api: Api, app: Any) -> None:
    """A sign-in reads the account unlocked; a hash of older parameters is upgraded from the password
    typed. An administrator's reset made between the read and the upgrade stands: the upgrade is of
    the hash that was verified, not whatever the row holds by then."""
    clerk = _clerk_id(api)
    older = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1).hash(PASSWORD)
    async with app.state.db.writer() as session, session.begin():
        await session.execute(update(User).where(User.id == clerk).values(password_hash=older))
    async with app.state.db.writer() as holder, holder.begin():
        await holder.get(User, clerk, with_for_update=True)
        signing_in = asyncio.ensure_future(_sign_in(api))
        await _requests_waiting_on_a_lock(app, 1)
        settings = app.state.settings
        await IdentityService(holder, app.state.identity.passwords).reset_password(
            clerk, TEMPORARY, settings.min_password_length, None
        )
    signed_in = await signing_in
    # The password was right when it was checked; the token is of the sessions the reset ended.
    assert signed_in.status_code == 200, signed_in.text
    _ended(await _me(api, signed_in.json()["access_token"]))
    assert (await _sign_in(api)).status_code == 401
    assert (await _sign_in(api, password=TEMPORARY)).status_code == 200


async def test_a_deactivated_account_is_activated_again_and_signs_in_afresh(api: Api, app: Any) -> None:
    clerk_id = _clerk_id(api)
    held = await _token(api)
    deactivated = await api.client.post(f"/v1/users/{clerk_id}/deactivate", headers=api.auth("admin"))
    assert deactivated.status_code == 200 and deactivated.json()["active"] is False
    assert (await _me(api, held)).status_code == 401
    assert (await _sign_in(api)).status_code == 401

    path = f"/v1/users/{clerk_id}/activate"
    assert (await api.client.post(path, headers=api.auth("supervisor"))).status_code == 403
    assert (
        await api.client.post(f"/v1/users/{uuid.uuid4()}/activate", headers=api.auth("admin"))
    ).status_code == 404
    headers = {**api.auth("admin"), "Idempotency-Key": "activate-clerk-1"}
    activated = await api.client.post(path, headers=headers)
    assert activated.status_code == 200, activated.text
    assert activated.json()["active"] is True
    replayed = await api.client.post(path, headers=headers)
    assert replayed.headers.get("idempotent-replayed") == "true" and replayed.json() == activated.json()

    fresh = await _token(api)
    assert (await _me(api, fresh)).status_code == 200
    # The tokens held before the deactivation do not come back with the account.
    _ended(await _me(api, held))
    _ended(await api.client.get("/v1/me", headers=api.auth("clerk")))
    records = await _audit(app, action="activate_user")
    # The refused attempts too; the replay is recorded as the answer it gave.
    assert [r.outcome for r in records] == ["denied", "denied", "success", "success"]
    assert records[2].object_id == str(clerk_id) and records[2].actor_id == str(api.users[("admin", None)])


# ---- rotating a key with its own expiry ---------------------------------------------------------


async def _key(api: Api, expires_at: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "organisation_id": str(api.bodies["village"]),
        "role": "body_mediator",
        "name": "对接",
    }
    if expires_at:
        body["expires_at"] = expires_at
    response = await api.client.post("/v1/api-keys", json=body, headers=api.auth("admin"))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_rotation_may_give_the_successor_its_own_expiry(api: Api, app: Any) -> None:
    soon = (utcnow() + timedelta(days=10)).replace(microsecond=0)
    later = (utcnow() + timedelta(days=365)).replace(microsecond=0)
    owner = await api.signed_in("body_admin", "village")

    old = await _key(api, soon.isoformat())
    rotated = await api.client.post(
        f"/v1/api-keys/{old['id']}/rotate", json={"expires_at": later.isoformat()}, headers=owner
    )
    assert rotated.status_code == 201, rotated.text
    assert rotated.json()["expires_at"] == later.isoformat().replace("+00:00", "Z")
    assert rotated.json()["replaces_id"] == old["id"]
    me = await api.client.get("/v1/me", headers={"X-API-Key": rotated.json()["secret"], "Authorization": ""})
    assert me.status_code == 200

    # Not given: the successor expires with the key it replaces; null: never.
    inherited = await api.client.post(
        f"/v1/api-keys/{(await _key(api, soon.isoformat()))['id']}/rotate", headers=owner
    )
    assert inherited.status_code == 201 and inherited.json()["expires_at"] == soon.isoformat().replace(
        "+00:00", "Z"
    )
    never = await api.client.post(
        f"/v1/api-keys/{(await _key(api, soon.isoformat()))['id']}/rotate",
        json={"expires_at": None},
        headers=owner,
    )
    assert never.status_code == 201 and never.json()["expires_at"] is None

    # The list says which key replaces which.
    listed = {k["id"]: k for k in (await api.client.get("/v1/api-keys", headers=owner)).json()}
    assert listed[rotated.json()["id"]]["replaces_id"] == old["id"]


@pytest.mark.parametrize(
    ("expires_at", "code"),
    [
        ((utcnow() - timedelta(days=1)).isoformat(), "in_past"),
        ((utcnow() + timedelta(days=1)).replace(tzinfo=None).isoformat(), "timezone_missing"),
    ],
    ids=["in-the-past", "no-time-zone"],
)
async def test_a_rotation_refuses_an_expiry_it_would_refuse_at_creation(
    api: Api, app: Any, expires_at: str, code: str
) -> None:
    old = await _key(api)
    refused = await api.client.post(
        f"/v1/api-keys/{old['id']}/rotate", json={"expires_at": expires_at}, headers=api.auth("admin")
    )
    assert refused.status_code == 422, refused.text
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [("expires_at", code)]
    async with app.state.db.reader() as session:
        successors = await session.scalar(
            select(func.count()).select_from(ApiKey).where(ApiKey.replaces_id == uuid.UUID(old["id"]))
        )
    assert successors == 0


# ---- sign-ins to dead accounts ----------------------------------------------------------------


async def test_a_sign_in_to_a_deactivated_account_is_recorded_against_it(api: Api, app: Any) -> None:
    clerk_id = _clerk_id(api)
    assert (
        await api.client.post(f"/v1/users/{clerk_id}/deactivate", headers=api.auth("admin"))
    ).status_code == 200
    right = await _sign_in(api)
    wrong = await _sign_in(api, password="a wrong password")
    unknown = await _sign_in(api, "nobody-here")
    # The answer says no more than for an unknown account.
    for response in (right, wrong):
        assert response.status_code == 401 and "code" not in response.json()
        assert response.json()["detail"] == unknown.json()["detail"]
    async with _browser(app) as web:
        page = await web.post(
            "/login", data={"username": CLERK, "password": PASSWORD, "next": "", "csrf": CSRF}
        )
        assert page.status_code == 401

    records = [*await _audit(app, action="sign_in"), *await _audit(app, action="login")]
    against = [r for r in records if r.object_id == str(clerk_id)]
    assert [(r.action, r.details["password_matched"]) for r in against] == [
        ("sign_in", True),
        ("sign_in", False),
        ("login", True),
    ]
    for record in against:
        assert (record.outcome, record.object_type, record.details["account"]) == (
            "denied",
            "user",
            "deactivated",
        )
        assert record.actor_kind == "anonymous" and record.details["username"] == CLERK
        assert PASSWORD not in json.dumps(record.details, ensure_ascii=False)
    [stranger] = [r for r in records if r.details["username"] == "n**********"]  # nobody-here, masked
    assert stranger.object_id is None and "account" not in stranger.details
    assert "nobody-here" not in json.dumps(stranger.details)


async def test_a_username_that_names_no_account_is_kept_masked_with_a_digest(api: Api, app: Any) -> None:
    """What was typed into the username box may be the password: a name no account has is kept as
    its first character and length, and a keyed digest the same for every attempt with it."""
    typed = ["Mima@2026!", "Mima@2026!", "nobody-else"]
    for name in typed:
        assert (await _sign_in(api, name, "whatever")).status_code == 401
    async with _browser(app) as web:
        page = await web.post(
            "/login", data={"username": typed[0], "password": "x", "next": "", "csrf": CSRF}
        )
        assert page.status_code == 401
    records = [*await _audit(app, action="sign_in"), *await _audit(app, action="login")]
    assert [r.details["username"] for r in records] == [
        "M*********",
        "M*********",
        "n**********",
        "M*********",
    ]
    for record in records:
        assert "Mima@2026!" not in json.dumps(record.details), record.details
    digests = [r.details["username_digest"] for r in records]
    assert digests[0] == digests[1] == digests[3] != digests[2]
    assert all(len(d) == 16 for d in digests)
    # A known account's name is kept as typed: a wrong password for it names it.
    assert (await _sign_in(api, password="a wrong password")).status_code == 401
    [known] = [r for r in await _audit(app, action="sign_in") if r.details["username"] == CLERK]
    assert "username_digest" not in known.details


async def test_a_sign_in_to_a_suspended_bodys_account_is_recorded_against_it(api: Api, app: Any) -> None:
    created = await _create_user(api, "village-mediator", "村调解员", "body_mediator", "village")
    await _set_body_active(api, "village", False, "换届期间暂停工作")

    right = await _sign_in(api, "village-mediator")
    wrong = await _sign_in(api, "village-mediator", "a wrong password")
    assert right.status_code == 401 and right.json()["code"] == "organisation_suspended"
    assert wrong.status_code == 401 and "code" not in wrong.json()
    records = [
        r for r in await _audit(app, action="sign_in") if r.details.get("username") == "village-mediator"
    ]
    assert [(r.object_id, r.details["account"], r.details["password_matched"]) for r in records] == [
        (created["id"], "organisation_suspended", True),
        (created["id"], "organisation_suspended", False),
    ]


# ---- a password an administrator set is temporary ----------------------------------------------

TEMPORARY = "a temporary password"
CHOSEN = "a passphrase of my own choosing"


def _must_change(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "/problems/forbidden"
    assert response.json()["code"] == "password_change_required"


async def _reset(api: Api, user_id: uuid.UUID, password: str = TEMPORARY) -> httpx.Response:
    reset = await api.client.post(
        f"/v1/users/{user_id}/password", json={"password": password}, headers=api.auth("admin")
    )
    assert reset.status_code == 200, reset.text
    return reset


async def _case_count(app: Any) -> int:
    async with app.state.db.reader() as session:
        return int(await session.scalar(text("SELECT count(*) FROM disputes")) or 0)


async def test_a_reset_password_must_be_changed_before_anything_else(api: Api, app: Any) -> None:
    clerk_id = _clerk_id(api)
    assert (await _reset(api, clerk_id)).json()["password_change_required"] is True
    signed_in = await _sign_in(api, password=TEMPORARY)
    # Signing in still works, and says what must come first.
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["password_change_required"] is True
    token = signed_in.json()["access_token"]
    me = await _me(api, token)
    assert me.status_code == 200 and me.json()["password_change_required"] is True

    # Every other operation, reads and writes alike, is refused until the password is changed.
    zh = await api.client.get("/v1/disputes", headers=_bearer(token))
    en = await api.client.get("/v1/disputes", headers={**_bearer(token), "Accept-Language": "en"})
    for response in (zh, en):
        _must_change(response)
    assert "修改密码" in zh.json()["detail"] and "change it" in en.json()["detail"]
    _must_change(await api.client.post("/v1/disputes", json=intake_body(), headers=_bearer(token)))
    _must_change(await api.client.get("/v1/bodies", headers=_bearer(token)))
    _must_change(await api.client.get(f"/v1/bodies/{api.bodies['village']}/cases", headers=_bearer(token)))
    assert await _case_count(app) == 0
    refused = [r for r in await _audit(app, actor_id=str(clerk_id)) if r.status_code == 403]
    assert {r.details["path"] for r in refused} >= {"/v1/disputes", "/v1/bodies"}
    assert {r.outcome for r in refused} == {"denied"}

    # The user's own change lifts it, in the session it was made in.
    changed = await api.client.post(
        "/v1/me/password",
        json={"current_password": TEMPORARY, "new_password": CHOSEN},
        headers=_bearer(token),
    )
    assert changed.status_code == 204, changed.text
    assert (await api.client.get("/v1/disputes", headers=_bearer(token))).status_code == 200
    assert (await _me(api, token)).json()["password_change_required"] is False
    again = await _sign_in(api, password=CHOSEN)
    assert again.status_code == 200 and again.json()["password_change_required"] is False
    listed = (await api.client.get("/v1/users", headers=api.auth("admin"))).json()
    assert [u["password_change_required"] for u in listed if u["id"] == str(clerk_id)] == [False]


async def test_an_account_an_admin_creates_starts_with_a_temporary_password(api: Api, app: Any) -> None:
    created = await _create_user(api, "window-3", "窗口三", "clerk", "center", TEMPORARY)
    assert created["password_change_required"] is True
    signed_in = await _sign_in(api, "window-3", TEMPORARY)
    assert signed_in.status_code == 200 and signed_in.json()["password_change_required"] is True
    _must_change(await api.client.get("/v1/disputes", headers=_bearer(signed_in.json()["access_token"])))
    # The fixture's accounts, whose passwords no administrator set, are not held up.
    ordinary = await _sign_in(api, "test-supervisor-center")
    assert ordinary.status_code == 200 and ordinary.json()["password_change_required"] is False


async def test_a_temporary_password_is_checked_in_the_one_account_statement(api: Api, app: Any) -> None:
    await _reset(api, _clerk_id(api))
    token = await _token(api, password=TEMPORARY)
    statements: list[str] = []

    def log(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    engine = app.state.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", log)
    try:
        _must_change(await api.client.get("/v1/disputes", headers=_bearer(token)))
    finally:
        event.remove(engine, "before_cursor_execute", log)
    reads = [s for s in statements if "FROM users" in s]
    assert len(reads) == 1, statements
    assert "password_change_required" in reads[0] and "revoked_sessions" in reads[0]


async def test_a_user_with_a_temporary_password_may_still_sign_out(api: Api) -> None:
    await _reset(api, _clerk_id(api))
    token = await _token(api, password=TEMPORARY)
    assert (await api.client.post("/v1/auth/logout", headers=_bearer(token))).status_code == 204
    _ended(await _me(api, token))
    here, elsewhere = await _token(api, password=TEMPORARY), await _token(api, password=TEMPORARY)
    everywhere = await api.client.post("/v1/auth/logout", json={"everywhere": True}, headers=_bearer(here))
    assert everywhere.status_code == 204, everywhere.text
    _ended(await _me(api, here))
    _ended(await _me(api, elsewhere))


async def test_the_pages_send_a_user_with_a_temporary_password_to_change_it_first(api: Api, app: Any) -> None:
    await _reset(api, _clerk_id(api))
    async with _browser(app) as web:
        signed_in = await web.post(
            "/login", data={"username": CLERK, "password": TEMPORARY, "next": "/queue", "csrf": CSRF}
        )
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/account/password"
        # From any page, until changed.
        for path in ("/queue", "/intake", "/", "/lookup", "/queue?status=registered"):
            page = await web.get(path)
            assert page.status_code == 303, (path, page.text)
            assert page.headers["location"] == "/account/password", path
        form = await web.get("/account/password")
        assert form.status_code == 200
        assert 'id="password-change-required"' in form.text and "临时密码" in form.text
        # A form sent all the same is refused, and nothing is registered.
        sent = await web.post("/intake", data={"csrf": CSRF, "category": "neighbour"})
        assert sent.status_code == 403 and "请先修改密码" in sent.text
        assert await _case_count(app) == 0

        changed = await web.post("/account/password", data=_password_form(TEMPORARY, CHOSEN))
        assert changed.status_code == 303, changed.text
        assert changed.headers["location"] == "/account/password?changed=true"
        shown = await web.get(changed.headers["location"])
        assert 'id="password-changed"' in shown.text and 'id="password-change-required"' not in shown.text
        assert (await web.get("/queue")).status_code == 200
    [record] = await _audit(app, action="intake_submit")
    assert (record.outcome, record.status_code) == ("denied", 403)


async def test_the_demo_accounts_go_straight_to_work(
    app: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """README's quick start signs in as clerk / clerk-demo-2026 and lands on the work queue."""
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    assert await asyncio.to_thread(cli.main, ["seed-demo"]) == 0
    assert "clerk-demo-2026" in capsys.readouterr().out
    async with _browser(app) as web:
        signed_in = await _page_sign_in(web, "clerk", "clerk-demo-2026")
        assert signed_in
        assert (await web.get("/queue")).status_code == 200
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://mediation.test"
    ) as client:
        for username in ("clerk", "supervisor", "mediator", "body-admin", "admin", "auditor"):
            response = await client.post(
                "/v1/auth/token", json={"username": username, "password": f"{username}-demo-2026"}
            )
            assert response.status_code == 200, response.text
            assert response.json()["password_change_required"] is False, username


# ---- signing out everywhere ---------------------------------------------------------------------


async def test_signing_out_everywhere_ends_every_session_of_the_account(api: Api, app: Any) -> None:
    here, elsewhere = await _token(api), await _token(api)
    supervisor = api.auth("supervisor")
    signed_out = await api.client.post("/v1/auth/logout", json={"everywhere": True}, headers=_bearer(here))
    assert signed_out.status_code == 204, signed_out.text
    _ended(await _me(api, here))
    _ended(await _me(api, elsewhere))
    _ended(await api.client.get("/v1/me", headers=api.auth("clerk")))
    # Another account's sessions are its own.
    assert (await api.client.get("/v1/me", headers=supervisor)).status_code == 200
    # Signing in again starts afresh.
    assert (await _me(api, await _token(api))).status_code == 200

    [record] = await _audit(app, action="sign_out")
    assert (record.outcome, record.actor_id, record.object_id) == (
        "success",
        str(_clerk_id(api)),
        str(_clerk_id(api)),
    )
    assert record.details["sessions_ended"] == "all"


async def test_a_session_already_signed_out_cannot_sign_out_everywhere(api: Api, app: Any) -> None:
    """A token copied before its session was signed out must not end the sessions its owner signed
    in to since."""
    copied = await _token(api)
    assert (await api.client.post("/v1/auth/logout", headers=_bearer(copied))).status_code == 204
    since = await _token(api)
    _ended(await api.client.post("/v1/auth/logout", json={"everywhere": True}, headers=_bearer(copied)))
    assert (await _me(api, since)).status_code == 200
    key = await api.client.post(
        "/v1/auth/logout", json={"everywhere": True}, headers={**api.auth("court"), "Authorization": ""}
    )
    assert key.status_code == 403
    unknown = await api.client.post(
        "/v1/auth/logout", json={"everywhere": "yes please"}, headers=_bearer(since)
    )
    assert unknown.status_code == 422
    assert (await _me(api, since)).status_code == 200


async def test_signing_out_everywhere_on_the_page(api: Api, app: Any) -> None:
    async with _browser(app) as here, _browser(app) as elsewhere:
        token = await _page_sign_in(here)
        await _page_sign_in(elsewhere)
        page = await here.get("/account/password")
        assert 'id="sign-out-everywhere"' in page.text and "退出所有设备" in page.text
        signed_out = await here.post("/logout", data={"csrf": CSRF, "everywhere": "true"})
        assert signed_out.status_code == 303 and signed_out.headers["location"] == "/login"
        assert "mediation_session" not in here.cookies
        away = await elsewhere.get("/queue")
        assert away.status_code == 303 and away.headers["location"].startswith("/login")
    _ended(await _me(api, token))
    _ended(await api.client.get("/v1/me", headers=api.auth("clerk")))
    [record] = await _audit(app, action="logout")
    assert record.outcome == "success" and record.object_id == str(_clerk_id(api))
    assert record.details["sessions_ended"] == "all" and record.details["via"] == "web"
    # Without a session there is nothing to end everywhere from: said, and nothing recorded as done.
    async with _browser(app) as stranger:
        refused = await stranger.post("/logout", data={"csrf": CSRF, "everywhere": "true"})
        assert refused.status_code == 401


# ---- the command line ---------------------------------------------------------------------------


async def _mediation(app: Any, *args: str, stdin: str = "") -> tuple[int, str, str]:
    """The real `mediation` command against the test's database, in a process of its own, with
    `stdin` as its input."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MEDIATION_")}
    environment.update(
        MEDIATION_DATABASE_URL=app.state.settings.database_url,
        MEDIATION_JWT_SECRET=TEST_SECRETS["jwt_secret"],
        MEDIATION_PII_ENCRYPTION_KEYS=TEST_SECRETS["pii_encryption_keys"],
        MEDIATION_PII_INDEX_KEY=TEST_SECRETS["pii_index_key"],
        MEDIATION_ARGON2_TIME_COST="1",
        MEDIATION_ARGON2_MEMORY_KIB="1024",
        MEDIATION_ARGON2_PARALLELISM="1",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mediation.cli",
        *args,
        env=environment,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_command_line_resets_a_password_read_from_stdin(api: Api, app: Any) -> None:
    held = await _token(api)
    code, out, err = await _mediation(app, "users", "reset-password", CLERK, stdin=f"{TEMPORARY}\n")
    assert code == 0, err
    assert CLERK in out and TEMPORARY not in out + err
    # Every session of the account ended; the new password is temporary.
    _ended(await _me(api, held))
    _ended(await api.client.get("/v1/me", headers=api.auth("clerk")))
    assert (await _sign_in(api)).status_code == 401
    signed_in = await _sign_in(api, password=TEMPORARY)
    assert signed_in.status_code == 200 and signed_in.json()["password_change_required"] is True
    _must_change(await api.client.get("/v1/disputes", headers=_bearer(signed_in.json()["access_token"])))

    [record] = await _audit(app, action="users.reset_password")
    assert record.actor_kind == "system" and record.actor_id.startswith("cli:")
    assert record.object_id == str(_clerk_id(api)) and record.details["sessions_ended"] == "all"
    assert TEMPORARY not in json.dumps(record.details, ensure_ascii=False)


class _Operator:
    """Standard input (not a terminal) whose line is typed only once the command asks for it, and
    then only when the test says so."""

    def __init__(self, line: str) -> None:
        self.line = line
        self.asked = threading.Event()
        self.typed = threading.Event()

    def isatty(self) -> bool:
        return False

    def readline(self) -> str:
        self.asked.set()
        self.typed.wait(60)
        return self.line


async def test_the_command_line_holds_no_transaction_while_the_password_is_typed(
    api: Api, app: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command's transaction is a writer: opened before the password is read, it would hold
    SQLite's write lock, and with it every write of the service, for as long as the operator types."""
    operator = _Operator(f"{TEMPORARY}\n")
    monkeypatch.setattr(sys, "stdin", operator)
    args = _cli("users", "reset-password", CLERK)
    command = asyncio.ensure_future(asyncio.to_thread(lambda: asyncio.run(identity_cli.run(settings, args))))
    try:
        assert await asyncio.to_thread(operator.asked.wait, 60)
        # The service works on meanwhile: a sign-in writes (the time of the sign-in, the audit).
        signed_in = await asyncio.wait_for(_sign_in(api), 10)
        assert signed_in.status_code == 200, signed_in.text
        if not app.state.db.is_sqlite:
            async with app.state.db.engine.connect() as watcher:
                in_transaction = await watcher.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
                    )
                )
            assert in_transaction == 0
    finally:
        operator.typed.set()
    assert await command == 0
    assert (await _sign_in(api, password=TEMPORARY)).status_code == 200


async def test_the_command_line_refuses_a_reset_it_cannot_make(api: Api, app: Any) -> None:
    unknown = await _mediation(app, "users", "reset-password", "nobody-here", stdin=f"{TEMPORARY}\n")
    assert unknown[0] == 2 and "用户不存在" in unknown[2]
    short = await _mediation(app, "users", "reset-password", CLERK, stdin="short\n")
    assert short[0] == 2 and "密码至少 12 位" in short[2]
    # Nothing changed: the old password signs in, the fixture's token still works.
    assert (await _sign_in(api)).status_code == 200
    assert (await api.client.get("/v1/me", headers=api.auth("clerk"))).status_code == 200
    assert await _audit(app, action="users.reset_password") == []


async def test_the_command_line_activates_an_account_by_its_username(api: Api, app: Any) -> None:
    clerk_id = _clerk_id(api)
    assert (
        await api.client.post(f"/v1/users/{clerk_id}/deactivate", headers=api.auth("admin"))
    ).status_code == 200
    assert (await _sign_in(api)).status_code == 401
    code, out, err = await _mediation(app, "users", "activate", CLERK)
    assert code == 0, err
    assert f"activated {CLERK}" in out
    assert (await _user(app, clerk_id)).active
    assert (await _me(api, await _token(api))).status_code == 200
    [record] = await _audit(app, action="users.activate")
    assert record.actor_kind == "system" and record.object_id == str(clerk_id)
    missing = await _mediation(app, "users", "activate", "nobody-here")
    assert missing[0] == 2 and "用户不存在" in missing[2]


# ---- the last administrator and a suspended center ----------------------------------------------


async def test_an_admin_of_a_suspended_center_does_not_keep_the_center_administrable(
    api: Api, app: Any, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Admins may belong to the center; while it is suspended they cannot sign in, so the other
    admin is the last one who can."""
    created = await _create_user(api, "center-admin", "中心管理员", "admin", "center")
    await _set_body_active(api, "center", False)
    assert (await _sign_in(api, "center-admin")).json()["code"] == "organisation_suspended"

    admin_id = api.users[("admin", None)]
    assert await identity_cli.run(settings, _cli("users", "deactivate", str(admin_id))) == 2
    assert "最后一个" in capsys.readouterr().err
    assert (await _user(app, admin_id)).active
    # The suspended center's admin may go: it keeps no one able to manage accounts.
    center_admin = uuid.UUID(created["id"])
    assert await identity_cli.run(settings, _cli("users", "deactivate", str(center_admin))) == 0
    assert not (await _user(app, center_admin)).active

    # With the center at work again, its admin (activated again) counts once more.
    await _set_body_active(api, "center", True)
    assert await identity_cli.run(settings, _cli("users", "activate", "center-admin")) == 0
    assert await identity_cli.run(settings, _cli("users", "deactivate", str(admin_id))) == 0
    assert not (await _user(app, admin_id)).active


async def test_suspending_the_body_of_every_administrator_able_to_sign_in_is_refused(
    api: Api, app: Any
) -> None:
    """Suspended, a body's administrators cannot sign in: suspending the center that holds the
    only working administrators would leave no one to resume it."""
    created = await _create_user(api, "center-admin", "中心管理员", "admin", "center")
    center_admin = await _past_first_change(api, "center-admin")
    # The administrator of no body goes; the center's is the only one left who can sign in.
    gone = await api.client.post(
        f"/v1/users/{api.users[('admin', None)]}/deactivate", headers=_bearer(center_admin)
    )
    assert gone.status_code == 200, gone.text

    path = f"/v1/bodies/{api.bodies['center']}"
    current = await api.client.get(path, headers=_bearer(center_admin))
    for language, phrase in (("zh", "没有能登录的管理员"), ("en", "no administrator able to sign in")):
        refused = await api.client.patch(
            path,
            json={"active": False, "suspended_reason": "整顿期间暂停工作"},
            headers={
                **_bearer(center_admin),
                "If-Match": current.headers["etag"],
                "Accept-Language": language,
            },
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "last_admin" and phrase in refused.json()["detail"]
    after = await api.client.get(path, headers=_bearer(center_admin))
    assert after.json()["active"] is True and after.headers["etag"] == current.headers["etag"]
    assert (await _sign_in(api, "center-admin", NEW_PASSWORD)).status_code == 200

    # With an administrator outside the center, it may be suspended.
    await _create_user(api, "registry-admin", "登记管理员", "admin", by=_bearer(center_admin))
    suspended = await api.client.patch(
        path,
        json={"active": False, "suspended_reason": "整顿期间暂停工作"},
        headers={**_bearer(center_admin), "If-Match": current.headers["etag"]},
    )
    assert suspended.status_code == 200, suspended.text
    assert (await _sign_in(api, "center-admin", NEW_PASSWORD)).json()["code"] == "organisation_suspended"
    assert created["organisation_id"] == str(api.bodies["center"])


@pytest.mark.postgres_only
async def test_suspending_the_center_and_deactivating_the_admin_outside_it_at_once_leave_one(
    api: Api, app: Any
) -> None:
    """The administrator of no body suspends the center while the center's administrator
    deactivates them. Each alone is allowed; both would leave no administrator able to sign in.
    The suspension comes first here: the deactivation must then see the center suspended."""
    await _create_user(api, "center-admin", "中心管理员", "admin", "center")
    center_admin = await _past_first_change(api, "center-admin")
    outside = api.users[("admin", None)]
    path = f"/v1/bodies/{api.bodies['center']}"
    current = await api.client.get(path, headers=api.auth("admin"))
    async with app.state.db.engine.connect() as holder:
        held = await holder.begin()
        await holder.execute(select(User.id).where(User.role == "admin").with_for_update())
        suspending = asyncio.create_task(
            api.client.patch(
                path,
                json={"active": False, "suspended_reason": "整顿期间暂停工作"},
                headers={**api.auth("admin"), "If-Match": current.headers["etag"]},
            )
        )
        await _requests_waiting_on_a_lock(app, 1)
        deactivating = asyncio.create_task(
            api.client.post(f"/v1/users/{outside}/deactivate", headers=_bearer(center_admin))
        )
        await _requests_waiting_on_a_lock(app, 2)
        await held.rollback()
    suspended, deactivated = await asyncio.wait_for(asyncio.gather(suspending, deactivating), 20)
    assert suspended.status_code == 200, suspended.text
    # The center is suspended now: its administrator is the last no longer.
    assert deactivated.status_code == 409 and deactivated.json()["code"] == "last_admin", deactivated.text
    assert (await _user(app, outside)).active
    assert (await _sign_in(api, "test-admin-none")).status_code == 200
