"""Steps that cannot be undone, and refused forms, in a real browser (Debian's Chromium driven by
Playwright) against the service run as a user runs it, on SQLite and on PostgreSQL: a new query
code is made only once the clerk confirms it (the old one is voided at once), and a refused form
(the intake form, one of the case page's) takes the focus to its error summary, whose links lead
to the fields."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.test_browser import (  # noqa: F401  (the fixtures, shared with the other browser tests)
    api_register,
    api_token,
    browser,
    database_of,
    live_server,
    page,
    resident_id,
    shot,
    sign_in,
    start_intake,
)

# A browser of its own and a served app; its waits are measured in seconds.
pytestmark = pytest.mark.serial


def _code_opens_the_lookup(base: str, case: dict[str, Any], code: str) -> bool:
    response = httpx.post(
        f"{base}/v1/status-lookup",
        json={"case_number": case["case_number"], "query_code": code},
        timeout=10,
    )
    return response.status_code == 200


def test_a_new_query_code_is_made_only_once_the_clerk_confirms_it(
    page: Any,  # noqa: F811
    live_server: str,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    case = api_register(
        live_server, api_token(live_server, "clerk"), "查询码测试: 相邻双方因院墙滴水发生争执, 申请调解。"
    )
    old = case["query_code"]
    assert _code_opens_the_lookup(live_server, case, old)

    sign_in(page, "clerk")
    page.goto(f"/cases/{case['id']}")
    section = page.locator("#query-code-reissue")
    section.locator("summary").click()
    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    section.locator("button[type=submit]").click()
    page.wait_for_timeout(1_000)  # long enough for a form sent anyway to have left the page
    assert asked and "原查询码将立即作废" in asked[0]
    assert page.url.endswith(f"/cases/{case['id']}")
    assert _code_opens_the_lookup(live_server, case, old)

    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        section.locator("button[type=submit]").click()
    new = page.locator("#query-code").inner_text().strip()
    shot(page, "query-code-reissued", database_of(request))
    assert new and new != old
    assert not _code_opens_the_lookup(live_server, case, old)
    assert _code_opens_the_lookup(live_server, case, new)


def test_a_refused_intake_form_focuses_its_error_summary_whose_link_reaches_the_field(
    page: Any,  # noqa: F811
    live_server: str,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    start_intake(page, "错误摘要", "借款到期未还, 申请调解。")
    wrong = resident_id(3)[:-1] + ("0" if resident_id(3)[-1] != "0" else "1")
    page.select_option("#f-parties-0--role", "applicant")
    page.fill("#f-parties-0--name", "王某某")
    page.select_option("#f-parties-0--id_type", "resident_id")
    page.fill("#f-parties-0--id_number", wrong)
    page.select_option("#f-parties-1--role", "respondent")
    page.fill("#f-parties-1--name", "赵某某")
    with page.expect_navigation():
        page.click("form#intake-form button[type=submit]")

    summary = page.locator(".error-summary")
    assert summary.get_attribute("role") == "alert"
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    assert "需要更正" in summary.inner_text()
    shot(page, "intake-error-summary", database_of(request))
    link = summary.get_by_role("link", name="当事人 1", exact=False).first
    assert "居民身份证号码无效" in link.inner_text()
    link.click()
    assert page.evaluate("document.activeElement.id") == "f-parties-0--id_number"


def test_a_refused_case_page_form_focuses_its_error_summary_whose_link_reaches_the_field(
    page: Any,  # noqa: F811
    live_server: str,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    """The correction form sent without its reason, far down the case page: the page comes back
    with the form open and its summary focused; its link puts the cursor in the reason, and the
    facts typed are still there."""
    case = api_register(
        live_server, api_token(live_server, "clerk"), "更正摘要测试: 相邻双方因院墙滴水发生争执, 申请调解。"
    )
    sign_in(page, "clerk")
    page.goto(f"/cases/{case['id']}")
    page.locator("#correct > summary").click()
    facts = "更正摘要测试: 相邻双方因院墙滴水及排水沟堵塞发生争执, 申请调解。"
    page.fill("#f-correct-description", facts)
    with page.expect_navigation():
        page.click("#correct button[type=submit]")

    summary = page.locator("#correct .error-summary")
    assert summary.get_attribute("role") == "alert"
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    assert page.evaluate("document.activeElement.closest('form').getAttribute('action')").endswith(
        "/corrections"
    )
    shot(page, "case-form-error-summary", database_of(request))
    summary.get_by_role("link", name="更正理由", exact=False).click()
    assert page.evaluate("document.activeElement.id") == "f-correct-reason"
    assert page.input_value("#f-correct-description") == facts


def test_a_link_is_removed_only_once_the_clerk_confirms_it(
    page: Any,  # noqa: F811
    live_server: str,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    token = api_token(live_server, "clerk")
    headers = {"Authorization": f"Bearer {token}"}
    window, hotline = (
        api_register(live_server, token, f"解除关联测试 ({text}): 邻里因院墙滴水发生争执。")
        for text in ("窗口受理", "再次来访")
    )
    linked = httpx.post(
        f"{live_server}/v1/disputes/{hotline['id']}/links",
        json={"dispute_id": window["id"]},
        headers=headers,
        timeout=10,
    )
    linked.raise_for_status()

    def links() -> list[Any]:
        listed = httpx.get(f"{live_server}/v1/disputes/{hotline['id']}/links", headers=headers, timeout=10)
        listed.raise_for_status()
        return list(listed.json())

    sign_in(page, "clerk")
    page.goto(f"/cases/{hotline['id']}")
    form = page.locator("#linked-cases details.unlink-case")
    form.locator("summary").click()
    form.get_by_label("解除理由").fill("经核实并非同一纠纷, 误关联")
    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    form.locator("button[type=submit]").click()
    page.wait_for_timeout(1_000)  # long enough for a form sent anyway to have left the page
    assert asked and "确定解除关联吗" in asked[0]
    assert len(links()) == 1

    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert "done=unlinked" in page.url
    shot(page, "case-unlinked", database_of(request))
    assert links() == []
    assert page.locator("#linked-cases").count() == 0
    entry = page.locator('#timeline li[data-action="unlink"]')
    assert window["case_number"] in entry.inner_text()
    assert "经核实并非同一纠纷, 误关联" in entry.inner_text()
