"""What a file is, judged by its content rather than by its name or the client's claim."""

from __future__ import annotations

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
# first bytes, so a zip is accepted as the office type its name claims and nothing else.
ZIP_BY_EXTENSION = {".docx": DOCX, ".xlsx": XLSX, ".pptx": PPTX}


def detect(head: bytes, filename: str) -> str:
    kind = filetype.guess(head)
    if kind is not None:
        mime = str(kind.mime)
        if mime == "application/zip":
            suffix = filename[filename.rfind(".") :].lower() if "." in filename else ""
            return ZIP_BY_EXTENSION.get(suffix, mime)
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
