"""Documents of a case as the people downloading them meet them, over real HTTP on SQLite and
PostgreSQL: the name a download is saved under."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import pytest

from tests.test_documents import pdf, uploaded


def saved_as(disposition: str) -> tuple[str, str]:
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
    fallback, real = saved_as(download.headers["content-disposition"])
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
    assert saved_as(download.headers["content-disposition"])[1] == name


async def test_a_generated_page_keeps_its_name(api: Any) -> None:
    """The receipt the service prints at intake is a page, saved as one."""
    dispute = await api.intake()
    listed = (await api.client.get(f"/v1/disputes/{dispute['id']}/documents")).json()
    pages = [d for d in listed if d["generated"]]
    assert pages, listed
    for page in pages:
        download = await api.client.get(page["href"])
        assert saved_as(download.headers["content-disposition"])[1] == page["original_name"]
        assert page["original_name"].endswith(".html")


MINUTES = "调解笔录\r\n申请人: 双方同意分期还款, 每月 3000 元。\r\n"


@pytest.mark.parametrize(
    ("encoded", "charset"),
    [
        (MINUTES.encode("gbk"), "gb18030"),
        (MINUTES.encode("gb18030") + "𠮷".encode("gb18030"), "gb18030"),
        (MINUTES.encode("utf-16"), "utf-16"),
        (b"\xfe\xff" + MINUTES.encode("utf-16-be"), "utf-16"),
        (MINUTES.encode("utf-8"), "utf-8"),
        ("\ufeff".encode() + MINUTES.encode("utf-8"), "utf-8"),
    ],
    ids=["gbk", "gb18030", "utf-16le-bom", "utf-16be-bom", "utf-8", "utf-8-bom"],
)
async def test_plain_text_as_a_chinese_machine_writes_it_is_accepted_and_served_as_such(
    api: Any, encoded: bytes, charset: str
) -> None:
    """Notepad on a Chinese Windows saves "ANSI" as GBK (the default before 2019) and "Unicode" as
    UTF-16 with a byte order mark: a party's typed statement in either was refused as a file of
    an unknown type (415 application/octet-stream). It is plain text, kept byte for byte and
    served with the character set it is written in."""
    dispute = await api.intake()
    document = await uploaded(api, dispute, encoded, "笔录.txt", content_type="text/plain")
    assert document["media_type"] == "text/plain"
    download = await api.client.get(document["href"])
    assert download.status_code == 200 and download.content == encoded
    assert download.headers["content-type"] == f"text/plain; charset={charset}"
    assert MINUTES in download.content.decode(charset).lstrip("\ufeff")


@pytest.mark.parametrize(
    "content",
    [bytes(range(0x80, 0x100)) * 8, b"\x81\x7f" * 100, b"\xff\xfe\x00\xd8" * 100],
    ids=["high-bytes", "broken-gb18030", "broken-utf-16"],
)
async def test_bytes_that_are_no_text_in_any_of_these_stay_refused(api: Any, content: bytes) -> None:
    dispute = await api.intake()
    refused = await api.client.post(
        f"/v1/disputes/{dispute['id']}/documents", files={"file": ("x.txt", content, "text/plain")}
    )
    assert refused.status_code == 415, refused.text
