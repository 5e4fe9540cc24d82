"""`mediation seed-demo` (run by `make run`) loads the demo county into an empty database only: the
demo's accounts and API keys are public, so a database with accounts, organisations or keys of its
own (a real one, before its first case) is refused, while `make run` again on the demo still works."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from mediation import cli
from mediation.bodies.models import Body
from mediation.core.settings import Settings
from mediation.disputes.models import Dispute
from mediation.identity.models import User
from tests.support import Api


@pytest.fixture
def seed_demo(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(cli, "get_settings", lambda: settings)

    async def run(*argv: str) -> int:
        return await asyncio.to_thread(cli.main, ["seed-demo", *argv])

    return run


async def _first_admin(username: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """The center's first administrator, made as the README says (`mediation users create`)."""
    monkeypatch.setenv("FIRST_ADMIN_PASSWORD", "the center's own password")
    argv = ["users", "create", "--username", username, "--name", "管理员", "--role", "admin"]
    return await asyncio.to_thread(cli.main, [*argv, "--password-env", "FIRST_ADMIN_PASSWORD"])


async def _counts(app: Any) -> tuple[int, int, int]:
    async with app.state.db.reader() as session:
        return (
            await session.scalar(select(func.count()).select_from(User)) or 0,
            await session.scalar(select(func.count()).select_from(Body)) or 0,
            await session.scalar(select(func.count()).select_from(Dispute)) or 0,
        )


async def test_the_demo_is_refused_beside_an_administrator_made_on_the_command_line(
    app: Any,
    seed_demo: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await _first_admin("li.admin", monkeypatch) == 0
    capsys.readouterr()
    assert await seed_demo() == 2
    out, err = capsys.readouterr()
    assert "refused" in err and "1 accounts" in err
    assert "demo-2026" not in out + err
    assert await _counts(app) == (1, 0, 0)


async def test_an_admin_of_the_demos_name_with_a_password_of_its_own_is_not_the_demos(
    app: Any, seed_demo: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _first_admin("admin", monkeypatch) == 0
    assert await seed_demo() == 2
    assert await _counts(app) == (1, 0, 0)


async def test_the_demo_is_refused_beside_organisations_and_keys_of_the_databases_own(
    api: Api, app: Any, seed_demo: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await _counts(app)
    assert await seed_demo() == 2
    err = capsys.readouterr().err
    assert "accounts" in err and "organisations" in err and "API keys" in err
    assert await _counts(app) == before
    # Asked for in so many words, it is loaded all the same.
    assert await seed_demo("--force") == 0
    assert (await _counts(app))[2] > 0


async def test_make_run_again_on_the_demo_database_still_works(
    app: Any, seed_demo: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await seed_demo() == 0
    assert "demo data loaded" in capsys.readouterr().out
    loaded = await _counts(app)
    assert await seed_demo() == 0
    out = capsys.readouterr().out
    assert "demo data skipped" in out and "admin-demo-2026" in out
    assert await _counts(app) == loaded
