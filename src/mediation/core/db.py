"""Database engines, the declarative base and the unit of work.

One place commits: `UnitOfWorkRoute` opens a session for each request, the endpoint and the
services only add and flush, and the route commits once before the response leaves (or rolls back
on any error). Services never commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, TypeVarTuple

from fastapi import Request, Response, params
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy import JSON, ColumnElement, DateTime, MetaData, Select, any_, bindparam, event, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect, Row
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, QueryableAttribute, Session
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.types import TypeDecorator
from starlette.exceptions import HTTPException as StarletteHTTPException

from mediation.core import metrics
from mediation.core.errors import (
    OutsideScope,
    ProblemError,
    StaleVersion,
    duplicate_field,
    is_connection_problem,
    json_body_required,
    unknown_query_parameters,
)
from mediation.core.http import UPLOAD_PATH, HeadServingRoute, keyset_cursor, keyset_position
from mediation.core.schemas import parse_instant
from mediation.core.settings import Settings

log = logging.getLogger(__name__)

# Stable constraint names, so SQLite batch migrations and PostgreSQL agree.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both databases (SQLite stores naive text otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


@event.listens_for(Base, "attribute_instrument", propagate=True)
def _instants_held_in_utc(_cls: type, _key: str, attribute: Any) -> None:
    """Every instant a row is given is held in UTC, as the database gives it back: an answer built
    from the row just written (a sitting scheduled for 09:00+08:00) then names the instant as every
    later read does (01:00Z), and a client comparing the two sees no change where there is none. A
    naive value is left for UTCDateTime to refuse."""
    columns = getattr(getattr(attribute, "property", None), "columns", None)
    if columns and isinstance(columns[0].type, UTCDateTime):
        event.listen(attribute, "set", _in_utc, retval=True)


def _in_utc(_target: Any, value: Any, _old: Any, _initiator: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


def insert_of(session: AsyncSession) -> Callable[[Any], PgInsert | SqliteInsert]:
    """The session's database's own INSERT, for its ON CONFLICT clause (both spell it alike)."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def new_id() -> uuid.UUID:
    return uuid.uuid4()


_last_id = 0


def one_of(column: QueryableAttribute[Any], name: str) -> dict[str, ColumnElement[bool]]:
    """`column` equal to one of the values bound to `name`, for each dialect.

    PostgreSQL gets `= ANY(:name)` with one array parameter: one statement for a list of any
    length, so it is prepared once per connection. `IN (...)` is a new statement for every length,
    and on the hot paths (the cases of a growing wave of disputes) churned asyncpg's statement cache,
    preparing a fresh statement on nearly every call. SQLite has no arrays: an expanding IN there."""
    return {
        "postgresql": column == any_(bindparam(name, type_=ARRAY(column.type))),
        "sqlite": column.in_(bindparam(name, expanding=True)),
    }


