"""The papers the pages print: the intake receipt (受理回执) and its reprint, the notice of
non-acceptance (不予受理告知书), the agreement (调解协议书) and the application for judicial
confirmation (司法确认申请书).

A window's receipt and a notice are signed for the center: the clerk who handled the case (经办人,
the one who registered it, on a reprint too, or who declined it), the center's seal over the day,
and the center's telephone. A print is recorded as a disclosure of the case's personal data only
when it shows an ID or phone number unmasked (个人信息保护法 Art. 51, 55): the receipt shows none;
the notice, only a number a clerk typed into its reason; the agreement, a number the mediator wrote
into it, printed masked to staff who may read it until they ask for it (`show=numbers`), as on the
case page; the application, the parties' numbers and the agreement's, the same way. The papers are
dated as formal papers are (2026年6月1日, GB/T 9704), the screens in ISO 8601. Over real HTTP through
the app, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import update

from mediation.bodies.models import Body
from tests.support import Api, intake_body
from tests.test_decline_notice import declined_at_the_window, section
from tests.test_web import Page, case_number_in, intake_form, signed_in
from tests.test_web_show_numbers import disclosures

CENTER = "诸暨市矛盾纠纷调处化解中心"
CENTER_PHONE = "0575-87012345"
CLERK = "测试clerk"  # the display name of the test's clerk at the center
# A number a mediator or a clerk types into free text, and how it is printed masked.
PHONE = "13912345678"
PHONE_MASKED = "139****5678"
# A day as a formal paper writes it, and as a screen does.
CN_DAY = re.compile(r"20\d\d年\d{1,2}月\d{1,2}日")
ISO_DAY = re.compile(r"\b20\d\d-\d\d-\d\d\b")


async def center_phone(api: Api, phone: str | None = CENTER_PHONE) -> None:
    """The center's telephone, as its administrator sets it on the organisation's profile."""
    async with api.app.state.db.writer() as session, session.begin():
        await session.execute(update(Body).where(Body.id == api.bodies["center"]).values(contact_phone=phone))


def signoff(html: str) -> str:
    return section(html, 'id="signoff"')


# ---- the receipt --------------------------------------------------------------------------------


async def test_the_window_receipt_names_the_clerk_the_seal_the_day_and_the_centers_telephone(
    api: Api, web: httpx.AsyncClient
) -> None:
    await center_phone(api)
    printed = await signed_in(web, api).post("/intake", intake_form(intake_body()))
    assert printed.status_code == 200, printed.text[:2000]
    receipt = section(printed.text, 'id="receipt"')
    assert f'<th>联系电话</th><td id="center-phone">{CENTER_PHONE}</td>' in receipt
    signed = signoff(receipt)
    assert f'经办人: <span id="clerk">{CLERK}</span>' in signed
    assert f"受理单位（盖章）: {CENTER}" in signed and "<p>2026年6月1日</p>" in signed
    assert "补打" not in signed


async def test_a_center_without_a_telephone_prints_no_telephone_line(
    api: Api, web: httpx.AsyncClient
) -> None:
    printed = await signed_in(web, api).post("/intake", intake_form(intake_body()))
    assert printed.status_code == 200
    assert "联系电话" not in section(printed.text, 'id="receipt"')
    assert "受理单位（盖章）" in signoff(printed.text)


async def test_an_online_receipt_gives_the_telephone_and_is_signed_by_no_one(
    api: Api, web: httpx.AsyncClient
) -> None:
    await center_phone(api)
    applied = await Page(web).post(
        "/apply", intake_form({k: v for k, v in intake_body().items() if k != "channel"})
    )
    assert applied.status_code == 200, applied.text[:2000]
    receipt = section(applied.text, 'id="receipt"')
    assert "网上申请回执" in receipt and CENTER_PHONE in receipt
    assert 'id="signoff"' not in receipt and "经办人" not in receipt and "盖章" not in receipt


async def test_a_reprint_is_signed_by_the_clerk_who_registered_the_case_and_dated_as_reprinted(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    await center_phone(api)
    printed = await signed_in(web, api).post("/intake", intake_form(intake_body()))
    listed = await api.client.get("/v1/disputes", params={"q": case_number_in(printed.text)})
    case = listed.json()["items"][0]
    before = len(await disclosures(app, case["id"]))
    # Another member of the center's staff reprints it: the clerk named is the one who registered it.
    again = await signed_in(web, api, "supervisor").get(f"/cases/{case['id']}/receipt")
    assert again.status_code == 200
    signed = signoff(again.text)
    assert f'经办人: <span id="clerk">{CLERK}</span>' in signed and "测试supervisor" not in signed
    assert f"受理单位（盖章）: {CENTER}" in signed
    assert '<p id="reprinted-on">补打日期: 2026年6月1日</p>' in signed
    assert CENTER_PHONE in again.text
    assert len(await disclosures(app, case["id"])) == before


async def test_a_reprinted_receipt_shows_no_number_and_records_no_disclosure(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    """The clerk may read the parties' numbers, but the receipt prints none: nothing was disclosed."""
    case = await api.intake()
    before = len(await disclosures(app, case["id"]))
    applicant = intake_body()["parties"][0]
    again = await signed_in(web, api).get(f"/cases/{case['id']}/receipt")
    assert again.status_code == 200 and case["case_number"] in again.text
    assert applicant["id_number"] not in again.text and applicant["phone"] not in again.text
    assert len(await disclosures(app, case["id"])) == before


