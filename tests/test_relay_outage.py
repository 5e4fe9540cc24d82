"""While the database is away the relay and the scheduler try again after a pause that grows, log
the first failure with its traceback and each further one in a line, and say once when they work
again: a database restart of a few seconds no longer fills the log with a traceback a second."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from mediation.clocks import scheduler as scheduler_module
from mediation.core.db import Database
from mediation.events import relay as relay_module
from mediation.events.relay import Relay
from tests.receiver import Receiver
from tests.support import Api
from tests.test_relay_faults import DatabaseLine, subscribe

POLL = 0.05
AWAY = 1.5  # seconds: thirty polls


def _away_until(deadline: list[float], real: Callable[..., Any]) -> Callable[..., Any]:
    """`real`, but failing as a database that refuses connections does until `deadline[0]`."""

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if time.monotonic() < deadline[0]:
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError(111, "Connection refused"))
        return await real(*args, **kwargs)

    return flaky


async def _until(records: list[logging.LogRecord], said: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not any(said in r.getMessage() for r in records):
        assert time.monotonic() < deadline, [r.getMessage() for r in records]
        await asyncio.sleep(0.02)


def _told(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger]


def _assert_told_once_then_in_lines(records: list[logging.LogRecord]) -> None:
    tracebacks = [r for r in records if r.exc_info]
    failures = [r for r in records if "failed" in r.getMessage()]
    assert len(tracebacks) == 1, [r.getMessage() for r in records]
    # 1.5 s away at pauses of 0.05, 0.1, 0.2, 0.4, 0.8 s: five or six tries, not thirty.
    assert 2 <= len(failures) <= 7, [r.getMessage() for r in failures]
    assert sum("works again" in r.getMessage() for r in records) == 1


async def test_the_relay_backs_off_and_logs_one_line_per_try_while_the_database_is_away(
    api: Api, app: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = app.state.settings.model_copy(update={"relay_poll_seconds": POLL})
    relay = Relay(app.state.db, settings, app.state.identity.cipher, relay_id="relay-away")
    deadline = [time.monotonic() + AWAY]
    monkeypatch.setattr(
        relay_module, "sequence_pending", _away_until(deadline, relay_module.sequence_pending)
    )
    stop = asyncio.Event()
    receiver = Receiver()
    with caplog.at_level(logging.INFO, logger="mediation.events.relay"):
        task = asyncio.create_task(relay.run(stop))
        try:
            await _until(caplog.records, "works again")
            # Back at its usual pace: a new case's event reaches the receiver at once.
            await subscribe(api, receiver)
            await api.intake()
            await receiver.wait_for(lambda r: len(r.ok()) == 1, seconds=5)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await receiver.stop()
    _assert_told_once_then_in_lines(_told(caplog, "mediation.events.relay"))


@pytest.mark.postgres_only
async def test_the_relay_cut_off_from_postgresql_backs_off_and_resumes_when_it_is_back(
    api: Api, app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = app.state.settings
    target = make_url(settings.database_url)
    line = DatabaseLine(target.host or "127.0.0.1", target.port or 5432)
    await line.up()
    through_line = settings.model_copy(
        update={
            "database_url": target.set(host="127.0.0.1", port=line.listen_port).render_as_string(False),
            "relay_poll_seconds": POLL,
        }
    )
    db = Database(through_line)
    relay = Relay(db, through_line, app.state.identity.cipher, relay_id="relay-cut-off")
    stop = asyncio.Event()
    receiver = Receiver()
    with caplog.at_level(logging.INFO, logger="mediation.events.relay"):
        task = asyncio.create_task(relay.run(stop))
        try:
            await asyncio.sleep(0.3)  # running, its pool's connections open through the line
            await line.down()
            await asyncio.sleep(AWAY)
            await line.up()
            await _until(caplog.records, "works again")
            await subscribe(api, receiver)
            await api.intake()
            await receiver.wait_for(lambda r: len(r.ok()) == 1, seconds=5)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await receiver.stop()
            await relay.client.aclose()
            await db.dispose()
            await line.down()
    _assert_told_once_then_in_lines(_told(caplog, "mediation.events.relay"))


async def test_the_scheduler_backs_off_and_logs_one_line_per_try_while_the_database_is_away(
    app: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = app.state.settings.model_copy(update={"clock_interval_seconds": POLL})
    deadline = [time.monotonic() + AWAY]
    monkeypatch.setattr(scheduler_module, "tick", _away_until(deadline, scheduler_module.tick))
    stop = asyncio.Event()
    state = app.state
    with caplog.at_level(logging.INFO, logger="mediation.clocks.scheduler"):
        task = asyncio.create_task(
            scheduler_module.run(state.db, state.clock, settings, state.identity.cipher, stop)
        )
        try:
            await _until(caplog.records, "works again")
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
    _assert_told_once_then_in_lines(_told(caplog, "mediation.clocks.scheduler"))
