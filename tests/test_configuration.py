"""Configuration the service cannot run with is refused at start (`configuration error: ...`, exit
2), not found out by the first request: secrets missing or half given, misspelt variables, an
unknown time zone, a database driver it does not speak, an unusable retry schedule or clock rule
file."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from mediation.core import secrets as secrets_module
from mediation.core.secrets import resolve_secrets
from mediation.core.settings import ConfigurationError, Settings, unknown_variables
from tests.conftest import TEST_SECRETS

SECRET_VARIABLES = {
    "MEDIATION_JWT_SECRET": TEST_SECRETS["jwt_secret"],
    "MEDIATION_PII_ENCRYPTION_KEYS": TEST_SECRETS["pii_encryption_keys"],
    "MEDIATION_PII_INDEX_KEY": TEST_SECRETS["pii_index_key"],
}
POSTGRES = "postgresql+asyncpg://mediation:hunter2hunter2@127.0.0.1:5432/mediation_nowhere"


async def mediation(cwd: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """The real `mediation` command in `cwd`, with only the MEDIATION_* variables given."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MEDIATION_")}
    environment.update(env)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mediation",
        *args,
        env=environment,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def left_in(folder: Path) -> list[Path]:
    """What a refused command left behind (nothing: no database, no secrets file)."""
    return list(folder.iterdir())


def configuration_error(result: tuple[int, str, str], *said: str) -> str:
    code, out, err = result
    assert code == 2, (code, out, err)
    assert "Traceback" not in err, err
    assert err.startswith("configuration error:"), err
    for words in said:
        assert words in err, err
    return err


@pytest.fixture
def elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Settings read in an empty folder, without the checkout's `.env` or the run's variables."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("MEDIATION_"):
            monkeypatch.delenv(name)
    secrets_module._announced.clear()
    return tmp_path


# ---- secrets ------------------------------------------------------------------------------------


async def test_postgresql_without_secrets_refuses_to_start(tmp_path: Path) -> None:
    """On PostgreSQL, development secrets were generated into a file the container lost: the next
    container made new keys and every case's personal data was unreadable while /readyz said ready."""
    for command in (("migrate",), ("serve", "--port", "1")):
        err = configuration_error(
            await mediation(tmp_path, *command, MEDIATION_DATABASE_URL=POSTGRES),
            "MEDIATION_JWT_SECRET",
            "MEDIATION_PII_ENCRYPTION_KEYS",
            "MEDIATION_PII_INDEX_KEY",
            "MEDIATION_SECRETS_FILE",
        )
        assert "hunter2" not in err
    assert left_in(tmp_path) == []


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_some_secrets_given_and_others_not_is_refused(tmp_path: Path, database: str) -> None:
    """The index key forgotten, it came silently from a stale secrets file: nobody was found by phone
    or ID number."""
    url = POSTGRES if database == "postgresql" else f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    given = {k: v for k, v in SECRET_VARIABLES.items() if k != "MEDIATION_PII_INDEX_KEY"}
    err = configuration_error(
        await mediation(tmp_path, "migrate", MEDIATION_DATABASE_URL=url, **given), "MEDIATION_PII_INDEX_KEY"
    )
    assert "MEDIATION_JWT_SECRET" not in err.split("not set")[0]
    assert left_in(tmp_path) == []


