"""The service's secrets: token signing key and personal-data keys.

They are all three given in the environment (`MEDIATION_JWT_SECRET`, `MEDIATION_PII_ENCRYPTION_KEYS`,
`MEDIATION_PII_INDEX_KEY`), or none is and they are kept in a secrets file:

- on the embedded SQLite database, `MEDIATION_SECRETS_FILE` or, unset, `mediation.secrets.json`
  next to the database file, generated at the first start (owner-only permissions), so `make run`
  works on a fresh checkout and data encrypted yesterday still decrypts today. File and database
  share their fate: both are lost, or neither.
- on PostgreSQL only when `MEDIATION_SECRETS_FILE` names it. The data outlives any one machine or
  container, and keys generated anew beside it (a container re-created, its file lost) make every
  case's personal data unreadable and every token invalid while the service says it is ready; so
  without the secrets in the environment or a file explicitly named, the service does not start.

Some given and others not is refused whatever the database: the missing ones would come from a
file the operator may not know of, and an index key not the one the data was indexed under finds
nobody. Secrets read from a file are announced at every start, the file named.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import null, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from mediation.core.pii import (
    PiiCipher,
    PiiIntegrityError,
    generate_key,
    is_key_id,
    parse_encryption_keys,
)
from mediation.core.settings import MIN_JWT_SECRET_BYTES, ConfigurationError, Settings

if TYPE_CHECKING:
    from mediation.core.db import Database
    from mediation.core.outage import FailingTurns

log = logging.getLogger(__name__)

VARIABLES = {
    "jwt_secret": "MEDIATION_JWT_SECRET",
    "pii_encryption_keys": "MEDIATION_PII_ENCRYPTION_KEYS",
    "pii_index_key": "MEDIATION_PII_INDEX_KEY",
}
FILE_NAME = "mediation.secrets.json"


def former_locations() -> list[Path]:
    """Where releases before this one generated the secrets file when none was named: the working
    directory, and the container image's data volume."""
    return [Path.cwd() / FILE_NAME, Path("/app/data") / FILE_NAME]


# The files this process has announced it reads secrets from (once per process, however many
# times the secrets are resolved in it).
_announced: set[Path] = set()


@dataclass(frozen=True, slots=True)
class Secrets:
    jwt_secret: str
    pii_encryption_keys: str
    pii_index_key: str


def secrets_file(settings: Settings) -> Path | None:
    """Where the secrets are kept when the environment gives none; None where no file may be used
    (PostgreSQL without MEDIATION_SECRETS_FILE)."""
    if settings.secrets_file is not None:
        return settings.secrets_file
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite":
        return None
    if url.database and url.database != ":memory:":
        beside = Path(url.database).parent / FILE_NAME
        former = Path.cwd() / FILE_NAME
        if not beside.exists() and former.exists() and former.resolve() != beside.resolve():
            # Releases before this one kept the file in the working directory: generating new keys
            # beside the database would leave the data that file's keys wrote unreadable.
            log.warning(
                "secrets read from %s, where earlier releases kept them; move the file next to the "
                "database (%s) or set MEDIATION_SECRETS_FILE",
                former,
                beside,
            )
            return former
        return beside
    return Path.cwd() / FILE_NAME


def resolve_secrets(settings: Settings) -> Secrets:
    given = {
        "jwt_secret": settings.jwt_secret,
        "pii_encryption_keys": settings.pii_encryption_keys,
        "pii_index_key": settings.pii_index_key,
    }
    if all(given.values()):
        return Secrets(**{k: str(v) for k, v in given.items()})
    missing = [VARIABLES[k] for k, v in given.items() if not v]
    if len(missing) < len(given):
        raise ConfigurationError(
            f"{', '.join(missing)} not set while the other secrets are: set all three in the "
            "environment, or none (see MEDIATION_SECRETS_FILE)"
        )
    path = secrets_file(settings)
    if path is None:
        # An upgrade from a release that generated the file by default: name it, so the operator
        # points to it rather than setting new keys that open none of the data.
        found = [str(p) for p in former_locations() if p.is_file()]
        hint = (
            f"; a secrets file exists at {', '.join(found)}: if it holds this database's keys, set MEDIATION_SECRETS_FILE to it"
            if found
            else ""
        )
        raise ConfigurationError(
            f"{', '.join(missing)} not set: on PostgreSQL the secrets come from the environment, "
            f"or from a file named by MEDIATION_SECRETS_FILE (kept as long as the database){hint}"
        )
    # A file named explicitly may open a folder of its own (a volume's); the default one lies beside
    # the database, whose folder exists or the command is refused: none is made for a mistyped path.
    stored = _load_or_create(path, make_folder=settings.secrets_file is not None)
    if path not in _announced:
        _announced.add(path)
        log.warning(
            "secrets read from %s, not the environment: it must be kept as long as the database "
            "(with other keys the personal data cannot be read)",
            path,
        )
    # The environment's secret is checked by the settings; one edited into the file by hand is not.
    if len(stored["jwt_secret"].encode()) < MIN_JWT_SECRET_BYTES:
        raise ConfigurationError(f"the jwt_secret in {path} must be at least {MIN_JWT_SECRET_BYTES} bytes")
    return Secrets(**{k: stored[k] for k in given})


