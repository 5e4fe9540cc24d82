"""The `mediation` command on a database it cannot work on: refused with what to do, exit 2, no
traceback, nothing left behind."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import TEST_SECRETS
from tests.support import Api
from tests.test_migrations import empty_database  # noqa: F401  (a fixture: a database never migrated)

# The commands that read the database's tables without changing them.
READING = [
    ("keys", "list"),
    ("users", "list"),
    ("audit", "verify"),
    ("documents", "verify", "--quick"),
    ("pii", "status"),
]


async def mediation(database_url: str, *args: str, **env: str) -> tuple[int, str, str]:
    """The real `mediation` command, in a process of its own."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MEDIATION_")}
    environment.update(
        MEDIATION_DATABASE_URL=database_url,
        MEDIATION_JWT_SECRET=TEST_SECRETS["jwt_secret"],
        MEDIATION_PII_ENCRYPTION_KEYS=TEST_SECRETS["pii_encryption_keys"],
        MEDIATION_PII_INDEX_KEY=TEST_SECRETS["pii_index_key"],
    )
    environment.update(env)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mediation",
        *args,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def refused(result: tuple[int, str, str], *said: str) -> None:
    code, out, err = result
    assert code == 2, (code, out, err)
    assert "Traceback" not in err, err
    assert out == "", out
    assert err.startswith("error: "), err
    assert err.strip().count("\n") == 0, err
    for words in said:
        assert words in err, err


async def test_a_command_on_a_database_never_migrated_says_to_migrate_it_first(
    empty_database: str,  # noqa: F811
) -> None:
    for command in READING:
        refused(await mediation(empty_database, *command), "run `mediation migrate` first")
    if empty_database.startswith("sqlite"):
        # The command did not leave an empty database behind where there was none.
        assert not await asyncio.to_thread(Path(empty_database.split("///", 1)[1]).exists)
    # Once migrated, the same command works.
    code, _, err = await mediation(empty_database, "migrate")
    assert code == 0, err
    code, out, err = await mediation(empty_database, "audit", "verify")
    assert code == 0, err
    assert "audit chain intact: 0 records" in out


async def test_a_command_on_a_database_behind_this_release_is_refused(api: Api) -> None:
    app: Any = api.app
    db = app.state.db
    async with db.engine.begin() as conn:
        head = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
        await conn.execute(text("UPDATE alembic_version SET version_num = '0029'"))
    try:
        for command in (*READING, ("clocks",), ("seed-demo",)):
            refused(
                await mediation(app.state.settings.database_url, *command),
                f"the database schema is at revision 0029, this release needs {head}",
                "run `mediation migrate` first",
            )
        # A revision this release does not know was made by a newer one: it is worked on as it is
        # (an older release keeps running while a newer one rolls out).
        async with db.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        code, _, err = await mediation(app.state.settings.database_url, "audit", "verify")
        assert code == 0, err
    finally:
        async with db.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})


@pytest.mark.parametrize("command", [("migrate",), ("keys", "list"), ("audit", "verify")])
async def test_a_database_that_cannot_be_reached_is_named_without_its_password(
    command: tuple[str, ...],
) -> None:
    url = "postgresql+asyncpg://mediation:s3cret-pass@127.0.0.1:1/mediation"
    result = await mediation(url, *command)
    refused(
        result, "cannot connect to the database at postgresql+asyncpg://mediation:***@127.0.0.1:1/mediation"
    )
    assert "s3cret-pass" not in result[2]


async def test_a_sqlite_database_in_a_folder_that_is_not_there_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'mediation.db'}"
    refused(await mediation(url, "migrate"), f"there is no folder {tmp_path / 'missing'}")
    refused(await mediation(url, "keys", "list"), f"there is no folder {tmp_path / 'missing'}")
    assert not (tmp_path / "missing").exists()


async def test_a_refusal_is_told_in_the_configured_language(api: Api) -> None:
    """The account and key commands printed the service's refusals in Chinese whatever
    `MEDIATION_DEFAULT_LANGUAGE` said: an operator who set `en` could not read why."""
    url = api.app.state.settings.database_url  # type: ignore[attr-defined]
    refused(
        await mediation(url, "users", "activate", "nobody", MEDIATION_DEFAULT_LANGUAGE="en"), "No such user"
    )
    refused(
        await mediation(url, "users", "activate", "nobody", MEDIATION_DEFAULT_LANGUAGE="zh"), "用户不存在"
    )
    code, _, err = await mediation(
        url,
        "users",
        "create",
        "--username",
        "user1",
        "--name",
        "N",
        "--role",
        "clerk",
        "--password-env",
        "P",
        MEDIATION_DEFAULT_LANGUAGE="en",
        P="short",
    )
    assert code == 2 and "12" in err and "密码" not in err, err


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (("--port", "99999"), "argument --port: 99999 is not a port (1 to 65535)"),
        (("--port", "0"), "argument --port: 0 is not a port (1 to 65535)"),
        (("--port", "-1"), "argument --port: -1 is not a port (1 to 65535)"),
        (("--workers", "0"), "argument --workers: 0 is not a number of workers (at least 1)"),
    ],
    ids=["port_too_high", "port_zero", "port_negative", "no_workers"],
)
async def test_serve_refuses_a_port_or_a_number_of_workers_it_cannot_use(
    arguments: tuple[str, ...], said: str, tmp_path: Path
) -> None:
    """`serve --port 99999` said it listened on port 99999 while the socket took 34463 (the
    number modulo 65536); `--workers 0` served with one worker."""
    code, out, err = await mediation(f"sqlite+aiosqlite:///{tmp_path / 'none.db'}", "serve", *arguments)
    assert code == 2, (out, err)
    assert said in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        (
            "MEDIATION_PII_ENCRYPTION_KEYS",
            "k1:abc",
            "MEDIATION_PII_ENCRYPTION_KEYS: PII encryption key 'k1' must decode",
        ),
        (
            "MEDIATION_PII_ENCRYPTION_KEYS",
            "no-id-here",
            "MEDIATION_PII_ENCRYPTION_KEYS: PII encryption key #1 must look",
        ),
        ("MEDIATION_PII_INDEX_KEY", "short", "MEDIATION_PII_INDEX_KEY: PII index key"),
    ],
    ids=["encryption_key_short", "encryption_key_unnamed", "index_key_short"],
)
@pytest.mark.parametrize("command", [("pii", "status"), ("clocks",), ("serve", "--port", "1")])
async def test_a_malformed_personal_data_key_is_a_configuration_error_naming_it(
    command: tuple[str, ...], variable: str, value: str, said: str, tmp_path: Path
) -> None:
    """The personal-data keys were checked only when the cipher was first built: a malformed one
    ended `pii status`, `clocks` and the rest in a traceback, and `serve` at start, where the JWT
    secret, the seal keys and the metrics token are configuration errors naming the variable."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'none.db'}"
    code, out, err = await mediation(url, *command, **{variable: value})
    assert code == 2, (out, err)
    assert "Traceback" not in err, err
    assert err.startswith("configuration error:"), err
    assert said in err, err
    assert value not in err.replace(said, "")
