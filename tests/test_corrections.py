"""更正登记信息: a registered case's facts and parties corrected or completed (个人信息保护法
Art. 46), with the reason on the timeline, one event, the audit record, and never the personal
values outside the parties' own rows."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mediation.audit.models import AuditRecord
from mediation.events.models import OutboxEvent
from tests.support import Api, person, resident_id
from tests.test_web import signed_in

NEW_ID = resident_id(77)
NEW_PHONE = "13900001234"


def corrections_url(dispute: dict[str, Any]) -> str:
    return f"/v1/disputes/{dispute['id']}/corrections"


async def correct(
    api: Api,
    dispute: dict[str, Any],
    body: dict[str, Any],
    role: str = "clerk",
    *,
    version: int | None = None,
    **headers: str,
) -> httpx.Response:
    return await api.client.post(
        corrections_url(dispute),
        json=body,
        headers={
            **api.acting(role, dispute),
            "If-Match": f'"{dispute["version"] if version is None else version}"',
            **headers,
        },
    )


def party(dispute: dict[str, Any], role: str) -> dict[str, Any]:
    return next(p for p in dispute["parties"] if p["role"] == role)


async def search(api: Api, **number: str) -> list[str]:
    response = await api.client.post("/v1/disputes/search-by-party", json=number, headers=api.auth())
    assert response.status_code == 200, response.text
    return [d["id"] for d in response.json()["items"]]


async def events_of(api: Api, dispute: dict[str, Any], kind: str) -> list[OutboxEvent]:
    async with api.app.state.db.reader() as session:
        rows = await session.scalars(
            select(OutboxEvent).where(
                OutboxEvent.dispute_id == uuid.UUID(dispute["id"]),
                OutboxEvent.type == f"cn.mediation.dispute.{kind}",
            )
        )
        return list(rows.all())


async def unchanged_after(
    api: Api, dispute: dict[str, Any], response: httpx.Response, status: int
) -> dict[str, Any]:
    """The refusal's problem; the case as it was (same version, parties, timeline and events)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    after = await api.get(dispute)
    assert after == {k: dispute[k] for k in after}
    assert await api.timeline_count(dispute["id"]) == len(await api.timeline(dispute))
    assert not await events_of(api, dispute, "corrected")
    problem: dict[str, Any] = response.json()
    return problem


# ---- corrections that take ------------------------------------------------------------------------


async def test_a_mistyped_name_phone_and_id_number_are_corrected_and_found_by_the_new_number(
    api: Api,
) -> None:
    dispute = await api.intake()
    respondent = party(dispute, "respondent")
    old_id, old_phone = respondent["id_number"], respondent["phone"]
    assert await search(api, id_number=old_id) == [dispute["id"]]
    response = await correct(
        api,
        dispute,
        {
            "reason": "窗口录入时姓名、电话和身份证号码输错",
            "parties": [
                {
                    "party_id": respondent["id"],
                    "name": "李思",
                    "id_type": "resident_id",
                    # Written as a clerk may type it: normalised as at intake.
                    "id_number": f"{NEW_ID[:6]} {NEW_ID[6:]}",
                    "phone": "139 0000 1234",
                }
            ],
        },
    )
    assert response.status_code == 200, response.text
    corrected = response.json()
    assert corrected["version"] == dispute["version"] + 1
    assert response.headers["ETag"] == f'"{dispute["version"] + 1}"'
    fixed = party(corrected, "respondent")
    assert (fixed["name"], fixed["id_number"], fixed["phone"]) == ("李思", NEW_ID, NEW_PHONE)
    assert party(await api.get(dispute), "respondent") == fixed
    # The keyed index follows the number: the new one finds the case, the old one no longer does.
    assert await search(api, id_number=NEW_ID) == [dispute["id"]]
    assert await search(api, phone=NEW_PHONE) == [dispute["id"]]
    assert await search(api, id_number=old_id) == []
    assert await search(api, phone=old_phone) == []


