"""The pages over real HTTP through the ASGI app, on SQLite and PostgreSQL: sign-in, CSRF, the
window's intake and its receipt, the online application, the party lookup, masking, refusals shown
on the page, and that a page changes nothing the API would refuse."""

from __future__ import annotations

import re
import time
import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from mediation.audit.models import AuditRecord
from mediation.disputes.models import Dispute
from tests.support import CSRF, Api, intake_body, person, resident_id

PASSWORD = "correct horse battery staple"


class Page:
    """A browser without a browser: cookies, the CSRF token, forms posted as forms."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.get(path, **kw)

    async def post(
        self, path: str, data: dict[str, Any] | list[tuple[str, str]], **kw: Any
    ) -> httpx.Response:
        pairs = list(data.items()) if isinstance(data, dict) else list(data)
        if not any(k == "csrf" for k, _ in pairs):
            pairs.append(("csrf", CSRF))
        form: dict[str, list[str]] = {}
        for key, value in pairs:
            form.setdefault(key, []).append(value)
        return await self.client.post(path, data=form, **kw)


def signed_in(web: httpx.AsyncClient, api: Api, role: str = "clerk") -> Page:
    web.cookies.set("mediation_session", api.tokens[(role, api.bodies["center"])])
    return Page(web)


def intake_form(body: dict[str, Any], key: str | None = None) -> list[tuple[str, str]]:
    """The intake form's fields, named as the page names them."""
    pairs: list[tuple[str, str]] = []
    for name, value in body.items():
        if name == "parties":
            for i, party in enumerate(value):
                pairs += [(f"parties[{i}].{k}", str(v)) for k, v in party.items()]
        elif isinstance(value, list):
            pairs += [(name, str(v)) for v in value]
        else:
            pairs.append((name, str(value)))
    pairs.append(("idempotency_key", key or uuid.uuid4().hex))
    # The online form's notice on personal information, ticked as read (the window's form ignores it).
    pairs.append(("pi_notice_read", "yes"))
    return pairs


async def case_count(app: Any) -> int:
    async with app.state.db.reader() as session:
        return int(await session.scalar(select(func.count()).select_from(Dispute)) or 0)


def case_number_in(html: str) -> str:
    found = re.search(r'id="case-number">(\d{6}-\d{4}-\d{6})<', html)
    assert found, html[:2000]
    return found.group(1)


# ---- sign-in and the session ------------------------------------------------------------------------


async def test_sign_in_sets_an_http_only_strict_cookie_and_lands_on_the_queue(
    api: Api, web: httpx.AsyncClient
) -> None:
    page = Page(web)
    response = await page.post("/login", {"username": "test-clerk-center", "password": PASSWORD, "next": ""})
    assert response.status_code == 303
    assert response.headers["location"] == "/queue"
    cookie = response.headers["set-cookie"].lower()
    assert "mediation_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    queue = await page.get("/queue")
    assert queue.status_code == 200
    assert "工作台" in queue.text