def ordered_id() -> uuid.UUID:
    """A UUIDv7 (RFC 9562) that increases with every call in this process.

    For rows ordered by (created_at, id) whose created_at is often shared (one clock reading per
    transaction, or a frozen clock): events numbered after their commit, documents of a case. The
    id keeps the order they were written in (a case's `registered` before its `accepted`). Within one
    millisecond the random part counts up (RFC 9562 §6.2, method 2); the `uuid6` package instead
    advances the millisecond, which runs ahead of the clock in bursts."""
    global _last_id
    candidate = ((time.time_ns() // 1_000_000) << 74) | secrets.randbits(74)
    _last_id = payload = max(candidate, _last_id + 1)  # 48-bit ms, then 74 bits random/counter
    value = (
        ((payload >> 74) << 80)
        | (0x7 << 76)  # version 7
        | (((payload >> 62) & 0xFFF) << 64)
        | (0b10 << 62)  # RFC 9562 variant
        | (payload & ((1 << 62) - 1))
    )
    return uuid.UUID(int=value)


def utcnow() -> datetime:
    return datetime.now(UTC)


_Row = TypeVar("_Row")
_Columns = TypeVarTuple("_Columns")
_Select = TypeVar("_Select", bound=Select[*tuple[Any, ...]])


async def keyset_page(
    session: AsyncSession,
    stmt: Select[_Row],
    when: QueryableAttribute[datetime],
    row_id: QueryableAttribute[uuid.UUID],
    limit: int,
    cursor: str | None,
    *,
    newest_first: bool = False,
) -> tuple[list[_Row], str | None]:
    """A page of the rows `stmt` selects, ordered by (`when`, `row_id`), oldest first unless
    `newest_first`, from after the row `cursor` names (a `keyset_cursor`; anything else is 422
    `invalid_cursor`); and the cursor after the page, None on the last page. Ties on the time are
    broken by id, so a page never repeats or skips a row that shares its time with the last of the
    page before. A row comparison, not `when < t OR (when = t AND id < i)`: PostgreSQL starts the
    scan of a (when, id) index at the cursor with it."""
    rows = list((await session.scalars(_keyset(stmt, when, row_id, limit, cursor, newest_first))).all())
    page = rows[:limit]
    if len(rows) > limit:
        return page, keyset_cursor(getattr(page[-1], when.key), getattr(page[-1], row_id.key))
    return page, None


async def keyset_rows(
    session: AsyncSession,
    stmt: Select[*_Columns],
    when: QueryableAttribute[datetime],
    row_id: QueryableAttribute[uuid.UUID],
    limit: int,
    cursor: str | None,
    *,
    newest_first: bool = False,
) -> tuple[list[Row[*_Columns]], str | None]:
    """`keyset_page` for a select of several columns (an entity and what it is listed with): the
    page's rows whole, paged by `when` and `row_id` of the entity each row begins with."""
    rows = list((await session.execute(_keyset(stmt, when, row_id, limit, cursor, newest_first))).all())
    page = rows[:limit]
    if len(rows) > limit:
        first = next(iter(page[-1]))
        return page, keyset_cursor(getattr(first, when.key), getattr(first, row_id.key))
    return page, None


def _keyset(
    stmt: _Select,
    when: QueryableAttribute[datetime],
    row_id: QueryableAttribute[uuid.UUID],
    limit: int,
    cursor: str | None,
    newest_first: bool,
) -> _Select:
    if cursor is not None:
        at, last = keyset_position(cursor, parse_instant)
        position, past = tuple_(when, row_id), tuple_(at, last)
        stmt = stmt.where(position < past if newest_first else position > past)
    order = (when.desc(), row_id.desc()) if newest_first else (when, row_id)
    return stmt.order_by(*order).limit(limit + 1)


def _refuse_closed_connection(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed (a terminated backend, a restart) is replaced
    before a request gets it. The driver saw the server's goodbye on the socket, so this costs no
    round trip; SQLAlchemy's pre-ping would cost three (BEGIN, ping, ROLLBACK) on every checkout.
    A connection that dies unannounced fails its request with 503, and SQLAlchemy then replaces
    every connection opened before it."""
    driver = record.driver_connection
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the server closed this connection")


def _count_connections_in_use(engine: AsyncEngine) -> None:
    """`mediation_db_connections_in_use`: after the other checkout hooks, which may still refuse
    the connection."""
    pool = engine.sync_engine.pool
    event.listen(pool, "checkout", lambda *_: metrics.POOL_IN_USE.inc())
    event.listen(pool, "checkin", lambda *_: metrics.POOL_IN_USE.dec())


class Database:
    """The engines and session factories of one app instance.

    On SQLite, writers start with BEGIN IMMEDIATE: they take the write lock up front and wait for it
    (busy_timeout) instead of failing later with "database is locked" when a read lock cannot be
    upgraded. Readers use a plain deferred transaction and, in WAL mode, never block.
    """

    def __init__(self, settings: Settings) -> None:
        self.url = settings.database_url
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = self._sqlite_engine(settings, immediate=False)
            self.write_engine = self._sqlite_engine(settings, immediate=True)
        else:
            self.engine = create_async_engine(
                self.url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
                pool_timeout=settings.db_pool_timeout_seconds,
                # A runaway query is cancelled by the server rather than holding locks for ever.
                connect_args={
                    "server_settings": {"statement_timeout": str(settings.db_statement_timeout_ms)}
                },
            )
            event.listen(self.engine.sync_engine.pool, "checkout", _refuse_closed_connection)
            self.write_engine = self.engine
        for engine in {self.engine, self.write_engine}:
            _count_connections_in_use(engine)
        self.reader = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self.writer = async_sessionmaker(self.write_engine, expire_on_commit=False, autoflush=False)

    def _sqlite_engine(self, settings: Settings, *, immediate: bool) -> AsyncEngine:
        engine = create_async_engine(
            self.url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout_seconds,
        )
        busy = settings.sqlite_busy_timeout_ms

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when transactions begin.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# session.info: set on the sessions whose `before_commit` hooks are sure to run before they commit
# (the unit of work's), so a hook may be left to write what it finishes (events.service).
HOOKS_BEFORE_COMMIT = "mediation.hooks_before_commit"


class RequestAuditor(Protocol):
    """What the unit of work tells the audit trail (kept on `app.state.request_auditor`)."""

    async def succeeded(self, request: Request, session: AsyncSession, response: Response) -> None:
        """A change is about to commit: audit it in the same transaction."""

    async def failed(self, request: Request, status: int, response: Response | None = None) -> None:
        """The request was refused or failed and its transaction rolled back; `response` is the
        answer the handler made, when it made one (a refusal page can show personal data)."""

    async def read(self, request: Request, response: Response) -> None:
        """A read is about to answer (audits disclosure of personal data)."""


def session_of(request: Request) -> AsyncSession:
    """The request's session, opened by `UnitOfWorkRoute`."""
    session: AsyncSession = request.state.session
    return session


def release_on_rollback(request: Request) -> list[Callable[[], Awaitable[None]]]:
    """What the request claimed in transactions of its own (an idempotency key), to be given back
    if its unit of work rolls back. A claimant removes its release once it gave the claim back
    itself; the rest run after the rollback, whatever caused it."""
    releases: list[Callable[[], Awaitable[None]]] | None = getattr(request.state, "release_on_rollback", None)
    if releases is None:
        releases = request.state.release_on_rollback = []
    return releases


async def _give_back_claims(request: Request) -> None:
    releases = release_on_rollback(request)
    while releases:
        release = releases.pop()
        try:
            await release()
        except Exception:
            # The claim then lapses by itself (an idempotency key once its lock expires).
            log.warning("could not give back a claim of a rolled-back request", exc_info=True)


def _strict(
    handler: Callable[[Request], Coroutine[Any, Any, Response]], known: frozenset[str], json_body: bool
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    """`handler`, refusing query parameters not in `known` and, for a route that reads a JSON body,
    a body naming one field twice in an object."""

    async def checked(request: Request) -> Response:
        # Inside the unit of work, so a refused write is audited as any other invalid one.
        if request.scope.get("query_string"):
            unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in known]
            if unknown:
                raise unknown_query_parameters(unknown, known)
        if json_body:
            body = await request.body()
            if body:
                content_type = request.headers.get("content-type")
                if not _is_json(content_type or ""):
                    # The framework would validate the raw bytes and answer 422 as if the fields
                    # were wrong ("should be an object"); the client needs to hear the label is.
                    raise json_body_required(content_type)
                # The framework reads the body parsed here (`Request.json` keeps it), so it is
                # parsed once. A body that is not JSON is left for the framework to refuse.
                with contextlib.suppress(ValueError, RecursionError):  # not JSON, not UTF-8, too deep
                    request._json = json.loads(body, object_pairs_hook=_unique_fields)
        return await handler(request)

    return checked


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def _unique_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused if it names a field twice (RFC 8259 §4: the names SHOULD be unique;
    parsers differ on which one wins). A proxy or a log reading the first `decision` and the
    service the last must never disagree on what was asked."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise duplicate_field(name)
            seen.add(name)
    return found


def _status_of(exc: Exception) -> int:
    """The status a failed request will answer with, for its audit record."""
    if isinstance(exc, ProblemError):
        return exc.http_status
    if isinstance(exc, RequestValidationError):
        return 422
    if isinstance(exc, StaleDataError):  # a versioned row changed under the flush
        return StaleVersion.status
    if isinstance(exc, StarletteHTTPException):  # e.g. 413 raised while reading the body
        return 422 if exc.status_code == 400 else exc.status_code  # an unparsable body answers 422
    if is_connection_problem(exc):
        return 503
    return 500


def _query_names(dependant: Dependant) -> frozenset[str]:
    """Every query parameter a route declares, its dependencies' included, by the name a client
    sends (the alias); a parameter model (`Annotated[Model, Query()]`) declares its fields."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        pending.extend(current.dependencies)
        for field in current.query_params:
            model = field.field_info.annotation
            if isinstance(model, type) and issubclass(model, BaseModel):
                names.update(f.alias or name for name, f in model.model_fields.items())
            else:
                names.add(field.alias)
    return frozenset(names)


class UnitOfWorkRoute(HeadServingRoute):
    """Opens one session per request and commits it once, before the response is sent.

    A change commits together with its audit record or not at all; a refused or failed change is
    rolled back and then audited in a transaction of its own.

    A query parameter the route does not declare is refused (422), as an unknown body field is: a
    client that misspells a filter (`?statuss=mediating`) would otherwise get every case in its
    scope back as if they matched, and act on them. The pages (`WebRoute`) keep ignoring them,
    since browsers and links add their own. So is a JSON body naming a field twice in one object
    (`_unique_fields`).
    """

    strict_requests: bool = True

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.strict_requests:
            takes_json = self.body_field is not None and not isinstance(
                self.body_field.field_info, params.Form
            )
            handler = _strict(handler, _query_names(self.dependant), takes_json)

        async def unit_of_work(request: Request) -> Response:
            reading = request.method in READ_METHODS
            gate: asyncio.Semaphore | None = getattr(request.app.state, "write_gate", None)
            # Writes take turns per process. Each ends holding the journal head (and an intake the
            # county's case-number counter) until it commits; with many writes at once on one event
            # loop, the holder waits for the CPU behind the others, and every writer everywhere waits
            # for it. Waiting here holds no lock. Uploads skip the line: they read their body inside.
            # So do the forms' second submissions that only read back the first's stored answer
            # and record themselves (web/submissions.py).
            replaying = getattr(request.state, "replaying_form", False)
            if reading or gate is None or replaying or UPLOAD_PATH.match(request.url.path):
                return await self._unit_of_work(handler, request, reading)
            settings: Settings = request.app.state.settings
            try:
                # A timeout scope, not wait_for: no task is made for every write that finds its turn free.
                async with asyncio.timeout(settings.db_pool_timeout_seconds):
                    await gate.acquire()
            except TimeoutError:
                # As long a wait as for a pooled connection, and the same answer: 503, retry later.
                raise PoolTimeout("no turn for a write within the pool timeout") from None
            try:
                return await self._unit_of_work(handler, request, reading)
            finally:
                gate.release()

        return unit_of_work

    @staticmethod
    async def _unit_of_work(
        handler: Callable[[Request], Coroutine[Any, Any, Response]], request: Request, reading: bool
    ) -> Response:
        db: Database = request.app.state.db
        auditor: RequestAuditor | None = getattr(request.app.state, "request_auditor", None)
        factory = db.reader if reading else db.writer
        async with factory() as session:
            session.info[HOOKS_BEFORE_COMMIT] = True
            event.listen(session.sync_session, "before_flush", _note_writes)
            request.state.session = session
            try:
                response = await handler(request)
                # A change found made already, as asked (a retry whose first answer was lost),
                # that wrote nothing: audited as a read is, not as a second change.
                # Only if the session holds no unwritten change: one left there by mistake would
                # commit unaudited, so it is audited as the change it is.
                reading = reading or (
                    getattr(request.state, "changed_nothing", False) and not _pending_changes(session)
                )
                if response.status_code < 400:
                    # Both take the journal head, which every writer waits for: the hooks
                    # (event numbering) first, and the audit record's flush writes all rows.
                    for hook in getattr(request.app.state, "before_commit", ()):
                        await hook(session)
                    if not reading and auditor:
                        await auditor.succeeded(request, session, response)
                    await session.commit()
            except BaseException as exc:
                await session.rollback()
                # Whatever failed (the handler, numbering the events, the audit record, the commit,
                # the time limit), nothing was changed: the client is told to retry, and may.
                await _give_back_claims(request)
                if isinstance(exc, OutsideScope):
                    # Answered as missing, recorded as what it was (a read too, unlike a typo's 404).
                    request.state.audit_refusals = True
                    request.state.audit_details = {
                        **(getattr(request.state, "audit_details", None) or {}),
                        "refused": "outside_scope",
                    }
                if auditor and isinstance(exc, Exception):
                    await auditor.failed(request, _status_of(exc))
                raise
            if response.status_code >= 400:
                await session.rollback()
                await _give_back_claims(request)
                if auditor:
                    await auditor.failed(request, response.status_code, response)
                return response
            if reading and auditor:
                await auditor.read(request, response)
            return response


# session.info: set when a flush wrote a row of the request's own (the idempotency record kept for
# a retry is bookkeeping, not a change to audit).
_WROTE = "mediation.wrote"
_BOOKKEEPING = frozenset({"idempotency_records"})


def _changes(session: Session) -> list[object]:
    """The objects a flush of the session would write: added, deleted, or loaded and really
    changed (`dirty` also lists objects set to the values they had)."""
    touched = [*session.new, *session.deleted, *(o for o in session.dirty if session.is_modified(o))]
    return [o for o in touched if getattr(o, "__tablename__", None) not in _BOOKKEEPING]


def _note_writes(session: Session, _context: object, _instances: object) -> None:
    if _changes(session):
        session.info[_WROTE] = True


def _pending_changes(session: AsyncSession) -> bool:
    """Whether the request wrote anything: flushed already, or left for the commit to write."""
    return bool(session.info.get(_WROTE)) or bool(_changes(session.sync_session))
