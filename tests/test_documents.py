"""Documents of a case: upload and download byte for byte, content-addressed storage, size and
type limits that leave nothing behind, the dossier frozen at handoff, scope and audit of
downloads, non-ASCII file names, and a large upload that streams instead of filling memory.

Tests that need a limit lowered (or raised) build their app with it, through `overrides`: the
upload body ceiling of the HTTP middleware is fixed from the settings when the app is created.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import io
import re
import tracemalloc
import uuid
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy import func, select

from mediation.audit.models import AuditRecord
from mediation.documents.models import Blob, Document
from mediation.identity.models import ApiKey

KIB = 1024
MIB = 1024 * KIB
PDF_HEAD = b"%PDF-1.4\n"
CHINESE_NAME = "欠条（张三）2026.pdf"
# RFC 5987 attr-char, plus the percent signs of pct-encoded octets.
EXT_VALUE = re.compile(r"^[A-Za-z0-9!#$&+\-.^_`|~%]+$")


# ---- helpers ------------------------------------------------------------------------------------


def pdf(size: int, seed: str = "") -> bytes:
    """A PDF-looking file of exactly `size` bytes; different seeds give different content."""
    body = PDF_HEAD + f"% {seed}\n".encode()
    filler = b"1 0 obj << /Type /Page >> endobj\n"
    body += filler * ((size - len(body)) // len(filler) + 1)
    return body[:size]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def upload(
    api: Any,
    dispute: dict[str, Any],
    content: bytes,
    name: str = "证据.pdf",
    *,
    kind: str = "evidence",
    headers: dict[str, str] | None = None,
    content_type: str = "application/pdf",
    **fields: str,
) -> httpx.Response:
    return await api.client.post(
        f"/v1/disputes/{dispute['id']}/documents",
        files={"file": (name, content, content_type)},
        data={"kind": kind, **fields},
        headers=headers,
    )


async def uploaded(api: Any, dispute: dict[str, Any], content: bytes, *a: Any, **kw: Any) -> dict[str, Any]:
    response = await upload(api, dispute, content, *a, **kw)
    assert response.status_code == 201, response.text
    return response.json()


async def withdraw(
    api: Any,
    dispute: dict[str, Any],
    document: dict[str, Any],
    reason: str,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Withdraw `document` as a client that read the case just before: with its current ETag."""
    return await api.client.post(
        docs_url(dispute, document, "/withdraw"),
        json={"reason": reason},
        headers={**(headers or {}), **await api.if_match(dispute)},
    )


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == f"/problems/{slug}" and body["status"] == status
    return body


def docs_url(dispute: dict[str, Any], document: Any = None, tail: str = "") -> str:
    url = f"/v1/disputes/{dispute['id']}/documents"
    if document is not None:
        url += f"/{document['id'] if isinstance(document, dict) else document}"
    return url + tail


def stored_files(api: Any) -> list[Path]:
    """Files in the content store, leaving out its staging directory."""
    root: Path = api.app.state.settings.documents_dir
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != "tmp")


def staging_leftovers(api: Any) -> list[Path]:
    tmp: Path = api.app.state.settings.documents_dir / "tmp"
    return sorted(tmp.iterdir()) if tmp.exists() else []


async def count(api: Any, model: Any, *where: Any) -> int:
    async with api.app.state.db.reader() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def snapshot(api: Any) -> tuple[int, int, int]:
    return await count(api, Blob), await count(api, Document), len(stored_files(api))


async def audit_rows(api: Any, *where: Any) -> list[AuditRecord]:
    async with api.app.state.db.reader() as session:
        return list(
            (await session.scalars(select(AuditRecord).where(*where).order_by(AuditRecord.seq))).all()
        )


async def api_key_id(api: Any, role: str, org: str) -> str:
    async with api.app.state.db.reader() as session:
        key = await session.scalar(
            select(ApiKey).where(ApiKey.role == role, ApiKey.organisation_id == api.bodies[org])
        )
        assert key is not None
        return str(key.id)


async def walk(api: Any, dispute: dict[str, Any], *actions: str) -> dict[str, Any]:
    # An upload or a withdrawal is work on the case and moves its version on: act on the case as it is.
    dispute = await api.get(dispute)
    for action in actions:
        dispute = await api.step(dispute, action)
    return dispute


# ---- round trip and content addressing ----------------------------------------------------------