def test_a_secrets_file_named_explicitly_serves_postgresql_and_is_announced_at_every_start(
    elsewhere: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kept = elsewhere / "volume" / "secrets.json"
    settings = Settings(database_url=POSTGRES, secrets_file=kept)
    caplog.set_level(logging.WARNING, logger="mediation.core.secrets")
    first = resolve_secrets(settings)
    assert kept.stat().st_mode & 0o777 == 0o600
    secrets_module._announced.clear()  # another start
    caplog.clear()
    assert resolve_secrets(settings) == first
    assert [r.getMessage() for r in caplog.records if str(kept) in r.getMessage()], caplog.records


def test_sqlite_with_nothing_set_keeps_its_secrets_beside_the_database(
    elsewhere: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`make run` on a fresh checkout: no variable set, the secrets generated once, read after."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{elsewhere / 'data' / 'm.db'}")
    (elsewhere / "data").mkdir()  # the database's folder: the command is refused without it
    caplog.set_level(logging.WARNING, logger="mediation.core.secrets")
    first = resolve_secrets(settings)
    secrets_module._announced.clear()
    caplog.clear()
    assert resolve_secrets(settings) == first
    assert (elsewhere / "data" / "mediation.secrets.json").exists()
    assert any("data/mediation.secrets.json" in r.getMessage() for r in caplog.records)


def test_all_secrets_in_the_environment_need_no_file(elsewhere: Path) -> None:
    settings = Settings(database_url=POSTGRES, **TEST_SECRETS)
    assert resolve_secrets(settings).pii_index_key == TEST_SECRETS["pii_index_key"]
    assert list(elsewhere.iterdir()) == []


def test_a_secrets_file_not_holding_the_secrets_is_a_configuration_error(elsewhere: Path) -> None:
    (elsewhere / "s.json").write_text('{"jwt_secret": "x"}')
    with pytest.raises(ConfigurationError, match="does not hold"):
        resolve_secrets(Settings(database_url=POSTGRES, secrets_file=elsewhere / "s.json"))


# ---- misspelt variables ---------------------------------------------------------------------------


async def test_a_misspelt_variable_is_refused_with_the_name_meant(tmp_path: Path) -> None:
    """MEDIATION_DATABASE_URI ran the service on a fresh ./mediation.db, exit 0, no warning."""
    configuration_error(
        await mediation(tmp_path, "migrate", MEDIATION_DATABASE_URI=POSTGRES, **SECRET_VARIABLES),
        "MEDIATION_DATABASE_URI is not a setting (did you mean MEDIATION_DATABASE_URL?)",
    )
    assert left_in(tmp_path) == []


def test_the_variables_kubernetes_sets_for_a_service_named_mediation_are_not_refused(elsewhere: Path) -> None:
    """A Service named `mediation` (or `mediation-db`) puts these into every pod of the namespace;
    refusing them would stop the pod from ever starting."""
    environ = {
        "MEDIATION_SERVICE_HOST": "10.0.0.7",
        "MEDIATION_SERVICE_PORT": "8000",
        "MEDIATION_SERVICE_PORT_HTTP": "8000",
        "MEDIATION_PORT": "tcp://10.0.0.7:8000",
        "MEDIATION_PORT_8000_TCP": "tcp://10.0.0.7:8000",
        "MEDIATION_PORT_8000_TCP_PROTO": "tcp",
        "MEDIATION_PORT_8000_TCP_PORT": "8000",
        "MEDIATION_PORT_8000_TCP_ADDR": "10.0.0.7",
        "MEDIATION_DB_SERVICE_HOST": "10.0.0.8",
        "MEDIATION_DB_PORT_5432_TCP_ADDR": "10.0.0.8",
    }
    assert unknown_variables(environ) == []
    assert unknown_variables({**environ, "MEDIATION_DATABASE_URI": "x"}) == [
        "MEDIATION_DATABASE_URI is not a setting (did you mean MEDIATION_DATABASE_URL?)"
    ]


def test_variables_read_outside_the_settings_are_not_refused(elsewhere: Path) -> None:
    environ = {
        "MEDIATION_MIGRATIONS_DIR": "/app/migrations",
        "MEDIATION_API_KEY": "k",
        "MEDIATION_BASE_URL": "http://x",
        "MEDIATION_TEST_PG_DSN": "postgresql://",
        "MEDIATION_BENCH_DSN": "postgresql://",
        "MEDIATION_RELAY_FAULT": "after_claim",
        "MEDIATION_SECRETS_FILE": "/s.json",
        "mediation_timezone": "Asia/Shanghai",
        "PATH": "/bin",
    }
    assert unknown_variables(environ) == []
    (elsewhere / ".env").write_text("MEDIATION_PII_INDEX_KEYS=x\n")
    assert unknown_variables(environ) == [
        "MEDIATION_PII_INDEX_KEYS is not a setting (did you mean MEDIATION_PII_INDEX_KEY?)"
    ]


async def test_the_server_logs_its_database_with_the_password_hidden(
    database_url: str, tmp_path: Path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MEDIATION_")}
    environment.update(SECRET_VARIABLES, MEDIATION_DATABASE_URL=database_url)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mediation",
        "serve",
        "--port",
        str(port),
        env=environment,
        cwd=tmp_path,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert process.stderr is not None
    lines = []
    try:
        async with asyncio.timeout(60):
            while not any("Application startup complete" in line for line in lines):
                line = (await process.stderr.readline()).decode()
                assert line, lines
                lines.append(line)
    finally:
        process.terminate()
        await process.wait()
    said = [line for line in lines if "database:" in line]
    assert said, lines
    where = database_url.split("://", 1)[1].split("@")[-1]
    assert where in said[0], said
    password = database_url.split("://", 1)[1].split("@")[0].partition(":")[2]
    if password:
        assert password not in said[0]


# ---- settings every request depends on ----------------------------------------------------------


async def test_an_unknown_time_zone_is_a_configuration_error(tmp_path: Path) -> None:
    configuration_error(
        await mediation(
            tmp_path,
            "migrate",
            MEDIATION_TIMEZONE="Mars/Olympus",
            MEDIATION_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'm.db'}",
            **SECRET_VARIABLES,
        ),
        "MEDIATION_TIMEZONE: 'Mars/Olympus' is not an IANA time zone",
    )


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "POSTGRES"])
def test_a_plain_postgresql_url_means_asyncpg(elsewhere: Path, scheme: str) -> None:
    settings = Settings(database_url=f"{scheme}://u:p@db.example:5432/mediation")
    assert settings.database_url == "postgresql+asyncpg://u:p@db.example:5432/mediation"


