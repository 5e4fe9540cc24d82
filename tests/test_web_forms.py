"""The case page's forms over real HTTP through the ASGI app, on SQLite and PostgreSQL: each offers
what the service takes, a refused one comes back where it was with what was typed, and each
element id on the page is one field's."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from html import unescape
from html.parser import HTMLParser
from typing import Any

import httpx
from stdnum.cn import uscc

from mediation.agreements.schemas import MEDIATOR_SIGNING_METHODS, PARTY_SIGNING_METHODS, SIGNING_METHODS
from mediation.identity.models import User
from tests.support import Api, person
from tests.test_web import Page, signed_in


async def at_the_body(
    web: httpx.AsyncClient, api: Api, case: dict[str, Any], role: str = "body_mediator"
) -> Page:
    """Signed in as a member of staff of the body handling the case (a user, not the body's key)."""
    body_id = uuid.UUID(str(case["body_id"]))
    if (role, body_id) not in api.tokens:
        now = datetime.now(UTC)
        async with api.app.state.db.writer() as session, session.begin():
            user = User(
                id=uuid.uuid4(),
                username=f"web-{role}-{body_id.hex[:8]}",
                display_name="测试调解员",
                role=role,
                organisation_id=body_id,
                password_hash="-",
                active=True,
                created_at=now,
                password_changed_at=now,
            )
            session.add(user)
        api.tokens[(role, body_id)] = api.app.state.identity.tokens.issue(user.id, role, body_id).token
    web.cookies.set("mediation_session", api.tokens[(role, body_id)])
    return Page(web)


def company(role: str, name: str) -> dict[str, Any]:
    body = "91330681MA2D00001"
    return {
        "role": role,
        "kind": "organisation",
        "name": name,
        "id_type": "uscc",
        "id_number": body + uscc.calc_check_digit(body),
        "phone": "0575-87001234",
        "address": "浙江省诸暨市枫桥镇工业区",
    }


def sign_rows(html: str) -> list[dict[str, Any]]:
    """The signature forms on a case page: who signs, the methods offered, the one chosen, the
    hidden fields, and any refusal shown under the row."""
    rows = []
    pattern = (
        r'<form method="post" action="[^"]+/signatures" class="inline sign" data-signer="(\w+)"'
        r'(?: data-party="([^"]+)")?>(.*?)</form>\s*(?:<div class="sign-error">(.*?)</div>)?'
    )
    for signer, party, inner, error in re.findall(pattern, html, re.S):
        rows.append(
            {
                "signer": signer,
                "party": party or None,
                "methods": re.findall(r'<option value="(\w+)"', inner),
                "chosen": re.findall(r'<option value="(\w+)" selected', inner),
                # A value is quoted either way (the version's ETag, itself quoted, in single quotes).
                "hidden": {
                    name: unescape(double or single)
                    for name, double, single in re.findall(
                        r"""<input type="hidden" name="(\w+)" value=(?:"([^"]*)"|'([^']*)')""", inner
                    )
                },
                "error": unescape(re.sub(r"<[^>]+>", "", error)).strip(),
            }
        )
    return rows


async def drafted(api: Api, **intake: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    case = await api.drive("mediating", **intake)
    return case, await api.draft_agreement(case)


# ---- signing the agreement ---------------------------------------------------------------------------


async def test_each_signer_is_offered_exactly_the_methods_the_service_takes(
    api: Api, web: httpx.AsyncClient
) -> None:
    """人民调解法 Art. 29: parties sign, seal or fingerprint, the mediator signs, the body seals; a
    unit (单位) party seals, so its row offers the seal first, and no fingerprint; a natural person's
    row offers a personal seal (私章) after signing and fingerprint."""
    parties = [person("applicant", "张三", 1), company("respondent", "诸暨市某某建材有限公司")]
    case, agreement = await drafted(api, parties=parties)
    page = await at_the_body(web, api, case)
    shown = await page.get(f"/cases/{case['id']}")
    rows = sign_rows(shown.text)
    assert [r["signer"] for r in rows] == ["party", "party", "mediator", "body_seal"]
    kinds = {p["id"]: p["kind"] for p in case["parties"]}
    for row in rows:
        if row["party"]:
            expected = PARTY_SIGNING_METHODS[kinds[row["party"]]]
        elif row["signer"] == "mediator":  # a written agreement's mediator signs (Art. 29)
            expected = MEDIATOR_SIGNING_METHODS[agreement["form"]]
        else:
            expected = SIGNING_METHODS[row["signer"]]
        assert row["methods"] == expected, row
    firm = next(p["id"] for p in case["parties"] if p["kind"] == "organisation")
    by_party = {r["party"]: r for r in rows if r["party"]}
    assert by_party[firm]["methods"] == ["seal", "in_person", "electronic"]
    assert by_party[firm]["chosen"] == ["seal"]
    natural = next(p["id"] for p in case["parties"] if p["kind"] == "person")
    assert by_party[natural]["methods"] == ["in_person", "fingerprint", "seal", "electronic"]
    assert by_party[natural]["chosen"] == ["in_person"]

    sealed = await page.post(
        f"/cases/{case['id']}/agreements/{agreement['id']}/signatures",
        {**by_party[firm]["hidden"], "method": "seal"},
    )
    assert sealed.status_code == 303, sealed.text[:3000]
    signatures = (await api.client.get(f"/v1/disputes/{case['id']}/agreements")).json()[-1]["signatures"]
    assert [(s["party_id"], s["method"]) for s in signatures] == [(firm, "seal")]


async def test_a_fingerprint_for_a_company_is_refused_at_its_row(api: Api, web: httpx.AsyncClient) -> None:
    """A form sent with a method its row does not offer (an old page, an edited form) is refused by
    the service, and said at the signer's row, naming them (人民调解法 Art. 29)."""
    parties = [person("applicant", "张三", 1), company("respondent", "诸暨市某某建材有限公司")]
    case, agreement = await drafted(api, parties=parties)
    page = await at_the_body(web, api, case)
    rows = sign_rows((await page.get(f"/cases/{case['id']}")).text)
    url = f"/cases/{case['id']}/agreements/{agreement['id']}/signatures"
    fingerprinted = await page.post(url, {**rows[1]["hidden"], "method": "fingerprint"})
    assert fingerprinted.status_code == 422, fingerprinted.text[:3000]
    after = sign_rows(fingerprinted.text)
    assert after[1]["error"] == (
        "签署方式: 当事人「诸暨市某某建材有限公司」是法人或非法人组织, 应加盖印章、由其代表签名或电子签名, 不能按指印"
    )
    assert [after[0]["error"], *[r["error"] for r in after[2:]]] == ["", "", ""]
    signatures = (await api.client.get(f"/v1/disputes/{case['id']}/agreements")).json()[-1]["signatures"]
    assert signatures == []


async def test_an_electronic_signature_from_the_page_signs_the_text_it_showed(
    api: Api, web: httpx.AsyncClient
) -> None:
    case, agreement = await drafted(api)
    page = await at_the_body(web, api, case)
    rows = sign_rows((await page.get(f"/cases/{case['id']}")).text)
    for row in rows:
        assert row["hidden"]["document_hash"] == agreement["content_hash"]
    applicant = rows[0]
    signed = await page.post(
        f"/cases/{case['id']}/agreements/{agreement['id']}/signatures",
        {**applicant["hidden"], "method": "electronic"},
    )
    assert signed.status_code == 303, signed.text[:3000]
    # Any other method leaves the hash out, as the service requires. (The page as it now stands:
    # each row signs the version it shows.)
    rows = sign_rows((await page.get(f"/cases/{case['id']}")).text)
    mediator = next(r for r in rows if r["signer"] == "mediator")
    recorded = await page.post(
        f"/cases/{case['id']}/agreements/{agreement['id']}/signatures",
        {**mediator["hidden"], "method": "in_person"},
    )
    assert recorded.status_code == 303, recorded.text[:3000]
    signatures = (await api.client.get(f"/v1/disputes/{case['id']}/agreements")).json()[-1]["signatures"]
    assert [(s["method"], s["document_hash"]) for s in signatures] == [
        ("electronic", agreement["content_hash"]),
        ("in_person", None),
    ]


async def test_a_refused_signature_is_said_at_its_row_with_the_method_kept(
    api: Api, web: httpx.AsyncClient
) -> None:
    case, agreement = await drafted(api)
    page = await at_the_body(web, api, case)
    rows = sign_rows((await page.get(f"/cases/{case['id']}")).text)
    respondent = rows[1]
    # A page opened before the agreement's text changed: what it shows is not what would be signed.
    refused = await page.post(
        f"/cases/{case['id']}/agreements/{agreement['id']}/signatures",
        {**respondent["hidden"], "document_hash": "0" * 64, "method": "electronic"},
    )
    assert refused.status_code == 422
    after = sign_rows(refused.text)
    assert [r["error"] for r in after] == ["", "所签文本哈希: 电子签名所签文本与协议当前内容不一致", "", ""]
    assert after[1]["chosen"] == ["electronic"]
    assert after[0]["chosen"] == ["in_person"]


async def test_a_signature_from_a_page_opened_before_the_text_changed_is_refused(
    api: Api, web: httpx.AsyncClient
) -> None:
    """人民调解法 Art. 29: a party is bound by the text it signed. Each row sends the version its page
    showed; a draft edited since is not signed on a page that showed the text before, and the page
    says the agreement changed."""
    case, agreement = await drafted(api)
    page = await at_the_body(web, api, case)
    rows = sign_rows((await page.get(f"/cases/{case['id']}")).text)
    assert {r["hidden"]["version"] for r in rows} == {f'"{agreement["version"]}"'}
    changed = api.agreement_content(case)
    changed["obligations"][0]["amount"] = "600.00"
    edited = await api.client.put(
        f"/v1/disputes/{case['id']}/agreements/{agreement['id']}",
        json=changed,
        headers={**api.acting("body_mediator", case), "If-Match": f'"{agreement["version"]}"'},
    )
    assert edited.status_code == 200, edited.text
    refused = await page.post(
        f"/cases/{case['id']}/agreements/{agreement['id']}/signatures",
        {**rows[0]["hidden"], "method": "in_person"},
    )
    assert refused.status_code == 412, refused.text[:3000]
    assert "该调解协议在您打开页面后已被他人更新" in refused.text
    assert sign_rows(refused.text)[0]["error"].startswith("调解协议已被他人更新")
    signatures = (await api.client.get(f"/v1/disputes/{case['id']}/agreements")).json()[-1]["signatures"]
    assert signatures == []


# ---- the small forms: alerts and supervision ----------------------------------------------------------


def alert_box(html: str, alert_id: str) -> str:
    found = re.search(rf'<div class="alert [^"]*" data-alert="{alert_id}">(.*?)\n    </div>', html, re.S)
    assert found, html[:3000]
    return found.group(1)


async def test_a_refused_alert_resolution_comes_back_open_with_what_was_typed(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.intake(description="因宅基地边界争执, 被申请人扬言要拿刀砍死对方, 情绪激动。")
    (alert,) = (await api.client.get(f"/v1/disputes/{case['id']}/alerts")).json()
    page = signed_in(web, api, "supervisor")
    # Someone else acknowledged it after the page was opened: the page's version is out of date.
    acknowledged = await api.client.post(
        f"/v1/alerts/{alert['id']}/acknowledgement",
        json={},
        headers=api.headers("supervisor", **{"If-Match": f'"{alert["version"]}"'}),
    )
    assert acknowledged.status_code == 200, acknowledged.text
    typed = "已通报派出所, 民警到场调处, 双方情绪已平稳"
    refused = await page.post(
        f"/cases/{case['id']}/alerts/{alert['id']}/resolve",
        {"version": f'"{alert["version"]}"', "resolution": typed, "idempotency_key": uuid.uuid4().hex},
    )
    assert refused.status_code == 412
    box = alert_box(refused.text, alert["id"])
    assert re.search(r'<details class="task" open><summary>记录处置</summary>', box)
    assert f">{typed}</textarea>" in box
    assert "未执行" in box
    assert 'name="idempotency_key"' in box  # a double click records it once
    # Sent again from the page as it now stands, with the version it now shows, it is saved.
    version = re.search(r"name=\"version\" value='\"(\d+)\"'", box)
    assert version and int(version.group(1)) == alert["version"] + 1
    saved = await page.post(
        f"/cases/{case['id']}/alerts/{alert['id']}/resolve",
        {"version": f'"{version.group(1)}"', "resolution": typed, "idempotency_key": uuid.uuid4().hex},
    )
    assert saved.status_code == 303
    assert (await api.client.get(f"/v1/alerts/{alert['id']}")).json()["resolution"] == typed


async def test_an_alert_form_sent_twice_acts_once(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.intake(description="因宅基地边界争执, 被申请人扬言要拿刀砍死对方, 情绪激动。")
    (alert,) = (await api.client.get(f"/v1/disputes/{case['id']}/alerts")).json()
    page = signed_in(web, api, "supervisor")
    form = {"version": f'"{alert["version"]}"', "idempotency_key": "ack-once"}
    first = await page.post(f"/cases/{case['id']}/alerts/{alert['id']}/acknowledge", form)
    second = await page.post(f"/cases/{case['id']}/alerts/{alert['id']}/acknowledge", form)
    assert first.status_code == second.status_code == 303  # a double click, not a stale page


async def test_a_supervision_answer_form_carries_a_key_and_is_answered_once(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.drive("mediating")
    issued = await api.client.post(
        f"/v1/disputes/{case['id']}/supervision-orders",
        json={"instruction": "三日内联系双方当事人并报告进展"},
        headers=api.headers("supervisor", **{"If-Match": f'"{case["version"]}"'}),
    )
    assert issued.status_code == 201, issued.text
    order = issued.json()
    page = await at_the_body(web, api, case)
    shown = await page.get(f"/cases/{case['id']}")
    form = re.search(r'<form method="post" action="[^"]+/response">(.*?)</form>', shown.text, re.S)
    assert form and 'name="idempotency_key"' in form.group(1)
    answer = {
        "version": f'"{order["version"]}"',
        "response": "已联系双方, 定于下周二调解",
        "idempotency_key": "answer-once",
    }
    first = await page.post(f"/cases/{case['id']}/supervision-orders/{order['id']}/response", answer)
    second = await page.post(f"/cases/{case['id']}/supervision-orders/{order['id']}/response", answer)
    assert first.status_code == second.status_code == 303


async def test_the_case_page_names_whom_an_order_is_addressed_to_as_it_follows_the_case(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.drive("mediating")
    issued = await api.client.post(
        f"/v1/disputes/{case['id']}/supervision-orders",
        json={"instruction": "三日内联系双方当事人并报告进展"},
        headers=api.headers("supervisor", **{"If-Match": f'"{case["version"]}"'}),
    )
    assert issued.status_code == 201, issued.text
    supervisor = signed_in(web, api, "supervisor")

    def addressee(html: str) -> str:
        found = re.search(r'<p class="muted addressee">督办对象: ([^<]*)</p>', html)
        assert found, html[:3000]
        return found.group(1)

    assert addressee((await supervisor.get(f"/cases/{case['id']}")).text) == "枫源村人民调解委员会"
    await api.step(await api.get(case), "transfer")
    assert addressee((await supervisor.get(f"/cases/{case['id']}")).text) == "待案件指派后转交新的承办组织"
    assign = {"body_id": str(api.bodies["town"]), "override_reason": "村调委会转办, 由镇调委会调解"}
    assigned = await api.step(await api.get(case), "assign", assign)
    assert addressee((await supervisor.get(f"/cases/{case['id']}")).text) == "枫桥镇人民调解委员会"
    # The town's staff find the answer form on the case page.
    town = await at_the_body(web, api, assigned)
    shown = await town.get(f"/cases/{case['id']}")
    assert f"/supervision-orders/{issued.json()['id']}/response" in shown.text


# ---- refusals in plain words -------------------------------------------------------------------------


def banner_of(html: str) -> str:
    found = re.search(
        r'<details class="action" data-action="request_confirmation" open>.*?<p class="error banner" role="alert"'
        r"[^>]*>([^<]*)</p>",
        html,
        re.S,
    )
    assert found, html[:3000]
    return unescape(found.group(1))


async def test_a_guards_reasons_are_said_once_each_and_name_the_basis(
    api: Api, web: httpx.AsyncClient
) -> None:
    """Only one side applies, on a basis under which the court is not competent: two reasons, each
    said once, the basis by its name (民事诉讼法 Art. 205)."""
    case = await api.drive("agreement_signed")
    applicant = next(p for p in case["parties"] if p["role"] == "applicant")
    respondent = next(p for p in case["parties"] if p["role"] == "respondent")
    page = await at_the_body(web, api, case)
    refused = await page.post(
        f"/cases/{case['id']}/actions/request_confirmation",
        {
            "version": f'"{case["version"]}"',
            "court_id": str(api.bodies["court"]),
            "basis": "party_domicile",
            "applicant_party_ids": applicant["id"],
            "idempotency_key": uuid.uuid4().hex,
        },
    )
    assert refused.status_code == 422
    said = banner_of(refused.text)
    assert said.count(f"未申请: {respondent['name']}") == 1, said
    assert said.count("依所选依据无权确认") == 1, said
    assert "party_domicile" not in said and "不是当事人住所地的基层人民法院" in said, said


# ---- the follow-up visit -----------------------------------------------------------------------------


async def test_a_follow_up_visit_can_record_that_the_agreement_is_not_performed(
    api: Api, web: httpx.AsyncClient
) -> None:
    """Whether the agreement is performed is yes, no or not known: each can be said, and the
    timeline shows what the visit found (人民调解法 Art. 27)."""
    case = await api.drive("closed")
    page = signed_in(web, api)
    shown = await page.get(f"/cases/{case['id']}")
    archive = re.search(r'<details class="action" data-action="archive".*?</details>', shown.text, re.S)
    assert archive
    choices = re.findall(r'name="follow_up\.agreement_performed" value="([^"]*)"', archive.group(0))
    assert choices == ["true", "false", ""]
    done = await page.post(
        f"/cases/{case['id']}/actions/archive",
        {
            "version": f'"{case["version"]}"',
            "follow_up.contact_method": "phone",
            "follow_up.satisfaction": "2",
            "follow_up.agreement_performed": "false",
            "follow_up.notes": "被申请人尚未支付赔偿款",
            "idempotency_key": uuid.uuid4().hex,
        },
    )
    assert done.status_code == 303, done.text[:3000]
    entry = (await api.timeline(case))[-1]
    assert entry["action"] == "archive" and entry["payload"]["follow_up"]["agreement_performed"] is False
    after = await page.get(f"/cases/{case['id']}")
    item = re.search(r'<li data-action="archive">(.*?)</li>', after.text, re.S)
    assert item
    assert (
        "回访方式: 电话" in item.group(1) and "满意度 2/5" in item.group(1) and "协议未履行" in item.group(1)
    )
    assert "被申请人尚未支付赔偿款" in item.group(1)


async def test_a_follow_up_visit_left_unsaid_is_not_known(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.drive("closed")
    page = signed_in(web, api)
    done = await page.post(
        f"/cases/{case['id']}/actions/archive",
        {
            "version": f'"{case["version"]}"',
            "follow_up.contact_method": "visit",
            "follow_up.satisfaction": "5",
            "follow_up.agreement_performed": "",
            "idempotency_key": uuid.uuid4().hex,
        },
    )
    assert done.status_code == 303, done.text[:3000]
    assert (await api.timeline(case))[-1]["payload"]["follow_up"]["agreement_performed"] is None
    after = await page.get(f"/cases/{case['id']}")
    item = re.search(r'<li data-action="archive">(.*?)</li>', after.text, re.S)
    assert item and "回访方式: 上门走访" in item.group(1) and "履行情况不清楚" in item.group(1)


# ---- element ids -------------------------------------------------------------------------------------


class Ids(HTMLParser):
    """Each element id on a page, and each label's `for` with the form it sits in."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.form_of: dict[str, int] = {}
        self.labels: list[tuple[str, int]] = []
        self.form = -1
        self.forms = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self.form, self.forms = self.forms, self.forms + 1
        if found.get("id"):
            self.ids.append(str(found["id"]))
            self.form_of[str(found["id"])] = self.form
        if tag == "label" and found.get("for"):
            self.labels.append((str(found["for"]), self.form))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.form = -1


def assert_ids_are_unique_and_labels_find_their_own_field(html: str) -> None:
    ids = Ids()
    ids.feed(html)
    doubled = sorted({i for i in ids.ids if ids.ids.count(i) > 1})
    assert not doubled, doubled
    for target, form in ids.labels:
        assert ids.form_of.get(target) == form, (target, form, ids.form_of.get(target))


async def test_every_id_on_the_case_page_is_one_fields_and_each_label_its_forms(
    api: Api, web: httpx.AsyncClient
) -> None:
    """Withdraw's and decline's reasons, the agreement's and the order's fields: one id each, so a
    label focuses the field of its own form."""
    registered = await api.intake()
    clerk = await signed_in(web, api).get(f"/cases/{registered['id']}")
    assert clerk.text.count('name="reason"') >= 2  # more than one form asks for a reason
    assert_ids_are_unique_and_labels_find_their_own_field(clerk.text)
    case, _ = await drafted(api)
    await api.client.post(
        f"/v1/disputes/{case['id']}/supervision-orders",
        json={"instruction": "三日内报告进展"},
        headers=api.headers("supervisor", **{"If-Match": f'"{case["version"]}"'}),
    )
    mediator = await (await at_the_body(web, api, case)).get(f"/cases/{case['id']}")
    assert 'id="draft-agreement"' in mediator.text and 'name="response"' in mediator.text
    assert_ids_are_unique_and_labels_find_their_own_field(mediator.text)
    supervisor = await signed_in(web, api, "supervisor").get(f"/cases/{case['id']}")
    assert 'id="issue-order"' in supervisor.text
    assert_ids_are_unique_and_labels_find_their_own_field(supervisor.text)
    closed = await api.drive("closed")
    archive = await signed_in(web, api).get(f"/cases/{closed['id']}")
    assert_ids_are_unique_and_labels_find_their_own_field(archive.text)


# ---- a form's address opened as a page ---------------------------------------------------------------


async def test_a_forms_address_opened_in_the_browser_leads_back_to_a_page(
    api: Api, web: httpx.AsyncClient
) -> None:
    html = {"Accept": "text/html,application/xhtml+xml"}
    case = await api.intake()
    page = signed_in(web, api)
    for path in (
        f"/cases/{case['id']}/actions/assign",
        f"/cases/{case['id']}/agreements",
        f"/cases/{case['id']}/supervision-orders",
        f"/cases/{case['id']}/alerts/{uuid.uuid4()}/resolve",
    ):
        back = await page.get(path, headers=html)
        assert back.status_code == 303 and back.headers["location"] == f"/cases/{case['id']}", path
    logout = await page.get("/logout", headers=html)
    assert logout.status_code == 405 and logout.headers["content-type"].startswith("text/html")
    assert "不能直接打开" in logout.text and logout.headers["allow"] == "POST"
    # A client of the API keeps its problem details.
    api_client = await web.get(f"/cases/{case['id']}/actions/assign", headers={"Accept": "application/json"})
    assert api_client.status_code == 405
    assert api_client.headers["content-type"].startswith("application/problem+json")


# ---- the queue, the dashboard's address, the lookup, the printables ------------------------------


def current_tab(html: str) -> str:
    found = re.findall(r'<a href="[^"]*"\s+aria-current="page"\s+class="tab tab-(\w+)">', html)
    assert len(found) == 1, found
    return found[0]


async def test_the_queues_tab_agrees_with_an_explicit_status_and_keeps_the_filters(
    api: Api, web: httpx.AsyncClient
) -> None:
    registered = await api.intake(category="consumer")
    mediating = await api.drive("mediating", category="consumer")
    page = signed_in(web, api)
    shown = await page.get("/queue?tab=registered&status=mediating")
    assert mediating["case_number"] in shown.text and registered["case_number"] not in shown.text
    assert current_tab(shown.text) == "all"
    accepted = await page.get("/queue?tab=registered&status=accepted")
    assert current_tab(accepted.text) == "accepted"
    searched = await page.get("/queue?tab=all&q=" + registered["case_number"] + "&category=consumer")
    tabs = re.findall(r'<a href="([^"]+)"\s+(?:aria-current="page"\s+)?class="tab tab-(\w+)">', searched.text)
    by_tab = {tab: unescape(href) for href, tab in tabs}
    assert f"q={registered['case_number']}" in by_tab["today"] and "category=consumer" in by_tab["registered"]
    today = await page.get(by_tab["today"])
    assert registered["case_number"] in today.text and 'value="consumer" selected' in today.text


async def test_the_dashboards_span_out_of_range_is_named_and_its_range_given(
    api: Api, web: httpx.AsyncClient
) -> None:
    page = signed_in(web, api, "supervisor")
    for days in ("5", "400", "abc"):
        edited = await page.get(f"/dashboard?days={days}", headers={"Accept": "text/html"})
        assert edited.status_code == 422
        assert "统计天数须为 7 至 366 之间的整数" in edited.text
    assert (await page.get("/dashboard?days=30")).status_code == 200


async def test_a_signed_in_clerk_keeps_the_staff_menu_on_the_lookup(api: Api, web: httpx.AsyncClient) -> None:
    page = signed_in(web, api)
    for shown in (
        await page.get("/lookup"),
        await page.post("/lookup", {"case_number": "x", "query_code": "y"}),
    ):
        assert 'aria-label="主菜单"' in shown.text and 'aria-label="公众服务"' not in shown.text
    web.cookies.delete("mediation_session")
    assert 'aria-label="公众服务"' in (await Page(web).get("/lookup")).text


async def test_an_oral_agreement_offers_no_confirmation_application(api: Api, web: httpx.AsyncClient) -> None:
    """民诉法解释 Art. 354: the application is made with the written agreement."""
    oral = await api.drive("mediating")
    await api.signed_agreement(oral, form="oral")
    written = await api.drive("mediating")
    await api.signed_agreement(written)
    page = signed_in(web, api)
    assert "/confirmation-application" not in (await page.get(f"/cases/{oral['id']}")).text
    refused = await page.get(f"/cases/{oral['id']}/confirmation-application")
    assert refused.status_code == 409 and "口头调解协议不能申请司法确认" in refused.text
    assert "/confirmation-application" in (await page.get(f"/cases/{written['id']}")).text