async def test_download_returns_the_uploaded_bytes_and_identical_content_is_stored_once(api):
    dispute, other = await api.intake(), await api.intake()
    content = pdf(40 * KIB, "round trip")
    blobs, rows, files = await snapshot(api)

    first = await upload(api, dispute, content, "借条.pdf", note="原件复印")
    assert first.status_code == 201, first.text
    meta = first.json()
    assert first.headers["location"] == docs_url(dispute, meta)
    assert meta["sha256"] == sha(content) and meta["size"] == len(content)
    assert meta["media_type"] == "application/pdf"
    assert (meta["kind"], meta["original_name"], meta["status"]) == ("evidence", "借条.pdf", "active")
    assert (meta["generated"], meta["late"], meta["submitted_by_kind"]) == (False, False, "center")
    assert meta["stage"] == "registered" and meta["href"] == docs_url(dispute, meta, "/content")

    download = await api.client.get(meta["href"])
    assert download.status_code == 200
    assert download.content == content
    assert sha(download.content) == meta["sha256"]
    assert download.headers["etag"] == f'"{meta["sha256"]}"'
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"].startswith("attachment")
    assert (await api.client.get(docs_url(dispute, meta))).json() == meta

    # The same bytes again, to the same case and to another one: new documents, the same blob.
    again = await uploaded(api, dispute, content, "借条-再次.pdf")
    elsewhere = await uploaded(api, other, content, "借条.pdf")
    assert len({meta["id"], again["id"], elsewhere["id"]}) == 3
    assert again["sha256"] == elsewhere["sha256"] == meta["sha256"]
    assert await count(api, Blob) == blobs + 1
    assert await count(api, Blob, Blob.sha256 == meta["sha256"]) == 1
    assert await count(api, Document, Document.sha256 == meta["sha256"]) == 3
    assert await count(api, Document) == rows + 3
    assert len(stored_files(api)) == files + 1
    [stored] = [p for p in stored_files(api) if p.name == meta["sha256"]]
    assert stored.read_bytes() == content
    assert staging_leftovers(api) == []
    for document in (again, elsewhere):
        assert (await api.client.get(document["href"])).content == content

    listed = (await api.client.get(docs_url(dispute))).json()
    # The receipt generated at registration, then both uploads, oldest first.
    assert [d["kind"] for d in listed] == ["receipt", "evidence", "evidence"]
    assert listed[0]["generated"] is True and listed[0]["submitted_by_kind"] == "center"
    assert [d["id"] for d in listed[1:]] == [meta["id"], again["id"]]


