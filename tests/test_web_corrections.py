"""Two window clerks correcting one case from the case page, over real HTTP through the app, on
SQLite and PostgreSQL: a clerk whose page went out of date is shown the case as it stands, with only
the clerk's own edits kept, and sending the form again never undoes the other clerk's correction of
a field this clerk did not touch (个人信息保护法 Art. 46: the register is corrected, not reverted)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.support import CSRF, Api, person, staff_user
from tests.test_corrections import party
from tests.test_web import Page, signed_in
from tests.test_web_show_numbers import disclosures
from tests.test_web_sittings import form_on, text_of

OLD_PHONE = "13600000001"
B_PHONE = "13611112222"
A_PHONE = "13622223333"
OUT_OF_DATE = "该案件在您打开页面后已被他人更新"


@pytest.fixture
async def other_browser(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A second clerk's browser: cookies of its own."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as c:
        c.cookies.set("mediation_csrf", CSRF)
        yield c


async def second_clerk(api: Api, browser: httpx.AsyncClient) -> Page:
    """Another window clerk of the center, signed in on `browser`."""
    identity = api.app.state.identity
    now = datetime.now(UTC)
    center = api.bodies["center"]
    user = staff_user(
        "test-clerk-center-2", "测试clerk2", "clerk", center, identity.passwords.hash("x" * 12), now
    )
    async with api.app.state.db.writer() as session, session.begin():
        session.add(user)
    browser.cookies.set("mediation_session", identity.tokens.issue(user.id, "clerk", center).token)
    return Page(browser)


async def a_case(api: Api) -> dict[str, Any]:
    applicant = {**person("applicant", "张三", 1), "phone": OLD_PHONE}
    return await api.intake(parties=[applicant, person("respondent", "李四", 2)])


async def correction_form_of(page: Page, dispute: dict[str, Any]) -> dict[str, str]:
    """The correction form on the case page showing the full numbers (a reader without `pii:read`
    still reads them masked); a refusal of it comes back showing them."""
    shown = await page.get(f"/cases/{dispute['id']}?show=numbers")
    assert shown.status_code == 200, shown.text[:2000]
    return form_on(shown.text, corrections_url(dispute))


def corrections_url(dispute: dict[str, Any]) -> str:
    return f"/cases/{dispute['id']}/corrections"


def field_note(html: str, name: str) -> str:
    """The text of the correction form's field named `name` (its label, value and note)."""
    found = re.search(rf'<div class="field[^"]*" data-field="{re.escape(name)}">(.*?)</div>', html, re.S)
    assert found, name
    return text_of(found.group(1))


async def b_corrects_the_phone(other_browser: httpx.AsyncClient, api: Api, dispute: dict[str, Any]) -> None:
    b = await second_clerk(api, other_browser)
    form = await correction_form_of(b, dispute)
    assert form["parties[0].phone"] == OLD_PHONE
    form |= {"parties[0].phone": B_PHONE, "reason": "申请人来电告知更换了手机号码"}
    done = await b.post(corrections_url(dispute), form)
    assert done.status_code == 303, done.text[:2000]


async def test_an_out_of_date_correction_sent_again_keeps_the_other_clerks_phone(
    api: Api, web: httpx.AsyncClient, other_browser: httpx.AsyncClient
) -> None:
    dispute = await a_case(api)
    a = signed_in(web, api)
    opened = await correction_form_of(a, dispute)
    await b_corrects_the_phone(other_browser, api, dispute)

    facts = "双方因宅基地边界发生争执, 申请人称被申请人砌墙占用其宅基地约两米。"
    mine = opened | {"description": facts, "reason": "纠纷简要情况记录不全"}
    refused = await a.post(corrections_url(dispute), mine)
    assert refused.status_code == 412, refused.text[:2000]
    assert OUT_OF_DATE in refused.text and "页面已显示最新情况" in refused.text
    # The form shown again holds the case as it stands, the clerk's own edit on it, and says
    # which detail someone else corrected meanwhile.
    again = form_on(refused.text, corrections_url(dispute))
    assert again["parties[0].phone"] == B_PHONE and again["show"] == "numbers"
    assert again["description"] == facts and again["reason"] == "纠纷简要情况记录不全"
    assert again["version"] != opened["version"]
    assert "已被他人更正" in field_note(refused.text, "parties[0].phone")
    assert "以下登记信息已被他人更正: 张三的联系电话" in text_of(refused.text)

    done = await a.post(corrections_url(dispute), again)
    assert done.status_code == 303, done.text[:2000]
    now = await api.get(dispute)
    assert party(now, "applicant")["phone"] == B_PHONE
    assert now["description"] == facts
    last = (await api.timeline(dispute))[-1]["payload"]
    assert (last["description"], last["parties"]) == (True, [])


