"""One sitting (调解会) read on its own, with the ETag its record, cancel and reschedule need, and
every answer about a sitting naming its times the same way: on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support import Api
from tests.test_corrections import events_of
from tests.test_sitting_cancellation import cancel, record_continued
from tests.test_sitting_reschedule import reschedule
from tests.test_web_sittings import listed, scheduled


def sitting_path(case: dict[str, Any], sitting_id: object) -> str:
    return f"/v1/disputes/{case['id']}/sessions/{sitting_id}"


async def read(
    api: Api, case: dict[str, Any], sitting_id: object, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await api.client.get(sitting_path(case, sitting_id), headers=headers or api.auth())


async def test_one_sitting_reads_as_the_list_shows_it_with_its_etag(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)

    response = await read(api, case, sitting["id"])
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == f'"{sitting["version"]}"'
    [shown] = await listed(api, case)
    assert response.json() == shown

    head = await api.client.head(sitting_path(case, sitting["id"]), headers=api.auth())
    assert head.status_code == 200 and head.content == b""
    assert head.headers["ETag"] == response.headers["ETag"]


async def test_the_etag_read_calls_the_sitting_off(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    etag = (await read(api, case, sitting["id"])).headers["ETag"]

    called_off = await cancel(api, case, sitting, **{"If-Match": etag})
    assert called_off.status_code == 200, called_off.text
    again = await read(api, case, sitting["id"])
    assert again.json() == called_off.json()
    assert again.headers["ETag"] == called_off.headers["ETag"] != etag


async def test_the_etag_read_records_the_sitting(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    etag = (await read(api, case, sitting["id"])).headers["ETag"]
    assert etag == f'"{sitting["version"]}"'

    recorded = await record_continued(api, case, sitting)
    assert recorded.status_code == 200, recorded.text
    again = await read(api, case, sitting["id"])
    # Held at 09:30 in Beijing: the answer to the record names it as every read does.
    assert again.json()["held_at"] == recorded.json()["held_at"] == "2026-06-01T01:30:00Z"
    assert again.json() == recorded.json()
    assert again.headers["ETag"] == recorded.headers["ETag"]


async def test_a_sitting_unknown_or_of_another_case_or_out_of_sight_is_not_found(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    other = await api.drive("mediating")
    await scheduled(api, other)

    for response in (
        await read(api, case, uuid.uuid4()),
        await read(api, other, sitting["id"]),
        await read(api, case, sitting["id"], api.auth("clerk", "other_center")),
        await read(api, case, sitting["id"], api.auth("body_mediator", "other_village")),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["type"] == "/problems/not-found"
        assert "ETag" not in response.headers


async def test_a_reader_without_personal_data_rights_reads_it_masked_as_listed(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case, place="申请人家中, 电话 13800001111")
    supervisor = api.auth("supervisor")

    response = await read(api, case, sitting["id"], supervisor)
    assert response.status_code == 200, response.text
    assert "13800001111" not in response.json()["place"]
    assert [response.json()] == await listed(api, case, headers=supervisor)


async def test_scheduling_answers_the_time_as_reads_give_it(api: Api) -> None:
    case = await api.drive("mediating")
    # scheduled() sends 2026-06-01T09:00:00+08:00.
    answered = await scheduled(api, case)
    assert answered["scheduled_at"] == "2026-06-01T01:00:00Z"
    assert answered == (await read(api, case, answered["id"])).json()
    assert [answered] == await listed(api, case)


async def test_rescheduling_answers_the_time_as_reads_give_it(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    moved = await reschedule(api, case, sitting)  # to 2026-06-03T14:00:00+08:00
    assert moved.status_code == 200, moved.text
    assert moved.json()["scheduled_at"] == "2026-06-03T06:00:00Z"
    assert moved.json() == (await read(api, case, sitting["id"])).json()


async def test_the_sittings_events_name_its_times_as_its_reads_do(api: Api) -> None:
    """A subscriber comparing the event with the session reads the same string, the time it
    replaced among them."""
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    moved = await reschedule(api, case, sitting)
    assert moved.status_code == 200, moved.text
    [planned] = await events_of(api, case, "session_scheduled")
    [replanned] = await events_of(api, case, "session_rescheduled")
    assert planned.data["scheduled_at"] == "2026-06-01T01:00:00+00:00"
    assert replanned.data["previous_scheduled_at"] == planned.data["scheduled_at"]
    assert replanned.data["scheduled_at"] == "2026-06-03T06:00:00+00:00"
