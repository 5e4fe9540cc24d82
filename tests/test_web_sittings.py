"""The sittings (调解会) on the case page, over real HTTP through the ASGI app, on SQLite and
PostgreSQL: each member of staff who may read a case's sittings through the API sees them on its
page, as the API shows them to that caller (free text masked without pii:read); the forms that
schedule one and record how it went are offered to whom the API lets do it, while it would; a
refused form comes back with each error at its field and what was typed; a form sent twice acts
once."""

from __future__ import annotations

import re
import uuid
from html import unescape
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from mediation.core.pii import redact_text
from tests.support import Api
from tests.test_web import Page, signed_in
from tests.test_web_forms import at_the_body

MINUTES = "调解员向双方释明相邻关系的法律规定; 申请人联系电话 13800001111, 双方陈述意见。"
MASKED_PHONE = "13800001111"


class _Forms(HTMLParser):
    """The forms of a page, each as its action and the fields a browser would send: hidden and
    text inputs, ticked checkboxes, the chosen option of each select, each textarea's text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[str, list[tuple[str, str]]]] = []
        self._fields: list[tuple[str, str]] | None = None
        self._select: str | None = None
        self._first_option: str | None = None
        self._chosen = False
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._fields = []
            self.forms.append((a.get("action", ""), self._fields))
        elif self._fields is None:
            return
        elif tag == "input" and "name" in a:
            if a.get("type") == "checkbox" and "checked" not in a:
                return
            self._fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select, self._first_option, self._chosen = a.get("name"), None, False
        elif tag == "option" and self._select is not None:
            if self._first_option is None:
                self._first_option = a.get("value", "")
            if "selected" in a and not self._chosen:
                self._fields.append((self._select, a.get("value", "")))
                self._chosen = True
        elif tag == "textarea":
            self._textarea, self._text = a.get("name"), ""

    def handle_endtag(self, tag: str) -> None:
        if self._fields is None:
            return
        if tag == "select" and self._select is not None:
            if not self._chosen:
                self._fields.append((self._select, self._first_option or ""))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self._fields.append((self._textarea, self._text))
            self._textarea = None
        elif tag == "form":
            self._fields = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data


def form_on(html: str, action: str) -> dict[str, str]:
    """The form posting to `action` on the page, as a browser would send it untouched."""
    parser = _Forms()
    parser.feed(html)
    found = [fields for where, fields in parser.forms if where == action]
    assert len(found) == 1, [where for where, _ in parser.forms]
    return dict(found[0])


def actions_of(html: str) -> list[str]:
    parser = _Forms()
    parser.feed(html)
    return [where for where, _ in parser.forms]


def section(html: str) -> str:
    found = re.search(r'<section class="card" id="sittings">(.*?)</section>', html, re.S)
    assert found, html[:3000]
    return found.group(1)


def text_of(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def error_at(html: str, name: str) -> str:
    """The error shown in the field named `name` (the element marked `data-field`) among the
    sittings, or ""."""
    shown = section(html)
    found = re.search(rf'<(div|fieldset)[^>]* data-field="{re.escape(name)}"', shown)
    assert found, f"no field {name}"
    block = shown[found.start() : shown.index(f"</{found.group(1)}>", found.end())]
    error = re.search(r'<p class="error"[^>]*>(.*?)</p>', block, re.S)
    return unescape(error.group(1)).strip() if error else ""


def schedule_path(case: dict[str, Any]) -> str:
    return f"/cases/{case['id']}/sittings"


def record_path(case: dict[str, Any], sitting: dict[str, Any]) -> str:
    return f"/cases/{case['id']}/sittings/{sitting['id']}/record"


async def scheduled(api: Api, case: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {"scheduled_at": "2026-06-01T09:00:00+08:00", "place": "枫源村调委会调解室", **overrides}
    response = await api.client.post(
        f"/v1/disputes/{case['id']}/sessions", json=body, headers=api.acting("body_mediator", case)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def listed(
    api: Api, case: dict[str, Any], headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    response = await api.client.get(f"/v1/disputes/{case['id']}/sessions", headers=headers or api.auth())
    assert response.status_code == 200, response.text
    return list(response.json())


def present(form: dict[str, str], case: dict[str, Any], *roles: str) -> dict[str, str]:
    """The record form with the parties of `roles` ticked as present."""
    ticked = dict(form)
    for name, value in form.items():
        row = re.fullmatch(r"attendees\[(\d+)\]\.party_id", name)
        if row and next(p["role"] for p in case["parties"] if p["id"] == value) in roles:
            ticked[f"attendees[{row.group(1)}].present"] = "true"
    return ticked


# ---- scheduling -------------------------------------------------------------------------------------


async def test_the_mediator_schedules_a_sitting_at_the_hour_typed_and_it_is_listed(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.drive("mediating")
    page = await at_the_body(web, api, case)
    shown = await page.get(f"/cases/{case['id']}")
    assert shown.status_code == 200
    assert "尚未安排调解会" in text_of(section(shown.text))
    form = form_on(shown.text, schedule_path(case))
    assert set(form) == {"csrf", "idempotency_key", "scheduled_at", "place"}
    assert 'type="datetime-local"' in section(shown.text)
    # The hour typed is the center's own (Beijing here): 09:30 on the page is 01:30 UTC.
    form.update(scheduled_at="2026-06-03T09:30", place="枫源村调委会调解室")
    done = await page.post(schedule_path(case), form)
    assert done.status_code == 303, done.text[:3000]
    assert done.headers["location"] == f"/cases/{case['id']}?done=sitting_scheduled#sittings"

    [sitting] = await listed(api, case)
    assert sitting["scheduled_at"] in ("2026-06-03T01:30:00Z", "2026-06-03T01:30:00+00:00")
    assert (sitting["status"], sitting["place"], sitting["online"]) == (
        "scheduled",
        "枫源村调委会调解室",
        False,
    )
    assert "schedule_session" in [e["action"] for e in await api.timeline(case)]

    after = await page.get(done.headers["location"])
    shown_now = text_of(section(after.text))
    assert "已安排调解会" in after.text
    assert "2026-06-03 09:30 · 待召开" in shown_now and "枫源村调委会调解室" in shown_now
    assert sitting["mediator_name"] and sitting["mediator_name"] in shown_now
    assert record_path(case, sitting) in actions_of(after.text)


async def test_an_online_sitting_needs_no_place(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.drive("mediating")
    page = await at_the_body(web, api, case)
    form = form_on((await page.get(f"/cases/{case['id']}")).text, schedule_path(case))
    form.update(scheduled_at="2026-06-03T14:00", online="true")
    assert (await page.post(schedule_path(case), form)).status_code == 303
    [sitting] = await listed(api, case)
    assert (sitting["online"], sitting["place"]) == (True, None)
    assert "线上调解" in text_of(section((await page.get(f"/cases/{case['id']}")).text))


async def test_a_schedule_form_sent_twice_schedules_one_sitting(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.drive("mediating")
    page = await at_the_body(web, api, case)
    form = form_on((await page.get(f"/cases/{case['id']}")).text, schedule_path(case))
    form.update(scheduled_at="2026-06-03T09:30", place="村委会二楼")
    first = await page.post(schedule_path(case), form)
    second = await page.post(schedule_path(case), form)
    assert first.status_code == second.status_code == 303, second.text[:3000]
    assert first.headers["location"] == second.headers["location"]
    assert len(await listed(api, case)) == 1
    assert [e["action"] for e in await api.timeline(case)].count("schedule_session") == 1
    # The page shown again carries a new key: a second sitting is a form of its own.
    again = form_on((await page.get(f"/cases/{case['id']}")).text, schedule_path(case))
    assert again["idempotency_key"] != form["idempotency_key"]
    again.update(scheduled_at="2026-06-05T09:30", place="村委会二楼")
    assert (await page.post(schedule_path(case), again)).status_code == 303
    assert len(await listed(api, case)) == 2


async def test_a_refused_schedule_form_says_why_at_each_field_and_keeps_what_was_typed(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.drive("mediating")
    page = await at_the_body(web, api, case)
    form = form_on((await page.get(f"/cases/{case['id']}")).text, schedule_path(case))

    # In person, and no place: the schema's check across the fields, shown at the place.
    form.update(scheduled_at="2026-06-03T09:30", place="")
    refused = await page.post(schedule_path(case), form)
    assert refused.status_code == 422, refused.text[:3000]
    assert error_at(refused.text, "place") == "线下调解须写明地点"
    assert 'id="schedule-sitting" open' in refused.text
    assert form_on(refused.text, schedule_path(case))["scheduled_at"] == "2026-06-03T09:30"

    # No time, and one outside the years the service keeps records for.
    for when, message in (("", "必填项"), ("2100-01-01T09:00", "时间须在 1990 年至 2099 年之间")):
        form.update(scheduled_at=when, place="村委会")
        refused = await page.post(schedule_path(case), form)
        assert refused.status_code == 422, refused.text[:3000]
        assert error_at(refused.text, "scheduled_at") == message
        assert form_on(refused.text, schedule_path(case))["place"] == "村委会"
    assert await listed(api, case) == []


# ---- recording ---------------------------------------------------------------------------------------


async def test_the_mediator_records_who_came_the_minutes_and_the_outcome(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    page = await at_the_body(web, api, case)
    shown = await page.get(f"/cases/{case['id']}")
    form = form_on(shown.text, record_path(case, sitting))
    # Filled in with the sitting as scheduled: its hour, and the mediator holding it.
    assert form["held_at"] == "2026-06-01T09:00"
    assert form["version"] == f'"{sitting["version"]}"'
    mediator_row = next(k for k, v in form.items() if v == sitting["mediator_name"])
    assert form[mediator_row.replace(".name", ".capacity")] == "调解员"
    assert not any(k.endswith(".present") for k in form)  # nobody is ticked present for the mediator

    form = present(form, case, "applicant", "respondent")
    form.update(minutes=MINUTES, outcome="continued")
    done = await page.post(record_path(case, sitting), form)
    assert done.status_code == 303, done.text[:3000]
    assert done.headers["location"] == f"/cases/{case['id']}?done=sitting_recorded#sittings"

    [held] = await listed(api, case)
    assert (held["status"], held["outcome"], held["minutes"]) == ("held", "continued", MINUTES)
    assert held["held_at"] in ("2026-06-01T01:00:00Z", "2026-06-01T01:00:00+00:00")
    roles = {p["id"]: p["role"] for p in case["parties"]}
    assert sorted(
        (roles.get(a.get("party_id"), ""), a["name"], a["capacity"]) for a in held["attendees"]
    ) == sorted(
        [
            ("applicant", "张三", "申请人"),
            ("respondent", "李四", "被申请人"),
            ("", sitting["mediator_name"], "调解员"),
        ]
    )
    assert (await api.get(case))["status"] == "mediating"

    after = await page.get(done.headers["location"])
    shown_now = text_of(section(after.text))
    assert "已记录调解情况" in after.text
    # The page opens with the numbers masked, in the minutes too, until they are asked for.
    assert "2026-06-01 09:00 · 已召开" in shown_now and "继续调解" in shown_now
    assert redact_text(MINUTES) in shown_now and MINUTES not in shown_now
    assert "张三 (申请人)、李四 (被申请人)" in shown_now
    # Recorded once: no form to record it again; another sitting may still be scheduled.
    assert record_path(case, sitting) not in actions_of(after.text)
    assert schedule_path(case) in actions_of(after.text)


async def test_a_record_form_sent_twice_records_once(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    page = await at_the_body(web, api, case)
    form = present(
        form_on((await page.get(f"/cases/{case['id']}")).text, record_path(case, sitting)), case, "applicant"
    )
    form.update(minutes="双方各自陈述。", outcome="adjourned")
    first = await page.post(record_path(case, sitting), form)
    second = await page.post(record_path(case, sitting), form)
    assert first.status_code == second.status_code == 303, second.text[:3000]
    assert first.headers["location"] == second.headers["location"]
    [held] = await listed(api, case)
    assert (held["status"], held["outcome"], held["version"]) == ("held", "adjourned", sitting["version"] + 1)
    assert [e["action"] for e in await api.timeline(case)].count("record_session") == 1


async def test_an_outcome_that_ends_mediation_ends_it_and_the_forms_go(
    api: Api, web: httpx.AsyncClient
) -> None:
    """人民调解法 Art. 17: a party who refuses mediation ends it; the page names the party."""
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    coming = await scheduled(api, case, scheduled_at="2026-06-08T09:00:00+08:00")
    respondent = next(p for p in case["parties"] if p["role"] == "respondent")
    page = await at_the_body(web, api, case)
    shown = await page.get(f"/cases/{case['id']}")
    assert "当事人拒绝调解" in section(shown.text) and "人民调解法第十七条" in section(shown.text)
    form = present(form_on(shown.text, record_path(case, sitting)), case, "applicant", "respondent")
    form.update(minutes="被申请人明确表示不愿调解。", outcome="party_refused", party_id=respondent["id"])
    done = await page.post(record_path(case, sitting), form)
    assert done.status_code == 303, done.text[:3000]
    assert done.headers["location"] == f"/cases/{case['id']}?done=sitting_recorded_ended#sittings"

    after_case = await api.get(case)
    assert after_case["status"] == "mediation_failed"
    assert {s["id"]: s["status"] for s in await listed(api, case)} == {
        sitting["id"]: "held",
        coming["id"]: "cancelled",
    }
    after = await page.get(done.headers["location"])
    shown_now = text_of(section(after.text))
    assert "当事人拒绝调解: 李四" in shown_now and "已取消" in shown_now
    # Mediation has ended: the API would take no sitting now, and the page offers none.
    assert not [a for a in actions_of(after.text) if "/sittings" in a]


async def test_a_refused_record_form_says_why_at_each_field_and_keeps_what_was_typed(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    page = await at_the_body(web, api, case)
    blank = form_on((await page.get(f"/cases/{case['id']}")).text, record_path(case, sitting))
    path = record_path(case, sitting)

    # Nobody present (the mediator's row emptied), no minutes, no outcome: each said at its field.
    others = range(len(case["parties"]), len(case["parties"]) + 3)
    form = blank | {f"attendees[{i}].{k}": "" for i in others for k in ("name", "capacity")}
    refused = await page.post(path, form)
    assert refused.status_code == 422, refused.text[:3000]
    assert error_at(refused.text, "attendees") == "条目过少: 请勾选到场的当事人, 或填写其他到场人员"
    assert error_at(refused.text, "minutes") == "必填项"
    assert error_at(refused.text, "outcome")
    assert "open" in re.search(r'<details class="task record-sitting"([^>]*)>', refused.text).group(1)

    # The party who refused must be named: said at that field, what was typed kept.
    form = present(blank, case, "applicant")
    form.update(minutes="被申请人不愿调解。", outcome="party_refused")
    refused = await page.post(path, form)
    assert refused.status_code == 422, refused.text[:3000]
    assert error_at(refused.text, "party_id") == "须写明拒绝调解或要求终止的当事人"
    kept = form_on(refused.text, path)
    assert (kept["minutes"], kept["outcome"]) == ("被申请人不愿调解。", "party_refused")
    assert [k for k in kept if k.endswith(".present")] == [k for k in form if k.endswith(".present")]

    # Someone else who came, named without saying in what capacity: said at that row.
    row = len(case["parties"]) + 1
    form = present(blank, case, "applicant")
    form.update(minutes="双方陈述。", outcome="continued", **{f"attendees[{row}].name": "王五"})
    refused = await page.post(path, form)
    assert refused.status_code == 422, refused.text[:3000]
    assert error_at(refused.text, f"attendees[{row}].capacity")
    assert form_on(refused.text, path)[f"attendees[{row}].name"] == "王五"

    # Held later than now: the service's refusal, at the time.
    form = present(blank, case, "applicant")
    form.update(minutes="双方陈述。", outcome="continued", held_at="2026-06-02T09:00")
    refused = await page.post(path, form)
    assert refused.status_code == 422, refused.text[:3000]
    assert error_at(refused.text, "held_at") == "调解时间不能晚于现在"

    [still] = await listed(api, case)
    assert (still["status"], still["version"]) == ("scheduled", sitting["version"])
    assert "record_session" not in [e["action"] for e in await api.timeline(case)]


async def test_a_sitting_recorded_since_the_page_was_shown_is_not_recorded_again(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case)
    page = await at_the_body(web, api, case)
    form = present(
        form_on((await page.get(f"/cases/{case['id']}")).text, record_path(case, sitting)), case, "applicant"
    )
    form.update(minutes="页面上填写的笔录。", outcome="continued")
    # Meanwhile, through the API.
    recorded = await api.client.post(
        f"/v1/disputes/{case['id']}/sessions/{sitting['id']}/record",
        json={
            "held_at": "2026-06-01T09:10:00+08:00",
            "attendees": [{"name": "张三", "capacity": "申请人"}],
            "minutes": "接口记录的笔录。",
            "outcome": "continued",
        },
        headers={**api.acting("body_mediator", case), "If-Match": f'"{sitting["version"]}"'},
    )
    assert recorded.status_code == 200, recorded.text
    refused = await page.post(record_path(case, sitting), form)
    assert refused.status_code == 412, refused.text[:3000]
    assert "调解会已被他人更新" in text_of(refused.text)
    [held] = await listed(api, case)
    assert held["minutes"] == "接口记录的笔录。"
    assert [e["action"] for e in await api.timeline(case)].count("record_session") == 1


# ---- who sees what ----------------------------------------------------------------------------------


async def _held_and_coming(api: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    case = await api.drive("mediating")
    held = await scheduled(api, case, place="枫源村调委会 联系人电话 13800001111")
    response = await api.client.post(
        f"/v1/disputes/{case['id']}/sessions/{held['id']}/record",
        json={
            "held_at": "2026-06-01T09:10:00+08:00",
            "attendees": [
                {"party_id": p["id"], "name": p["name"], "capacity": "当事人"} for p in case["parties"]
            ],
            "minutes": MINUTES,
            "outcome": "continued",
        },
        headers={**api.acting("body_mediator", case), "If-Match": f'"{held["version"]}"'},
    )
    assert response.status_code == 200, response.text
    coming = await scheduled(api, case, scheduled_at="2026-06-08T09:00:00+08:00")
    return case, response.json(), coming


async def _page_as(web: httpx.AsyncClient, api: Api, case: dict[str, Any], who: str) -> Page:
    if who in ("clerk", "supervisor"):
        return signed_in(web, api, who)
    return await at_the_body(web, api, case, who)


@pytest.mark.parametrize(
    ("who", "masked", "forms"),
    [
        ("clerk", False, False),
        ("supervisor", True, False),
        ("body_mediator", False, True),
        ("body_admin", False, True),
    ],
)
async def test_each_role_sees_the_sittings_as_the_api_shows_them_and_the_forms_it_may_use(
    api: Api, web: httpx.AsyncClient, who: str, masked: bool, forms: bool
) -> None:
    case, held, coming = await _held_and_coming(api)
    page = await _page_as(web, api, case, who)
    # The numbers asked for: the page shows them as the API does to each role.
    shown = await page.get(f"/cases/{case['id']}?show=numbers")
    assert shown.status_code == 200
    sittings = text_of(section(shown.text))
    if who in ("clerk", "supervisor"):
        headers = api.auth(who)
    else:
        headers = await api.signed_in(who, "village")
    through_api = {s["id"]: s for s in await listed(api, case, headers)}
    assert set(through_api) == {held["id"], coming["id"]}
    for s in through_api.values():
        assert f'data-sitting="{s["id"]}"' in shown.text
        assert s["place"] in sittings
    assert through_api[held["id"]]["minutes"] in sittings
    # Personal data in the minutes and the place: masked for whom the API masks it (个人信息保护法 Art. 51).
    assert (MASKED_PHONE not in sittings) is masked
    assert (MASKED_PHONE not in through_api[held["id"]]["minutes"]) is masked
    posts = [a for a in actions_of(shown.text) if "/sittings" in a]
    if forms:
        cancel = f"/cases/{case['id']}/sittings/{coming['id']}/cancel"
        move = f"/cases/{case['id']}/sittings/{coming['id']}/reschedule"
        assert sorted(posts) == sorted([schedule_path(case), record_path(case, coming), cancel, move])
    else:
        assert posts == []
        # And the API refuses them these changes, as the page does not offer them.
        tried = await api.client.post(
            f"/v1/disputes/{case['id']}/sessions",
            json={"scheduled_at": "2026-06-09T09:00:00+08:00", "online": True},
            headers=headers,
        )
        assert tried.status_code == 403, tried.text


async def test_a_form_posted_by_a_role_the_page_does_not_offer_it_to_changes_nothing(
    api: Api, web: httpx.AsyncClient
) -> None:
    case, _, coming = await _held_and_coming(api)
    page = signed_in(web, api, "clerk")
    form = {"idempotency_key": uuid.uuid4().hex, "scheduled_at": "2026-06-09T09:00", "online": "true"}
    refused = await page.post(schedule_path(case), form)
    assert refused.status_code == 403, refused.text[:3000]
    assert "只有承办案件的调解组织可以办理" in text_of(refused.text)
    record = {
        "idempotency_key": uuid.uuid4().hex,
        "version": f'"{coming["version"]}"',
        "held_at": "2026-06-01T09:00",
        "attendees[0].name": "张三",
        "attendees[0].capacity": "申请人",
        "minutes": "笔录",
        "outcome": "continued",
    }
    assert (await page.post(record_path(case, coming), record)).status_code == 403
    assert {s["id"]: s["status"] for s in await listed(api, case)}[coming["id"]] == "scheduled"
    assert len(await listed(api, case)) == 2


async def test_another_bodys_mediator_sees_neither_the_case_nor_its_sittings(
    api: Api, web: httpx.AsyncClient
) -> None:
    case, _, coming = await _held_and_coming(api)
    elsewhere = {**case, "body_id": str(api.bodies["town"])}
    page = await at_the_body(web, api, elsewhere)
    assert (await page.get(f"/cases/{case['id']}")).status_code == 404
    form = {"idempotency_key": uuid.uuid4().hex, "scheduled_at": "2026-06-09T09:00", "online": "true"}
    assert (await page.post(schedule_path(case), form)).status_code == 404
    record = {"idempotency_key": uuid.uuid4().hex, "version": f'"{coming["version"]}"', "minutes": "笔录"}
    assert (await page.post(record_path(case, coming), record)).status_code == 404
    assert [s["status"] for s in await listed(api, case)] == ["held", "scheduled"]


@pytest.mark.parametrize("state", ["assigned", "agreement_signed"])
async def test_no_sitting_form_is_offered_while_the_api_would_refuse_it(
    api: Api, web: httpx.AsyncClient, state: str
) -> None:
    """Sittings are held while the case is being mediated: not before the body signs for it, nor
    once an agreement has been reached (the sittings still to come are then cancelled)."""
    coming = None
    if state == "agreement_signed":
        case = await api.drive("mediating")
        coming = await scheduled(api, case, scheduled_at="2026-06-08T09:00:00+08:00")
        case = await api.step(await api.get(case), "agree")
    else:
        case = await api.drive("assigned")
    page = await at_the_body(web, api, case)
    shown = await page.get(f"/cases/{case['id']}")
    assert shown.status_code == 200
    assert not [a for a in actions_of(shown.text) if "/sittings" in a]
    tried = await api.client.post(
        f"/v1/disputes/{case['id']}/sessions",
        json={"scheduled_at": "2026-06-09T09:00:00+08:00", "online": True},
        headers=api.acting("body_mediator", case),
    )
    assert tried.status_code == 409, tried.text
    # A form kept open from before is refused, and the page says why beside the sittings.
    form = {"idempotency_key": uuid.uuid4().hex, "scheduled_at": "2026-06-09T09:00", "online": "true"}
    refused = await page.post(schedule_path(case), form)
    assert refused.status_code == 409, refused.text[:3000]
    assert "不能安排调解" in text_of(section(refused.text))
    if coming is not None:
        assert f'data-sitting="{coming["id"]}" data-status="cancelled"' in shown.text
        # Nor is the sitting that will not take place offered to be recorded.
        record = {"idempotency_key": uuid.uuid4().hex, "version": f'"{coming["version"] + 1}"'}
        refused = await page.post(
            record_path(case, coming),
            record
            | {
                "held_at": "2026-06-01T09:00",
                "attendees[0].name": "张三",
                "attendees[0].capacity": "申请人",
                "minutes": "笔录",
                "outcome": "continued",
            },
        )
        assert refused.status_code == 409, refused.text[:3000]
        assert "这次调解已取消" in text_of(section(refused.text))
    assert all(s["status"] != "scheduled" for s in await listed(api, case))
