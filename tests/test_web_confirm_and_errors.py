"""The staff pages ask before a step that cannot be undone (the words say what cannot be), a refused
form lists its errors at its top, each a link to its field, and an alert names its kind once."""

from __future__ import annotations

import html
import re
import uuid

import httpx

from tests.support import Api, intake_body, person
from tests.test_corrections_more import THREAT
from tests.test_web import Page, intake_form, signed_in
from tests.test_web_case_assignment import _name_owner
from tests.test_web_hardening import online_body


def _confirm_of(page: str, button: str) -> str:
    """The confirmation a submit button labelled `button` asks, if any."""
    tag = re.search(r'<button type="submit"([^>]*)>' + button + "</button>", page)
    assert tag, page[:2000]
    asked = re.search(r'data-confirm="([^"]*)"', tag.group(1))
    return html.unescape(asked.group(1)) if asked else ""


async def test_linking_cases_and_a_new_query_code_are_confirmed_first(
    api: Api, web: httpx.AsyncClient
) -> None:
    await api.intake(parties=[person("applicant", "钱一", 71), person("respondent", "孙二", 72)])
    later = await api.intake(parties=[person("applicant", "钱一", 71), person("respondent", "李三", 73)])
    page = (await signed_in(web, api).get(f"/cases/{later['id']}")).text
    # A link made by mistake is removed, with its reason; the question says where it is recorded.
    assert "关联将记入两案的时间线" in _confirm_of(page, "关联")
    assert "原查询码将立即作废" in _confirm_of(page, "重新生成查询码")
    # What can be taken back, or is sent again as it was, is not asked about.
    assert _confirm_of(page, "报告风险") == ""


async def test_clearing_the_owner_is_confirmed_first(api: Api, web: httpx.AsyncClient) -> None:
    dispute = await api.drive("mediating")
    page = signed_in(web, api, "supervisor")
    named = await _name_owner(page, dispute, "o1")
    assert named.status_code == 303, named.text[:2000]
    shown = (await page.get(f"/cases/{dispute['id']}")).text
    assert "确定取消包案吗" in _confirm_of(shown, "取消包案")


async def test_signing_out_everywhere_is_confirmed_first(api: Api, web: httpx.AsyncClient) -> None:
    shown = (await signed_in(web, api).get("/account/password")).text
    assert "包括本次登录" in _confirm_of(shown, "退出所有设备")


async def test_a_refused_intake_form_lists_its_errors_at_the_top_with_links_to_the_fields(
    api: Api, web: httpx.AsyncClient
) -> None:
    body = intake_body(description="")
    body["parties"][0]["id_number"] = body["parties"][0]["id_number"][:-1] + "X"
    refused = await signed_in(web, api).post("/intake", intake_form(body))
    assert refused.status_code == 422, refused.text[:2000]
    summary = refused.text.split('<div class="error-summary"')[1].split("</div>")[0]
    assert 'role="alert"' in summary and 'tabindex="-1"' in summary
    assert "有 2 处需要更正" in summary
    assert '<a href="#f-description">' in summary
    assert '<a href="#f-parties-0--id_number">当事人 1 ' in summary
    # Each link leads to an element on the page: the field the error is under.
    for target in re.findall(r'href="#([^"]+)"', summary):
        assert f'id="{target}"' in refused.text
    # The summary stands before the form's fields.
    assert refused.text.index("error-summary") < refused.text.index('id="f-description"')


async def test_a_refused_online_application_links_the_unticked_notice(web: httpx.AsyncClient) -> None:
    form = [(k, v) for k, v in intake_form(online_body(), key=uuid.uuid4().hex) if k != "pi_notice_read"]
    refused = await Page(web).post("/apply", form)
    assert refused.status_code == 422, refused.text[:2000]
    summary = refused.text.split('<div class="error-summary"')[1].split("</div>")[0]
    assert "有 1 处需要更正" in summary and '<a href="#f-pi_notice_read">个人信息处理告知: ' in summary
    assert 'id="f-pi_notice_read"' in refused.text


async def test_a_form_sent_as_it_should_be_shows_no_error_summary(api: Api, web: httpx.AsyncClient) -> None:
    shown = await signed_in(web, api).get("/intake")
    assert "error-summary" not in shown.text


async def test_an_alert_names_its_kind_once(api: Api, web: httpx.AsyncClient) -> None:
    dispute = await api.intake(description=THREAT)
    case_page = (await signed_in(web, api, "supervisor").get(f"/cases/{dispute['id']}")).text
    dashboard = (await signed_in(web, api, "supervisor").get("/dashboard")).text
    for page in (case_page, dashboard):
        assert "风险预警" in page
        assert not re.search(r"风险预警(</strong>)? · 风险预警", page)
    assert re.search(r"风险预警</strong> · " + dispute["case_number"], case_page)
