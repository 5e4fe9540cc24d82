"""Who reads what of a case's documents where else than in its documents list, over real HTTP on
SQLite and PostgreSQL: a court or commission is not told, on the timeline or in a handoff's dossier,
the name, note or withdrawal reason of a document it was not handed (个人信息保护法 Art. 6); the
manifest of a frozen dossier and a download name its files as the documents list does (masked without
pii:read); an upload and a withdrawal answer with the case's new ETag; a sitting's place left blank is no
place, and the case page's move form keeps a sitting's time to the second when it is not changed."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx

from mediation.core.pii import redact_text
from mediation.disputes.schemas import TimelineEntryOut
from mediation.web.rendering import templates
from tests.support import Api
from tests.test_document_timeline import timeline_as, timeline_items
from tests.test_documents import docs_url, pdf, problem, uploaded, walk, withdraw
from tests.test_documents_review import saved_as
from tests.test_sitting_reschedule import (
    REASON,
    field_error,
    page_reschedule_path,
    reschedule,
    same_instant,
)
from tests.test_web_forms import at_the_body
from tests.test_web_sittings import form_on, listed, scheduled

KIB = 1024
PHONE = "13912345678"
ID_NUMBER = "110105194912310021"
MISFILED_NAME = "王五诉李四案-病历.pdf"
MISFILED_NOTE = "另案材料, 误传"
MISFILED_REASON = "属另一案件(王五), 误传"
DOCUMENT_ACTIONS = ("add_document", "withdraw_document")


# ---- helpers ------------------------------------------------------------------------------------


async def misfiled_then_handed_off(
    api: Api, *handoff: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A case the body files two documents in, one by mistake, which it withdraws, before the case
    is handed off by `handoff`: (case, the document handed over, the one withdrawn)."""
    case = await api.intake()
    case = await walk(api, case, "accept", "assign", "sign_for")
    body = api.acting("body_mediator", case)
    kept = await uploaded(api, case, pdf(8 * KIB, "iou"), "欠条.pdf", headers=body, note="原件已核对")
    misfiled = await uploaded(
        api, case, pdf(8 * KIB, "wrong case"), MISFILED_NAME, headers=body, note=MISFILED_NOTE
    )
    withdrawn = await withdraw(api, case, misfiled, MISFILED_REASON, body)
    assert withdrawn.status_code == 200, withdrawn.text
    case = await walk(api, case, *handoff)
    return case, kept, misfiled


def entries_of(timeline: list[dict[str, Any]], document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e
        for e in timeline
        if e["action"] in DOCUMENT_ACTIONS and e["payload"]["document_id"] == document["id"]
    ]


def says_nothing_of_the_misfiled_document(text: str) -> None:
    for secret in (MISFILED_NAME, MISFILED_NOTE, MISFILED_REASON):
        assert secret not in text


def withheld_in_place(entries: list[dict[str, Any]], document: dict[str, Any]) -> None:
    """The document's hand-in and withdrawal keep their places, withheld: no name, note or reason."""
    assert [e["action"] for e in entries] == ["add_document", "withdraw_document"]
    for e in entries:
        assert e["reason_withheld"] is True and e["reason"] is None
        assert e["payload"]["name"] is None and e["payload"].get("note") is None
        assert (e["payload"]["document_id"], e["payload"]["kind"]) == (document["id"], "evidence")


# ---- 1. documents not handed to a court or commission, on its timeline ------------------------------


async def test_a_court_reads_no_name_note_or_reason_of_a_document_it_was_not_handed(api: Api) -> None:
    case, kept, misfiled = await misfiled_then_handed_off(api, "agree", "request_confirmation")
    court = api.auth("court")
    listed_to_court = (await api.client.get(docs_url(case), headers=court)).json()
    assert misfiled["id"] not in {d["id"] for d in listed_to_court}

    center = await timeline_as(api, case, "clerk")
    timeline = await timeline_as(api, case, "court")
    # The same entries in the same places: the case's course is no secret.
    assert [(e["seq"], e["action"]) for e in timeline] == [(e["seq"], e["action"]) for e in center]
    withheld_in_place(entries_of(timeline, misfiled), misfiled)
    says_nothing_of_the_misfiled_document(json.dumps(timeline, ensure_ascii=False))
    # What was handed over reads as it was written.
    [added] = entries_of(timeline, kept)
    assert added["reason_withheld"] is False
    assert (added["payload"]["name"], added["payload"]["note"]) == ("欠条.pdf", "原件已核对")
    # The center, which keeps the file, reads it all.
    [center_added, center_withdrawn] = entries_of(center, misfiled)
    assert (center_added["payload"]["name"], center_added["payload"]["note"]) == (
        MISFILED_NAME,
        MISFILED_NOTE,
    )
    assert center_withdrawn["reason"] == MISFILED_REASON and center_withdrawn["reason_withheld"] is False

    # The dossier's timeline is the case's timeline.
    handoff = await api.client.get(f"/v1/handoffs/{case['handoff']['id']}", headers=court)
    assert handoff.status_code == 200, handoff.text
    says_nothing_of_the_misfiled_document(json.dumps(handoff.json(), ensure_ascii=False))
    dossier_timeline = handoff.json()["timeline"]
    assert dossier_timeline == timeline
    at_center = (await api.client.get(f"/v1/handoffs/{case['handoff']['id']}", headers=api.auth())).json()
    assert MISFILED_NAME in json.dumps(at_center["timeline"], ensure_ascii=False)


