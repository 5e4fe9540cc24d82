"""A sitting (调解会) moved (改期) from the case page in a real browser (Debian's Chromium driven by
Playwright), against the service run as a user runs it, on SQLite and on PostgreSQL: the mediator
moves a sitting to another day and sees it at its new time, with the time it had before."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.test_browser import (  # noqa: F401  (the fixtures, shared with the other browser tests)
    api_token,
    browser,
    database_of,
    live_server,
    open_action,
    page,
    shot,
    sign_in,
    submit,
)
from tests.test_browser_sittings import BEIJING, signed_for_by_the_demo_mediator

# A browser of its own and a served app; its waits are measured in seconds.
pytestmark = pytest.mark.serial

REASON = "被申请人生病住院, 当天无法到场"


def test_the_mediator_moves_a_sitting_from_the_case_page_and_sees_the_new_time(
    page: Any,  # noqa: F811  (the fixture imported above)
    live_server: str,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    case = signed_for_by_the_demo_mediator(page, live_server)

    first = (datetime.now(BEIJING) + timedelta(days=2)).date()
    page.locator("#schedule-sitting summary").click()
    page.fill("#f-schedule-scheduled_at", f"{first}T09:30")
    page.fill("#f-schedule-place", "枫源村调委会调解室")
    submit(page, page.locator("#schedule-sitting button[type=submit]"), "sitting_scheduled")
    sitting = page.locator(".sitting[data-status=scheduled]")
    sitting_id = sitting.get_attribute("data-sitting")
    assert f"{first} 09:30 · 待召开" in sitting.inner_text()

    # Moved two days on, to the afternoon, in the same room: the form starts where the sitting is.
    later = first + timedelta(days=2)
    sitting.locator("details.reschedule-sitting summary").click()
    form = sitting.locator("details.reschedule-sitting form")
    assert form.locator("input[name=scheduled_at]").input_value() == f"{first}T09:30"
    assert form.locator("input[name=place]").input_value() == "枫源村调委会调解室"
    form.locator("input[name=scheduled_at]").fill(f"{later}T14:00")
    form.locator("textarea[name=reason], input[name=reason]").fill(REASON)
    shot(page, "sitting-reschedule-form", database_of(request))
    submit(page, form.locator("button[type=submit]"), "sitting_rescheduled")

    moved = page.locator(f".sitting[data-sitting='{sitting_id}']")
    text = moved.inner_text()
    assert f"{later} 14:00 · 待召开" in text
    earlier = moved.locator("tr.rescheduled").inner_text()
    assert earlier.startswith("原定") and f"{first} 09:30 (枫源村调委会调解室)" in earlier
    assert f"改期原因: {REASON}" in earlier
    assert page.locator(".sitting").count() == 1  # the same sitting, not a new one beside a cancelled one
    timeline = page.locator("#timeline li[data-action=reschedule_session]").inner_text()
    year = (lambda d: f"{d.year}年") if first.year != later.year else (lambda d: "")
    day = lambda d: f"{year(d)}{d.month}月{d.day}日"  # noqa: E731
    assert f"调解会改期: {day(first)} 09:30 → {day(later)} 14:00" in timeline and REASON in timeline
    shot(page, "sitting-rescheduled", database_of(request))

    mediator = {"Authorization": f"Bearer {api_token(live_server, 'mediator')}"}
    listed = httpx.get(f"{live_server}/v1/disputes/{case['id']}/sessions", headers=mediator, timeout=10)
    [shown] = listed.json()
    assert (shown["id"], shown["rescheduled_count"]) == (sitting_id, 1)
    assert datetime.fromisoformat(shown["scheduled_at"]) == datetime.fromisoformat(f"{later}T14:00:00+08:00")
