"""A sitting (调解会) still to be held, called off by the body with its reason: through the API
and from the case page, on SQLite and PostgreSQL. The parties were summoned to it; a body that
cannot hold it must be able to say so, and the list of sittings must not keep it as due."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from mediation.migrate import downgrade, upgrade
from tests.support import Api
from tests.test_web_forms import at_the_body
from tests.test_web_sittings import actions_of, error_at, form_on, listed, scheduled, section, text_of

REASON = "被申请人外出务工, 当天无法到场, 另行安排"


def cancel_path(case: dict[str, Any], sitting: dict[str, Any]) -> str:
    return f"/v1/disputes/{case['id']}/sessions/{sitting['id']}/cancel"


async def cancel(
    api: Api, case: dict[str, Any], sitting: dict[str, Any], reason: str = REASON, **headers: str
) -> httpx.Response:
    return await api.client.post(
        cancel_path(case, sitting),
        json={"reason": reason},
        headers={
            **api.acting("body_mediator", case),
            "If-Match": f'"{sitting["version"]}"',
            **headers,
        },
    )


async def record_continued(api: Api, case: dict[str, Any], held: dict[str, Any]) -> httpx.Response:
    """The body records a sitting as held, the applicant there, mediation to go on."""
    return await api.client.post(
        f"/v1/disputes/{case['id']}/sessions/{held['id']}/record",
        json={
            "held_at": "2026-06-01T09:30:00+08:00",
            "attendees": [{"name": "张三", "capacity": "申请人", "party_id": case["parties"][0]["id"]}],
            "minutes": "双方陈述意见, 约定下次继续调解。",
            "outcome": "continued",
        },
        headers={**api.acting("body_mediator", case), "If-Match": f'"{held["version"]}"'},
    )


async def test_the_body_calls_off_a_sitting_with_its_reason(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    before = await api.get(case)
    events = await api.outbox_count(case["id"])

    response = await cancel(api, case, sitting)
    assert response.status_code == 200, response.text
    called_off = response.json()
    assert (called_off["status"], called_off["cancel_reason"]) == ("cancelled", REASON)
    assert called_off["cancelled_at"] and called_off["version"] == sitting["version"] + 1
    assert response.headers["ETag"] == f'"{called_off["version"]}"'
    assert [s["status"] for s in await listed(api, case)] == ["cancelled"]

    # One timeline entry with the reason, one event, and the case's version moves on.
    entry = (await api.timeline(case))[-1]
    assert (entry["action"], entry["reason"]) == ("cancel_session", REASON)
    assert await api.outbox_count(case["id"]) == events + 1
    assert (await api.get(case))["version"] == before["version"] + 1
    feed = await api.client.get("/v1/events", params={"types": "cn.mediation.dispute.session_cancelled"})
    assert feed.status_code == 200, feed.text
    [event] = [e for e in feed.json()["items"] if e["data"]["session_id"] == sitting["id"]]
    assert event["data"]["action"] == "cancel_session"
    assert REASON not in str(event["data"])  # the reason stays with the case, as any free text

    # A new time is a new sitting; the case is still being mediated.
    again = await scheduled(api, case, scheduled_at="2026-06-08T09:00:00+08:00")
    assert [s["status"] for s in await listed(api, case)] == ["cancelled", "scheduled"]
    assert again["id"] != sitting["id"]


async def test_a_sitting_held_or_called_off_is_not_called_off_again(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    assert (await cancel(api, case, sitting)).status_code == 200
    again = await cancel(api, case, {**sitting, "version": sitting["version"] + 1})
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "session_cancelled"
    assert "不在本组织调解中" not in again.json()["detail"]  # it was the body's choice, not the case's end

    held = await scheduled(api, case)
    recorded = await record_continued(api, case, held)
    assert recorded.status_code == 200, recorded.text
    refused = await cancel(api, case, recorded.json())
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "session_recorded"


async def test_recording_a_sitting_called_off_is_refused(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    assert (await cancel(api, case, sitting)).status_code == 200
    recorded = await api.client.post(
        f"/v1/disputes/{case['id']}/sessions/{sitting['id']}/record",
        json={
            "held_at": "2026-06-01T09:30:00+08:00",
            "attendees": [{"name": "张三", "capacity": "申请人"}],
            "minutes": "双方陈述意见。",
            "outcome": "continued",
        },
        headers={**api.acting("body_mediator", case), "If-Match": f'"{sitting["version"] + 1}"'},
    )
    assert recorded.status_code == 409, recorded.text
    assert recorded.json()["code"] == "session_cancelled"


async def test_calling_off_needs_the_sittings_version(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    missing = await api.client.post(
        cancel_path(case, sitting), json={"reason": REASON}, headers=api.acting("body_mediator", case)
    )
    assert missing.status_code == 428, missing.text
    stale = await cancel(api, case, {**sitting, "version": sitting["version"] + 5})
    assert stale.status_code == 412, stale.text
    blank = await cancel(api, case, sitting, reason="  ")
    assert blank.status_code == 422, blank.text
    assert [e["field"] for e in blank.json()["errors"]] == ["reason"]
    assert [s["status"] for s in await listed(api, case)] == ["scheduled"]


async def test_only_the_body_handling_the_case_calls_a_sitting_off(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    headers = {"If-Match": f'"{sitting["version"]}"'}
    by_clerk = await api.client.post(
        cancel_path(case, sitting), json={"reason": REASON}, headers={**api.auth("clerk"), **headers}
    )
    assert by_clerk.status_code == 403, by_clerk.text
    by_stranger = await api.client.post(
        cancel_path(case, sitting),
        json={"reason": REASON},
        headers={**api.auth("body_mediator", "other_village"), **headers},
    )
    assert by_stranger.status_code == 404, by_stranger.text
    elsewhere = await api.client.post(
        f"/v1/disputes/{case['id']}/sessions/{uuid.uuid4()}/cancel",
        json={"reason": REASON},
        headers={**api.acting("body_mediator", case), **headers},
    )
    assert elsewhere.status_code == 404, elsewhere.text
    assert [s["status"] for s in await listed(api, case)] == ["scheduled"]


async def test_a_cancellation_sent_again_with_its_key_calls_off_once(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    first = await cancel(api, case, sitting, **{"Idempotency-Key": "cancel-sitting-1"})
    second = await cancel(api, case, sitting, **{"Idempotency-Key": "cancel-sitting-1"})
    assert (first.status_code, second.status_code) == (200, 200), second.text
    assert first.json() == second.json()
    assert [e["action"] for e in await api.timeline(case)].count("cancel_session") == 1


async def test_the_reason_is_masked_for_a_reader_without_personal_data_rights(api: Api) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    assert (
        await cancel(api, case, sitting, reason="申请人手机 13800001111 停机, 无法通知")
    ).status_code == 200
    [seen] = await listed(api, case, headers=api.auth("supervisor"))
    assert seen["cancel_reason"] and "13800001111" not in seen["cancel_reason"]


# ---- the case page ------------------------------------------------------------------------------


def page_cancel_path(case: dict[str, Any], sitting: dict[str, Any]) -> str:
    return f"/cases/{case['id']}/sittings/{sitting['id']}/cancel"


async def test_the_mediator_calls_a_sitting_off_from_the_case_page(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    page = await at_the_body(web, api, case)
    shown = await page.get(f"/cases/{case['id']}")
    form = form_on(shown.text, page_cancel_path(case, sitting))
    assert set(form) == {"csrf", "version", "idempotency_key", "reason"}

    blank = await page.post(page_cancel_path(case, sitting), {**form, "reason": ""})
    assert blank.status_code == 422
    assert error_at(blank.text, "reason")
    assert [s["status"] for s in await listed(api, case)] == ["scheduled"]

    form["reason"] = REASON
    done = await page.post(page_cancel_path(case, sitting), form)
    assert done.status_code == 303, done.text[:2000]
    assert done.headers["location"] == f"/cases/{case['id']}?done=sitting_cancelled#sittings"
    again = await page.post(page_cancel_path(case, sitting), form)  # the same form sent twice
    assert again.status_code in (200, 303), again.text[:2000]
    assert [e["action"] for e in await api.timeline(case)].count("cancel_session") == 1

    after = await page.get(done.headers["location"])
    shown_now = text_of(section(after.text))
    assert "已取消调解会" in after.text
    assert "已取消" in shown_now and REASON in shown_now
    assert page_cancel_path(case, sitting) not in actions_of(after.text)
    assert "取消调解" in text_of(after.text)  # the timeline names it


async def test_a_clerk_gets_no_cancel_form(api: Api, web: httpx.AsyncClient) -> None:
    from tests.test_web import signed_in

    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    shown = await signed_in(web, api, "clerk").get(f"/cases/{case['id']}")
    assert shown.status_code == 200
    assert page_cancel_path(case, sitting) not in actions_of(shown.text)


async def test_sittings_called_off_before_this_release_get_when(api: Api, settings: Any) -> None:
    """Migration 0032: a sitting the older release cancelled with its case kept no time of it;
    its last change is when."""
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    await api.step(await api.get(case), "withdraw")
    [before] = await listed(api, case)
    assert before["status"] == "cancelled" and before["cancelled_at"]
    await api.app.state.db.engine.dispose()
    await asyncio.to_thread(downgrade, settings.database_url, "0031")
    await asyncio.to_thread(upgrade, settings.database_url)
    [after] = await listed(api, case)
    assert after["id"] == sitting["id"]
    assert (after["status"], after["cancel_reason"]) == ("cancelled", None)
    assert after["cancelled_at"] is not None
