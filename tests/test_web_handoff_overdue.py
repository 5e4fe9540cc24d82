"""A court or commission past its day to answer a handoff is shown to the center's staff where they
look: on the supervisor's dashboard and in the case page's handoff box (法释〔2011〕5号 Art. 4: three
days to decide whether to accept a confirmation request; 民事诉讼法 Art. 126: seven days to register
a suit). The case is not late at the center, so the case lists' overdue tab does not hold it."""

from __future__ import annotations

from datetime import date, timedelta

import httpx

from tests.support import Api
from tests.test_handoffs import _on
from tests.test_web import signed_in


async def test_an_unanswered_confirmation_request_is_shown_overdue(api: Api, web: httpx.AsyncClient) -> None:
    _on(api, date(2026, 11, 2))  # Monday: three working days to accept end on Thursday 5 November
    dispute = await api.drive("confirmation_pending")
    handoff = dispute["handoff"]
    assert handoff["accept_due_on"] == "2026-11-05"
    answered = await api.drive("confirmation_pending")
    await api.target_accepts(answered)

    _on(api, date(2026, 11, 5))
    supervisor = signed_in(web, api, "supervisor")
    page = await supervisor.get("/dashboard")
    assert page.status_code == 200
    assert "没有逾期未答复的移交" in page.text
    case_page = await signed_in(web, api).get(f"/cases/{dispute['id']}")
    assert 'id="handoff-overdue"' not in case_page.text

    _on(api, date(2026, 11, 6))
    page = await supervisor.get("/dashboard")
    listed = page.text.split('id="unanswered-list"')[1].split("</ul>")[0]
    assert dispute["case_number"] in listed and answered["case_number"] not in listed
    assert "应于 2026-11-05 前决定是否受理, 已逾期" in listed
    assert f"/cases/{dispute['id']}#handoffs" in listed
    case_page = await signed_in(web, api).get(f"/cases/{dispute['id']}")
    assert 'id="handoff-overdue"' in case_page.text and "已逾期未答复是否受理" in case_page.text


async def test_a_referral_past_its_day_to_decide_is_shown_overdue(api: Api, web: httpx.AsyncClient) -> None:
    _on(api, date(2026, 11, 2))
    dispute = await api.drive("confirmation_pending")
    dispute = await api.target_accepts(dispute)
    due = (await api.get(dispute))["handoff"]["decide_due_on"]
    _on(api, date.fromisoformat(due) + timedelta(days=1))
    page = await signed_in(web, api, "supervisor").get("/dashboard")
    listed = page.text.split('id="unanswered-list"')[1].split("</ul>")[0]
    assert dispute["case_number"] in listed and f"应于 {due} 前作出决定, 已逾期" in listed
    case_page = await signed_in(web, api).get(f"/cases/{dispute['id']}")
    assert "已逾期未作出决定" in case_page.text


async def test_the_case_page_shows_the_ruling_and_the_period_to_apply_for_enforcement(
    api: Api, web: httpx.AsyncClient
) -> None:
    """民事诉讼法 Art. 250: two years from the last day of performance to apply for enforcement of a
    confirmed agreement; the clerk tells a party who comes back with it unperformed."""
    confirmed = await api.drive("confirmed")
    handoff = (await api.handoff(confirmed))["handoff"]
    assert handoff["enforcement_deadline"]
    page = await signed_in(web, api).get(f"/cases/{confirmed['id']}")
    box = page.text.split('id="handoffs"')[1].split("</section>")[0]
    assert "裁定书 (2026)浙0681民特1号" in box
    assert f"于 {handoff['enforcement_deadline']} 前向人民法院申请强制执行" in box

    rejected = await api.drive("confirmation_rejected")
    page = await signed_in(web, api).get(f"/cases/{rejected['id']}")
    box = page.text.split('id="handoffs"')[1].split("</section>")[0]
    assert "裁定书 (2026)浙0681民特2号 · 驳回理由:" in box and "unclear_content" not in box
    assert 'id="enforcement-deadline"' not in box