async def test_a_range_request_answers_206_with_those_bytes(api):
    dispute = await api.intake()
    content = pdf(10_000, "range")
    meta = await uploaded(api, dispute, content)

    part = await api.client.get(meta["href"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(content)}"
    assert part.headers["content-length"] == "100"
    assert part.headers["etag"] == f'"{sha(content)}"'

    tail = await api.client.get(meta["href"], headers={"Range": "bytes=-16"})
    assert tail.status_code == 206 and tail.content == content[-16:]
    beyond = await api.client.get(meta["href"], headers={"Range": f"bytes={len(content) + 10}-"})
    refused = problem(beyond, 416, "range-not-satisfiable")
    assert (
        beyond.headers["content-range"] == f"bytes */{len(content)}"
        and str(len(content)) in refused["detail"]
    )
    # A range it cannot read is ignored (RFC 9110 §14.2): the whole file.
    # Of several ranges, those beyond the file are left out and the rest served.
    some = await api.client.get(meta["href"], headers={"Range": f"bytes=0-9,{len(content) + 10}-"})
    assert (some.status_code, some.content) == (206, content[:10])
    assert problem(
        await api.client.get(meta["href"], headers={"Range": "bytes=-0"}), 416, "range-not-satisfiable"
    )
    for unread in ("bytes=5-2", "items=0-1", "bytes=a-b", "bytes=-", "bytes"):
        whole = await api.client.get(meta["href"], headers={"Range": unread})
        assert (whole.status_code, whole.content) == (200, content), unread


# ---- limits and types ---------------------------------------------------------------------------

FILE_LIMIT = 64 * KIB
CEILING = FILE_LIMIT + 64 * KIB  # the middleware's: the file limit plus multipart framing


async def _streamed(data: bytes, size: int = 16 * KIB) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _multipart(content: bytes, name: str = "big.pdf") -> tuple[bytes, str]:
    boundary = f"test-{uuid.uuid4().hex}"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nevidence\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("overrides", [{"document_max_bytes": FILE_LIMIT}], ids=["64KiB"])
async def test_a_file_over_the_limit_is_refused_with_413_and_leaves_nothing(api):
    dispute = await api.intake()
    before = await snapshot(api)

    # Past the service's limit, under the middleware's ceiling: the service refuses while staging.
    over = await upload(api, dispute, pdf(FILE_LIMIT + 1, "one byte over"))
    assert str(FILE_LIMIT) in problem(over, 413, "payload-too-large")["detail"]
    between = await upload(api, dispute, pdf(FILE_LIMIT + 32 * KIB, "between"))
    assert str(FILE_LIMIT) in problem(between, 413, "payload-too-large")["detail"]

    # Past the middleware's ceiling: refused by its Content-Length before the body is read ...
    huge = pdf(CEILING + KIB, "huge")
    declared = await upload(api, dispute, huge)
    assert str(CEILING) in problem(declared, 413, "payload-too-large")["detail"]
    # ... and, sent chunked without a length, while it is being read.
    body, content_type = _multipart(huge)
    chunked = await api.client.post(
        docs_url(dispute), content=_streamed(body), headers={"Content-Type": content_type}
    )
    problem(chunked, 413, "payload-too-large")

    assert await snapshot(api) == before
    assert staging_leftovers(api) == []
    refused = {
        sha(pdf(FILE_LIMIT + 1, "one byte over")),
        sha(pdf(FILE_LIMIT + 32 * KIB, "between")),
        sha(huge),
    }
    assert refused.isdisjoint(p.name for p in stored_files(api))

    # At the limit exactly the file is taken, by either framing.
    exact = await uploaded(api, dispute, pdf(FILE_LIMIT, "exact"))
    assert exact["size"] == FILE_LIMIT
    body, content_type = _multipart(pdf(FILE_LIMIT, "exact, streamed"))
    streamed = await api.client.post(
        docs_url(dispute), content=_streamed(body), headers={"Content-Type": content_type}
    )
    assert streamed.status_code == 201, streamed.text
    assert streamed.json()["size"] == FILE_LIMIT
    assert await snapshot(api) == (before[0] + 2, before[1] + 2, before[2] + 2)


async def test_the_file_limit_is_read_at_upload_time_under_the_middleware_ceiling(api):
    """The default app's middleware lets 20 MiB through; a limit lowered at runtime still holds."""
    dispute = await api.intake()
    api.app.state.settings.document_max_bytes = FILE_LIMIT
    before = await snapshot(api)
    refused = await upload(api, dispute, pdf(3 * FILE_LIMIT, "runtime limit"))
    assert str(FILE_LIMIT) in problem(refused, 413, "payload-too-large")["detail"]
    assert await snapshot(api) == before and staging_leftovers(api) == []
    assert (await upload(api, dispute, pdf(FILE_LIMIT, "fits"))).status_code == 201


CASE_LIMIT = 100 * KIB


@pytest.mark.parametrize(
    "overrides", [{"document_max_bytes": FILE_LIMIT, "case_document_max_bytes": CASE_LIMIT}], ids=["100KiB"]
)
async def test_the_total_of_a_case_is_limited_too(api):
    dispute, other = await api.intake(), await api.intake()
    # Generated papers (the receipt) do not count: the whole allowance is for what people bring.
    await uploaded(api, dispute, pdf(60 * KIB, "first"))
    await uploaded(api, dispute, pdf(40 * KIB, "second"))  # exactly at the case's total
    before = await snapshot(api)

    full = await upload(api, dispute, b"one more line\n", "补充.txt", content_type="text/plain")
    assert str(CASE_LIMIT) in problem(full, 413, "payload-too-large")["detail"]
    assert await snapshot(api) == before and staging_leftovers(api) == []
    # Each file is within the single-file limit; the other case has its own allowance.
    assert (await upload(api, other, pdf(60 * KIB, "first"))).status_code == 201
    assert (await upload(api, other, pdf(40 * KIB, "second"))).status_code == 201


ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00\x01\x00\x00\x00" + bytes(4000)
PE = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8"
    + bytes(43)
    + b"\x80\x00\x00\x00"
    + b"\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21This program cannot be run in DOS mode.\r\r\n$"
    + bytes(4000)
)


@pytest.mark.parametrize("content", [ELF, PE], ids=["elf", "windows-pe"])
async def test_an_executable_named_pdf_is_refused_with_415_and_leaves_nothing(api, content):
    dispute = await api.intake()
    before = await snapshot(api)

    refused = await upload(api, dispute, content, "判决书.pdf", content_type="application/pdf")
    body = problem(refused, 415, "unsupported-media-type")
    assert body["detected_media_type"] not in body["allowed_media_types"]
    assert body["detected_media_type"] != "application/pdf"
    assert "application/pdf" in body["allowed_media_types"]

    assert await snapshot(api) == before
    assert staging_leftovers(api) == []
    assert sha(content) not in {p.name for p in stored_files(api)}
    listed = (await api.client.get(docs_url(dispute))).json()
    assert [d["kind"] for d in listed] == ["receipt"]


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


async def test_a_zip_is_an_office_document_only_when_built_as_one(api):
    # Named report.docx: an archive of a program and a script is refused as the zip it is; a
    # package with its content types and main part is the Word document its name says.
    dispute = await api.intake()
    disguised = _zip({"evil.exe": PE, "x.sh": b"#!/bin/sh\nrm -rf /\n"})
    refused = await upload(api, dispute, disguised, "report.docx")
    assert problem(refused, 415, "unsupported-media-type")["detected_media_type"] == "application/zip"
    packed = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>", "run.exe": PE})
    problem(await upload(api, dispute, packed, "report.docx"), 415, "unsupported-media-type")
    word = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})
    accepted = await uploaded(api, dispute, word, "report.docx")
    assert accepted["media_type"] == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    problem(await upload(api, dispute, word, "report.xlsx"), 415, "unsupported-media-type")


