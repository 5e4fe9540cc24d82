"""The pages against forms no page of ours sends, and against the same form sent twice at once, over
real HTTP through the ASGI app, on SQLite and PostgreSQL: a party row numbered far past what the
intake schema takes is refused at once without holding up anyone else's request, a field name that
contradicts another is refused on the form's own page, and a double click gets the first
submission's outcome (the receipt with its query code, or the case as the action left it)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from mediation.disputes.service import DisputeService
from mediation.web.intake import MAX_PARTIES
from tests.support import Api, intake_body
from tests.test_web import Page, case_count, case_number_in, intake_form, signed_in

# A row number a little past the limit, and one the old reading would have spent hours on.
ROW_NUMBERS = (3_000, 100_000_000)
# Seconds: a refusal costs milliseconds; the old reading took hours (100,000,000 rows) or 11 s (a
# 30,000-character value). The margin is for a loaded machine, which may pause a second or two.
SOON = 5.0


def online_body() -> dict[str, Any]:
    """An application as the online form takes it: what the center decides is not on it."""
    body = intake_body()
    for name in ("channel", "external_reference", "severity", "complexity", "is_risk", "inviting_court_id"):
        body.pop(name, None)
    return body


def form_page(web: httpx.AsyncClient, api: Api, path: str) -> Page:
    """The window's intake form is a clerk's; the online application is anyone's."""
    return signed_in(web, api) if path == "/intake" else Page(web)


async def _login_meanwhile(web: httpx.AsyncClient, start: float) -> tuple[int, float]:
    await asyncio.sleep(0.05)  # asked while the other request is at work
    response = await web.get("/login")
    return response.status_code, time.perf_counter() - start


# ---- a party row numbered past the limit ----------------------------------------------------------


@pytest.mark.serial  # timed against a hang: alone, so that a busy machine does not miss SOON
@pytest.mark.parametrize("path", ["/apply", "/intake"])
@pytest.mark.parametrize("row", ROW_NUMBERS)
async def test_a_party_row_numbered_past_the_limit_is_refused_at_once_and_others_are_served(
    api: Api, web: httpx.AsyncClient, app: Any, path: str, row: int
) -> None:
    page = form_page(web, api, path)
    assert (await page.get(path)).status_code == 200  # the page's templates are ready
    before = await case_count(app)
    form = [("region_code", "330681"), ("category", "neighbour"), (f"parties[{row}].name", "张三")]
    start = time.perf_counter()
    refused, (login_status, login_answered) = await asyncio.gather(
        page.post(path, [*form, ("idempotency_key", uuid.uuid4().hex)]), _login_meanwhile(web, start)
    )
    took = time.perf_counter() - start
    assert refused.status_code == 422, refused.text[:2000]
    assert f"当事人最多 {MAX_PARTIES} 名" in refused.text
    assert took < SOON, took
    assert login_status < 400 and login_answered < SOON, login_answered
    assert await case_count(app) == before


@pytest.mark.serial  # timed against a hang: alone, so that a busy machine does not miss SOON
@pytest.mark.parametrize("path", ["/apply", "/intake"])
@pytest.mark.parametrize("row", ROW_NUMBERS)
async def test_a_form_without_its_csrf_token_is_refused_before_its_parties_are_read(
    api: Api, web: httpx.AsyncClient, path: str, row: int
) -> None:
    form_page(web, api, path)
    start = time.perf_counter()
    refused = await web.post(
        path, data={"region_code": "330681", f"parties[{row}].name": "张三", "idempotency_key": "k"}
    )
    assert refused.status_code == 403
    assert "页面已过期" in refused.text
    assert time.perf_counter() - start < SOON


async def test_as_many_party_rows_as_the_schema_takes_are_read(api: Api, web: httpx.AsyncClient) -> None:
    body = intake_body()
    body["parties"] += [{"role": "third_party", "name": f"第三人{i}"} for i in range(MAX_PARTIES - 2)]
    response = await signed_in(web, api).post("/intake", intake_form(body))
    assert response.status_code == 200, re.findall(r'role="alert">([^<]*)<', response.text)
    (case,) = (await api.client.get("/v1/disputes", params={"q": case_number_in(response.text)})).json()[
        "items"
    ]
    assert len(case["parties"]) == MAX_PARTIES


