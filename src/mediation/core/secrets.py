"""The service's secrets: token signing key and personal-data keys.

Production sets them in the environment (`MEDIATION_JWT_SECRET`, `MEDIATION_PII_ENCRYPTION_KEYS`,
`MEDIATION_PII_INDEX_KEY`). A development machine that sets none gets them generated once into
`secrets_file` (owner-only permissions), so `make run` works on a fresh checkout and data
encrypted yesterday still decrypts today.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from mediation.core.pii import generate_key
from mediation.core.settings import MIN_JWT_SECRET_BYTES, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Secrets:
    jwt_secret: str
    pii_encryption_keys: str
    pii_index_key: str


def resolve_secrets(settings: Settings) -> Secrets:
    given = {
        "jwt_secret": settings.jwt_secret,
        "pii_encryption_keys": settings.pii_encryption_keys,
        "pii_index_key": settings.pii_index_key,
    }
    if all(given.values()):
        return Secrets(**{k: str(v) for k, v in given.items()})
    stored = _load_or_create(settings.secrets_file)
    merged = {k: v or stored[k] for k, v in given.items()}
    # The environment's secret is checked by the settings; one edited into the file by hand is not.
    if len(merged["jwt_secret"].encode()) < MIN_JWT_SECRET_BYTES:
        raise ValueError(
            f"the jwt_secret in {settings.secrets_file} must be at least {MIN_JWT_SECRET_BYTES} bytes"
        )
    return Secrets(**merged)


def _load_or_create(path: Path) -> dict[str, str]:
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
        return data
    data = {
        "jwt_secret": generate_key(),
        "pii_encryption_keys": f"k1:{generate_key()}",
        "pii_index_key": generate_key(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two processes starting at once must not each write their own keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        loaded: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
        return loaded
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    log.warning("generated development secrets in %s; set MEDIATION_* secrets in production", path)
    return data