# ---- dossier ------------------------------------------------------------------------------------


async def test_the_court_gets_the_dossier_frozen_at_handoff_and_later_documents_marked_late(api):
    dispute = await api.intake()
    note = await uploaded(api, dispute, b"\xe6\x83\x85\xe5\x86\xb5\xe8\xaf\xb4\xe6\x98\x8e\n", "说明.txt")
    dispute = await walk(api, dispute, "accept", "assign", "sign_for")
    body = api.acting("body_mediator", dispute)
    applicant = dispute["parties"][0]["id"]
    evidence = await uploaded(api, dispute, pdf(8 * KIB, "iou"), headers=body, party_id=applicant)
    assert evidence["submitted_by_kind"] == "party" and evidence["submitted_by_party_id"] == applicant
    assert evidence["stage"] == "mediating"
    mistaken = await uploaded(api, dispute, pdf(8 * KIB, "wrong case"), headers=body)
    withdrawn = await withdraw(api, dispute, mistaken, "误传", body)
    assert withdrawn.status_code == 200, withdrawn.text
    dispute = await walk(api, dispute, "agree", "request_confirmation")
    assert dispute["status"] == "confirmation_pending"

    # What was active at the handoff, as the center sees it.
    center_view = (await api.client.get(docs_url(dispute))).json()
    active = [d for d in center_view if d["status"] == "active"]
    assert [d["kind"] for d in active] == ["receipt", "evidence", "evidence", "agreement", "application"]
    assert {note["id"], evidence["id"]} <= {d["id"] for d in active}

    court = api.auth("court")
    response = await api.client.get(f"/v1/disputes/{dispute['id']}/dossier", headers=court)
    assert response.status_code == 200, response.text
    dossier = response.json()
    assert dossier["kind"] == "judicial_confirmation"
    assert dossier["target_id"] == str(api.bodies["court"])
    assert dossier["case_version"] == dispute["version"]
    assert dossier["late_documents"] == []
    assert [(m["document_id"], m["sha256"]) for m in dossier["manifest"]] == [
        (d["id"], d["sha256"]) for d in active
    ]
    assert mistaken["id"] not in {m["document_id"] for m in dossier["manifest"]}
    [application] = [m for m in dossier["manifest"] if m["kind"] == "application"]
    assert application["media_type"] == "text/html"

    # The court downloads everything listed, and it is what the manifest promised.
    for item in dossier["manifest"]:
        got = await api.client.get(docs_url(dispute, item["document_id"], "/content"), headers=court)
        assert got.status_code == 200, item
        assert sha(got.content) == item["sha256"] and len(got.content) == item["size"]
        assert got.headers["etag"] == f'"{item["sha256"]}"'
    court_list = (await api.client.get(docs_url(dispute), headers=court)).json()
    assert [d["id"] for d in court_list] == [m["document_id"] for m in dossier["manifest"]]
    # A document withdrawn before the handoff was not handed over.
    for tail in ("", "/content"):
        hidden = await api.client.get(docs_url(dispute, mistaken, tail), headers=court)
        problem(hidden, 404, "not-found")

    # A document added after the handoff is late: visible, but not part of the frozen dossier.
    late = await uploaded(api, dispute, pdf(4 * KIB, "receipt of payment"), "付款凭证.pdf", headers=body)
    assert late["late"] is True and late["stage"] == "confirmation_pending"
    after = (await api.client.get(f"/v1/disputes/{dispute['id']}/dossier", headers=court)).json()
    assert after["manifest"] == dossier["manifest"]
    assert after["frozen_at"] == dossier["frozen_at"] and after["id"] == dossier["id"]
    assert after["late_documents"] == [late["id"]]
    court_list = (await api.client.get(docs_url(dispute), headers=court)).json()
    assert [(d["id"], d["late"]) for d in court_list][-1] == (late["id"], True)
    assert all(d["late"] is False for d in court_list[:-1])
    assert (await api.client.get(late["href"], headers=court)).content == pdf(4 * KIB, "receipt of payment")


