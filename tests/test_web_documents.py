"""The case page's documents (案件材料) over real HTTP through the ASGI app, on SQLite and
PostgreSQL: each role sees the documents the API lists to it, the upload form where the API takes an
upload, a file refused at its field with nothing stored, a form sent twice storing one document,
downloads through the page's own route with the API's bytes and headers, withdrawals where the API
allows them, and staff outside the case's scope refused as by the API."""

from __future__ import annotations

import re
import uuid
from html import unescape
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mediation.audit.models import AuditRecord
from mediation.documents.models import Document
from mediation.events.models import OutboxEvent
from tests.support import CSRF, Api
from tests.test_documents import docs_url, pdf, sha, snapshot, staging_leftovers, uploaded
from tests.test_web import Page, signed_in
from tests.test_web_forms import at_the_body

KIB = 1024
MIB = 1024 * KIB
EXECUTABLE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


async def upload_form(
    page: Page,
    case: dict[str, Any],
    content: bytes | None,
    name: str = "证据.pdf",
    *,
    key: str | None = None,
    content_type: str = "application/pdf",
    **fields: str,
) -> httpx.Response:
    """The page's upload form as a browser sends it: multipart, the token and the one-time key."""
    data = {"csrf": CSRF, "idempotency_key": key or uuid.uuid4().hex, "kind": "evidence", **fields}
    # A form sent with no file chosen carries an empty part without a file name.
    file = (name, content, content_type) if content is not None else ("", b"", "application/octet-stream")
    return await page.client.post(f"/cases/{case['id']}/documents", data=data, files={"file": file})


async def withdraw_form(
    page: Page,
    api: Api,
    case: dict[str, Any],
    document: dict[str, Any],
    reason: str,
    *,
    key: str | None = None,
    version: str | None = None,
) -> httpx.Response:
    """A row's withdraw form as a browser sends it: the reason, the one-time key and the case's
    version the page showed (by default the case's current one)."""
    if version is None:
        version = (await api.if_match(case))["If-Match"]
    return await page.post(
        f"/cases/{case['id']}/documents/{document['id']}/withdraw",
        {"reason": reason, "version": version, "idempotency_key": key or uuid.uuid4().hex},
    )


def document_rows(html: str) -> dict[str, str]:
    """The rows of the 案件材料 card by document id, as text."""
    card = re.search(r'<section class="card" id="documents">(.*?)</section>', html, re.S)
    assert card, html[:3000]
    rows = re.findall(
        r'<tr class="document document-\w+" data-document="([^"]+)">(.*?)</tr>', card.group(1), re.S
    )
    return {doc: unescape(inner) for doc, inner in rows}


def upload_offered(html: str, case: dict[str, Any]) -> bool:
    return f'action="/cases/{case["id"]}/documents" enctype="multipart/form-data"' in html


def field_error(html: str, name: str) -> str:
    found = re.search(rf'data-field="{re.escape(name)}">.*?<p class="error"[^>]*>(.*?)</p>', html, re.S)
    return unescape(found.group(1)) if found else ""


async def listed(
    api: Api, case: dict[str, Any], role: str = "clerk", org: Any = None
) -> list[dict[str, Any]]:
    response = await api.client.get(docs_url(case), headers=api.auth(role, org))
    assert response.status_code == 200, response.text
    return list(response.json())


async def events_of(api: Api, document_id: str) -> list[OutboxEvent]:
    async with api.app.state.db.reader() as session:
        rows = (await session.scalars(select(OutboxEvent))).all()
    return [e for e in rows if e.data.get("document_id") == document_id]


async def audited(api: Api, document_id: str) -> list[AuditRecord]:
    async with api.app.state.db.reader() as session:
        return list(
            (await session.scalars(select(AuditRecord).where(AuditRecord.object_id == document_id))).all()
        )


# ---- who sees what ------------------------------------------------------------------------------------


