"""A court's or commission's answer, or the scheduler's work on a handoff, at the same moment as an
action on the case: both take the case's row first, then the handoff's (the order every action on
the case takes them in), so one waits for the other and neither fails; and an answer arriving
after the request ended is refused by how it ended.

The races are on PostgreSQL: SQLite lets one writer at a time, so there nothing overlaps.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from mediation.clocks.scheduler import TickReport, tick
from mediation.core.clock import FrozenClock
from mediation.core.principal import Principal, Role
from mediation.disputes.lifecycle import Action
from mediation.disputes.schemas import ACTION_PAYLOADS
from mediation.disputes.service import DisputeService
from mediation.handoffs.models import Handoff
from mediation.handoffs.service import HandoffService
from tests.support import Api, pause_after, waits_on_a_lock
from tests.test_handoff_deadlines import NEW_YEAR_2027, SPRING_FESTIVAL_2027

ON_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def _target(api: Api, handoff: dict[str, Any]) -> dict[str, str]:
    role = "court" if handoff["kind"] in ("judicial_confirmation", "litigation") else "arbitration"
    return api.auth(role, uuid.UUID(handoff["target_id"]))


async def _answer(
    api: Api, handoff: dict[str, Any], step: str, body: dict[str, Any], as_: dict[str, str] | None = None
) -> httpx.Response:
    """POST /v1/handoffs/{id}/{step} as the target (unless `as_`), with the handoff's ETag."""
    return await api.client.post(
        f"/v1/handoffs/{handoff['id']}/{step}",
        json=body,
        headers={**(as_ or _target(api, handoff)), "If-Match": f'"{handoff["version"]}"'},
    )


def _ruling(api: Api) -> dict[str, Any]:
    return {
        "decision": "confirmed",
        "ruling_number": "(2026)浙0681民特1号",
        "ruled_on": api.today.isoformat(),
    }