async def test_a_referral_to_arbitration_freezes_a_dossier_with_the_filing_pack(api):
    dispute = await api.intake()
    missing = await api.client.get(f"/v1/disputes/{dispute['id']}/dossier")
    problem(missing, 404, "not-found")
    evidence = await uploaded(api, dispute, pdf(4 * KIB, "contract"))
    dispute = await walk(api, dispute, "accept", "assign", "sign_for", "fail", "refer_arbitration")

    commission = api.auth("arbitration", "commercial_commission")
    dossier = (await api.client.get(f"/v1/disputes/{dispute['id']}/dossier", headers=commission)).json()
    assert dossier["kind"] == "commercial_arbitration"
    assert dossier["target_id"] == str(api.bodies["commercial_commission"])
    assert [m["kind"] for m in dossier["manifest"]] == ["receipt", "evidence", "filing_pack"]
    assert dossier["manifest"][1]["document_id"] == evidence["id"]
    assert dossier["manifest"][1]["sha256"] == evidence["sha256"]
    pack = dossier["manifest"][2]
    got = await api.client.get(docs_url(dispute, pack["document_id"], "/content"), headers=commission)
    assert sha(got.content) == pack["sha256"]
    assert "移送仲裁函" in got.content.decode()


# ---- scope and audit ----------------------------------------------------------------------------

OUTSIDERS = [("court", "other_court"), ("body_mediator", "town"), ("clerk", "other_center")]


async def test_outsiders_cannot_see_documents_and_their_download_attempts_are_audited(api):
    dispute = await api.drive("confirmation_pending")
    body = api.acting("body_mediator", dispute)
    evidence = await uploaded(api, dispute, pdf(4 * KIB, "evidence"), headers=body)
    listed = (await api.client.get(docs_url(dispute), headers=api.auth("court"))).json()
    assert evidence["id"] in {d["id"] for d in listed}
    before = await snapshot(api)

    for role, org in OUTSIDERS:
        outsider = api.auth(role, org)
        for url in (
            docs_url(dispute),
            docs_url(dispute, evidence),
            f"/v1/disputes/{dispute['id']}/dossier",
        ):
            problem(await api.client.get(url, headers=outsider), 404, "not-found")
        for _ in range(2):
            refused = await api.client.get(evidence["href"], headers=outsider)
            problem(refused, 404, "not-found")
            assert refused.content.find(b"%PDF") == -1
        # Nor can they add to it, or withdraw from it.
        problem(await upload(api, dispute, pdf(KIB, role), headers=outsider), 404, "not-found")
        problem(await withdraw(api, dispute, evidence, "不是我的", outsider), 404, "not-found")
    assert await snapshot(api) == before

    denied = await audit_rows(api, AuditRecord.action == "download_document", AuditRecord.outcome == "denied")
    assert [(r.object_type, r.object_id, r.status_code) for r in denied] == [
        ("document", evidence["id"], 404)
    ] * (2 * len(OUTSIDERS))
    expected_actors = [
        ("api_key", "court", await api_key_id(api, "court", "other_court"), str(api.bodies["other_court"])),
        ("api_key", "body_mediator", await api_key_id(api, "body_mediator", "town"), str(api.bodies["town"])),
        (
            "user",
            "clerk",
            str(api.users[("clerk", api.bodies["other_center"])]),
            str(api.bodies["other_center"]),
        ),
    ]
    actors = [(r.actor_kind, r.actor_role, r.actor_id, r.organisation_id) for r in denied]
    assert actors == [actor for actor in expected_actors for _ in range(2)]
    assert all(r.details["path"] == evidence["href"] for r in denied)


async def test_downloads_of_personal_documents_are_audited(api):
    dispute = await api.intake()
    personal = await uploaded(api, dispute, pdf(2 * KIB, "id card"), kind="identity_document")
    plain = await uploaded(
        api, dispute, b"map of the wall\n", "location.txt", kind="other", content_type="text/plain"
    )

    assert (await api.client.get(personal["href"])).status_code == 200
    assert (await api.client.get(plain["href"])).status_code == 200

    reads = await audit_rows(api, AuditRecord.action == "document.download")
    assert [(r.object_type, r.object_id, r.outcome, r.status_code) for r in reads] == [
        ("document", personal["id"], "success", 200)
    ]
    clerk = str(api.users[("clerk", api.bodies["center"])])
    assert (reads[0].actor_kind, reads[0].actor_role, reads[0].actor_id) == ("user", "clerk", clerk)
    assert reads[0].organisation_id == str(api.bodies["center"])


async def test_an_identity_document_is_not_served_to_a_role_without_pii_read(api):
    """A supervisor sees ID numbers masked in the case; the scan of the ID card itself would undo
    that (个人信息保护法 Art. 6, 51: no more personal data than the task needs). The refusal is
    audited; the evidence stays readable, and the clerk still gets the scan."""
    dispute = await api.intake()
    scan = await uploaded(api, dispute, pdf(2 * KIB, "id card 330681199005170013"), kind="identity_document")
    evidence = await uploaded(api, dispute, pdf(2 * KIB, "iou"), kind="evidence")
    supervisor = api.auth("supervisor")
    for headers in (supervisor, {**supervisor, "Range": "bytes=0-9"}):
        refused = problem(await api.client.get(scan["href"], headers=headers), 403, "forbidden")
        assert refused["code"] == "pii_read_required"
        assert b"330681" not in (await api.client.get(scan["href"], headers=headers)).content
    listed = (await api.client.get(docs_url(dispute), headers=supervisor)).json()
    assert scan["id"] in {d["id"] for d in listed}  # that it exists is no secret
    assert (await api.client.get(evidence["href"], headers=supervisor)).status_code == 200
    assert (await api.client.get(scan["href"])).status_code == 200  # the clerk holds pii:read
    denied = await audit_rows(api, AuditRecord.action == "download_document", AuditRecord.outcome == "denied")
    assert [(r.object_id, r.status_code, r.actor_role) for r in denied] == [
        (scan["id"], 403, "supervisor")
    ] * 4


