"""The clerk's search box finds a case whatever tab the queue was on (a resident back at the window
registered on another day; the landing tab is today's), and by the number a referring system gave
it (a 12345 work order the caller quotes). The case page shows that number, the special matters
ticked at intake, and severity and complexity each under its own name."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import httpx

from tests.support import Api, at_beijing, person
from tests.test_web import signed_in


def _listed(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text[:500]
    return page.text.split('id="case-list"')[1].split("</table>")[0]


def _search_form(html: str) -> dict[str, str]:
    """The hidden fields the queue's search form sends with the text typed."""
    form = html.split('role="search"')[1].split("</form>")[0]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form))


async def test_a_search_from_the_landing_tab_finds_a_case_registered_on_an_earlier_day(
    api: Api, web: httpx.AsyncClient
) -> None:
    today = api.today
    at_beijing(api, today - timedelta(days=3))
    earlier = await api.intake(parties=[person("applicant", "冯一", 51), person("respondent", "褚二", 52)])
    at_beijing(api, today)
    other = await api.intake(parties=[person("applicant", "卫三", 53), person("respondent", "蒋四", 54)])
    clerk = signed_in(web, api)
    landing = await clerk.get("/queue")
    hidden = _search_form(landing.text)
    assert hidden["tab"] == "today"
    searched = await clerk.get(
        "/queue", params={**hidden, "q": "冯一", "category": "", "channel": "", "status": ""}
    )
    listed = _listed(searched)
    assert earlier["case_number"] in listed and other["case_number"] not in listed
    assert "在全部案件中搜索「冯一」, 找到 1 件" in searched.text
    assert 'aria-current="page" class="tab tab-all"' in searched.text
    # A tab picked after the search narrows it, and says where it looked.
    links = dict(
        (tab, unescape(href))
        for href, tab in re.findall(
            r'<a href="([^"]+)"\s+(?:aria-current="page"\s+)?class="tab tab-(\w+)">', searched.text
        )
    )
    narrowed = await clerk.get(links["today"])
    assert earlier["case_number"] not in _listed(narrowed)
    assert "在「今日登记」中搜索「冯一」, 找到 0 件" in narrowed.text
    # Filters alone, without text, keep the tab.
    filtered = await clerk.get("/queue", params={**hidden, "q": "", "category": "neighbour"})
    assert earlier["case_number"] not in _listed(filtered) and other["case_number"] in _listed(filtered)
    assert 'id="search-scope"' not in filtered.text


async def test_a_hotline_caller_is_found_by_the_work_order_number(api: Api, web: httpx.AsyncClient) -> None:
    hotline = await api.intake(channel="hotline", external_reference="GD20261207001")
    other = await api.intake(channel="hotline", external_reference="GD20261207002")
    clerk = signed_in(web, api)
    for typed in ("GD20261207001", " ＧＤ２０２６１２０７００１ "):
        listed = _listed(await clerk.get("/queue", params={"tab": "today", "scope": "all", "q": typed}))
        assert hotline["case_number"] in listed and other["case_number"] not in listed
    # The whole number, not a part of one.
    assert hotline["case_number"] not in _listed(
        await clerk.get("/queue", params={"tab": "all", "q": "GD2026"})
    )
    found = await api.client.get("/v1/disputes", params={"q": "GD20261207001"}, headers=api.headers())
    assert found.status_code == 200, found.text
    assert [d["id"] for d in found.json()["items"]] == [hotline["id"]]


async def test_the_case_page_shows_the_reference_the_special_matters_and_names_severity_and_complexity(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.intake(
        channel="hotline",
        external_reference="GD20261207001",
        subject_matters=["marriage", "inheritance"],
        severity="major",
        complexity="complex",
    )
    page = await signed_in(web, api).get(f"/cases/{case['id']}")
    assert page.status_code == 200, page.text[:500]
    assert '<tr><th>外部编号</th><td id="external-reference">GD20261207001</td></tr>' in page.text
    assert '<tr><th>特殊事项</th><td id="subject-matters">婚姻、继承</td></tr>' in page.text
    assert '<tr><th>严重程度</th><td id="severity">较大</td></tr>' in page.text
    assert '<tr><th>复杂程度</th><td id="complexity">疑难复杂</td></tr>' in page.text
    plain = await api.intake()
    shown = (await signed_in(web, api).get(f"/cases/{plain['id']}")).text
    assert "外部编号" not in shown and "特殊事项" not in shown