def _answer_waits_holding_the_handoff(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """The next answer to a handoff stops once it has locked the handoff (and whatever it locked
    before), and goes on once the second event is set."""
    return pause_after(monkeypatch, HandoffService, "get", when=lambda *_, for_update=False, **__: for_update)


def _clock_step_waits_holding_its_first_lock(
    monkeypatch: pytest.MonkeyPatch, step: str
) -> tuple[asyncio.Event, asyncio.Event]:
    """The scheduler's next `step` on a handoff (`flag_overdue`, `recount`) stops once it holds its
    first row lock, and goes on once the second event is set."""
    holding, go_on = asyncio.Event(), asyncio.Event()
    original = getattr(HandoffService, step)

    async def step_then_wait(self: HandoffService, *args: Any) -> Any:
        session = self.session
        get = session.get

        async def get_then_wait(*a: Any, **kw: Any) -> Any:
            found = await get(*a, **kw)
            if kw.get("with_for_update") and not holding.is_set():
                holding.set()
                await go_on.wait()
            return found

        session.get = get_then_wait  # type: ignore[method-assign]  # this step's session alone
        return await original(self, *args)

    monkeypatch.setattr(HandoffService, step, step_then_wait)
    return holding, go_on


async def _tick(api: Api) -> TickReport:
    state = api.app.state
    return await tick(state.db, state.clock, state.settings, state.identity.cipher)


async def _alongside(
    api: Api,
    holding: asyncio.Event,
    go_on: asyncio.Event,
    first: Awaitable[Any],
    then: Callable[[], Awaitable[Any]],
) -> tuple[Any, Any]:
    """Start `first`; once it holds its lock, start `then` and let it reach the lock it waits for;
    then let `first` go on."""
    ahead = asyncio.ensure_future(first)
    await asyncio.wait_for(holding.wait(), 10)
    behind = asyncio.ensure_future(then())
    assert await waits_on_a_lock(api, behind), "the second never waited for the first"
    go_on.set()
    return tuple(await asyncio.wait_for(asyncio.gather(ahead, behind), 30))  # type: ignore[return-value]


@ON_POSTGRESQL
@pytest.mark.parametrize(
    ("answer", "ends_in"),
    [("ruling", ("confirmed", "confirmed")), ("withdrawal", ("agreement_signed", "withdrawn"))],
    ids=["ruling", "withdrawal"],
)
async def test_an_answer_and_a_clerk_withdrawing_the_request_at_once_take_turns(
    api: Api, monkeypatch: pytest.MonkeyPatch, answer: str, ends_in: tuple[str, str]
) -> None:
    """The court's ruling, or the body's withdrawal posted to the request, and the clerk's
    withdrawal at the same moment: the clerk's waits for the answer, then finds the case changed."""
    dispute = await api.drive("confirmation_pending")
    if answer == "ruling":
        dispute = await api.target_accepts(dispute)
    handoff = (await api.handoff(dispute))["handoff"]
    holding, go_on = _answer_waits_holding_the_handoff(monkeypatch)
    answering = (
        _answer(api, handoff, "decision", _ruling(api))
        if answer == "ruling"
        else _answer(
            api, handoff, "withdrawal", {"reason": "双方撤回申请"}, as_=api.acting("body_mediator", dispute)
        )
    )

    answered, by_the_clerk = await _alongside(
        api, holding, go_on, answering, lambda: api.act(dispute, "withdraw_confirmation", role="clerk")
    )

    assert answered.status_code == 200, answered.text
    assert by_the_clerk.status_code == 412, by_the_clerk.text
    case = await api.get(dispute)
    assert (case["status"], case["handoff"]["status"]) == ends_in


@ON_POSTGRESQL
async def test_a_request_that_connects_after_the_watch_began_is_seen_waiting(api: Api) -> None:
    """The races here know the second request came to wait by watching PostgreSQL's sessions. A
    request that opens a new connection once the watch has begun (the pool had no idle one) is
    seen waiting too."""
    dispute = await api.intake()
    lock = text("SELECT id FROM disputes WHERE id = :id FOR UPDATE")
    row = {"id": uuid.UUID(dispute["id"])}
    fresh = create_async_engine(api.app.state.db.engine.url, poolclass=NullPool)

    async def connect_late_and_wait() -> None:
        await asyncio.sleep(0.5)
        async with fresh.connect() as late:
            await late.execute(lock, row)

    async with api.app.state.db.engine.connect() as holder:
        await holder.execute(lock, row)
        behind = asyncio.ensure_future(connect_late_and_wait())
        try:
            assert await waits_on_a_lock(api, behind)
        finally:
            await holder.rollback()
            await asyncio.wait_for(behind, 10)
            await fresh.dispose()


@ON_POSTGRESQL
@pytest.mark.usefixtures("calendar_package_until_2026")
@pytest.mark.parametrize("step", ["flag_overdue", "recount"])
async def test_the_scheduler_and_a_clerk_on_the_same_request_at_once_take_turns(
    api: Api, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    if step == "recount":
        # Three days from 2 February 2027 end on New Year's Eve, moved past the Spring Festival's
        # days off by law to Tuesday 9 February, counted before that year's holidays were known:
        # the loaded schedule takes that day off too, and the scheduler moves it.
        api.app.state.clock.at = datetime(2027, 2, 2, 2, tzinfo=UTC)
        dispute = await api.drive("confirmation_pending")
        assert dispute["handoff"]["accept_due_on"] == "2027-02-09"
        loaded = await api.client.put(
            "/v1/calendar/years/2027",
            headers=api.auth("admin"),
            json={
                "reference": "国办发明电〔2026〕7号",
                "holidays": [*NEW_YEAR_2027, *SPRING_FESTIVAL_2027],
                "workdays": [],
            },
        )
        assert loaded.status_code == 200, loaded.text
    else:
        dispute = await api.drive("confirmation_pending")
        api.app.state.clock.at = datetime(2026, 6, 10, 2, tzinfo=UTC)  # acceptance was due 4 June
    holding, go_on = _clock_step_waits_holding_its_first_lock(monkeypatch, step)

    async def clerk_withdraws() -> httpx.Response:
        return await api.act(await api.get(dispute), "withdraw_confirmation", role="clerk")

    report, withdrawn = await _alongside(api, holding, go_on, _tick(api), clerk_withdraws)

    assert (report.handoffs_overdue, report.handoff_deadlines_moved, report.failed) == (
        (1, 0, 0) if step == "flag_overdue" else (0, 1, 0)
    )
    assert withdrawn.status_code == 412, withdrawn.text
    assert (await api.timeline(dispute))[-1]["action"] == (
        "handoff_overdue" if step == "flag_overdue" else "clock_recounted"
    )


def _answer_waits_before_its_action(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """A court's next answer stops just before the case's action it makes, and goes on once the
    second event is set."""
    ready, go_on = asyncio.Event(), asyncio.Event()
    apply = DisputeService.apply

    async def apply_after_waiting(self: DisputeService, *args: Any) -> Any:
        principal = args[3]
        if principal.role == Role.court and not ready.is_set():
            ready.set()
            await go_on.wait()
        return await apply(self, *args)

    monkeypatch.setattr(DisputeService, "apply", apply_after_waiting)
    return ready, go_on


@ON_POSTGRESQL
@pytest.mark.parametrize("answer", ["ruling", "not_accepted"])
async def test_a_court_answer_is_not_refused_for_a_change_to_the_case_made_as_it_answers(
    api: Api, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    """The court's If-Match is the handoff's: a supervisor's order on the case, wanting to be
    written at the same moment, waits for the court's answer instead of making it fail 412 with
    the case's version (which the court would send again, to fail again)."""
    dispute = await api.drive("confirmation_pending")
    if answer == "ruling":
        dispute = await api.target_accepts(dispute)
    handoff = (await api.handoff(dispute))["handoff"]
    step, body = (
        ("decision", _ruling(api))
        if answer == "ruling"
        else ("acceptance", {"decision": "not_accepted", "reason_code": "materials_missing"})
    )
    ready, go_on = _answer_waits_before_its_action(monkeypatch)
    court = asyncio.ensure_future(_answer(api, handoff, step, body))
    await asyncio.wait_for(ready.wait(), 10)
    order = asyncio.ensure_future(
        api.client.post(
            f"/v1/disputes/{dispute['id']}/supervision-orders",
            json={"instruction": "请尽快跟进司法确认进度"},
            headers={**api.auth("supervisor"), "If-Match": f'"{dispute["version"]}"'},
        )
    )
    await waits_on_a_lock(api, order)  # it waits for the court, or ends first
    go_on.set()
    answered, ordered = await asyncio.wait_for(asyncio.gather(court, order), 30)

    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == ("confirmed" if answer == "ruling" else "not_accepted")
    assert ordered.status_code == 412, ordered.text  # it found the case changed by the answer


async def test_an_acceptance_arriving_after_the_request_was_withdrawn_is_refused_as_withdrawn(
    api: Api,
) -> None:
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    withdrawn = await _answer(
        api, handoff, "withdrawal", {"reason": "双方撤回申请"}, as_=api.acting("body_mediator", dispute)
    )
    assert withdrawn.status_code == 200, withdrawn.text

    late = await _answer(
        api, withdrawn.json(), "acceptance", {"decision": "accepted", "case_number": "(2026)浙0681民特1号"}
    )

    assert late.status_code == 409, late.text
    problem = late.json()
    assert (problem["type"], problem["code"]) == ("/problems/conflict", "handoff_settled")
    assert "已撤回" in problem["detail"]
    still = (await api.handoff(await api.get(dispute)))["handoff"]
    assert (still["status"], still["target_case_number"]) == ("withdrawn", None)


async def test_an_acceptance_posted_again_after_accepting_is_already_answered(api: Api) -> None:
    dispute = await api.target_accepts(await api.drive("confirmation_pending"))
    handoff = (await api.handoff(dispute))["handoff"]

    again = await _answer(
        api, handoff, "acceptance", {"decision": "accepted", "case_number": "(2026)浙0681民特2号"}
    )

    assert again.status_code == 409, again.text
    assert again.json()["code"] == "already_answered"


@ON_POSTGRESQL
async def test_handoffs_made_outside_a_request_at_once_take_consecutive_numbers(api: Api) -> None:
    """Two handoffs made at once outside a request (as `mediation demo` makes them: the service in a
    writer session of its own, with no request's hooks to number them before commit) are numbered
    one after the other under the journal head: the second waits for the first to commit, then
    takes the next number. Neither is refused for a number the other took."""
    cases = [await api.drive("agreement_signed") for _ in range(2)]
    state = api.app.state
    clock = FrozenClock(state.clock.now())

    async def request_confirmation(session: Any, case: dict[str, Any]) -> Any:
        service = DisputeService(session, clock, state.settings, state.identity.cipher)
        mediator = Principal(Role.body_mediator, "maintenance", uuid.UUID(case["body_id"]))
        payload = ACTION_PAYLOADS["request_confirmation"].model_validate(
            api.payload("request_confirmation", case)
        )
        dispute = await service.apply(
            uuid.UUID(case["id"]), Action.request_confirmation, payload, mediator, f'"{case["version"]}"'
        )
        return uuid.UUID(str(dispute.handoff["id"]))

    async def second() -> uuid.UUID:
        async with state.db.writer() as session, session.begin():
            return await request_confirmation(session, cases[1])

    async with state.db.writer() as session:
        async with session.begin():
            first = await request_confirmation(session, cases[0])
            behind = asyncio.ensure_future(second())
            assert await waits_on_a_lock(api, behind), "the second was numbered beside the first"
        later = await asyncio.wait_for(behind, 10)

    async with state.db.reader() as session:
        numbers = {row.id: row.seq for row in await session.execute(select(Handoff.id, Handoff.seq))}
    assert numbers[later] == numbers[first] + 1
    court = api.auth("court", "court")
    listed = await api.client.get("/v1/handoffs", headers=court)
    assert [h["id"] for h in listed.json()["items"]] == [str(first), str(later)]
