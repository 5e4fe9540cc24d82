"""The parties' status lookup on a phone, in a real browser (Debian's Chromium driven by Playwright)
against the service run as a user runs it, on SQLite and on PostgreSQL: after a post the focus is on
what it answered (a refused field's summary, the refusal, or the result), so that a screen reader
reads it out at once, and the refusal says how to get a new code."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_browser import (  # noqa: F401  (the fixtures, shared with the other browser tests)
    api_register,
    api_token,
    browser,
    database_of,
    live_server,
    page,
    shot,
)

# A browser of its own and a served app; its waits are measured in seconds.
pytestmark = pytest.mark.serial


def _focused_id(tab: Any) -> str:
    return str(tab.evaluate("document.activeElement && document.activeElement.id"))


def test_a_lookup_on_a_phone_moves_the_focus_to_its_answer(
    page: Any,  # noqa: F811
    live_server: str,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    case = api_register(
        live_server, api_token(live_server, "clerk"), "进度查询测试: 相邻双方因院墙滴水发生争执, 申请调解。"
    )
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto("/lookup")

    page.fill("#f-lookup-case_number", case["case_number"])
    page.fill("#f-lookup-query_code", "WRONGCD2")
    with page.expect_navigation():
        page.click("form[action='/lookup'] button[type=submit]")
    assert _focused_id(page) == "lookup-error"
    assert "受理窗口重新获取查询码" in page.locator("#lookup-error").inner_text()
    assert page.get_attribute("#f-lookup-query_code", "aria-describedby") == "lookup-error"
    shot(page, "phone-lookup-wrong-code", database_of(request))

    page.fill("#f-lookup-query_code", "AB")  # shorter than any code: refused by the form's rules
    with page.expect_navigation():
        page.click("form[action='/lookup'] button[type=submit]")
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    page.click(".error-summary a[href='#f-lookup-query_code']")
    assert _focused_id(page) == "f-lookup-query_code"
    assert page.get_attribute("#f-lookup-query_code", "aria-invalid") == "true"

    page.fill("#f-lookup-query_code", case["query_code"])
    with page.expect_navigation():
        page.click("form[action='/lookup'] button[type=submit]")
    assert _focused_id(page) == "lookup-result"
    assert case["case_number"] in page.locator("#lookup-result").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, "phone-lookup-result", database_of(request))
