"""`mediation pii status` and `mediation pii rekey`: finishing a rotation of the encryption keys.

`MEDIATION_PII_ENCRYPTION_KEYS` lists several keys: the first encrypts, every one decrypts
(core.pii). Putting a new key first only changes what is written from then on; what was written
before stays under the old key, which therefore could never be removed, not even one that leaked.
`rekey` re-encrypts every value still under another key with the first one, a batch at a time
while the service runs; `status` counts the values under each key (and, with `--verify`, opens
every one), so the operator knows when an old key protects nothing more and may be dropped
(等保 level 3, GB/T 22239-2019 8.1.4.8: 数据保密性; key management).

A value is rewritten only if it is still the one read (compare and set), so a change the service
makes meanwhile (a party's corrected phone, a webhook secret rotated) is never overwritten. Each
value's associated data (table, column, row) stays the same, so nothing else changes.
"""

from __future__ import annotations

import argparse
import getpass
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute

from mediation.audit.chain import AuditEntry, append
from mediation.core.db import Database, utcnow
from mediation.core.idempotency import IdempotencyRecord
from mediation.core.pii import PiiCipher, PiiIntegrityError
from mediation.core.principal import Principal, Role
from mediation.core.secrets import resolve_secrets
from mediation.core.settings import Settings
from mediation.disputes.models import Party
from mediation.events.models import WebhookSubscription


@dataclass(frozen=True, slots=True)
class SealedField:
    """A column holding values `PiiCipher.encrypt` wrote, and the associated data they were bound to."""

    column: InstrumentedAttribute[Any]
    table: str
    aad_column: str

    @property
    def name(self) -> str:
        return f"{self.table}.{self.aad_column}"


# Every column the service encrypts. A new one belongs here, or a rotation would leave it behind.
SEALED_FIELDS: tuple[SealedField, ...] = (
    SealedField(Party.id_number_enc, "parties", "id_number"),
    SealedField(Party.phone_enc, "parties", "phone"),
    SealedField(WebhookSubscription.secret_enc, "webhook_subscriptions", "secret"),
    SealedField(WebhookSubscription.previous_secret_enc, "webhook_subscriptions", "previous_secret"),
    SealedField(IdempotencyRecord.response_body, "idempotency_records", "response_body"),
)
BATCH = 500


def key_id_of(token: str) -> str:
    """The key a value was encrypted with, as its token names it (nothing is decrypted)."""
    key_id, sep, _ = token.partition(".")
    return key_id if sep else "?"


@dataclass(slots=True)
class FieldReport:
    by_key: Counter[str] = field(default_factory=Counter)
    rekeyed: int = 0
    changed_meanwhile: int = 0
    unreadable: list[str] = field(default_factory=list)  # row ids, never values

    def as_dict(self) -> dict[str, Any]:
        return {
            "by_key": dict(sorted(self.by_key.items())),
            "rekeyed": self.rekeyed,
            "changed_meanwhile": self.changed_meanwhile,
            "unreadable": len(self.unreadable),
            "unreadable_rows": self.unreadable[:20],
        }


def _pk(sealed: SealedField) -> InstrumentedAttribute[Any]:
    model: Any = sealed.column.class_
    pk: InstrumentedAttribute[Any] = model.id
    return pk


async def status(db: Database, cipher: PiiCipher, *, verify: bool) -> dict[str, FieldReport]:
    """How many values each key protects, per field; with `verify`, every value is also opened
    and those that cannot be (a key missing from the configuration, a value damaged or moved to
    another row) are listed by row."""
    reports: dict[str, FieldReport] = {}
    for sealed in SEALED_FIELDS:
        report = reports[sealed.name] = FieldReport()
        pk = _pk(sealed)
        async with db.reader() as session:
            rows = await session.stream(select(pk, sealed.column).where(sealed.column.is_not(None)))
            async for row_id, token in rows:
                report.by_key[key_id_of(token)] += 1
                if verify and not _opens(cipher, sealed, str(row_id), token):
                    report.unreadable.append(str(row_id))
    return reports


def _opens(cipher: PiiCipher, sealed: SealedField, row_id: str, token: str) -> bool:
    try:
        cipher.decrypt(token, table=sealed.table, column=sealed.aad_column, row_id=row_id)
    except PiiIntegrityError:
        return False
    return True


