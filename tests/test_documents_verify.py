"""`mediation documents verify`: every stored file is there, whole, and the content it was.

The database holds a document's address (its SHA-256) and the file store its content. A restore
without the files, a damaged disk or a file changed by hand shows nowhere until someone downloads
the document; the check finds each, and names the documents and cases that hold it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mediation.documents.cli import verify
from mediation.documents.models import Blob
from mediation.documents.storage import LocalBlobStore
from tests.support import Api


async def _stored(api: Api) -> tuple[LocalBlobStore, list[tuple[str, int]]]:
    store = LocalBlobStore(api.app.state.settings.documents_dir)
    async with api.app.state.db.reader() as session:
        blobs = list((await session.execute(select(Blob.sha256, Blob.size).order_by(Blob.sha256))).all())
    return store, [(sha, size) for sha, size in blobs]


async def test_intact_files_pass_and_each_kind_of_damage_is_found_with_its_cases(api: Api) -> None:
    cases = [await api.intake(), await api.intake(), await api.intake()]  # each with its receipt
    store, blobs = await _stored(api)
    assert len(blobs) >= 3
    db = api.app.state.db

    intact = await verify(db, store)
    assert (intact.ok, intact.checked) == (True, len(blobs))
    assert intact.bytes_checked == sum(size for _, size in blobs)

    (gone, _), (changed, _), (cut, _) = blobs[:3]
    store.path_of(gone).unlink()
    content = store.path_of(changed).read_bytes()
    store.path_of(changed).write_bytes(content[:-1] + bytes([content[-1] ^ 1]))  # same length
    store.path_of(cut).write_bytes(store.path_of(cut).read_bytes()[:-10])

    found = await verify(db, store)
    assert not found.ok
    assert {(p["sha256"], p["problem"]) for p in found.problems} == {
        (gone, "missing"),
        (changed, "content"),
        (cut, "size"),
    }
    numbers = {c["case_number"] for c in cases}
    for problem in found.problems:
        [document] = problem["documents"]
        assert document["case_number"] in numbers
        assert document["kind"] == "receipt"
    # Comparing lengths only misses the file changed in place, and nothing is hashed.
    quick = await verify(db, store, quick=True)
    assert {p["problem"] for p in quick.problems} == {"missing", "size"}
    assert quick.bytes_checked == 0


async def test_the_command_exits_1_naming_what_is_missing(api: Api, settings: Any, tmp_path: Path) -> None:
    dispute = await api.intake()
    env = {
        **os.environ,
        "MEDIATION_DATABASE_URL": settings.database_url,
        "MEDIATION_JWT_SECRET": str(settings.jwt_secret),
        "MEDIATION_PII_ENCRYPTION_KEYS": str(settings.pii_encryption_keys),
        "MEDIATION_PII_INDEX_KEY": str(settings.pii_index_key),
        "MEDIATION_DOCUMENTS_DIR": str(settings.documents_dir),
    }

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mediation", "documents", "verify"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    fine = check()
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert "documents intact: 1 stored files" in fine.stdout
    store, [(sha, _)] = await _stored(api)
    store.path_of(sha).unlink()
    broken = check()
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert dispute["case_number"] in broken.stdout
    assert "1 of 1 stored files are missing or changed" in broken.stdout
