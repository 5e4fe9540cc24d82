"""A form sent twice a moment apart (a double click on 提交, a browser sending it again) on a busy
day: the second submission carries the first's one-time form key and is recognised at once, before
it queues for a turn to write. It waits for the first without holding a turn or a connection, then
answers the first's outcome (the case as the action left it, the receipt of the case registered),
quickly; it never acts twice and never fails for having waited behind the first. On SQLite and
PostgreSQL (where writes take turns, `MEDIATION_WRITE_CONCURRENCY`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from mediation.disputes.service import DisputeService
from mediation.web import submissions
from tests.support import Api, intake_body
from tests.test_web import case_count, case_number_in, intake_form, signed_in

WORK_SECONDS = 1.5  # the first submission's work, on a busy day
# One turn to write, and a wait for it shorter than the first submission's work: a second
# submission queued behind the first for a turn gives up (503) before the first is done.
BUSY = pytest.mark.parametrize(
    "overrides", [{"write_concurrency": 1, "db_pool_timeout_seconds": 1.0}], ids=["one-turn"]
)
SOON = 2.0  # seconds after the first answered: a replay costs milliseconds


def slowed(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    original: Callable[..., Awaitable[Any]] = getattr(DisputeService, name)

    async def slow(self: DisputeService, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(WORK_SECONDS)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(DisputeService, name, slow)


async def _twice(send: Callable[[], Awaitable[httpx.Response]]) -> list[tuple[httpx.Response, float]]:
    """Two submissions, the second a few milliseconds after the first; each with when it answered."""
    start = time.perf_counter()

    async def timed(delay: float) -> tuple[httpx.Response, float]:
        await asyncio.sleep(delay)
        response = await send()
        return response, time.perf_counter() - start

    return list(await asyncio.gather(timed(0), timed(0.02)))


@BUSY
async def test_an_action_clicked_twice_is_taken_once_and_the_second_lands_on_the_case_at_once(
    api: Api, web: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = await api.intake()
    slowed(monkeypatch, "apply")
    page = signed_in(web, api)
    form = {"version": f'"{case["version"]}"', "idempotency_key": uuid.uuid4().hex}
    path = f"/cases/{case['id']}/actions/accept"
    (first, first_at), (second, second_at) = await _twice(lambda: page.post(path, form))
    for response in (first, second):
        assert response.status_code == 303, response.text[:2000]
        assert response.headers["location"] == f"/cases/{case['id']}?done=accept"
    assert second_at - first_at < SOON, (first_at, second_at)
    after = await api.get(case)
    assert after["status"] == "accepted" and after["version"] == case["version"] + 1
    assert [e["action"] for e in await api.timeline(case)].count("accept") == 1


@BUSY
async def test_an_intake_form_sent_twice_registers_one_case_and_shows_its_receipt_twice(
    api: Api, web: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    slowed(monkeypatch, "register")
    page = signed_in(web, api)
    form = intake_form(intake_body(), key=uuid.uuid4().hex)
    before = await case_count(app)
    (first, first_at), (second, second_at) = await _twice(lambda: page.post("/intake", form))
    assert first.status_code == second.status_code == 200, (first.text[:1500], second.text[:1500])
    assert case_number_in(first.text) == case_number_in(second.text)
    assert "未重复登记" in second.text and "未重复登记" not in first.text
    assert second_at - first_at < SOON, (first_at, second_at)
    assert await case_count(app) == before + 1


@BUSY
async def test_a_form_sent_again_while_the_first_is_refused_gets_the_same_refusal_and_nothing_is_saved(
    api: Api, web: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = await api.intake()
    slowed(monkeypatch, "apply")
    page = signed_in(web, api)
    # A stale page: the case has moved on since it was shown.
    form = {"version": f'"{case["version"] + 7}"', "idempotency_key": uuid.uuid4().hex}
    path = f"/cases/{case['id']}/actions/accept"
    (first, _), (second, _) = await _twice(lambda: page.post(path, form))
    assert first.status_code == second.status_code == 412, (first.text[:1500], second.text[:1500])
    assert (await api.get(case))["status"] == case["status"]


async def test_different_forms_sent_at_once_are_not_taken_for_one(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    page = signed_in(web, api)
    before = await case_count(app)
    forms = [intake_form(intake_body(), key=uuid.uuid4().hex) for _ in range(2)]
    first, second = await asyncio.gather(*(page.post("/intake", form) for form in forms))
    assert first.status_code == second.status_code == 200
    assert case_number_in(first.text) != case_number_in(second.text)
    assert await case_count(app) == before + 2


async def test_a_form_sent_again_while_the_first_takes_long_is_told_it_was_sent_already(
    api: Api, web: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = await api.intake()
    slowed(monkeypatch, "apply")
    monkeypatch.setattr(submissions, "LONGEST_WAIT_SECONDS", 0.2)
    page = signed_in(web, api)
    form = {"version": f'"{case["version"]}"', "idempotency_key": uuid.uuid4().hex}
    path = f"/cases/{case['id']}/actions/accept"
    (first, first_at), (second, second_at) = await _twice(lambda: page.post(path, form))
    assert first.status_code == 303, first.text[:2000]
    assert second.status_code == 409 and "此表单已提交" in second.text, second.text[:2000]
    assert second.headers["retry-after"] and second_at < first_at
    assert [e["action"] for e in await api.timeline(case)].count("accept") == 1