async def test_an_out_of_date_form_sent_back_as_shown_undoes_nothing(
    api: Api, web: httpx.AsyncClient, other_browser: httpx.AsyncClient
) -> None:
    """A form sent back as it was shown changes nothing, however old the page: it never brings
    back the number it showed when opened."""
    dispute = await a_case(api)
    a = signed_in(web, api)
    opened = await correction_form_of(a, dispute)
    await b_corrects_the_phone(other_browser, api, dispute)
    refused = await a.post(corrections_url(dispute), opened | {"reason": "核对"})
    assert refused.status_code == 422 and "没有需要更正的内容" in refused.text, refused.text[:2000]
    # Shown again on the case as it stands, the other clerk's number in it and pointed out.
    again = form_on(refused.text, corrections_url(dispute))
    assert again["parties[0].phone"] == B_PHONE
    assert "已被他人更正" in field_note(refused.text, "parties[0].phone")
    sent_again = await a.post(corrections_url(dispute), again)
    assert sent_again.status_code == 422, sent_again.text[:2000]
    assert party(await api.get(dispute), "applicant")["phone"] == B_PHONE


async def test_both_clerks_correcting_the_phone_are_told_of_the_clash(
    api: Api, web: httpx.AsyncClient, other_browser: httpx.AsyncClient
) -> None:
    dispute = await a_case(api)
    a = signed_in(web, api)
    opened = await correction_form_of(a, dispute)
    await b_corrects_the_phone(other_browser, api, dispute)

    mine = opened | {"parties[0].phone": A_PHONE, "reason": "申请人当面告知新号码"}
    refused = await a.post(corrections_url(dispute), mine)
    assert refused.status_code == 412, refused.text[:2000]
    again = form_on(refused.text, corrections_url(dispute))
    # The clerk's own edit stays; the note says what the other clerk wrote and what sending it does.
    assert again["parties[0].phone"] == A_PHONE
    note = field_note(refused.text, "parties[0].phone")
    assert f"现为「{B_PHONE}」" in note and "替换他人的更正" in note, note
    assert "其中张三的联系电话您也作了修改, 与他人的更正冲突" in text_of(refused.text)

    # Told of the clash, the clerk keeps the other clerk's number and corrects the address only.
    kept = again | {"parties[0].phone": B_PHONE, "parties[0].address": "浙江省诸暨市枫桥镇新街1号"}
    done = await a.post(corrections_url(dispute), kept)
    assert done.status_code == 303, done.text[:2000]
    applicant = party(await api.get(dispute), "applicant")
    assert (applicant["phone"], applicant["address"]) == (B_PHONE, "浙江省诸暨市枫桥镇新街1号")
    assert (await api.timeline(dispute))[-1]["payload"]["parties"] == [
        {"party_id": applicant["id"], "fields": ["address"]}
    ]


async def test_a_clash_resolved_in_the_clerks_favour_replaces_the_other_number(
    api: Api, web: httpx.AsyncClient, other_browser: httpx.AsyncClient
) -> None:
    dispute = await a_case(api)
    a = signed_in(web, api)
    opened = await correction_form_of(a, dispute)
    await b_corrects_the_phone(other_browser, api, dispute)
    refused = await a.post(
        corrections_url(dispute), opened | {"parties[0].phone": A_PHONE, "reason": "新号码"}
    )
    assert refused.status_code == 412, refused.text[:2000]
    done = await a.post(corrections_url(dispute), form_on(refused.text, corrections_url(dispute)))
    assert done.status_code == 303, done.text[:2000]
    assert party(await api.get(dispute), "applicant")["phone"] == A_PHONE


