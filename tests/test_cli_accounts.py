"""`mediation users create` makes the accounts the API would: the same username rules, the name
trimmed, so a padded name neither makes an account nobody can sign in to nor stands in for another."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from sqlalchemy import func, select

from mediation.core.settings import Settings
from mediation.identity import cli as identity_cli
from mediation.identity.models import User
from tests.support import Api

PASSWORD = "a long enough password"


def _cli_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    identity_cli.add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def _create(username: str, name: str = "李管理员", role: str = "admin") -> argparse.Namespace:
    return _cli_args(
        "users", "create", "--username", username, "--name", name, "--role", role, "--password-env", "NEW_PW"
    )


async def _usernames(app: Any) -> list[str]:
    async with app.state.db.reader() as session:
        return list((await session.scalars(select(User.username).order_by(User.username))).all())


@pytest.fixture
def new_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEW_PW", PASSWORD)


async def test_a_padded_username_on_the_command_line_is_trimmed_as_at_sign_in(
    api: Api, app: Any, settings: Settings, new_password: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await identity_cli.run(settings, _create(" li.admin ")) == 0, capsys.readouterr().err
    assert "li.admin" in await _usernames(app) and " li.admin " not in await _usernames(app)
    signed_in = await api.client.post("/v1/auth/token", json={"username": "li.admin", "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text


async def test_a_padded_username_cannot_make_a_second_account_of_the_same_name(
    api: Api, app: Any, settings: Settings, new_password: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await identity_cli.run(settings, _create("li.admin")) == 0
    capsys.readouterr()
    assert await identity_cli.run(settings, _create(" li.admin ")) == 2
    assert "已存在" in capsys.readouterr().err
    async with app.state.db.reader() as session:
        admins = await session.scalar(select(func.count()).select_from(User).where(User.role == "admin"))
    # The fixture's administrator and li.admin: no unreachable third one counting as active.
    assert admins == 2


async def test_the_last_real_administrator_cannot_be_deactivated_behind_a_padded_twin(
    app: Any, settings: Settings, new_password: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await identity_cli.run(settings, _create("li.admin")) == 0
    assert await identity_cli.run(settings, _create(" li.admin ")) == 2
    capsys.readouterr()
    assert await identity_cli.run(settings, _cli_args("users", "deactivate", " li.admin ")) == 2
    assert "管理员" in capsys.readouterr().err
    async with app.state.db.reader() as session:
        active = await session.scalar(
            select(func.count()).select_from(User).where(User.role == "admin", User.active.is_(True))
        )
    assert active == 1


@pytest.mark.parametrize(
    ("username", "name", "told"),
    [
        ("", "", "3 至 64"),
        ("   ", "李管理员", "3 至 64"),
        ("ab", "李管理员", "3 至 64"),
        ("li admin", "李管理员", "只能包含"),
        ("李管理员", "李管理员", "只能包含"),
        ("li.admin", "   ", "显示名"),
    ],
)
async def test_a_username_the_api_would_refuse_is_refused_on_the_command_line(
    app: Any,
    settings: Settings,
    new_password: None,
    capsys: pytest.CaptureFixture[str],
    username: str,
    name: str,
    told: str,
) -> None:
    assert await identity_cli.run(settings, _create(username, name)) == 2
    err = capsys.readouterr().err
    assert told in err and "Traceback" not in err
    assert await _usernames(app) == []


async def test_an_unset_password_variable_is_named(
    app: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NOPE", raising=False)
    args = _cli_args(
        "users",
        "create",
        "--username",
        "li.admin",
        "--name",
        "李",
        "--role",
        "admin",
        "--password-env",
        "NOPE",
    )
    assert await identity_cli.run(settings, args) == 2
    err = capsys.readouterr().err
    assert "NOPE" in err and "12" not in err
    assert await _usernames(app) == []