async def test_a_correction_makes_one_timeline_entry_one_event_and_an_audit_record_without_personal_values(
    api: Api,
) -> None:
    dispute = await api.intake()
    respondent = party(dispute, "respondent")
    entries_before = len(await api.timeline(dispute))
    events_before = await api.outbox_count(dispute["id"])
    reason = "被申请人身份证号码登记有误"
    response = await correct(
        api,
        dispute,
        {
            "reason": reason,
            "description": "相邻双方因院墙滴水及排水沟堵塞发生争执, 申请调解。",
            "parties": [
                {
                    "party_id": respondent["id"],
                    "id_type": "resident_id",
                    "id_number": NEW_ID,
                    "phone": NEW_PHONE,
                    "name": "李思",
                }
            ],
        },
    )
    assert response.status_code == 200, response.text
    timeline = await api.timeline(dispute)
    assert len(timeline) == entries_before + 1
    entry = timeline[-1]
    assert entry["action"] == "correct" and entry["reason"] == reason
    assert entry["seq"] == dispute["version"] + 1
    expected = {
        "description": True,
        "parties": [{"party_id": respondent["id"], "fields": ["id_number", "id_type", "name", "phone"]}],
        "added_parties": [],
    }
    assert entry["payload"] == expected
    assert await api.outbox_count(dispute["id"]) == events_before + 1
    [event] = await events_of(api, dispute, "corrected")
    assert event.data["version"] == dispute["version"] + 1
    assert {k: event.data[k] for k in expected} == expected
    async with api.app.state.db.reader() as session:
        [audit] = (
            await session.scalars(
                select(AuditRecord).where(
                    AuditRecord.object_id == dispute["id"], AuditRecord.action == "correct_dispute"
                )
            )
        ).all()
    assert audit.outcome == "success"
    assert audit.details["corrected"] == expected
    written = json.dumps([entry, event.data, audit.details], ensure_ascii=False)
    for value in (NEW_ID, NEW_PHONE, "李思", respondent["id_number"], respondent["phone"], "李四"):
        assert value not in written


async def test_a_respondents_address_learnt_by_the_body_is_corrected_while_it_mediates(api: Api) -> None:
    dispute = await api.drive("mediating")
    respondent = party(dispute, "respondent")
    body = {
        "reason": "调解员核实了被申请人的实际住址",
        "parties": [{"party_id": respondent["id"], "address": "诸暨市枫桥镇新村12号"}],
    }
    response = await correct(api, dispute, body, "body_mediator")
    assert response.status_code == 200, response.text
    assert party(response.json(), "respondent")["address"] == "诸暨市枫桥镇新村12号"


async def test_a_party_found_later_is_added(api: Api) -> None:
    dispute = await api.drive("mediating")
    third = person("third_party", "王五", 9)
    response = await correct(
        api, dispute, {"reason": "调解中发现房屋共有人", "add_parties": [third]}, "body_mediator"
    )
    assert response.status_code == 200, response.text
    after = response.json()
    added = party(after, "third_party")
    assert (added["name"], added["id_number"]) == ("王五", third["id_number"]) or added["masked"]
    assert len(after["parties"]) == 3
    assert (await api.timeline(dispute))[-1]["payload"]["added_parties"] == [
        {"party_id": added["id"], "role": "third_party"}
    ]
    assert dispute["id"] in await search(api, id_number=third["id_number"])


async def test_a_retried_correction_with_its_idempotency_key_is_made_once(api: Api) -> None:
    dispute = await api.intake()
    body = {
        "reason": "电话号码输错",
        "parties": [{"party_id": party(dispute, "applicant")["id"], "phone": NEW_PHONE}],
    }
    first = await correct(api, dispute, body, **{"Idempotency-Key": "fix-phone-1"})
    again = await correct(api, dispute, body, **{"Idempotency-Key": "fix-phone-1"})
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    assert (await api.get(dispute))["version"] == dispute["version"] + 1
    assert len(await events_of(api, dispute, "corrected")) == 1


async def test_contact_details_of_a_party_on_an_agreement_in_effect_are_still_corrected(api: Api) -> None:
    dispute = await api.drive("agreement_signed")
    applicant = party(dispute, "applicant")
    body = {"reason": "申请人更换了手机号码", "parties": [{"party_id": applicant["id"], "phone": NEW_PHONE}]}
    response = await correct(api, dispute, body, "body_mediator")
    assert response.status_code == 200, response.text
    assert party(response.json(), "applicant")["phone"] == NEW_PHONE


# ---- refusals leave the case as it was --------------------------------------------------------------


