"""The application factory."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import warnings
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client.multiprocess import mark_process_dead

from mediation import __version__
from mediation.agreements.router import router as agreements_router
from mediation.alerts.router import router as alerts_router
from mediation.audit.recorder import ChainedRequestAuditor
from mediation.audit.router import router as audit_router
from mediation.audit.seal import seal_keys
from mediation.bodies.places import region_name_hint
from mediation.bodies.router import router as bodies_router
from mediation.clocks import calendar, scheduler
from mediation.clocks.router import router as clocks_router
from mediation.core import metrics
from mediation.core.clock import Clock
from mediation.core.db import Database, utcnow
from mediation.core.errors import (
    PROBLEM_MEDIA_TYPE,
    Forbidden,
    ProblemError,
    Unauthenticated,
    UnsupportedMediaType,
    install_handlers,
    problem_header_components,
    problem_response_doc,
)
from mediation.core.http import (
    RESPONSE_HEADERS,
    AfterResponseMiddleware,
    HttpConventionsMiddleware,
    TimeoutMiddleware,
    header_ref,
)
from mediation.core.idempotency import IDEMPOTENT_REPLAYED
from mediation.core.logging import install_pii_redaction
from mediation.core.secrets import KeysRefused, KeyVerdict, resolve_secrets
from mediation.core.settings import Settings, get_settings
from mediation.disputes.identity import REGION_NAME_GIVEN
from mediation.disputes.router import router as disputes_router
from mediation.documents.router import router as documents_router
from mediation.events.relay import Relay
from mediation.events.router import router as events_router
from mediation.events.sequencer import number_before_commit
from mediation.handoffs.ledger import number_handoffs
from mediation.handoffs.router import router as handoffs_router
from mediation.identity.auth import Identity
from mediation.identity.router import router as identity_router
from mediation.ops.router import router as ops_router
from mediation.stats.router import router as stats_router
from mediation.supervision.router import router as supervision_router
from mediation.triage.router import router as triage_router
from mediation.web import install as install_web

log = logging.getLogger(__name__)

DESCRIPTION = """
矛盾纠纷多元化解「一站式」调处中心服务: registers disputes at one window, routes them to the right
mediation body, follows them against legal deadlines, and hands them on to courts and arbitration.

Conventions: errors are RFC 9457 problem details (`application/problem+json`) with a stable `type`;
changes to a case need `If-Match` with its current `ETag`; creating POSTs and actions honour
`Idempotency-Key`; `Accept-Language: en` switches messages to English (default Chinese). Unknown
body fields and unknown query parameters are refused (422 `extra_forbidden`, the name as `field`).
A body is JSON, sent as `Content-Type: application/json` (or a `+json` type); any other, or none, is 415.
Every GET also answers HEAD (RFC 9110 §9.3.2): the same status and headers, no body.

