"""Intake: the day the resident applied, who the parties are, the documents of residents of Hong
Kong, Macao and Taiwan, and the employer of a wage-arrears wave named by any of its respondents."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from stdnum.cn import ric

from tests.support import Api, at_beijing, intake_body, organisation, person, resident_id
from tests.test_web import Page, intake_form, signed_in


async def _refused(api: Api, **overrides: Any) -> dict[str, Any]:
    response = await api.client.post("/v1/disputes", json=intake_body(**overrides), headers=api.headers())
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "/problems/validation-error"
    return problem


# ---- the application date (民法典 Art. 195) -------------------------------------------------------


@pytest.mark.parametrize("channel", ["hotline", "petition", "police"])
async def test_a_referred_case_keeps_the_day_the_resident_applied_at_the_referring_body(api: Api, channel):
    # The resident called 12345 (or went to the petition office, or the police) on 20 May; the work
    # order reached the center on 1 June. Applying interrupted the limitation period on 20 May.
    created = await api.intake(channel=channel, applied_on="2026-05-20")
    assert created["applied_on"] == "2026-05-20"
    assert (await api.get(created))["applied_on"] == "2026-05-20"


async def test_the_window_form_records_the_application_date_and_the_receipt_shows_both_days(
    api: Api, web: httpx.AsyncClient
) -> None:
    page = signed_in(web, api)
    assert 'name="applied_on"' in (await page.get("/intake")).text
    receipt = await page.post("/intake", intake_form(intake_body(channel="hotline", applied_on="2026-05-20")))
    assert receipt.status_code == 200, receipt.text[:3000]
    # When the resident applied (the limitation was interrupted then), and when the center registered it.
    assert re.search(r"申请日期</th><td>2026年5月20日<", receipt.text)
    assert re.search(r"登记日期</th><td>2026年6月1日<", receipt.text)
    # The online application is made to the center itself: it has no such field.
    assert 'name="applied_on"' not in (await Page(web).get("/apply")).text


async def test_a_court_delegated_case_keeps_the_day_the_party_applied_at_the_court(api: Api) -> None:
    created = await api.intake(
        channel="court_delegated", inviting_court_id=str(api.bodies["court"]), applied_on="2026-05-25"
    )
    assert created["applied_on"] == "2026-05-25"


async def test_without_an_application_date_the_registration_day_is_the_application_date(api: Api) -> None:
    assert (await api.intake(channel="hotline"))["applied_on"] == api.today.isoformat()
    # A referred case may give the registration day itself.
    today = api.today.isoformat()
    assert (await api.intake(channel="police", applied_on=today))["applied_on"] == today


async def test_an_application_date_in_the_future_is_refused(api: Api) -> None:
    tomorrow = (api.today + timedelta(days=1)).isoformat()
    problem = await _refused(api, channel="hotline", applied_on=tomorrow)
    [error] = problem["errors"]
    assert (error["field"], error["code"]) == ("applied_on", "applied_on_in_future")


async def test_an_application_date_beyond_the_referral_bound_is_refused(api: Api) -> None:
    # A work order does not wait months to be sent on: a year back is a typo, not a referral.
    assert (await api.intake(channel="petition", applied_on="2026-03-03"))["applied_on"] == "2026-03-03"
    problem = await _refused(api, channel="petition", applied_on="2026-03-02")
    [error] = problem["errors"]
    assert (error["field"], error["code"]) == ("applied_on", "applied_on_too_early")
    assert "90" in error["message"]


@pytest.mark.parametrize("channel", ["window", "online", "grid"])
async def test_an_earlier_application_date_is_refused_where_the_center_itself_received_it(api, channel):
    # At the window or online the resident applies to the center itself, on the day it registers
    # the case; a grid worker's report is no application by the resident at all.
    problem = await _refused(api, channel=channel, applied_on="2026-05-20")
    [error] = problem["errors"]
    assert (error["field"], error["code"]) == ("applied_on", "applied_on_not_referred")


async def _labour_case_failed(api: Api, **intake: Any) -> dict[str, Any]:
    dispute = await api.step(
        await api.intake(
            category="labour", description="员工与用人单位因拖欠工资发生争议, 申请调解。", **intake
        ),
        "accept",
    )
    dispute = await api.step(
        dispute,
        "assign",
        {"body_id": str(api.bodies["labour_mediation"]), "override_reason": "劳动争议由专业调解委员会调解"},
    )
    return await api.step(await api.step(dispute, "sign_for"), "fail")


async def test_the_labour_limitation_is_judged_on_the_day_the_worker_applied(api: Api) -> None:
    # Known on 1 May 2025: the year ran out on 6 May 2026 (劳动争议调解仲裁法 Art. 27; 民法典 Art. 203).
    # The worker called 12345 on 5 May 2026, in time, and that request for relief interrupted the
    # year; the work order was registered on 1 June. No warning that it had run out.
    dispute = await _labour_case_failed(api, channel="hotline", applied_on="2026-05-05")
    referred = await api.step(
        dispute,
        "refer_arbitration",
        {"commission_id": str(api.bodies["labour_commission"]), "rights_known_on": "2025-05-01"},
    )
    assert (await api.handoff(referred))["handoff"]["warnings"] == []


# ---- the parties ----------------------------------------------------------------------------------


async def test_one_person_cannot_be_both_applicant_and_respondent(api: Api) -> None:
    same = {
        **person("respondent", "张叁", 1),
        "phone": "13900000009",
    }  # the same ID number, spelt another way
    problem = await _refused(api, parties=[person("applicant", "张三", 1), same])
    [error] = problem["errors"]
    assert (error["field"], error["code"]) == ("parties", "party_repeated")
    assert "张三" in error["message"] and "张叁" in error["message"]
    assert "申请人" in error["message"] and "被申请人" in error["message"]
    assert resident_id(1) not in problem["detail"] + error["message"]  # names, never the number


async def test_one_company_cannot_be_both_applicant_and_respondent(api: Api) -> None:
    problem = await _refused(
        api, parties=[organisation("applicant", "某建筑公司"), organisation("respondent", "某建筑有限公司")]
    )
    [error] = problem["errors"]
    assert error["code"] == "party_repeated"
    assert "某建筑公司" in error["message"] and "某建筑有限公司" in error["message"]


async def test_the_same_person_listed_twice_on_one_side_is_refused(api: Api) -> None:
    problem = await _refused(
        api,
        parties=[
            person("applicant", "张三", 1),
            person("respondent", "李四", 2),
            person("respondent", "李四", 2),
        ],
    )
    [error] = problem["errors"]
    assert (error["field"], error["code"]) == ("parties", "party_repeated")
    assert "parties[1]" in error["message"] and "parties[2]" in error["message"]


async def test_different_people_and_parties_without_numbers_are_registered(api: Api) -> None:
    unnamed = {"role": "respondent", "kind": "person", "name": "李四"}
    created = await api.intake(
        parties=[person("applicant", "张三", 1), person("applicant", "王五", 3), unnamed, dict(unnamed)]
    )
    assert len(created["parties"]) == 4


# ---- documents of residents of Hong Kong, Macao and Taiwan ----------------------------------------


def _applicant_holding(id_type: str, id_number: str) -> list[dict[str, Any]]:
    applicant = {**person("applicant", "陈大文", 7), "id_type": id_type, "id_number": id_number}
    return [applicant, person("respondent", "李四", 2)]


def residence_permit(region: str, serial: int = 1, born: date = date(1985, 3, 9)) -> str:
    first17 = f"{region}{born:%Y%m%d}{serial:03d}"
    return first17 + ric.calc_check_digit(first17 + "0")


@pytest.mark.parametrize(
    ("id_type", "written", "stored"),
    [
        ("hk_macao_permit", "H12345678", "H12345678"),
        ("hk_macao_permit", "m 8765 4321", "M87654321"),
        ("hk_macao_permit", "H1234567890", "H1234567890"),  # issued before 2013: ten digits
        ("taiwan_permit", "01234567", "01234567"),
        ("hmt_residence_permit", residence_permit("810000"), residence_permit("810000")),
        ("hmt_residence_permit", residence_permit("820000", 2), residence_permit("820000", 2)),
        ("hmt_residence_permit", residence_permit("830000", 3), residence_permit("830000", 3)),
    ],
)
async def test_a_well_formed_document_of_hong_kong_macao_or_taiwan_is_registered(
    api: Api, id_type: str, written: str, stored: str
) -> None:
    created = await api.intake(parties=_applicant_holding(id_type, written))
    assert (created["parties"][0]["id_type"], created["parties"][0]["id_number"]) == (id_type, stored)


def _wrong_check(number: str) -> str:
    return number[:-1] + ("1" if number[-1] == "0" else "0")


@pytest.mark.parametrize(
    ("id_type", "id_number", "expected"),
    [
        ("hk_macao_permit", "12345678", "H 或 M"),
        ("hk_macao_permit", "H1234567", "H 或 M"),
        ("hk_macao_permit", "A12345678", "H 或 M"),
        ("hk_macao_permit", "H123456789", "H 或 M"),
        ("taiwan_permit", "1234567", "8 位数字"),
        ("taiwan_permit", "T1234567", "8 位数字"),
        ("hmt_residence_permit", residence_permit("330681"), "810000"),  # a mainland address code
        ("hmt_residence_permit", residence_permit("810000")[:-1] + "Y", "校验位"),
        ("hmt_residence_permit", _wrong_check(residence_permit("830000")), "校验位"),
        ("hmt_residence_permit", residence_permit("820000", born=date(2090, 1, 1)), "出生日期"),
        ("hmt_residence_permit", "81000019850309001", "18"),
    ],
)
async def test_a_malformed_document_of_hong_kong_macao_or_taiwan_is_refused_saying_what_is_expected(
    api: Api, id_type: str, id_number: str, expected: str
) -> None:
    problem = await _refused(api, parties=_applicant_holding(id_type, id_number))
    [error] = problem["errors"]
    assert (error["field"], error["code"]) == ("parties[0].id_number", "invalid_id_number")
    assert expected in error["message"]


@pytest.mark.parametrize("region", ["810000", "820000", "830000"])
async def test_a_residence_permit_given_as_a_resident_id_is_refused_naming_its_document_type(
    api: Api, region: str
) -> None:
    """The numbers share their structure and check character; the address code tells them apart."""
    before = (await api.client.get("/v1/disputes")).json()["items"]
    problem = await _refused(api, parties=_applicant_holding("resident_id", residence_permit(region)))
    [error] = problem["errors"]
    assert (error["field"], error["code"]) == ("parties[0].id_number", "invalid_id_number")
    assert "港澳台居民居住证" in error["message"]
    assert (await api.client.get("/v1/disputes")).json()["items"] == before


async def test_a_search_by_a_malformed_permit_number_is_refused(api: Api) -> None:
    response = await api.client.post(
        "/v1/disputes/search-by-party",
        json={"id_type": "hk_macao_permit", "id_number": "X12345678"},
        headers=api.headers(),
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["code"] == "invalid_id_number"


# ---- early warning: wage arrears against one employer --------------------------------------------


async def test_a_wage_arrears_wave_counts_the_employer_wherever_it_stands_among_the_respondents(
    api: Api,
) -> None:
    # Five workers claim unpaid wages from the same labour company within five days. Some name the
    # foreman who hired them first and the company second: each claim is against the company all
    # the same (domain.md §4.4: clusters against one respondent, e.g. wage arrears). The fifth
    # names the foreman first and raises the alert; a sixth naming him first joins it.
    employer = organisation("respondent", "诸暨市某建筑劳务有限公司")

    async def wage_claim(n: int) -> None:
        at_beijing(api, date(2026, 6, 1 + n))
        foreman = person("respondent", f"包工头{n}", 200 + n)
        respondents = [employer, foreman] if n % 2 else [foreman, employer]
        await api.intake(
            category="labour",
            description="工人追讨拖欠工资, 申请调解。",
            parties=[person("applicant", f"工人{n}", 100 + n), *respondents],
        )

    async def respondent_alerts() -> list[tuple[int, str]]:
        listed = await api.client.get(
            "/v1/alerts", params={"kind": "cluster"}, headers=api.auth("supervisor")
        )
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        return [(a["case_count"], a["details"]["about"]) for a in items if a["details"]["by"] == "respondent"]

    for n in range(5):
        await wage_claim(n)
    assert await respondent_alerts() == [(5, "诸暨市某建筑劳务有限公司")]
    await wage_claim(6)
    assert await respondent_alerts() == [(6, "诸暨市某建筑劳务有限公司")]
