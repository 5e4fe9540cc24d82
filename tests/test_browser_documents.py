"""The case page's documents (案件材料) in a real browser: Debian's Chromium driven by Playwright,
against the service run as a user runs it, on SQLite and on PostgreSQL (the fixtures of
tests/test_browser.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from tests.test_browser import (  # noqa: F401 (fixtures)
    api_token,
    browser,
    database_of,
    live_server,
    page,
    shot,
    sign_in,
)

# A browser of its own and a served app; its waits are measured in seconds.
pytestmark = pytest.mark.serial

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + b"% scanned application form\n" * 200


def test_a_clerk_uploads_a_scan_through_the_case_page_and_sees_it_listed(
    page: object,  # noqa: F811
    live_server: str,  # noqa: F811
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    scan = tmp_path / "调解申请书（扫描件）.pdf"
    scan.write_bytes(PDF)
    sign_in(page, "clerk")
    page.goto("/queue?tab=all")  # type: ignore[attr-defined]
    page.locator("#case-list a").first.click()  # type: ignore[attr-defined]
    case_url = page.url  # type: ignore[attr-defined]
    case_id = case_url.rsplit("/", 1)[-1].split("?")[0]

    card = page.locator("#documents")  # type: ignore[attr-defined]
    card.locator("#upload-document summary").click()
    form = card.locator("#upload-document form")
    form.locator("input[type=file][name=file]").set_input_files(str(scan))
    form.locator("select[name=kind]").select_option(label="证据材料")
    form.locator("textarea[name=note]").fill("窗口当场扫描")
    with page.expect_navigation():  # type: ignore[attr-defined]
        form.locator("button[type=submit]").click()
    assert "done=document_added" in page.url, page.locator(".error").all_inner_texts()  # type: ignore[attr-defined]
    assert "已上传材料" in page.locator("#flash").inner_text()  # type: ignore[attr-defined]

    token = api_token(live_server, "clerk")
    listed = httpx.get(
        f"{live_server}/v1/disputes/{case_id}/documents",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    [document] = [d for d in listed if d["original_name"] == scan.name]
    assert document["kind"] == "evidence" and document["sha256"] == hashlib.sha256(PDF).hexdigest()
    row = page.locator(f"#documents tr[data-document='{document['id']}']")  # type: ignore[attr-defined]
    assert "证据材料" in row.inner_text() and scan.name in row.inner_text()
    shot(page, "case-documents", database_of(request))

    # The link downloads the file through the page's own route, as the API serves it.
    with page.expect_download() as download:  # type: ignore[attr-defined]
        row.locator("a[download]").click()
    saved = download.value
    assert saved.suggested_filename == scan.name
    assert Path(saved.path()).read_bytes() == PDF

    # Withdrawn through the row's form, which carries the case's version as the API's If-Match.
    row.locator("details.withdraw summary").click()
    form = row.locator("details.withdraw form")
    # A withdrawal cannot be undone: the page asks first, and the clerk confirms.
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))  # type: ignore[attr-defined]
    form.locator("[name=reason]").fill("重复上传")
    with page.expect_navigation():  # type: ignore[attr-defined]
        form.locator("button[type=submit]").click()
    assert "done=document_withdrawn" in page.url, page.locator(".error").all_inner_texts()  # type: ignore[attr-defined]
    assert asked and "撤回无法取消" in asked[0]
    row = page.locator(f"#documents tr[data-document='{document['id']}']")  # type: ignore[attr-defined]
    assert "已撤回" in row.inner_text() and "重复上传" in row.inner_text()
    withdrawn = httpx.get(
        f"{live_server}/v1/disputes/{case_id}/documents/{document['id']}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    assert (withdrawn["status"], withdrawn["withdrawn_reason"]) == ("withdrawn", "重复上传")
