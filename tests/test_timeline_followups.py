"""Timeline follow-ups: a body reads the center's reason for sending a case elsewhere than triage
advised only when the case was sent to it, as `/assignments` has it; the registration's event and
timeline entry carry the day the resident applied (申请日, 民法典 Art. 195)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from mediation.events.service import TYPE_PREFIX
from tests.support import Api
from tests.test_audit import records
from tests.test_event_feed import read_all
from tests.test_web import Page
from tests.test_web_forms import at_the_body

# The center's reasons for overriding triage: they name another body, and quote a party's number.
VILLAGE_OVERRIDE = "申请人要求由其他村调委会调解, 联系电话13800001234"
VILLAGE_NOTE = "村调委会主任与被申请人系同学, 请注意回避"
TOWN_OVERRIDE = "原村调委会退回, 经当事人同意由镇调委会调处"


def _later(api: Api, minutes: int = 30) -> None:
    api.app.state.clock.at += timedelta(minutes=minutes)


async def _overridden_to_village_then_town(api: Api) -> dict[str, Any]:
    """A case the center sent to a village committee with a reason of its own, the village returned,
    and the center sent on to the town's committee, again with a reason."""
    dispute = await api.step(await api.intake(), "accept")
    dispute = await api.step(
        dispute,
        "assign",
        {"body_id": str(api.bodies["village"]), "override_reason": VILLAGE_OVERRIDE, "note": VILLAGE_NOTE},
    )
    _later(api)
    dispute = await api.step(dispute, "return", {"reason": "本村调委会无法联系被申请人"})
    _later(api)
    return await api.step(
        dispute, "assign", {"body_id": str(api.bodies["town"]), "override_reason": TOWN_OVERRIDE}
    )


async def _timeline(api: Api, dispute: dict[str, Any], headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await api.client.get(f"/v1/disputes/{dispute['id']}/timeline", headers=headers)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    return entries


def _assigns(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["action"] == "assign"]


# ---- the override reason of another body's assignment -------------------------------------------


async def test_a_body_does_not_read_why_the_case_was_sent_to_another_body(api: Api) -> None:
    dispute = await _overridden_to_village_then_town(api)
    town = api.headers("body_mediator", "town", **{"X-Request-ID": "req-town-assigns"})
    to_village, to_town = _assigns(await _timeline(api, dispute, town))
    # The sending to the village stays on the record; why, and the note sent with it, do not.
    assert to_village["payload"]["body_id"] == str(api.bodies["village"])
    assert to_village["payload"]["override_reason"] is None
    assert to_village["payload"]["note"] is None and to_village["reason"] is None
    assert to_village["reason_withheld"] is True
    # Why the case came to the town is the town's to read.
    assert (to_town["payload"]["override_reason"], to_town["reason_withheld"]) == (TOWN_OVERRIDE, False)
    # What was withheld (a party's number) was not disclosed either.
    assert [r for r in await records(api.app) if r.request_id == "req-town-assigns"] == []
    # As /assignments has it: only the town's own sending, with its reason.
    history = await api.client.get(f"/v1/disputes/{dispute['id']}/assignments", headers=town)
    assert [(a["body_id"], a["override_reason"]) for a in history.json()] == [
        (str(api.bodies["town"]), TOWN_OVERRIDE)
    ]

    # The center reads both as written.
    center = [
        (e["payload"]["override_reason"], e["reason_withheld"])
        for e in _assigns(await _timeline(api, dispute, api.auth("clerk")))
    ]
    assert center == [(VILLAGE_OVERRIDE, False), (TOWN_OVERRIDE, False)]


async def test_a_body_reads_why_the_case_was_sent_to_it(api: Api) -> None:
    dispute = await _overridden_to_village_then_town(api)
    _later(api)
    dispute = await api.step(dispute, "return", {"reason": "本镇调委会无法联系被申请人"})
    _later(api)
    dispute = await api.step(
        dispute,
        "assign",
        {"body_id": str(api.bodies["village"]), "override_reason": "亲属已回避, 退回本村调解"},
    )
    village = api.auth("body_mediator", "village")
    seen = [
        (e["payload"]["override_reason"], e["reason"], e["reason_withheld"])
        for e in _assigns(await _timeline(api, dispute, village))
    ]
    assert seen == [
        (VILLAGE_OVERRIDE, VILLAGE_NOTE, False),
        (None, None, True),
        ("亲属已回避, 退回本村调解", None, False),
    ]


async def test_the_case_page_withholds_why_the_case_was_sent_to_another_body(web: Any, api: Api) -> None:
    dispute = await _overridden_to_village_then_town(api)
    page: Page = await at_the_body(web, api, dispute)
    html = (await page.get(f"/cases/{dispute['id']}")).text
    assert "申请人要求由其他村调委会调解" not in html and VILLAGE_NOTE not in html
    assert "指派其他调解组织的理由不予显示" in html
    assert TOWN_OVERRIDE in html  # the town reads why the case came to it


# ---- the application date on the registration -----------------------------------------------------


async def test_the_registration_event_and_entry_carry_the_application_date(api: Api) -> None:
    applied = (api.today - timedelta(days=12)).isoformat()
    referred = await api.intake(channel="hotline", applied_on=applied)
    walked_in = await api.intake()
    registered = {
        e["data"]["dispute_id"]: e["data"]
        for e in await read_all(api)
        if e["type"] == TYPE_PREFIX + "registered"
    }
    # 民法典 Art. 195: applying interrupted the limitation period on the day the resident applied.
    assert registered[referred["id"]]["applied_on"] == applied
    # Not given, it is the registration day: the field is always there.
    assert registered[walked_in["id"]]["applied_on"] == api.today.isoformat()
    for dispute, day in ((referred, applied), (walked_in, api.today.isoformat())):
        (entry,) = [e for e in await _timeline(api, dispute, api.auth("clerk")) if e["action"] == "register"]
        group = {"counts": "everyone", "counted": 2, "threshold": 5, "is_group": False}
        assert entry["payload"] == {"applied_on": day, "group": group}
