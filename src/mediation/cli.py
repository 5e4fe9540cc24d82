"""The `mediation` command."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import copy
import json
import logging.config
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from mediation.audit import cli as audit_cli
from mediation.core import metrics
from mediation.core.i18n import set_language
from mediation.core.logging import install_pii_redaction
from mediation.core.secrets import KeysProblem
from mediation.core.settings import ConfigurationError, Settings, get_settings, unknown_variables
from mediation.documents import cli as documents_cli
from mediation.identity import cli as identity_cli
from mediation.ops import pii_keys

log = logging.getLogger("mediation")


def _openapi(output: Path, errors_doc: Path) -> None:
    from mediation.app import create_app
    from mediation.core.errors import problem_catalogue_markdown
    from mediation.events.catalogue import document as events_document

    output.parent.mkdir(parents=True, exist_ok=True)
    for path, document in (
        (output, create_app().openapi()),
        (output.with_name("events.json"), events_document()),
    ):
        path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    errors_doc.parent.mkdir(parents=True, exist_ok=True)
    errors_doc.write_text(problem_catalogue_markdown(), encoding="utf-8")
    print(f"wrote {errors_doc}")


def _configuration_errors(exc: ValidationError) -> str:
    """One line per refused setting, named as it is set (MEDIATION_...), without a traceback. The
    value given is not repeated: it may be a secret."""
    lines = ["configuration error:"]
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        if error["loc"]:
            message = "MEDIATION_" + "_".join(str(part) for part in error["loc"]).upper() + ": " + message
        lines.append(f"  {message}")
    return "\n".join(lines)


# The service's own log lines (the access log `mediation.access`, the relay, the scheduler, the
# audit seal), each record redacted by the handler too (core.logging), whichever process made it,
# and each line stamped with its time (ISO 8601, milliseconds, UTC offset).
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_FORMATTER = {"()": "mediation.core.logging.TimestampedFormatter", "fmt": _FORMAT}
SERVICE_LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "mediation.core.logging.RedactingFilter"}},
    "formatters": {"service": _FORMATTER},
    "handlers": {
        "service": {
            "class": "logging.StreamHandler",
            "formatter": "service",
            "filters": ["redact"],
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"handlers": ["service"], "level": "INFO"},
    # Alembic announces each of its plugins at every load of the migrations (`migrate`, and the
    # schema's check before every command on the database): nothing an operator acts on.
    "loggers": {"transitions": {"level": "WARNING"}, "alembic.runtime.plugins": {"level": "WARNING"}},
}


def _uvicorn_logging() -> dict[str, Any]:
    """uvicorn's own logging configuration with the service's added, its lines (`uvicorn.error` on
    stderr, `uvicorn.access` on stdout) written and redacted as the service's are. uvicorn's
    formatters would not do: they print no time, and the access one reads the request from the
    record's arguments, which the redaction has already merged into its message."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for part in ("filters", "formatters", "handlers", "loggers"):
        config.setdefault(part, {}).update(copy.deepcopy(SERVICE_LOGGING.get(part, {})))
    for name in ("default", "access"):
        config["formatters"][name] = copy.deepcopy(_FORMATTER)
        config["handlers"][name]["filters"] = ["redact"]
    config["root"] = copy.deepcopy(SERVICE_LOGGING["root"])
    return config


def _share_metrics() -> None:
    """Several workers count requests each in its own process: their figures are added up at
    `GET /metrics` through files in a folder of their own (core.metrics). One the operator named is
    used as it is (emptied by them between runs, as prometheus_client asks); otherwise a fresh one,
    removed when the service stops."""
    if os.environ.get(metrics.MULTIPROCESS_DIR):
        return
    folder = tempfile.mkdtemp(prefix="mediation-metrics-")
    atexit.register(shutil.rmtree, folder, True)
    os.environ[metrics.MULTIPROCESS_DIR] = folder


