"""What a court confirming an agreement is given of each party beyond its identity and contact
(民诉法解释 Art. 353-354; 法释〔2011〕5号 Art. 3): the service address (送达地址), an organisation's
legal representative or principal (民事诉讼法 Art. 51), and, for an agent, the party it acts for and
its power of attorney. Taken at intake and in a correction, shown in the case, in the court's
dossier and on the printed 司法确认申请书."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from mediation.disputes.models import Dispute, Party, TimelineEntry
from mediation.events.models import OutboxEvent
from tests.support import Api, intake_body, organisation, person
from tests.test_corrections import correct
from tests.test_documents import pdf, uploaded
from tests.test_web import Page, intake_form, signed_in
from tests.test_web_sittings import form_on

SERVICE_ADDRESS = "浙江省诸暨市暨阳街道艮塔路 8 号 (收件人 张三)"


def company(role: str, name: str = "诸暨市枫桥建材有限公司", **more: Any) -> dict[str, Any]:
    return organisation(role, name, phone="057587000001", address="浙江省诸暨市枫桥镇工业园区", **more)


def lawyer(represents: int | None = 0, serial: int = 7) -> dict[str, Any]:
    agent = {**person("agent", "代理人周某", serial), "address": "浙江省诸暨市暨阳街道律师事务所"}
    return agent if represents is None else {**agent, "represents": represents}


def parties_with_particulars() -> list[dict[str, Any]]:
    return [
        {**person("applicant", "张三", 1), "service_address": SERVICE_ADDRESS},
        company("respondent", legal_representative="王五"),
        lawyer(represents=0),
    ]


async def row_counts(api: Api) -> tuple[int, ...]:
    async with api.app.state.db.reader() as session:
        return tuple(
            [
                int(await session.scalar(select(func.count()).select_from(m)) or 0)
                for m in (Dispute, Party, TimelineEntry, OutboxEvent)
            ]
        )


async def refused_intake(api: Api, parties: list[dict[str, Any]], language: str = "zh") -> dict[str, Any]:
    before = await row_counts(api)
    response = await api.client.post(
        "/v1/disputes",
        json=intake_body(parties=parties),
        headers={**api.headers(), "Accept-Language": language},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await row_counts(api) == before
    problem = response.json()
    assert problem["type"] == "/problems/validation-error"
    return problem


# ---- intake and the case read -------------------------------------------------------------------


async def test_intake_keeps_the_service_address_the_legal_representative_and_whom_an_agent_acts_for(
    api: Api,
) -> None:
    created = await api.intake(parties=parties_with_particulars())
    applicant, respondent, agent = (await api.get(created))["parties"]
    assert applicant["service_address"] == SERVICE_ADDRESS
    assert applicant["legal_representative"] is None and applicant["represents"] is None
    assert respondent["legal_representative"] == "王五" and respondent["service_address"] is None
    assert (agent["represents"], agent["represents_party_id"]) == (0, applicant["id"])
    # An agent acts for a party and is none: the number of people involved does not count it.
    assert created["people_involved"] == 2


async def test_a_service_address_is_masked_like_the_address_for_a_reader_without_pii_read(
    api: Api,
) -> None:
    parties = [{**person("applicant", "张三", 1), "service_address": "暨阳街道 8 号, 电话 13800001111"}]
    created = await api.intake(parties=[*parties, person("respondent", "李四", 2)])
    masked = await api.client.get(f"/v1/disputes/{created['id']}", headers=api.auth("supervisor"))
    assert masked.status_code == 200, masked.text
    shown = masked.json()["parties"][0]["service_address"]
    assert "13800001111" not in shown and "暨阳街道 8 号" in shown


async def test_a_legal_representative_is_masked_like_the_address_for_a_reader_without_pii_read(
    api: Api,
) -> None:
    representative = "王五 (电话 13800002222)"
    created = await api.intake(
        parties=[person("applicant", "张三", 1), company("respondent", legal_representative=representative)]
    )
    masked = await api.client.get(f"/v1/disputes/{created['id']}", headers=api.auth("supervisor"))
    assert masked.status_code == 200, masked.text
    shown = masked.json()["parties"][1]["legal_representative"]
    assert "13800002222" not in shown and shown.startswith("王五")
    assert (await api.get(created))["parties"][1]["legal_representative"] == representative


@pytest.mark.parametrize(
    ("parties", "field", "code"),
    [
        # 民事诉讼法 Art. 51: a person acts for itself.
        (
            [
                {**person("applicant", "张三", 1), "legal_representative": "张父"},
                person("respondent", "李四", 2),
            ],
            "parties[0].legal_representative",
            "legal_representative_not_organisation",
        ),
        (
            [{**person("applicant", "张三", 1), "represents": 1}, person("respondent", "李四", 2)],
            "parties[0].represents",
            "represents_not_agent",
        ),
        (
            [person("applicant", "张三", 1), person("respondent", "李四", 2), lawyer(represents=3)],
            "parties[2].represents",
            "represents_unknown_party",
        ),
        (
            [person("applicant", "张三", 1), person("respondent", "李四", 2), lawyer(represents=2)],
            "parties[2].represents",
            "represents_self",
        ),
        (
            [
                person("applicant", "张三", 1),
                person("respondent", "李四", 2),
                lawyer(represents=0),
                lawyer(represents=2, serial=8),
            ],
            "parties[3].represents",
            "represents_agent",
        ),
        (
            [person("applicant", "张三", 1), person("respondent", "李四", 2), lawyer(represents=-1)],
            "parties[2].represents",
            "greater_than_equal",
        ),
        (
            [
                {**person("applicant", "张三", 1), "service_address": "址" * 201},
                person("respondent", "李四", 2),
            ],
            "parties[0].service_address",
            "string_too_long",
        ),
    ],
)
async def test_particulars_that_do_not_fit_the_party_are_refused_at_their_field_and_nothing_is_written(
    api: Api, parties: list[dict[str, Any]], field: str, code: str
) -> None:
    [error] = (await refused_intake(api, parties))["errors"]
    assert (error["field"], error["code"]) == (field, code)


async def test_a_refused_particular_is_told_in_the_readers_language(api: Api) -> None:
    parties = [person("applicant", "张三", 1), person("respondent", "李四", 2), lawyer(represents=2)]
    [zh] = (await refused_intake(api, parties, "zh"))["errors"]
    [en] = (await refused_intake(api, parties, "en"))["errors"]
    assert zh["message"] == "代理人不能代理自己"
    assert en["message"] == "An agent cannot act for itself"
    parties = [
        {**person("applicant", "张三", 1), "legal_representative": "张父"},
        person("respondent", "李四", 2),
    ]
    [zh] = (await refused_intake(api, parties, "zh"))["errors"]
    [en] = (await refused_intake(api, parties, "en"))["errors"]
    assert "法定代表人或主要负责人" in zh["message"]
    assert en["message"] == "Only an organisation has a legal representative or principal"


# ---- corrections ----------------------------------------------------------------------------------


async def test_a_correction_sets_and_clears_the_particulars(api: Api) -> None:
    parties = [person("applicant", "张三", 1), company("respondent"), lawyer(represents=None)]
    dispute = await api.intake(parties=parties)
    applicant, respondent, agent = dispute["parties"]
    response = await correct(
        api,
        dispute,
        {
            "reason": "当事人补充送达地址、法定代表人和委托关系",
            "parties": [
                {"party_id": applicant["id"], "service_address": SERVICE_ADDRESS},
                {"party_id": respondent["id"], "legal_representative": "王五"},
                {"party_id": agent["id"], "represents": 1},
            ],
        },
    )
    assert response.status_code == 200, response.text
    applicant, respondent, agent = (await api.get(dispute))["parties"]
    assert applicant["service_address"] == SERVICE_ADDRESS
    assert respondent["legal_representative"] == "王五"
    assert (agent["represents"], agent["represents_party_id"]) == (1, respondent["id"])
    # The timeline names the fields corrected, never their values.
    entry = (await api.timeline(dispute))[-1]
    fields = {c["party_id"]: c["fields"] for c in entry["payload"]["parties"]}
    assert fields == {
        applicant["id"]: ["service_address"],
        respondent["id"]: ["legal_representative"],
        agent["id"]: ["represents"],
    }

    dispute = await api.get(dispute)
    response = await correct(
        api,
        dispute,
        {
            "reason": "送达地址有误, 委托关系已解除",
            "parties": [
                {"party_id": applicant["id"], "service_address": None},
                {"party_id": agent["id"], "represents": None},
            ],
        },
    )
    assert response.status_code == 200, response.text
    applicant, _, agent = (await api.get(dispute))["parties"]
    assert applicant["service_address"] is None
    assert agent["represents"] is None and agent["represents_party_id"] is None


async def test_an_agent_added_later_acts_for_a_party_counted_in_the_cases_list(api: Api) -> None:
    dispute = await api.intake()
    response = await correct(
        api,
        dispute,
        {"reason": "被申请人委托代理人", "add_parties": [lawyer(represents=1)]},
    )
    assert response.status_code == 200, response.text
    _, respondent, agent = (await api.get(dispute))["parties"]
    assert (agent["represents"], agent["represents_party_id"]) == (1, respondent["id"])


@pytest.mark.parametrize(
    ("entry", "field", "code"),
    [
        (
            {"party": 0, "legal_representative": "张父"},
            "parties[0].legal_representative",
            "legal_representative_not_organisation",
        ),
        ({"party": 0, "represents": 1}, "parties[0].represents", "represents_not_agent"),
        ({"party": 2, "represents": 2}, "parties[0].represents", "represents_self"),
        ({"party": 2, "represents": 9}, "parties[0].represents", "represents_unknown_party"),
        ({"add": lawyer(represents=2, serial=8)}, "add_parties[0].represents", "represents_agent"),
        ({"add": lawyer(represents=4, serial=8)}, "add_parties[0].represents", "represents_unknown_party"),
        ({"add": lawyer(represents=3, serial=8)}, "add_parties[0].represents", "represents_self"),
    ],
)
async def test_a_correction_refuses_particulars_that_do_not_fit_and_changes_nothing(
    api: Api, entry: dict[str, Any], field: str, code: str
) -> None:
    dispute = await api.intake(
        parties=[person("applicant", "张三", 1), person("respondent", "李四", 2), lawyer(represents=0)]
    )
    body: dict[str, Any] = {"reason": "更正"}
    if "add" in entry:
        body["add_parties"] = [entry["add"]]
    else:
        fix = {k: v for k, v in entry.items() if k != "party"}
        body["parties"] = [{"party_id": dispute["parties"][entry["party"]]["id"], **fix}]
    before = await row_counts(api)
    response = await correct(api, dispute, body)
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["field"], error["code"]) == (field, code)
    assert await row_counts(api) == before
    assert (await api.get(dispute))["version"] == dispute["version"]


# ---- the court's dossier and the printed application -----------------------------------------------


async def confirmation_requested(api: Api, parties: list[dict[str, Any]]) -> dict[str, Any]:
    dispute = await api.drive("agreement_signed", parties=parties)
    if any(p["role"] == "agent" for p in parties):
        # 法释〔2011〕5号 Art. 3: the agent's power of attorney goes with the application.
        await uploaded(api, dispute, pdf(2048, "poa"), "授权委托书.pdf", kind="power_of_attorney")
    return await api.step(await api.get(dispute), "request_confirmation")


def checklist(dossier: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["code"]: m for m in dossier["materials"]}


async def test_the_dossier_states_where_to_serve_who_acts_for_an_organisation_and_for_whom_an_agent_acts(
    api: Api,
) -> None:
    dispute = await confirmation_requested(api, parties_with_particulars())
    dossier = await api.handoff(dispute)
    applicant, respondent, agent = dossier["particulars"]
    ids = [p["id"] for p in dossier["case"]["parties"]]
    assert [applicant["party_id"], respondent["party_id"], agent["party_id"]] == ids
    assert (applicant["service_address"], applicant["service_address_source"]) == (
        SERVICE_ADDRESS,
        "service_address",
    )
    # None given: the address stands for it, and the dossier says so.
    assert (respondent["service_address"], respondent["service_address_source"]) == (
        "浙江省诸暨市枫桥镇工业园区",
        "address",
    )
    assert respondent["legal_representative"] == "王五" and applicant["legal_representative"] is None
    assert (agent["acts_for_party_id"], agent["acts_for_name"]) == (ids[0], "张三")
    assert applicant["acts_for_party_id"] is None
    power = checklist(dossier)["power_of_attorney"]
    assert power["item"] == "授权委托书" and power["present"] is True
    assert "法释〔2011〕5号 第三条" in power["article"]


async def test_the_power_of_attorney_is_asked_for_only_when_the_case_has_an_agent(api: Api) -> None:
    dossier = await api.handoff(await confirmation_requested(api, intake_body()["parties"]))
    assert "power_of_attorney" not in checklist(dossier)
    assert {p["service_address_source"] for p in dossier["particulars"]} == {"address"}


async def test_a_referral_with_an_agent_and_no_power_of_attorney_shows_it_missing(api: Api) -> None:
    dispute = await api.drive("mediation_failed", parties=parties_with_particulars())
    dossier = await api.handoff(await api.step(dispute, "refer_litigation"))
    assert checklist(dossier)["power_of_attorney"]["present"] is False
    assert dossier["particulars"][2]["acts_for_name"] == "张三"


async def test_the_printed_application_gives_service_addresses_legal_representative_and_the_agents_party(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.drive("agreement_signed", parties=parties_with_particulars())
    page = await signed_in(web, api).get(f"/cases/{case['id']}/confirmation-application?show=numbers")
    assert page.status_code == 200, page.text[:2000]
    rows = page.text.split("<table>")[1].split("</table>")[0].split('<tr class="party">')[1:]
    applicant, respondent, agent = rows
    assert f'<td class="service-address">{SERVICE_ADDRESS}</td>' in applicant
    # No service address given: the address serves, said so.
    assert '<td class="service-address">同住所</td>' in respondent
    assert "法定代表人/主要负责人: 王五" in respondent and "法定代表人" not in applicant
    assert re.search(r"委托代理人<br><span class=\"acts-for\">\(代理申请人 张三\)</span>", agent)
    assert "<li>委托代理人的授权委托书</li>" in page.text

    without_agent = await api.drive("agreement_signed")
    page = await signed_in(web, api).get(f"/cases/{without_agent['id']}/confirmation-application")
    assert "授权委托书" not in page.text


# ---- the window's intake form ----------------------------------------------------------------------


async def test_the_intake_form_offers_the_particulars_and_registers_them(
    api: Api, web: httpx.AsyncClient
) -> None:
    page = signed_in(web, api)
    form = (await page.get("/intake")).text
    for name in ("service_address", "legal_representative", "represents"):
        assert f'name="parties[0].{name}"' in form
    assert "送达地址" in form and "法定代表人或主要负责人" in form and "代理哪位当事人" in form
    # Whom an agent acts for is chosen among the rows, as the form numbers them.
    choice = form.split('name="parties[1].represents"')[1].split("</select>")[0]
    options = re.findall(r'<option value="(\d+)"\s*>([^<]+)</option>', choice)
    assert options == [("0", "当事人 1"), ("1", "当事人 2")]

    body = intake_body(parties=parties_with_particulars())
    receipt = await page.post("/intake", intake_form(body))
    assert receipt.status_code == 200, receipt.text[:3000]
    case_id = re.search(r'class="button" href="/cases/([0-9a-f-]{36})"', receipt.text)
    assert case_id, receipt.text[:3000]
    applicant, respondent, agent = (await api.get({"id": case_id.group(1)}))["parties"]
    assert applicant["service_address"] == SERVICE_ADDRESS and respondent["legal_representative"] == "王五"
    assert agent["represents_party_id"] == applicant["id"]


async def test_an_agent_choosing_a_row_after_an_empty_one_acts_for_that_party(
    api: Api, web: httpx.AsyncClient
) -> None:
    # Row 3 added and left empty is no party: the agent's choice of 当事人 4 is the respondent's row.
    pairs = intake_form(intake_body(parties=[person("applicant", "张三", 1)]))
    pairs += [("parties[2].role", "third_party"), ("parties[2].kind", "person")]
    pairs += [(f"parties[3].{k}", str(v)) for k, v in person("respondent", "李四", 2).items()]
    pairs += [(f"parties[4].{k}", str(v)) for k, v in lawyer(represents=2).items()]
    receipt = await signed_in(web, api).post("/intake", pairs)
    assert receipt.status_code == 200, receipt.text[:3000]
    case_id = re.search(r'class="button" href="/cases/([0-9a-f-]{36})"', receipt.text)
    assert case_id, receipt.text[:3000]
    parties = (await api.get({"id": case_id.group(1)}))["parties"]
    assert [p["name"] for p in parties] == ["张三", "李四", "代理人周某"]
    assert parties[2]["represents_party_id"] == parties[1]["id"]


async def test_the_intake_form_refuses_a_legal_representative_of_a_person_in_its_error_summary(
    api: Api, web: httpx.AsyncClient
) -> None:
    page: Page = signed_in(web, api)
    parties = [
        {**person("applicant", "张三", 1), "legal_representative": "张父"},
        person("respondent", "李四", 2),
    ]
    before = await row_counts(api)
    refused = await page.post("/intake", intake_form(intake_body(parties=parties)))
    assert refused.status_code == 422
    assert await row_counts(api) == before
    summary = refused.text.split('<div class="error-summary"')[1].split("</div>")[0]
    assert 'href="#f-parties-0--legal_representative"' in summary
    assert "只有单位当事人填写法定代表人或主要负责人" in summary
    # The value typed stays in its field, beside its message.
    assert 'value="张父"' in refused.text


# ---- the case page's correction form -------------------------------------------------------------


async def test_the_case_pages_correction_form_corrects_the_particulars_where_they_apply(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.intake(
        parties=[person("applicant", "张三", 1), company("respondent"), lawyer(represents=None)]
    )
    page = signed_in(web, api)
    url = f"/cases/{dispute['id']}/corrections"
    form = form_on((await page.get(f"/cases/{dispute['id']}?show=numbers")).text, url)
    assert all(f"parties[{i}].service_address" in form for i in range(3))
    # An organisation's legal representative; the party an agent acts for, chosen among the others.
    assert [i for i in range(3) if f"parties[{i}].legal_representative" in form] == [1]
    assert [i for i in range(3) if f"parties[{i}].represents" in form] == [2]
    form |= {
        "reason": "当事人补充送达地址、法定代表人和委托关系",
        "parties[0].service_address": SERVICE_ADDRESS,
        "parties[1].legal_representative": "王五",
        "parties[2].represents": "1",
    }
    done = await page.post(url, form)
    assert done.status_code == 303, done.text[:2000]
    applicant, respondent, agent = (await api.get(dispute))["parties"]
    assert applicant["service_address"] == SERVICE_ADDRESS and respondent["legal_representative"] == "王五"
    assert agent["represents_party_id"] == respondent["id"]
    # The case page's list of parties says so.
    shown = (await page.get(f"/cases/{dispute['id']}")).text.split('id="parties"')[1].split("</table>")[0]
    assert "(法定代表人/主要负责人 王五)" in shown and "(代理被申请人 诸暨市枫桥建材有限公司)" in shown
