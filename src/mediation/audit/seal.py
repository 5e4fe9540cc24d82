"""Sealing the audit chain's head with a key the database does not hold.

The chain (audit/chain.py) shows a record edited, removed or moved by anyone who does not rehash
what follows it. Someone with full rights over the database can rehash: edit record 10, recompute
every hash after it and the head, and the walk finds nothing. Each seal is an HMAC of the head's
number and hash, made by the scheduler every `audit_seal_seconds` with a key from the service's
settings, never stored in the database. The head's hash binds every record before it, so:

- a chain rewritten up to a sealed record no longer matches that seal (the record's hash differs);
- a seal made again for the rewritten chain needs the key;
- a chain cut back behind a seal leaves the seal beyond the chain's end.

What a seal cannot show: records changed after the newest seal (at most `audit_seal_seconds` of
them), and the seals themselves deleted along with the records after them. For that, each seal is
also written to the service's log, a copy outside the database (`audit seal seq=... mac=...`).
Seals deleted while their records stay leave records unsealed for longer than the scheduler ever
lets them be: verification fails on a record older than `overdue_after` with no seal after it.

Several keys may be configured so the key can change: the first seals, every one verifies. The key
derived when none is configured always verifies too, so configuring one later keeps the seals made
before valid.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import rfc8785
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.audit.chain import Verification, lock_head, snapshot, verify
from mediation.audit.models import AuditRecord, AuditSeal
from mediation.core.db import Database
from mediation.core.secrets import Secrets
from mediation.core.settings import Settings

log = logging.getLogger(__name__)

# RFC 2104 §3: a key shorter than the hash's output weakens the MAC.
MIN_SEAL_KEY_BYTES = 32
_DERIVED_INFO = b"mediation audit seal v1"


@dataclass(frozen=True, slots=True)
class SealKeys:
    """The seal keys by id; `current` seals, every one verifies."""

    keys: dict[str, bytes]
    current: str

    @classmethod
    def parse(cls, configured: str) -> SealKeys:
        """`configured`: "key,older key,...", each at least 32 bytes; the first one seals."""
        keys: dict[str, bytes] = {}
        for position, entry in enumerate(configured.split(","), start=1):
            secret = entry.strip().encode()
            if len(secret) < MIN_SEAL_KEY_BYTES:
                # Never echo the entry: it is key material.
                raise ValueError(f"audit seal key #{position} must be at least {MIN_SEAL_KEY_BYTES} bytes")
            keys.setdefault(key_id(secret), secret)
        return cls(keys, key_id(configured.split(",")[0].strip().encode()))

    @classmethod
    def derived(cls, index_key: str) -> SealKeys:
        """A key derived from the personal-data index key (HKDF-SHA256, RFC 5869), for a service
        that configures none: that key is kept out of the database already and never rotates.
        Production sets its own (`MEDIATION_AUDIT_SEAL_KEYS`), so auditors can hold it apart."""
        secret = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DERIVED_INFO).derive(
            index_key.encode()
        )
        return cls({key_id(secret): secret}, key_id(secret))

    def mac(self, seq: int, chain_hash: str, sealed_at: datetime, kid: str | None = None) -> str | None:
        """The seal's MAC under key `kid` (the current one by default); None if it is not held."""
        secret = self.keys.get(kid or self.current)
        if secret is None:
            return None
        message = rfc8785.dumps({"seq": seq, "hash": chain_hash, "sealed_at": _timestamp(sealed_at)})
        return hmac.new(secret, message, hashlib.sha256).hexdigest()


def seal_keys(settings: Settings, secrets: Secrets) -> SealKeys:
    derived = SealKeys.derived(secrets.pii_index_key)
    if not settings.audit_seal_keys:
        return derived
    configured = SealKeys.parse(settings.audit_seal_keys)
    # The derived key stays held, to verify only: the seals a service made before its operator
    # configured keys of their own remain checkable for the whole retention of their records.
    return SealKeys({**derived.keys, **configured.keys}, configured.current)


def overdue_after(settings: Settings) -> timedelta:
    """How long a record may go without a seal after it: the scheduler seals every
    `audit_seal_seconds`, at its next pass; twice that, and a pass, leaves room for a late one."""
    return timedelta(seconds=2 * settings.audit_seal_seconds + settings.clock_interval_seconds)


def key_id(secret: bytes) -> str:
    return hashlib.sha256(secret).hexdigest()[:16]


def _timestamp(at: datetime) -> str:
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


async def seal(db: Database, keys: SealKeys, now: datetime, every: timedelta | None) -> AuditSeal | None:
    """Seal the head unless a seal younger than `every` exists (with `every` None: unless the head
    is sealed already, with the current key); the new seal, or None.

    Under the journal head's lock: the head cannot move while it is read and sealed, and two
    schedulers (two processes) do not both seal the same moment.
    """
    async with db.writer() as session, session.begin():
        head = await lock_head(session)
        if head.seq == 0:
            return None
        newest = (
            await session.execute(
                select(AuditSeal.seq, AuditSeal.sealed_at, AuditSeal.key_id)
                .order_by(AuditSeal.id.desc())
                .limit(1)
            )
        ).first()
        if newest is not None:
            if every is None and newest.seq == head.seq and newest.key_id == keys.current:
                return None
            if every is not None and _aware(newest.sealed_at) > now - every:
                return None
        made = seal_now(session, keys, head.seq, head.hash, now)
    log.info("audit seal seq=%d hash=%s sealed_at=%s key=%s mac=%s", *_logged(made))
    return made


