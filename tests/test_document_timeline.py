"""Documents on the case's timeline (domain §3: "non-state work also lands on the timeline: ...
documents added"), over real HTTP on SQLite and PostgreSQL: an upload and a withdrawal are work on
the case, each one timeline entry, one event and one version; the file's name and the note stay on
the timeline, masked for roles without pii:read, out of the event; uploads at once to one case all
succeed; an archived case's file is closed, and a refused upload leaves nothing stored; the note is
returned; the case page shows the entries in Chinese and offers no forms on an archived case."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from html import unescape
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mediation.documents.service import DocumentService
from mediation.events.models import OutboxEvent
from tests.support import Api, pause_after, waits_on_a_lock
from tests.test_documents import (
    docs_url,
    pdf,
    problem,
    snapshot,
    staging_leftovers,
    upload,
    uploaded,
    walk,
    withdraw,
)
from tests.test_web import signed_in
from tests.test_web_documents import document_rows, upload_form, upload_offered, withdraw_form

KIB = 1024
ON_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
PHONE = "13912345678"
ID_NUMBER = "330681199005170016"
EVENT_KEYS = {"dispute_id", "case_number", "action", "version", "document_id"}


# ---- helpers ------------------------------------------------------------------------------------


async def case_events(api: Api, case: dict[str, Any], type_: str | None = None) -> list[OutboxEvent]:
    async with api.app.state.db.reader() as session:
        rows = (
            await session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.dispute_id == uuid.UUID(case["id"]))
                .order_by(OutboxEvent.created_at, OutboxEvent.id)
            )
        ).all()
    return [e for e in rows if type_ is None or e.type.endswith(f".{type_}")]


async def version_of(api: Api, case: dict[str, Any]) -> int:
    return int((await api.get(case))["version"])


async def timeline_as(api: Api, case: dict[str, Any], role: str = "clerk") -> list[dict[str, Any]]:
    response = await api.client.get(f"/v1/disputes/{case['id']}/timeline", headers=api.auth(role))
    assert response.status_code == 200, response.text
    return list(response.json())


async def every_version_has_its_entry_and_event(api: Api, case: dict[str, Any]) -> int:
    """The invariant the lifecycle model checks after every action, after documents too."""
    version = await version_of(api, case)
    assert await api.timeline_count(case["id"]) == version
    assert await api.outbox_count(case["id"]) == version
    return version


def timeline_items(html: str) -> list[tuple[str, str]]:
    """The case page's timeline entries as (action, text), newest first."""
    found = re.search(r'<ol class="timeline" id="timeline">(.*?)</ol>', html, re.S)
    assert found, html[:3000]
    items = re.findall(r'<li data-action="([^"]+)">(.*?)</li>', found.group(1), re.S)
    return [(action, unescape(re.sub(r"<[^>]+>", " ", inner))) for action, inner in items]


# ---- an upload on the timeline ---------------------------------------------------------------------


async def test_an_upload_is_one_timeline_entry_one_event_and_one_version(api: Api) -> None:
    case = await api.intake()
    before = await every_version_has_its_entry_and_event(api, case)
    party = case["parties"][0]
    document = await uploaded(
        api, case, pdf(4 * KIB, "iou"), "欠条（张三）.pdf", note="原件已核对", party_id=party["id"]
    )

    assert await every_version_has_its_entry_and_event(api, case) == before + 1
    entry = (await timeline_as(api, case))[-1]
    assert (entry["action"], entry["seq"], entry["from_status"], entry["to_status"]) == (
        "add_document",
        before + 1,
        "registered",
        "registered",
    )
    assert entry["actor_role"] == "clerk" and entry["reason"] is None
    assert entry["payload"] == {
        "document_id": document["id"],
        "kind": "evidence",
        "name": "欠条（张三）.pdf",
        "party_id": party["id"],
        "note": "原件已核对",
    }

    # The event keeps its shape (action, document_id, kind, version: the case's new version), and
    # neither the file's name nor the note: other systems learn that a document came, not who it names.
    [event] = await case_events(api, case, "document_added")
    assert set(event.data) == EVENT_KEYS | {"kind"}
    assert (event.data["action"], event.data["document_id"], event.data["kind"]) == (
        "add_document",
        document["id"],
        "evidence",
    )
    assert event.data["version"] == before + 1
    assert "张三" not in json.dumps(event.data, ensure_ascii=False) and "原件" not in json.dumps(
        event.data, ensure_ascii=False
    )


async def test_the_services_own_papers_add_no_entry_of_their_own(api: Api) -> None:
    """The receipt printed at intake, the agreement printed when signed: part of the action that
    printed them, with its entry and event, not a document handed in."""
    case = await api.drive("agreement_signed")
    await every_version_has_its_entry_and_event(api, case)
    listed = (await api.client.get(docs_url(case))).json()
    assert {d["kind"] for d in listed if d["generated"]} >= {"receipt", "agreement"}
    assert not [e for e in await timeline_as(api, case) if e["action"] == "add_document"]
    assert await case_events(api, case, "document_added") == []


