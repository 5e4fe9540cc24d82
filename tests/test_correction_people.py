"""涉及人数 corrected: a count registered wrong, or outgrown by parties found later, is corrected
like the facts, and decides again whether the case is a group dispute (劳动争议调解仲裁法 Art. 7:
ten or more workers for labour), with the tier intake would have given it while the case is still
at the center. Never fewer than the case's parties; never null."""

from __future__ import annotations

import httpx

from tests.support import Api, person
from tests.test_corrections import correct, events_of, unchanged_after
from tests.test_web import signed_in

EN = {"Accept-Language": "en"}


async def test_a_labour_case_corrected_to_twelve_workers_is_a_group_dispute_at_the_tier_intake_gives(
    api: Api,
) -> None:
    as_group = await api.intake(category="labour", people_involved=12)
    dispute = await api.intake(category="labour")
    assert (dispute["is_group"], dispute["people_involved"]) == (False, 2)
    assert dispute["tier"] != as_group["tier"]
    response = await correct(api, dispute, {"reason": "同一欠薪事项另有十名工人", "people_involved": 12})
    assert response.status_code == 200, response.text
    after = response.json()
    assert (after["people_involved"], after["is_group"], after["tier"]) == (12, True, as_group["tier"])
    assert after["version"] == dispute["version"] + 1
    [entry] = [e for e in await api.timeline(dispute) if e["action"] == "correct"]
    moved = {"from": dispute["tier"], "to": as_group["tier"]}
    assert entry["payload"]["people_involved"] == {"from": 2, "to": 12}
    assert entry["payload"]["tier"] == moved
    [event] = await events_of(api, dispute, "corrected")
    assert event.data["people_involved"] == {"from": 2, "to": 12} and event.data["tier"] == moved


async def test_a_count_corrected_down_clears_the_flag_but_keeps_the_tier(api: Api) -> None:
    dispute = await api.intake(category="labour", people_involved=12)
    response = await correct(api, dispute, {"reason": "人数登记有误", "people_involved": 3})
    assert response.status_code == 200, response.text
    after = response.json()
    assert (after["people_involved"], after["is_group"], after["tier"]) == (3, False, dispute["tier"])
    [entry] = [e for e in await api.timeline(dispute) if e["action"] == "correct"]
    assert "tier" not in entry["payload"]


async def test_a_case_with_a_body_becomes_a_group_dispute_but_keeps_its_tier(api: Api) -> None:
    dispute = await api.drive("mediating", category="labour")
    response = await correct(api, dispute, {"reason": "又有工人加入", "people_involved": 15}, "body_mediator")
    assert response.status_code == 200, response.text
    after = response.json()
    assert (after["is_group"], after["tier"]) == (True, dispute["tier"])


async def test_parties_added_beyond_the_count_raise_it(api: Api) -> None:
    dispute = await api.drive("mediating")
    assert dispute["people_involved"] == 2
    added = [person("third_party", "王五", 9), person("respondent", "赵六", 8)]
    response = await correct(
        api, dispute, {"reason": "调解中发现共有人", "add_parties": added}, "body_mediator"
    )
    assert response.status_code == 200, response.text
    assert response.json()["people_involved"] == 4
    [entry] = [e for e in await api.timeline(dispute) if e["action"] == "correct"]
    assert entry["payload"]["people_involved"] == {"from": 2, "to": 4}


async def test_a_count_that_already_covers_the_added_party_stays(api: Api) -> None:
    dispute = await api.drive("mediating", people_involved=5)
    response = await correct(
        api,
        dispute,
        {"reason": "调解中发现共有人", "add_parties": [person("third_party", "王五", 9)]},
        "body_mediator",
    )
    assert response.status_code == 200, response.text
    assert response.json()["people_involved"] == 5
    [entry] = [e for e in await api.timeline(dispute) if e["action"] == "correct"]
    assert "people_involved" not in entry["payload"]


async def test_fewer_than_the_parties_after_the_correction_is_refused_at_its_field(api: Api) -> None:
    dispute = await api.intake()
    body = {"reason": "人数", "people_involved": 2, "add_parties": [person("third_party", "王五", 9)]}
    problem = await unchanged_after(api, dispute, await correct(api, dispute, body), 422)
    [error] = problem["errors"]
    assert (error["field"], error["code"]) == ("people_involved", "people_involved_below_parties")
    assert "少于更正后的当事人 3 人" in error["message"]
    english = await unchanged_after(
        api, dispute, await correct(api, dispute, {"reason": "count", "people_involved": 1}, **EN), 422
    )
    assert "fewer than the case's 2 parties" in english["errors"][0]["message"]


async def test_null_and_the_same_count_are_refused(api: Api) -> None:
    dispute = await api.intake(people_involved=4)
    nulled = await unchanged_after(
        api, dispute, await correct(api, dispute, {"reason": "人数", "people_involved": None}), 422
    )
    assert nulled["errors"][0]["code"] == "null_not_allowed"
    same = await unchanged_after(
        api, dispute, await correct(api, dispute, {"reason": "人数", "people_involved": 4}), 422
    )
    assert same["errors"][0]["code"] == "nothing_to_correct"


async def test_the_case_page_corrects_the_count_and_its_timeline_says_so(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.intake(category="labour")
    page = signed_in(web, api)
    shown = await page.get(f"/cases/{dispute['id']}")
    assert 'name="people_involved"' in shown.text and 'name="shown.people_involved" value="2"' in shown.text
    form = [
        ("reason", "另有十名工人"),
        ("description", dispute["description"]),
        ("shown.description", dispute["description"]),
        ("people_involved", "12"),
        ("shown.people_involved", "2"),
        ("version", f'"{dispute["version"]}"'),
    ]
    done = await page.post(f"/cases/{dispute['id']}/corrections", data=form, follow_redirects=True)
    assert done.status_code == 200, done.text[:2000]
    assert "涉及人数由2人改为12人" in done.text
    assert (await api.get(dispute))["is_group"] is True
