"""Working a follow-up task changes its case: the result of a performance follow-up, a visit's try
and a visit found impossible land on the case's timeline and move its version on (a result may
move the case to `performed`, a visit may let it be archived). Like every change of a case, each
needs the case's ETag in If-Match (428 without, 412 stale), refused before anything changes, and
answers with the case's new ETag."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import httpx
import pytest

from mediation.agreements.models import FollowUp
from tests.support import Api
from tests.test_agreements import _perform, _problem
from tests.test_follow_ups_and_signatures import _overdue, _result, _visit_task

Route = Literal["result", "visit", "impossible"]
ROUTES: list[Route] = ["result", "visit", "impossible"]


class Task:
    """An open follow-up task that `route` records, its case as last read, and who works it."""

    def __init__(self, api: Api, route: Route, dispute: dict[str, Any], task: dict[str, Any]) -> None:
        self.api, self.route, self.dispute, self.task = api, route, dispute, task
        if route == "result":
            self.body: dict[str, Any] = _result(api, outcome="performing", note="已电话督促")
            self.who = api.auth("body_mediator", "village")
        else:
            self.who = api.acting("body_mediator", dispute)
            self.body = (
                {
                    "visited_on": api.today.isoformat(),
                    "contact_method": "phone",
                    "reached": True,
                    "satisfaction": 4,
                }
                if route == "visit"
                else {"reason": "当事人已迁居外地, 无法联系"}
            )

    async def post(self, body: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
        return await self.api.client.post(
            f"/v1/follow-ups/{self.task['id']}/{self.route}",
            json=self.body if body is None else body,
            headers={**self.who, **headers},
        )

    def etag(self, version: int | None = None) -> dict[str, str]:
        return {"If-Match": f'"{self.dispute["version"] if version is None else version}"'}

    async def row(self) -> FollowUp:
        async with self.api.app.state.db.reader() as session:
            row = await session.get(FollowUp, uuid.UUID(self.task["id"]))
            assert row is not None
            return row


async def open_task(api: Api, route: Route) -> Task:
    if route == "result":
        dispute, _, task = await _overdue(api)
    else:
        dispute = await api.drive("closed")
        task = await _visit_task(api, dispute)
    return Task(api, route, await api.get(dispute), task)


async def assert_nothing_changed(t: Task, timeline: int, outbox: int) -> None:
    after = await t.api.get(t.dispute)
    assert (after["status"], after["version"]) == (t.dispute["status"], t.dispute["version"])
    assert await t.api.timeline_count(t.dispute["id"]) == timeline
    assert await t.api.outbox_count(t.dispute["id"]) == outbox
    row = await t.row()
    assert (row.status, row.result, row.attempts or []) == ("open", None, [])


@pytest.mark.parametrize("route", ROUTES)
async def test_working_a_follow_up_without_the_cases_etag_is_refused(api: Api, route: Route) -> None:
    t = await open_task(api, route)
    timeline, outbox = await api.timeline_count(t.dispute["id"]), await api.outbox_count(t.dispute["id"])
    for missing in ({}, {"If-Match": ""}, {"If-Match": "*"}):
        refused = await t.post(**missing)
        problem = _problem(refused, 428, "/problems/precondition-required")
        assert problem["current_etag"] == f'"{t.dispute["version"]}"'
    await assert_nothing_changed(t, timeline, outbox)


@pytest.mark.parametrize("route", ROUTES)
async def test_working_a_follow_up_against_a_stale_etag_is_refused(api: Api, route: Route) -> None:
    t = await open_task(api, route)
    timeline, outbox = await api.timeline_count(t.dispute["id"]), await api.outbox_count(t.dispute["id"])
    for stale in (t.dispute["version"] - 1, t.dispute["version"] + 1):
        refused = await t.post(**t.etag(stale))
        assert (
            _problem(refused, 412, "/problems/stale-version")["current_etag"] == f'"{t.dispute["version"]}"'
        )
    # A weak tag never matches (strong comparison, RFC 9110 §13.1.1).
    _problem(await t.post(**{"If-Match": f'W/"{t.dispute["version"]}"'}), 412, "/problems/stale-version")
    await assert_nothing_changed(t, timeline, outbox)


@pytest.mark.parametrize("route", ROUTES)
async def test_working_a_follow_up_with_the_cases_etag_answers_with_its_new_one(
    api: Api, route: Route
) -> None:
    t = await open_task(api, route)
    timeline = await api.timeline_count(t.dispute["id"])
    done = await t.post(**t.etag())
    assert done.status_code == 200, done.text
    after = await api.get(t.dispute)
    assert after["version"] > t.dispute["version"]
    assert done.headers["etag"] == f'"{after["version"]}"'
    assert await api.timeline_count(t.dispute["id"]) == timeline + 1
    assert (await t.row()).status == ("impossible" if route == "impossible" else "done")
    # The ETag the request was made with is the case's old one now.
    again = await t.post(**t.etag())
    _problem(again, 412, "/problems/stale-version")


@pytest.mark.parametrize("route", ROUTES)
async def test_a_replayed_follow_up_answers_as_it_first_did(api: Api, route: Route) -> None:
    t = await open_task(api, route)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await t.post(**t.etag(), **key)
    assert first.status_code == 200, first.text
    after = await api.get(t.dispute)
    timeline = await api.timeline_count(t.dispute["id"])
    # The retry of the same request, with the ETag it was first sent with, which is stale now.
    replayed = await t.post(**t.etag(), **key)
    assert replayed.status_code == 200, replayed.text
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.headers["etag"] == first.headers["etag"] == f'"{after["version"]}"'
    assert replayed.json() == first.json()
    assert (await api.get(t.dispute))["version"] == after["version"]
    assert await api.timeline_count(t.dispute["id"]) == timeline


async def test_a_result_that_performs_the_last_obligation_answers_with_the_performed_cases_etag(
    api: Api,
) -> None:
    dispute, agreement, task = await _overdue(api)
    assert (await _perform(api, dispute, agreement["obligations"][1])).status_code == 200
    t = Task(api, "result", await api.get(dispute), task)
    done = await t.post(_result(api, outcome="performed"), **t.etag())
    assert done.status_code == 200, done.text
    after = await api.get(dispute)
    assert after["status"] == "performed"
    assert done.headers["etag"] == f'"{after["version"]}"'


async def test_the_etag_a_visit_answers_with_is_the_one_archiving_needs(api: Api) -> None:
    t = await open_task(api, "visit")
    visited = await t.post(**t.etag())
    assert visited.status_code == 200, visited.text
    version = int(visited.headers["etag"].strip('"'))
    archived = await api.act({**t.dispute, "version": version}, "archive")
    assert archived.status_code == 200, archived.text
    assert archived.json()["status"] == "archived"


async def test_the_contract_asks_for_the_cases_etag(app: Any) -> None:
    paths = app.openapi()["paths"]
    for route in ROUTES:
        operation = paths[f"/v1/follow-ups/{{follow_up_id}}/{route}"]["post"]
        assert "If-Match" in [p["name"] for p in operation["parameters"]], route
        assert {"412", "428"} <= set(operation["responses"]), route
        assert "ETag" in operation["description"], route
        # ... and declares the case's new ETag it answers with.
        assert "ETag" in operation["responses"]["200"].get("headers", {}), route