def _load_or_create(path: Path, *, make_folder: bool) -> dict[str, str]:
    if path.exists():
        return _read(path)
    data = {
        "jwt_secret": generate_key(),
        "pii_encryption_keys": f"k1:{generate_key()}",
        "pii_index_key": generate_key(),
    }
    if not path.parent.is_dir():
        if not make_folder:
            # A mistyped database path must leave no key material behind.
            raise ConfigurationError(
                f"cannot create the secrets file {path}: there is no folder {path.parent}"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the secrets file {path}: {exc.strerror or exc}"
            ) from None
    try:
        # O_EXCL: two processes starting at once must not each write their own keys.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    except OSError as exc:
        raise ConfigurationError(f"cannot create the secrets file {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    log.warning("generated secrets in %s; set MEDIATION_* secrets in production", path)
    return data


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read the secrets file {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise ConfigurationError(f"the secrets file {path} is not JSON") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) and data[k] for k in VARIABLES):
        raise ConfigurationError(f"the secrets file {path} does not hold {', '.join(VARIABLES)}")
    return {k: str(data[k]) for k in VARIABLES}


class KeysProblem(str):
    """Why the configured secrets cannot serve this database, as said to the operator."""


class KeysRefused(Exception):
    """A worker started while its database did not answer found, once it answered, that the
    personal-data keys do not open the data stored: it stops before doing any work, as it would
    have refused to start (cli.py)."""

    def __init__(self, problem: KeysProblem) -> None:
        super().__init__(problem)
        self.problem = problem


# Key ids looked for in one column at most: a column under more holds something else than tokens,
# and the ids met so far are enough to name.
_KEY_IDS_LOOKED_FOR = 32


