"""Numbering events in commit order, and fanning them out to webhook subscriptions.

Positions are handed out under one lock, the journal head (the audit chain's head row), which
every writing request already holds from its audit append until its commit. A request numbers its
own events right before committing, so positions become visible in exactly the order they were
given: a reader paging by position never steps over an event that commits later. Events written
outside a request (demo data, maintenance commands) are numbered after their commit by the
relay's sequencer, under the same lock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from weakref import WeakKeyDictionary

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.audit.chain import HEAD_ID
from mediation.audit.chain import lock_head as lock_journal
from mediation.audit.chain import subscribers_token as journal_subscribers_token
from mediation.audit.models import AuditChainHead
from mediation.bodies.models import Body
from mediation.core.db import Database, insert_of
from mediation.core.principal import Principal, Role
from mediation.disputes.models import Dispute
from mediation.disputes.scope import sees_event
from mediation.events.models import (
    OutboxEvent,
    WebhookDelivery,
    WebhookSubscribersVersion,
    WebhookSubscription,
)
from mediation.events.service import PENDING_KEY
from mediation.identity.auth import make_principal


async def number_before_commit(session: AsyncSession, now: datetime) -> int:
    """Number this transaction's own events; call last, just before commit. The rows are written
    by the transaction's last flush (its audit record's, or the commit's). Who receives them is
    known without a query while the subscribers are unchanged (`_current_subscribers`)."""
    events = session.info.pop(PENDING_KEY, [])
    if not events:
        return 0
    await lock_journal(session)
    await _number(session, events, now, await _current_subscribers(session))
    return len(events)


async def sequence(session: AsyncSession, now: datetime, batch_size: int = 500) -> int:
    """Number up to `batch_size` committed events that were written outside a request; returns
    how many. In the caller's (writer) transaction; the caller commits."""
    await lock_journal(session)
    events = list(
        (
            await session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.position.is_(None))
                .order_by(OutboxEvent.created_at, OutboxEvent.id)
                .limit(batch_size)
            )
        ).all()
    )
    if not events:
        return 0
    await _number(session, events, now, await _current_subscribers(session))
    await session.flush()
    return len(events)


async def _number(
    session: AsyncSession,
    events: list[OutboxEvent],
    now: datetime,
    subscribers: list[Subscriber],
) -> None:
    head = await lock_journal(session)  # held already: no second query
    last = head.last_position
    disputes = await _disputes(session, {e.dispute_id for e in events if e.dispute_id}) if subscribers else {}
    deliveries = []
    for event in events:
        last += 1
        event.position = last
        event.published_at = now
        dispute = disputes.get(event.dispute_id) if event.dispute_id else None
        for subscriber in subscribers:
            if subscriber.event_types and event.type not in subscriber.event_types:
                continue
            if dispute is None or not sees_event(subscriber.principal, event, dispute):
                continue
            deliveries.append(
                WebhookDelivery(
                    id=uuid.uuid4(),
                    subscription_id=subscriber.id,
                    event_id=event.id,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    head.last_position = last
    # Events a request left to be written here (events.service) go in with their positions.
    session.add_all(events)
    if deliveries:
        await session.flush()  # the events before the deliveries that refer to them
        session.add_all(deliveries)


@dataclass(frozen=True, slots=True)
class Subscriber:
    """An active subscription of an active organisation, as the numbering needs it."""

    id: uuid.UUID
    event_types: frozenset[str]  # empty: every type
    principal: Principal  # what the subscription may see: its owner's organisation and role


# Each process's latest list, per database, under the subscribers' version it was read at.
_KNOWN: WeakKeyDictionary[object, tuple[str, list[Subscriber]]] = WeakKeyDictionary()


async def _current_subscribers(session: AsyncSession) -> list[Subscriber]:
    """The subscribers, read from the database only when their version (read with the journal
    head, which the caller holds) differs from the one this process last read them at. The list
    is read after the version, so a change committed between the two only makes the next write
    read it again."""
    token = await journal_subscribers_token(session)
    database = session.get_bind()
    known = _KNOWN.get(database)
    if token is not None and known is not None and known[0] == token:
        return known[1]
    if token is None:
        # Only an emptied table gets here (the migration writes the row): write a version again,
        # and keep nothing under it yet.
        insert = insert_of(session)
        await session.execute(
            insert(WebhookSubscribersVersion)
            .values(id=1, token=uuid.uuid4().hex)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        return await _subscribers(session)
    subscribers = await _subscribers(session)
    _KNOWN[database] = (token, subscribers)
    return subscribers


# Built once: every change of the subscribers' version reads them.
_ACTIVE_SUBSCRIPTIONS = (
    select(WebhookSubscription, Body)
    .join(Body, Body.id == WebhookSubscription.organisation_id)
    .where(WebhookSubscription.active.is_(True), Body.active.is_(True))
)


async def _subscribers(session: AsyncSession) -> list[Subscriber]:
    rows = (await session.execute(_ACTIVE_SUBSCRIPTIONS)).all()
    return [
        Subscriber(
            sub.id,
            frozenset(sub.event_types or ()),
            make_principal(Role(sub.role), f"webhook:{sub.id}", body, kind="webhook", name=None),
        )
        for sub, body in rows
    ]


async def _disputes(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Dispute]:
    """The events' cases; a request's own are in the session already and cost no query."""
    found: dict[uuid.UUID, Dispute] = {}
    for dispute_id in ids:
        known = session.identity_map.get(session.identity_key(Dispute, dispute_id))
        if isinstance(known, Dispute):
            found[dispute_id] = known
    missing = ids - found.keys()
    if missing:
        rows = await session.scalars(select(Dispute).where(Dispute.id.in_(missing)))
        found.update({d.id: d for d in rows})
    return found


# The journal head's last position is written in the transaction that numbers the events, so it
# is never ahead of what has committed, and it does not fall back when old events are deleted. The
# events' maximum stands in only where the head's row is missing (an emptied table, see _lock_head).
_NEWEST = select(
    func.coalesce(
        select(AuditChainHead.last_position).where(AuditChainHead.id == HEAD_ID).scalar_subquery(),
        select(func.max(OutboxEvent.position)).scalar_subquery(),
        0,
    )
)


async def newest_position(session: AsyncSession) -> int:
    """The highest position committed when this statement runs. Positions are given out under the
    journal head, held until commit: every position up to it has committed, so a statement that
    runs after this one sees every event up to it (on PostgreSQL, under READ COMMITTED, a statement
    run before could miss one that commits in between)."""
    return int(await session.scalar(_NEWEST) or 0)


async def sequence_pending(db: Database, now: datetime, batch_size: int = 500) -> int:
    """Sequence everything waiting, in short transactions; cheap when nothing waits."""
    async with db.reader() as session:
        waiting = await session.scalar(select(exists().where(OutboxEvent.position.is_(None))))
    if not waiting:
        return 0
    total = 0
    while True:
        async with db.writer() as session, session.begin():
            done = await sequence(session, now, batch_size)
        total += done
        if done < batch_size:
            return total