async def test_a_correction_without_if_match_is_428_and_a_stale_one_412(api: Api) -> None:
    dispute = await api.intake()
    body = {
        "reason": "电话号码输错",
        "parties": [{"party_id": party(dispute, "applicant")["id"], "phone": NEW_PHONE}],
    }
    missing = await api.client.post(corrections_url(dispute), json=body, headers=api.auth())
    await unchanged_after(api, dispute, missing, 428)
    stale = await correct(api, dispute, body, version=dispute["version"] + 5)
    await unchanged_after(api, dispute, stale, 412)
    assert (await correct(api, dispute, body)).status_code == 200
    # The ETag moved on: the page read before the correction is stale now.
    again = await correct(api, dispute, {**body, "reason": "再次更正"})
    assert again.status_code == 412


async def test_an_archived_case_is_not_corrected(api: Api) -> None:
    dispute = await api.drive("archived")
    body = {
        "reason": "归档后发现电话有误",
        "parties": [{"party_id": party(dispute, "applicant")["id"], "phone": NEW_PHONE}],
    }
    problem = await unchanged_after(api, dispute, await correct(api, dispute, body), 409)
    assert problem["code"] == "case_closed"


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ("closed", "case_closed"),
        ("declined", "case_closed"),
        ("confirmation_pending", "case_handed_off"),
        ("referred_litigation", "case_handed_off"),
    ],
)
async def test_a_closed_case_or_one_with_a_court_is_not_corrected(api: Api, state: str, code: str) -> None:
    dispute = await api.drive(state)
    body = {
        "reason": "发现电话有误",
        "parties": [{"party_id": party(dispute, "applicant")["id"], "phone": NEW_PHONE}],
    }
    problem = await unchanged_after(api, dispute, await correct(api, dispute, body, "supervisor"), 409)
    assert problem["code"] == code


async def test_a_signed_draft_keeps_the_names_it_shows_but_not_the_phones(api: Api) -> None:
    # One party has signed the draft: its text names every party, and a new name would change
    # what was signed. A phone is no part of it.
    dispute = await api.drive("mediating")
    draft = await api.draft_agreement(dispute)
    applicant = party(dispute, "applicant")
    signed = await api.sign(dispute, draft, signer="party", party_id=applicant["id"], method="in_person")
    assert signed.status_code == 200, signed.text
    dispute = await api.get(dispute)
    respondent = party(dispute, "respondent")
    renamed = {"reason": "姓名有误", "parties": [{"party_id": respondent["id"], "name": "李思"}]}
    problem = await unchanged_after(api, dispute, await correct(api, dispute, renamed, "body_mediator"), 409)
    assert problem["code"] == "party_on_agreement"
    phone = {"reason": "电话有误", "parties": [{"party_id": respondent["id"], "phone": NEW_PHONE}]}
    assert (await correct(api, dispute, phone, "body_mediator")).status_code == 200


async def test_names_and_id_numbers_on_an_agreement_in_effect_stay(api: Api) -> None:
    dispute = await api.drive("agreement_signed")
    respondent = party(dispute, "respondent")
    for fix in ({"name": "李思"}, {"id_type": "resident_id", "id_number": NEW_ID}):
        body = {"reason": "协议签署后发现姓名有误", "parties": [{"party_id": respondent["id"], **fix}]}
        problem = await unchanged_after(api, dispute, await correct(api, dispute, body, "body_mediator"), 409)
        assert problem["code"] == "party_on_agreement"
    added = {"reason": "追加第三人", "add_parties": [person("third_party", "王五", 9)]}
    problem = await unchanged_after(api, dispute, await correct(api, dispute, added, "body_mediator"), 409)
    assert problem["code"] == "parties_fixed"


async def test_a_correction_that_changes_nothing_is_422(api: Api) -> None:
    dispute = await api.intake()
    applicant = party(dispute, "applicant")
    same = {
        "reason": "核对",
        "description": dispute["description"],
        "parties": [
            {
                "party_id": applicant["id"],
                "name": applicant["name"],
                "id_type": "resident_id",
                "id_number": applicant["id_number"],
                "phone": applicant["phone"],
            }
        ],
    }
    for body in (same, {"reason": "核对"}):
        problem = await unchanged_after(api, dispute, await correct(api, dispute, body), 422)
        assert [e["code"] for e in problem["errors"]] == ["nothing_to_correct"]


