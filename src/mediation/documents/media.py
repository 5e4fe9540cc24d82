"""What a file is, judged by its content rather than by its name or the client's claim."""

from __future__ import annotations

import codecs
import os
import re
import struct
import zipfile
from pathlib import Path
from typing import BinaryIO

import filetype

from mediation.documents.storage import HEAD_BYTES

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
TEXT = "text/plain"
# Pages the service renders and keeps among a case's documents (the agreement, a dossier index).
GENERATED_PAGE = "text/html"

# Evidence people bring to a window: scans and photos, office documents, plain text.
ALLOWED = frozenset(
    {
        PDF,
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/heic",
        "image/tiff",
        "image/bmp",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        DOCX,
        XLSX,
        PPTX,
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/rtf",
        TEXT,
    }
)
# The extensions a file of each type is saved under, the first given when its name has none of
# them. A name is the submitter's say, the type the content's: a script or a page handed in is
# plain text by its content (accepted), and saved as 证据.bat or 聊天记录.html it runs when the
# clerk opens it from the downloads folder; a PDF named scan.png opens in nothing.
SUFFIXES: dict[str, tuple[str, ...]] = {
    PDF: (".pdf",),
    "image/jpeg": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "image/png": (".png",),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "image/heic": (".heic", ".heif"),
    "image/tiff": (".tif", ".tiff"),
    "image/bmp": (".bmp",),
    # Kingsoft's own names for its compound files; WPS Office opens them as what they are.
    "application/msword": (".doc", ".dot", ".wps"),
    "application/vnd.ms-excel": (".xls", ".xlt", ".et"),
    "application/vnd.ms-powerpoint": (".ppt", ".pps", ".dps"),
    DOCX: (".docx",),
    XLSX: (".xlsx",),
    PPTX: (".pptx",),
    "application/vnd.oasis.opendocument.text": (".odt",),
    "application/vnd.oasis.opendocument.spreadsheet": (".ods",),
    "application/rtf": (".rtf",),
    TEXT: (".txt", ".text", ".log", ".csv"),
    GENERATED_PAGE: (".html", ".htm"),
}


def saved_name(name: str, media_type: str) -> str:
    """The name a download of `media_type` is saved under: `name` when its extension is one of the
    type's, else `name` with the type's extension added (证据.bat -> 证据.bat.txt), so what the
    file is shows, and decides what opens it, on the machine that saved it."""
    suffixes = SUFFIXES.get(media_type)
    dot = name.rfind(".")
    if suffixes is None or (dot >= 0 and name[dot:].lower() in suffixes):
        return name
    return name + suffixes[0]


# Office Open XML files are zip archives; which one it is shows in the archive, often past the
# first bytes. A zip is the office type its name claims only when it is built as one: the package's
# content types and that type's main part (ECMA-376 Part 2), and nothing runnable packed beside
# them. Any other zip is a zip, which is refused.
ZIP_BY_EXTENSION = {".docx": DOCX, ".xlsx": XLSX, ".pptx": PPTX}
MAIN_PART = {DOCX: "word/document.xml", XLSX: "xl/workbook.xml", PPTX: "ppt/presentation.xml"}
RUNNABLE = (
    ".exe",
    ".dll",
    ".com",
    ".scr",
    ".bat",
    ".cmd",
    ".ps1",
    ".sh",
    ".js",
    ".jse",
    ".vbs",
    ".jar",
    ".msi",
)


def detect(head: bytes, filename: str, path: Path | None = None) -> str:
    kind = filetype.guess(head)
    if kind is not None:
        mime = str(kind.mime)
        if mime == "application/zip" or mime in MAIN_PART:
            # The sniffer may name an office type from the first entries alone: the package decides.
            suffix = filename[filename.rfind(".") :].lower() if "." in filename else ""
            claimed = ZIP_BY_EXTENSION.get(suffix)
            if claimed is not None and path is not None and _office_package(path, claimed):
                return claimed
            return "application/zip"
        return mime
    if head and text_charset(head) is not None and (path is None or text_throughout(path)):
        return TEXT
    return "application/octet-stream"


