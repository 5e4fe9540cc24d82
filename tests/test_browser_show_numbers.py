"""The case page's numbers in a real browser: Debian's Chromium driven by Playwright, against the
service run as a user runs it, on SQLite and on PostgreSQL (the fixtures of tests/test_browser.py).
The window clerk opens a case with the parties' numbers masked and sees them in full only after
asking for them (个人信息保护法 Art. 6, 51)."""

from __future__ import annotations

import httpx
import pytest

from tests.test_browser import (  # noqa: F401 (fixtures)
    api_token,
    browser,
    database_of,
    live_server,
    page,
    shot,
    sign_in,
)

# A browser of its own and a served app; its waits are measured in seconds.
pytestmark = pytest.mark.serial


def test_the_clerk_asks_for_the_full_numbers_and_the_case_page_shows_them(
    page: object,  # noqa: F811
    live_server: str,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    token = api_token(live_server, "clerk")
    listed = httpx.get(
        f"{live_server}/v1/disputes",
        params={"limit": 100},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    listed.raise_for_status()
    case, number = next(
        (c, p["id_number"]) for c in listed.json()["items"] for p in c["parties"] if p.get("id_number")
    )

    sign_in(page, "clerk")
    page.goto(f"/cases/{case['id']}")  # type: ignore[attr-defined]
    parties = page.locator("#parties")  # type: ignore[attr-defined]
    assert number not in parties.inner_text()
    show = page.get_by_role("link", name="显示完整号码")  # type: ignore[attr-defined]
    assert show.is_visible()
    with page.expect_navigation():  # type: ignore[attr-defined]
        show.click()
    assert "show=numbers" in page.url  # type: ignore[attr-defined]
    assert number in page.locator("#parties").inner_text()  # type: ignore[attr-defined]
    assert page.locator("#show-numbers").count() == 0  # type: ignore[attr-defined]
    shot(page, "case-numbers-shown", database_of(request))

    with page.expect_navigation():  # type: ignore[attr-defined]
        page.locator("#hide-numbers").click()  # type: ignore[attr-defined]
    assert number not in page.locator("#parties").inner_text()  # type: ignore[attr-defined]
