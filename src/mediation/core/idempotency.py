"""Idempotency-Key (IETF httpapi-idempotency-key-header draft).

A key is claimed in its own short transaction, so a concurrent duplicate sees it at once (409).
The response is stored in the request's own transaction, so "done" and "recorded as done" commit
together. A request that fails releases its key: nothing was changed, so a retry may run again.
That holds for a failure after the response was made too (numbering its events, its audit record,
the commit, the time limit): the unit of work gives the key back after its rollback.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import String, Text, UniqueConstraint, column, delete, or_, select, table, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from mediation.core.db import Base, Database, new_id, release_on_rollback, session_of
from mediation.core.errors import IdempotencyInProgress, IdempotencyKeyMismatch, ValidationFailed
from mediation.core.i18n import Text as I18nText
from mediation.core.pii import PiiCipher
from mediation.core.principal import Principal

MAX_KEY_LENGTH = 255


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    scope: Mapped[str] = mapped_column(String(160))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    fingerprint: Mapped[str] = mapped_column(String(64))
    # Of the method and path alone, so that a key reused elsewhere is told apart from one reused
    # with another body. None on records stored before it was kept.
    target_fingerprint: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # in_progress | completed
    response_status: Mapped[int | None]
    response_headers: Mapped[dict[str, Any] | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    locked_until: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime]


@dataclass(slots=True)
class Claim:
    record_id: uuid.UUID


def fingerprint(method: str, path: str, body: bytes) -> str:
    """Same method, path and JSON content (whatever its whitespace or key order) -> same fingerprint."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        canonical = body.decode("utf-8", "replace")
    return hashlib.sha256(f"{method}\n{path}\n{canonical}".encode()).hexdigest()


def target_fingerprint(method: str, path: str) -> str:
    return hashlib.sha256(f"{method}\n{path}".encode()).hexdigest()


def _mismatch(existing: IdempotencyRecord, target_fp: str) -> IdempotencyKeyMismatch:
    if existing.target_fingerprint is None:
        return IdempotencyKeyMismatch(
            I18nText(
                "该幂等键已用于另一个请求 (方法、路径或内容不同)",
                "This key was used with a different request (its method, path or body differ)",
            )
        )
    if existing.target_fingerprint != target_fp:
        return IdempotencyKeyMismatch(
            I18nText(
                "该幂等键已用于另一路径或方法的请求",
                "This key was used with a request to a different path or with a different method",
            )
        )
    return IdempotencyKeyMismatch(
        I18nText("该幂等键已用于内容不同的请求", "This key was used with a different request body")
    )


def _validate_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed(
            I18nText(
                "Idempotency-Key 须为 1-255 个可打印字符",
                "Idempotency-Key must be 1-255 printable characters",
            ),
            errors=[
                {"field": "Idempotency-Key", "location": "header", "code": "invalid", "message": "invalid"}
            ],
        )


async def _claim(
    db: Database,
    principal: Principal,
    key: str,
    fp: str,
    target_fp: str,
    now: datetime,
    ttl: timedelta,
    lock: timedelta,
) -> Claim | IdempotencyRecord:
    for _ in range(3):
        async with db.writer() as session, session.begin():
            existing = await session.scalar(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.scope == principal.idempotency_scope, IdempotencyRecord.key == key
                )
            )
            if existing is None:
                record = IdempotencyRecord(
                    scope=principal.idempotency_scope,
                    key=key,
                    fingerprint=fp,
                    target_fingerprint=target_fp,
                    state="in_progress",
                    locked_until=now + lock,
                    expires_at=now + ttl,
                    created_at=now,
                )
                session.add(record)
                try:
                    await session.flush()
                except IntegrityError:
                    await session.rollback()
                    continue  # someone claimed it at the same moment: look again
                return Claim(record.id)
            if existing.expires_at <= now or await _written_by_a_key_let_go(
                session, existing, principal, now
            ):
                await session.delete(existing)
                continue
            if existing.fingerprint != fp:
                raise _mismatch(existing, target_fp)
            if existing.state == "completed":
                return existing
            if existing.locked_until > now:
                raise IdempotencyInProgress(headers={"Retry-After": "1"})
            # The first attempt died without releasing its key: take it over.
            taken = await session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.id == existing.id, IdempotencyRecord.locked_until <= now)
                .values(locked_until=now + lock)
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                return Claim(existing.id)
            raise IdempotencyInProgress(headers={"Retry-After": "1"})
    raise IdempotencyInProgress(headers={"Retry-After": "1"})


async def _release(db: Database, claim: Claim) -> None:
    async def delete_record() -> None:
        async with db.writer() as session, session.begin():
            await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == claim.record_id))

    # Shielded: a request cancelled (its time limit, its client gone) still gives its key back, or
    # the retry it was told to make would find the key taken until the lock runs out.
    await asyncio.shield(delete_record())


def _cipher(request: Request) -> PiiCipher:
    cipher: PiiCipher = request.app.state.identity.cipher
    return cipher