@pytest.mark.parametrize("mode", ["require", "verify-full", "disable"])
def test_a_providers_sslmode_is_read_as_asyncpgs_ssl(elsewhere: Path, mode: str) -> None:
    """asyncpg takes no `sslmode`: left in the URL, it failed at the first connection."""
    settings = Settings(database_url=f"postgres://u:p@db.example:5432/mediation?sslmode={mode}")
    assert settings.database_url == f"postgresql+asyncpg://u:p@db.example:5432/mediation?ssl={mode}"


def test_an_unknown_sslmode_is_refused(elsewhere: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(database_url="postgresql://u:p@h/d?sslmode=always")
    assert "sslmode must be one of" in str(refused.value)


async def test_a_secrets_file_is_not_made_in_a_folder_that_does_not_exist(tmp_path: Path) -> None:
    """A mistyped database path leaves no key material behind: the folder is not made for it."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'typo' / 'm.db'}"
    configuration_error(
        await mediation(tmp_path, "migrate", MEDIATION_DATABASE_URL=database), "there is no folder"
    )
    assert left_in(tmp_path) == []


@pytest.mark.parametrize(
    "url", ["postgresql+psycopg://u:p@h/d", "mysql://u:p@h/d", "sqlite:///m.db", "nonsense"]
)
def test_a_database_driver_the_service_does_not_speak_is_refused(elsewhere: Path, url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(database_url=url)
    assert "database_url" in str(refused.value)
    assert "u:p" not in str(refused.value).replace(url, "")


async def test_a_database_driver_refusal_is_a_configuration_error(tmp_path: Path) -> None:
    configuration_error(
        await mediation(
            tmp_path, "migrate", MEDIATION_DATABASE_URL="postgresql+psycopg://u:p@h/d", **SECRET_VARIABLES
        ),
        "MEDIATION_DATABASE_URL:",
        "postgresql+asyncpg://",
    )


@pytest.mark.parametrize(
    ("given", "read"),
    [("5,300", [5.0, 300.0]), ("[5, 300]", [5.0, 300.0]), (" 60 ", [60.0]), ("0,0", [0.0, 0.0])],
)
def test_the_retry_schedule_is_a_json_list_or_comma_separated(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, given: str, read: list[float]
) -> None:
    monkeypatch.setenv("MEDIATION_WEBHOOK_RETRY_SCHEDULE_SECONDS", given)
    assert Settings().webhook_retry_schedule_seconds == read


@pytest.mark.parametrize("given", ["", "[]", "5,-300", "[-1]", "5,,300", "soon"])
def test_an_empty_or_negative_retry_schedule_is_refused(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    monkeypatch.setenv("MEDIATION_WEBHOOK_RETRY_SCHEDULE_SECONDS", given)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "webhook_retry_schedule_seconds" in str(refused.value)


async def test_a_missing_clock_rules_file_is_a_configuration_error(tmp_path: Path) -> None:
    """/readyz said ready and every intake failed 500 reading it."""
    configuration_error(
        await mediation(
            tmp_path,
            "migrate",
            MEDIATION_CLOCK_RULES_FILE=str(tmp_path / "rules.json"),
            MEDIATION_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'm.db'}",
            **SECRET_VARIABLES,
        ),
        "MEDIATION_CLOCK_RULES_FILE: cannot read",
    )


def test_a_malformed_clock_rules_file_is_refused(elsewhere: Path) -> None:
    (elsewhere / "rules.json").write_text('{"not": "rules"}')
    with pytest.raises(ValidationError, match="is not a clock rule file"):
        Settings(clock_rules_file=elsewhere / "rules.json")