async def test_a_withdrawal_is_one_timeline_entry_with_its_reason_and_one_event(api: Api) -> None:
    case = await api.drive("mediating")
    body = api.acting("body_mediator", case)
    document = await uploaded(api, case, pdf(2 * KIB, "wrong"), "错传.pdf", kind="minutes", headers=body)
    before = await every_version_has_its_entry_and_event(api, case)

    response = await withdraw(api, case, document, "上传错了文件", body)
    assert response.status_code == 200, response.text

    assert await every_version_has_its_entry_and_event(api, case) == before + 1
    entry = (await timeline_as(api, case))[-1]
    assert (entry["action"], entry["reason"], entry["actor_role"]) == (
        "withdraw_document",
        "上传错了文件",
        "body_mediator",
    )
    assert entry["payload"] == {"document_id": document["id"], "kind": "minutes", "name": "错传.pdf"}
    [event] = await case_events(api, case, "document_withdrawn")
    assert set(event.data) == EVENT_KEYS
    assert (event.data["action"], event.data["document_id"], event.data["version"]) == (
        "withdraw_document",
        document["id"],
        before + 1,
    )

    # Refused a second time: nothing more on the timeline, no event, the version as it was.
    again = await withdraw(api, case, document, "再撤一次", body)
    assert again.status_code == 409
    assert await every_version_has_its_entry_and_event(api, case) == before + 1


async def test_a_refused_upload_adds_nothing_to_the_timeline(api: Api) -> None:
    case = await api.intake()
    before = await every_version_has_its_entry_and_event(api, case)
    empty = await upload(api, case, b"", "空.pdf")
    assert empty.status_code == 422
    strange = await upload(api, case, pdf(KIB), party_id=str(uuid.uuid4()))
    assert strange.status_code == 422
    assert await every_version_has_its_entry_and_event(api, case) == before


# ---- personal data -------------------------------------------------------------------------------------


async def test_the_name_and_note_read_masked_without_pii_read_as_other_text_about_the_case(api: Api) -> None:
    case = await api.intake()
    document = await uploaded(
        api, case, pdf(2 * KIB, "phone"), f"张三{PHONE}.pdf", note=f"身份证 {ID_NUMBER} 已核对"
    )
    withdrawn = await withdraw(api, case, document, f"号码 {PHONE} 写错")
    assert withdrawn.status_code == 200, withdrawn.text

    # The clerk (pii:read) reads them as handed in.
    added, taken_back = [e for e in await timeline_as(api, case) if "document" in e["action"]]
    assert added["payload"]["name"] == f"张三{PHONE}.pdf"
    assert added["payload"]["note"] == f"身份证 {ID_NUMBER} 已核对"
    assert taken_back["reason"] == f"号码 {PHONE} 写错"
    assert (await api.client.get(docs_url(case, document))).json()["note"] == f"身份证 {ID_NUMBER} 已核对"

    # The supervisor (no pii:read): the same entries, every number masked, in the timeline and the list.
    shown = json.dumps(await timeline_as(api, case, "supervisor"), ensure_ascii=False)
    assert PHONE not in shown and ID_NUMBER not in shown
    added, taken_back = [e for e in await timeline_as(api, case, "supervisor") if "document" in e["action"]]
    assert added["payload"]["name"].startswith("张三") and added["payload"]["note"].endswith("已核对")
    [listed] = [
        d
        for d in (await api.client.get(docs_url(case), headers=api.auth("supervisor"))).json()
        if d["id"] == document["id"]
    ]
    assert (
        listed["note"] is not None and ID_NUMBER not in listed["note"] and listed["note"].endswith("已核对")
    )
    assert listed["original_name"].startswith("张三") and PHONE not in listed["original_name"]
    assert PHONE not in listed["withdrawn_reason"] and listed["withdrawn_reason"].endswith("写错")

    # And the events carry none of it, masked or not.
    for event in await case_events(api, case):
        text = json.dumps(event.data, ensure_ascii=False)
        assert "张三" not in text and "已核对" not in text and "写错" not in text


async def test_the_note_given_at_upload_is_returned(api: Api) -> None:
    case = await api.intake()
    response = await upload(api, case, pdf(KIB, "noted"), note="原件已核对, 复印件一份")
    assert response.status_code == 201, response.text
    assert response.json()["note"] == "原件已核对, 复印件一份"
    assert (await api.client.get(docs_url(case, response.json()))).json()["note"] == "原件已核对, 复印件一份"
    without = await uploaded(api, case, pdf(KIB, "plain"))
    assert without["note"] is None
    assert [d["note"] for d in (await api.client.get(docs_url(case))).json() if not d["generated"]] == [
        "原件已核对, 复印件一份",
        None,
    ]


