"""`mediation audit verify` and `mediation audit purge`."""

from __future__ import annotations

import argparse
import getpass
import json

from mediation.audit.chain import purge, verify_snapshot
from mediation.core.db import Database, utcnow
from mediation.core.principal import Principal, Role
from mediation.core.settings import Settings


def add_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = commands.add_parser("audit", help="the audit trail").add_subparsers(dest="action", required=True)
    audit.add_parser("verify", help="walk the hash chain; exit 1 at the first broken record")
    audit.add_parser("purge", help="delete records older than MEDIATION_AUDIT_RETENTION_DAYS")


async def run(settings: Settings, args: argparse.Namespace) -> int:
    db = Database(settings)
    try:
        if args.action == "verify":
            result = await verify_snapshot(db)
            print(json.dumps(result.as_dict(), ensure_ascii=False))
            if not result.ok:
                print(f"audit chain broken at record {result.broken_seq}: {result.problem}")
                return 1
            print(f"audit chain intact: {result.checked} records")
            return 0
        operator = Principal(Role.system, f"cli:{getpass.getuser()}", kind="system")
        async with db.writer() as session, session.begin():
            removed = await purge(session, operator, settings.audit_retention_days, utcnow())
        print(f"purged {removed} audit records older than {settings.audit_retention_days} days")
        return 0
    finally:
        await db.dispose()
