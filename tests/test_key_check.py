"""The personal-data keys are checked against every key id the stored values were encrypted under,
and the ID-number index like the phone index, before a command that works with personal data starts
and by `/readyz` (which also covers a database that did not answer when `serve` started); the relay
and the scheduler started so check them once it answers, and stop if they do not open the data.

After a rotation the values are under several keys: a party's phone corrected since is under the
new one, its ID number still under the old. Checking one phone number said the keys were right
while every case with an older ID number answered 500.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from mediation import migrate
from mediation.app import create_app
from mediation.clocks import scheduler
from mediation.core import secrets
from mediation.core.db import Base
from mediation.core.pii import PiiCipher, generate_key
from mediation.core.secrets import KeysRefused, KeyVerdict
from mediation.core.settings import Settings
from mediation.disputes.models import Party
from mediation.events import relay as relay_module
from mediation.events.relay import Relay
from tests.conftest import TEST_SECRETS
from tests.support import Api, person
from tests.test_configuration import mediation
from tests.test_relay_faults import DatabaseLine

OLD = f"old:{generate_key()}"
NEW = f"new:{generate_key()}"
INDEX_KEY = TEST_SECRETS["pii_index_key"]

# The cases are taken in under the old key only.
pytestmark = pytest.mark.parametrize("overrides", [{"pii_encryption_keys": OLD}])


@pytest.fixture(autouse=True)
async def _emptied_after(settings: Settings) -> AsyncIterator[None]:
    """The PostgreSQL database is shared by the tests of a run: values under these keys, left
    behind, would stop a later test's service with the usual ones."""
    yield
    if settings.database_url.startswith("postgresql"):
        app = create_app(settings)
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        async with app.state.db.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await app.state.db.dispose()


def _environment(settings: Settings, keys: str, index_key: str = INDEX_KEY) -> dict[str, str]:
    return {
        "MEDIATION_DATABASE_URL": settings.database_url,
        "MEDIATION_JWT_SECRET": str(settings.jwt_secret),
        "MEDIATION_PII_ENCRYPTION_KEYS": keys,
        "MEDIATION_PII_INDEX_KEY": index_key,
    }


async def _phones_corrected_after_the_rotation(api: Api) -> None:
    """Every party's phone written again under the new key (as a correction of it is, once the new
    key comes first); the ID numbers stay under the old one."""
    rotated = PiiCipher.from_secrets(f"{NEW},{OLD}", INDEX_KEY)
    db = api.app.state.db
    async with db.writer() as session, session.begin():
        for party_id, phone in (await session.execute(select(Party.id, Party.phone_masked))).all():
            await session.execute(
                update(Party)
                .where(Party.id == party_id)
                .values(
                    phone_enc=rotated.encrypt(
                        f"1390000{phone[-4:]}", table="parties", column="phone", row_id=str(party_id)
                    ),
                    phone_index=rotated.index(f"1390000{phone[-4:]}", kind="phone"),
                )
            )