async def keys_problem(connection: AsyncConnection, settings: Settings) -> KeysProblem | None:
    """Whether the personal-data keys open what the database holds. Keys generated anew beside
    existing data (a secrets file lost or moved, another secret store's values), or a list that
    dropped a key before `mediation pii rekey` moved its values, would otherwise start a service that
    says it is ready while the ID and phone numbers under the missing key are unreadable (every case
    with one answers 500) and no search finds them, and would write new data under keys that clash
    with the old ones' id.

    In every encrypted column (pii_keys.SEALED_FIELDS), one value under each key id in use is
    decrypted, and for the ID and phone numbers its index computed again. The key ids are found
    without decrypting or fetching every value: each query asks for the first value under a key id
    not met yet and stops there, with no sort nor grouping, and one row per key id reaches the
    process; only the last query, which finds none, reads the column through (about 0.3 s a
    million parties on PostgreSQL or SQLite, once per process). The ciphertexts have no index to do
    better from: one would cost every write for a check made at start."""
    # The schema and the list of encrypted columns, only when a database is checked.
    from mediation.disputes.models import Party
    from mediation.ops.pii_keys import SEALED_FIELDS, key_id_of

    secrets = resolve_secrets(settings)
    cipher = PiiCipher.from_secrets(secrets.pii_encryption_keys, secrets.pii_index_key)
    configured = parse_encryption_keys(secrets.pii_encryption_keys)
    indexed: dict[str, tuple[Any, str]] = {
        "parties.phone": (Party.phone_index, "phone"),
        "parties.id_number": (Party.id_number_index, "id_number"),
    }
    missing: dict[str, list[str]] = {}  # key id -> the columns with values under it
    unopened: list[str] = []
    misindexed: list[str] = []
    for sealed in SEALED_FIELDS:
        model: Any = sealed.column.class_
        index, kind = indexed.get(sealed.name, (None, ""))
        met: list[str] = []
        while len(met) < _KEY_IDS_LOOKED_FOR:
            row = (
                await connection.execute(
                    select(model.id, sealed.column, index if index is not None else null())
                    # A value without a key id is no token (`pii status --verify` lists it): not a
                    # key's problem.
                    .where(sealed.column.contains(".", autoescape=True))
                    .where(*(~sealed.column.startswith(f"{key_id}.", autoescape=True) for key_id in met))
                    .limit(1)
                )
            ).first()
            if row is None:
                break
            row_id, token, stored_index = row
            key_id = key_id_of(token)
            met.append(key_id)
            if key_id not in configured:
                # Not echoed unless it has a key id's form: a value stored in the clear by mistake
                # would otherwise be written into the message (and the logs).
                shown = key_id if is_key_id(key_id) else "(a value not in a token's form)"
                missing.setdefault(shown, []).append(sealed.name)
                continue
            try:
                value = cipher.decrypt(
                    token, table=sealed.table, column=sealed.aad_column, row_id=str(row_id)
                )
            except PiiIntegrityError:
                unopened.append(sealed.name)
                continue
            if stored_index is not None and cipher.index(value, kind=kind) != stored_index:
                misindexed.append(sealed.name)
    advice = (
        "use the keys the data was written with (the earlier secrets file, or the secret store's "
        "values); `mediation pii status --verify` counts what the configured keys open"
    )
    if missing:
        named = "; ".join(f"{key_id} ({', '.join(columns)})" for key_id, columns in sorted(missing.items()))
        return KeysProblem(
            "the personal-data keys configured (MEDIATION_PII_ENCRYPTION_KEYS or the secrets file) lack "
            f"the key id(s) {named} under which data this database holds was encrypted: {advice}; a key "
            "still in use stays listed after the active one until `mediation pii rekey` has moved its values"
        )
    if unopened:
        return KeysProblem(
            "the personal-data keys configured (MEDIATION_PII_ENCRYPTION_KEYS or the secrets file) do "
            f"not open the data this database holds ({', '.join(dict.fromkeys(unopened))}): {advice}"
        )
    if misindexed:
        return KeysProblem(
            "the index key configured (MEDIATION_PII_INDEX_KEY or the secrets file) is not the one "
            f"this database's parties were indexed with ({', '.join(dict.fromkeys(misindexed))}), so no "
            f"search would find them: {advice}"
        )
    return None


class KeyVerdict:
    """Whether the personal-data keys configured open the data stored, found once per process:
    the first to ask checks against the database, whoever asks meanwhile waits for that answer,
    and the answer holds for the process's life (its keys do not change; a restart with the right
    ones is the remedy). In the server, `/readyz` and the relay and scheduler running in it share
    one, so the data is read through once however many ask."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.checked = False
        self.problem: KeysProblem | None = None
        self._lock = asyncio.Lock()

    async def of(self, connection: AsyncConnection) -> KeysProblem | None:
        if not self.checked:
            async with self._lock:
                if not self.checked:
                    self.problem = await keys_problem(connection, self.settings)
                    self.checked = True
                    if self.problem is not None:
                        log.error("the personal-data keys do not open the data stored: %s", self.problem)
        return self.problem


async def check_keys_once_answered(
    db: Database, verdict: KeyVerdict, stop: asyncio.Event, failing: FailingTurns
) -> None:
    """For the relay and the scheduler, before any work, when the keys were not checked at their
    start (the database did not answer then: cli.py) or in the server (whose own check ran in the
    process that started the workers): waits for the database to answer, migrated for this
    release (tried again after `failing`'s growing pauses, as their work is), then has the keys
    checked as at start. Raises KeysRefused if they do not open the data: working on, the worker
    would fail on every case with a value under a missing key and write new values under keys
    clashing with the old ones' ids. Returns when they do, or when `stop` is set first."""
    from mediation.migrate import schema_problem

    while not stop.is_set():
        try:
            async with db.engine.connect() as connection:
                schema = await schema_problem(connection)
                if schema is not None:
                    # Its tables may not be there yet: waited for as the database is.
                    raise RuntimeError(f"{schema}: waiting for `mediation migrate`")
                problem = await verdict.of(connection)
        except Exception as exc:
            pause = failing.failed(exc)
        else:
            failing.succeeded()
            if problem is not None:
                raise KeysRefused(problem)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=pause)