async def test_an_invalid_id_number_is_refused_at_its_field_as_at_intake(api: Api) -> None:
    dispute = await api.intake()
    body = {
        "reason": "身份证号码输错",
        "parties": [
            {"party_id": party(dispute, "applicant")["id"], "phone": NEW_PHONE},
            {
                "party_id": party(dispute, "respondent")["id"],
                "id_type": "resident_id",
                "id_number": "330681199005170000",
            },
        ],
    }
    problem = await unchanged_after(api, dispute, await correct(api, dispute, body), 422)
    [error] = problem["errors"]
    assert error["field"] == "parties[1].id_number"
    intake = await api.client.post(
        "/v1/disputes",
        json={
            "category": "neighbour",
            "description": dispute["description"],
            "region_code": "330681105201",
            "parties": [
                person("applicant", "张三", 1),
                {**person("respondent", "李四", 2), "id_number": "330681199005170000"},
            ],
        },
        headers=api.auth(),
    )
    assert intake.status_code == 422
    assert intake.json()["errors"][0]["code"] == error["code"]


async def test_a_correction_that_makes_two_parties_one_person_is_refused(api: Api) -> None:
    dispute = await api.intake()
    applicant, respondent = party(dispute, "applicant"), party(dispute, "respondent")
    body = {
        "reason": "身份证号码输错",
        "parties": [
            {"party_id": respondent["id"], "id_type": "resident_id", "id_number": applicant["id_number"]}
        ],
    }
    problem = await unchanged_after(api, dispute, await correct(api, dispute, body), 422)
    [error] = problem["errors"]
    assert (error["code"], error["field"]) == ("party_repeated", "parties[0].id_number")
    assert applicant["id_number"] not in json.dumps(problem, ensure_ascii=False)
    # A party added with the number of one already on the case, likewise.
    added = {
        "reason": "追加",
        "add_parties": [{**person("third_party", "王五"), "id_number": applicant["id_number"]}],
    }
    problem = await unchanged_after(api, dispute, await correct(api, dispute, added), 422)
    assert [(e["code"], e["field"]) for e in problem["errors"]] == [
        ("party_repeated", "add_parties[0].id_number")
    ]


async def test_a_case_of_another_center_answers_404(api: Api) -> None:
    dispute = await api.intake()
    body = {
        "reason": "电话号码输错",
        "parties": [{"party_id": party(dispute, "applicant")["id"], "phone": NEW_PHONE}],
    }
    response = await api.client.post(
        corrections_url(dispute),
        json=body,
        headers=api.headers("clerk", "other_center", **{"If-Match": f'"{dispute["version"]}"'}),
    )
    await unchanged_after(api, dispute, response, 404)
    other_body = await api.client.post(
        corrections_url(dispute),
        json=body,
        headers=api.headers("body_mediator", "town", **{"If-Match": f'"{dispute["version"]}"'}),
    )
    await unchanged_after(api, dispute, other_body, 404)


async def test_the_center_does_not_correct_a_case_a_body_holds_and_an_auditor_never(api: Api) -> None:
    dispute = await api.drive("mediating")
    body = {
        "reason": "电话号码输错",
        "parties": [{"party_id": party(dispute, "applicant")["id"], "phone": NEW_PHONE}],
    }
    await unchanged_after(api, dispute, await correct(api, dispute, body, "clerk"), 403)
    auditor = await api.client.post(
        corrections_url(dispute),
        json=body,
        headers=api.headers("auditor", **{"If-Match": f'"{dispute["version"]}"'}),
    )
    await unchanged_after(api, dispute, auditor, 403)
    # A supervisor may, at any stage the case can still be corrected.
    assert (await correct(api, dispute, body, "supervisor")).status_code == 200


async def test_a_party_of_another_case_is_not_corrected(api: Api) -> None:
    dispute, other = await api.intake(), await api.intake()
    body = {
        "reason": "电话号码输错",
        "parties": [{"party_id": party(other, "applicant")["id"], "phone": NEW_PHONE}],
    }
    problem = await unchanged_after(api, dispute, await correct(api, dispute, body), 422)
    assert [(e["code"], e["field"]) for e in problem["errors"]] == [("not_a_party", "parties[0].party_id")]


# ---- the case page ----------------------------------------------------------------------------------


