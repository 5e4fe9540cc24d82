"""The sittings (调解会) on the case page in a real browser (Debian's Chromium driven by Playwright),
against the service run as a user runs it, on SQLite and on PostgreSQL: the mediator schedules a
sitting and records how it went, and the supervisor reads it, without a form."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support import intake_body
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

# A browser of its own and a served app; its waits are measured in seconds.
pytestmark = pytest.mark.serial

BEIJING = ZoneInfo("Asia/Shanghai")


def _case_at_the_demo_body(base: str) -> dict[str, Any]:
    """A new case, accepted and assigned to the demo mediator's committee (through the API)."""
    clerk = {"Authorization": f"Bearer {api_token(base, 'clerk')}"}
    mediator = {"Authorization": f"Bearer {api_token(base, 'mediator')}"}
    body_id = httpx.get(f"{base}/v1/me", headers=mediator, timeout=10).json()["organisation_id"]
    created = httpx.post(
        f"{base}/v1/disputes",
        json=intake_body(description="调解会测试: 相邻双方因院墙滴水发生争执, 申请调解。"),
        headers=clerk,
        timeout=10,
    )
    created.raise_for_status()
    case = created.json()
    for action, payload in (
        ("accept", None),
        ("assign", {"body_id": body_id, "override_reason": "指派本村调委会调解"}),
    ):
        response = httpx.post(
            f"{base}/v1/disputes/{case['id']}/actions/{action}",
            json=payload,
            headers={**clerk, "If-Match": f'"{case["version"]}"'},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        case = response.json()
    return dict(case)


def signed_for_by_the_demo_mediator(tab: Any, base: str) -> dict[str, Any]:
    """A case at the demo committee, signed for by its mediator on the case page, left open there."""
    case = _case_at_the_demo_body(base)
    sign_in(tab, "mediator")
    tab.goto(f"/cases/{case['id']}")
    sign_for = open_action(tab, "sign_for")
    sign_for.locator("select[name=mediator_id]").select_option(index=1)  # type: ignore[attr-defined]
    submit(tab, sign_for.locator("button[type=submit]"), "sign_for")  # type: ignore[attr-defined]
    return case


def test_the_mediator_schedules_a_sitting_and_records_it_and_the_supervisor_reads_it(
    page: Any,  # noqa: F811  (the fixture imported above)
    live_server: str,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    case = signed_for_by_the_demo_mediator(page, live_server)
    assert page.locator(".sitting").count() == 0

    # Scheduled for this minute (the center's hour), so it may be recorded as held: not earlier
    # than the day the committee signed for the case, which no sitting precedes.
    at = datetime.now(BEIJING)
    page.locator("#schedule-sitting summary").click()
    page.fill("#f-schedule-scheduled_at", f"{at:%Y-%m-%dT%H:%M}")
    page.fill("#f-schedule-place", "枫源村调委会调解室")
    submit(page, page.locator("#schedule-sitting button[type=submit]"), "sitting_scheduled")
    sitting = page.locator(".sitting[data-status=scheduled]")
    assert f"{at:%Y-%m-%d %H:%M} · 待召开" in sitting.inner_text()
    assert "枫源村调委会调解室" in sitting.inner_text()

    sitting.locator("details.record-sitting summary").click()
    form = sitting.locator("details.record-sitting form")
    for party in case["parties"]:
        form.locator(f"[data-party='{party['id']}'] input[type=checkbox]").check()
    form.locator("textarea[name=minutes]").fill("调解员释明相邻关系的法律规定, 双方同意下次继续协商。")
    form.locator("select[name=outcome]").select_option("continued")
    shot(page, "sitting-record-form", database_of(request))
    submit(page, form.locator("button[type=submit]"), "sitting_recorded")
    held = page.locator(".sitting[data-status=held]")
    text = held.inner_text()
    assert "已召开" in text and "继续调解" in text and "双方同意下次继续协商" in text
    assert "张三 (申请人)" in text and "李四 (被申请人)" in text
    assert page.locator(".sitting details.record-sitting").count() == 0
    shot(page, "sitting-recorded", database_of(request))

    mediator = {"Authorization": f"Bearer {api_token(live_server, 'mediator')}"}
    listed = httpx.get(f"{live_server}/v1/disputes/{case['id']}/sessions", headers=mediator, timeout=10)
    [recorded] = listed.json()
    assert (recorded["status"], recorded["outcome"]) == ("held", "continued")
    assert {"张三", "李四"} <= {a["name"] for a in recorded["attendees"]}

    # The supervisor reads the sitting, and is offered no form to change it.
    sign_in(page, "supervisor")
    page.goto(f"/cases/{case['id']}")
    assert "继续调解" in page.locator(f".sitting[data-sitting='{recorded['id']}']").inner_text()
    assert page.locator("#sittings form").count() == 0
