"""examples/court_client.py against the live service: the app served by uvicorn on a real TCP port,
a court's integration talking to it over HTTP while the tests set up cases through the ASGI client.

The server runs on the tests' own event loop, so it shares the app's database connections (an
asyncpg connection belongs to the loop that opened it); the example's synchronous client runs in a
worker thread, which leaves the loop free to serve it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, TypeVar

import pytest
import uvicorn

from mediation.audit.models import AuditRecord
from mediation.core.errors import ServiceUnavailable
from mediation.handoffs.service import HandoffService
from tests.support import Api
from tests.test_documents import audit_rows

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "court_client.py"
T = TypeVar("T")


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("court_client", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


court_client = _load_example()


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The test runner keeps its own signal handlers.
        yield


@pytest.fixture
async def base_url(app: Any) -> AsyncIterator[str]:
    """The app fixture's own object, served on a free port of 127.0.0.1 (its lifespan is already
    running under the fixture, so uvicorn does not run it again)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_config=None, access_log=False)
    server = _Server(config)
    task = asyncio.create_task(server.serve(), name="uvicorn")
    try:
        async with asyncio.timeout(10):
            while not server.started:
                assert not task.done(), "the server stopped while starting"
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


async def _off_loop(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking client call in a thread while the loop serves it."""
    return await asyncio.to_thread(call, *args, **kwargs)


def _court(api: Api, base_url: str, org: str = "court") -> Any:
    return court_client.CourtClient(base_url, api.auth("court", org)["X-API-Key"])


async def test_a_request_is_accepted_and_confirmed_over_http(api: Api, base_url: str) -> None:
    dispute = await api.drive("confirmation_pending")
    with _court(api, base_url) as court:
        [pending] = await _off_loop(court.list_pending)
        assert (pending["id"], pending["status"]) == (dispute["handoff"]["id"], "pending")
        assert pending["case_number"] == dispute["case_number"]

        dossier = await _off_loop(court.dossier, pending["id"])
        assert dossier["agreement"]["id"] == dispute["agreement"]["id"]
        assert all(not p["masked"] for p in dossier["case"]["parties"])

        accepted = await _off_loop(court.accept, pending["id"], "(2026)浙0681民特21号")
        assert (accepted["status"], accepted["target_case_number"]) == ("accepted", "(2026)浙0681民特21号")
        assert accepted["decide_due_on"] == "2026-06-16"
        assert await _off_loop(court.list_pending) == []

        confirmed = await _off_loop(
            court.decide, pending["id"], "confirmed", "(2026)浙0681民特21号", api.today
        )
        assert confirmed["status"] == "confirmed"
        assert confirmed["enforcement_deadline"] == "2028-06-16"

        # A second answer on acceptance is refused with a clear problem.
        with pytest.raises(court_client.ApiProblem) as refused:
            await _off_loop(court.accept, pending["id"], "(2026)浙0681民特22号")
    assert (refused.value.status, refused.value.code) == (409, "already_answered")
    assert "already_answered" in str(refused.value)
    case = await api.get(dispute)
    assert (case["status"], case["handoff"]["target_case_number"]) == ("confirmed", "(2026)浙0681民特21号")


async def test_a_rejected_agreement_is_mediated_again_and_the_new_version_confirmed(
    api: Api, base_url: str
) -> None:
    dispute = await api.drive("confirmation_pending")
    first_agreement = dispute["agreement"]["id"]
    with _court(api, base_url) as court:
        [pending] = await _off_loop(court.list_pending)
        await _off_loop(court.accept, pending["id"], "(2026)浙0681民特31号")
        with pytest.raises(court_client.ApiProblem) as incomplete:
            await _off_loop(court.decide, pending["id"], "rejected", "(2026)浙0681民特31号", api.today)
        assert incomplete.value.status == 422  # a rejection names its ground
        rejected = await _off_loop(
            court.decide, pending["id"], "rejected", "(2026)浙0681民特31号", api.today, "unclear_content"
        )
        assert (rejected["status"], rejected["decision"]["ground"]) == ("rejected", "unclear_content")

        dispute = await api.get(dispute)
        assert dispute["status"] == "confirmation_rejected"
        dispute = await api.step(dispute, "remediate")
        assert dispute["status"] == "mediating"
        second = await api.signed_agreement(
            dispute, terms=["被申请人于十五日内修缮院墙排水, 并赔偿损失一千二百元。"]
        )
        assert second["number"] == 2
        earlier = await api.client.get(
            f"/v1/disputes/{dispute['id']}/agreements/{first_agreement}", headers=api.auth()
        )
        assert earlier.json()["status"] == "superseded"  # kept on record with its signatures
        dispute = await api.step(await api.step(dispute, "agree"), "request_confirmation")
        assert dispute["handoff"]["id"] != pending["id"]

        [again] = await _off_loop(court.list_pending)
        assert again["id"] == dispute["handoff"]["id"]
        dossier = await _off_loop(court.dossier, again["id"])
        assert (dossier["agreement"]["id"], dossier["agreement"]["number"]) == (second["id"], 2)
        await _off_loop(court.accept, again["id"], "(2026)浙0681民特32号")
        confirmed = await _off_loop(court.decide, again["id"], "confirmed", "(2026)浙0681民特32号", api.today)
        assert confirmed["status"] == "confirmed"
    case = await api.get(dispute)
    assert (case["status"], case["agreement"]["id"]) == ("confirmed", second["id"])


async def test_a_stale_etag_is_reported_and_a_fresh_read_recovers(api: Api, base_url: str) -> None:
    dispute = await api.drive("confirmation_pending")
    with _court(api, base_url) as court:
        [pending] = await _off_loop(court.list_pending)
        await api.target_accepts(dispute)  # another clerk of the court answered meanwhile
        # Another answer than the one recorded is refused with that answer, whatever ETag it sent.
        with pytest.raises(court_client.ApiProblem) as answered:
            await _off_loop(court.accept, pending["id"], "(2026)浙0681民特41号")
        assert (answered.value.status, answered.value.code) == (409, "already_answered")
        recorded = answered.value.problem
        assert (recorded["status_now"], recorded["target_case_number"]) == ("accepted", "(2026)浙0681民特1号")
        # A ruling sent at the version read before that acceptance is stale.
        with pytest.raises(court_client.ApiProblem) as stale:
            await _off_loop(court.decide, pending["id"], "confirmed", "(2026)浙0681民特1号", api.today)
        assert (stale.value.status, stale.value.type) == (412, "/problems/stale-version")
        assert stale.value.problem["current_etag"] == recorded["current_etag"]
        await _off_loop(court.dossier, pending["id"])
        confirmed = await _off_loop(
            court.decide, pending["id"], "confirmed", "(2026)浙0681民特1号", api.today
        )
        assert confirmed["status"] == "confirmed"


async def test_a_dossier_read_again_unchanged_is_the_copy_held_and_a_change_is_read_in_full(
    api: Api, base_url: str
) -> None:
    """The client polls a dossier with the ETag of the copy it holds: unchanged, the service answers
    304 without a body and records no read of the parties' data, and the client returns its copy;
    changed (another clerk of the court answered), it reads the new one in full, and the next change
    is sent at the version it read."""
    dispute = await api.drive("confirmation_pending")

    async def pii_reads() -> int:
        rows = await audit_rows(api, AuditRecord.action == "pii.read", AuditRecord.object_id == dispute["id"])
        return len(rows)

    with _court(api, base_url) as court:
        statuses: list[int] = []
        court._http.event_hooks["response"].append(lambda response: statuses.append(response.status_code))
        [pending] = await _off_loop(court.list_pending)
        first = await _off_loop(court.dossier, pending["id"])
        read = await pii_reads()

        again = await _off_loop(court.dossier, pending["id"])
        assert again == first
        assert statuses[-1] == 304
        assert await pii_reads() == read  # nothing shown, nothing recorded

        accepted = await _court_answers(
            api, pending["id"], "acceptance", {"decision": "accepted", "case_number": "(2026)浙0681民特81号"}
        )
        read = await pii_reads()  # the other clerk's read among them
        changed = await _off_loop(court.dossier, pending["id"])
        assert statuses[-1] == 200
        assert (changed["handoff"]["status"], changed["handoff"]["version"]) == (
            "accepted",
            accepted["version"],
        )
        assert await pii_reads() == read + 1
        assert await _off_loop(court.dossier, pending["id"]) == changed
        assert statuses[-1] == 304

        # The ETag held through the 304 is the handoff's current one, by its handoff part.
        confirmed = await _off_loop(
            court.decide, pending["id"], "confirmed", "(2026)浙0681民特81号", api.today
        )
        assert confirmed["status"] == "confirmed"


async def test_the_command_accepts_every_pending_request(
    api: Api, base_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ours = [await api.drive("confirmation_pending") for _ in range(2)]
    theirs = await api.drive("referred_litigation")
    monkeypatch.setenv("MEDIATION_API_KEY", api.auth("court")["X-API-Key"])
    assert await _off_loop(court_client.main, ["--base-url", base_url]) == 0
    printed = capsys.readouterr().out
    assert "3 pending request(s)" in printed
    for dispute in [*ours, theirs]:
        case = await api.get(dispute)
        assert case["handoff"]["status"] == "accepted"
        number = case["handoff"]["target_case_number"]
        assert f"{case['case_number']}" in printed and f"accepted as {number}" in printed
    # Nothing left to do: a second run finds nothing pending.
    assert await _off_loop(court_client.main, ["--base-url", base_url]) == 0
    assert "0 pending request(s)" in capsys.readouterr().out


def _answers_slowly_once(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The service's next acceptance takes `seconds` before it is made."""
    acknowledge = HandoffService.acknowledge
    slowed: list[bool] = []

    async def slow(self: HandoffService, *args: Any) -> Any:
        if not slowed:
            slowed.append(True)
            await asyncio.sleep(seconds)
        return await acknowledge(self, *args)

    monkeypatch.setattr(HandoffService, "acknowledge", slow)


def _busy_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service answers the next acceptance 503, asking to retry in a second."""
    acknowledge = HandoffService.acknowledge
    refused: list[bool] = []

    async def busy(self: HandoffService, *args: Any) -> Any:
        if not refused:
            refused.append(True)
            raise ServiceUnavailable(headers={"Retry-After": "1"})
        return await acknowledge(self, *args)

    monkeypatch.setattr(HandoffService, "acknowledge", busy)


def _sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The client's waits between attempts, recorded (and waited)."""
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(
        court_client, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleep), raising=False
    )
    return waited


