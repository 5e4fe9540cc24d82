"""A labour dispute is a group dispute when ten or more workers share a claim (劳动争议调解仲裁法
Art. 7, "发生劳动争议的劳动者一方在十人以上, 并有共同请求的"): the threshold counts the workers' side,
not the employer. The triage rules say per category what the group threshold counts (`group_counts`):
every person the dispute involves, or the workers' side; intake and corrections decide alike, and the
timeline and the triage explanation say what was counted."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from tests.support import Api, organisation, person
from tests.test_corrections import correct
from tests.test_web import signed_in

EN = {"Accept-Language": "en"}


def _workers(n: int, role: str = "applicant") -> list[dict[str, Any]]:
    return [person(role, f"工人{i}", i) for i in range(1, n + 1)]


def _agent() -> dict[str, Any]:
    return {"role": "agent", "kind": "person", "name": "代理律师"}


async def _labour(api: Api, parties: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    return await api.intake(
        category="labour",
        description="某公司拖欠工人工资三个月, 工人申请调解。",
        parties=parties,
        **overrides,
    )


async def _registered_group(api: Api, dispute: dict[str, Any]) -> dict[str, Any]:
    [entry] = [e for e in await api.timeline(dispute) if e["action"] == "register"]
    return dict(entry["payload"]["group"])


async def _case_page(api: Api, web: httpx.AsyncClient, dispute: dict[str, Any]) -> str:
    page = signed_in(web, api)
    response = await page.get(f"/cases/{dispute['id']}")
    assert response.status_code == 200, response.text[:2000]
    return response.text


async def _triage_group_reason(api: Api, dispute: dict[str, Any], **headers: str) -> dict[str, Any]:
    accepted = await api.step(dispute, "accept")
    response = await api.client.get(f"/v1/disputes/{accepted['id']}/triage", headers=headers or None)
    assert response.status_code == 200, response.text
    [reason] = [r for r in response.json()["tier_reasons"] if r["code"] == "tier_by_group"]
    return dict(reason)


def _counted(counts: str, counted: int, threshold: int) -> dict[str, Any]:
    return {"counts": counts, "counted": counted, "threshold": threshold, "is_group": counted >= threshold}


# ---- intake ---------------------------------------------------------------------------------------


async def test_nine_workers_and_their_employer_are_no_group_labour_dispute(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await _labour(api, [*_workers(9), organisation("respondent", "某建筑劳务有限公司")])
    assert (dispute["people_involved"], dispute["is_group"], dispute["tier"]) == (10, False, "town")
    assert await _registered_group(api, dispute) == _counted("workers", 9, 10)
    assert "劳动者一方9人, 未达群体性纠纷标准10人" in await _case_page(api, web, dispute)


async def test_ten_workers_and_their_employer_are_a_group_labour_dispute(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await _labour(api, [*_workers(10), organisation("respondent", "某建筑劳务有限公司")])
    assert (dispute["people_involved"], dispute["is_group"], dispute["tier"]) == (11, True, "county")
    assert await _registered_group(api, dispute) == _counted("workers", 10, 10)
    assert "劳动者一方10人, 达到群体性纠纷标准10人" in await _case_page(api, web, dispute)
    reason = await _triage_group_reason(api, dispute)
    assert "劳动者一方10人" in reason["text"]
    assert (reason["data"]["counts"], reason["data"]["counted"], reason["data"]["threshold"]) == (
        "workers",
        10,
        10,
    )
    english = await api.client.get(f"/v1/disputes/{dispute['id']}/triage", headers=EN)
    [said] = [r["text"] for r in english.json()["tier_reasons"] if r["code"] == "tier_by_group"]
    assert "10 on the workers' side" in said


async def test_ten_workers_against_two_employer_entities_count_ten(api: Api) -> None:
    parties = [
        *_workers(10),
        organisation("respondent", "某建设集团有限公司", 1),
        organisation("respondent", "某劳务分包有限公司", 2),
    ]
    dispute = await _labour(api, parties)
    assert (dispute["people_involved"], dispute["is_group"]) == (12, True)
    assert await _registered_group(api, dispute) == _counted("workers", 10, 10)


async def test_nine_workers_against_two_employer_entities_are_no_group(api: Api) -> None:
    parties = [
        *_workers(9),
        organisation("respondent", "某建设集团有限公司", 1),
        organisation("respondent", "某劳务分包有限公司", 2),
    ]
    dispute = await _labour(api, parties)
    assert (dispute["people_involved"], dispute["is_group"]) == (11, False)


async def test_the_employer_side_is_the_one_holding_the_organisation_even_when_it_applies(api: Api) -> None:
    # The employer may bring the claim (damages for breach): the workers are then the respondents.
    dispute = await _labour(api, [organisation("applicant", "某电子厂"), *_workers(9, "respondent")])
    assert await _registered_group(api, dispute) == _counted("workers", 9, 10)
    assert dispute["is_group"] is False


async def test_agents_and_a_dispatch_agency_are_no_workers(api: Api) -> None:
    parties = [
        *_workers(9),
        _agent(),
        organisation("respondent", "某用工单位", 1),
        organisation("third_party", "某劳务派遣有限公司", 2),
    ]
    dispute = await _labour(api, parties)
    # The agent is not among the people involved; the agency, a third party, is no worker.
    assert dispute["people_involved"] == 11
    assert await _registered_group(api, dispute) == _counted("workers", 9, 10)


async def test_workers_against_a_natural_person_employer_count_all_but_the_respondents(api: Api) -> None:
    # No side holds an organisation (an individual employer): the workers bring the common claim
    # of Art. 7, so the respondents are the employer's side.
    nine = await _labour(
        api, [person("applicant", "工人代表", 1), person("respondent", "包工头", 2)], people_involved=10
    )
    assert (nine["is_group"], await _registered_group(api, nine)) == (False, _counted("workers", 9, 10))
    ten = await _labour(
        api, [person("applicant", "工人代表", 1), person("respondent", "包工头", 2)], people_involved=11
    )
    assert (ten["is_group"], await _registered_group(api, ten)) == (True, _counted("workers", 10, 10))


async def test_a_representative_count_beyond_the_parties_listed_counts_as_workers(api: Api) -> None:
    parties = [*_workers(3), organisation("respondent", "某建筑劳务有限公司")]
    dispute = await _labour(api, parties, people_involved=11)
    assert (dispute["is_group"], await _registered_group(api, dispute)) == (True, _counted("workers", 10, 10))


async def test_another_category_still_counts_everyone_involved(api: Api, web: httpx.AsyncClient) -> None:
    # Property management: the default threshold of 5 counts every person, the company too.
    parties = [*_workers(4), organisation("respondent", "某物业服务有限公司")]
    dispute = await api.intake(category="property_management", parties=parties)
    assert (dispute["people_involved"], dispute["is_group"]) == (5, True)
    assert await _registered_group(api, dispute) == _counted("everyone", 5, 5)
    assert "涉及5人, 达到群体性纠纷标准5人" in await _case_page(api, web, dispute)
    reason = await _triage_group_reason(api, dispute)
    assert "涉及5人" in reason["text"] and reason["data"]["counts"] == "everyone"
    neighbours = await api.intake(people_involved=4)
    assert (neighbours["is_group"], await _registered_group(api, neighbours)) == (
        False,
        _counted("everyone", 4, 5),
    )


# ---- corrections ----------------------------------------------------------------------------------


async def test_a_corrected_count_decides_again_on_the_workers_side(api: Api, web: httpx.AsyncClient) -> None:
    dispute = await _labour(api, [*_workers(3), organisation("respondent", "某建筑劳务有限公司")])
    assert dispute["is_group"] is False
    # Ten people with the employer are nine workers: still no group dispute.
    response = await correct(api, dispute, {"reason": "另有六名工人", "people_involved": 10})
    assert response.status_code == 200, response.text
    nine = response.json()
    assert (nine["people_involved"], nine["is_group"], nine["tier"]) == (10, False, "town")
    response = await correct(api, nine, {"reason": "又有一名工人", "people_involved": 11})
    assert response.status_code == 200, response.text
    ten = response.json()
    assert (ten["people_involved"], ten["is_group"], ten["tier"]) == (11, True, "county")
    first, second = [e for e in await api.timeline(dispute) if e["action"] == "correct"]
    assert first["payload"]["group"] == _counted("workers", 9, 10)
    assert second["payload"]["group"] == _counted("workers", 10, 10)
    assert second["payload"]["tier"] == {"from": "town", "to": "county"}
    page = await _case_page(api, web, dispute)
    assert "涉及人数由10人改为11人; 劳动者一方10人, 达到群体性纠纷标准10人" in page


async def test_an_employer_found_later_is_not_counted_among_the_workers(api: Api) -> None:
    dispute = await _labour(
        api, [*_workers(3), organisation("respondent", "某建设集团有限公司", 1)], people_involved=11
    )
    assert dispute["is_group"] is True
    added = organisation("respondent", "某劳务分包有限公司", 2)
    response = await correct(api, dispute, {"reason": "查明实际用工单位", "add_parties": [added]})
    assert response.status_code == 200, response.text
    after = response.json()
    # The count already covered the parties: it stays 11, of whom two are employers now.
    assert (after["people_involved"], after["is_group"]) == (11, False)
    [entry] = [e for e in await api.timeline(dispute) if e["action"] == "correct"]
    assert entry["payload"]["group"] == _counted("workers", 9, 10)
    assert "people_involved" not in entry["payload"]


async def test_a_party_added_to_another_category_decides_nothing_again(api: Api) -> None:
    dispute = await api.drive("mediating", people_involved=5)
    body = {"reason": "调解中发现共有人", "add_parties": [person("third_party", "王五", 9)]}
    response = await correct(api, dispute, body, "body_mediator")
    assert response.status_code == 200, response.text
    [entry] = [e for e in await api.timeline(dispute) if e["action"] == "correct"]
    assert "group" not in entry["payload"]


# ---- the rule ------------------------------------------------------------------------------------


async def _rules(api: Api) -> dict[str, Any]:
    response = await api.client.get("/v1/triage/rules")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _put_rules(api: Api, rules: dict[str, Any], version: int = 0, **headers: str) -> httpx.Response:
    return await api.client.put(
        "/v1/triage/rules",
        json={"rules": rules},
        headers={**api.auth("admin"), "If-Match": f'"{version}"', **headers},
    )


async def test_the_default_rules_count_the_workers_side_for_labour_only(api: Api) -> None:
    categories = (await _rules(api))["rules"]["categories"]
    assert categories["labour"]["group_counts"] == "workers"
    assert {c.get("group_counts") for name, c in categories.items() if name != "labour"} == {None}


async def test_counting_workers_outside_labour_is_refused_in_both_languages(api: Api) -> None:
    current = (await _rules(api))["rules"]
    rules = copy.deepcopy(current)
    rules["categories"]["neighbour"]["group_counts"] = "workers"
    for headers, said in (
        ({}, "只有劳动争议按劳动者一方人数认定群体性纠纷"),
        (EN, "Only labour disputes count"),
    ):
        response = await _put_rules(api, rules, **headers)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["type"] == "/problems/validation-error"
        [error] = problem["errors"]
        assert (error["field"], error["code"]) == (
            "rules.categories.neighbour.group_counts",
            "group_counts_labour_only",
        )
        assert said in error["message"]
    unknown = copy.deepcopy(current)
    unknown["categories"]["labour"]["group_counts"] = "employers"
    response = await _put_rules(api, unknown)
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["field"], error["code"]) == ("rules.categories.labour.group_counts", "enum")
    body = await _rules(api)
    assert (body["version"], body["rules"]) == (0, current)


async def test_a_center_may_count_everyone_in_labour_too(api: Api) -> None:
    rules = copy.deepcopy((await _rules(api))["rules"])
    rules["categories"]["labour"]["group_counts"] = "everyone"
    response = await _put_rules(api, rules)
    assert response.status_code == 200, response.text
    dispute = await _labour(api, [*_workers(9), organisation("respondent", "某建筑劳务有限公司")])
    assert (dispute["is_group"], await _registered_group(api, dispute)) == (
        True,
        _counted("everyone", 10, 10),
    )


async def test_rules_that_leave_the_setting_out_count_the_workers_side_for_labour(api: Api) -> None:
    # A center's rules stored before the setting existed: the law's count holds (Art. 7).
    rules = copy.deepcopy((await _rules(api))["rules"])
    del rules["categories"]["labour"]["group_counts"]
    response = await _put_rules(api, rules)
    assert response.status_code == 200, response.text
    assert response.json()["rules"]["categories"]["labour"].get("group_counts") is None
    dispute = await _labour(api, [*_workers(9), organisation("respondent", "某建筑劳务有限公司")])
    assert (dispute["is_group"], await _registered_group(api, dispute)) == (False, _counted("workers", 9, 10))


async def test_a_third_party_is_on_neither_side_and_no_worker(api: Api) -> None:
    # A subcontractor who hired the workers (包工头), named as third party, is no worker (Art. 7
    # counts 劳动者一方): nine workers, their company and him are 11 people and 9 workers.
    parties = [
        *_workers(9),
        organisation("respondent", "某建筑有限公司", 1),
        person("third_party", "包工头", 30),
    ]
    dispute = await _labour(api, parties)
    assert (dispute["people_involved"], dispute["is_group"]) == (11, False)
    assert await _registered_group(api, dispute) == _counted("workers", 9, 10)


async def test_an_agent_added_later_decides_nothing_again(api: Api) -> None:
    dispute = await _labour(api, [*_workers(10), organisation("respondent", "某用工单位", 1)])
    assert dispute["is_group"] is True
    response = await correct(api, dispute, {"reason": "工人委托代理人", "add_parties": [_agent()]})
    assert response.status_code == 200, response.text
    assert response.json()["is_group"] is True
    [entry] = [e for e in await api.timeline(dispute) if e["action"] == "correct"]
    assert "group" not in entry["payload"]
