"""Appending to, verifying and pruning the hash-chained audit trail."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import rfc8785
from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.audit.models import GENESIS_HASH, AuditChainHead, AuditRecord, AuditSeal
from mediation.core.db import Database, insert_of
from mediation.core.pii import redact_text, redact_value
from mediation.core.principal import Principal
from mediation.events.models import OutboxEvent, WebhookSubscribersVersion

HEAD_ID = 1
# The legal minimum no purge may cut into (网络安全法 Art. 21: six months); the database triggers
# enforce it too. Six months are at most 184 days (July to December), so 184 keeps six months
# whenever the count starts; 180 fell short of it by up to four days.
MINIMUM_RETENTION_DAYS = 184
PURGE_ACTION = "audit.purge"
# Records of personal data processing are kept at least three years (个人信息保护法 Art. 55-56):
# the disclosures of unmasked ID and phone numbers (audit/recorder.py). A purge stops before the
# oldest one still inside that period; the database triggers refuse to delete one too (migration 0027).
PROCESSING_ACTIONS = ("pii.read",)
PROCESSING_RETENTION_DAYS = 1095


@dataclass(slots=True)
class AuditEntry:
    action: str
    outcome: str  # success | denied | rejected | error
    actor_kind: str
    actor_role: str
    actor_id: str
    organisation_id: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    status_code: int | None = None
    request_id: str | None = None
    client_address: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def by(cls, principal: Principal, action: str, outcome: str = "success", **kw: Any) -> AuditEntry:
        return cls(
            action=action,
            outcome=outcome,
            actor_kind=principal.kind,
            actor_role=principal.role.value,
            actor_id=principal.id,
            organisation_id=str(principal.organisation_id) if principal.organisation_id else None,
            **kw,
        )


def _timestamp(at: datetime) -> str:
    # The same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ"), which every record so far was hashed with.
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# Every column except the hash itself, in the order of the table.
HASHED_COLUMNS = (
    "seq",
    "occurred_at",
    "actor_kind",
    "actor_role",
    "actor_id",
    "organisation_id",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "status_code",
    "request_id",
    "client_address",
    "details",
    "prev_hash",
)


# RFC 8785 numbers are I-JSON's (RFC 7493 §2.2): integers beyond this are not exact in them.
SAFE_INTEGER = 2**53 - 1


def _canonical_hash(values: Mapping[str, Any]) -> str:
    fields = {name: values[name] for name in HASHED_COLUMNS}
    fields["occurred_at"] = _timestamp(fields["occurred_at"])
    fields["details"] = _as_written(fields["details"])
    return hashlib.sha256(rfc8785.dumps(fields)).hexdigest()


def _as_written(value: Any) -> Any:
    """The details as they were hashed when written. PostgreSQL's JSONB keeps a number as a
    decimal and hands an integral one back as an integer: a float of 2**53 or more (1e16) was
    hashed as a float and comes back as an integer RFC 8785 refuses, and every verification of the
    chain failed with an error. Such an integer is hashed as the float it was written as (append
    no longer writes one: see _storable)."""
    if isinstance(value, dict):
        return {key: _as_written(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_written(item) for item in value]
    if type(value) is int and not -SAFE_INTEGER <= value <= SAFE_INTEGER and float(value) == value:
        return float(value)
    return value


def canonical_fields(record: AuditRecord) -> dict[str, Any]:
    """Everything the hash covers: every column except the hash itself."""
    fields = {name: getattr(record, name) for name in HASHED_COLUMNS}
    fields["occurred_at"] = _timestamp(record.occurred_at)
    return fields


def record_hash(record: AuditRecord) -> str:
    return _canonical_hash({name: getattr(record, name) for name in HASHED_COLUMNS})


_HELD = "mediation.journal_head"  # session.info: (transaction, head, subscribers token) once locked


async def lock_head(session: AsyncSession) -> AuditChainHead:
    """Take the journal head: whoever holds it is the only one handing out audit numbers and
    event positions, until its transaction ends. Every writer queues for it, so a transaction that
    holds it already asks the database no second time."""
    return (await _held(session))[1]


async def subscribers_token(session: AsyncSession) -> str | None:
    """The webhook subscribers' version (events.models.WebhookSubscribersVersion), read in the
    same statement that took the journal head; None if its row is missing."""
    return (await _held(session))[2]


async def _held(session: AsyncSession) -> tuple[object, AuditChainHead, str | None]:
    transaction = session.sync_session.get_transaction()
    held = session.info.get(_HELD)
    if held is not None and transaction is not None and held[0] is transaction:
        return cast(tuple[object, AuditChainHead, str | None], held)
    head, token = await _lock_head(session)
    transaction = session.sync_session.get_transaction()  # begun by the lock if not before
    session.info[_HELD] = (transaction, head, token)
    return transaction, head, token


# populate_existing: a head this session loaded in an earlier transaction is stale now. The
# subscribers' version comes along: every write that numbers events needs it, and here it costs no
# round trip of its own (only the head's row is locked). Built once: every write takes the head.
_LOCK_HEAD = (
    select(AuditChainHead, select(WebhookSubscribersVersion.token).scalar_subquery())
    .where(AuditChainHead.id == HEAD_ID)
    .with_for_update(of=AuditChainHead)
    .execution_options(populate_existing=True)
)


async def _lock_head(session: AsyncSession) -> tuple[AuditChainHead, str | None]:
    row = (await session.execute(_LOCK_HEAD)).first()
    if row is None:
        # Only an emptied table gets here (the migration creates the row); create it race-free.
        insert = insert_of(session)
        last_position = select(func.coalesce(func.max(OutboxEvent.position), 0)).scalar_subquery()
        await session.execute(
            insert(AuditChainHead)
            .values(id=HEAD_ID, seq=0, hash=GENESIS_HASH, last_position=last_position)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        row = (await session.execute(_LOCK_HEAD)).one()
    return row[0], row[1]


# Built once: every write appends. A Core INSERT of plain rows: the records are never read back
# in the transaction that writes them, so they need no ORM identity.
_INSERT_RECORDS = insert(cast(Table, AuditRecord.__table__))


async def append(session: AsyncSession, entries: Sequence[AuditEntry], at: datetime) -> list[dict[str, Any]]:
    """Chain `entries` after the current head, in the caller's transaction; returns the rows written.

    Call it last in a transaction: the head row stays locked until commit, and taking it after the
    case rows keeps one lock order for every writer (no deadlocks).
    """
    if not entries:
        return []
    head = await lock_head(session)
    rows: list[dict[str, Any]] = []
    seq, prev = head.seq, head.hash
    for entry in entries:
        seq += 1
        row: dict[str, Any] = {
            "seq": seq,
            "occurred_at": at,
            "actor_kind": _column(entry.actor_kind, 16),
            "actor_role": _column(entry.actor_role, 20),
            "actor_id": _column(entry.actor_id, 120),
            "organisation_id": _column(entry.organisation_id, 36),
            "action": _column(entry.action, 80),
            "object_type": _column(entry.object_type, 40),
            # Both come from the request as sent (a path segment, the X-Request-ID header).
            "object_id": _column(redact_text(entry.object_id), 64) if entry.object_id else None,
            "outcome": _column(entry.outcome, 16),
            "status_code": entry.status_code,
            "request_id": _column(redact_text(entry.request_id), 128) if entry.request_id else None,
            "client_address": _column(entry.client_address, 64),
            "details": _storable(redact_value(entry.details)),
            "prev_hash": prev,
        }
        row["hash"] = prev = _canonical_hash(row)
        rows.append(row)
    head.seq, head.hash = seq, prev
    # The head's new values and whatever else the transaction has pending, then the records.
    await session.flush()
    # One row as a plain execute: a list, even of one, goes through the driver's executemany.
    await session.execute(_INSERT_RECORDS, rows[0] if len(rows) == 1 else rows)
    return rows


# U+0000 (PostgreSQL refuses it in text and in JSONB) and lone surrogates (no UTF-8 encoding).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _text(value: str) -> str:
    return _UNSTORABLE.sub("\ufffd", value)


def _column(value: str | None, length: int) -> str | None:
    """`value` as its column holds it on both databases: storable characters, cut to the column's
    length. PostgreSQL refuses a longer or NUL-holding value where SQLite takes it, and a record
    it refuses is a record lost: a refused request's (a path segment of 65 characters, a `%00`),
    and every other record committed in its group (recorder.GroupAppender), a disclosure among
    them, whose request then fails."""
    return None if value is None else _text(value)[:length]


def _storable(value: Any) -> Any:
    """The details as both databases hand them back unchanged, in new containers: `_text` applied
    to every string (and key), and a number RFC 8785 cannot hash, or JSONB would hand back as
    another one (a float of 2**53 or more comes back an integer), written as text."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {_text(str(key)): _storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(item) for item in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not -SAFE_INTEGER <= value <= SAFE_INTEGER:
        return str(value)
    if isinstance(value, float) and not (math.isfinite(value) and abs(value) <= SAFE_INTEGER):
        return repr(value)
    return value