async def test_the_case_page_corrects_a_phone_with_its_reason_and_shows_the_result(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.intake()
    page = signed_in(web, api)
    shown = await page.get(f"/cases/{dispute['id']}?show=numbers")
    assert "更正登记信息" in shown.text and 'action="/cases/' + dispute["id"] + '/corrections"' in shown.text
    # The form is filled with the case as registered (the numbers shown).
    applicant = party(dispute, "applicant")
    assert f'value="{applicant["phone"]}"' in shown.text
    form = correction_form(dispute, {"parties[0].phone": "139 0000 1234"}, reason="电话号码输错")
    done = await page.post(f"/cases/{dispute['id']}/corrections", form, follow_redirects=True)
    assert done.status_code == 200, done.text[:2000]
    assert "已更正登记信息" in done.text
    # The page after opens with the numbers masked again, the new one too.
    assert "更正了: 张三的联系电话" in done.text and NEW_PHONE not in done.text
    assert party(await api.get(dispute), "applicant")["phone"] == NEW_PHONE
    entry = (await api.timeline(dispute))[-1]
    assert (entry["action"], entry["reason"]) == ("correct", "电话号码输错")
    assert entry["payload"]["parties"] == [{"party_id": applicant["id"], "fields": ["phone"]}]


async def test_the_case_page_shows_a_refused_id_number_at_its_field(api: Api, web: httpx.AsyncClient) -> None:
    dispute = await api.intake()
    page = signed_in(web, api)
    form = correction_form(dispute, {"parties[1].id_number": "330681199005170000"}, reason="证件号码输错")
    refused = await page.post(f"/cases/{dispute['id']}/corrections", form)
    assert refused.status_code == 422, refused.text[:2000]
    # The error is at the field, the form open again with what was typed.
    assert re.search(r'data-field="parties\[1\]\.id_number">.*?class="error"', refused.text, re.S)
    assert 'value="330681199005170000"' in refused.text
    assert re.search(r'<details class="task" id="correct"\s+open', refused.text)
    assert await api.get(dispute) == {k: dispute[k] for k in await api.get(dispute)}
    # Nothing changed is said, too.
    same = await page.post(f"/cases/{dispute['id']}/corrections", correction_form(dispute, {}, reason="核对"))
    assert same.status_code == 422 and "没有需要更正的内容" in same.text


async def test_a_supervisor_corrects_a_phone_on_the_page_once_an_agreement_binds_the_parties(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.drive("agreement_signed")
    page = signed_in(web, api, "supervisor")
    shown = (await page.get(f"/cases/{dispute['id']}")).text
    # No party can join now, and the numbers this supervisor sees masked are not in the form.
    assert 'name="add_parties[0].name"' not in shown and "不能再追加当事人" in shown
    applicant = party(await api.get(dispute), "applicant")
    assert applicant["phone"] not in shown
    form = [
        ("reason", "申请人更换了手机号码"),
        ("parties[0].party_id", applicant["id"]),
        ("parties[0].id_type", "resident_id"),
        ("parties[0].id_number", ""),
        ("parties[0].phone", NEW_PHONE),
        ("version", f'"{dispute["version"]}"'),
        ("idempotency_key", uuid.uuid4().hex),
    ]
    done = await page.post(f"/cases/{dispute['id']}/corrections", form, follow_redirects=True)
    assert done.status_code == 200 and "已更正登记信息" in done.text, done.text[:2000]
    assert party(await api.get(dispute), "applicant")["phone"] == NEW_PHONE


def correction_form(dispute: dict[str, Any], changes: dict[str, str], reason: str) -> list[tuple[str, str]]:
    """The correction form as the page showing the numbers fills it for a clerk, with `changes`
    (sent from that page, the form says so: masked, an empty number would leave it as it is)."""
    fields: dict[str, str] = {"reason": reason, "description": dispute["description"]}
    for i, p in enumerate(dispute["parties"]):
        row = {
            "party_id": p["id"],
            "name": p["name"],
            "id_type": p["id_type"] or "",
            "id_number": p["id_number"] or "",
            "phone": p["phone"] or "",
            "address": p["address"] or "",
            "region_code": p["region_code"] or "",
        }
        fields |= {f"parties[{i}].{k}": v for k, v in row.items()}
    for k in ("role", "name", "id_type", "id_number", "phone", "address", "region_code"):
        fields[f"add_parties[0].{k}"] = ""
    fields["add_parties[0].kind"] = "person"
    fields |= changes
    return [
        *fields.items(),
        ("version", f'"{dispute["version"]}"'),
        ("idempotency_key", uuid.uuid4().hex),
        ("show", "numbers"),
    ]