# ---- field names that contradict each other --------------------------------------------------------

MALFORMED = {
    "a value, then fields under it": ([("region_code", "330681"), ("region_code.x", "2")], "冲突"),
    "fields, then a value over them": ([("parties[0].name", "张三"), ("parties[0]", "y")], "冲突"),
    "a row given a value": ([("parties[0]", "y"), ("parties[0].name", "张三")], "冲突"),
    "rows and fields under one name": ([("parties[0].name", "张三"), ("parties.name", "李四")], "冲突"),
    "a name that is a row number": ([("[0]", "x")], "不是本表单的字段名"),
    "a row number of thousands of digits": ([(f"parties[{'9' * 5000}].name", "x")], "不是本表单的字段名"),
}


@pytest.mark.parametrize("path", ["/apply", "/intake"])
@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
async def test_contradicting_field_names_are_refused_on_the_intake_form(
    api: Api, web: httpx.AsyncClient, app: Any, caplog: pytest.LogCaptureFixture, path: str, case: str
) -> None:
    pairs, said = MALFORMED[case]
    before = await case_count(app)
    response = await form_page(web, api, path).post(
        path, [("category", "neighbour"), *pairs, ("idempotency_key", uuid.uuid4().hex)]
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert said in response.text and 'name="parties[0].name"' in response.text  # the form again
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert await case_count(app) == before


@pytest.mark.parametrize("pairs", [[("reason", "不属于受理范围"), ("reason.x", "2")], [("[0]", "x")]])
async def test_contradicting_field_names_are_refused_on_the_case_page(
    api: Api, web: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, pairs: list[tuple[str, str]]
) -> None:
    case = await api.intake()
    form = [*pairs, ("version", f'"{case["version"]}"'), ("idempotency_key", uuid.uuid4().hex)]
    response = await signed_in(web, api).post(f"/cases/{case['id']}/actions/decline", form)
    assert response.status_code == 422
    banner = re.findall(r'class="error banner"[^>]*>([^<]*)<', response.text)
    assert any(pairs[-1][0] in text for text in banner), banner
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert (await api.get(case))["status"] == "registered"


# ---- the same form sent twice at once ---------------------------------------------------------------


def slowed(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The service's step takes a moment, as on a busy day: the second submission of the form
    arrives while the first is still at work."""
    original: Callable[..., Awaitable[Any]] = getattr(DisputeService, name)

    async def slow(self: DisputeService, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.3)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(DisputeService, name, slow)


def query_code_in(html: str) -> str:
    found = re.search(r'id="query-code"[^>]*>([A-Z0-9]+)<', html)
    assert found, html[:2000]
    return found.group(1)


@pytest.mark.parametrize("path", ["/intake", "/apply"])
async def test_a_form_sent_twice_at_once_shows_both_times_the_receipt_with_its_query_code(
    api: Api, web: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    slowed(monkeypatch, "register")
    page = form_page(web, api, path)
    form = intake_form(intake_body() if path == "/intake" else online_body(), key=uuid.uuid4().hex)
    before = await case_count(app)
    first, second = await asyncio.gather(page.post(path, form), page.post(path, form))
    assert first.status_code == second.status_code == 200, (first.text[:1500], second.text[:1500])
    assert case_number_in(first.text) == case_number_in(second.text)
    code = query_code_in(first.text)
    assert len(code) == 8 and query_code_in(second.text) == code
    assert ("未重复登记" in first.text) != ("未重复登记" in second.text)  # the one that waited says so
    assert await case_count(app) == before + 1
    # The code the receipt shows, the one it replayed too, opens the lookup.
    lookup = await Page(web).post("/lookup", {"case_number": case_number_in(first.text), "query_code": code})
    assert lookup.status_code == 200 and "已登记" in lookup.text


async def test_an_action_sent_twice_at_once_is_taken_once_and_both_land_on_the_case_as_it_left_it(
    api: Api, web: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = await api.intake()
    slowed(monkeypatch, "apply")
    page = signed_in(web, api)
    form = {"version": f'"{case["version"]}"', "idempotency_key": uuid.uuid4().hex}
    path = f"/cases/{case['id']}/actions/accept"
    first, second = await asyncio.gather(page.post(path, form), page.post(path, form))
    for response in (first, second):
        assert response.status_code == 303, response.text[:2000]
        assert response.headers["location"] == f"/cases/{case['id']}?done=accept"
    after = await api.get(case)
    assert after["status"] == "accepted" and after["version"] == case["version"] + 1
    assert [e["action"] for e in await api.timeline(case)].count("accept") == 1


# ---- a form the size of a group case, and one past any page's ----------------------------------------


def _as_the_browser_sends(pairs: list[tuple[str, str]], rows: int) -> list[tuple[str, str]]:
    """The form with every input of every party row, as a browser sends it: empty ones included."""
    from mediation.web.intake import party_fields

    given = dict(pairs)
    filled = [(k, v) for k, v in pairs if not k.startswith("parties[")]

    def inputs(fields: Any) -> list[str]:
        return [name for f in fields for name in ([f.name] if not f.children else inputs(f.children))]

    for i in range(rows):
        filled += [(name, given.get(name, "")) for name in inputs(party_fields(i))]
    return filled


async def test_a_group_case_of_as_many_full_party_rows_as_the_schema_takes_registers(
    api: Api, web: httpx.AsyncClient
) -> None:
    # A wage-arrears case for 200 workers: each row sends all its inputs, filled in or not, so the
    # form holds far more fields than rows; none of it may be refused as unreadable.
    body = intake_body()
    body["parties"] += [{"role": "applicant", "name": f"工人{i}"} for i in range(MAX_PARTIES - 2)]
    form = _as_the_browser_sends(intake_form(body), MAX_PARTIES)
    assert len(form) > 1_000
    response = await signed_in(web, api).post("/intake", form)
    assert response.status_code == 200, (
        re.findall(r'role="alert">([^<]*)<', response.text) or response.text[:500]
    )
    (case,) = (await api.client.get("/v1/disputes", params={"q": case_number_in(response.text)})).json()[
        "items"
    ]
    assert len(case["parties"]) == MAX_PARTIES


@pytest.mark.parametrize("path", ["/apply", "/intake"])
async def test_a_form_of_more_fields_than_any_page_sends_is_refused_on_a_page(
    api: Api, web: httpx.AsyncClient, app: Any, path: str
) -> None:
    page = form_page(web, api, path)
    before = await case_count(app)
    refused = await page.post(path, [("idempotency_key", "k"), *[(f"x{i}", "1") for i in range(20_000)]])
    assert refused.status_code == 422, refused.text[:500]
    assert refused.headers["content-type"].startswith("text/html"), refused.headers["content-type"]
    assert "表单" in refused.text
    assert await case_count(app) == before


@pytest.mark.serial  # timed against a hang: alone, so that a busy machine does not miss SOON
@pytest.mark.parametrize("path", ["/apply", "/intake"])
async def test_a_party_list_sent_as_one_value_is_refused_without_a_row_per_character(
    api: Api, web: httpx.AsyncClient, app: Any, path: str
) -> None:
    """`parties` sent as one text of thousands of characters once drew a party row per character:
    hundreds of megabytes of page, rendered on the event loop every other request waits on."""
    page = form_page(web, api, path)
    assert (await page.get(path)).status_code == 200
    before = await case_count(app)
    form = [("region_code", "330681105201"), ("category", "neighbour"), ("description", "d")]
    start = time.perf_counter()
    refused, (login_status, login_answered) = await asyncio.gather(
        page.post(path, [*form, ("parties", "x" * 30_000), ("idempotency_key", uuid.uuid4().hex)]),
        _login_meanwhile(web, start),
    )
    assert refused.status_code == 422, refused.text[:2000]
    assert len(refused.content) < 500_000, len(refused.content)
    assert time.perf_counter() - start < SOON
    assert login_status < 400 and login_answered < SOON, login_answered
    assert await case_count(app) == before


async def test_the_related_case_hint_searches_each_number_once_and_only_party_rows(
    api: Api, web: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    earlier = await api.intake()
    phone = intake_body()["parties"][0]["phone"]
    searched: list[Any] = []
    search = DisputeService.search

    async def counted(self: DisputeService, *args: Any, **kwargs: Any) -> Any:
        searched.append(args[0])
        return await search(self, *args, **kwargs)

    monkeypatch.setattr(DisputeService, "search", counted)
    form = [(f"parties[{i}].phone", phone) for i in range(MAX_PARTIES)]
    form += [(f"p{i}.phone", phone) for i in range(2_000)]  # not party rows of the form
    form += [(f"parties[{MAX_PARTIES + i}].phone", "13800000001") for i in range(500)]  # past the rows
    form += [(f"parties[{'9' * 40}].phone", phone)]  # not a name of the form at all
    hint = await signed_in(web, api).post("/intake/related", form)
    assert hint.status_code == 200
    assert earlier["case_number"] in hint.text
    assert len(searched) == 1


# ---- a failure on a page is a page --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "status", "says"),
    [(ConnectionRefusedError("database down"), 503, "暂时"), (RuntimeError("boom at line 42"), 500, "出错")],
)
async def test_a_page_that_fails_answers_a_page_not_the_apis_json(
    api: Api, app: Any, monkeypatch: pytest.MonkeyPatch, failure: Exception, status: int, says: str
) -> None:
    """A database restart or a bug seen from the window: the clerk gets a page in Chinese, with the
    pages' headers, no trace of the code; the API keeps its problem details."""

    async def failing(self: DisputeService, *args: Any, **kwargs: Any) -> Any:
        raise failure

    monkeypatch.setattr(DisputeService, "search", failing)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as browser:
        browser.cookies.set("mediation_session", api.tokens[("clerk", api.bodies["center"])])
        page = await browser.get("/queue", headers={"Accept-Language": "en"})
        assert page.status_code == status, page.text[:500]
        assert page.headers["content-type"].startswith("text/html"), page.headers["content-type"]
        assert says in page.text and "boom" not in page.text and "Traceback" not in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
        if status == 503:
            assert page.headers["retry-after"]
        answer = await browser.get("/v1/disputes", headers=api.auth("clerk"))
        assert answer.status_code == status
        assert answer.headers["content-type"].startswith("application/problem+json")


async def test_an_address_holding_a_nul_answers_a_page_and_the_api_its_problem(api: Api) -> None:
    transport = httpx.ASGITransport(app=api.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as browser:
        browser.cookies.set("mediation_session", api.tokens[("clerk", api.bodies["center"])])
        page = await browser.get("/queue?q=%00", headers={"Accept-Language": "en"})
        assert page.status_code == 422
        assert page.headers["content-type"].startswith("text/html")
        assert "页面地址有误" in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        answer = await browser.get("/v1/disputes?q=%00", headers=api.auth("clerk"))
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["code"] == "null_character"


@pytest.mark.parametrize("overrides", [{"request_timeout_seconds": 0.3}], ids=["0.3s"])
async def test_a_page_over_the_time_limit_answers_a_page(
    api: Api, monkeypatch: pytest.MonkeyPatch, overrides: dict[str, float]
) -> None:
    async def stalled(self: DisputeService, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(60)

    monkeypatch.setattr(DisputeService, "search", stalled)
    transport = httpx.ASGITransport(app=api.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as browser:
        browser.cookies.set("mediation_session", api.tokens[("clerk", api.bodies["center"])])
        page = await browser.get("/queue")
        assert page.status_code == 503
        assert page.headers["content-type"].startswith("text/html")
        assert "处理超时" in page.text and page.headers["retry-after"] == "1"
        answer = await browser.get("/v1/disputes", headers=api.auth("clerk"))
        assert answer.status_code == 503
        assert answer.json()["type"] == "/problems/request-timeout"
