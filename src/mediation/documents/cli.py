"""`mediation documents verify`: is every stored file there, whole, and the content it was?

A document's content lives in the file store (`MEDIATION_DOCUMENTS_DIR`), addressed by its
SHA-256; the database holds only the address. A restore that brought back the database and not
the files, a disk that lost or damaged some, a file changed by hand: nothing shows it until someone
downloads the document, and a changed file is then served under the hash of what it was. Agreements,
records and receipts are evidence (人民调解法 Art. 29; 法释〔2011〕5号 Art. 3: the agreement goes to the
court for confirmation), so their integrity is checked on demand: after a restore, and on a
schedule. The content is hashed again in full (`--quick` compares the lengths only).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from mediation.core.db import Database
from mediation.core.settings import Settings
from mediation.disputes.models import Dispute
from mediation.documents.models import Blob, Document
from mediation.documents.storage import LocalBlobStore

CHUNK = 1024 * 1024
LISTED = 50  # problems listed in full; the rest are counted


@dataclass(slots=True)
class Verdict:
    checked: int = 0
    bytes_checked: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _digest(path: Any) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


async def verify(db: Database, store: LocalBlobStore, *, quick: bool = False) -> Verdict:
    """Checks every stored content the database refers to; each problem names the content, what
    is wrong with it, and the documents (with their cases) that hold it."""
    verdict = Verdict()
    async with db.reader() as session:
        blobs = await session.stream(select(Blob.sha256, Blob.size).order_by(Blob.sha256))
        async for sha256, size in blobs:
            verdict.checked += 1
            path = store.path_of(sha256)
            if not path.is_file():
                verdict.problems.append({"sha256": sha256, "problem": "missing"})
                continue
            found = path.stat().st_size
            if found != size:
                verdict.problems.append(
                    {"sha256": sha256, "problem": "size", "expected": size, "found": found}
                )
                continue
            if quick:
                continue
            # Hashed in a thread: a large file must not hold the loop (the stream's connection).
            _, digest = await asyncio.to_thread(_digest, path)
            verdict.bytes_checked += size
            if digest != sha256:
                verdict.problems.append({"sha256": sha256, "problem": "content", "found": digest})
    for problem in verdict.problems[:LISTED]:
        async with db.reader() as session:
            held = await session.execute(
                select(Document.id, Document.kind, Document.original_name, Dispute.id, Dispute.case_number)
                .join(Dispute, Dispute.id == Document.dispute_id)
                .where(Document.sha256 == problem["sha256"])
                .order_by(Dispute.case_number)
            )
            problem["documents"] = [
                {"id": str(d), "kind": kind, "name": name, "dispute_id": str(case), "case_number": number}
                for d, kind, name, case, number in held
            ]
    return verdict


def add_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    documents = commands.add_parser("documents", help="the stored documents").add_subparsers(
        dest="action", required=True
    )
    check = documents.add_parser(
        "verify",
        help="check that every stored file is there and unchanged; exit 1 listing those that are not",
    )
    check.add_argument("--quick", action="store_true", help="compare the lengths only, without hashing")


async def run(settings: Settings, args: argparse.Namespace) -> int:
    db = Database(settings)
    try:
        verdict = await verify(db, LocalBlobStore(settings.documents_dir), quick=args.quick)
    finally:
        await db.dispose()
    print(
        json.dumps(
            {
                "checked": verdict.checked,
                "bytes_hashed": verdict.bytes_checked,
                "problems": len(verdict.problems),
                "listed": verdict.problems[:LISTED],
            },
            ensure_ascii=False,
        )
    )
    if verdict.ok:
        print(f"documents intact: {verdict.checked} stored files")
        return 0
    print(f"{len(verdict.problems)} of {verdict.checked} stored files are missing or changed (listed above)")
    return 1