@dataclass(slots=True)
class Verification:
    ok: bool
    checked: int
    first_seq: int | None
    last_seq: int | None
    broken_seq: int | None = None
    problem: str | None = None
    # The keyed seals checked (audit/seal.py), the last record sealed and when.
    seals_checked: int = 0
    sealed_through: int | None = None
    last_sealed_at: datetime | None = None
    # The oldest record no seal covers yet (None when every record is sealed).
    unsealed_since: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "broken_seq": self.broken_seq,
            "problem": self.problem,
            "seals_checked": self.seals_checked,
            "sealed_through": self.sealed_through,
            "last_sealed_at": _timestamp(self.last_sealed_at) if self.last_sealed_at else None,
            "unsealed_since": _timestamp(self.unsealed_since) if self.unsealed_since else None,
        }


async def verify(session: AsyncSession, batch_size: int = 1000) -> Verification:
    """Walk the chain in order and report the first record that does not fit.

    - a record whose content no longer matches its hash: edited (or swapped with another row);
    - a record whose `prev_hash` is not the previous record's hash, or a gap in `seq`: a record
      was deleted or moved;
    - a head that is ahead of the last record: records were cut off the end;
    - records beyond a head that never reached them: the head was wound back.
    A chain pruned by retention starts after the last purge, which recorded where it cut.

    The head is read first and the walk ends there: records appended while it runs are left for
    the next run. (Reading the head last, on PostgreSQL, where each statement of a read-committed
    transaction sees the latest commits, took any record committed in between for a cut-off tail.)
    """
    head = await _head(session)
    end_seq, end_hash = head if head else (0, GENESIS_HASH)
    anchor = await _purge_anchor(session, end_seq if head else None)
    if isinstance(anchor, Verification):
        return anchor
    anchor_seq, anchor_hash = anchor
    expected_seq, expected_prev = anchor_seq + 1, anchor_hash
    checked, first, last = 0, None, None
    after = anchor_seq
    while True:
        stmt = select(AuditRecord).where(AuditRecord.seq > after)
        if head:
            stmt = stmt.where(AuditRecord.seq <= end_seq)
        rows = (await session.scalars(stmt.order_by(AuditRecord.seq).limit(batch_size))).all()
        if not rows:
            break
        for record in rows:
            first = record.seq if first is None else first
            if record.seq != expected_seq:
                return Verification(
                    False, checked, first, last, expected_seq, f"record {expected_seq} is missing"
                )
            if record.prev_hash != expected_prev:
                return Verification(
                    False, checked, first, last, record.seq, "link to the previous record is broken"
                )
            if record_hash(record) != record.hash:
                return Verification(
                    False, checked, first, last, record.seq, "content does not match its hash"
                )
            checked += 1
            last = record.seq
            expected_seq, expected_prev = record.seq + 1, record.hash
        after = rows[-1].seq
        session.expunge_all()
    if end_seq != expected_seq - 1 or end_hash != expected_prev:
        return Verification(
            False, checked, first, last, expected_seq, f"records after {expected_seq - 1} are missing"
        )
    # Records past the head read at the start are fine if they were appended since (the head
    # moves with every append, in the same transaction); past the head as it is now, they are not.
    beyond = await session.scalar(select(func.max(AuditRecord.seq)).where(AuditRecord.seq > end_seq))
    if beyond is not None:
        now_head = await _head(session)
        if now_head is None or now_head[0] < beyond:
            return Verification(
                False, checked, first, last, end_seq + 1, f"records after {end_seq} are beyond the chain head"
            )
    return Verification(True, checked, first, last)


