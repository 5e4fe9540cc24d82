"""Staff move between posts: an administrator changes an account's role, organisation or display
name in place (`PATCH /v1/users/{id}`, `mediation users update`), so the person keeps one account
and one audit history. Checked as at creation; a new role or organisation ends the account's
sessions at once; the last administrator is not demoted; a mediator does not leave a body whose
cases in mediation still name them; the change names the version it was made against."""

from __future__ import annotations

import argparse
import json
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mediation.audit.models import AuditRecord
from mediation.core.settings import Settings
from mediation.identity import cli as identity_cli
from mediation.identity.models import User
from tests.support import Api

PASSWORD = "correct horse battery staple"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    identity_cli.add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


async def _etag(api: Api, user_id: uuid.UUID) -> str:
    response = await api.client.get(f"/v1/users/{user_id}", headers=api.auth("admin"))
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == f'"{response.json()["version"]}"'
    return str(response.headers["etag"])


async def _patch(
    api: Api, user_id: uuid.UUID, change: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    """The change as the fixture's administrator makes it, naming the account's current ETag."""
    return await api.client.patch(
        f"/v1/users/{user_id}",
        json=change,
        headers=headers or {**api.auth("admin"), "If-Match": await _etag(api, user_id)},
    )


async def _user(app: Any, user_id: uuid.UUID) -> User:
    async with app.state.db.reader() as session:
        user = await session.get(User, user_id)
    assert user is not None
    return user


async def _audit(app: Any, **where: Any) -> list[AuditRecord]:
    async with app.state.db.reader() as session:
        stmt = select(AuditRecord).order_by(AuditRecord.seq)
        for column, value in where.items():
            stmt = stmt.where(getattr(AuditRecord, column) == value)
        return list((await session.scalars(stmt)).all())


def _session_ended(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "session_ended"


async def _sign_in(api: Api, username: str) -> dict[str, Any]:
    response = await api.client.post("/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return dict(response.json())


# ---- each change ----------------------------------------------------------------------------------


async def test_a_clerk_becomes_a_supervisor_and_signs_in_again(api: Api, app: Any) -> None:
    clerk_id = api.users[("clerk", api.bodies["center"])]
    old_token = api.tokens[("clerk", api.bodies["center"])]
    before = await _etag(api, clerk_id)
    changed = await _patch(api, clerk_id, {"role": "supervisor"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["role"] == "supervisor"
    assert changed.json()["organisation_id"] == str(api.bodies["center"])
    assert (
        changed.headers["etag"] == f'"{int(before.strip(chr(34))) + 1}"' == f'"{changed.json()["version"]}"'
    )
    # The token issued to the clerk is refused at once, on every call.
    _session_ended(await api.client.get("/v1/me", headers=_bearer(old_token)))
    _session_ended(await api.client.get("/v1/disputes", headers=_bearer(old_token)))
    # Signed in again, the same account is the supervisor.
    signed_in = await _sign_in(api, "test-clerk-center")
    assert signed_in["role"] == "supervisor"
    me = await api.client.get("/v1/me", headers=_bearer(signed_in["access_token"]))
    assert me.json()["id"] == str(clerk_id) and "supervise" in me.json()["permissions"]


async def test_a_mediator_moves_to_another_committee(api: Api, app: Any) -> None:
    old = await api.signed_in("body_mediator", "village")
    mediator_id = api.users[("body_mediator", api.bodies["village"])]
    changed = await _patch(api, mediator_id, {"organisation_id": str(api.bodies["town"])})
    assert changed.status_code == 200, changed.text
    assert changed.json()["organisation_id"] == str(api.bodies["town"])
    assert changed.json()["role"] == "body_mediator"
    _session_ended(await api.client.get("/v1/me", headers=old))
    signed_in = await _sign_in(api, "test-body_mediator-village")
    assert signed_in["organisation_id"] == str(api.bodies["town"])


async def test_a_new_display_name_keeps_the_sessions(api: Api, app: Any) -> None:
    clerk_id = api.users[("clerk", api.bodies["center"])]
    changed = await _patch(api, clerk_id, {"display_name": "  王小红  "})
    assert changed.status_code == 200, changed.text
    assert changed.json()["display_name"] == "王小红" and changed.json()["role"] == "clerk"
    me = await api.client.get("/v1/me", headers=api.auth("clerk"))
    assert me.status_code == 200 and me.json()["name"] == "王小红"


async def test_an_admin_may_leave_the_center_for_no_organisation(api: Api, app: Any) -> None:
    """`organisation_id: null` is a change (no organisation), not a field left out."""
    created = await api.client.post(
        "/v1/users",
        json={
            "username": "center-admin",
            "display_name": "中心管理员",
            "role": "admin",
            "organisation_id": str(api.bodies["center"]),
            "password": PASSWORD,
        },
        headers=api.auth("admin"),
    )
    assert created.status_code == 201, created.text
    user_id = uuid.UUID(created.json()["id"])
    kept = await _patch(api, user_id, {"display_name": "中心管理员甲"})
    assert kept.json()["organisation_id"] == str(api.bodies["center"])
    cleared = await _patch(api, user_id, {"organisation_id": None})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["organisation_id"] is None


async def test_a_change_to_what_the_account_already_is_changes_nothing(api: Api, app: Any) -> None:
    clerk_id = api.users[("clerk", api.bodies["center"])]
    before = await _etag(api, clerk_id)
    same = await _patch(api, clerk_id, {"role": "clerk", "organisation_id": str(api.bodies["center"])})
    assert same.status_code == 200 and same.headers["etag"] == before
    assert (await api.client.get("/v1/me", headers=api.auth("clerk"))).status_code == 200


# ---- checked as at creation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"role": "body_mediator"}, "organisation_id", "organisation_mismatch"),
        ({"organisation_id": None}, "organisation_id", "organisation_required"),
        ({"organisation_id": "court"}, "organisation_id", "organisation_mismatch"),
        ({"organisation_id": str(uuid.UUID(int=7))}, "organisation_id", "unknown"),
        ({"role": "court"}, "role", "not_staff"),
        ({"role": "system"}, "role", "not_staff"),
        ({"role": None}, "role", "null_not_allowed"),
        ({"display_name": None}, "display_name", "null_not_allowed"),
        ({"display_name": "   "}, "display_name", "string_too_short"),
        ({"username": "renamed"}, "username", "extra_forbidden"),
    ],
)
async def test_a_change_is_checked_as_a_new_account_is(
    api: Api, app: Any, change: dict[str, Any], field: str, code: str
) -> None:
    clerk_id = api.users[("clerk", api.bodies["center"])]
    if change.get("organisation_id") == "court":
        change = {"organisation_id": str(api.bodies["court"])}
    before = await _user(app, clerk_id)
    for language in ("zh", "en"):
        refused = await api.client.patch(
            f"/v1/users/{clerk_id}",
            json=change,
            headers={
                **api.auth("admin"),
                "If-Match": await _etag(api, clerk_id),
                "Accept-Language": language,
            },
        )
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.headers["content-language"] == language
        [error] = refused.json()["errors"]
        assert error["field"] == field and error["code"] == code, error
    after = await _user(app, clerk_id)
    assert (after.role, after.organisation_id, after.display_name, after.version) == (
        before.role,
        before.organisation_id,
        before.display_name,
        before.version,
    )
    assert (await api.client.get("/v1/me", headers=api.auth("clerk"))).status_code == 200


# ---- who may, and which version ----------------------------------------------------------------------


@pytest.mark.parametrize(("role", "org"), [("clerk", "center"), ("supervisor", "center"), ("auditor", None)])
async def test_only_an_administrator_changes_accounts(api: Api, app: Any, role: str, org: str | None) -> None:
    clerk_id = api.users[("clerk", api.bodies["center"])]
    etag = await _etag(api, clerk_id)
    refused = await _patch(api, clerk_id, {"role": "supervisor"}, {**api.auth(role), "If-Match": etag})
    assert refused.status_code == 403, refused.text
    assert refused.json()["type"] == "/problems/forbidden"
    assert (await _user(app, clerk_id)).role == "clerk"


async def test_a_body_administrator_changes_no_account_even_of_its_own_body(api: Api, app: Any) -> None:
    await api.signed_in("body_mediator", "village")
    mediator_id = api.users[("body_mediator", api.bodies["village"])]
    headers = {**await api.signed_in("body_admin", "village"), "If-Match": await _etag(api, mediator_id)}
    refused = await _patch(api, mediator_id, {"display_name": "改名"}, headers)
    assert refused.status_code == 403, refused.text
    assert (await api.client.get(f"/v1/users/{mediator_id}", headers=headers)).status_code == 403


async def test_a_change_names_the_version_it_was_made_against(api: Api, app: Any) -> None:
    clerk_id = api.users[("clerk", api.bodies["center"])]
    seen = await _etag(api, clerk_id)
    first = await _patch(api, clerk_id, {"display_name": "王小红"}, {**api.auth("admin"), "If-Match": seen})
    assert first.status_code == 200, first.text
    stale = await _patch(api, clerk_id, {"role": "supervisor"}, {**api.auth("admin"), "If-Match": seen})
    assert stale.status_code == 412, stale.text
    assert stale.json()["type"] == "/problems/stale-version"
    assert stale.json()["current_etag"] == first.headers["etag"]
    missing = await _patch(api, clerk_id, {"role": "supervisor"}, api.auth("admin"))
    assert missing.status_code == 428, missing.text
    assert (await _user(app, clerk_id)).role == "clerk"
    assert (await api.client.get("/v1/me", headers=api.auth("clerk"))).status_code == 200


async def test_a_deactivation_moves_the_version_on(api: Api, app: Any) -> None:
    """An edit prepared before the account was deactivated is refused, not made unseen."""
    clerk_id = api.users[("clerk", api.bodies["center"])]
    seen = await _etag(api, clerk_id)
    assert (
        await api.client.post(f"/v1/users/{clerk_id}/deactivate", headers=api.auth("admin"))
    ).status_code == 200
    stale = await _patch(api, clerk_id, {"role": "supervisor"}, {**api.auth("admin"), "If-Match": seen})
    assert stale.status_code == 412, stale.text


async def test_an_unknown_account_is_not_found(api: Api) -> None:
    missing = await api.client.patch(
        f"/v1/users/{uuid.uuid4()}",
        json={"display_name": "某人"},
        headers={**api.auth("admin"), "If-Match": '"1"'},
    )
    assert missing.status_code == 404, missing.text
    assert missing.json()["detail"] == "用户不存在"


# ---- the last administrator --------------------------------------------------------------------------


async def test_the_last_admin_cannot_demote_themselves(api: Api, app: Any) -> None:
    admin_id = api.users[("admin", None)]
    for language, words in (("zh", "最后一个"), ("en", "last active administrator")):
        refused = await _patch(
            api,
            admin_id,
            {"role": "auditor"},
            {**api.auth("admin"), "If-Match": await _etag(api, admin_id), "Accept-Language": language},
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["type"] == "/problems/conflict" and refused.json()["code"] == "last_admin"
        assert words in refused.json()["detail"]
    assert (await _user(app, admin_id)).role == "admin"
    # With another administrator, the first may step down; its own token is then refused.
    created = await api.client.post(
        "/v1/users",
        json={
            "username": "second-admin",
            "display_name": "第二管理员",
            "role": "admin",
            "password": PASSWORD,
        },
        headers=api.auth("admin"),
    )
    assert created.status_code == 201, created.text
    demoted = await _patch(api, admin_id, {"role": "auditor"})
    assert demoted.status_code == 200, demoted.text
    assert demoted.json()["role"] == "auditor"
    _session_ended(await api.client.get("/v1/me", headers=api.auth("admin")))


# ---- a mediator's cases ------------------------------------------------------------------------------


async def _mediator_on_a_case(api: Api) -> tuple[uuid.UUID, dict[str, Any], dict[str, str]]:
    """The village's mediator account, its holder on the village's roster under the same name and
    named the mediator of a case in mediation there."""
    mediator = await api.signed_in("body_mediator", "village")
    account_id = api.users[("body_mediator", api.bodies["village"])]
    name = (await _user(api.app, account_id)).display_name
    village_admin = await api.signed_in("body_admin", "village")
    rostered = await api.client.post(
        f"/v1/bodies/{api.bodies['village']}/mediators", json={"name": name}, headers=village_admin
    )
    assert rostered.status_code == 201, rostered.text
    case = await api.drive("mediating")
    named = await api.client.put(
        f"/v1/disputes/{case['id']}/mediator",
        json={"mediator_id": rostered.json()["id"]},
        headers={**mediator, "If-Match": f'"{case["version"]}"'},
    )
    assert named.status_code == 200, named.text
    return account_id, named.json(), village_admin


async def test_a_mediator_who_moves_leaves_the_bodys_cases_to_the_body(api: Api, app: Any) -> None:
    """A case names a roster entry, not an account: the move changes what the account may reach,
    and the body, which keeps the case and its roster, names another mediator for it."""
    account_id, case, village_admin = await _mediator_on_a_case(api)
    moved = await _patch(api, account_id, {"organisation_id": str(api.bodies["town"])})
    assert moved.status_code == 200, moved.text
    kept = await api.get(case)
    assert (kept["body_id"], kept["mediator_id"]) == (case["body_id"], case["mediator_id"])
    # Signed in again at the new body, the account no longer reaches the village's case.
    api.tokens.pop(("body_mediator", api.bodies["village"]), None)
    moved_in = await api.client.post(
        "/v1/auth/token", json={"username": (await _user(app, account_id)).username, "password": PASSWORD}
    )
    assert moved_in.status_code == 200, moved_in.text
    token = {"Authorization": f"Bearer {moved_in.json()['access_token']}"}
    assert (await api.client.get(f"/v1/disputes/{case['id']}", headers=token)).status_code == 404
    renamed = await api.client.put(
        f"/v1/disputes/{case['id']}/mediator",
        json={"mediator_id": str(api.mediators[api.bodies["village"]])},
        headers={**village_admin, "If-Match": f'"{kept["version"]}"'},
    )
    assert renamed.status_code == 200, renamed.text


async def test_a_mediator_with_cases_may_change_role_within_the_body(api: Api, app: Any) -> None:
    account_id, _case, _admin = await _mediator_on_a_case(api)
    promoted = await _patch(api, account_id, {"role": "body_admin"})
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["organisation_id"] == str(api.bodies["village"])


# ---- the audit trail ---------------------------------------------------------------------------------


async def test_a_change_is_recorded_with_what_changed(api: Api, app: Any) -> None:
    clerk_id = api.users[("clerk", api.bodies["center"])]
    assert (await _patch(api, clerk_id, {"role": "supervisor", "display_name": "王督办"})).status_code == 200
    assert (await _patch(api, clerk_id, {"display_name": "王督办员"})).status_code == 200
    refused = await _patch(api, clerk_id, {"role": "court"})
    assert refused.status_code == 422
    records = await _audit(app, action="update_user")
    assert [(r.outcome, r.status_code, r.object_type, r.object_id) for r in records] == [
        ("success", 200, "user", str(clerk_id)),
        ("success", 200, "user", str(clerk_id)),
        ("rejected", 422, "user", str(clerk_id)),
    ]
    assert records[0].actor_id == str(api.users[("admin", None)])
    assert records[0].details["changes"] == {
        "role": {"from": "clerk", "to": "supervisor"},
        "display_name": "changed",
    }
    assert records[0].details["sessions_ended"] == "all"
    assert records[1].details["changes"] == {"display_name": "changed"}
    # A name is personal data, which the append-only journal keeps none of.
    for record in records:
        assert not {"测试clerk", "王督办", "王督办员"} & set(
            re.split(r'[":,{} ]+', json.dumps(record.details, ensure_ascii=False))
        )


# ---- the command line --------------------------------------------------------------------------------


async def test_the_command_line_changes_an_account_as_the_api_does(
    api: Api, app: Any, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    clerk_id = api.users[("clerk", api.bodies["center"])]
    version = (await _user(app, clerk_id)).version
    args = _cli("users", "update", "test-clerk-center", "--role", "supervisor", "--display-name", "王督办")
    assert await identity_cli.run(settings, args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "role clerk -> supervisor" in out and "every session" in out
    user = await _user(app, clerk_id)
    assert (user.role, user.display_name, user.version) == ("supervisor", "王督办", version + 1)
    _session_ended(await api.client.get("/v1/me", headers=api.auth("clerk")))
    [record] = await _audit(app, action="users.update")
    assert record.object_id == str(clerk_id) and record.actor_id.startswith("cli:")
    assert record.details["changes"]["role"] == {"from": "clerk", "to": "supervisor"}
    # Checked as at creation.
    assert await identity_cli.run(settings, _cli("users", "update", str(clerk_id), "--body", "none")) == 2
    assert "须指定所属机构" in capsys.readouterr().err
    # The last administrator is not demoted from the command line either.
    admin = _cli("users", "update", "test-admin-none", "--role", "auditor")
    assert await identity_cli.run(settings, admin) == 2
    assert "最后一个" in capsys.readouterr().err
    assert (await _user(app, api.users[("admin", None)])).role == "admin"