_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Control characters no typed text holds (tab, line and page breaks, and the end-of-file mark old
# DOS tools wrote are text): bytes that decode as GB 18030 or UTF-16 but hold these are not text.
_NOT_IN_TEXT = re.compile("[\x00-\x08\x0e-\x19\x1b-\x1f\x7f]")


def text_charset(head: bytes) -> str | None:
    """The character set the sample `head` is plain text in, or None when it is no text: UTF-8;
    UTF-16 with its byte order mark (what Notepad saves as "Unicode"); GB 18030, of which GBK and
    GB 2312 are parts (what Notepad on a Chinese Windows saves as "ANSI", its default before 2019)."""
    if head.startswith(_UTF16_BOMS):
        text = _decoded(head, "utf-16")
        return "utf-16" if text is not None and not _NOT_IN_TEXT.search(text) else None
    if b"\x00" in head:
        return None
    if _decoded(head, "utf-8") is not None:
        return "utf-8"
    text = _decoded(head, "gb18030")
    return "gb18030" if text is not None and not _NOT_IN_TEXT.search(text) else None


# How much of a text file its character set is judged by: all of it, up to the largest a document
# may be by default (`document_max_bytes`); beyond, the first this many bytes.
CHARSET_SAMPLE_BYTES = 20 * 1024 * 1024
_CHUNK = 1024 * 1024


def file_charset(path: Path) -> str:
    """The character set the text file at `path` is written in. The first 8 KiB (what `detect`
    reads) may be all ASCII, which UTF-8 and GB 18030 write alike, in a GBK file whose first Chinese
    character comes later (a log or a CSV export with a long header): judged by them, it was served
    as UTF-8 and its Chinese was unreadable. When they are all ASCII the whole file is judged: UTF-8
    if all of it decodes as UTF-8, GB 18030 if all of it decodes as that, else UTF-8. Otherwise the
    first bytes tell (a byte order mark, or characters only one of them decodes), and the rest of
    the file is not read."""
    with path.open("rb") as file:
        head = file.read(HEAD_BYTES)
        if not head.isascii():
            return text_charset(head) or "utf-8"
        for encoding in ("utf-8", "gb18030"):
            file.seek(0)
            if _whole_decodes(file, encoding):
                return encoding
    return "utf-8"


def text_throughout(path: Path) -> bool:
    """Whether the whole file at `path` is text, judged as `text_charset` judges a sample: UTF-16
    when it starts with a byte order mark, else UTF-8 or GB 18030. What the first 8 KiB (all
    `detect` reads) say is not enough: a program or an image behind a page of text would be kept,
    and served, as plain text. Read in chunks, never whole; the upload's size limit bounds it, and
    only a file whose first bytes are text is read (a PDF or an image is known by those)."""
    with path.open("rb") as file:
        encodings = ("utf-16",) if file.read(2) in _UTF16_BOMS else ("utf-8", "gb18030")
        for encoding in encodings:
            file.seek(0)
            if _whole_decodes(file, encoding, limit=None):
                return True
    return False


def _whole_decodes(file: BinaryIO, encoding: str, limit: int | None = CHARSET_SAMPLE_BYTES) -> bool:
    """Whether what is left of `file` is text in `encoding`, up to `limit` bytes (None: to its end)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    left = limit
    try:
        while left is None or left > 0:
            chunk = file.read(_CHUNK if left is None else min(_CHUNK, left))
            if not chunk:
                decoder.decode(b"", final=True)
                return True
            if left is not None:
                left -= len(chunk)
            text = decoder.decode(chunk)
            # As in `text_charset`: a NUL is in no UTF-8 text typed; the other control characters
            # tell GB 18030 and UTF-16, which decode most byte sequences, from what is no text.
            if ("\x00" in text) if encoding == "utf-8" else _NOT_IN_TEXT.search(text):
                return False
    except UnicodeDecodeError:
        return False
    return True  # the sample ended, possibly inside a character: what was read is valid


def _decoded(head: bytes, encoding: str) -> str | None:
    try:
        return head.decode(encoding)
    except UnicodeDecodeError as exc:
        # The sample may end inside a character (of up to four bytes in each of these).
        if exc.start < len(head) - 3:
            return None
        return head[: exc.start].decode(encoding, errors="replace")


# An office document has tens, a large workbook a few thousand parts. The archive's list is read
# whole into memory (some 400 bytes an entry), so a zip of half a million tiny entries, a few MiB
# on disk, would cost hundreds of MiB for each upload: it is refused from its end record first.
MAX_PACKAGE_ENTRIES = 5000
MAX_DIRECTORY_BYTES = 1024 * 1024  # the central directory the list is read from

_END = struct.Struct("<4s4H2LH")  # end of central directory record (APPNOTE 4.3.16)
_END64_LOCATOR = struct.Struct("<4sLQL")  # zip64 end of central directory locator (4.3.15)
_END64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory record (4.3.14)


def _office_package(path: Path, media_type: str) -> bool:
    try:
        with path.open("rb") as file:
            if not _directory_is_small(file):
                return False
            with zipfile.ZipFile(file) as archive:
                names = archive.namelist()
    except Exception:
        # Whatever the archive library cannot read (a broken archive, a version or method it does
        # not know) is not an office document: refused like any other zip.
        return False
    if len(names) > MAX_PACKAGE_ENTRIES:
        return False
    listed = set(names)
    if "[Content_Types].xml" not in listed or MAIN_PART[media_type] not in listed:
        return False
    return not any(name.lower().endswith(RUNNABLE) for name in names)


def _directory_is_small(file: BinaryIO) -> bool:
    """Whether the central directory, as the end record states it, has few entries and bytes.

    The end record is found where the archive library looks for it (the last 22 bytes, else the
    last signature within the 64 KiB a comment may take), and the zip64 one just before its
    locator; the library reads the bytes stated there, so bounding them bounds the list it builds."""
    file.seek(0, os.SEEK_END)
    start = max(0, file.tell() - _END.size - (1 << 16))
    file.seek(start)
    tail = file.read()
    at = len(tail) - _END.size
    if at < 0 or tail[at : at + 4] != b"PK\x05\x06" or tail[-2:] != b"\0\0":
        at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _END.size:
        return False
    entries, directory = _END.unpack_from(tail, at)[4:6]
    end = start + at
    if end >= _END64_LOCATOR.size + _END64.size:
        file.seek(end - _END64_LOCATOR.size - _END64.size)
        records = file.read(_END64.size + _END64_LOCATOR.size)
        if _END64_LOCATOR.unpack_from(records, _END64.size)[0] == b"PK\x06\x07":
            fields = _END64.unpack_from(records)
            if fields[0] != b"PK\x06\x06":
                return False
            entries, directory = fields[7], fields[8]
    return bool(entries <= MAX_PACKAGE_ENTRIES and directory <= MAX_DIRECTORY_BYTES)
