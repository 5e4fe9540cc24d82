"""A court's request for more materials on the case page and the dashboard: what it asks for, by
when, overdue once its day has passed (民诉法解释 Art. 354, 356, 357), and the form with which the
body holding the case sends the documents it uploaded."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx

from tests.support import Api, resident_id
from tests.test_documents import pdf, uploaded
from tests.test_handoffs import _on, _post
from tests.test_web import signed_in
from tests.test_web_clock_extension import _as_mediator


async def test_the_case_page_shows_the_request_and_the_body_supplies_it(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    due = api.today + timedelta(days=5)
    asking = {"items": ["申请人的身份证复印件"], "due_on": due.isoformat(), "note": "逾期按撤回处理"}
    handoff = (await _post(api, handoff, "materials-request", asking)).json()
    copy = await uploaded(api, dispute, pdf(2048, "web"), "身份证复印件.pdf", kind="identity_document")

    mediator = await _as_mediator(api, web, dispute)
    page = await mediator.get(f"/cases/{dispute['id']}")
    box = page.text.split('id="handoffs"')[1].split("</section>")[0]
    assert "法院要求补充材料" in box and "申请人的身份证复印件" in box
    assert f"应于 {due.isoformat()} 前补交" in box
    assert 'id="materials-overdue"' not in box and 'id="supply-materials"' in box
    assert copy["id"] in box  # offered among the case's documents

    # Past its day it is shown overdue, here and on the supervisor's dashboard.
    _on(api, due + timedelta(days=1))
    page = await mediator.get(f"/cases/{dispute['id']}")
    assert 'id="materials-overdue"' in page.text and "已逾期未补交" in page.text
    board = await signed_in(web, api, "supervisor").get("/dashboard")
    listed = board.text.split('id="unsupplied-list"')[1].split("</ul>")[0]
    assert dispute["case_number"] in listed and f"应于 {due.isoformat()} 前补交材料, 已逾期" in listed

    mediator = await _as_mediator(api, web, dispute)
    fields = [
        ("version", f'"{handoff["version"]}"'),
        ("idempotency_key", "supply-1"),
        ("document_ids", copy["id"]),
        ("note", "已补交"),
    ]
    sent = await mediator.post(f"/cases/{dispute['id']}/handoffs/{handoff['id']}/materials-supplied", fields)
    assert sent.status_code == 303, sent.text[:2000]
    [answered] = (await api.handoff(dispute))["handoff"]["materials_requests"]
    assert (answered["status"], answered["document_ids"], answered["supplied_late"]) == (
        "supplied",
        [copy["id"]],
        True,
    )
    page = await mediator.get(f"/cases/{dispute['id']}")
    assert 'id="materials-request"' not in page.text


async def test_the_court_sees_no_supply_form_and_the_center_sees_no_request_without_one(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.drive("confirmation_pending")
    page = await signed_in(web, api).get(f"/cases/{dispute['id']}")
    assert 'id="materials-request"' not in page.text
    handoff = (await api.handoff(dispute))["handoff"]
    due = (api.today + timedelta(days=5)).isoformat()
    court = api.auth("court", uuid.UUID(handoff["target_id"]))
    sent = await _post(api, handoff, "materials-request", {"items": ["调解笔录"], "due_on": due}, as_=court)
    assert sent.status_code == 200, sent.text
    page = await signed_in(web, api).get(f"/cases/{dispute['id']}")
    assert 'id="materials-request"' in page.text and 'id="supply-materials"' in page.text


async def test_a_files_name_is_offered_masked_and_a_supply_after_the_ruling_is_told(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.target_accepts(await api.drive("confirmation_pending"))
    handoff = (await api.handoff(dispute))["handoff"]
    due = (api.today + timedelta(days=5)).isoformat()
    handoff = (await _post(api, handoff, "materials-request", {"items": ["身份证明"], "due_on": due})).json()
    number = resident_id(41)
    copy = await uploaded(api, dispute, pdf(2048, "name"), f"张三身份证{number}.pdf")
    clerk = signed_in(web, api)
    page = await clerk.get(f"/cases/{dispute['id']}")
    form = page.text.split('id="supply-materials"')[1].split("</details>")[0]
    # The file's name is text typed about the case: its number masked, as the documents list shows it.
    assert copy["id"] in form and number not in form and number[-4:] in form

    ruling = {
        "decision": "withdrawn",
        "ruling_number": "(2026)浙0681民特8号",
        "ruled_on": api.today.isoformat(),
    }
    assert (await _post(api, handoff, "decision", ruling)).status_code == 200
    fields = [
        ("version", f'"{handoff["version"]}"'),
        ("idempotency_key", "supply-after-ruling"),
        ("document_ids", copy["id"]),
    ]
    sent = await clerk.post(f"/cases/{dispute['id']}/handoffs/{handoff['id']}/materials-supplied", fields)
    # No request is open any more, so no form to show the refusal at: it is said above the list.
    banner = sent.text.split('id="handoffs"')[1].split("</section>")[0]
    assert 'class="error banner"' in banner and "data-focus" in banner