async def test_a_late_document_is_named_to_the_court_until_it_is_withdrawn(api: Api) -> None:
    case, _, _ = await misfiled_then_handed_off(api, "agree", "request_confirmation")
    body = api.acting("body_mediator", case)
    late = await uploaded(api, case, pdf(4 * KIB, "payment"), "付款凭证.pdf", headers=body, note="补充")
    [added] = entries_of(await timeline_as(api, case, "court"), late)
    assert (added["reason_withheld"], added["payload"]["name"]) == (False, "付款凭证.pdf")

    # Withdrawn after it was added late, it is no longer shown to the court (DocumentService.of_case),
    # and neither is what its entries say of it.
    withdrawn = await withdraw(api, case, late, "重复提交", body)
    assert withdrawn.status_code == 200, withdrawn.text
    timeline = await timeline_as(api, case, "court")
    withheld_in_place(entries_of(timeline, late), late)
    assert "付款凭证.pdf" not in json.dumps(timeline, ensure_ascii=False)


async def test_an_arbitration_commission_reads_no_name_of_a_document_it_was_not_handed(api: Api) -> None:
    case, kept, misfiled = await misfiled_then_handed_off(api, "fail", "refer_arbitration")
    commission = api.auth("arbitration", "commercial_commission")
    response = await api.client.get(f"/v1/disputes/{case['id']}/timeline", headers=commission)
    assert response.status_code == 200, response.text
    timeline = response.json()
    withheld_in_place(entries_of(timeline, misfiled), misfiled)
    says_nothing_of_the_misfiled_document(json.dumps(timeline, ensure_ascii=False))
    [added] = entries_of(timeline, kept)
    assert added["payload"]["name"] == "欠条.pdf"


async def test_the_body_handling_the_case_reads_every_document_entry(api: Api) -> None:
    # Only a court or commission is shown part of the file: the body that has the case reads all of
    # it, the withdrawn document's entries included (a body the case left reads no longer the case).
    case, _, misfiled = await misfiled_then_handed_off(api, "agree")
    response = await api.client.get(
        f"/v1/disputes/{case['id']}/timeline", headers=api.acting("body_mediator", case)
    )
    assert response.status_code == 200, response.text
    added, withdrawn = entries_of(response.json(), misfiled)
    assert (added["reason_withheld"], added["payload"]["name"]) == (False, MISFILED_NAME)
    assert (withdrawn["reason_withheld"], withdrawn["reason"]) == (False, MISFILED_REASON)


async def test_the_timeline_card_says_a_withheld_document_entry_is_withheld(api: Api) -> None:
    # The case page's timeline card (web/templates/_timeline.html), given the entries as a court
    # reads them: the withheld document's entries keep their places and say that the document's
    # details are not shown, not that another body's reason is withheld.
    case, _, misfiled = await misfiled_then_handed_off(api, "agree", "request_confirmation")
    entries = [TimelineEntryOut.model_validate(e) for e in await timeline_as(api, case, "court")]
    html = templates.env.get_template("_timeline.html").render(timeline=entries, party_names={})
    items = timeline_items(html)
    assert [a for a, _ in items] == [e.action for e in entries]
    misfiled_seqs = {e["seq"] for e in entries_of(await timeline_as(api, case, "court"), misfiled)}
    withheld = [text for (_, text), e in zip(items, entries, strict=True) if e.seq in misfiled_seqs]
    assert len(withheld) == 2
    for text in withheld:
        assert "材料信息不予显示" in text and "证据材料" in text
        assert "其他调解组织填写的理由不予显示" not in text
    says_nothing_of_the_misfiled_document(html)
    assert "欠条.pdf" in html


async def test_the_case_page_timeline_names_the_documents_to_the_center(
    api: Api, web: httpx.AsyncClient
) -> None:
    from tests.test_web import signed_in

    case, _, _ = await misfiled_then_handed_off(api, "agree")
    page = signed_in(web, api)
    shown = await page.get(f"/cases/{case['id']}")
    assert shown.status_code == 200
    texts = [text for action, text in timeline_items(shown.text) if action in DOCUMENT_ACTIONS]
    assert any(MISFILED_NAME in t for t in texts) and any(MISFILED_REASON in t for t in texts)
    assert not any("材料信息不予显示" in t for t in texts)