async def test_a_retry_waits_for_the_first_attempt_still_being_made(
    api: Api, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client gave up waiting for the first attempt's answer; the service is still making it
    and answers the retry, with the same key, 409 idempotency-in-progress with Retry-After. The
    client waits and asks again until the first attempt's answer comes back: accepted once."""
    dispute = await api.drive("confirmation_pending")
    _answers_slowly_once(monkeypatch, 1.5)
    waited = _sleeps(monkeypatch)
    court = court_client.CourtClient(base_url, api.auth("court")["X-API-Key"], timeout=0.5)
    with court:
        [pending] = await _off_loop(court.list_pending)
        accepted = await _off_loop(court.accept, pending["id"], "(2026)浙0681民特51号")
    assert (accepted["status"], accepted["target_case_number"]) == ("accepted", "(2026)浙0681民特51号")
    assert waited and all(w == 1.0 for w in waited)
    timeline = await api.timeline(dispute)
    assert [e["action"] for e in timeline].count("acknowledge_handoff") == 1


async def test_a_busy_service_is_asked_again_after_the_time_it_gives(
    api: Api, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await api.drive("confirmation_pending")
    _busy_once(monkeypatch)
    waited = _sleeps(monkeypatch)
    with _court(api, base_url) as court:
        [pending] = await _off_loop(court.list_pending)
        accepted = await _off_loop(court.accept, pending["id"], "(2026)浙0681民特52号")
    assert accepted["status"] == "accepted"
    assert waited == [1.0]


async def _court_answers(api: Api, handoff_id: str, step: str, body: dict[str, Any]) -> dict[str, Any]:
    """Another clerk of the court answers through the API, at the handoff's current version."""
    court = api.auth("court", "court")
    current = await api.client.get(f"/v1/handoffs/{handoff_id}", headers=court)
    response = await api.client.post(
        f"/v1/handoffs/{handoff_id}/{step}",
        json=body,
        headers={**court, "If-Match": current.headers["ETag"]},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_an_answer_recorded_as_the_client_meant_it_is_taken_as_done(api: Api, base_url: str) -> None:
    """The client sends an answer the handoff holds already, worded otherwise (a note, a reason):
    refused 409 with the answer recorded, which is what the client meant, so it takes it as done and
    returns the handoff as it stands, with its ETag for the next answer."""
    dispute = await api.drive("confirmation_pending")
    with _court(api, base_url) as court:
        [pending] = await _off_loop(court.list_pending)
        accepted = await _court_answers(
            api,
            pending["id"],
            "acceptance",
            {"decision": "accepted", "case_number": "(2026)浙0681民特61号", "note": "立案庭审查"},
        )
        # Listed before that acceptance, the client accepts with the same case number, no note.
        done = await _off_loop(court.accept, pending["id"], "(2026)浙0681民特61号")
        assert (done["status"], done["target_case_number"]) == ("accepted", "(2026)浙0681民特61号")
        assert done["version"] == accepted["version"]

        await _court_answers(api, pending["id"], "extension", {"days": 10, "reason": "案情复杂"})
        extended = await _off_loop(court.extend, pending["id"], 10, "需要进一步核实")
        assert extended["extended_days"] == 10

        ruling = "(2026)浙0681民特61号"
        await _court_answers(
            api,
            pending["id"],
            "decision",
            {
                "decision": "confirmed",
                "ruling_number": ruling,
                "ruled_on": api.today.isoformat(),
                "note": "当庭确认",
            },
        )
        confirmed = await _off_loop(court.decide, pending["id"], "confirmed", ruling, api.today)
        assert (confirmed["status"], confirmed["decision"]["note"]) == ("confirmed", "当庭确认")
    timeline = await api.timeline(dispute)
    assert [e["action"] for e in timeline].count("acknowledge_handoff") == 1
    assert [e["action"] for e in timeline].count("extend_handoff") == 1
    assert [e["action"] for e in timeline].count("confirm") == 1


async def test_an_answer_recorded_otherwise_is_surfaced_with_the_answer_recorded(
    api: Api, base_url: str
) -> None:
    dispute = await api.drive("confirmation_pending")
    with _court(api, base_url) as court:
        [pending] = await _off_loop(court.list_pending)
        await _off_loop(court.accept, pending["id"], "(2026)浙0681民特71号")
        await _off_loop(court.extend, pending["id"], 5, "需要进一步核实")

        with pytest.raises(court_client.AnswerConflict) as accepted_otherwise:
            await _off_loop(court.accept, pending["id"], "(2026)浙0681民特72号")
        assert accepted_otherwise.value.code == "already_answered"
        assert accepted_otherwise.value.recorded["target_case_number"] == "(2026)浙0681民特71号"

        with pytest.raises(court_client.AnswerConflict) as extended_otherwise:
            await _off_loop(court.extend, pending["id"], 10, "需要进一步核实")
        assert extended_otherwise.value.code == "already_extended"
        assert extended_otherwise.value.recorded["extended_days"] == 5

        await _off_loop(court.decide, pending["id"], "confirmed", "(2026)浙0681民特71号", api.today)
        with pytest.raises(court_client.AnswerConflict) as ruled_otherwise:
            await _off_loop(
                court.decide, pending["id"], "rejected", "(2026)浙0681民特71号", api.today, "unclear_content"
            )
        conflict = ruled_otherwise.value
        assert isinstance(conflict, court_client.ApiProblem)  # a client catching refusals still does
        assert (conflict.status, conflict.code) == (409, "handoff_settled")
        assert (conflict.recorded["status_now"], conflict.recorded["decision"]["ruling_number"]) == (
            "confirmed",
            "(2026)浙0681民特71号",
        )
    case = await api.get(dispute)
    assert (case["status"], case["handoff"]["extended_days"]) == ("confirmed", 5)
