"""Documents of a case as the people downloading them meet them, over real HTTP on SQLite and
PostgreSQL: the name a download is saved under."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import pytest

from tests.test_documents import pdf, uploaded


def _saved_as(disposition: str) -> tuple[str, str]:
    """The (ASCII fallback, real) names a browser saves a download under."""
    fallback = re.search(r'filename="([^"]*)"', disposition)
    extended = re.search(r"filename\*=UTF-8''([^;]+)", disposition)
    assert fallback and extended, disposition
    return fallback.group(1), unquote(extended.group(1), errors="strict")


@pytest.mark.parametrize(
    ("name", "content", "saved"),
    [
        ("证据.bat", b"@echo off\r\ndel /q %USERPROFILE%\\Documents\\*\r\n", "证据.bat.txt"),
        (
            "聊天记录.html",
            b"<html><script>location='https://example.test/'</script></html>",
            "聊天记录.html.txt",
        ),
        ("照片.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "照片.svg.txt"),
        ("说明.vbs", b'CreateObject("WScript.Shell").Run "cmd"\r\n', "说明.vbs.txt"),
        ("欠条", pdf(1024, "no suffix"), "欠条.pdf"),
        ("scan.png", pdf(1024, "a pdf named png"), "scan.png.pdf"),
    ],
    ids=["bat", "html", "svg", "vbs", "no-extension", "pdf-named-png"],
)
async def test_a_download_is_saved_under_a_name_that_fits_what_it_is(
    api: Any, name: str, content: bytes, saved: str
) -> None:
    """A script or page handed in as evidence is plain text by its content, and accepted as such;
    saved under its own name (证据.bat, 聊天记录.html) the clerk who opens it from the downloads
    folder runs it. The download is saved under a name whose extension is the type detected at
    upload; the record keeps the name it was handed in under."""
    dispute = await api.intake()
    document = await uploaded(api, dispute, content, name, content_type="application/octet-stream")
    assert document["original_name"] == name
    download = await api.client.get(document["href"])
    assert download.status_code == 200 and download.content == content
    fallback, real = _saved_as(download.headers["content-disposition"])
    assert real == saved
    assert fallback.endswith(saved[saved.rfind(".") :])


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("欠条（张三）2026.pdf", pdf(1024, "iou")),
        ("收据.PDF", pdf(1024, "upper")),
        ("笔录.txt", "调解笔录: 双方同意".encode()),
        ("流水.csv", b"date,amount\n2026-05-01,3000\n"),
    ],
    ids=["pdf", "upper-case-pdf", "txt", "csv"],
)
async def test_a_download_whose_name_fits_its_type_keeps_its_name(
    api: Any, name: str, content: bytes
) -> None:
    dispute = await api.intake()
    document = await uploaded(api, dispute, content, name)
    download = await api.client.get(document["href"])
    assert _saved_as(download.headers["content-disposition"])[1] == name


async def test_a_generated_page_keeps_its_name(api: Any) -> None:
    """The receipt the service prints at intake is a page, saved as one."""
    dispute = await api.intake()
    listed = (await api.client.get(f"/v1/disputes/{dispute['id']}/documents")).json()
    pages = [d for d in listed if d["generated"]]
    assert pages, listed
    for page in pages:
        download = await api.client.get(page["href"])
        assert _saved_as(download.headers["content-disposition"])[1] == page["original_name"]
        assert page["original_name"].endswith(".html")
