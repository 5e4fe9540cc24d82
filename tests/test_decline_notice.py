"""A case the center declines (不予受理) tells the party, in writing, where to go instead.

The decline names the route (告知的其他途径) beside its reason: both are kept with the case, shown on
its timeline entry and its page, and the route (never the reason a clerk typed) in the party's
status lookup. The clerk prints a 不予受理告知书 naming the case, the applicant, the reason, the route
and what it means, and the day; it is stored with its hash as the receipt is. A declined case's
receipt promises no routing to a mediation body, and says of the limitation period only what is
true of an application the center did not take in (民法典 Art. 195).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from mediation.disputes.enums import DeclineAdvice
from tests.support import Api
from tests.test_documents import docs_url
from tests.test_paperwork_labels import page_of
from tests.test_web import signed_in

REASON = "确权纠纷不属于人民调解范围"


async def declined_at_the_window(
    api: Api, web: httpx.AsyncClient, advice: str = "court", reason: str = REASON
) -> dict[str, Any]:
    """A clerk declines a registered case from its page."""
    case = await api.intake()
    response = await signed_in(web, api).post(
        f"/cases/{case['id']}/actions/decline",
        {
            "version": f'"{case["version"]}"',
            "reason": reason,
            "advice": advice,
            "idempotency_key": uuid.uuid4().hex,
        },
    )
    assert response.status_code == 303, response.text[:2000]
    return {**await api.get(case), "query_code": case["query_code"]}


def section(html: str, marker: str) -> str:
    """The element that opens with `marker` (an id or attribute) up to its closing tag."""
    start = html.index(marker)
    tag = html.rfind("<", 0, start)
    name = re.match(r"<(\w+)", html[tag:])
    assert name, html[tag : tag + 80]
    return html[tag : html.index(f"</{name.group(1)}>", start)]


async def test_the_route_advised_is_kept_with_the_case_and_shown_on_its_timeline_and_page(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await declined_at_the_window(api, web)
    assert case["status"] == "declined"
    assert case["outcome"]["decline"] == {"reason": REASON, "advice": "court"}
    page = await signed_in(web, api).get(f"/cases/{case['id']}")
    assert page.status_code == 200
    entry = section(page.text, 'data-action="decline"')
    assert REASON in entry and "告知的其他途径: 向人民法院起诉" in entry
    decline = section(page.text, 'id="decline"')
    assert REASON in decline and "向人民法院起诉" in decline and "提起诉讼" in decline
    assert f'href="/cases/{case["id"]}/decline-notice"' in decline


async def test_the_status_lookup_tells_the_party_the_route_and_nothing_personal(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await declined_at_the_window(api, web, reason="张三与李四的宅基地确权纠纷, 不属于调解范围")
    response = await api.client.post(
        "/v1/status-lookup", json={"case_number": case["case_number"], "query_code": case["query_code"]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "declined"
    assert "向人民法院起诉" in body["next_step"] and "提起诉讼" in body["next_step"]
    # The reason is text a clerk typed about the parties: it stays off the anonymous lookup.
    for said in ("张三", "李四", "宅基地"):
        assert said not in response.text
    english = await api.client.post(
        "/v1/status-lookup",
        json={"case_number": case["case_number"], "query_code": case["query_code"]},
        headers={"Accept-Language": "en"},
    )
    assert "court" in english.json()["next_step"]
    looked_up = await web.post(
        "/lookup",
        data={"case_number": case["case_number"], "query_code": case["query_code"], "csrf": "c" * 43},
    )
    assert looked_up.status_code == 200 and "向人民法院起诉" in section(looked_up.text, 'id="lookup-result"')


async def test_the_notice_of_non_acceptance_names_case_applicant_reason_route_and_day(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await declined_at_the_window(api, web)
    printed = await signed_in(web, api).get(f"/cases/{case['id']}/decline-notice")
    assert printed.status_code == 200, printed.text[:2000]
    notice = section(printed.text, 'id="decline-notice"')
    for said in (
        "不予受理告知书",
        case["case_number"],
        "申请人: 张三",
        REASON,
        "向人民法院起诉",
        "提起诉讼",
        "告知日期: 2026年6月1日",
        "诸暨市矛盾纠纷调处化解中心",
    ):
        assert said in notice, said
    assert "court" not in notice  # the route in words, not its code
    assert "中断诉讼时效" not in notice  # no promise the center cannot keep
    # Stored with its hash, as the receipt is: the party's copy can be proven later.
    listed = (await api.client.get(docs_url(case))).json()
    [stored] = [d for d in listed if d["kind"] == "decline_notice"]
    assert stored["generated"] and len(stored["sha256"]) == 64
    content = await page_of(api, case, "decline_notice")
    for said in ("不予受理告知书", case["case_number"], "申请人: 张三", REASON, "向人民法院起诉"):
        assert said in content, said


@pytest.mark.parametrize("advice", [a.value for a in DeclineAdvice])
async def test_each_route_is_told_in_words_with_what_it_means(
    api: Api, web: httpx.AsyncClient, advice: str
) -> None:
    case = await declined_at_the_window(api, web, advice=advice)
    content = await page_of(api, case, "decline_notice")
    route = re.search(r"告知的其他途径: ([^<]+)</p>", content)
    assert route, content
    assert advice not in route.group(1) and "。" in route.group(1)


async def test_no_notice_for_a_case_that_was_not_declined(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.intake()
    page = signed_in(web, api)
    assert 'id="decline"' not in (await page.get(f"/cases/{case['id']}")).text
    refused = await page.get(f"/cases/{case['id']}/decline-notice")
    assert refused.status_code == 409 and 'id="decline-notice"' not in refused.text
    listed = (await api.client.get(docs_url(case))).json()
    assert not [d for d in listed if d["kind"] == "decline_notice"]


async def test_a_declined_cases_receipt_promises_no_mediation(api: Api, web: httpx.AsyncClient) -> None:
    case = await declined_at_the_window(api, web)
    receipt = section((await signed_in(web, api).get(f"/cases/{case['id']}/receipt")).text, 'id="receipt"')
    assert "不予受理" in receipt and "向人民法院起诉" in receipt
    for promise in ("分流", "调解组织会与您联系", "即中断诉讼时效"):
        assert promise not in receipt, promise


async def test_the_receipt_promises_routing_only_while_the_case_waits_for_it(
    api: Api, web: httpx.AsyncClient
) -> None:
    page = signed_in(web, api)
    registered = await api.intake()
    receipt = (await page.get(f"/cases/{registered['id']}/receipt")).text
    assert "分流至相应的调解组织" in receipt and "民法典第一百九十五条" in receipt
    archived = await api.drive("archived")
    receipt = (await page.get(f"/cases/{archived['id']}/receipt")).text
    assert "分流" not in receipt and "调解组织会与您联系" not in receipt
