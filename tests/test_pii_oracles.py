"""A role that reads ID and phone numbers masked learns nothing more about them by other ways in:
not by the intake page's related-case hint, not by a correction's answer, not by a mediator's
declared conflicts (个人信息保护法 Art. 51, 55-56). And a language the caller refuses is not the
answer's."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from sqlalchemy import select

from mediation.audit.models import AuditRecord
from mediation.core.i18n import negotiate
from tests.support import Api, intake_body, person, resident_id
from tests.test_corrections import correct, party
from tests.test_web import signed_in


async def audit_actions(api: Api, after: int) -> list[tuple[str, str, dict[str, Any]]]:
    async with api.app.state.db.reader() as session:
        rows = await session.execute(
            select(AuditRecord.action, AuditRecord.outcome, AuditRecord.details)
            .where(AuditRecord.seq > after)
            .order_by(AuditRecord.seq)
        )
        return [(a, o, d or {}) for a, o, d in rows.all()]


async def last_seq(api: Api) -> int:
    async with api.app.state.db.reader() as session:
        return (await session.scalar(select(AuditRecord.seq).order_by(AuditRecord.seq.desc()).limit(1))) or 0


# ---- the intake page's related-case hint ------------------------------------------------------------


async def test_the_intake_hint_searches_no_numbers_for_a_role_that_reads_them_masked(
    api: Api, web: httpx.AsyncClient
) -> None:
    target = person("applicant", "王某", 31)
    earlier = await api.intake(parties=[target, person("respondent", "赵某", 32)])
    page = signed_in(web, api, "supervisor")
    # The page does not ask for the hint, and asked directly it names no case.
    assert "data-related-url" not in (await page.get("/intake")).text
    before = await last_seq(api)
    for field in ("id_number", "phone"):
        form = {
            "parties[0].role": "applicant",
            "parties[0].id_type": "resident_id",
            f"parties[0].{field}": target[field],
        }
        hint = await page.post("/intake/related", form)
        assert hint.status_code == 200
        assert earlier["case_number"] not in hint.text and "证件号码" not in hint.text
    assert "search_by_party" not in [action for action, _, _ in await audit_actions(api, before)]


async def test_the_intake_hint_is_recorded_as_a_search_by_party(api: Api, web: httpx.AsyncClient) -> None:
    earlier = await api.intake()
    page = signed_in(web, api)
    assert 'data-related-url="/intake/related"' in (await page.get("/intake")).text
    before = await last_seq(api)
    first = intake_body()["parties"][0]
    hint = await page.post(
        "/intake/related",
        {
            "parties[0].id_type": "resident_id",
            "parties[0].id_number": first["id_number"],
            "parties[0].phone": first["phone"],
        },
    )
    assert earlier["case_number"] in hint.text
    searches = [(o, d) for a, o, d in await audit_actions(api, before) if a == "search_by_party"]
    assert len(searches) == 1, searches
    outcome, details = searches[0]
    assert outcome == "success" and details["fields"] == ["id_number", "phone"]
    assert details["path"] == "/intake/related"
    # The record names the fields searched, never the numbers.
    assert first["id_number"] not in str(details) and first["phone"] not in str(details)


# ---- a correction's answer ----------------------------------------------------------------------------


async def test_a_correction_does_not_confirm_a_masked_id_number(api: Api) -> None:
    dispute = await api.drive("agreement_signed")
    applicant = party(await api.get(dispute), "applicant")
    real = resident_id(1)  # the applicant's number at intake
    assert applicant["id_number"] == resident_id(1)  # the clerk reads it; a supervisor reads it masked
    wrong = resident_id(1, born=date(1991, 5, 17))
    answers = []
    for guess in (wrong, real):
        body = {
            "reason": "核对证件号码",
            "parties": [{"party_id": applicant["id"], "id_type": "resident_id", "id_number": guess}],
        }
        refused = await correct(api, dispute, body, "supervisor")
        answers.append((refused.status_code, refused.json()["code"], refused.json().get("field")))
    assert answers == [(403, "pii_read_required", "parties[0].id_number")] * 2
    assert (await api.get(dispute))["version"] == dispute["version"]


async def test_an_added_party_does_not_confirm_a_masked_id_number(api: Api) -> None:
    dispute = await api.intake()
    applicant = party(await api.get(dispute), "applicant")
    real = resident_id(1)  # the applicant's number at intake, read masked by a supervisor
    assert applicant["id_number"] == real
    wrong = resident_id(1, born=date(1991, 5, 17))
    answers = []
    for guess in (wrong, real):
        body = {
            "reason": "追加第三人",
            "add_parties": [{**person("third_party", "王五"), "id_number": guess}],
        }
        refused = await correct(api, dispute, body, "supervisor")
        answers.append((refused.status_code, refused.json()["code"], refused.json().get("field")))
    # Refused alike: the same person listed twice would be refused and anyone else taken.
    assert answers == [(403, "pii_read_required", "add_parties[0].id_number")] * 2
    after = await api.get(dispute)
    assert after["version"] == dispute["version"] and len(after["parties"]) == len(dispute["parties"])
    # Added by name and phone, the party is taken; a clerk, who reads the numbers, gives the document.
    by_phone = {**person("third_party", "王五", 7), "id_number": None, "id_type": None}
    added = await correct(api, after, {"reason": "追加第三人", "add_parties": [by_phone]}, "supervisor")
    assert added.status_code == 200, added.text
    [third] = [p for p in added.json()["parties"] if p["role"] == "third_party"]
    assert third["id_number"] is None and third["phone"] == "138****0007"


async def test_a_correction_does_not_confirm_a_masked_phone(api: Api) -> None:
    dispute = await api.intake()
    applicant = party(dispute, "applicant")
    # The number on record, given by a supervisor who reads it masked, is taken as a correction
    # like any other number: no "nothing to correct" singles it out.
    body = {
        "reason": "申请人确认电话",
        "parties": [{"party_id": applicant["id"], "phone": applicant["phone"]}],
    }
    same = await correct(api, dispute, body, "supervisor")
    assert same.status_code == 200, same.text
    entry = (await api.timeline(dispute))[-1]
    assert entry["payload"]["parties"] == [{"party_id": applicant["id"], "fields": ["phone"]}]
    assert party(await api.get(dispute), "applicant")["phone"] == applicant["phone"]
    # A clerk, who reads it, is still told the same number corrects nothing.
    again = await correct(api, await api.get(dispute), body, "clerk")
    assert again.status_code == 422 and again.json()["errors"][0]["code"] == "nothing_to_correct"


async def test_the_correction_form_offers_no_masked_id_number(api: Api, web: httpx.AsyncClient) -> None:
    dispute = await api.intake()
    shown = (await signed_in(web, api, "supervisor").get(f"/cases/{dispute['id']}")).text
    assert 'name="parties[0].id_number"' not in shown and 'name="parties[0].phone"' in shown
    # A party found later is added by name and phone; staff who read the numbers give its document.
    assert 'name="add_parties[0].id_number"' not in shown and 'name="add_parties[0].phone"' in shown
    assert "追加当事人的证件号码须由能查看完整号码的工作人员补充" in shown
    # The clerk's page as it opens shows the numbers masked too: the document number is offered
    # once they are shown.
    clerk = signed_in(web, api)
    assert 'name="parties[0].id_number"' not in (await clerk.get(f"/cases/{dispute['id']}")).text
    assert 'name="parties[0].id_number"' in (await clerk.get(f"/cases/{dispute['id']}?show=numbers")).text


async def test_the_correction_form_refuses_a_typed_id_number_at_its_field(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.drive("agreement_signed")
    applicant = party(dispute, "applicant")
    page = signed_in(web, api, "supervisor")
    form = [
        ("reason", "核对证件号码"),
        ("parties[0].party_id", applicant["id"]),
        ("parties[0].id_type", "resident_id"),
        ("parties[0].id_number", resident_id(1)),
        ("version", f'"{dispute["version"]}"'),
        ("idempotency_key", "typed-id-number"),
    ]
    refused = await page.post(f"/cases/{dispute['id']}/corrections", form)
    assert refused.status_code == 403, refused.text[:2000]
    assert "不能更正证件号码" in refused.text
    assert (await api.get(dispute))["version"] == dispute["version"]


# ---- a mediator's declared conflicts ------------------------------------------------------------------


async def test_a_declared_relation_is_masked_for_a_role_that_reads_numbers_masked(api: Api) -> None:
    village = api.bodies["village"]
    url = f"/v1/bodies/{village}/mediators/{api.mediators[village]}/conflicts"
    declared = {
        "relation": "申请人的表兄, 电话13800000001, 身份证330681199005170016",
        "id_number": "330681199005170016",
        "person_name": "张三",
    }
    made = await api.client.post(url, json=declared, headers=api.auth("body_admin", "village"))
    assert made.status_code == 201, made.text
    assert made.json()["relation"] == declared["relation"]  # the body reads its own note in full
    listed = await api.client.get(url, headers=api.auth("admin"))
    assert listed.status_code == 200
    (relation,) = [c["relation"] for c in listed.json()]
    assert "13800000001" not in relation and "330681199005170016" not in relation
    assert relation.startswith("申请人的表兄, 电话")
    own = await api.client.get(url, headers=api.auth("body_admin", "village"))
    assert [c["relation"] for c in own.json()] == [declared["relation"]]


# ---- the language asked for ---------------------------------------------------------------------------


def test_a_language_given_q_0_is_not_chosen() -> None:
    # RFC 9110 §12.4.2: q=0 means "not acceptable".
    assert negotiate("en;q=0") == "zh"
    assert negotiate("en;q=0.0, fr") == "zh"
    assert negotiate("zh;q=0, en;q=0.1") == "en"
    assert negotiate("en-US, en;q=0.9") == "en"
    assert negotiate("en; q=0.5") == "en"


async def test_an_answer_is_not_in_a_language_refused_with_q_0(api: Api) -> None:
    refused = await api.client.get("/v1/nope", headers={"Accept-Language": "en;q=0"})
    assert refused.json()["title"] == "资源不存在"
    asked = await api.client.get("/v1/nope", headers={"Accept-Language": "en"})
    assert asked.json()["title"] != "资源不存在"
