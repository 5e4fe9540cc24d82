"""Where document content lives. The interface is small so a deployment can put it elsewhere
(object storage); the default is a content-addressed directory on the local filesystem."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 1024 * 1024


class TooLarge(Exception):
    pass


HEAD_BYTES = 8192  # what media-type detection reads of a file


@dataclass(frozen=True, slots=True)
class Staged:
    """Content written to a temporary place, hashed, not yet committed to the store."""

    path: Path
    sha256: str
    size: int
    head: bytes  # the first bytes, for media-type detection


class BlobStore(Protocol):
    def stage(self, source: BinaryIO, max_bytes: int) -> Staged: ...
    def commit(self, staged: Staged) -> bool: ...
    def discard(self, staged: Staged) -> None: ...
    def path_of(self, sha256: str) -> Path: ...
    def exists(self, sha256: str) -> bool: ...


FILE_MODE = 0o640
FOLDER_MODE = 0o750


class LocalBlobStore:
    """`<root>/ab/cd/<sha256>`; writes go to `<root>/tmp` first and are renamed into place, so a
    reader never sees half a file and a failed upload leaves nothing behind."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def _ensure(self) -> None:
        # A root the operator made keeps its mode; one made here is private like its contents.
        self.root.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        self.tmp.mkdir(mode=FOLDER_MODE, exist_ok=True)

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def stage(self, source: BinaryIO, max_bytes: int) -> Staged:
        self._ensure()
        path = self.tmp / f"{uuid.uuid4().hex}.part"
        digest = hashlib.sha256()
        size = 0
        head = b""
        try:
            # Identity documents and evidence: readable by the service's user (and its group, for
            # a backup account), never by others on the host (个人信息保护法 Art. 51).
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            with os.fdopen(descriptor, "wb") as out:
                for chunk in _chunks(source):
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge(size)
                    if len(head) < HEAD_BYTES:
                        head += chunk[: HEAD_BYTES - len(head)]
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Staged(path, digest.hexdigest(), size, head)

    def commit(self, staged: Staged) -> bool:
        """Move staged content into place, durably; False when the same content was already stored.

        A rename, and a new folder, are entries of their parent directory: until that directory is
        synced a power loss can undo them while the row pointing at the content has committed."""
        target = self.path_of(staged.sha256)
        if target.is_file():
            staged.path.unlink(missing_ok=True)
            # It may have been renamed into place a moment ago by another commit not yet synced.
            _sync_directory(target.parent)
            return False
        new = [folder for folder in (target.parent.parent, target.parent) if not folder.is_dir()]
        for folder in new:  # the outer one first
            folder.mkdir(mode=FOLDER_MODE, exist_ok=True)
        os.replace(staged.path, target)
        _sync_directory(target.parent)
        for folder in reversed(new):
            _sync_directory(folder.parent)
        return True

    def discard(self, staged: Staged) -> None:
        staged.path.unlink(missing_ok=True)


def _sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chunks(source: BinaryIO) -> Iterator[bytes]:
    while chunk := source.read(CHUNK):
        yield chunk
