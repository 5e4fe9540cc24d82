"""A sitting (调解会) still to be held, moved (改期) by the body to another time with its reason:
through the API and from the case page, on SQLite and PostgreSQL. The sitting keeps its id and
its earlier times; the case's timeline and the event feed say it moved, once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from mediation.migrate import downgrade, upgrade
from tests.support import Api
from tests.test_sitting_cancellation import cancel, record_continued
from tests.test_web_forms import at_the_body
from tests.test_web_sittings import actions_of, form_on, listed, scheduled, section, text_of

REASON = "被申请人生病住院, 当天无法到场"
# scheduled() sets 2026-06-01 09:00 in Beijing, at 枫源村调委会调解室.
FIRST = "2026-06-01T09:00:00+08:00"
PLACE = "枫源村调委会调解室"
NEW_TIME = "2026-06-03T14:00:00+08:00"


def reschedule_path(case: dict[str, Any], sitting: dict[str, Any]) -> str:
    return f"/v1/disputes/{case['id']}/sessions/{sitting['id']}/reschedule"


async def reschedule(
    api: Api,
    case: dict[str, Any],
    sitting: dict[str, Any],
    body: dict[str, Any] | None = None,
    **headers: str,
) -> httpx.Response:
    return await api.client.post(
        reschedule_path(case, sitting),
        json={"scheduled_at": NEW_TIME, "reason": REASON} if body is None else body,
        headers={
            **api.acting("body_mediator", case),
            "If-Match": f'"{sitting["version"]}"',
            **headers,
        },
    )


def same_instant(a: str, b: str) -> bool:
    from datetime import datetime

    return datetime.fromisoformat(a) == datetime.fromisoformat(b)


async def test_the_body_moves_a_sitting_and_it_keeps_its_id_and_earlier_time(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    before = await api.get(case)
    events = await api.outbox_count(case["id"])
    entries = await api.timeline_count(case["id"])

    response = await reschedule(api, case, sitting)
    assert response.status_code == 200, response.text
    moved = response.json()
    assert moved["id"] == sitting["id"] and moved["status"] == "scheduled"
    assert same_instant(moved["scheduled_at"], NEW_TIME)
    assert (moved["place"], moved["online"]) == (PLACE, False)  # kept, as not given
    assert moved["version"] == sitting["version"] + 1
    assert response.headers["ETag"] == f'"{moved["version"]}"'
    assert moved["rescheduled_count"] == 1
    [earlier] = moved["reschedules"]
    assert same_instant(earlier["from"]["scheduled_at"], FIRST)
    assert (earlier["from"]["place"], earlier["from"]["online"]) == (PLACE, False)
    assert same_instant(earlier["to"]["scheduled_at"], NEW_TIME)
    assert earlier["reason"] == REASON and earlier["at"] and earlier["by"]
    assert earlier["by_role"] == "body_mediator"
    # The list shows the sitting as moved, not a new one beside a cancelled one.
    [shown] = await listed(api, case)
    assert same_instant(shown.pop("scheduled_at"), moved.pop("scheduled_at"))
    assert shown == moved

    # Exactly one timeline entry with the reason and both times, one event, the case's version on.
    assert await api.timeline_count(case["id"]) == entries + 1
    entry = (await api.timeline(case))[-1]
    assert (entry["action"], entry["reason"]) == ("reschedule_session", REASON)
    assert entry["payload"]["session_id"] == sitting["id"]
    assert same_instant(entry["payload"]["scheduled_at"], NEW_TIME)
    assert same_instant(entry["payload"]["previous_scheduled_at"], FIRST)
    assert entry["payload"]["online"] is False
    assert await api.outbox_count(case["id"]) == events + 1
    assert (await api.get(case))["version"] == before["version"] + 1
    feed = await api.client.get("/v1/events", params={"types": "cn.mediation.dispute.session_rescheduled"})
    assert feed.status_code == 200, feed.text
    [event] = [e for e in feed.json()["items"] if e["data"]["session_id"] == sitting["id"]]
    assert event["data"]["action"] == "reschedule_session"
    assert same_instant(event["data"]["previous_scheduled_at"], FIRST)
    assert same_instant(event["data"]["scheduled_at"], NEW_TIME)
    # Free text stays with the case: neither the reason nor the place is in the event.
    assert REASON not in str(event["data"]) and PLACE not in str(event["data"])


async def test_each_move_is_kept_oldest_first_and_a_new_place_is_taken(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    first = await reschedule(api, case, sitting)
    assert first.status_code == 200, first.text
    second = await reschedule(
        api,
        case,
        first.json(),
        {
            "scheduled_at": "2026-06-05T09:30:00+08:00",
            "place": "镇综治中心第二调解室",
            "reason": "调解室被占用",
        },
    )
    assert second.status_code == 200, second.text
    moved = second.json()
    assert moved["place"] == "镇综治中心第二调解室" and moved["rescheduled_count"] == 2
    assert [r["reason"] for r in moved["reschedules"]] == [REASON, "调解室被占用"]
    assert [r["from"]["place"] for r in moved["reschedules"]] == [PLACE, PLACE]
    assert same_instant(moved["reschedules"][1]["from"]["scheduled_at"], NEW_TIME)
    assert moved["reschedules"][1]["to"]["place"] == "镇综治中心第二调解室"
    # The same time elsewhere is a move too (the room is taken).
    third = await reschedule(
        api,
        case,
        moved,
        {"scheduled_at": "2026-06-05T09:30:00+08:00", "place": PLACE, "reason": "第二调解室临时维修"},
    )
    assert third.status_code == 200, third.text
    assert third.json()["rescheduled_count"] == 3
    assert [e["action"] for e in await api.timeline(case)].count("reschedule_session") == 3


async def test_place_and_online_follow_the_rules_of_a_new_sitting(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    # Made online, the place may go; an online sitting moved keeps being online.
    online = await reschedule(
        api, case, sitting, {"scheduled_at": NEW_TIME, "online": True, "place": None, "reason": REASON}
    )
    assert online.status_code == 200, online.text
    assert (online.json()["online"], online.json()["place"]) == (True, None)
    # Back in person, with no place given and none now: refused at `place`, as scheduling refuses it.
    in_person = await reschedule(
        api,
        case,
        online.json(),
        {"scheduled_at": "2026-06-04T09:00:00+08:00", "online": False, "reason": REASON},
    )
    assert in_person.status_code == 422, in_person.text
    assert [(e["field"], e["code"]) for e in in_person.json()["errors"]] == [("place", "place_missing")]
    blank_place = await reschedule(
        api,
        case,
        online.json(),
        {"scheduled_at": "2026-06-04T09:00:00+08:00", "online": False, "place": "", "reason": REASON},
    )
    assert blank_place.status_code == 422, blank_place.text
    assert [e["field"] for e in blank_place.json()["errors"]] == ["place"]
    [now] = await listed(api, case)
    assert (now["online"], now["version"]) == (True, online.json()["version"])


async def test_a_time_without_its_zone_or_no_reason_is_refused_at_the_field(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    naive = await reschedule(api, case, sitting, {"scheduled_at": "2026-06-03T14:00:00", "reason": REASON})
    assert naive.status_code == 422, naive.text
    assert [(e["field"], e["code"]) for e in naive.json()["errors"]] == [("scheduled_at", "timezone_missing")]
    for body, field in (
        ({"reason": REASON}, "scheduled_at"),
        ({"scheduled_at": NEW_TIME}, "reason"),
        ({"scheduled_at": NEW_TIME, "reason": "  "}, "reason"),
        ({"scheduled_at": "1980-01-01T09:00:00+08:00", "reason": REASON}, "scheduled_at"),
    ):
        refused = await reschedule(api, case, sitting, body)
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == [field]
    extra = await reschedule(
        api, case, sitting, {"scheduled_at": NEW_TIME, "reason": REASON, "status": "held"}
    )
    assert extra.status_code == 422, extra.text
    [now] = await listed(api, case)
    assert now["version"] == sitting["version"] and now["rescheduled_count"] == 0


async def test_the_same_time_and_place_is_no_move(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    # The same instant written in another zone is the same time.
    for when in (FIRST, "2026-06-01T01:00:00Z"):
        same = await reschedule(api, case, sitting, {"scheduled_at": when, "reason": REASON})
        assert same.status_code == 422, same.text
        assert [(e["field"], e["code"]) for e in same.json()["errors"]] == [
            ("scheduled_at", "session_unchanged")
        ]
    named = await reschedule(
        api, case, sitting, {"scheduled_at": FIRST, "place": PLACE, "online": False, "reason": REASON}
    )
    assert named.status_code == 422, named.text
    assert [e["action"] for e in await api.timeline(case)].count("reschedule_session") == 0


async def test_a_sitting_held_or_called_off_is_not_moved(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    assert (await cancel(api, case, sitting)).status_code == 200
    called_off = await reschedule(api, case, {**sitting, "version": sitting["version"] + 1})
    assert called_off.status_code == 409, called_off.text
    assert called_off.json()["code"] == "session_cancelled"

    held = await scheduled(api, case)
    recorded = await record_continued(api, case, held)
    assert recorded.status_code == 200, recorded.text
    refused = await reschedule(api, case, recorded.json())
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "session_recorded"
    assert [e["action"] for e in await api.timeline(case)].count("reschedule_session") == 0


async def test_a_case_no_longer_in_mediation_has_no_sitting_to_move(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    # Cancelled with the case when mediation ended: refused as called off, as cancelling is.
    await api.step(await api.get(case), "withdraw")
    ended = await reschedule(api, case, {**sitting, "version": sitting["version"] + 1})
    assert ended.status_code == 409, ended.text
    assert ended.json()["code"] == "session_cancelled"
    assert "不在本组织调解中" in ended.json()["detail"]

    # A sitting left scheduled (as an older release did) on a case no longer in mediation.
    other = await api.drive("mediating")
    left = await scheduled(api, other)
    await api.step(await api.get(other), "withdraw")
    from sqlalchemy import bindparam, text

    from mediation.agreements.models import MediationSession

    async with api.app.state.db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE mediation_sessions SET status = 'scheduled' WHERE id = :id").bindparams(
                bindparam("id", type_=MediationSession.__table__.c.id.type)
            ),
            {"id": uuid.UUID(left["id"])},
        )
    not_now = await reschedule(api, other, {**left, "version": left["version"] + 1})
    assert not_now.status_code == 409, not_now.text
    assert not_now.json()["status_now"] == "withdrawn"


async def test_moving_needs_the_sittings_version(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    missing = await api.client.post(
        reschedule_path(case, sitting),
        json={"scheduled_at": NEW_TIME, "reason": REASON},
        headers=api.acting("body_mediator", case),
    )
    assert missing.status_code == 428, missing.text
    stale = await reschedule(api, case, {**sitting, "version": sitting["version"] + 5})
    assert stale.status_code == 412, stale.text
    moved = await reschedule(api, case, sitting)
    assert moved.status_code == 200
    again = await reschedule(api, case, sitting)  # the version before the move
    assert again.status_code == 412, again.text
    [now] = await listed(api, case)
    assert now["rescheduled_count"] == 1


async def test_only_the_body_handling_the_case_moves_a_sitting(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    headers = {"If-Match": f'"{sitting["version"]}"'}
    body = {"scheduled_at": NEW_TIME, "reason": REASON}
    by_clerk = await api.client.post(
        reschedule_path(case, sitting), json=body, headers={**api.auth("clerk"), **headers}
    )
    assert by_clerk.status_code == 403, by_clerk.text
    by_stranger = await api.client.post(
        reschedule_path(case, sitting),
        json=body,
        headers={**api.auth("body_mediator", "other_village"), **headers},
    )
    assert by_stranger.status_code == 404, by_stranger.text
    elsewhere = await api.client.post(
        f"/v1/disputes/{case['id']}/sessions/{uuid.uuid4()}/reschedule",
        json=body,
        headers={**api.acting("body_mediator", case), **headers},
    )
    assert elsewhere.status_code == 404, elsewhere.text
    by_admin = await reschedule(api, case, sitting, **api.acting("body_admin", case))
    assert by_admin.status_code == 200, by_admin.text  # the body's administrator, as for cancelling
    assert by_admin.json()["reschedules"][0]["by_role"] == "body_admin"


async def test_a_move_sent_again_with_its_key_moves_once(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    first = await reschedule(api, case, sitting, **{"Idempotency-Key": "move-sitting-1"})
    second = await reschedule(api, case, sitting, **{"Idempotency-Key": "move-sitting-1"})
    assert (first.status_code, second.status_code) == (200, 200), second.text
    assert first.json() == second.json()
    assert [e["action"] for e in await api.timeline(case)].count("reschedule_session") == 1


async def test_earlier_places_and_reasons_are_masked_for_a_reader_without_personal_data_rights(
    api: Api,
) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case, place="申请人家中, 联系电话 13800001111")
    moved = await reschedule(
        api,
        case,
        sitting,
        {"scheduled_at": NEW_TIME, "place": PLACE, "reason": "申请人手机 13900002222 停机, 改期"},
    )
    assert moved.status_code == 200, moved.text
    [seen] = await listed(api, case, headers=api.auth("supervisor"))
    [earlier] = seen["reschedules"]
    assert earlier["from"]["place"] and "13800001111" not in earlier["from"]["place"]
    assert earlier["reason"] and "13900002222" not in earlier["reason"]
    [full] = await listed(api, case, headers=api.acting("body_mediator", case))
    assert "13800001111" in full["reschedules"][0]["from"]["place"]


# SQLite's batch migrations reflect the tables they refer to (test_migrations says why this is harmless).
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
async def test_sittings_before_this_release_were_never_moved(api: Api, settings: Any) -> None:
    """Migration 0035: the sittings there are have no moves; downgraded and upgraded again, a
    sitting stays where it was last moved to."""
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    assert (await reschedule(api, case, sitting)).status_code == 200
    await api.app.state.db.engine.dispose()
    await asyncio.to_thread(downgrade, settings.database_url, "0034")
    await asyncio.to_thread(upgrade, settings.database_url)
    [after] = await listed(api, case)
    assert after["id"] == sitting["id"] and same_instant(after["scheduled_at"], NEW_TIME)
    assert (after["rescheduled_count"], after["reschedules"]) == (0, [])
    assert (await reschedule(api, case, after, {"scheduled_at": FIRST, "reason": REASON})).status_code == 200


# ---- the case page ------------------------------------------------------------------------------


def page_reschedule_path(case: dict[str, Any], sitting: dict[str, Any]) -> str:
    return f"/cases/{case['id']}/sittings/{sitting['id']}/reschedule"


def field_error(html: str, form_action: str, name: str) -> str:
    """The error shown at field `name` of the form posting to `form_action`, or ""."""
    import re
    from html import unescape

    start = html.index(f'action="{form_action}"')
    form = html[start : html.index("</form>", start)]
    found = re.search(rf'<div[^>]* data-field="{re.escape(name)}"', form)
    assert found, f"no field {name}"
    block = form[found.start() : form.index("</div>", found.end())]
    error = re.search(r'<p class="error"[^>]*>(.*?)</p>', block, re.S)
    return unescape(error.group(1)).strip() if error else ""


async def test_the_mediator_moves_a_sitting_from_the_case_page(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    page = await at_the_body(web, api, case)
    shown = await page.get(f"/cases/{case['id']}")
    form = form_on(shown.text, page_reschedule_path(case, sitting))
    # Filled in with where the sitting stands now: the mediator changes what moves.
    assert set(form) == {"csrf", "version", "idempotency_key", "scheduled_at", "place", "reason"}
    assert (form["scheduled_at"], form["place"], form["reason"]) == ("2026-06-01T09:00", PLACE, "")

    form.update(scheduled_at="2026-06-03T14:00", reason=REASON)
    done = await page.post(page_reschedule_path(case, sitting), form)
    assert done.status_code == 303, done.text[:3000]
    assert done.headers["location"] == f"/cases/{case['id']}?done=sitting_rescheduled#sittings"
    again = await page.post(page_reschedule_path(case, sitting), form)  # the same form sent twice
    assert again.status_code in (200, 303), again.text[:2000]
    assert [e["action"] for e in await api.timeline(case)].count("reschedule_session") == 1

    [moved] = await listed(api, case)
    assert moved["id"] == sitting["id"] and moved["rescheduled_count"] == 1
    assert same_instant(moved["scheduled_at"], NEW_TIME) and moved["place"] == PLACE

    after = await page.get(done.headers["location"])
    assert "调解会已改期" in after.text
    shown_now = text_of(section(after.text))
    assert "2026-06-03 14:00 · 待召开" in shown_now
    assert f"原定 2026-06-01 09:00 ({PLACE})" in shown_now and f"改期原因: {REASON}" in shown_now
    # The form now offers the sitting at its new time and version.
    moved_form = form_on(after.text, page_reschedule_path(case, moved))
    assert (moved_form["scheduled_at"], moved_form["version"]) == (
        "2026-06-03T14:00",
        f'"{moved["version"]}"',
    )
    timeline = text_of(after.text[after.text.index('id="timeline"') :])
    assert "调解会改期: 6月1日 09:00 → 6月3日 14:00" in timeline and REASON in timeline


async def test_a_refused_move_comes_back_with_the_errors_at_their_fields(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    page = await at_the_body(web, api, case)
    action = page_reschedule_path(case, sitting)
    form = form_on((await page.get(f"/cases/{case['id']}")).text, action)

    blank = await page.post(action, {**form, "scheduled_at": "", "reason": ""})
    assert blank.status_code == 422
    assert field_error(blank.text, action, "scheduled_at") and field_error(blank.text, action, "reason")

    no_place = await page.post(
        action, {**form, "scheduled_at": "2026-06-03T14:00", "place": "", "reason": REASON}
    )
    assert no_place.status_code == 422
    assert field_error(no_place.text, action, "place") == "线下调解须写明地点"
    assert field_error(no_place.text, action, "scheduled_at") == ""
    # What was typed comes back.
    assert form_on(no_place.text, action)["reason"] == REASON

    unchanged = await page.post(action, {**form, "reason": REASON})
    assert unchanged.status_code == 422
    assert "无需改期" in field_error(unchanged.text, action, "scheduled_at")

    [now] = await listed(api, case)
    assert (now["version"], now["rescheduled_count"]) == (sitting["version"], 0)


async def test_a_clerk_gets_no_move_form_and_a_supervisor_reads_earlier_times_masked(
    api: Api, web: httpx.AsyncClient
) -> None:
    from tests.test_web import signed_in

    case = await api.drive("mediating")
    sitting = await scheduled(api, case, place="李四家中, 电话 13800001111")
    moved = await reschedule(
        api,
        case,
        sitting,
        {"scheduled_at": NEW_TIME, "place": PLACE, "reason": "申请人生病, 电话 13900002222"},
    )
    assert moved.status_code == 200, moved.text
    clerk_page = await signed_in(web, api, "clerk").get(f"/cases/{case['id']}")
    assert clerk_page.status_code == 200
    assert page_reschedule_path(case, sitting) not in actions_of(clerk_page.text)
    assert "原定 2026-06-01 09:00" in text_of(section(clerk_page.text))

    supervisor_page = await signed_in(web, api, "supervisor").get(f"/cases/{case['id']}")
    shown = text_of(section(supervisor_page.text))
    assert "原定 2026-06-01 09:00" in shown and "改期原因" in shown
    assert "13800001111" not in shown and "13900002222" not in shown