async def test_a_key_still_used_by_stored_id_numbers_and_missing_from_the_configuration_is_refused(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    await api.intake()
    await _phones_corrected_after_the_rotation(api)

    code, out, err = await mediation(tmp_path, "clocks", **_environment(settings, NEW))
    assert code == 2, (out, err)
    assert "Traceback" not in err, err
    assert "lack the key id(s) old (parties.id_number)" in err, err
    assert "mediation pii status --verify" in err, err

    # The old key listed after the new one: both open what they wrote.
    code, out, err = await mediation(tmp_path, "clocks", **_environment(settings, f"{NEW},{OLD}"))
    assert code == 0, (out, err)


async def test_an_id_number_index_under_another_index_key_is_refused(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    # Parties whose phone was not given: their ID numbers' index is all there is to check.
    without_phones = [
        {**person(role, name, serial), "phone": None}
        for role, name, serial in (
            ("applicant", "张三", 1),
            ("respondent", "李四", 2),
        )
    ]
    await api.intake(parties=without_phones)
    async with api.app.state.db.reader() as session:
        assert await session.scalar(select(Party.id).where(Party.phone_enc.is_not(None))) is None

    code, out, err = await mediation(tmp_path, "clocks", **_environment(settings, OLD, generate_key()))
    assert code == 2, (out, err)
    assert "the index key configured" in err and "(parties.id_number)" in err, err

    code, out, err = await mediation(tmp_path, "clocks", **_environment(settings, OLD))
    assert code == 0, (out, err)


async def test_readyz_is_not_ready_until_the_keys_open_the_data(api: Api, settings: Settings) -> None:
    """A server started while its database did not answer checked no keys: `/readyz` checks them
    once the database answers, and stays not ready while they do not open the data."""
    await api.intake()
    await _phones_corrected_after_the_rotation(api)

    async def readiness(keys: str) -> httpx.Response:
        application: Any = create_app(settings.model_copy(update={"pii_encryption_keys": keys}))
        try:
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as client:
                first = await client.get("/readyz", headers={"Accept-Language": "en"})
                again = await client.get("/readyz", headers={"Accept-Language": "en"})
                assert (again.status_code, again.text) == (first.status_code, first.text)
                assert (await client.get("/healthz")).status_code == 200
                return first
        finally:
            await application.state.db.dispose()

    refused = await readiness(NEW)
    assert refused.status_code == 503, refused.text
    assert "personal-data keys" in refused.json()["detail"], refused.text
    assert (await readiness(f"{NEW},{OLD}")).json() == {"status": "ready"}


async def test_the_servers_own_relay_and_scheduler_do_not_work_with_keys_that_do_not_open_the_data(
    api: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay and scheduler running in the server check the keys before they touch the data
    (`serve`'s own check ran in the process that started the server's, or not at all when the
    database did not answer then), once per process with `/readyz`: refused, they do not start and
    the server answers not ready; with the right keys they work."""
    await api.intake()
    await _phones_corrected_after_the_rotation(api)
    checks = _counted(monkeypatch, secrets, "keys_problem")
    work = _counted(monkeypatch, relay_module, "sequence_pending")
    ticks = _counted(monkeypatch, scheduler, "tick")

    async def serving(keys: str) -> int:
        application: Any = create_app(
            settings.model_copy(
                update={
                    "pii_encryption_keys": keys,
                    "relay_in_app": True,
                    "clock_in_app": True,
                    "relay_poll_seconds": 0.01,
                    "clock_interval_seconds": 0.01,
                }
            )
        )
        try:
            async with application.router.lifespan_context(application):
                transport = httpx.ASGITransport(app=application)
                async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as client:
                    deadline = time.monotonic() + 10
                    while not application.state.key_verdict.checked:
                        assert time.monotonic() < deadline
                        await asyncio.sleep(0.01)
                    if application.state.key_verdict.problem is None:
                        while not (work and ticks):
                            assert time.monotonic() < deadline
                            await asyncio.sleep(0.01)
                    else:
                        await asyncio.sleep(0.3)  # time enough for a worker that went on to work
                    return (await client.get("/readyz")).status_code
        finally:
            await application.state.db.dispose()

    assert await serving(NEW) == 503
    assert (checks, work, ticks) == ([1], [], [])
    assert await serving(f"{NEW},{OLD}") == 200
    assert len(checks) == 2 and work and ticks


# ---- a worker started while its database did not answer ----------------------------------------


def _away_for(monkeypatch: pytest.MonkeyPatch, tries: int) -> list[int]:
    """The key check's first `tries` connections fail as with a database refusing them; counts the
    tries made."""
    real = migrate.schema_problem
    made = [0]

    async def flaky(connection: Any) -> str | None:
        made[0] += 1
        if made[0] <= tries:
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "Connection refused"))
        return await real(connection)

    monkeypatch.setattr(migrate, "schema_problem", flaky)
    return made


def _counted(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    """`module.name`, counting its calls: the worker's work."""
    real = getattr(module, name)
    calls: list[int] = []

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return await real(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


WORKERS = {
    # Each worker's loop, as its command runs it when the database did not answer at start.
    "relay": lambda app, keyed, cipher, stop: Relay(app.state.db, keyed, cipher, relay_id="relay-keys").run(
        stop, keys=KeyVerdict(keyed)
    ),
    "scheduler": lambda app, keyed, cipher, stop: scheduler.run(
        app.state.db, app.state.clock, keyed, cipher, stop, keys=KeyVerdict(keyed)
    ),
}
WORK = {"relay": (relay_module, "sequence_pending"), "scheduler": (scheduler, "tick")}


@pytest.mark.parametrize("worker", ["relay", "scheduler"])
async def test_a_worker_started_while_the_database_was_away_checks_the_keys_once_it_answers(
    api: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch, worker: str
) -> None:
    await api.intake()
    await _phones_corrected_after_the_rotation(api)
    work = _counted(monkeypatch, *WORK[worker])

    def started(keys: str) -> tuple[asyncio.Task[None], asyncio.Event, list[int]]:
        tries = _away_for(monkeypatch, 2)
        keyed = settings.model_copy(
            update={"pii_encryption_keys": keys, "relay_poll_seconds": 0.01, "clock_interval_seconds": 0.01}
        )
        stop = asyncio.Event()
        cipher = PiiCipher.from_secrets(keys, INDEX_KEY)
        return asyncio.create_task(WORKERS[worker](api.app, keyed, cipher, stop)), stop, tries

    # The old key missing: refused once the database answers, before any work.
    task, stop, tries = started(NEW)
    with pytest.raises(KeysRefused) as refused:
        await asyncio.wait_for(task, 10)
    assert tries[0] == 3 and work == []
    assert "lack the key id(s) old (parties.id_number)" in refused.value.problem

    # With it, the worker goes to work once the database answers.
    task, stop, tries = started(f"{NEW},{OLD}")
    try:
        deadline = time.monotonic() + 10
        while not work:
            assert not task.done(), task
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert tries[0] == 3


@pytest.mark.postgres_only
@pytest.mark.parametrize("command", ["relay", "scheduler"])
async def test_the_relay_and_the_scheduler_started_before_postgresql_answers_exit_2_if_the_keys_do_not_open_its_data(
    api: Api, settings: Settings, tmp_path: Path, command: str
) -> None:
    await api.intake()
    await _phones_corrected_after_the_rotation(api)
    target = make_url(settings.database_url)
    line = DatabaseLine(target.host or "127.0.0.1", target.port or 5432)
    await line.up()
    await line.down()  # its port, refusing connections until the line is up again
    through_line = settings.model_copy(
        update={"database_url": target.set(host="127.0.0.1", port=line.listen_port).render_as_string(False)}
    )

    async def started(keys: str) -> tuple[asyncio.subprocess.Process, list[str]]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("MEDIATION_")}
        environment.update(_environment(through_line, keys))
        environment.update(
            {"MEDIATION_RELAY_POLL_SECONDS": "0.05", "MEDIATION_CLOCK_INTERVAL_SECONDS": "0.05"}
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mediation",
            command,
            env=environment,
            cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        said = [(await asyncio.wait_for(process.stderr.readline(), 60)).decode()]
        # Started without the check (the database did not answer), and tried it once since.
        while "personal-data key check failed" not in said[-1]:
            assert said[-1], said
            said.append((await asyncio.wait_for(process.stderr.readline(), 60)).decode())
        await line.up()
        return process, said

    process, said = await started(NEW)
    try:
        rest = (await asyncio.wait_for(process.communicate(), 60))[1].decode()
        assert process.returncode == 2, (said, rest)
        assert any("cannot connect to the database" in line for line in said), said
        refusal = rest.rstrip().splitlines()[-1]
        assert refusal.startswith("error: the personal-data keys configured"), rest
        assert "lack the key id(s) old (parties.id_number)" in refusal and "KeysRefused" not in rest, rest
    finally:
        await line.down()

    process, said = await started(f"{NEW},{OLD}")
    try:
        assert process.stderr is not None
        while "personal-data key check works again" not in said[-1]:
            assert said[-1], said
            said.append((await asyncio.wait_for(process.stderr.readline(), 60)).decode())
        process.terminate()
        rest = (await asyncio.wait_for(process.communicate(), 60))[1].decode()
        assert process.returncode == 0, (said, rest)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await line.down()