# A stored response can quote parties' ID and phone numbers, so it is kept encrypted like them.
_AAD = {"table": "idempotency_records", "column": "response_body"}


# Kept with the stored headers, under a name no header can have, and never sent: the cases whose
# personal data the stored response shows unmasked.
_DISCLOSED = ":pii_reads"
# Likewise: the API key that sent the request, where its chain of rotations shares the answers.
_WRITTEN_BY = ":api_key"

_api_keys = table("api_keys", column("id"), column("revoked_at"), column("expires_at"))


async def _written_by_a_key_let_go(
    session: Any, record: IdempotencyRecord, principal: Principal, now: datetime
) -> bool:
    """An answer another key of the caller's chain stored, that key since revoked or expired: not
    the caller's to replay. A key is revoked when it may be in other hands, and what it sent is
    trusted no longer (its subscriptions stop with it); a replay would hand its successor an answer
    to a request the successor never made, and a 422 to a key it happens to reuse."""
    writer = (record.response_headers or {}).get(_WRITTEN_BY)
    if writer is None or writer == principal.id:
        return False
    let_go = await session.scalar(
        select(_api_keys.c.id).where(
            _api_keys.c.id == uuid.UUID(writer),
            or_(_api_keys.c.revoked_at.is_not(None), _api_keys.c.expires_at <= now),
        )
    )
    return let_go is not None


def _replay(request: Request, record: IdempotencyRecord) -> Response:
    headers = dict(record.response_headers or {})
    disclosed: list[str] = headers.pop(_DISCLOSED, None) or []
    headers.pop(_WRITTEN_BY, None)
    if disclosed:
        # The replay shows that personal data again, and is audited as the first answer was
        # (个人信息保护法 Art. 55): the recorder reads the request's `pii_reads`.
        reads: list[str] | None = getattr(request.state, "pii_reads", None)
        if reads is None:
            request.state.pii_reads = list(disclosed)
        else:
            reads.extend(disclosed)
    headers["Idempotent-Replayed"] = "true"
    body = ""
    if record.response_body:
        body = _cipher(request).decrypt(record.response_body, row_id=str(record.id), **_AAD)
    return Response(
        content=body,
        status_code=record.response_status or 200,
        headers=headers,
        media_type="application/json",
    )


REPLAYED_HEADERS = ("location", "etag", "content-language")
# The contract's declaration of the header a replay carries (declared on the success responses of
# every operation that takes an Idempotency-Key).
IDEMPOTENT_REPLAYED: dict[str, Any] = {
    "description": "`true` when this is the stored answer to an earlier request with the same "
    "Idempotency-Key and body, replayed (its ETag and Location too), not a second run; absent on a first run.",
    "schema": {"type": "string", "enum": ["true"]},
}


async def run_idempotent(
    request: Request,
    principal: Principal,
    key: str | None,
    work: Callable[[], Awaitable[Response]],
    *,
    content: str | None = None,
) -> Response:
    """Run `work` at most once per (caller, key); replay its stored response afterwards. The key
    stands for the request's body, or for `content` when the caller gives it (an upload, whose
    body is streamed to disk, not held in memory, is known by its file's hash and its fields)."""
    if key is None:
        return await work()
    _validate_key(key)
    db: Database = request.app.state.db
    settings = request.app.state.settings
    now: datetime = request.app.state.clock.now()
    body = content.encode() if content is not None else await request.body()
    fp = fingerprint(request.method, request.url.path, body)
    outcome = await _claim(
        db,
        principal,
        key,
        fp,
        target_fingerprint(request.method, request.url.path),
        now,
        timedelta(hours=settings.idempotency_ttl_hours),
        timedelta(seconds=settings.idempotency_lock_seconds),
    )
    if isinstance(outcome, IdempotencyRecord):
        return _replay(request, outcome)
    session = session_of(request)
    claim: Claim = outcome

    async def release() -> None:
        await _release(db, claim)

    # Until the request's transaction commits the record as completed, a rollback gives the key back.
    releases = release_on_rollback(request)
    releases.append(release)
    try:
        response = await work()
    except BaseException:
        # Give up this request's transaction first: on SQLite it holds the write lock.
        await session.rollback()
        releases.remove(release)
        await _release(db, claim)
        raise
    stored_headers: dict[str, Any] = {
        k: v for k, v in response.headers.items() if k.lower() in REPLAYED_HEADERS
    }
    if disclosed := list(getattr(request.state, "pii_reads", None) or []):
        stored_headers[_DISCLOSED] = disclosed
    if principal.kind == "api_key":
        stored_headers[_WRITTEN_BY] = principal.id
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == claim.record_id)
        .values(
            state="completed",
            response_status=response.status_code,
            response_headers=stored_headers,
            response_body=_cipher(request).encrypt(
                bytes(response.body).decode(), row_id=str(outcome.record_id), **_AAD
            ),
        )
    )
    return response