async def test_a_role_without_cases_read_is_forbidden(api):
    dispute = await api.intake()
    evidence = await uploaded(api, dispute, pdf(2 * KIB, "evidence"))
    auditor = api.auth("auditor")
    for url in (
        docs_url(dispute),
        docs_url(dispute, evidence),
        evidence["href"],
        f"/v1/disputes/{dispute['id']}/dossier",
    ):
        problem(await api.client.get(url, headers=auditor), 403, "forbidden")
    problem(await upload(api, dispute, pdf(KIB, "auditor"), headers=auditor), 403, "forbidden")
    refused = await audit_rows(api, AuditRecord.action == "download_document")
    assert [(r.outcome, r.status_code, r.actor_role) for r in refused] == [("denied", 403, "auditor")]


async def test_an_upload_to_a_case_outside_the_callers_scope_is_404(api):
    mine = await api.intake()
    theirs = await api.intake(as_="other_center", region_code="330604100201")
    before = await snapshot(api)
    problem(await upload(api, theirs, pdf(KIB, "stray")), 404, "not-found")
    problem(await upload(api, {"id": str(uuid.uuid4())}, pdf(KIB, "stray")), 404, "not-found")
    # A body sees only the cases assigned to it.
    problem(await upload(api, mine, pdf(KIB, "stray"), headers=api.auth("body_mediator")), 404, "not-found")
    assert await snapshot(api) == before and staging_leftovers(api) == []


async def test_a_party_of_another_case_is_refused_with_422(api):
    dispute, other = await api.intake(), await api.intake()
    before = await snapshot(api)
    for party_id in (other["parties"][0]["id"], str(uuid.uuid4())):
        refused = await upload(api, dispute, pdf(KIB, "party"), party_id=party_id)
        body = problem(refused, 422, "validation-error")
        assert [e["field"] for e in body["errors"]] == ["party_id"]
    assert await snapshot(api) == before and staging_leftovers(api) == []
    own = await uploaded(api, dispute, pdf(KIB, "party"), party_id=dispute["parties"][1]["id"])
    assert own["submitted_by_party_id"] == dispute["parties"][1]["id"]


# ---- withdrawal ---------------------------------------------------------------------------------


async def test_a_withdrawn_document_is_kept_with_its_reason_and_cannot_be_withdrawn_twice(api):
    dispute = await api.intake()
    content = pdf(3 * KIB, "withdraw me")
    document = await uploaded(api, dispute, content)

    response = await withdraw(api, dispute, document, "传错了文件")
    assert response.status_code == 200, response.text
    withdrawn = response.json()
    assert withdrawn["status"] == "withdrawn" and withdrawn["withdrawn_reason"] == "传错了文件"
    assert withdrawn["withdrawn_at"] is not None
    assert withdrawn["sha256"] == document["sha256"]

    # Kept: still listed, still readable, still downloadable, still stored.
    assert (await api.client.get(docs_url(dispute, document))).json() == withdrawn
    listed = {d["id"]: d for d in (await api.client.get(docs_url(dispute))).json()}
    assert listed[document["id"]]["status"] == "withdrawn"
    assert (await api.client.get(document["href"])).content == content
    assert await count(api, Document, Document.id == uuid.UUID(document["id"])) == 1

    again = await withdraw(api, dispute, document, "再撤一次")
    problem(again, 409, "conflict")
    assert (await api.client.get(docs_url(dispute, document))).json()["withdrawn_reason"] == "传错了文件"