# ---- 2. a frozen dossier's manifest names its files as the documents list does ----------------------


async def test_the_dossier_manifest_masks_file_names_for_a_reader_without_pii_read(api: Api) -> None:
    case = await api.intake()
    named = await uploaded(api, case, pdf(8 * KIB, "iou"), f"欠条-{PHONE}.pdf")
    case = await walk(api, case, "accept", "assign", "sign_for", "agree", "request_confirmation")
    supervisor = api.auth("supervisor")
    [in_list] = [
        d for d in (await api.client.get(docs_url(case), headers=supervisor)).json() if d["id"] == named["id"]
    ]
    assert PHONE not in in_list["original_name"]

    dossier = await api.client.get(f"/v1/disputes/{case['id']}/dossier", headers=supervisor)
    assert dossier.status_code == 200, dossier.text
    [item] = [m for m in dossier.json()["manifest"] if m["document_id"] == named["id"]]
    assert item["name"] == in_list["original_name"]
    assert item["sha256"] == named["sha256"]  # the manifest as frozen, but for the name's mask

    handoff = await api.client.get(f"/v1/handoffs/{case['handoff']['id']}", headers=supervisor)
    assert handoff.status_code == 200, handoff.text
    [item] = [m for m in handoff.json()["manifest"] if m["document_id"] == named["id"]]
    assert item["name"] == in_list["original_name"]
    assert PHONE not in json.dumps(handoff.json()["manifest"])

    # With pii:read, the name as handed in.
    for role in ("court", "clerk"):
        got = (await api.client.get(f"/v1/disputes/{case['id']}/dossier", headers=api.auth(role))).json()
        assert f"欠条-{PHONE}.pdf" in [m["name"] for m in got["manifest"]], role
    # The download names the file as the list does (the test below has the rest).
    content = await api.client.get(docs_url(case, named, "/content"), headers=supervisor)
    assert content.status_code == 200 and PHONE not in content.headers["content-disposition"]
    content = await api.client.get(docs_url(case, named, "/content"), headers=api.auth("clerk"))
    assert content.status_code == 200 and PHONE in content.headers["content-disposition"]


async def test_a_download_names_the_file_as_the_documents_list_does(api: Api, web: httpx.AsyncClient) -> None:
    """The file's name is data of its own: a photo of the evidence need not show the ID number its
    name does. A role without pii:read is served it masked as the list, the timeline and the
    manifest show it (个人信息保护法 Art. 6, 51), through the API and the case page alike; a role
    with pii:read gets it as handed in."""
    from tests.test_web import signed_in

    case = await api.intake()
    name = f"李四身份证{ID_NUMBER}.pdf"
    document = await uploaded(api, case, pdf(4 * KIB, "photo"), name)
    supervisor = api.auth("supervisor")
    [listed] = [
        d
        for d in (await api.client.get(docs_url(case), headers=supervisor)).json()
        if d["id"] == document["id"]
    ]
    assert listed["original_name"] == redact_text(name) == "李四身份证110***********0021.pdf"

    for headers in (supervisor, {**supervisor, "Range": "bytes=0-9"}):
        served = await api.client.get(document["href"], headers=headers)
        assert served.status_code in (200, 206), served.text
        fallback, real = saved_as(served.headers["content-disposition"])
        assert real == listed["original_name"]
        assert ID_NUMBER not in served.headers["content-disposition"] and "0021.pdf" in fallback
    page = signed_in(web, api, "supervisor")
    through_page = await page.get(f"/cases/{case['id']}/documents/{document['id']}/content")
    assert through_page.status_code == 200
    assert saved_as(through_page.headers["content-disposition"])[1] == listed["original_name"]

    # The clerk (pii:read) saves it under the name it was handed in under.
    assert saved_as((await api.client.get(document["href"])).headers["content-disposition"])[1] == name
    page = signed_in(web, api)
    through_page = await page.get(f"/cases/{case['id']}/documents/{document['id']}/content")
    assert saved_as(through_page.headers["content-disposition"])[1] == name


# ---- 3. a blank place is no place ----------------------------------------------------------------


