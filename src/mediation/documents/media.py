"""What a file is, judged by its content rather than by its name or the client's claim."""

from __future__ import annotations

import zipfile
from pathlib import Path

import filetype

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
    if head and _is_text(head):
        return TEXT
    return "application/octet-stream"


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The sample may end inside a multi-byte character.
        return exc.start >= len(head) - 3
    return True


def _office_package(path: Path, media_type: str) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    listed = set(names)
    if "[Content_Types].xml" not in listed or MAIN_PART[media_type] not in listed:
        return False
    return not any(name.lower().endswith(RUNNABLE) for name in names)
