"""The clerk at the window finds a resident's cases by the ID or phone number the resident gives, as
typed (spaces, hyphens, +86), through the keyed index, never the stored ciphertext; the search is
audited as the API's search by party is (个人信息保护法 Art. 51). A caller who reads numbers masked
(the supervisor) finds nothing by a number and is told why."""

from __future__ import annotations

import httpx
import pytest

from tests.support import Api, person, resident_id
from tests.test_pii_oracles import audit_actions, last_seq
from tests.test_web import signed_in


def _listed(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text[:500]
    return page.text.split('id="case-list"')[1].split("</table>")[0]


async def _two_cases(api: Api) -> tuple[dict[str, object], dict[str, object]]:
    mine = await api.intake(parties=[person("applicant", "王某", 41), person("respondent", "赵某", 42)])
    other = await api.intake(parties=[person("applicant", "钱某", 43), person("respondent", "孙某", 44)])
    return mine, other


@pytest.mark.parametrize(
    "typed",
    [
        resident_id(41),
        resident_id(41).lower(),
        f"{resident_id(41)[:6]} {resident_id(41)[6:14]} {resident_id(41)[14:]}",
        "13800000041",
        "138 0000 0041",
        "138-0000-0041",
        "+86 138 0000 0041",
    ],
)
async def test_the_clerk_finds_a_case_by_a_partys_number(
    api: Api, web: httpx.AsyncClient, typed: str
) -> None:
    mine, other = await _two_cases(api)
    clerk = signed_in(web, api)
    before = await last_seq(api)
    listed = _listed(await clerk.get("/queue", params={"tab": "all", "q": typed}))
    assert str(mine["case_number"]) in listed and str(other["case_number"]) not in listed
    searches = [
        d for a, o, d in await audit_actions(api, before) if a == "search_by_party" and o == "success"
    ]
    assert len(searches) == 1, searches
    kind = "id_number" if len(typed.replace(" ", "")) >= 15 and not typed.startswith("+") else "phone"
    assert searches[0]["fields"] == [kind] and searches[0]["via"] == "queue"
    assert typed not in str(searches[0])


async def test_a_case_number_and_a_name_are_still_searched_as_text(api: Api, web: httpx.AsyncClient) -> None:
    mine, other = await _two_cases(api)
    clerk = signed_in(web, api)
    before = await last_seq(api)
    for typed in (str(mine["case_number"]), "王某"):
        listed = _listed(await clerk.get("/queue", params={"tab": "all", "q": typed}))
        assert str(mine["case_number"]) in listed and str(other["case_number"]) not in listed
    assert "search_by_party" not in [a for a, _, _ in await audit_actions(api, before)]


async def test_a_supervisor_is_told_a_number_search_needs_the_right(api: Api, web: httpx.AsyncClient) -> None:
    mine, _ = await _two_cases(api)
    supervisor = signed_in(web, api, "supervisor")
    before = await last_seq(api)
    page = await supervisor.get("/queue", params={"tab": "all", "q": "13800000041"})
    assert str(mine["case_number"]) not in _listed(page)
    assert 'id="number-needs-pii"' in page.text
    assert "search_by_party" not in [a for a, _, _ in await audit_actions(api, before)]
    by_name = await supervisor.get("/queue", params={"tab": "all", "q": "王某"})
    assert 'id="number-needs-pii"' not in by_name.text


async def test_the_access_log_masks_a_number_typed_in_any_grouping(
    api: Api, web: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The search travels in the query string; the service's access log masks it however it was
    grouped, and keeps a case number and a date as they are."""
    mine, _ = await _two_cases(api)
    clerk = signed_in(web, api)
    grouped = f"{resident_id(41)[:4]} {resident_id(41)[4:8]} {resident_id(41)[8:12]} {resident_id(41)[12:]}"
    typed = [grouped, "1380 0000 041", "+86 (138) 0000-0041"]
    with caplog.at_level("INFO", logger="mediation.access"):
        for q in typed:
            assert str(mine["case_number"]) in _listed(
                await clerk.get("/queue", params={"tab": "all", "q": q})
            )
        await clerk.get("/queue", params={"tab": "all", "q": str(mine["case_number"])})
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "mediation.access")
    assert "0000041" not in logged and resident_id(41)[12:] not in logged
    assert str(mine["case_number"]) in logged