async def test_an_online_sitting_moved_to_a_blank_place_is_not_moved(api: Api) -> None:
    case = await api.drive("mediating")
    online = await scheduled(api, case, place=None, online=True)
    for blank in ("", "   "):
        same = await reschedule(
            api, case, online, {"scheduled_at": online["scheduled_at"], "place": blank, "reason": REASON}
        )
        problem(same, 422, "validation-error")
        assert [(e["field"], e["code"]) for e in same.json()["errors"]] == [
            ("scheduled_at", "session_unchanged")
        ]
    [now] = await listed(api, case)
    assert (now["version"], now["rescheduled_count"]) == (online["version"], 0)

    # Moved to another day with a blank place, it keeps none.
    moved = await reschedule(
        api, case, online, {"scheduled_at": "2026-06-03T14:00:00+08:00", "place": " ", "reason": REASON}
    )
    assert moved.status_code == 200, moved.text
    [earlier] = moved.json()["reschedules"]
    assert (
        moved.json()["place"] is None and earlier["to"]["place"] is None and earlier["from"]["place"] is None
    )


async def test_an_online_sitting_scheduled_with_a_blank_place_has_none(api: Api) -> None:
    case = await api.drive("mediating")
    for blank in ("", "  "):
        online = await scheduled(api, case, place=blank, online=True)
        assert online["place"] is None
    in_person = await api.client.post(
        f"/v1/disputes/{case['id']}/sessions",
        json={"scheduled_at": "2026-06-01T09:00:00+08:00", "place": "  "},
        headers=api.acting("body_mediator", case),
    )
    problem(in_person, 422, "validation-error")
    assert [(e["field"], e["code"]) for e in in_person.json()["errors"]] == [("place", "place_missing")]


async def test_the_move_form_keeps_the_sittings_seconds_when_only_the_place_changes(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.drive("mediating")
    sitting = await scheduled(api, case, scheduled_at="2026-06-01T09:30:45+08:00")
    page = await at_the_body(web, api, case)
    action = page_reschedule_path(case, sitting)
    form = form_on((await page.get(f"/cases/{case['id']}")).text, action)
    assert form["scheduled_at"] == "2026-06-01T09:30"  # the page shows the minute

    # The time as shown, nothing else changed: no move, rather than one to 09:30:00.
    unchanged = await page.post(action, {**form, "reason": REASON})
    assert unchanged.status_code == 422
    assert "无需改期" in field_error(unchanged.text, action, "scheduled_at")

    done = await page.post(action, {**form, "place": "镇司法所调解室", "reason": REASON})
    assert done.status_code == 303, done.text[:3000]
    [moved] = await listed(api, case)
    assert moved["place"] == "镇司法所调解室"
    assert same_instant(moved["scheduled_at"], "2026-06-01T09:30:45+08:00")
    [earlier] = moved["reschedules"]
    assert same_instant(earlier["to"]["scheduled_at"], earlier["from"]["scheduled_at"])

    # A time typed in is taken to the minute, as typed.
    form = form_on((await page.get(f"/cases/{case['id']}")).text, page_reschedule_path(case, moved))
    done = await page.post(
        page_reschedule_path(case, moved), {**form, "scheduled_at": "2026-06-01T09:31", "reason": REASON}
    )
    assert done.status_code == 303, done.text[:3000]
    [again] = await listed(api, case)
    assert datetime.fromisoformat(again["scheduled_at"]) == datetime.fromisoformat(
        "2026-06-01T09:31:00+08:00"
    )


# ---- 4. an upload and a withdrawal answer with the case's new version ---------------------------------


async def test_an_upload_and_a_withdrawal_answer_with_the_cases_new_etag(api: Api) -> None:
    case = await api.intake()
    response = await api.client.post(
        docs_url(case),
        files={"file": ("欠条.pdf", pdf(4 * KIB, "iou"), "application/pdf")},
        data={"kind": "evidence"},
        headers={**api.auth(), "Idempotency-Key": "upload-etag-1"},
    )
    assert response.status_code == 201, response.text
    now = await api.get(case)
    assert now["version"] == case["version"] + 1
    assert response.headers["ETag"] == f'"{now["version"]}"'
    # Sent again with its key: the same answer, the same ETag.
    replayed = await api.client.post(
        docs_url(case),
        files={"file": ("欠条.pdf", pdf(4 * KIB, "iou"), "application/pdf")},
        data={"kind": "evidence"},
        headers={**api.auth(), "Idempotency-Key": "upload-etag-1"},
    )
    assert replayed.status_code == 201 and replayed.headers["ETag"] == response.headers["ETag"]

    # The case read before the upload is stale; the ETag the upload gave is the case's own.
    stale = await api.act(case, "accept")
    problem(stale, 412, "stale-version")
    document = response.json()
    withdrawn = await api.client.post(
        docs_url(case, document, "/withdraw"),
        json={"reason": "误传"},
        headers={**api.auth(), "If-Match": response.headers["ETag"]},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    now = await api.get(case)
    assert withdrawn.headers["ETag"] == f'"{now["version"]}"'
    assert withdrawn.json()["status"] == "withdrawn"
    accepted = await api.act({**case, "version": int(withdrawn.headers["ETag"].strip('"'))}, "accept")
    assert accepted.status_code == 200, accepted.text