async def test_a_supervisor_reading_numbers_masked_keeps_the_other_clerks_phone_unseen(
    api: Api, web: httpx.AsyncClient, other_browser: httpx.AsyncClient
) -> None:
    """The supervisor's form shows the phone empty (masked): told that it was corrected, never
    shown the number, and sending the form again leaves it as the other clerk corrected it."""
    dispute = await a_case(api)
    supervisor = signed_in(web, api, "supervisor")
    opened = await correction_form_of(supervisor, dispute)
    assert opened["parties[0].phone"] == "" and OLD_PHONE not in str(opened)
    await b_corrects_the_phone(other_browser, api, dispute)

    mine = opened | {"parties[0].address": "浙江省诸暨市枫桥镇新街1号", "reason": "地址有误"}
    refused = await supervisor.post(corrections_url(dispute), mine)
    assert refused.status_code == 412, refused.text[:2000]
    assert B_PHONE not in refused.text and OLD_PHONE not in refused.text
    again = form_on(refused.text, corrections_url(dispute))
    assert again["parties[0].phone"] == "" and again["parties[0].address"] == "浙江省诸暨市枫桥镇新街1号"
    assert "号码已隐藏" in field_note(refused.text, "parties[0].phone")

    done = await supervisor.post(corrections_url(dispute), again)
    assert done.status_code == 303, done.text[:2000]
    applicant = party(await api.get(dispute), "applicant")
    assert (applicant["phone"], applicant["address"]) == (B_PHONE, "浙江省诸暨市枫桥镇新街1号")


async def test_a_clerk_on_the_page_as_opened_corrects_the_phone_without_it_being_disclosed(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    """The page opens with the numbers masked (个人信息保护法 Art. 6): the form holds them empty,
    the ID number to be corrected once shown, and a phone typed in still corrects the phone; no
    disclosure is recorded, by the page or by the correction."""
    dispute = await a_case(api)
    disclosed = len(await disclosures(app, dispute["id"]))  # the intake's answer to its clerk
    a = signed_in(web, api)
    shown = await a.get(f"/cases/{dispute['id']}")
    opened = form_on(shown.text, corrections_url(dispute))
    assert opened["parties[0].phone"] == "" and OLD_PHONE not in shown.text
    assert "parties[0].id_number" not in opened and "show" not in opened
    assert "更正证件号码请先点击上方「显示完整号码」" in text_of(shown.text)

    done = await a.post(
        corrections_url(dispute), opened | {"parties[0].phone": A_PHONE, "reason": "号码有误"}
    )
    assert done.status_code == 303, done.text[:2000]
    assert done.headers["location"] == f"/cases/{dispute['id']}?done=corrected#parties"
    assert len(await disclosures(app, dispute["id"])) == disclosed
    applicant = party(await api.get(dispute), "applicant")
    assert (applicant["phone"], applicant["id_number"]) == (
        A_PHONE,
        person("applicant", "张三", 1)["id_number"],
    )


async def test_an_out_of_date_correction_from_the_page_as_opened_comes_back_masked(
    api: Api, web: httpx.AsyncClient, other_browser: httpx.AsyncClient, app: Any
) -> None:
    """As for a reader without pii:read: told that the phone was corrected, never shown it, and
    sending the form again leaves it as the other clerk corrected it."""
    dispute = await a_case(api)
    a = signed_in(web, api)
    opened = form_on((await a.get(f"/cases/{dispute['id']}")).text, corrections_url(dispute))
    await b_corrects_the_phone(other_browser, api, dispute)
    # The other clerk's page asked for the numbers: those are the disclosures so far.
    disclosed = len(await disclosures(app, dispute["id"]))

    mine = opened | {"parties[0].address": "浙江省诸暨市枫桥镇新街1号", "reason": "地址有误"}
    refused = await a.post(corrections_url(dispute), mine)
    assert refused.status_code == 412, refused.text[:2000]
    assert B_PHONE not in refused.text and OLD_PHONE not in refused.text
    again = form_on(refused.text, corrections_url(dispute))
    assert again["parties[0].phone"] == "" and "show" not in again
    assert "号码已隐藏" in field_note(refused.text, "parties[0].phone")
    assert len(await disclosures(app, dispute["id"])) == disclosed

    done = await a.post(corrections_url(dispute), again)
    assert done.status_code == 303, done.text[:2000]
    applicant = party(await api.get(dispute), "applicant")
    assert (applicant["phone"], applicant["address"]) == (B_PHONE, "浙江省诸暨市枫桥镇新街1号")
