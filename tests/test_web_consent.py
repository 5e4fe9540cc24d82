"""A party's consent to mediation, or refusal of it, is recorded from the case page, as the API
records it (人民调解法 Art. 17). A case a court delegated is mediated only once every party
consented (特邀调解规定 Art. 11): without this form no page could let it past the sign-for."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import Api
from tests.test_web import signed_in


async def _delegated_and_assigned(api: Api) -> dict[str, Any]:
    return await api.drive("assigned", inviting_court_id=str(api.bodies["court"]))


async def _record(page: Any, case: dict[str, Any], party: str, decision: str, key: str) -> httpx.Response:
    return await page.post(
        f"/cases/{case['id']}/consent",
        {"version": f'"{case["version"]}"', "party_id": party, "decision": decision, "idempotency_key": key},
    )


async def test_the_clerk_records_every_partys_consent_and_the_body_signs_for_it(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await _delegated_and_assigned(api)
    assert case["court_delegated"] is True
    refused = await api.act(case, "sign_for")
    assert refused.status_code == 422 and "consent_missing" in refused.text

    clerk = signed_in(web, api)
    shown = await clerk.get(f"/cases/{case['id']}")
    assert 'id="consent"' in shown.text and "特邀调解规定第十一条" in shown.text
    form = shown.text.split('id="consent"')[1].split("</details>")[0]
    assert '<option value="given" >同意调解</option>' in form and "当事人的意愿" in form
    for i, party in enumerate(p for p in case["parties"] if p["role"] != "agent"):
        response = await _record(clerk, await api.get(case), party["id"], "given", f"c{i}")
        assert response.status_code == 303, response.text[:2000]
    case = await api.get(case)
    assert {p["consent"] for p in case["parties"] if p["role"] != "agent"} == {"given"}
    assert [e["action"] for e in await api.timeline(case)].count("record_consent") == 2
    assert (await api.step(case, "sign_for"))["status"] == "mediating"


async def test_a_refusal_is_recorded_and_a_missing_party_is_named(api: Api, web: httpx.AsyncClient) -> None:
    case = await _delegated_and_assigned(api)
    mediator = signed_in(web, api, "clerk")
    missing = await _record(mediator, case, "", "given", "m1")
    assert missing.status_code == 422 and "请选择当事人" in missing.text
    assert (await api.get(case))["version"] == case["version"]

    respondent = next(p for p in case["parties"] if p["role"] == "respondent")
    recorded = await _record(mediator, case, respondent["id"], "refused", "m2")
    assert recorded.status_code == 303
    case = await api.get(case)
    assert next(p for p in case["parties"] if p["id"] == respondent["id"])["consent"] == "refused"
    # The same form sent again (a double click) records it once.
    again = await _record(
        mediator, {**case, "version": case["version"] - 1}, respondent["id"], "refused", "m2"
    )
    assert again.status_code == 303
    assert (await api.get(case))["version"] == case["version"]


async def test_a_closed_case_offers_no_consent_form(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.drive("closed")
    page = await signed_in(web, api).get(f"/cases/{case['id']}")
    assert page.status_code == 200 and 'id="consent"' not in page.text