async def _head(session: AsyncSession) -> tuple[int, str] | None:
    """The head as committed now (columns, not the entity: no stale copy from the identity map)."""
    row = (
        await session.execute(
            select(AuditChainHead.seq, AuditChainHead.hash).where(AuditChainHead.id == HEAD_ID)
        )
    ).first()
    return (int(row.seq), str(row.hash)) if row else None


async def _purge_anchor(session: AsyncSession, through: int | None = None) -> tuple[int, str] | Verification:
    """Where the remaining chain starts: after the last purge's cut, or at the genesis; or the
    purge record itself reported broken.

    `through`: the last record the walk will look at; a purge recorded after it is not yet seen.
    The walk starts from what the purge record says, so that record is checked before it is
    believed: one edited, or rewritten without a cut it could name, fails there.
    """
    first_seq = await session.scalar(select(func.min(AuditRecord.seq)))
    if first_seq is None or first_seq == 1:
        return 0, GENESIS_HASH
    stmt = select(AuditRecord).where(AuditRecord.action == PURGE_ACTION)
    if through is not None:
        stmt = stmt.where(AuditRecord.seq <= through)
    purge = await session.scalar(stmt.order_by(AuditRecord.seq.desc()).limit(1))
    if purge is None:
        return 0, GENESIS_HASH  # nothing was ever purged: the missing start is reported
    if record_hash(purge) != purge.hash:
        return Verification(False, 0, None, None, purge.seq, "content does not match its hash")
    details = purge.details if isinstance(purge.details, dict) else {}
    cut_seq, cut_hash = details.get("through_seq"), details.get("through_hash")
    if type(cut_seq) is not int or not isinstance(cut_hash, str):
        return Verification(
            False, 0, None, None, purge.seq, f"purge record {purge.seq} does not say where it cut"
        )
    return cut_seq, cut_hash


