"""A sitting (调解会) is the proof of mediation the court reads in the dossier (法释〔2011〕5号 Art. 3):
none is scheduled, moved or recorded as held on a day before mediation at the body holding the case
began (its sign-for, or the case's return to mediation after the court did not confirm its
agreement), counted in Beijing days. A sitting held already may still be scheduled and recorded
afterwards. Through the API and the case page, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx

from tests.support import Api, at_beijing
from tests.test_web_forms import at_the_body
from tests.test_web_sittings import error_at, form_on, listed, record_path, schedule_path

PLACE = "枫源村调委会调解室"
MINUTES = "调解员向双方释明相邻关系的法律规定, 双方陈述意见。"


async def _schedule(api: Api, case: dict[str, Any], when: str, **headers: str) -> httpx.Response:
    return await api.client.post(
        f"/v1/disputes/{case['id']}/sessions",
        json={"scheduled_at": when, "place": PLACE},
        headers={**api.acting("body_mediator", case), **headers},
    )


async def _record(api: Api, case: dict[str, Any], sitting: dict[str, Any], held_at: str) -> httpx.Response:
    mediator = {"name": sitting["mediator_name"] or "调解员", "capacity": "调解员"}
    return await api.client.post(
        f"/v1/disputes/{case['id']}/sessions/{sitting['id']}/record",
        json={"held_at": held_at, "attendees": [mediator], "minutes": MINUTES, "outcome": "continued"},
        headers={**api.acting("body_mediator", case), "If-Match": f'"{sitting["version"]}"'},
    )


async def _reschedule(api: Api, case: dict[str, Any], sitting: dict[str, Any], when: str) -> httpx.Response:
    return await api.client.post(
        f"/v1/disputes/{case['id']}/sessions/{sitting['id']}/reschedule",
        json={"scheduled_at": when, "reason": "被申请人生病住院, 当天无法到场"},
        headers={**api.acting("body_mediator", case), "If-Match": f'"{sitting["version"]}"'},
    )


def _before_mediation(response: httpx.Response, field: str, began: str) -> None:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "/problems/validation-error"
    [error] = problem["errors"]
    assert (error["field"], error["code"]) == (field, "before_mediation")
    assert began in problem["detail"]


async def _signed_for_on(api: Api, day: date, hour: int = 10) -> dict[str, Any]:
    at_beijing(api, day, hour)
    return await api.drive("mediating")


async def test_no_sitting_is_scheduled_before_the_body_took_the_case(api: Api) -> None:
    case = await _signed_for_on(api, date(2026, 12, 7))

    refused = await _schedule(api, case, "2026-12-05T09:30:00+08:00")
    _before_mediation(refused, "scheduled_at", "2026-12-07")
    assert refused.json()["detail"] == "调解时间不能早于本组织开始调解之日 (2026-12-07)"
    english = await _schedule(api, case, "2026-12-06T23:59:00+08:00", **{"Accept-Language": "en"})
    _before_mediation(english, "scheduled_at", "2026-12-07")
    assert english.json()["detail"] == "A session cannot be before mediation at the body began (2026-12-07)"
    assert await listed(api, case) == []
    assert "schedule_session" not in [e["action"] for e in await api.timeline(case)]

    # Earlier on the day it was signed for (10:00), or later: a sitting held that morning is
    # scheduled and recorded afterwards, as is one still to come.
    morning = await _schedule(api, case, "2026-12-07T08:30:00+08:00")
    assert morning.status_code == 201, morning.text
    coming = await _schedule(api, case, "2026-12-10T09:30:00+08:00")
    assert coming.status_code == 201, coming.text


async def test_a_sitting_is_not_recorded_as_held_before_the_body_took_the_case(api: Api) -> None:
    case = await _signed_for_on(api, date(2026, 12, 7))
    sitting = (await _schedule(api, case, "2026-12-09T09:30:00+08:00")).json()
    at_beijing(api, date(2026, 12, 9), 16)

    _before_mediation(await _record(api, case, sitting, "2026-12-01T09:30:00+08:00"), "held_at", "2026-12-07")
    [still] = await listed(api, case)
    assert (still["status"], still["version"]) == ("scheduled", sitting["version"])

    # Held earlier than planned, on the day the body took the case: recorded.
    held = await _record(api, case, sitting, "2026-12-07T15:00:00+08:00")
    assert held.status_code == 200, held.text
    assert held.json()["status"] == "held"


async def test_a_sitting_is_not_moved_before_the_body_took_the_case(api: Api) -> None:
    case = await _signed_for_on(api, date(2026, 12, 7))
    sitting = (await _schedule(api, case, "2026-12-09T09:30:00+08:00")).json()

    _before_mediation(
        await _reschedule(api, case, sitting, "2026-12-04T09:30:00+08:00"), "scheduled_at", "2026-12-07"
    )
    [still] = await listed(api, case)
    assert (still["version"], still["rescheduled_count"]) == (sitting["version"], 0)
    moved = await _reschedule(api, case, sitting, "2026-12-08T14:00:00+08:00")
    assert moved.status_code == 200, moved.text


async def test_the_day_is_counted_in_beijing_time(api: Api) -> None:
    # Signed for at 07:00 on 7 December in Beijing: still 6 December in UTC.
    case = await _signed_for_on(api, date(2026, 12, 7), hour=7)
    # 00:30 on the 7th in Beijing (16:30 on the 6th in UTC) is that day; 23:30 on the 6th is not.
    same_day = await _schedule(api, case, "2026-12-06T16:30:00Z")
    assert same_day.status_code == 201, same_day.text
    _before_mediation(await _schedule(api, case, "2026-12-06T15:30:00Z"), "scheduled_at", "2026-12-07")


async def test_a_body_taking_the_case_over_holds_no_sitting_before_it_signed_for_it(api: Api) -> None:
    case = await _signed_for_on(api, date(2026, 12, 1))
    at_beijing(api, date(2026, 12, 3))
    case = await api.step(await api.get(case), "transfer", {"reason": "需由镇调委会调处"})
    case = await api.step(
        case, "assign", {"body_id": str(api.bodies["town"]), "override_reason": "转由镇调委会调解"}
    )
    at_beijing(api, date(2026, 12, 4))
    case = await api.step(case, "sign_for")
    assert case["body_id"] == str(api.bodies["town"])

    # Mediation began at the village committee on the 1st; the town committee had the case on the 4th.
    _before_mediation(await _schedule(api, case, "2026-12-02T09:30:00+08:00"), "scheduled_at", "2026-12-04")
    assert (await _schedule(api, case, "2026-12-04T09:30:00+08:00")).status_code == 201


async def test_a_case_mediated_again_holds_its_new_sittings_from_the_day_it_came_back(api: Api) -> None:
    case = await _signed_for_on(api, date(2026, 12, 1))
    first = (await _schedule(api, case, "2026-12-01T14:00:00+08:00")).json()
    at_beijing(api, date(2026, 12, 1), 16)
    assert (await _record(api, case, first, "2026-12-01T14:00:00+08:00")).status_code == 200
    for action in ("agree", "request_confirmation"):
        case = await api.step(await api.get(case), action)
    case = await api.target_accepts(case)
    at_beijing(api, date(2026, 12, 10))
    case = await api.step(case, "reject")
    at_beijing(api, date(2026, 12, 14))
    case = await api.step(case, "remediate")
    assert case["status"] == "mediating"

    # The court did not confirm the agreement; the new mediation began on the 14th.
    _before_mediation(await _schedule(api, case, "2026-12-08T09:30:00+08:00"), "scheduled_at", "2026-12-14")
    again = await _schedule(api, case, "2026-12-15T09:30:00+08:00")
    assert again.status_code == 201, again.text
    at_beijing(api, date(2026, 12, 15), 16)
    assert (await _record(api, case, again.json(), "2026-12-15T09:30:00+08:00")).status_code == 200
    assert [s["status"] for s in await listed(api, case)] == ["held", "held"]


async def test_the_case_page_refuses_a_sitting_before_the_body_took_the_case(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await _signed_for_on(api, date(2026, 12, 7))
    page = await at_the_body(web, api, case)
    form = form_on((await page.get(f"/cases/{case['id']}")).text, schedule_path(case))
    form.update(scheduled_at="2026-12-05T09:30", place=PLACE)
    refused = await page.post(schedule_path(case), form)
    assert refused.status_code == 422, refused.text[:3000]
    assert error_at(refused.text, "scheduled_at") == "调解时间不能早于本组织开始调解之日 (2026-12-07)"
    assert await listed(api, case) == []

    form.update(scheduled_at="2026-12-09T09:30")
    assert (await page.post(schedule_path(case), form)).status_code == 303
    [sitting] = await listed(api, case)
    at_beijing(api, date(2026, 12, 9), 16)
    shown = await page.get(f"/cases/{case['id']}")
    record = form_on(shown.text, record_path(case, sitting))
    record.update(held_at="2026-12-01T09:30", minutes=MINUTES, outcome="continued")
    refused = await page.post(record_path(case, sitting), record)
    assert refused.status_code == 422, refused.text[:3000]
    assert error_at(refused.text, "held_at") == "调解时间不能早于本组织开始调解之日 (2026-12-07)"
    [still] = await listed(api, case)
    assert still["status"] == "scheduled"
