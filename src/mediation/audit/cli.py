"""`mediation audit verify`, `mediation audit seal` and `mediation audit purge`."""

from __future__ import annotations

import argparse
import getpass
import json

from sqlalchemy import select

from mediation.audit.chain import purge
from mediation.audit.models import AuditSeal
from mediation.audit.seal import overdue_after, seal, seal_keys, verify_snapshot
from mediation.core.db import Database, utcnow
from mediation.core.principal import Principal, Role
from mediation.core.secrets import resolve_secrets
from mediation.core.settings import Settings


def add_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = commands.add_parser("audit", help="the audit trail").add_subparsers(dest="action", required=True)
    audit.add_parser(
        "verify", help="walk the hash chain and check its seals; exit 1 at the first broken record"
    )
    audit.add_parser(
        "seal", help="seal the chain's head now (the scheduler does every MEDIATION_AUDIT_SEAL_SECONDS)"
    )
    audit.add_parser("purge", help="delete records older than MEDIATION_AUDIT_RETENTION_DAYS")


async def run(settings: Settings, args: argparse.Namespace) -> int:
    db = Database(settings)
    try:
        if args.action == "verify":
            keys = seal_keys(settings, resolve_secrets(settings))
            result = await verify_snapshot(db, keys, utcnow(), overdue_after(settings))
            print(json.dumps(result.as_dict(), ensure_ascii=False))
            if not result.ok:
                print(f"audit chain broken at record {result.broken_seq}: {result.problem}")
                return 1
            sealed = (
                f"sealed through record {result.sealed_through} at {result.as_dict()['last_sealed_at']}"
                if result.sealed_through is not None
                else "not sealed yet"
            )
            print(f"audit chain intact: {result.checked} records, {result.seals_checked} seals; {sealed}")
            return 0
        if args.action == "seal":
            # Before a backup or a handover, say: whatever was recorded until now is sealed.
            made = await seal(db, seal_keys(settings, resolve_secrets(settings)), utcnow(), None)
            if made is not None:
                print(f"sealed through record {made.seq}")
            else:
                print(f"nothing to seal: {await _why_not_sealed(db)}")
            return 0
        operator = Principal(Role.system, f"cli:{getpass.getuser()}", kind="system")
        async with db.writer() as session, session.begin():
            removed = await purge(session, operator, settings.audit_retention_days, utcnow())
        print(f"purged {removed} audit records older than {settings.audit_retention_days} days")
        return 0
    finally:
        await db.dispose()


async def _why_not_sealed(db: Database) -> str:
    async with db.reader() as session:
        newest = await session.scalar(select(AuditSeal.seq).order_by(AuditSeal.id.desc()).limit(1))
    return (
        "the chain is empty" if newest is None else f"the chain is sealed through its last record, {newest}"
    )