async def purge(session: AsyncSession, principal: Principal, retention_days: int, now: datetime) -> int:
    """Delete records older than the retention period, recording the cut as a new audit record."""
    days = max(retention_days, MINIMUM_RETENTION_DAYS)
    cutoff = now - timedelta(days=days)
    last_old = await session.scalar(
        select(AuditRecord.seq)
        .where(AuditRecord.occurred_at < cutoff)
        .order_by(AuditRecord.seq.desc())
        .limit(1)
    )
    if last_old is None:
        return 0
    # The chain is cut as a whole up to one record: the cut stops before the oldest record of
    # personal data processing that must still be kept (个人信息保护法 Art. 56: three years).
    processing_cutoff = now - timedelta(days=max(retention_days, PROCESSING_RETENTION_DAYS))
    kept = await session.scalar(
        select(func.min(AuditRecord.seq)).where(
            AuditRecord.seq <= last_old,
            AuditRecord.action.in_(PROCESSING_ACTIONS),
            AuditRecord.occurred_at >= processing_cutoff,
        )
    )
    through = await session.scalar(
        select(AuditRecord)
        .where(AuditRecord.seq <= (last_old if kept is None else kept - 1))
        .order_by(AuditRecord.seq.desc())
        .limit(1)
    )
    if through is None:
        return 0
    through_seq, through_hash = through.seq, through.hash
    # The cut is recorded before deleting: the purge record itself is chained after the head.
    await append(
        session,
        [
            AuditEntry.by(
                principal,
                PURGE_ACTION,
                details={"through_seq": through_seq, "through_hash": through_hash, "retention_days": days},
            )
        ],
        now,
    )
    result = await session.execute(delete(AuditRecord).where(AuditRecord.seq <= through_seq))
    # Their seals go with them: nothing is left to check them against (audit/seal.py).
    await session.execute(delete(AuditSeal).where(AuditSeal.seq <= through_seq))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@asynccontextmanager
async def snapshot(db: Database) -> AsyncIterator[AsyncSession]:
    """A session over one consistent snapshot, for verification: on PostgreSQL a REPEATABLE READ
    transaction, so a purge or an append committing meanwhile cannot look like tampering. (SQLite
    readers already see one snapshot per transaction.)"""
    async with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = await connection.execution_options(isolation_level="REPEATABLE READ")
        async with AsyncSession(bind=connection, expire_on_commit=False) as session:
            yield session