def seal_now(session: AsyncSession, keys: SealKeys, seq: int, chain_hash: str, now: datetime) -> AuditSeal:
    mac = keys.mac(seq, chain_hash, now)
    assert mac is not None  # the current key is always held
    made = AuditSeal(seq=seq, hash=chain_hash, sealed_at=now, key_id=keys.current, mac=mac)
    session.add(made)
    return made


def _logged(made: AuditSeal) -> tuple[int, str, str, str, str]:
    return made.seq, made.hash, _timestamp(made.sealed_at), made.key_id, made.mac


def _aware(at: datetime) -> datetime:
    # SQLite hands back naive UTC times.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


_BATCH = 1000


async def check_seals(session: AsyncSession, keys: SealKeys, result: Verification) -> Verification:
    """Check every seal of the chain `result` walked (intact up to `result.last_seq`), each
    against its MAC and the record it names, in batches; fills in the seal fields of `result`.

    A seal of a record before the chain's start was made before a purge cut the record (the purge
    removes them, so only a failed purge leaves one). A seal of a record past the chain's end is a
    chain cut back behind its seal.
    """
    first = result.first_seq or 0
    last = result.last_seq or 0
    after = 0
    while True:
        rows = (
            await session.execute(
                select(
                    AuditSeal.id,
                    AuditSeal.seq,
                    AuditSeal.hash,
                    AuditSeal.sealed_at,
                    AuditSeal.key_id,
                    AuditSeal.mac,
                    AuditRecord.hash.label("record_hash"),
                )
                .outerjoin(AuditRecord, AuditRecord.seq == AuditSeal.seq)
                .where(AuditSeal.id > after)
                .order_by(AuditSeal.id)
                .limit(_BATCH)
            )
        ).all()
        if not rows:
            return result
        for row in rows:
            if row.seq < first:
                continue
            expected = keys.mac(row.seq, row.hash, row.sealed_at, row.key_id)
            if expected is None:
                problem = f"the seal of record {row.seq} was made with a key this service does not hold"
                return _broken(result, row.seq, f"{problem} ({row.key_id})")
            if not hmac.compare_digest(expected, row.mac):
                return _broken(result, row.seq, f"the seal of record {row.seq} is forged")
            if row.seq > last:
                return _broken(
                    result, last + 1, f"records after {last} are missing behind a seal of record {row.seq}"
                )
            if row.record_hash != row.hash:
                return _broken(
                    result, row.seq, f"record {row.seq} does not match its seal: the chain was rewritten"
                )
            result.seals_checked += 1
            if result.sealed_through is None or row.seq >= result.sealed_through:
                result.sealed_through = row.seq
                result.last_sealed_at = _aware(row.sealed_at)
        after = rows[-1].id


def _broken(result: Verification, seq: int, problem: str) -> Verification:
    result.ok, result.broken_seq, result.problem = False, seq, problem
    return result


async def check_overdue(
    session: AsyncSession, result: Verification, now: datetime, overdue: timedelta
) -> Verification:
    """Fails `result` when a record older than `overdue` has no seal after it.

    The scheduler seals every few minutes, so such a record means seals were deleted (with the
    records kept, perhaps rewritten) or the scheduler has not run since: either way the chain is no
    longer vouched for by a key the database does not hold.
    """
    if result.last_seq is None:
        return result
    first_unsealed = (result.sealed_through or 0) + 1
    if first_unsealed > result.last_seq:
        return result
    row = (
        await session.execute(
            select(AuditRecord.seq, AuditRecord.occurred_at)
            .where(AuditRecord.seq >= first_unsealed)
            .order_by(AuditRecord.seq)
            .limit(1)
        )
    ).first()
    if row is None:
        return result
    result.unsealed_since = _aware(row.occurred_at)
    if result.unsealed_since < now - overdue:
        return _broken(
            result,
            row.seq,
            f"records from {row.seq} on have no seal though the oldest of them is from "
            f"{_timestamp(result.unsealed_since)}: seals were deleted, or the scheduler has not sealed "
            "since (it seals every few minutes)",
        )
    return result


async def verify_snapshot(db: Database, keys: SealKeys, now: datetime, overdue: timedelta) -> Verification:
    """The chain walked and its seals checked, over one consistent snapshot (chain.snapshot); a
    record unsealed for longer than `overdue` fails it (check_overdue)."""
    async with snapshot(db) as session:
        result = await verify(session)
        if not result.ok:
            return result
        result = await check_seals(session, keys, result)
        if not result.ok:
            return result
        return await check_overdue(session, result, now, overdue)