# ---- the notice of non-acceptance ------------------------------------------------------------------


async def test_the_notice_names_the_clerk_who_declined_the_seal_the_day_and_the_telephone(
    api: Api, web: httpx.AsyncClient
) -> None:
    await center_phone(api)
    case = await declined_at_the_window(api, web)
    # Printed by another member of staff: the clerk named is the one who declined the case.
    printed = await signed_in(web, api, "supervisor").get(f"/cases/{case['id']}/decline-notice")
    assert printed.status_code == 200
    signed = signoff(section(printed.text, 'id="decline-notice"'))
    assert f'经办人: <span id="clerk">{CLERK}</span>' in signed
    assert f"{CENTER}（盖章）" in signed and "<p>2026年6月1日</p>" in signed
    assert f'<span id="center-phone">{CENTER_PHONE}</span>' in signed


async def test_a_notice_showing_no_number_records_no_disclosure(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    case = await declined_at_the_window(api, web)
    before = len(await disclosures(app, case["id"]))
    printed = await signed_in(web, api).get(f"/cases/{case['id']}/decline-notice")
    assert printed.status_code == 200 and "不予受理告知书" in printed.text
    assert len(await disclosures(app, case["id"])) == before


async def test_a_number_in_the_reason_is_shown_to_the_clerk_and_recorded_and_masked_to_others(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    reason = f"申请人已另案起诉, 联系电话{PHONE}"
    case = await declined_at_the_window(api, web, reason=reason)
    before = len(await disclosures(app, case["id"]))
    clerk = await signed_in(web, api).get(f"/cases/{case['id']}/decline-notice")
    assert reason in section(clerk.text, 'id="decline-notice"')
    [record] = (await disclosures(app, case["id"]))[before:]
    assert (record.actor_role, record.object_id) == ("clerk", case["id"])
    supervisor = await signed_in(web, api, "supervisor").get(f"/cases/{case['id']}/decline-notice")
    assert PHONE not in supervisor.text and PHONE_MASKED in supervisor.text
    assert len(await disclosures(app, case["id"])) == before + 1


# ---- the agreement ------------------------------------------------------------------------------


async def agreement_with_a_number(api: Api) -> tuple[dict[str, Any], str]:
    """A case in mediation whose draft agreement has the mediator's note of a party's telephone."""
    case = await api.drive("mediating")
    agreement = await api.draft_agreement(case, terms=[f"被申请人付款后电话{PHONE}告知申请人。"])
    return case, f"/cases/{case['id']}/agreements/{agreement['id']}/print"


async def test_the_agreement_prints_its_numbers_masked_until_asked_for(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    case, path = await agreement_with_a_number(api)
    before = len(await disclosures(app, case["id"]))
    page = signed_in(web, api)
    masked = await page.get(path)
    assert masked.status_code == 200 and "人民调解协议书" in masked.text and "@media print" in masked.text
    assert PHONE not in masked.text and PHONE_MASKED in masked.text
    assert f'<a id="show-numbers" href="{path}?show=numbers">显示完整号码</a>' in masked.text
    assert len(await disclosures(app, case["id"])) == before

    shown = await page.get(f"{path}?show=numbers")
    assert shown.status_code == 200
    assert PHONE in shown.text and f'<a id="hide-numbers" href="{path}">' in shown.text
    [record] = (await disclosures(app, case["id"]))[before:]
    assert (record.actor_role, record.outcome, record.object_id) == ("clerk", "success", case["id"])
    assert record.details["via"] and record.details["disputes"] == [case["id"]]


async def test_without_pii_read_the_agreement_stays_masked_and_records_nothing(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    case, path = await agreement_with_a_number(api)
    before = len(await disclosures(app, case["id"]))
    page = signed_in(web, api, "supervisor")
    for asked in (path, f"{path}?show=numbers"):
        printed = await page.get(asked)
        assert printed.status_code == 200
        assert PHONE not in printed.text and PHONE_MASKED in printed.text
        assert "show-numbers" not in printed.text and "hide-numbers" not in printed.text
    assert len(await disclosures(app, case["id"])) == before


async def test_an_agreement_without_a_number_offers_nothing_and_records_nothing(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    case = await api.drive("agreement_signed")
    agreements = (await api.client.get(f"/v1/disputes/{case['id']}/agreements")).json()
    path = f"/cases/{case['id']}/agreements/{agreements[-1]['id']}/print"
    before = len(await disclosures(app, case["id"]))
    page = signed_in(web, api)
    for asked in (path, f"{path}?show=numbers"):
        printed = await page.get(asked)
        assert printed.status_code == 200 and "人民调解协议书" in printed.text
        assert 'id="numbers-control"' not in printed.text
    assert len(await disclosures(app, case["id"])) == before


async def test_the_case_page_showing_the_numbers_links_the_print_showing_them(
    api: Api, web: httpx.AsyncClient
) -> None:
    case, path = await agreement_with_a_number(api)
    page = signed_in(web, api)
    assert f'href="{path}"' in (await page.get(f"/cases/{case['id']}")).text
    assert f'href="{path}?show=numbers"' in (await page.get(f"/cases/{case['id']}?show=numbers")).text


# ---- dates ----------------------------------------------------------------------------------------


async def test_the_papers_are_dated_as_formal_papers_and_the_screens_in_iso(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.drive("agreement_signed")
    [agreement] = (await api.client.get(f"/v1/disputes/{case['id']}/agreements")).json()
    page = signed_in(web, api)
    receipt = section((await page.get(f"/cases/{case['id']}/receipt")).text, 'id="receipt"')
    printed = (await page.get(f"/cases/{case['id']}/agreements/{agreement['id']}/print")).text
    application = (await page.get(f"/cases/{case['id']}/confirmation-application")).text
    for name, paper in (("receipt", receipt), ("agreement", printed), ("application", application)):
        assert CN_DAY.search(paper), name
        assert not ISO_DAY.search(paper), (name, ISO_DAY.findall(paper))
    assert "<th>申请日期</th><td>2026年6月1日</td>" in receipt
    assert '<p id="reprinted-on">补打日期: 2026年6月1日</p>' in receipt
    # The last day to apply for confirmation, as the receipt tells the party.
    assert re.search(r"最后一天(暂计)?为 2026年7月\d{1,2}日", receipt)
    assert "本协议于2026年6月1日生效" in printed and "于2026年6月16日前" in printed
    assert "于2026年6月1日经" in application and "于2026年6月16日前履行" in application
    # Not applied for yet: the day of the application is left for the parties to write.
    assert "<p>____年__月__日</p>" in application
    # The case page, a screen, keeps ISO.
    screen = (await page.get(f"/cases/{case['id']}")).text
    assert "2026-06-01" in screen and "2026年6月1日" not in screen


async def test_the_notice_is_dated_as_a_formal_paper(api: Api, web: httpx.AsyncClient) -> None:
    case = await declined_at_the_window(api, web)
    notice = section(
        (await signed_in(web, api).get(f"/cases/{case['id']}/decline-notice")).text, 'id="decline-notice"'
    )
    assert "申请日期: 2026年6月1日" in notice and "告知日期: 2026年6月1日" in notice
    assert not ISO_DAY.search(notice), ISO_DAY.findall(notice)


# ---- the application for judicial confirmation ----------------------------------------------------


async def agreed_with_a_number(api: Api) -> tuple[dict[str, Any], str]:
    """A case whose agreement, in effect, has the mediator's note of a party's telephone."""
    case = await api.drive("mediating")
    await api.signed_agreement(case, terms=[f"被申请人付款后电话{PHONE}告知申请人。"])
    case = await api.step(case, "agree")
    return case, f"/cases/{case['id']}/confirmation-application"


def applicants_table(html: str) -> str:
    return html.split("<table>")[1].split("</table>")[0]


async def test_the_application_prints_the_numbers_masked_until_asked_for_and_records_that_read(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    case, path = await agreed_with_a_number(api)
    applicant = intake_body()["parties"][0]
    before = len(await disclosures(app, case["id"]))
    page = signed_in(web, api)
    masked = await page.get(path)
    assert masked.status_code == 200 and "司法确认申请书" in masked.text
    table = applicants_table(masked.text)
    assert applicant["id_number"] not in table and applicant["phone"] not in table
    assert case["parties"][0]["name"] in table
    assert PHONE not in masked.text and PHONE_MASKED in masked.text
    assert f'<a id="show-numbers" href="{path}?show=numbers">显示完整号码</a>' in masked.text
    assert len(await disclosures(app, case["id"])) == before

    # The copy filed with the court: every applicant's numbers in full, the agreement as written.
    shown = await page.get(f"{path}?show=numbers")
    assert shown.status_code == 200
    table = applicants_table(shown.text)
    assert applicant["id_number"] in table and applicant["phone"] in table
    assert PHONE in shown.text and f'<a id="hide-numbers" href="{path}">' in shown.text
    [record] = (await disclosures(app, case["id"]))[before:]
    assert (record.actor_role, record.outcome, record.object_id) == ("clerk", "success", case["id"])


async def test_without_pii_read_the_application_stays_masked_and_records_nothing(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    case, path = await agreed_with_a_number(api)
    applicant = intake_body()["parties"][0]
    before = len(await disclosures(app, case["id"]))
    page = signed_in(web, api, "supervisor")
    for asked in (path, f"{path}?show=numbers"):
        printed = await page.get(asked)
        assert printed.status_code == 200
        assert applicant["phone"] not in printed.text and applicant["id_number"] not in printed.text
        assert PHONE not in printed.text and PHONE_MASKED in printed.text
        assert "show-numbers" not in printed.text and "hide-numbers" not in printed.text
    assert len(await disclosures(app, case["id"])) == before


async def test_an_application_showing_no_number_offers_nothing_and_records_nothing(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    """Parties registered without ID or phone numbers (an agreement could not be signed without
    them, 人民调解法 Art. 29: the application is printed before one, its day left blank)."""
    parties = [
        {k: v for k, v in p.items() if k not in ("id_type", "id_number", "phone")}
        for p in intake_body()["parties"]
    ]
    case = await api.drive("mediating", parties=parties)
    path = f"/cases/{case['id']}/confirmation-application"
    before = len(await disclosures(app, case["id"]))
    page = signed_in(web, api)
    for asked in (path, f"{path}?show=numbers"):
        printed = await page.get(asked)
        assert printed.status_code == 200 and "司法确认申请书" in printed.text
        assert 'id="numbers-control"' not in printed.text
    assert len(await disclosures(app, case["id"])) == before


# ---- one disclosure per print showing the numbers ---------------------------------------------------


async def test_each_print_showing_the_numbers_is_recorded_once_and_no_other_print_is(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    """The agreement and the application, each printed masked, asked for the numbers by a HEAD
    (nothing is sent, so nothing is shown) and printed with them, twice over: every print showing
    the numbers is one disclosure naming the case once; the others record nothing."""
    case, application = await agreed_with_a_number(api)
    agreements = (await api.client.get(f"/v1/disputes/{case['id']}/agreements")).json()
    agreement = f"/cases/{case['id']}/agreements/{agreements[-1]['id']}/print"
    page = signed_in(web, api)
    before = len(await disclosures(app, case["id"]))
    for _ in range(2):
        for path in (agreement, application):
            masked = await page.get(path)
            assert masked.status_code == 200 and PHONE not in masked.text and "show-numbers" in masked.text
            assert (await page.client.head(f"{path}?show=numbers")).status_code == 200
            assert len(await disclosures(app, case["id"])) == before

            shown = await page.get(f"{path}?show=numbers")
            assert shown.status_code == 200 and PHONE in shown.text and "hide-numbers" in shown.text
            [record] = (await disclosures(app, case["id"]))[before:]
            assert record.details["disputes"] == [case["id"]] and record.object_id == case["id"]
            before += 1
