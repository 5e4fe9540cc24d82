"""A case still at the center whose facts are corrected to words of violence takes the tier intake
would have given it with those facts (人民调解法 Art. 25; domain.md §4.4: hard matters go up), not
the village tier of the calm facts first registered. A case already with a body keeps its tier:
the risk alert calls a supervisor, who escalates it if need be."""

from __future__ import annotations

import httpx

from tests.support import Api
from tests.test_corrections import correct, events_of
from tests.test_corrections_more import CALM, THREAT, facts
from tests.test_web import signed_in


async def test_a_case_at_the_center_takes_the_tier_of_its_corrected_facts(api: Api) -> None:
    as_registered = await api.intake(description=THREAT)
    dispute = await api.intake(description=CALM)
    assert dispute["tier"] != as_registered["tier"]  # the calm facts stay in the village
    response = await correct(api, dispute, facts(dispute, THREAT))
    assert response.status_code == 200, response.text
    assert response.json()["tier"] == as_registered["tier"]
    assert (await api.get(dispute))["tier"] == as_registered["tier"]


async def test_an_accepted_case_takes_it_too(api: Api) -> None:
    as_registered = await api.intake(description=THREAT)
    dispute = await api.step(await api.intake(description=CALM), "accept")
    response = await correct(api, dispute, facts(dispute, THREAT))
    assert response.status_code == 200, response.text
    assert response.json()["tier"] == as_registered["tier"]


async def test_a_case_with_a_body_keeps_its_tier(api: Api) -> None:
    dispute = await api.drive("mediating", description=CALM)
    response = await correct(api, dispute, facts(dispute, THREAT), role="body_mediator")
    assert response.status_code == 200, response.text
    assert response.json()["is_risk"] is True
    assert response.json()["tier"] == dispute["tier"]


async def test_the_correction_says_the_tier_moved_on_its_timeline_and_in_its_event(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.intake(description=CALM)
    response = await correct(api, dispute, facts(dispute, THREAT))
    assert response.status_code == 200, response.text
    moved = {"from": dispute["tier"], "to": response.json()["tier"]}
    [entry] = [e for e in await api.timeline(dispute) if e["action"] == "correct"]
    assert entry["payload"]["tier"] == moved
    [event] = await events_of(api, dispute, "corrected")
    assert event.data["tier"] == moved
    page = await signed_in(web, api, "clerk").get(f"/cases/{dispute['id']}")
    assert "处理层级由村(社区)级调整为" in page.text


async def test_a_correction_that_moves_no_tier_says_nothing_of_it(api: Api) -> None:
    dispute = await api.drive("mediating", description=CALM)
    response = await correct(api, dispute, facts(dispute, THREAT), role="body_mediator")
    assert response.status_code == 200, response.text
    [entry] = [e for e in await api.timeline(dispute) if e["action"] == "correct"]
    assert "tier" not in entry["payload"]