async def rekey(
    db: Database,
    cipher: PiiCipher,
    operator: Principal,
    *,
    batch: int = BATCH,
    progress: Callable[[str, FieldReport], None] | None = None,
) -> dict[str, FieldReport]:
    """Re-encrypts with the active key every value under another key, `batch` rows per
    transaction, and records what it did in the audit trail. Values that cannot be opened are
    left as they are and listed."""
    active = cipher.active_key_id
    reports: dict[str, FieldReport] = {}
    for sealed in SEALED_FIELDS:
        report = reports[sealed.name] = FieldReport()
        pk = _pk(sealed)
        model: Any = sealed.column.class_
        after: Any = None
        while True:
            query = (
                select(pk, sealed.column)
                .where(sealed.column.is_not(None), ~sealed.column.startswith(f"{active}.", autoescape=True))
                .order_by(pk)
                .limit(batch)
            )
            if after is not None:
                query = query.where(pk > after)
            async with db.writer() as session, session.begin():
                rows = (await session.execute(query)).all()
                for row_id, token in rows:
                    report.by_key[key_id_of(token)] += 1
                    try:
                        plain = cipher.decrypt(
                            token, table=sealed.table, column=sealed.aad_column, row_id=str(row_id)
                        )
                    except PiiIntegrityError:
                        report.unreadable.append(str(row_id))
                        continue
                    fresh = cipher.encrypt(
                        plain, table=sealed.table, column=sealed.aad_column, row_id=str(row_id)
                    )
                    written = await session.execute(
                        update(model)
                        .where(pk == row_id, sealed.column == token)
                        .values({sealed.column.key: fresh})
                        .execution_options(synchronize_session=False)
                    )
                    if written.rowcount == 1:  # type: ignore[attr-defined]
                        report.rekeyed += 1
                    else:
                        report.changed_meanwhile += 1
            if progress is not None:
                progress(sealed.name, report)
            if len(rows) < batch:
                break
            after = rows[-1][0]
    entry = AuditEntry.by(
        operator,
        "pii.rekey",
        details={
            "active_key": active,
            "fields": {
                name: {"rekeyed": r.rekeyed, "unreadable": len(r.unreadable)} for name, r in reports.items()
            },
        },
    )
    async with db.writer() as session, session.begin():
        await append(session, [entry], utcnow())
    return reports


# ---- the command --------------------------------------------------------------------------------


def add_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pii = commands.add_parser(
        "pii", help="the encryption keys of personal data: which protect what, and re-encrypting"
    ).add_subparsers(dest="action", required=True)
    show = pii.add_parser("status", help="count the values under each key (--verify: open every one)")
    show.add_argument("--verify", action="store_true", help="also decrypt every value; exit 1 if any fails")
    again = pii.add_parser(
        "rekey", help="re-encrypt with the first key of MEDIATION_PII_ENCRYPTION_KEYS what is under another"
    )
    again.add_argument("--batch", type=int, default=BATCH, help=f"rows per transaction (default {BATCH})")
    phones = pii.add_parser(
        "normalise-phones",
        help="write parties' phone numbers stored in an older form (0575-87654321) in the one intake "
        "writes now (057587654321), with their mask and index, so the same number matches again",
    )
    phones.add_argument("--batch", type=int, default=BATCH, help=f"rows per transaction (default {BATCH})")


async def run(settings: Settings, args: argparse.Namespace) -> int:
    secrets = resolve_secrets(settings)
    cipher = PiiCipher.from_secrets(secrets.pii_encryption_keys, secrets.pii_index_key)
    if args.action == "normalise-phones":
        return await _normalise_phones(settings, cipher, args.batch)
    db = Database(settings)
    try:
        if args.action == "status":
            reports = await status(db, cipher, verify=args.verify)
        else:
            if args.batch < 1:
                print("--batch must be at least 1")
                return 2
            operator = Principal(Role.system, f"cli:{getpass.getuser()}", kind="system")
            reports = await rekey(db, cipher, operator, batch=args.batch)
    finally:
        await db.dispose()
    others = sorted(
        {key for r in reports.values() for key in r.by_key if key != cipher.active_key_id}
        if args.action == "status"
        else set()
    )
    print(
        json.dumps(
            {
                "active_key": cipher.active_key_id,
                "fields": {name: r.as_dict() for name, r in reports.items()},
            },
            ensure_ascii=False,
        )
    )
    unreadable = sum(len(r.unreadable) for r in reports.values())
    if args.action == "status":
        if others:
            print(
                f"values under other keys than {cipher.active_key_id}: {', '.join(others)}; run `mediation pii rekey`"
            )
        else:
            print(f"every value is under {cipher.active_key_id}: the other keys may be removed")
    else:
        done = sum(r.rekeyed for r in reports.values())
        print(f"re-encrypted {done} values with {cipher.active_key_id}")
    if unreadable:
        print(f"{unreadable} values could not be opened with the configured keys (rows listed above)")
        return 1
    return 0


async def _normalise_phones(settings: Settings, cipher: PiiCipher, batch: int) -> int:
    from mediation.ops.pii_phones import normalise_stored_phones

    if batch < 1:
        print("--batch must be at least 1")
        return 2
    operator = Principal(Role.system, f"cli:{getpass.getuser()}", kind="system")
    db = Database(settings)
    try:
        report = await normalise_stored_phones(db, cipher, operator, batch=batch)
    finally:
        await db.dispose()
    print(json.dumps({"parties.phone": report.as_dict()}, ensure_ascii=False))
    print(f"wrote {report.rewritten} of {report.read} phone numbers in their one form")
    if report.unreadable or report.refused:
        print(
            f"{len(report.unreadable)} numbers could not be opened and {len(report.refused)} are not "
            "phone numbers by the rules now (rows listed above); they are left as they are"
        )
        return 1
    return 0