async def test_only_the_submitting_organisation_or_the_center_withdraws_a_document(api):
    """A court reads the body's evidence in its dossier and a body what the center filed; neither
    takes it back (403, nothing changes, the refusal is audited). The body that submitted it, any of
    its credentials, and the center's staff may."""
    dispute = await api.drive("mediating")
    body = api.acting("body_mediator", dispute)
    evidence = await uploaded(api, dispute, pdf(KIB, "body evidence"), headers=body)
    filed = await uploaded(api, dispute, pdf(KIB, "center filing"), headers=api.auth("clerk"))
    spare = await uploaded(api, dispute, pdf(KIB, "spare"), headers=body)
    dispute = await api.step(await api.step(await api.get(dispute), "fail"), "refer_litigation")
    court = api.auth("court", uuid.UUID(str(dispute["handoff_target_id"])))
    assert evidence["id"] in {
        d["id"] for d in (await api.client.get(docs_url(dispute), headers=court)).json()
    }

    for document, headers, request_id in (
        (evidence, court, "court-withdraws"),
        (filed, body, "body-withdraws"),
    ):
        refused = await withdraw(
            api, dispute, document, "不是本单位提交的", {**headers, "X-Request-ID": request_id}
        )
        assert problem(refused, 403, "forbidden")["code"] == "not_submitter"
        assert (await api.client.get(docs_url(dispute, document))).json()["status"] == "active"
        (denied,) = [r for r in await _audit(api) if r.request_id == request_id]
        assert (denied.outcome, denied.status_code, denied.object_id) == ("denied", 403, document["id"])

    # The body's administrator takes back what its mediator handed in; the center takes back anything.
    own = await withdraw(api, dispute, spare, "重复提交", api.acting("body_admin", dispute))
    assert own.status_code == 200 and own.json()["status"] == "withdrawn"
    by_center = await withdraw(api, dispute, evidence, "当事人要求撤回", api.auth("clerk"))
    assert by_center.status_code == 200 and by_center.json()["status"] == "withdrawn"


async def _audit(api: Any) -> list[AuditRecord]:
    async with api.app.state.db.reader() as session:
        return list((await session.scalars(select(AuditRecord).order_by(AuditRecord.seq))).all())


# ---- file names ---------------------------------------------------------------------------------


async def test_a_chinese_file_name_survives_upload_and_download(api):
    dispute = await api.intake()
    content = pdf(2 * KIB, "iou")
    document = await uploaded(api, dispute, content, CHINESE_NAME)
    assert document["original_name"] == CHINESE_NAME

    download = await api.client.get(document["href"])
    assert download.content == content
    disposition = download.headers["content-disposition"]
    disposition.encode("ascii")  # header values on the wire are ASCII (RFC 9110 §5.5)
    assert disposition.split(";")[0].strip() == "attachment"
    match = re.search(r"filename\*\s*=\s*([^;]+)", disposition)
    assert match, disposition
    charset, language, value = match.group(1).strip().split("'", 2)
    assert charset.lower() == "utf-8" and language == ""
    assert EXT_VALUE.match(value), value  # RFC 5987: only attr-chars and %XX escapes
    assert unquote(value, encoding="utf-8", errors="strict") == CHINESE_NAME
    listed = (await api.client.get(docs_url(dispute))).json()
    assert CHINESE_NAME in {d["original_name"] for d in listed}


# ---- memory -------------------------------------------------------------------------------------

BIG = 50 * MIB
CHUNK = 64 * KIB


