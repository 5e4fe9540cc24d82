"""A refused form on the case page is shown as a refused intake form is: the page comes back with
the form open, a summary at the form's top listing each invalid field as a link to it (the box the
page's script focuses), each field marked `aria-invalid` and described by its message, and what was
typed kept. A refusal with no field to point at is said above the form and is what takes the focus.
Over real HTTP through the app, on SQLite and PostgreSQL; nothing refused is written."""

from __future__ import annotations

import re
import uuid
from html import unescape

import httpx

from tests.support import Api, person
from tests.test_web import signed_in
from tests.test_web_documents import upload_form
from tests.test_web_forms import at_the_body
from tests.test_web_sittings import form_on


def form_html(page: str, action: str) -> str:
    """The markup of the one form posting to `action`."""
    found = re.findall(rf'<form method="post" action="{re.escape(action)}"[^>]*>.*?</form>', page, re.S)
    assert len(found) == 1, (action, len(found))
    return found[0]


def summary_of(form: str) -> str:
    assert '<div class="error-summary"' in form, form[:3000]
    summary = form.split('<div class="error-summary"')[1].split("</div>")[0]
    assert 'role="alert"' in summary and 'tabindex="-1"' in summary
    # The summary stands at the form's top, before any of its fields.
    assert form.index("error-summary") < min(
        m.start() for m in re.finditer(r"<(input|select|textarea) ", form)
    )
    return unescape(summary)


def assert_refused_at(page: str, action: str, fid: str, label: str) -> str:
    """The form posting to `action` came back with a summary whose link leads to the field `fid`,
    said under `label`, and the field is marked invalid and described by its message. Returns the
    summary."""
    form = form_html(page, action)
    summary = summary_of(form)
    assert re.search(rf'<a href="#{re.escape(fid)}">{re.escape(label)}: [^<]+</a>', summary), summary
    # Every link leads to an element of the form.
    for target in re.findall(r'href="#([^"]+)"', summary):
        assert f'id="{target}"' in form, target
    field = re.search(rf'<(input|select|textarea|fieldset)\b[^>]*\bid="{re.escape(fid)}"[^>]*>', form)
    assert field, fid
    if field.group(1) != "fieldset":
        assert 'aria-invalid="true"' in field.group(0), field.group(0)
    assert f'aria-describedby="{fid}-error"' in field.group(0), field.group(0)
    assert f'id="{fid}-error"' in form
    return summary