# ---- at once -----------------------------------------------------------------------------------------


async def test_uploads_at_once_to_one_case_all_succeed_each_with_its_version(api: Api) -> None:
    case = await api.intake()
    before = await version_of(api, case)
    responses = await asyncio.gather(*(upload(api, case, pdf(64 * KIB, f"at once {i}")) for i in range(4)))
    assert [r.status_code for r in responses] == [201] * 4, [r.text for r in responses]
    assert await every_version_has_its_entry_and_event(api, case) == before + 4
    entries = [e for e in await timeline_as(api, case) if e["action"] == "add_document"]
    assert sorted(e["payload"]["document_id"] for e in entries) == sorted(r.json()["id"] for r in responses)
    assert len({e["seq"] for e in entries}) == 4
    versions = [e.data["version"] for e in await case_events(api, case, "document_added")]
    assert sorted(versions) == list(range(before + 1, before + 5))


@ON_POSTGRESQL
async def test_an_upload_read_before_another_committed_still_succeeds(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first upload has read the case and staged its file; another upload commits and moves the
    version on; the first then takes the case's lock and reads the case again, as it now is."""
    case = await api.intake()
    staged, go_on = pause_after(monkeypatch, DocumentService, "_stage")
    first = asyncio.create_task(upload(api, case, pdf(8 * KIB, "read first")))
    await asyncio.wait_for(staged.wait(), 10)
    second = await upload(api, case, pdf(8 * KIB, "committed first"))
    assert second.status_code == 201, second.text
    go_on.set()
    assert (await first).status_code == 201, (await first).text
    assert await every_version_has_its_entry_and_event(api, case) == 3
    seqs = {e["payload"]["document_id"]: e["seq"] for e in await timeline_as(api, case) if e["seq"] > 1}
    assert seqs == {second.json()["id"]: 2, (await first).json()["id"]: 3}


@ON_POSTGRESQL
async def test_an_upload_waiting_on_the_cases_lock_succeeds_once_the_other_commits(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = await api.intake()
    holding, go_on = pause_after(monkeypatch, DocumentService, "_attach")
    first = asyncio.create_task(upload(api, case, pdf(8 * KIB, "holds the lock")))
    await asyncio.wait_for(holding.wait(), 10)
    second = asyncio.create_task(upload(api, case, pdf(8 * KIB, "waits")))
    assert await waits_on_a_lock(api, second)
    go_on.set()
    done = [await first, await second]
    assert [r.status_code for r in done] == [201, 201], [r.text for r in done]
    assert await every_version_has_its_entry_and_event(api, case) == 3


@ON_POSTGRESQL
async def test_an_upload_and_a_withdrawal_at_once_both_succeed(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = await api.intake()
    mistaken = await uploaded(api, case, pdf(4 * KIB, "mistaken"))
    before = await version_of(api, case)
    staged, go_on = pause_after(monkeypatch, DocumentService, "_stage")
    adding = asyncio.create_task(upload(api, case, pdf(8 * KIB, "meanwhile")))
    await asyncio.wait_for(staged.wait(), 10)
    withdrawn = await withdraw(api, case, mistaken, "误传")
    assert withdrawn.status_code == 200, withdrawn.text
    go_on.set()
    assert (await adding).status_code == 201, (await adding).text
    assert await every_version_has_its_entry_and_event(api, case) == before + 2
    actions = [e["action"] for e in await timeline_as(api, case)][-2:]
    assert actions == ["withdraw_document", "add_document"]

    # And all at once, without a pause: every one succeeds, each with its own version. A withdrawal
    # names the version it read, which another's change may have moved on (412): its client reads
    # the case again and sends it again, as any client of a changing case does.
    others = [await uploaded(api, case, pdf(2 * KIB, f"to withdraw {i}")) for i in range(2)]
    before = await version_of(api, case)

    async def withdrawn_in_the_end(document: dict[str, Any]) -> httpx.Response:
        for _ in range(10):
            response = await withdraw(api, case, document, "重复提交")
            if response.status_code != 412:
                return response
        return response

    responses = await asyncio.gather(
        *(upload(api, case, pdf(32 * KIB, f"with withdrawals {i}")) for i in range(2)),
        *(withdrawn_in_the_end(d) for d in others),
    )
    assert [r.status_code for r in responses] == [201, 201, 200, 200], [r.text for r in responses]
    assert await every_version_has_its_entry_and_event(api, case) == before + 4


# ---- an archived case ---------------------------------------------------------------------------------


async def test_an_archived_cases_file_takes_no_upload_and_keeps_nothing(api: Api) -> None:
    case = await api.intake()
    kept = await uploaded(api, case, pdf(2 * KIB, "kept"), "协议履行凭证.pdf")
    case = await walk(api, case, *["accept", "assign", "sign_for", "agree", "record_performance", "close"])
    case = await api.step(case, "archive")
    assert case["status"] == "archived"
    version = await every_version_has_its_entry_and_event(api, case)
    stored = await snapshot(api)

    refused = await upload(api, case, pdf(4 * KIB, "too late"), "补充.pdf", note="归档后补充")
    body = problem(refused, 409, "conflict")
    assert body["code"] == "case_archived" and "归档" in body["detail"]
    english = await upload(api, case, pdf(4 * KIB, "too late"), headers={"Accept-Language": "en"})
    assert "archived" in problem(english, 409, "conflict")["detail"]
    assert await snapshot(api) == stored and staging_leftovers(api) == []

    taken_back = await withdraw(api, case, kept, "归档后撤回")
    assert problem(taken_back, 409, "conflict")["code"] == "case_archived"
    assert (await api.client.get(docs_url(case, kept))).json()["status"] == "active"
    assert await every_version_has_its_entry_and_event(api, case) == version


async def test_a_closed_case_still_takes_documents(api: Api) -> None:
    """Only the archive closes the file: a closed case awaits its follow-up visit, whose papers come in."""
    case = await api.drive("closed")
    before = await version_of(api, case)
    await uploaded(api, case, pdf(KIB, "visit"), "回访记录.pdf")
    assert await every_version_has_its_entry_and_event(api, case) == before + 1


# ---- the case page -------------------------------------------------------------------------------------


async def test_the_case_page_shows_uploads_and_withdrawals_on_its_timeline_in_chinese(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.intake()
    page = signed_in(web, api)
    party = case["parties"][0]
    sent = await upload_form(
        page, case, pdf(3 * KIB, "page"), "借条.pdf", note="原件已核对", party_id=party["id"]
    )
    assert sent.status_code == 303, sent.text
    [document] = [d for d in (await api.client.get(docs_url(case))).json() if not d["generated"]]
    shown = await page.get(f"/cases/{case['id']}")
    action, text = timeline_items(shown.text)[0]
    assert action == "add_document"
    assert "提交材料" in text and "证据材料《借条.pdf》" in text and f"当事人{party['name']}提交" in text
    assert "备注: 原件已核对" in text
    # The note in the documents card too.
    assert "备注: 原件已核对" in document_rows(shown.text)[document["id"]]

    done = await withdraw_form(page, api, case, document, "上传错了文件")
    assert done.status_code == 303, done.text
    action, text = timeline_items((await page.get(f"/cases/{case['id']}")).text)[0]
    assert action == "withdraw_document"
    assert "撤回材料" in text and "证据材料《借条.pdf》" in text and "上传错了文件" in text
    await every_version_has_its_entry_and_event(api, case)


async def test_the_supervisors_page_shows_the_entries_with_numbers_masked(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.intake()
    document = await uploaded(api, case, pdf(KIB, "masked"), f"张三{PHONE}.pdf", note=f"身份证 {ID_NUMBER}")
    shown = await signed_in(web, api, "supervisor").get(f"/cases/{case['id']}")
    action, text = timeline_items(shown.text)[0]
    assert action == "add_document" and "提交材料" in text and "《张三" in text
    assert PHONE not in shown.text and ID_NUMBER not in shown.text
    assert "备注: 身份证" in document_rows(shown.text)[document["id"]]


async def test_the_page_of_an_archived_case_offers_no_upload_or_withdrawal(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.intake()
    kept = await uploaded(api, case, pdf(2 * KIB, "kept"))
    case = await walk(
        api, case, "accept", "assign", "sign_for", "agree", "record_performance", "close", "archive"
    )
    page = signed_in(web, api)
    shown = await page.get(f"/cases/{case['id']}")
    assert not upload_offered(shown.text, case)
    assert "/withdraw" not in document_rows(shown.text)[kept["id"]]
    assert "案卷已封存" in shown.text
    stored = await snapshot(api)

    # A form sent anyway (a page opened before the archive) is refused, nothing stored.
    refused = await upload_form(page, case, pdf(4 * KIB, "stale page"), "补充.pdf")
    assert refused.status_code == 409 and "已归档" in refused.text
    assert await snapshot(api) == stored and staging_leftovers(api) == []
    # A withdraw form from a page opened before the archive names the version before it (412); one
    # naming the archived case's version is refused as the file is closed (409).
    before_archive = f'"{case["version"] - 1}"'
    stale = await withdraw_form(page, api, case, kept, "归档后撤回", version=before_archive)
    assert stale.status_code == 412
    withdrawn = await withdraw_form(page, api, case, kept, "归档后撤回")
    assert withdrawn.status_code == 409 and "已归档" in withdrawn.text
    assert (await api.client.get(docs_url(case, kept))).json()["status"] == "active"
