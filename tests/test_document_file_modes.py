"""A case's files (identity documents, evidence) are stored readable by the service's own user and
its group only, never by other accounts on the host (个人信息保护法 Art. 51): the files, and the
folders the store makes for them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mediation.documents.storage import LocalBlobStore
from tests.support import Api
from tests.test_documents import KIB, pdf, uploaded


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_stored_files_and_their_folders_are_not_world_readable(api: Api) -> None:
    old = os.umask(0o002)  # a lax umask on the host does not open them up
    try:
        dispute = await api.intake()
        stored = await uploaded(api, dispute, pdf(4 * KIB, "id card"))
    finally:
        os.umask(old)
    store = LocalBlobStore(api.app.state.settings.documents_dir)
    path = store.path_of(stored["sha256"])
    assert path.is_file()
    assert _mode(path) & 0o007 == 0, oct(_mode(path))
    for folder in (path.parent, path.parent.parent, store.tmp):
        assert _mode(folder) & 0o007 == 0, (folder, oct(_mode(folder)))