async def test_a_refused_action_with_a_reason_lists_the_reason_and_keeps_the_advice_chosen(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.intake()
    clerk = signed_in(web, api)
    action = f"/cases/{case['id']}/actions/decline"
    page = (await clerk.get(f"/cases/{case['id']}")).text
    advice = re.findall(r'<option value="(\w+)"', form_html(page, action))
    form = {**form_on(page, action), "reason": "", "advice": advice[-1]}
    refused = await clerk.post(action, form)
    assert refused.status_code == 422, refused.text[:3000]
    assert '<details class="action" data-action="decline" open>' in refused.text
    assert_refused_at(refused.text, action, "f-decline-reason", "理由")
    assert form_on(refused.text, action)["advice"] == advice[-1]
    assert (await api.get(case))["version"] == case["version"]


async def test_a_refused_handoff_request_lists_the_claims_and_keeps_the_court_chosen(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.drive("mediation_failed")
    clerk = signed_in(web, api)
    page = (await clerk.get(f"/cases/{case['id']}")).text
    action = f"/cases/{case['id']}/actions/refer_litigation"
    courts = re.findall(r'<option value="([0-9a-f-]{36})"', form_html(page, action))
    assert courts, form_html(page, action)
    form = {**form_on(page, action), "court_id": courts[0], "claims": "", "note": "已告知当事人诉讼费用"}
    refused = await clerk.post(action, form)
    assert refused.status_code == 422, refused.text[:3000]
    assert_refused_at(refused.text, action, "f-refer_litigation-claims", "诉讼请求")
    kept = form_on(refused.text, action)
    assert kept["court_id"] == courts[0] and kept["note"] == "已告知当事人诉讼费用"
    assert (await api.get(case))["version"] == case["version"]


async def test_a_refused_correction_lists_the_reason_and_keeps_the_facts_typed(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.intake()
    clerk = signed_in(web, api)
    action = f"/cases/{case['id']}/corrections"
    form = form_on((await clerk.get(f"/cases/{case['id']}")).text, action)
    form.update(reason="", description="双方因宅基地界址发生争执, 现场已测量。")
    refused = await clerk.post(action, form)
    assert refused.status_code == 422, refused.text[:3000]
    assert '<details class="task" id="correct" open>' in refused.text
    # Named as the form names it, not by the schema's bare label.
    assert_refused_at(refused.text, action, "f-correct-reason", "更正理由")
    assert form_on(refused.text, action)["description"] == "双方因宅基地界址发生争执, 现场已测量。"
    assert (await api.get(case))["version"] == case["version"]


async def test_a_refused_upload_lists_the_file_and_keeps_the_note(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.intake()
    clerk = signed_in(web, api)
    refused = await upload_form(clerk, case, None, note="当事人当场提交的收条")
    assert refused.status_code == 422, refused.text[:3000]
    action = f"/cases/{case['id']}/documents"
    assert_refused_at(refused.text, action, "f-document-file", "文件")
    assert "当事人当场提交的收条</textarea>" in form_html(refused.text, action)


async def test_a_refused_sitting_lists_the_time_and_keeps_the_place(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.drive("mediating")
    page = await at_the_body(web, api, case)
    action = f"/cases/{case['id']}/sittings"
    form = form_on((await page.get(f"/cases/{case['id']}")).text, action)
    form.update(scheduled_at="", place="枫源村调委会调解室")
    refused = await page.post(action, form)
    assert refused.status_code == 422, refused.text[:3000]
    assert_refused_at(refused.text, action, "f-schedule-scheduled_at", "调解时间")
    assert form_on(refused.text, action)["place"] == "枫源村调委会调解室"


async def test_a_refused_draft_lists_an_obligations_amount_and_keeps_the_terms(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.drive("mediating")
    page = await at_the_body(web, api, case)
    action = f"/cases/{case['id']}/agreements"
    form = form_on((await page.get(f"/cases/{case['id']}")).text, action)
    content = api.agreement_content(case)
    obligation = content["obligations"][0]
    form.update(facts=content["facts"], disputed_matters=content["disputed_matters"])
    form.update(responsibility=content["responsibility"], terms="双方互相谅解。\n不再就此事发生争执。")
    form.update({f"obligations[0].{k}": str(v) for k, v in obligation.items()})
    form["obligations[0].amount"] = "一千二百"
    refused = await page.post(action, form)
    assert refused.status_code == 422, refused.text[:3000]
    summary = assert_refused_at(
        refused.text, action, "f-agreement-obligations-0--amount", "履行义务 1 金额(元)"
    )
    assert "有 1 处需要更正" in summary
    kept = form_on(refused.text, action)
    assert kept["terms"] == "双方互相谅解。\n不再就此事发生争执。"
    assert kept["obligations[0].amount"] == "一千二百"
    assert kept["obligations[0].description"] == obligation["description"]


async def test_a_refused_removal_of_a_link_lists_the_reason(api: Api, web: httpx.AsyncClient) -> None:
    earlier = await api.intake(parties=[person("applicant", "钱一", 81), person("respondent", "孙二", 82)])
    later = await api.intake(parties=[person("applicant", "钱一", 81), person("respondent", "李三", 83)])
    made = await api.client.post(f"/v1/disputes/{later['id']}/links", json={"dispute_id": earlier["id"]})
    assert made.status_code == 201, made.text
    later = await api.get(later)
    clerk = signed_in(web, api)
    action = f"/cases/{later['id']}/links/{earlier['id']}/removal"
    form = {"version": f'"{later["version"]}"', "idempotency_key": uuid.uuid4().hex, "reason": ""}
    refused = await clerk.post(action, form)
    assert refused.status_code == 422, refused.text[:3000]
    assert_refused_at(refused.text, action, "f-unlink-1-reason", "解除理由")


async def test_a_refusal_with_no_field_to_point_at_takes_the_focus_itself(
    api: Api, web: httpx.AsyncClient
) -> None:
    """A form sent from a page opened before someone else changed the case: nothing was done, and
    that is said first, where the page's script puts the focus."""
    case = await api.intake()
    clerk = signed_in(web, api)
    action = f"/cases/{case['id']}/actions/decline"
    page = (await clerk.get(f"/cases/{case['id']}")).text
    advice = re.findall(r'<option value="(\w+)"', form_html(page, action))[-1]
    form = {**form_on(page, action), "reason": "不属于人民调解范围", "advice": advice}
    await api.step(case, "accept")
    refused = await clerk.post(action, form)
    assert refused.status_code in (409, 412), refused.text[:3000]
    focused = re.findall(r"<[^>]*\bdata-focus\b[^>]*>", refused.text)
    assert focused and 'id="refusal"' in focused[0] and 'tabindex="-1"' in focused[0], focused
    assert "error-summary" not in refused.text


async def test_a_case_page_sent_as_it_should_be_shows_no_summary(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.intake()
    shown = (await signed_in(web, api).get(f"/cases/{case['id']}")).text
    assert "error-summary" not in shown and "data-focus" not in shown
