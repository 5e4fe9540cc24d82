"""What one statement costs the app's CPU through the ORM's session, next to the driver alone.

The floor runs the service's statements on asyncpg directly; the service runs them through
SQLAlchemy's `AsyncSession`. This measures the difference for two statements every write runs:
the sign-in lookup (columns) and the case read by its id (an ORM entity, loaded afresh each time),
each sent one at a time on one connection, in one transaction, against a scratch database with the
demo data. CPU time is the process's own (user and system), so the round trip's system calls count
on both sides.

Run: .venv/bin/python bench/statement_cost.py [--count 3000] [--admin-dsn postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import run
from sqlalchemy import bindparam, select

from mediation.core.db import Database
from mediation.disputes.models import Dispute
from mediation.identity.auth import _USER_AND_BODY
from mediation.identity.models import User


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _per_call(count: int, call: Callable[[], Awaitable[Any]]) -> float:
    """Microseconds of CPU per call, after a warm-up (prepared statements, caches)."""
    for _ in range(100):
        await call()
    started = _cpu()
    for _ in range(count):
        await call()
    return (_cpu() - started) / count * 1e6


async def main(args: argparse.Namespace) -> None:
    name, _dsn, settings = await run.prepare(args.admin_dsn, Path(tempfile.mkdtemp()))
    db = Database(settings)
    try:
        async with db.writer() as session, session.begin():
            user_id = await session.scalar(select(User.id).where(User.username == "clerk"))
            case_id = await session.scalar(select(Dispute.id).limit(1))
            statements: dict[str, tuple[Any, dict[str, Any]]] = {
                "sign-in lookup (columns)": (_USER_AND_BODY, {"user_id": user_id, "sid": "x" * 22}),
                "case by id (ORM entity)": (
                    select(Dispute)
                    .where(Dispute.id == bindparam("case_id"))
                    .execution_options(populate_existing=True),
                    {"case_id": case_id},
                ),
            }
            raw = (await (await session.connection()).get_raw_connection()).driver_connection
            assert raw is not None
            print(f"CPU per statement, {args.count} each (microseconds):")
            print(f"  {'statement':28s} {'asyncpg':>8s} {'AsyncSession':>13s} {'added':>7s}")
            for label, (statement, params) in statements.items():
                compiled = statement.compile(dialect=db.engine.dialect)
                sql = str(compiled)
                values = [params[n] for n in compiled.positiontup or ()]

                async def driver(sql: str = sql, values: list[Any] = values) -> Any:
                    return await raw.fetch(sql, *values)

                async def orm(statement: Any = statement, params: dict[str, Any] = params) -> Any:
                    return (await session.execute(statement, params)).all()

                alone = await _per_call(args.count, driver)
                through = await _per_call(args.count, orm)
                print(f"  {label:28s} {alone:8.1f} {through:13.1f} {through - alone:7.1f}")
    finally:
        await db.dispose()
        await run._drop(args.admin_dsn, name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--admin-dsn", default=run.ADMIN_DSN)
    parser.add_argument("--count", type=int, default=3000)
    asyncio.run(main(parser.parse_args()))
