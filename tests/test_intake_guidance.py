"""What the window's intake form and the API say when a field is filled in wrong, so that the clerk
knows what to do: the number of people involved against the parties listed, an application date on
a case the center itself received, a place's name typed where its region code goes; and the error
summary at the top of every refused form of the pages."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from mediation.bodies.models import Body
from tests.support import Api, intake_body, person
from tests.test_web import Page, intake_form, signed_in
from tests.test_web_hardening import online_body

EN = {"Accept-Language": "en"}


async def _refused(api: Api, headers: dict[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/v1/disputes", json=intake_body(**overrides), headers={**api.headers(), **(headers or {})}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    return problem


def _summary(page: str) -> str:
    assert '<div class="error-summary"' in page, page[:3000]
    return page.split('<div class="error-summary"')[1].split("</div>")[0]


def _unescaped(page: str) -> str:
    return page.replace("&#34;", '"').replace("&#39;", "'").replace("&quot;", '"')


# ---- 涉及人数 against the parties listed -------------------------------------------------------------


async def test_a_count_of_people_below_the_parties_listed_is_refused_naming_both_numbers(api: Api) -> None:
    parties = [
        person("applicant", "张三", 1),
        person("respondent", "李四", 2),
        person("third_party", "王五", 3),
    ]
    problem = await _refused(api, people_involved=2, parties=parties)
    [error] = problem["errors"]
    assert (error["field"], error["code"]) == ("people_involved", "people_involved_below_parties")
    assert "涉及人数填写为 2 人, 少于所列当事人 3 人" in error["message"]
    english = await _refused(api, EN, people_involved=1)
    [error] = english["errors"]
    assert error["field"] == "people_involved"
    assert "people_involved is 1, fewer than the 2 parties given" in error["message"]


async def test_without_a_count_of_people_the_parties_are_counted_and_an_agent_is_not(api: Api) -> None:
    body = intake_body(
        parties=[
            person("applicant", "张三", 1),
            person("respondent", "李四", 2),
            person("third_party", "王五", 3),
            person("agent", "赵律师", 4),
        ]
    )
    assert "people_involved" not in body
    response = await api.client.post("/v1/disputes", json=body, headers=api.headers())
    assert response.status_code == 201, response.text
    assert response.json()["people_involved"] == 3
    # A count as large as the parties, or larger (the people a group's parties stand for), is kept.
    assert (await api.intake(people_involved=2))["people_involved"] == 2
    assert (await api.intake(people_involved=12))["people_involved"] == 12


async def test_the_intake_form_offers_no_count_of_one_and_says_what_an_empty_one_means(
    api: Api, web: httpx.AsyncClient
) -> None:
    form = (await signed_in(web, api).get("/intake")).text
    field = re.search(r'<input id="f-people_involved"[^>]*>', form)
    assert field, form[:3000]
    assert 'value=""' in field.group(0)
    assert "不填按所列当事人人数计" in form


async def test_the_intake_form_refuses_a_count_below_the_parties_and_counts_them_when_empty(
    api: Api, web: httpx.AsyncClient
) -> None:
    page = signed_in(web, api)
    refused = await page.post("/intake", intake_form(intake_body(people_involved=1)))
    assert refused.status_code == 422, refused.text[:3000]
    assert "涉及人数填写为 1 人, 少于所列当事人 2 人" in _summary(refused.text)
    assert 'id="f-people_involved-error"' in refused.text
    receipt = await page.post("/intake", [*intake_form(intake_body()), ("people_involved", "")])
    assert receipt.status_code == 200, receipt.text[:3000]
    [case] = (await api.client.get("/v1/disputes", headers=api.headers())).json()["items"]
    assert (await api.get(case))["people_involved"] == 2


# ---- the application date of a case the center itself received ---------------------------------------


async def test_an_application_date_on_a_window_case_says_to_leave_it_empty_or_choose_the_referral(
    api: Api, web: httpx.AsyncClient
) -> None:
    problem = await _refused(api, channel="window", applied_on="2026-05-20")
    [error] = problem["errors"]
    assert (error["field"], error["code"]) == ("applied_on", "applied_on_not_referred")
    assert error["message"].startswith("窗口受理的案件以登记之日为申请日, 请将申请日期留空")
    assert "请先将来源渠道改为相应渠道" in error["message"]
    [english] = (await _refused(api, EN, channel="grid", applied_on="2026-05-20"))["errors"]
    assert english["message"].startswith(
        "A case reported by a grid worker was applied for on the day it is registered: leave applied_on out"
    )
    refused = await signed_in(web, api).post("/intake", intake_form(intake_body(applied_on="2026-05-20")))
    assert refused.status_code == 422, refused.text[:3000]
    assert "窗口受理的案件以登记之日为申请日, 请将申请日期留空" in _summary(refused.text)


# ---- a place's name typed for its region code -------------------------------------------------------


async def test_a_town_named_for_the_region_code_is_answered_with_its_code(api: Api) -> None:
    problem = await _refused(api, region_code="枫桥镇")
    [error] = problem["errors"]
    assert (error["field"], error["code"]) == ("region_code", "region_name_given")
    assert error["message"] == "请填写行政区划代码, 不是地名: “枫桥镇”为 330681105000"
    [english] = (await _refused(api, EN, region_code=" 枫桥镇 "))["errors"]
    assert english["message"] == "Give the region's code, not its name: 枫桥镇 is 330681105000"


async def test_a_name_several_places_may_bear_lists_them_and_an_unknown_one_says_so(api: Api) -> None:
    # "枫" is in the names of the town and of its village: the clerk chooses.
    [error] = (await _refused(api, region_code="枫"))["errors"]
    assert error["code"] == "region_name_given"
    assert "“枫”可能是: 枫桥镇 330681105000、枫源村 330681105201; 请填写所指地方的代码" in error["message"]
    parties = [{**person("applicant", "张三", 1), "region_code": "杭州"}, person("respondent", "李四", 2)]
    [error] = (await _refused(api, EN, parties=parties))["errors"]
    assert error["field"] == "parties[0].region_code"
    assert "no place known is named 杭州" in error["message"]


async def test_the_intake_form_takes_the_name_of_one_place_as_its_code(
    api: Api, web: httpx.AsyncClient
) -> None:
    body = intake_body(region_code="枫桥镇")
    body["parties"][0]["region_code"] = "枫源村"
    receipt = await signed_in(web, api).post("/intake", intake_form(body))
    assert receipt.status_code == 200, receipt.text[:3000]
    [case] = (await api.client.get("/v1/disputes", headers=api.headers())).json()["items"]
    registered = await api.get(case)
    assert registered["region_code"] == "330681105000"
    assert registered["parties"][0]["region_code"] == "330681105201"


async def test_the_intake_form_never_guesses_between_places_of_one_name(
    api: Api, app: Any, web: httpx.AsyncClient
) -> None:
    # A second village of that name, in another county: the name no longer says which.
    async with app.state.db.writer() as session, session.begin():
        session.add(
            Body(
                id=uuid.uuid4(),
                name="枫源村人民调解委员会",
                kind="people_mediation_committee",
                tier="village",
                region_code="330604100202",
                categories=[],
                created_at=datetime.now(UTC),
            )
        )
    page = signed_in(web, api)
    refused = await page.post("/intake", intake_form(intake_body(region_code="枫源村")))
    assert refused.status_code == 422, refused.text[:3000]
    shown = _unescaped(refused.text)
    assert "“枫源村”可能是: 枫源村 330604100202、枫源村 330681105201" in _summary(shown)
    # What was typed stays, for the clerk to correct.
    assert re.search(r'<input id="f-region_code"[^>]*value="枫源村"', refused.text)
    assert (await api.client.get("/v1/disputes", headers=api.headers())).json()["items"] == []


async def test_the_online_application_takes_the_name_of_one_place_as_its_code(
    api: Api, web: httpx.AsyncClient
) -> None:
    body = online_body()
    body["region_code"] = "枫桥镇"
    receipt = await Page(web).post("/apply", intake_form(body))
    assert receipt.status_code == 200, receipt.text[:3000]
    refused = await Page(web).post("/apply", intake_form({**body, "region_code": "枫"}))
    assert refused.status_code == 422, refused.text[:3000]
    assert "可能是: 枫桥镇 330681105000、枫源村 330681105201" in _summary(_unescaped(refused.text))


# ---- the error summary of the other pages' forms ---------------------------------------------------


@pytest.mark.parametrize(
    ("form", "count", "fields"),
    [
        ({"current_password": "", "new_password": "", "new_password_again": ""}, 3, None),
        (
            {
                "current_password": "x",
                "new_password": "a new passphrase",
                "new_password_again": "another one",
            },
            1,
            ["new_password_again"],
        ),
    ],
    ids=["blank", "mismatch"],
)
async def test_a_refused_password_change_lists_its_errors_at_the_top_with_links_to_the_fields(
    api: Api, web: httpx.AsyncClient, form: dict[str, str], count: int, fields: list[str] | None
) -> None:
    refused = await signed_in(web, api).post("/account/password", {**form, "idempotency_key": "k"})
    assert refused.status_code == 422, refused.text[:3000]
    summary = _summary(refused.text)
    assert 'role="alert"' in summary and 'tabindex="-1"' in summary
    assert f"有 {count} 处需要更正" in summary
    for name in fields or list(form):
        assert f'<a href="#f-{name}">' in summary
    assert '<a href="#f-new_password_again">再次输入新密码: ' in summary
    for target in re.findall(r'href="#([^"]+)"', summary):
        assert f'id="{target}"' in refused.text
        assert f'<label for="{target}">' in refused.text
    assert refused.text.index("error-summary") < refused.text.index('id="f-current_password"')


async def test_a_refused_lookup_lists_its_errors_at_the_top_with_links_to_the_fields(
    web: httpx.AsyncClient,
) -> None:
    refused = await Page(web).post("/lookup", {"case_number": "", "query_code": ""})
    assert refused.status_code == 422, refused.text[:3000]
    summary = _summary(refused.text)
    assert "有 2 处需要更正" in summary
    assert '<a href="#f-lookup-case_number">案件编号: ' in summary
    assert '<a href="#f-lookup-query_code">查询码: ' in summary
    for target in re.findall(r'href="#([^"]+)"', summary):
        assert f'id="{target}"' in refused.text