Authentication: staff sign in at `POST /v1/auth/token` and send `Authorization: Bearer <token>`;
mediation bodies, courts and arbitration commissions send their API key in `X-API-Key`. Each
caller sees only its own cases: a center its region, a body the cases assigned to it, a court or
commission the cases handed to it. ID and phone numbers are masked for roles without `pii:read`.
"""


async def _unless_refused(work: Coroutine[Any, Any, None]) -> None:
    """A worker in the server whose keys do not open the data does not start (the verdict is
    logged, and `/readyz` answers 503 saying so); the server goes on answering what it can."""
    with suppress(KeysRefused):
        await work


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    install_pii_redaction()
    db = Database(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = clock_task = None
        # The holiday schedules loaded for years the calendar package does not carry yet; read again
        # every `calendar_refresh_seconds`, so a schedule loaded through another process counts here.
        try:
            await calendar.refresh(db)
        except Exception:
            log.exception("could not read the holiday schedules at startup; trying again shortly")
        calendar_task = asyncio.create_task(
            calendar.watch(db, settings.calendar_refresh_seconds, stop), name="calendar"
        )
        # The workers check the keys before touching the data: `mediation serve` checked them in the
        # process that started this one, or not at all when the database did not answer then.
        verdict: KeyVerdict = app.state.key_verdict
        if settings.relay_in_app:
            relay = Relay(db, settings, app.state.identity.cipher)
            task = asyncio.create_task(_unless_refused(relay.run(stop, keys=verdict)), name="event-relay")
        if settings.clock_in_app:
            clock_task = asyncio.create_task(
                _unless_refused(
                    scheduler.run(
                        db,
                        app.state.clock,
                        settings,
                        app.state.identity.cipher,
                        stop,
                        app.state.seal_keys,
                        keys=verdict,
                    )
                ),
                name="clocks",
            )
        # Everything built at startup (modules, the app, its routes and schemas) lives as long as the
        # process: moved out of the collector's sight, a full collection no longer walks it, which
        # takes tens of milliseconds off the slowest requests. Once per process: frozen objects are
        # never freed, so where one process builds app after app (the tests, a program embedding
        # the service), only the first is kept for good and the others are collected as usual.
        if gc.get_freeze_count() == 0:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            stop.set()
            await calendar_task
            if clock_task is not None:
                with suppress(TimeoutError):
                    await asyncio.wait_for(clock_task, timeout=10)
            if task is not None:
                # Graceful: the relay finishes its cycle (or is cancelled) and hands back its claims.
                with suppress(TimeoutError):
                    await asyncio.wait_for(task, timeout=settings.webhook_timeout_seconds + 5)
            await db.dispose()
            if metrics.multiprocess():
                # Its gauges of things in use no longer count towards the live workers' sum.
                mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    app = FastAPI(
        title="Mediation center API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    # Whether the personal-data keys open the data stored, found once in this process, by the first
    # `/readyz` or the relay or scheduler running here, whichever asks first (ops.router).
    app.state.key_verdict = KeyVerdict(settings)
    # Writes take turns per process on PostgreSQL (see UnitOfWorkRoute). SQLite runs one writer at a
    # time by itself, and its waits are bounded by its busy timeout, not by a pool.
    app.state.write_gate = (
        asyncio.Semaphore(settings.write_concurrency) if db.engine.dialect.name == "postgresql" else None
    )
    app.state.clock = clock or Clock(settings.timezone)
    secrets = resolve_secrets(settings)
    app.state.identity = Identity.build(settings, secrets)
    app.state.seal_keys = seal_keys(settings, secrets)
    app.state.request_auditor = ChainedRequestAuditor()
    # Last before every commit: number the request's events and new handoffs under the journal
    # lock (commit order).
    app.state.before_commit = [
        lambda session: number_before_commit(session, utcnow()),
        number_handoffs,
    ]
    install_handlers(app, hints={REGION_NAME_GIVEN: region_name_hint})
    # Innermost: its steps run once the answer is sent, past the time limit of the handler's own
    # work (which stops at the answer), with one of their own.
    app.add_middleware(AfterResponseMiddleware, seconds=settings.request_timeout_seconds)
    app.add_middleware(TimeoutMiddleware, seconds=settings.request_timeout_seconds)
    app.add_middleware(
        HttpConventionsMiddleware,
        max_body_bytes=settings.max_body_bytes,
        default_language=settings.default_language,
        upload_max_bytes=settings.document_max_bytes + 64 * 1024,
    )
    app.include_router(identity_router)
    app.include_router(disputes_router)
    app.include_router(bodies_router)
    app.include_router(triage_router)
    app.include_router(documents_router)
    app.include_router(agreements_router)
    app.include_router(handoffs_router)
    app.include_router(clocks_router)
    app.include_router(supervision_router)
    app.include_router(alerts_router)
    app.include_router(events_router)
    app.include_router(audit_router)
    app.include_router(stats_router)
    app.include_router(ops_router)
    install_web(app)
    app.openapi = lambda: _contract(app)  # type: ignore[method-assign]
    return app


def _declare(operation: dict[str, Any], *problems: type[ProblemError]) -> None:
    """Adds `problems` to an operation's responses (a status it declares already keeps its own)."""
    for problem in problems:
        operation["responses"].setdefault(str(problem.status), problem_response_doc([problem]))
    operation["responses"] = dict(sorted(operation["responses"].items(), key=lambda item: str(item[0])))


def _declare_replays(operation: dict[str, Any]) -> None:
    """An operation taking an Idempotency-Key answers a retry with the first answer, stored, and says
    so in Idempotent-Replayed (core/idempotency.py)."""
    if not any(
        p.get("in") == "header" and p.get("name") == "Idempotency-Key"
        for p in operation.get("parameters", [])
    ):
        return
    for status, response in operation["responses"].items():
        if status.startswith("2"):
            response.setdefault("headers", {})["Idempotent-Replayed"] = header_ref("IdempotentReplayed")


def _header_components() -> dict[str, dict[str, Any]]:
    """components/headers: every response header the operations refer to."""
    components = {
        **RESPONSE_HEADERS,
        **problem_header_components(),
        "IdempotentReplayed": IDEMPOTENT_REPLAYED,
    }
    return dict(sorted(components.items()))


def _contract(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with every error response declared as problem+json only."""
    if app.openapi_schema is None:
        with warnings.catch_warnings():
            # Each HEAD shares its GET's operationId (core/http.py, HeadServingRoute); it is left
            # out below. The committed contract's ids are checked unique (tests/test_contract.py).
            warnings.filterwarnings("ignore", message="Duplicate Operation ID", category=UserWarning)
            document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
        for operations in document["paths"].values():
            # HEAD is GET without the body (RFC 9110 §9.3.2), said once in the description: listed,
            # it would double every read operation of the contract word for word.
            operations.pop("head", None)
            for operation in operations.values():
                if operation.get("security"):
                    # Every authenticated operation can answer 401, and 403 to a role without the
                    # permission it needs; declare them once, here.
                    _declare(operation, Unauthenticated, Forbidden)
                if "application/json" in operation.get("requestBody", {}).get("content", {}):
                    # A body labelled as anything else is refused before it is read (core/db.py).
                    _declare(operation, UnsupportedMediaType)
                _declare_replays(operation)
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status[0] in "45" and PROBLEM_MEDIA_TYPE in content:
                        content.pop("application/json", None)
        document.setdefault("components", {})["headers"] = _header_components()
        app.openapi_schema = document
    return app.openapi_schema