# The commands that work on the database. Each is refused (exit 2, with what to do) on a database
# it cannot reach or one `mediation migrate` has not brought to this release's schema, rather than
# failing on its first query with a traceback (and, on SQLite, leaving an empty file where none
# was); so `audit verify` exits 1 for a broken chain only.
_ON_THE_DATABASE = frozenset(
    {
        "serve",
        "migrate",
        "seed-demo",
        "relay",
        "clocks",
        "scheduler",
        "users",
        "keys",
        "audit",
        "pii",
        "documents",
    }
)


_LONG_RUNNING = frozenset({"serve", "relay", "scheduler"})
# The commands that read and write personal data as the service runs: refused when the keys do not
# open what is stored (keys generated anew beside old data). `pii` is left to diagnose and rekey.
_USING_PERSONAL_DATA = frozenset({"serve", "relay", "scheduler", "clocks", "seed-demo"})


class _Unreachable(Exception):
    pass


async def _connect_and_check(settings: Settings, *, check_keys: bool) -> str | None:
    """The schema's problem for this release (migrate.schema_problem), then, with `check_keys`, the
    secrets' (they must open the personal data stored), or None; _Unreachable when the database
    cannot be connected to."""
    from mediation.core.db import Database
    from mediation.core.secrets import keys_problem
    from mediation.migrate import schema_problem

    db = Database(settings)
    try:
        async with db.engine.connect() as connection:
            problem = await schema_problem(connection)
            if problem is None and check_keys:
                problem = await keys_problem(connection, settings)
            return problem
    except (OSError, SQLAlchemyError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise _Unreachable(reason[0] if reason else type(exc).__name__) from exc
    finally:
        await db.dispose()


class _Unchecked:
    """The database did not answer a long-running command at start: it starts all the same, and
    checks the schema and keys once the database answers."""


_UNCHECKED = _Unchecked()


def _database_refusal(settings: Settings, command: str) -> str | _Unchecked | None:
    """Why `command` cannot work on the configured database, as said to the operator; None if it
    can. `migrate` needs the database reachable only (it makes the schema); the long-running
    commands need its schema, but start while the database is unreachable (_UNCHECKED) and carry
    on when it answers (a host booting, PostgreSQL restarting), checking the keys then as they
    would have at start: `/readyz` tells for `serve`, the relay and the scheduler stop (exit 2)."""
    url = make_url(settings.database_url)
    where = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        # Told before connecting: SQLite would create the file, and a failed open leaves
        # aiosqlite's thread to print a traceback of its own.
        path = Path(url.database)
        if not path.parent.is_dir():
            return f"error: cannot create the database at {path}: there is no folder {path.parent}"
        if command != "migrate" and not path.exists():
            return f"error: there is no database at {path}: run `mediation migrate` first"
    try:
        problem = asyncio.run(_connect_and_check(settings, check_keys=command in _USING_PERSONAL_DATA))
    except _Unreachable as exc:
        if command == "serve":
            # Its schema and keys are checked by `/readyz` once the database answers.
            log.warning(
                "cannot connect to the database at %s yet (%s): serving, not ready until it answers "
                "and the personal-data keys are found to open its data",
                where,
                exc,
            )
            return _UNCHECKED
        if command in _LONG_RUNNING:
            log.warning(
                "cannot connect to the database at %s yet (%s): starting, to work once it answers "
                "and the personal-data keys are found to open its data",
                where,
                exc,
            )
            return _UNCHECKED
        return f"error: cannot connect to the database at {where}: {exc}"
    if problem is None or command == "migrate":
        return None
    if isinstance(problem, KeysProblem):
        return _keys_refusal(settings, problem)
    return f"error: {problem} ({where}): run `mediation migrate` first"


def _keys_refusal(settings: Settings, problem: KeysProblem) -> str:
    return f"error: {problem} ({make_url(settings.database_url).render_as_string(hide_password=True)})"


def _whole(given: str) -> int:
    try:
        return int(given)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{given!r} is not a whole number") from None


def _port(given: str) -> int:
    # Checked here: the socket takes a larger number modulo 65536 (99999 listens on 34463) while
    # uvicorn announces the number given, and 0 is whichever port is free.
    port = _whole(given)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{given} is not a port (1 to 65535)")
    return port


def _workers(given: str) -> int:
    workers = _whole(given)
    if workers < 1:
        raise argparse.ArgumentTypeError(f"{given} is not a number of workers (at least 1)")
    return workers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mediation", description="One-stop dispute mediation center service"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000)
    serve.add_argument("--workers", type=_workers, default=1)
    commands.add_parser("migrate", help="bring the database schema up to date")
    seed = commands.add_parser(
        "seed-demo",
        help="load demo data into an empty database (skipped when it already has cases, refused when "
        "it has accounts, organisations or API keys of its own)",
    )
    seed.add_argument(
        "--force", action="store_true", help="add demo data even if cases, accounts or organisations exist"
    )
    openapi = commands.add_parser("openapi", help="write the OpenAPI contract")
    openapi.add_argument("--output", type=Path, default=Path("openapi/openapi.json"))
    openapi.add_argument(
        "--errors-doc", type=Path, default=Path("docs/errors.md"), help="where the problem catalogue goes"
    )
    commands.add_parser("lifecycle", help="print the lifecycle as a Mermaid diagram")
    commands.add_parser("relay", help="run the event relay (sequencing and webhook delivery) until stopped")
    commands.add_parser(
        "clocks",
        help="run the scheduler once (deadline levels, lapsed sign-for, overdue obligations, "
        "late courts, overdue supervision orders) and exit",
    )
    scheduler = commands.add_parser(
        "scheduler",
        help="run the scheduler until stopped (safe beside the API's own and other schedulers on PostgreSQL)",
    )
    scheduler.add_argument("--once", action="store_true", help="run one pass and exit (same as `clocks`)")
    identity_cli.add_parsers(commands)
    audit_cli.add_parsers(commands)
    pii_keys.add_parsers(commands)
    documents_cli.add_parsers(commands)
    args = parser.parse_args(argv)
    logging.config.dictConfig(SERVICE_LOGGING)
    install_pii_redaction()
    # A misspelt variable is told first: the setting it meant has taken its default, which may be
    # what the other errors are about (a database URL misspelt is a fresh SQLite file).
    unknown = unknown_variables()
    if unknown:
        print("\n  ".join(["configuration error:", *unknown]), file=sys.stderr)
        return 2
    try:
        settings = get_settings()
        if args.command in _ON_THE_DATABASE:
            from mediation.core.secrets import resolve_secrets

            resolve_secrets(settings)
    except ValidationError as exc:
        print(_configuration_errors(exc), file=sys.stderr)
        return 2
    except ConfigurationError as exc:
        print("\n  ".join(["configuration error:", *exc.lines]), file=sys.stderr)
        return 2
    # The service's own messages a command prints (a refusal of `users create`, say) are in the
    # language configured for requests that ask for none: a command asks for none either.
    set_language(settings.default_language)
    unchecked = False
    if args.command in _ON_THE_DATABASE:
        one_pass = args.command == "scheduler" and args.once
        refusal = _database_refusal(settings, "clocks" if one_pass else args.command)
        unchecked = refusal is _UNCHECKED
        if isinstance(refusal, str):
            print(refusal, file=sys.stderr)
            return 2
    if args.command in _LONG_RUNNING:
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        log.info("database: %s", where)

    if args.command == "serve":
        import uvicorn

        if args.workers > 1:
            _share_metrics()
        uvicorn.run(
            "mediation.app:create_app",
            # Applied again in every worker process (uvicorn configures logging in each): without
            # it, a worker logs only uvicorn's own lines, and the service's (the access log, the
            # relay, the scheduler, every INFO) are lost, warnings and errors bare on stderr.
            log_config=_uvicorn_logging(),
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            # The service writes its own access log (mediation.access), with the time each request
            # took and its request id; uvicorn's would say the same again, less.
            access_log=False,
        )
    elif args.command == "migrate":
        from mediation.migrate import upgrade

        upgrade(settings.database_url)
    elif args.command == "seed-demo":
        from mediation.demo import seed_accounts, seed_demo

        seeded = asyncio.run(seed_demo(settings, force=args.force))
        if seeded.refused:
            print(seeded.message, file=sys.stderr)
            return 2
        print(seeded.message)
        # A database that already held cases may be a real one, without the demo county's bodies:
        # no demo accounts are added to it; those already there (an earlier demo) are listed.
        print(asyncio.run(seed_accounts(settings, create=seeded.loaded)))
    elif args.command == "openapi":
        _openapi(args.output, args.errors_doc)
    elif args.command == "lifecycle":
        from mediation.disputes.lifecycle import mermaid

        sys.stdout.write(mermaid())
    elif args.command == "relay":
        from mediation.core.secrets import KeysRefused
        from mediation.events.relay import run_standalone

        try:
            asyncio.run(run_standalone(settings, check_keys=unchecked))
        except KeysRefused as refused:
            print(_keys_refusal(settings, refused.problem), file=sys.stderr)
            return 2
    elif args.command == "clocks" or (args.command == "scheduler" and args.once):
        return asyncio.run(_clocks_once(settings))
    elif args.command == "scheduler":
        return asyncio.run(_scheduler(settings, check_keys=unchecked))
    elif args.command in ("users", "keys"):
        return asyncio.run(identity_cli.run(settings, args))
    elif args.command == "audit":
        return asyncio.run(audit_cli.run(settings, args))
    elif args.command == "pii":
        return asyncio.run(pii_keys.run(settings, args))
    elif args.command == "documents":
        return asyncio.run(documents_cli.run(settings, args))
    return 0


async def _scheduler(settings: Settings, *, check_keys: bool = False) -> int:
    """The scheduler as its own process (set MEDIATION_CLOCK_IN_APP=false on the API then, or not:
    several schedulers at once are safe). Stops cleanly on SIGTERM or SIGINT. `check_keys`: as
    scheduler.run's; exit status 2 if the keys do not open the data."""
    import signal

    from mediation.audit.seal import seal_keys
    from mediation.clocks.scheduler import run
    from mediation.core.clock import Clock
    from mediation.core.db import Database
    from mediation.core.pii import PiiCipher
    from mediation.core.secrets import KeysRefused, KeyVerdict, resolve_secrets

    db = Database(settings)
    secrets = resolve_secrets(settings)
    cipher = PiiCipher.from_secrets(secrets.pii_encryption_keys, secrets.pii_index_key)
    seals = seal_keys(settings, secrets)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        verdict = KeyVerdict(settings) if check_keys else None
        await run(db, Clock(settings.timezone), settings, cipher, stop, seals, keys=verdict)
    except KeysRefused as refused:
        print(_keys_refusal(settings, refused.problem), file=sys.stderr)
        return 2
    finally:
        await db.dispose()
    return 0


async def _clocks_once(settings: Settings) -> int:
    """For a scheduler (cron, systemd timer) when the clocks do not run inside the API process."""
    from mediation.audit.seal import seal_keys
    from mediation.clocks.scheduler import tick
    from mediation.core.clock import Clock
    from mediation.core.db import Database
    from mediation.core.pii import PiiCipher
    from mediation.core.secrets import resolve_secrets

    db = Database(settings)
    secrets = resolve_secrets(settings)
    cipher = PiiCipher.from_secrets(secrets.pii_encryption_keys, secrets.pii_index_key)
    try:
        report = await tick(db, Clock(settings.timezone), settings, cipher, seal_keys(settings, secrets))
    finally:
        await db.dispose()
    print(
        f"{report.at_risk} deadline(s) at risk, {report.overdue} overdue; "
        f"{report.windows_closed} parties' window(s) closed; "
        f"{report.orders_escalated} supervision order(s) escalated; "
        f"{report.stats_days} day(s) of statistics recounted; "
        f"returned {report.lapsed} case(s) not signed for in time; "
        f"{report.obligations_overdue} obligation(s) overdue sent to follow-up; "
        f"{report.handoffs_overdue} late court/commission step(s) flagged; "
        f"{report.materials_overdue} court request(s) for materials past their day; "
        f"{report.failed} changed meanwhile or deferred"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