async def test_each_role_sees_the_documents_the_api_lists_to_it_and_the_forms_it_may_use(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.drive("mediating")
    evidence = await uploaded(api, case, pdf(4 * KIB, "center"), "借条.pdf")
    scan = await uploaded(api, case, pdf(3 * KIB, "id"), "身份证.pdf", kind="identity_document")
    body = uuid.UUID(str(case["body_id"]))
    minutes = await uploaded(
        api, case, pdf(2 * KIB, "body"), "笔录.pdf", kind="minutes", headers=api.auth("body_mediator", body)
    )

    # The clerk: every document, each downloadable, the upload form, withdrawal of any of them.
    clerk = await signed_in(web, api).get(f"/cases/{case['id']}")
    assert clerk.status_code == 200
    rows = document_rows(clerk.text)
    assert list(rows) == [d["id"] for d in await listed(api, case)]
    assert "受理回执" in next(iter(rows.values())) and "系统生成" in next(iter(rows.values()))
    row = rows[evidence["id"]]
    assert (
        "证据材料" in row and "借条.pdf" in row and "4.0 KB" in row and "窗口受理员" in row and "有效" in row
    )
    assert f'href="/cases/{case["id"]}/documents/{evidence["id"]}/content"' in row
    assert "调解笔录" in rows[minutes["id"]] and "调解员" in rows[minutes["id"]]
    assert upload_offered(clerk.text, case)
    assert all(f"/documents/{d}/withdraw" in rows[d] for d in (evidence["id"], scan["id"], minutes["id"]))

    # The supervisor (ID numbers masked): the same list, no download of the ID scan, as the API.
    supervisor = await signed_in(web, api, "supervisor").get(f"/cases/{case['id']}")
    rows = document_rows(supervisor.text)
    assert list(rows) == [d["id"] for d in await listed(api, case, "supervisor")]
    assert "/content" not in rows[scan["id"]] and "完整身份信息" in rows[scan["id"]]
    assert "/content" in rows[evidence["id"]]
    refused = await web.get(f"/cases/{case['id']}/documents/{scan['id']}/content")
    assert refused.status_code == 403 and "完整身份信息" in refused.text
    assert upload_offered(supervisor.text, case)

    # The body's mediator: the same list, the upload form, and withdrawal of its own minutes only.
    mediator = await (await at_the_body(web, api, case)).get(f"/cases/{case['id']}")
    rows = document_rows(mediator.text)
    assert list(rows) == [d["id"] for d in await listed(api, case, "body_mediator", body)]
    assert upload_offered(mediator.text, case)
    assert "/withdraw" in rows[minutes["id"]]
    assert "/withdraw" not in rows[evidence["id"]] and "/withdraw" not in rows[scan["id"]]


async def test_staff_outside_the_cases_scope_get_404_and_nothing_is_stored(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.intake()
    document = await uploaded(api, case, pdf(2 * KIB, "kept"), "借条.pdf")
    page = signed_in(web, api)
    web.cookies.set("mediation_session", api.tokens[("clerk", api.bodies["other_center"])])
    before = await snapshot(api)
    assert (await page.get(f"/cases/{case['id']}")).status_code == 404
    assert (await page.get(f"/cases/{case['id']}/documents/{document['id']}/content")).status_code == 404
    upload = await upload_form(page, case, pdf(2 * KIB, "outsider"))
    assert upload.status_code == 404 and "借条.pdf" not in upload.text
    withdraw = await withdraw_form(page, api, case, document, "不是本中心的案件")
    assert withdraw.status_code == 404
    assert await snapshot(api) == before
    assert [d["status"] for d in await listed(api, case) if d["id"] == document["id"]] == ["active"]
    # A document of another case, asked for under this one, is no document of it.
    other = await api.intake()
    web.cookies.set("mediation_session", api.tokens[("clerk", api.bodies["center"])])
    assert (await page.get(f"/cases/{other['id']}/documents/{document['id']}/content")).status_code == 404
    assert (await page.get(f"/cases/{case['id']}/documents/not-an-id/content")).status_code == 404


# ---- uploading ------------------------------------------------------------------------------------------


async def test_an_upload_through_the_page_is_the_apis_upload_and_is_listed(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.intake()
    page = signed_in(web, api)
    party = case["parties"][0]
    content = pdf(20 * KIB, "window")
    response = await upload_form(
        page, case, content, r"C:\扫描件\欠条（张三）.pdf", note="原件已核对", party_id=party["id"]
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/cases/{case['id']}?done=document_added#documents"

    [document] = [d for d in await listed(api, case) if d["kind"] == "evidence"]
    assert document["original_name"] == "欠条（张三）.pdf" and document["sha256"] == sha(content)
    assert (document["submitted_by_kind"], document["submitted_by_party_id"]) == ("party", party["id"])
    async with api.app.state.db.reader() as session:
        stored = await session.get(Document, uuid.UUID(document["id"]))
    assert stored is not None and stored.note == "原件已核对"
    # The event other systems learn of it by, and the audit record, as an upload through the API makes.
    [event] = await events_of(api, document["id"])
    assert event.type.endswith(".document_added") and event.data["kind"] == "evidence"
    assert [r.outcome for r in await audited(api, document["id"])] == ["success"]

    shown = await page.get(response.headers["location"])
    assert "已上传材料" in shown.text
    row = document_rows(shown.text)[document["id"]]
    assert "欠条（张三）.pdf" in row and f"当事人{party['name']}提交" in row


@pytest.mark.parametrize("overrides", [{"document_max_bytes": 64 * KIB}], ids=["64KiB"])
async def test_a_refused_file_is_said_at_the_field_and_nothing_is_stored(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.intake()
    page = signed_in(web, api)
    before = await snapshot(api)
    cases = [
        (EXECUTABLE, "证据.pdf", 415, "不接受该类型的文件"),
        (pdf(64 * KIB + 1, "big"), "大文件.pdf", 413, "单个文件超过上限"),
        (b"", "空白.pdf", 422, "文件为空"),
        (None, "", 422, "请选择要上传的文件"),
    ]
    for content, name, status, said in cases:
        response = await upload_form(page, case, content, name, note="当事人当场提交")
        assert response.status_code == status, (name, response.text[:500])
        assert said in field_error(response.text, "file"), (name, field_error(response.text, "file"))
        # The form comes back open, with what was typed.
        assert '<details class="task" id="upload-document" open>' in response.text
        assert "当事人当场提交</textarea>" in response.text
        assert await snapshot(api) == before and staging_leftovers(api) == []
    # A field of the API's form refused by its schema is said at that field.
    wrong = await upload_form(page, case, pdf(KIB, "x"), kind="photo")
    assert wrong.status_code == 422 and field_error(wrong.text, "kind")
    assert await snapshot(api) == before


async def test_a_form_sent_twice_stores_one_document(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.intake()
    page = signed_in(web, api)
    key = uuid.uuid4().hex
    content = pdf(8 * KIB, "twice")
    first = await upload_form(page, case, content, "收条.pdf", key=key)
    again = await upload_form(page, case, content, "收条.pdf", key=key)
    assert first.status_code == again.status_code == 303
    assert [d["original_name"] for d in await listed(api, case) if d["kind"] == "evidence"] == ["收条.pdf"]


@pytest.mark.parametrize("overrides", [{"document_max_bytes": 4 * MIB}], ids=["4MiB"])
async def test_a_file_larger_than_a_forms_body_uploads_through_the_page(
    api: Api, web: httpx.AsyncClient
) -> None:
    """The page's upload has the upload's ceiling (the file limit), not a form's (1 MiB)."""
    case = await api.intake()
    content = pdf(3 * MIB, "scan")
    response = await upload_form(signed_in(web, api), case, content, "扫描件.pdf")
    assert response.status_code == 303, response.text[:500]
    assert [d["sha256"] for d in await listed(api, case) if d["kind"] == "evidence"] == [sha(content)]


# ---- downloading ----------------------------------------------------------------------------------------


async def test_a_download_through_the_page_gives_the_apis_bytes_and_headers(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.intake()
    content = pdf(12 * KIB, "download")
    document = await uploaded(api, case, content, "证据.bat")  # a PDF by its content, whatever its name
    page = signed_in(web, api)
    through_page = await page.get(f"/cases/{case['id']}/documents/{document['id']}/content")
    through_api = await api.client.get(document["href"])
    assert through_page.status_code == through_api.status_code == 200
    assert through_page.content == through_api.content == content
    for header in ("content-type", "content-disposition", "x-content-type-options", "etag"):
        assert through_page.headers[header] == through_api.headers[header], header
    assert through_page.headers["content-disposition"].startswith("attachment")
    assert (
        "证据.bat.pdf" in unescape(through_page.headers["content-disposition"])
        or "%E8%AF%81%E6%8D%AE.bat.pdf" in (through_page.headers["content-disposition"])
    )
    assert through_page.headers["x-content-type-options"] == "nosniff"
    assert through_page.headers["cache-control"] == "no-store"
    # Ranges too, as the API serves them.
    part = await page.get(
        f"/cases/{case['id']}/documents/{document['id']}/content", headers={"Range": "bytes=0-99"}
    )
    assert part.status_code == 206 and part.content == content[:100]
    # Each download of a document holding personal data is audited, from the page as from the API.
    reads = [r for r in await audited(api, document["id"]) if r.action == "document.download"]
    assert len(reads) == 3


async def test_a_signed_out_browser_is_sent_to_sign_in_and_gets_no_file(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.intake()
    document = await uploaded(api, case, pdf(2 * KIB, "private"), "借条.pdf")
    response = await web.get(f"/cases/{case['id']}/documents/{document['id']}/content")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


# ---- withdrawing ----------------------------------------------------------------------------------------


async def test_a_withdrawal_through_the_page_keeps_the_document_with_its_reason(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.drive("mediating")
    document = await uploaded(api, case, pdf(2 * KIB, "withdrawn"), "错传.pdf")

    # The body did not hand it in: refused at the form, as the API refuses it, nothing changed.
    mediator = await at_the_body(web, api, case)
    refused = await withdraw_form(mediator, api, case, document, "不需要了")
    assert refused.status_code == 403 and "只有提交该材料的单位或中心工作人员可以撤回" in refused.text

    clerk = signed_in(web, api)
    short = await withdraw_form(clerk, api, case, document, "错")
    assert short.status_code == 422 and field_error(short.text, "reason")
    assert (await listed(api, case))[-1]["status"] == "active"

    # The form carries the case's version the page showed, as the API's If-Match: a page read before
    # another change to the case is refused, and shown again as the case now is, nothing changed.
    shown = await clerk.get(f"/cases/{case['id']}")
    current = (await api.if_match(case))["If-Match"]
    form = document_rows(shown.text)[document["id"]]
    assert f'name="version" value="{current}"' in form
    stale = f'"{int(current.strip(chr(34))) - 1}"'
    refused = await withdraw_form(clerk, api, case, document, "上传错了文件", version=stale)
    assert refused.status_code == 412 and "您看到的版本已过期" in refused.text
    assert (await listed(api, case))[-1]["status"] == "active"
    assert (await api.if_match(case))["If-Match"] == current

    key = uuid.uuid4().hex
    done = await withdraw_form(clerk, api, case, document, "上传错了文件", key=key, version=current)
    assert done.status_code == 303
    assert done.headers["location"] == f"/cases/{case['id']}?done=document_withdrawn#documents"
    # The same form again: withdrawn once, not refused as withdrawn already (nor as stale).
    again = await withdraw_form(clerk, api, case, document, "上传错了文件", key=key, version=current)
    assert again.status_code == 303
    meta = (await listed(api, case))[-1]
    assert (meta["status"], meta["withdrawn_reason"]) == ("withdrawn", "上传错了文件")
    assert (
        len([e for e in await events_of(api, document["id"]) if e.type.endswith(".document_withdrawn")]) == 1
    )
    shown = await clerk.get(done.headers["location"])
    row = document_rows(shown.text)[document["id"]]
    assert "已撤回" in row and "上传错了文件" in row and "/withdraw" not in row