async def test_wrong_password_is_refused_on_the_page_and_audited(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    response = await Page(web).post(
        "/login", {"username": "test-clerk-center", "password": "wrong", "next": ""}
    )
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text
    assert "mediation_session" not in response.headers.get("set-cookie", "")
    async with app.state.db.reader() as session:
        outcomes = (
            await session.scalars(select(AuditRecord.outcome).where(AuditRecord.action == "login"))
        ).all()
    assert "denied" in outcomes


async def test_sign_in_never_redirects_off_the_site(api: Api, web: httpx.AsyncClient) -> None:
    form = {"username": "test-clerk-center", "password": PASSWORD, "next": "//elsewhere.example/phish"}
    response = await Page(web).post("/login", form)
    assert response.headers["location"] == "/queue"


async def test_pages_send_a_stranger_to_sign_in_and_refuse_a_change(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    response = await web.get("/queue?tab=all")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fqueue%3Ftab%3Dall"
    before = await case_count(app)
    refused = await Page(web).post("/intake", intake_form(intake_body()))
    assert refused.status_code == 401
    assert "重新登录" in refused.text
    assert await case_count(app) == before


async def test_a_machine_clients_key_is_not_a_page_session(api: Api, web: httpx.AsyncClient) -> None:
    web.cookies.set("mediation_session", api.auth("court")["X-API-Key"])
    assert (await web.get("/queue")).status_code == 303


async def test_a_change_without_the_csrf_token_or_from_another_site_changes_nothing(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    page = signed_in(web, api)
    before = await case_count(app)
    missing = await web.post("/intake", data={k: v for k, v in intake_form(intake_body())})
    assert missing.status_code == 403
    assert "页面已过期" in missing.text
    forged = await page.post(
        "/intake", intake_form(intake_body()), headers={"Origin": "http://attacker.example"}
    )
    assert forged.status_code == 403
    assert await case_count(app) == before


# ---- the window's intake ----------------------------------------------------------------------------


async def test_window_intake_registers_through_the_service_and_prints_the_receipt(
    api: Api, web: httpx.AsyncClient
) -> None:
    page = signed_in(web, api)
    form = await page.get("/intake")
    assert form.status_code == 200
    for name in ("category", "description", "region_code", "parties[0].id_number", "parties[1].name"):
        assert f'name="{name}"' in form.text
    # Every field has its label.
    ids = re.findall(r'<(?:input|select|textarea)[^>]* id="([^"]+)"', form.text)
    labels = set(re.findall(r'<label for="([^"]+)"', form.text))
    assert ids and set(ids) - {"add-party"} <= labels | {i for i in ids if i.startswith("method-")}

    response = await page.post("/intake", intake_form(intake_body()))
    assert response.status_code == 200, response.text[:3000]
    number = case_number_in(response.text)
    code = re.search(r'id="query-code"[^>]*>([A-Z0-9]+)<', response.text)
    assert code and len(code.group(1)) == 8
    assert "接下来" in response.text and "民法典第一百九十五条" in response.text
    listed = await api.client.get("/v1/disputes", params={"q": number})
    (case,) = listed.json()["items"]
    assert case["channel"] == "window" and case["status"] == "registered"
    assert [p["name"] for p in case["parties"]] == ["张三", "李四"]
    # The query code printed on the receipt opens the party's lookup.
    lookup = await Page(web).post("/lookup", {"case_number": number, "query_code": code.group(1)})
    assert lookup.status_code == 200 and "已登记" in lookup.text


async def test_intake_submitted_twice_registers_one_case(api: Api, web: httpx.AsyncClient, app: Any) -> None:
    page = signed_in(web, api)
    form = intake_form(intake_body(), key="same-form-submitted-twice")
    before = await case_count(app)
    first = await page.post("/intake", form)
    second = await page.post("/intake", form)
    assert case_number_in(first.text) == case_number_in(second.text)
    assert "未重复登记" in second.text
    assert await case_count(app) == before + 1


async def test_wrong_id_number_is_refused_at_its_field_and_nothing_is_saved(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    page = signed_in(web, api)
    body = intake_body()
    good = body["parties"][0]["id_number"]
    body["parties"][0]["id_number"] = good[:-1] + ("0" if good[-1] != "0" else "1")
    before = await case_count(app)
    response = await page.post("/intake", intake_form(body))
    assert response.status_code == 422
    field = re.search(r'data-field="parties\[0\]\.id_number".*?</div>', response.text, re.S)
    assert field and "居民身份证号码无效" in field.group(0) and 'aria-invalid="true"' in field.group(0)
    assert 'value="张三"' in response.text  # what was typed is still there
    assert await case_count(app) == before


async def test_numbers_are_checked_as_typed_by_the_intake_rules(api: Api, web: httpx.AsyncClient) -> None:
    page = signed_in(web, api)
    ok = await page.post(
        "/intake/check", {"field": "id_number", "value": resident_id(7), "id_type": "resident_id"}
    )
    assert "格式正确" in ok.text
    bad = await page.post("/intake/check", {"field": "phone", "value": "12345", "id_type": ""})
    assert "电话号码格式不正确" in bad.text


async def test_a_resident_id_of_a_county_created_after_the_birth_is_checked_and_registered(
    api: Api, web: httpx.AsyncClient
) -> None:
    """临平区 (330113) dates from 2021: its code is at city level only in python-stdnum's list."""
    id_number = resident_id(14, born=date(2022, 3, 1), region="330113")
    page = signed_in(web, api)
    checked = await page.post(
        "/intake/check", {"field": "id_number", "value": id_number, "id_type": "resident_id"}
    )
    assert checked.status_code == 200 and "格式正确" in checked.text
    body = {k: v for k, v in intake_body().items() if k != "channel"}
    body["parties"][0]["id_number"] = id_number
    applied = await Page(web).post("/apply", intake_form(body))
    assert applied.status_code == 200, applied.text[:3000]
    assert "网上申请回执" in applied.text


async def test_intake_hints_at_earlier_cases_of_the_same_people(api: Api, web: httpx.AsyncClient) -> None:
    earlier = await api.intake()
    page = signed_in(web, api)
    hint = await page.post(
        "/intake/related",
        {
            "parties[0].id_type": "resident_id",
            "parties[0].id_number": intake_body()["parties"][0]["id_number"],
        },
    )
    assert earlier["case_number"] in hint.text and "证件号码" in hint.text


async def test_intake_hints_at_no_cases_of_an_agent(api: Api, web: httpx.AsyncClient) -> None:
    lawyer = person("agent", "法律援助律师", 77)
    earlier = await api.intake(parties=[*intake_body()["parties"], lawyer])
    page = signed_in(web, api)
    hint = await page.post(
        "/intake/related",
        {
            "parties[2].role": "agent",
            "parties[2].id_type": "resident_id",
            "parties[2].id_number": lawyer["id_number"],
            "parties[2].phone": lawyer["phone"],
        },
    )
    assert hint.status_code == 200 and earlier["case_number"] not in hint.text


async def test_outside_the_centers_region_is_refused_at_the_region_field(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    page = signed_in(web, api)
    before = await case_count(app)
    response = await page.post("/intake", intake_form(intake_body(region_code="110101")))
    assert response.status_code == 422
    field = re.search(r'data-field="region_code".*?</div>', response.text, re.S)
    assert field and "辖区" in field.group(0)
    assert await case_count(app) == before


# ---- online application and lookup (public) ---------------------------------------------------------


async def test_online_application_registers_an_online_case_and_shows_only_its_own_receipt(
    api: Api, web: httpx.AsyncClient
) -> None:
    await api.intake()  # an earlier case of the same applicant: never shown to the public
    body = {k: v for k, v in intake_body().items() if k != "channel"}
    response = await Page(web).post("/apply", intake_form(body))
    assert response.status_code == 200, response.text[:3000]
    number = case_number_in(response.text)
    assert "网上申请回执" in response.text and "相关的已有案件" not in response.text
    (case,) = (await api.client.get("/v1/disputes", params={"q": number})).json()["items"]
    assert case["channel"] == "online"
    timeline = await api.timeline(case)
    assert timeline[0]["actor_role"] == "party"


async def test_an_online_application_leaves_a_number_to_call_the_applicant_back(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    body = {k: v for k, v in intake_body().items() if k != "channel"}
    for party in body["parties"]:
        party.pop("phone", None)
    before = await case_count(app)
    response = await Page(web).post("/apply", intake_form(body))
    assert response.status_code == 422
    field = re.search(r'data-field="parties\[0\]\.phone".*?</div>', response.text, re.S)
    assert field and "联系电话" in field.group(0)
    assert await case_count(app) == before


async def test_online_application_cannot_set_what_the_center_decides(
    api: Api, web: httpx.AsyncClient
) -> None:
    body = {
        **{k: v for k, v in intake_body().items() if k != "channel"},
        "is_risk": "true",
        "severity": "serious",
    }
    response = await Page(web).post("/apply", intake_form(body))
    assert response.status_code == 422  # the form has no such fields
    assert "此表单不接受字段: is_risk, severity" in response.text


async def test_online_application_is_rate_limited_per_address(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    limit = app.state.settings.anonymous_rate_limit_per_minute
    limiter = app.state.identity.anonymous_limiter
    # The bucket refills one token every 60/limit seconds: held at one instant, the posts measure
    # the limit, not how fast a loaded machine sends them.
    instant = limiter.now()
    limiter.now = lambda: instant
    page = Page(web)
    statuses = [(await page.post("/apply", [("description", "短")])).status_code for _ in range(limit + 1)]
    assert statuses[:limit] == [422] * limit
    assert statuses[-1] == 429


async def test_lookup_shows_status_and_next_step_but_no_personal_data(
    api: Api, web: httpx.AsyncClient
) -> None:
    page = signed_in(web, api)
    receipt = await page.post("/intake", intake_form(intake_body()))
    number = case_number_in(receipt.text)
    code = re.search(r'id="query-code"[^>]*>([A-Z0-9]+)<', receipt.text)
    assert code
    public = Page(web)
    web.cookies.delete("mediation_session")
    found = await public.post("/lookup", {"case_number": number, "query_code": code.group(1)})
    assert "中心正在审查是否受理" in found.text
    for private in ("张三", "李四", intake_body()["parties"][0]["id_number"], "1380000"):
        assert private not in found.text
    wrong = await public.post("/lookup", {"case_number": number, "query_code": "WRONG123"})
    assert wrong.status_code == 404 and "不正确" in wrong.text


# ---- the case page ------------------------------------------------------------------------------------


async def test_supervisor_sees_numbers_masked_and_the_clerks_unmasked_read_is_audited(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    case = await api.intake()
    full = intake_body()["parties"][0]["id_number"]
    supervisor = await signed_in(web, api, "supervisor").get(f"/cases/{case['id']}")
    assert supervisor.status_code == 200
    assert full not in supervisor.text and "最小必要" in supervisor.text
    # Asked for: the case page opens with them masked (tests/test_web_show_numbers.py).
    clerk = await signed_in(web, api, "clerk").get(f"/cases/{case['id']}?show=numbers")
    assert full in clerk.text
    async with app.state.db.reader() as session:
        reads = (
            await session.scalars(select(AuditRecord.object_id).where(AuditRecord.action == "pii.read"))
        ).all()
    assert case["id"] in reads


async def test_a_stale_form_is_refused_and_changes_nothing(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.intake()
    page = signed_in(web, api)
    response = await page.post(
        f"/cases/{case['id']}/actions/accept", {"version": '"0"', "idempotency_key": uuid.uuid4().hex}
    )
    assert response.status_code == 412
    # Said at the top of the page, whether or not the action is still offered, and in plain words.
    [banner] = re.findall(r'id="refusal">([^<]*)<', response.text)
    assert "已被他人更新" in banner and "未执行" in banner
    assert "版本" not in response.text
    assert (await api.get(case))["status"] == "registered"


async def test_an_action_the_guards_refuse_shows_why_on_the_page(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.drive("accepted")
    page = signed_in(web, api)
    other = api.bodies["other_village"]  # outside the recommendations, and no reason given
    response = await page.post(
        f"/cases/{case['id']}/actions/assign",
        {"version": f'"{case["version"]}"', "body_id": str(other), "idempotency_key": uuid.uuid4().hex},
    )
    assert response.status_code in (409, 422)
    assert 'class="error banner"' in response.text
    assert (await api.get(case))["status"] == "accepted"


async def test_accept_from_the_page_is_the_apis_accept(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.intake()
    page = signed_in(web, api)
    response = await page.post(
        f"/cases/{case['id']}/actions/accept",
        {"version": f'"{case["version"]}"', "note": "材料齐全", "idempotency_key": uuid.uuid4().hex},
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/cases/{case['id']}?done=accept"
    after = await api.get(case)
    assert after["status"] == "accepted" and after["version"] == case["version"] + 1
    timeline = await api.timeline(case)
    assert timeline[-1]["action"] == "accept" and timeline[-1]["reason"] == "材料齐全"


async def test_printable_pages_carry_the_print_stylesheet(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.drive("agreement_signed")
    page = signed_in(web, api)
    agreements = (await api.client.get(f"/v1/disputes/{case['id']}/agreements")).json()
    printed = await page.get(f"/cases/{case['id']}/agreements/{agreements[-1]['id']}/print")
    assert printed.status_code == 200 and "人民调解协议书" in printed.text and "@media print" in printed.text
    application = await page.get(f"/cases/{case['id']}/confirmation-application")
    assert application.status_code == 200
    assert "司法确认申请书" in application.text and "/static/paper.css" in application.text
    receipt = await page.get(f"/cases/{case['id']}/receipt")
    assert "补打回执" in receipt.text and 'id="query-code"' not in receipt.text


async def test_queue_tabs_filter_through_the_service(api: Api, web: httpx.AsyncClient) -> None:
    registered = await api.intake()
    accepted = await api.drive("accepted")
    page = signed_in(web, api)
    waiting = await page.get("/queue?tab=registered")
    assert registered["case_number"] in waiting.text and accepted["case_number"] not in waiting.text
    triage = await page.get("/queue?tab=accepted")
    assert accepted["case_number"] in triage.text and registered["case_number"] not in triage.text
    searched = await page.get(f"/queue?tab=all&q={registered['case_number']}")
    assert registered["case_number"] in searched.text and accepted["case_number"] not in searched.text


async def test_dashboard_shows_the_statistics_and_the_latest_cases(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.intake()
    dashboard = await signed_in(web, api, "supervisor").get("/dashboard")
    assert dashboard.status_code == 200
    assert "调解成功率" in dashboard.text and case["case_number"] in dashboard.text
    assert dashboard.text.count("<svg") >= 3


@pytest.mark.parametrize(
    ("days", "label", "title"),
    [
        ("30", r"\d{1,2}月\d{1,2}日", r"\d{4}年\d{1,2}月\d{1,2}日 登记"),
        ("90", r"\d{1,2}月\d{1,2}日起", r"\d{4}年\d{1,2}月\d{1,2}日至(\d{4}年)?\d{1,2}月\d{1,2}日 登记"),
        ("366", r"\d{4}年\d{1,2}月", r"\d{4}年\d{1,2}月\d{1,2}日至\d{1,2}月\d{1,2}日 登记"),
    ],
)
async def test_dashboard_trend_names_its_periods_by_their_days(
    api: Api, web: httpx.AsyncClient, days: str, label: str, title: str
) -> None:
    """The trend's axis reads as a clerk reads dates (not the API's ISO week, "2026-W37")."""
    await api.intake()
    dashboard = await signed_in(web, api, "supervisor").get(f"/dashboard?days={days}")
    assert dashboard.status_code == 200
    chart = dashboard.text[dashboard.text.index('aria-label="登记、结案与超期趋势"') :]
    chart = chart[: chart.index("</svg>")]
    axis = re.findall(r'<text[^>]*text-anchor="middle" class="axis">([^<]*)</text>', chart)
    assert axis and all(re.fullmatch(label, text) for text in axis), axis
    dots = re.findall(r"<title>([^<]*): \d+</title>", chart)
    assert dots and all(re.fullmatch(title, t) for t in dots if t.endswith("登记")), dots
    assert "-W" not in chart


async def test_supervisor_issues_a_supervision_order_from_the_case_page(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.drive("mediating")
    page = signed_in(web, api, "supervisor")
    shown = await page.get(f"/cases/{case['id']}")
    assert 'id="issue-order"' in shown.text
    response = await page.post(
        f"/cases/{case['id']}/supervision-orders",
        {
            "version": f'"{case["version"]}"',
            "instruction": "三日内联系双方当事人并报告进展",
            "idempotency_key": "o1",
        },
    )
    assert response.status_code == 303
    orders = (await api.client.get("/v1/supervision-orders", headers=api.auth("supervisor"))).json()["items"]
    assert [o["instruction"] for o in orders] == ["三日内联系双方当事人并报告进展"]
    after = await page.get(f"/cases/{case['id']}")
    assert "待答复" in after.text and "督办" in after.text
    # A clerk may read the case but not supervise: no form, and the page refuses the post.
    clerk = signed_in(web, api, "clerk")
    assert 'id="issue-order"' not in (await clerk.get(f"/cases/{case['id']}")).text
    refused = await clerk.post(
        f"/cases/{case['id']}/supervision-orders",
        {
            "version": f'"{(await api.get(case))["version"]}"',
            "instruction": "再次督办",
            "idempotency_key": "o2",
        },
    )
    assert refused.status_code == 403


async def test_supervisor_acknowledges_and_resolves_a_risk_alert(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.intake(description="因宅基地边界争执, 被申请人扬言要拿刀砍死对方, 情绪激动。")
    (alert,) = (await api.client.get(f"/v1/disputes/{case['id']}/alerts")).json()
    page = signed_in(web, api, "supervisor")
    dashboard = await page.get("/dashboard")
    # The kind is said once, by its label; the title follows without its own "风险预警: ".
    assert "风险预警 · " + alert["title"].removeprefix("风险预警: ") in dashboard.text
    assert f"/cases/{case['id']}#alerts" in dashboard.text
    acknowledged = await page.post(
        f"/cases/{case['id']}/alerts/{alert['id']}/acknowledge", {"version": f'"{alert["version"]}"'}
    )
    assert acknowledged.status_code == 303
    again = await page.post(
        f"/cases/{case['id']}/alerts/{alert['id']}/acknowledge", {"version": f'"{alert["version"]}"'}
    )
    assert again.status_code == 412  # the page it came from was out of date
    resolved = await page.post(
        f"/cases/{case['id']}/alerts/{alert['id']}/resolve",
        {"version": f'"{alert["version"] + 1}"', "resolution": "已通报派出所, 民警到场调处"},
    )
    assert resolved.status_code == 303
    final = (await api.client.get(f"/v1/alerts/{alert['id']}")).json()
    assert final["status"] == "resolved" and final["resolution"] == "已通报派出所, 民警到场调处"


async def test_pages_are_neither_cached_nor_framed_and_run_only_our_own_script(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.intake()
    page = await signed_in(web, api).get(f"/cases/{case['id']}")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "onclick=" not in page.text and "<script>" not in page.text


async def test_the_queue_filter_and_pager_take_the_forms_all_choices_as_no_filter(
    api: Api, web: httpx.AsyncClient
) -> None:
    """The filter form sends "全部" as empty values and the pager carries them on; an unknown
    value (an address edited by hand) filters nothing either."""
    consumer = await api.intake(category="consumer")
    debt = await api.intake(category="debt")
    page = signed_in(web, api)
    everything = await page.get("/queue?tab=all&q=&category=&channel=&status=")
    assert everything.status_code == 200
    assert consumer["case_number"] in everything.text and debt["case_number"] in everything.text
    one = await page.get("/queue?tab=all&q=&category=consumer&channel=&status=")
    assert consumer["case_number"] in one.text and debt["case_number"] not in one.text
    assert 'value="consumer" selected' in one.text
    unknown = await page.get("/queue?tab=all&category=no-such-category&status=closed-ish")
    assert unknown.status_code == 200 and debt["case_number"] in unknown.text
    long_search = await page.get("/queue?tab=all&q=" + "张" * 150)
    assert long_search.status_code == 200 and 'maxlength="100"' in long_search.text


async def test_the_queue_pages_on_with_its_filters(api: Api, web: httpx.AsyncClient) -> None:
    for _ in range(22):
        await api.intake(category="consumer")
    page = signed_in(web, api)
    first = await page.get("/queue?tab=all&q=&category=consumer&channel=&status=")
    [next_page] = re.findall(r'<a rel="next" href="([^"]+)"', first.text)
    second = await page.get(next_page.replace("&amp;", "&"))
    assert second.status_code == 200
    shown = re.findall(r"\d{6}-\d{4}-\d{6}", first.text), re.findall(r"\d{6}-\d{4}-\d{6}", second.text)
    assert len(shown[0]) == 20 and len(shown[1]) == 2 and not set(shown[0]) & set(shown[1])


async def test_a_form_without_its_parties_says_so_and_offers_their_rows_again(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    page = signed_in(web, api)
    body = intake_body()
    del body["parties"]
    before = await case_count(app)
    response = await page.post(
        "/intake", [*intake_form(body), ("parties[0].role", "applicant"), ("parties[1].role", "respondent")]
    )
    assert response.status_code == 422
    assert "请至少填写一名申请人和一名被申请人" in response.text
    assert re.search(
        r'name="parties\[0\]\.role"[^>]*>.*?<option value="applicant" selected', response.text, re.S
    )
    assert re.search(
        r'name="parties\[1\]\.role"[^>]*>.*?<option value="respondent" selected', response.text, re.S
    )
    assert await case_count(app) == before


async def test_a_refusal_of_a_party_as_a_whole_is_shown_at_its_row(api: Api, web: httpx.AsyncClient) -> None:
    """An organisation given a resident's ID number: the party's own check, not one field's."""
    page = signed_in(web, api)
    body = intake_body()
    body["parties"][1] = {**body["parties"][1], "kind": "organisation", "id_type": "resident_id"}
    response = await page.post("/intake", intake_form(body))
    assert response.status_code == 422
    row = re.search(r'<fieldset class="party" data-party="1">.*?</fieldset>', response.text, re.S)
    assert row and 'class="error"' in row.group(0), response.text[:3000]


async def test_an_address_that_is_no_page_gets_a_page_and_the_api_keeps_its_problems(
    api: Api, web: httpx.AsyncClient
) -> None:
    html = {"Accept": "text/html,application/xhtml+xml"}
    missing = await web.get("/no-such-page", headers=html)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "页面不存在" in missing.text
    api_missing = await web.get("/v1/no-such-resource", headers=html)
    assert api_missing.status_code == 404
    assert api_missing.headers["content-type"].startswith("application/problem+json")
    edited = await signed_in(web, api, "supervisor").get("/dashboard?days=5", headers=html)
    assert edited.status_code == 422 and edited.headers["content-type"].startswith("text/html")
    assert "页面地址有误" in edited.text and "统计天数须为 7 至 366 之间的整数" in edited.text
    assert "days" not in re.sub(r"<[^>]+>", "", edited.text)  # the parameter by its name on the page


async def test_the_case_page_names_its_codes(api: Api, web: httpx.AsyncClient) -> None:
    """Timeline actions, a court's ground for rejecting, the handoff's kind and state: names, not
    codes."""
    case = await api.drive("confirmation_rejected")
    page = signed_in(web, api)
    shown = await page.get(f"/cases/{case['id']}")
    assert shown.status_code == 200
    timeline = re.search(r'<ol class="timeline" id="timeline">(.*?)</ol>', shown.text, re.S)
    assert timeline
    actions = re.findall(
        r'<li data-action="([a-z_]+)"><time>[^<]*</time> <strong>([^<]*)</strong>', timeline.group(1)
    )
    assert actions and all(name != code for code, name in actions), actions
    assert not re.search(r"[a-z]+_[a-z_]+", re.sub(r'data-action="[a-z_]+"', "", timeline.group(1)))
    handoffs = re.search(r'<section class="card" id="handoffs">(.*?)</section>', shown.text, re.S)
    assert handoffs and "司法确认" in handoffs.group(1) and "judicial_confirmation" not in handoffs.group(1)


async def test_a_reprinted_receipt_names_the_center_that_registered_the_case(
    api: Api, web: httpx.AsyncClient
) -> None:
    page = signed_in(web, api)
    printed = await page.post("/intake", intake_form(intake_body()))
    case = (await api.client.get("/v1/disputes", params={"q": case_number_in(printed.text)})).json()["items"][
        0
    ]
    center = re.search(r"<th>受理机构</th><td>([^<]+)</td>", printed.text)
    assert center
    again = await page.get(f"/cases/{case['id']}/receipt")
    assert f"<th>受理机构</th><td>{center.group(1)}</td>" in again.text
    # An online application's receipt named the center it went to; so does its reprint.
    applied = await Page(web).post(
        "/apply", intake_form({k: v for k, v in intake_body().items() if k != "channel"})
    )
    assert f"<th>受理机构</th><td>{center.group(1)}</td>" in applied.text
    online = (await api.client.get("/v1/disputes", params={"q": case_number_in(applied.text)})).json()[
        "items"
    ][0]
    reprinted = await signed_in(web, api).get(f"/cases/{online['id']}/receipt")
    assert f"<th>受理机构</th><td>{center.group(1)}</td>" in reprinted.text


async def test_a_blank_required_field_is_called_required(api: Api, web: httpx.AsyncClient) -> None:
    response = await Page(web).post("/lookup", {"case_number": "", "query_code": ""})
    assert response.status_code == 422
    assert "此项为必填项" in response.text and "内容过短" not in response.text


async def test_a_clerk_typing_keeps_the_session_and_an_ended_one_is_said(
    api: Api, web: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`/session/renew`, which the form calls while it is typed in: a token past half its life is
    renewed, a fresh one is left as it is, and without a session it answers 401 (the page then
    says so before the form is sent)."""
    from mediation.identity import credentials

    tokens = app.state.identity.tokens
    claims = tokens.verify(api.tokens[("clerk", api.bodies["center"])])
    real = time.time
    monkeypatch.setattr(credentials.time, "time", lambda: real() - tokens.lifetime * 0.6)
    old = tokens.issue(uuid.UUID(claims["sub"]), claims["role"], uuid.UUID(claims["org"]))
    monkeypatch.setattr(credentials.time, "time", real)

    web.cookies.set("mediation_session", old.token)
    renewed = await web.get("/session/renew")
    assert renewed.status_code == 204
    fresh = renewed.cookies.get("mediation_session")
    assert fresh and fresh != old.token
    assert tokens.verify(fresh)["exp"] > tokens.verify(old.token)["exp"]

    web.cookies.set("mediation_session", fresh)
    again = await web.get("/session/renew")
    assert again.status_code == 204 and "mediation_session" not in again.cookies

    web.cookies.delete("mediation_session")
    assert (await web.get("/session/renew")).status_code == 401


async def test_a_form_sent_after_the_session_ended_offers_sign_in_back_to_its_page(
    api: Api, web: httpx.AsyncClient
) -> None:
    response = await Page(web).post(
        "/intake", intake_form(intake_body()), headers={"Referer": "http://mediation.test/intake"}
    )
    assert response.status_code == 401
    assert 'href="/login?next=/intake"' in response.text