@pytest.mark.parametrize("overrides", [{"document_max_bytes": 60 * MIB}], ids=["60MiB"])
async def test_a_50_mib_upload_streams_without_holding_the_file_in_memory(api):
    dispute = await api.intake()
    boundary = f"mediation-{uuid.uuid4().hex}"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nevidence\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="scan.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    digest = hashlib.sha256()
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield head
        for index in range(BIG // CHUNK):
            chunk = (PDF_HEAD if index == 0 else b"") + f"% page {index}\n".encode()
            chunk = chunk.ljust(CHUNK, b"\n")
            digest.update(chunk)
            sent += len(chunk)
            yield chunk
        yield tail

    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        response = await api.client.post(
            docs_url(dispute),
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()

    assert response.status_code == 201, response.text
    assert sent == BIG
    assert peak < 16 * MIB, f"peak {peak / MIB:.1f} MiB while uploading {BIG / MIB:.0f} MiB"
    document = response.json()
    assert document["size"] == BIG and document["sha256"] == digest.hexdigest()
    assert document["media_type"] == "application/pdf"
    [stored] = [p for p in stored_files(api) if p.name == document["sha256"]]
    assert stored.stat().st_size == BIG
    on_disk = hashlib.sha256()
    with stored.open("rb") as handle:
        while block := handle.read(MIB):
            on_disk.update(block)
    assert on_disk.hexdigest() == document["sha256"]
    assert staging_leftovers(api) == []


# ---- concurrency --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides", [{"document_max_bytes": 4 * MIB, "case_document_max_bytes": 5 * MIB}], ids=["5MiB"]
)
async def test_concurrent_uploads_cannot_together_pass_the_case_total(api):
    dispute = await api.intake()
    responses = await asyncio.gather(*(upload(api, dispute, pdf(3 * MIB, f"copy {i}")) for i in range(3)))
    assert sorted(r.status_code for r in responses) == [201, 413, 413]
    for refused in (r for r in responses if r.status_code == 413):
        problem(refused, 413, "payload-too-large")
    uploads = [d for d in (await api.client.get(docs_url(dispute))).json() if not d["generated"]]
    assert sum(d["size"] for d in uploads) == 3 * MIB
    assert staging_leftovers(api) == []


async def test_an_upload_racing_the_handoff_is_either_in_the_dossier_or_late(api):
    """Never neither: a document the court could not see at all."""
    for round_ in range(3):
        dispute = await api.drive("agreement_signed")
        body = api.acting("body_mediator", dispute)
        added, handed = await asyncio.gather(
            upload(api, dispute, pdf(2 * MIB, f"race {round_}"), headers=body),
            api.act(dispute, "request_confirmation"),
        )
        if handed.status_code == 412:
            # The upload committed first and moved the case's version on (it is work on the case):
            # the request, made again on the case as it now is, hands the document over.
            handed = await api.act(await api.get(dispute), "request_confirmation")
        assert (added.status_code, handed.status_code) == (201, 200), (added.text, handed.text)
        document = added.json()
        court = api.auth("court")
        dossier = (await api.client.get(f"/v1/disputes/{dispute['id']}/dossier", headers=court)).json()
        in_manifest = document["id"] in {m["document_id"] for m in dossier["manifest"]}
        seen = await api.client.get(docs_url(dispute, document), headers=court)
        late = seen.status_code == 200 and seen.json()["late"] is True
        assert in_manifest != late, (in_manifest, late)
        assert (document["id"] in dossier["late_documents"]) == late


async def test_names_lose_client_folders_and_empty_files_are_refused(api):
    dispute = await api.intake()
    url = f"/v1/disputes/{dispute['id']}/documents"
    response = await api.client.post(
        url, files={"file": ("C:\\扫描件\\借条 (1).pdf", b"%PDF-1.4 x", "application/pdf")}
    )
    assert response.status_code == 201, response.text
    assert response.json()["original_name"] == "借条 (1).pdf"
    download = await api.client.get(response.json()["href"])
    disposition = download.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')  # an ASCII fallback for old clients
    assert "filename*=UTF-8''%E5%80%9F%E6%9D%A1%20%281%29.pdf" in disposition
    empty = await api.client.post(url, files={"file": ("空.pdf", b"", "application/pdf")})
    assert empty.status_code == 422 and empty.json()["errors"][0]["code"] == "empty"
    api.app.state.settings.document_max_bytes = 1024
    english = await api.client.post(
        url,
        files={"file": ("big.pdf", b"%PDF-1.4" + b"0" * 2048, "application/pdf")},
        headers={"Accept-Language": "en"},
    )
    assert english.status_code == 413
    assert english.json()["detail"] == "The file exceeds 1024 bytes"


async def test_a_caller_without_rights_is_refused_before_the_body_is_read(api):
    dispute = await api.intake()
    received = 0

    async def body():
        nonlocal received
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.pdf"\r\n\r\n%PDF-1.4 '
        for _ in range(64):
            received += 1
            yield b"0" * 65536
        yield b"\r\n--b--\r\n"

    response = await api.client.post(
        f"/v1/disputes/{dispute['id']}/documents",
        content=body(),
        headers={**api.auth("court", "other_court"), "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 404
    assert received < 64, "the 4 MiB body should not have been read for a refused caller"
    missing = await api.client.post(
        f"/v1/disputes/{dispute['id']}/documents", data={"kind": "evidence"}, files={"other": ("a.txt", b"x")}
    )
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "file"
    bad_kind = await api.client.post(
        f"/v1/disputes/{dispute['id']}/documents", data={"kind": "nonsense"}, files={"file": ("a.txt", b"x")}
    )
    assert bad_kind.status_code == 422 and bad_kind.json()["errors"][0]["field"] == "kind"


async def test_an_upload_retried_with_its_idempotency_key_makes_one_document(api: Any) -> None:
    """A mediation organisation's system that retries an upload three times: one document, and the
    same answer each time; the key with another file is refused."""
    dispute = await api.intake()
    content = pdf(20_000, "retried")
    key = {"Idempotency-Key": "upload-retried-0001"}
    answers = [await upload(api, dispute, content, headers=key, note="借条原件扫描") for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert [a.headers.get("idempotent-replayed") for a in answers] == [None, "true", "true"]
    assert len({a.headers["location"] for a in answers}) == 1
    listed = await api.client.get(f"/v1/disputes/{dispute['id']}/documents")
    assert [d["id"] for d in listed.json() if d["kind"] == "evidence"] == [answers[0].json()["id"]]
    other = await upload(api, dispute, pdf(20_000, "another"), headers=key, note="借条原件扫描")
    problem(other, 422, "idempotency-key-mismatch")
    changed_note = await upload(api, dispute, content, headers=key, note="另一说明")
    problem(changed_note, 422, "idempotency-key-mismatch")
