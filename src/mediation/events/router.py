"""The event feed, the event catalogue and webhook subscriptions under /v1."""

import asyncio
import time
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    UrlConstraints,
    field_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy import select

from mediation.audit.router import MAX_SEQ
from mediation.core.db import Database, UnitOfWorkRoute, session_of, utcnow
from mediation.core.errors import (
    Conflict,
    FeedPositionExpired,
    Forbidden,
    IdempotencyInProgress,
    IdempotencyKeyMismatch,
    NotFound,
    ValidationFailed,
    problem_responses,
)
from mediation.core.http import (
    PAGED_ARRAY,
    PageCursor,
    PageLimit,
    decode_cursor,
    encode_cursor,
    link_next_page,
    sends,
)
from mediation.core.i18n import Text
from mediation.core.idempotency import run_idempotent
from mediation.core.principal import Permission, Principal
from mediation.core.schemas import Instant, WriteModel
from mediation.disputes.models import Dispute
from mediation.disputes.router import IdempotencyKey
from mediation.disputes.scope import event_visible_to
from mediation.events.catalogue import catalogue, event_types
from mediation.events.models import OutboxEvent, OutboxHorizon, WebhookSubscription
from mediation.events.sequencer import newest_position, sequence_pending
from mediation.events.service import cloudevent
from mediation.events.webhooks import WebhookService
from mediation.identity.auth import identity_of, permission

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["events"])
Reader = Annotated[Principal, permission(Permission.cases_read)]
# Where an organisation's events go is its administrator's to set: a body's mediator reads its
# subscriptions and their deliveries, but does not subscribe, re-key, switch off or resend them.
WebhookAdmin = Annotated[Principal, permission(Permission.webhooks_manage)]
MAX_FEED_PAGE = 500
# What a long poll leaves of the request's time limit for authentication and its final read: a
# wait that ran to the limit would be cut off there and answer 503, not its page.
TIME_LIMIT_MARGIN_SECONDS = 5.0
# The contract lists the catalogue's types, so a filter or subscription naming another is invalid on its face.
KNOWN_TYPES: dict[str, Any] = {"items": {"enum": event_types()}}


class CloudEvent(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    specversion: str = "1.0"
    id: str
    source: str
    type: str
    subject: str
    time: str
    datacontenttype: str = "application/json"
    sequence: str = Field(
        description=(
            "Feed position as 19 digits with leading zeros: increases in commit order, compared as "
            "text or as a number alike."
        ),
        pattern=r"^[0-9]{19}$",
    )
    data: dict[str, Any]


class EventPage(BaseModel):
    items: list[CloudEvent]
    next_cursor: str = Field(
        description=(
            "Pass as `cursor` (or `after`, its older name) for the next page. After a page "
            "shorter than `limit` it stands at the feed's newest position, past events the caller "
            "does not see; unchanged when nothing new came."
        )
    )


def _given_cursor(cursor: str | None, after: str | None) -> tuple[str | None, str]:
    """The cursor the caller sent and the query parameter it came in. `cursor` is the name every
    other list takes; `after` is the feed's first name for it, still taken so its readers keep
    working. Both may be sent when they agree; two different positions are no one position."""
    if cursor is not None and after is not None and cursor != after:
        raise ValidationFailed.of_field(
            "cursor",
            "cursor_conflict",
            Text(
                "cursor 与 after 是同一个参数的两个名称, 给出了两个不同的值",
                "`cursor` and `after` are two names of one parameter, given two different values",
            ),
            location="query",
        )
    if cursor is not None:
        return cursor, "cursor"
    return after, "after"


def _after(cursor: str | None, name: str) -> int | None:
    """The position a cursor holds; None without one (the feed then starts at the oldest event kept).
    `name` is the query parameter it came in, which a refusal names."""
    if not cursor:
        return None
    position = decode_cursor(cursor, name).get("p")
    # A position is a signed 64-bit integer on both databases (as the audit trail's numbers): one
    # past it is no cursor this feed gave out, refused like any other (422), not a failed query.
    # Nor is JSON's true or false, which Python counts as an int and SQL will not compare.
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position <= MAX_SEQ:
        decode_cursor("!", name)  # raises the validation problem
        raise AssertionError("unreachable")
    return position


async def _read(
    db: Database, principal: Principal, after: int | None, types: list[str] | None, limit: int
) -> tuple[list[OutboxEvent], int]:
    """The page after `after` (from the oldest event kept when None), and the position the next
    page starts after.

    A full page goes on from its last event. A shorter one holds every event the caller may see up
    to the newest position committed, so the next page starts there: a reader that sees few of the
    events does not read the others again on every poll, and its cursor keeps up with the feed
    instead of falling behind the retention purge (which would answer 410 though it missed
    nothing). The newest position is read first and bounds the page: an event numbered after it
    is left to the next page, not stepped over.

    Any cursor is checked, position 0 too (an empty feed hands it out): refused (410) if events
    after it were deleted past the retention period, and if it lies ahead of the newest position,
    which happens only when the database was restored to an earlier point: the events the reader
    had past it are gone, and the next ones would come under their positions and be skipped. The
    horizon is read after the page, so a purge that commits while the page is read is seen too,
    and a reader is never handed the events after a gap as if there were none."""
    async with db.reader() as session:
        newest = await newest_position(session)
        if after is not None and after > newest:
            horizon = await session.scalar(_HORIZON)
            raise FeedPositionExpired(
                Text(
                    "该位置在事件流最新位置之后, 事件流不曾给出过 (数据库可能已恢复到更早的时间点), "
                    "其后的事件已不在; 请按案件时间线核对后, 从 newest_cursor 继续",
                    "This position is ahead of the feed's newest event, so the feed never gave it "
                    "out (the database may have been restored to an earlier point) and the events "
                    "after it are gone; reconcile from the cases' timelines, then go on from newest_cursor",
                ),
                oldest_cursor=encode_cursor({"p": horizon or 0}),
                newest_cursor=encode_cursor({"p": newest}),
            )
        stmt = (
            select(OutboxEvent)
            .join(Dispute, Dispute.id == OutboxEvent.dispute_id)
            .where(
                OutboxEvent.position > (after or 0),
                OutboxEvent.position <= newest,
                event_visible_to(principal),
            )
            .order_by(OutboxEvent.position)
            .limit(limit)
        )
        if types:
            stmt = stmt.where(OutboxEvent.type.in_(types))
        rows = list((await session.scalars(stmt)).all())
        if after is not None:
            horizon = await session.scalar(_HORIZON)
            if horizon is not None and after < horizon:
                raise FeedPositionExpired(
                    Text(
                        "该位置之后的部分事件已超过保留期被删除; 请按案件时间线核对后, 从 oldest_cursor 继续",
                        "Some events after this position were deleted past the retention period; "
                        "reconcile from the cases' timelines, then go on from oldest_cursor",
                    ),
                    oldest_cursor=encode_cursor({"p": horizon}),
                )
        if len(rows) == limit:
            return rows, rows[-1].position or newest
        return rows, newest


_HORIZON = select(OutboxHorizon.purged_through).where(OutboxHorizon.id == 1)


@router.get(
    "/events",
    response_model=EventPage,
    summary="事件订阅拉取 Event feed",
    description=(
        "The lifecycle events the caller may see, in commit order. Page with `cursor` = the previous "
        "`next_cursor`, as every list pages (`after` is the same parameter's older name, still "
        "taken; sent together they must agree, else 422 `cursor_conflict`); the cursor never skips "
        "an event, even one whose transaction committed late. "
        "After a page shorter than `limit` the cursor moves on to the newest event committed, past "
        "events the caller does not see. "
        "With `wait` (seconds), an empty page waits up to that long for new events (long poll). "
        "Events are kept for the deployment's retention period (MEDIATION_EVENT_RETENTION_DAYS, "
        "365 days by default): without a cursor the feed starts at the oldest event kept, and a "
        "cursor from before it answers 410 `feed-position-expired` with `oldest_cursor`, since "
        "some events after it are gone (the cases' timelines keep their history). So does a "
        "cursor ahead of the newest event (after the database was restored to an earlier point), "
        "with `oldest_cursor` and `newest_cursor`."
    ),
    responses=problem_responses(FeedPositionExpired),
)
async def event_feed(
    request: Request,
    principal: Reader,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` from the previous page.")
    ] = None,
    after: Annotated[
        str | None,
        Query(
            max_length=200,
            description="The older name of `cursor`, still taken; if both are sent they must be equal.",
        ),
    ] = None,
    types: Annotated[
        list[str] | None,
        Query(
            description="Only these event types (repeatable).",
            json_schema_extra=KNOWN_TYPES,
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_FEED_PAGE)] = 100,
    wait: Annotated[float, Query(ge=0, le=60, description="Long-poll seconds.")] = 0,
) -> EventPage:
    known = set(event_types())
    unknown = sorted(set(types or []) - known)
    if unknown:
        message = Text("未知事件类型: {t}", "Unknown event types: {t}").format(t=", ".join(unknown))
        raise ValidationFailed.of_field("types", "enum", message, location="query")
    position = _after(*_given_cursor(cursor, after))
    db: Database = request.app.state.db
    settings = request.app.state.settings
    longest = min(
        settings.feed_max_wait_seconds, settings.request_timeout_seconds - TIME_LIMIT_MARGIN_SECONDS
    )
    deadline = time.monotonic() + max(0.0, min(wait, longest))
    # The pages are read in short sessions of their own. The request's session (on PostgreSQL it
    # authenticated the caller) is ended first, handing its connection back to the pool: held for
    # a long poll, a few pollers (courts usually pull) would take every pooled connection, and
    # every other request would wait for one and fail with 503.
    await session_of(request).rollback()
    while True:
        await sequence_pending(db, utcnow())
        rows, last = await _read(db, principal, position, types, limit)
        if rows or time.monotonic() >= deadline or await request.is_disconnected():
            break
        await asyncio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
    return EventPage(
        items=[CloudEvent(**cloudevent(e)) for e in rows],
        next_cursor=encode_cursor({"p": last}),
    )


@router.get(
    "/events/catalogue",
    summary="事件目录 Event catalogue",
    description="Every event type with its payload fields (also committed as openapi/events.json).",
    responses=problem_responses(),
)
async def event_catalogue() -> list[dict[str, Any]]:
    return catalogue()


# ---- webhook subscriptions ------------------------------------------------------------------------


# The column holds 500 characters: the contract says so (maxLength), and a web address that
# grows past it as the server writes it (an internationalised host in punycode) is refused too.
URL_MAX = 500


class RotateSecretIn(WriteModel):
    overlap_hours: Annotated[float, Field(ge=0, le=168, allow_inf_nan=False)] | None = Field(
        default=None,
        description=(
            "How long the old secret keeps signing beside the new one, in hours; by default the "
            "deployment's (MEDIATION_WEBHOOK_SECRET_OVERLAP_HOURS, 24). 0 when the old secret leaked: "
            "it stops signing at once."
        ),
    )


class SubscriptionIn(WriteModel):
    url: Annotated[HttpUrl, UrlConstraints(max_length=URL_MAX)]
    event_types: Annotated[
        list[str],
        Field(
            max_length=100,
            description="Empty: every type.",
            json_schema_extra=KNOWN_TYPES,
        ),
    ] = []
    description: Annotated[str | None, Field(max_length=200)] = None

    @field_validator("url")
    @classmethod
    def _fits_as_written(cls, value: HttpUrl) -> HttpUrl:
        if len(str(value)) > URL_MAX:
            raise PydanticCustomError(
                "url_too_long", "URL should have at most {max_length} characters", {"max_length": URL_MAX}
            )
        return value

    @field_validator("event_types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(event_types()))
        if unknown:
            raise ValueError(f"unknown event types: {', '.join(unknown)}")
        return value


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    organisation_id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    active: bool = Field(
        description=(
            "Whether it is sent events. False as soon as the API key that made it is revoked or "
            "expires, before the relay records it as disabled."
        )
    )
    disabled_reason: str | None = Field(
        description=(
            "Why it is disabled. `subscriber_key_lapsed: ...` when the API key that made it was revoked "
            "or expired: it receives nothing until a signed-in administrator enables it again."
        )
    )
    previous_secret_expires_at: datetime | None
    created_by: str = Field(
        description=(
            "Who subscribed, or took it on since: the id of the staff account or of the API key "
            "(`GET /v1/api-keys`). A subscription made by a key stops when the key is revoked or expires."
        )
    )
    created_at: datetime
    updated_at: datetime


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="whsec_ signing secret. Shown only in this response.")


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    status: str = Field(description="pending | delivered | dead | cancelled")
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


MAX_REDELIVER = 1000


class RedeliverIn(WriteModel):
    # In the service's years: near year 1 or 9999 the time overflows when converted to UTC.
    since: Instant | None = Field(
        default=None,
        description="Deliveries made at or after this time (with its offset); unset, all still kept.",
    )
    limit: Annotated[int, Field(ge=1, le=MAX_REDELIVER)] = MAX_REDELIVER


class RedeliveryOut(BaseModel):
    redelivered: int = Field(description="Deliveries set to be sent again now.")
    more: bool = Field(description="More are left: the same request again sends the next ones.")


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    relay_id: str
    started_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None


def _service(request: Request) -> WebhookService:
    settings = request.app.state.settings
    return WebhookService(
        session_of(request),
        identity_of(request).cipher,
        settings.webhook_allow_private_targets,
        settings.webhook_timeout_seconds,
    )


def _needs_organisation(principal: Principal) -> None:
    if principal.organisation_id is None:
        raise Conflict(
            Text("只有机构可以订阅事件", "Only an organisation can subscribe to events"),
            code="organisation_required",
        )


@router.post(
    "/webhooks",
    status_code=201,
    response_model=SubscriptionCreated,
    summary="创建事件推送订阅 Subscribe a webhook",
    description=(
        "Deliveries are signed per the Standard Webhooks spec with the returned whsec_ secret. URLs "
        "resolving to loopback, private or link-local addresses are refused. Subscribing, rotating the "
        "secret, disabling, enabling and redelivering need `webhooks:manage` (a center's staff, a body's "
        "administrator, a court or commission; not a body's mediator: 403)."
    ),
    responses=problem_responses(Forbidden, Conflict, IdempotencyKeyMismatch, IdempotencyInProgress),
)
async def create_subscription(
    request: Request, data: SubscriptionIn, principal: WebhookAdmin, idempotency_key: IdempotencyKey = None
) -> Response:
    _needs_organisation(principal)

    async def work() -> Response:
        svc = _service(request)
        sub, secret = await svc.create(principal, str(data.url), data.event_types, data.description)
        request.state.audit_object = ("webhook_subscription", sub.id)
        return _created(sub, secret, 201)

    # A retry after a lost answer gets the same subscription and secret back (stored encrypted,
    # replayed only to the same caller), not a second subscription whose secret nobody holds: it
    # would be sent every event again, each copy failing the receiver's signature check.
    return await run_idempotent(request, principal, idempotency_key, work)


@router.get(
    "/webhooks",
    response_model=list[SubscriptionOut],
    summary="事件推送订阅 Webhook subscriptions",
    description="The organisation's subscriptions, oldest first (ties broken by id), `limit` a page."
    + PAGED_ARRAY,
    responses=problem_responses(ValidationFailed) | sends(200, "Link"),
)
async def list_subscriptions(
    request: Request, response: Response, principal: Reader, limit: PageLimit = 100, cursor: PageCursor = None
) -> list[SubscriptionOut]:
    svc = _service(request)
    rows, next_cursor = await svc.subscriptions(principal, limit, cursor)
    link_next_page(request, response, next_cursor)
    return await svc.as_read(rows, SubscriptionOut)


@router.get(
    "/webhooks/{subscription_id}",
    response_model=SubscriptionOut,
    summary="Webhook subscription",
    responses=problem_responses(NotFound),
)
async def get_subscription(
    request: Request, subscription_id: uuid.UUID, principal: Reader
) -> SubscriptionOut:
    svc = _service(request)
    [out] = await svc.as_read([await svc.get(subscription_id, principal)], SubscriptionOut)
    return out


@router.post(
    "/webhooks/{subscription_id}/rotate-secret",
    response_model=SubscriptionCreated,
    summary="轮换签名密钥 Rotate the signing secret",
    description=(
        "Deliveries carry signatures with both secrets until the old one expires (`overlap_hours`). "
        "Only the secret replaced last keeps signing: rotating again within the overlap retires the "
        "one before it."
    ),
    responses=problem_responses(Forbidden, NotFound, IdempotencyKeyMismatch, IdempotencyInProgress),
)
async def rotate_subscription_secret(
    request: Request,
    subscription_id: uuid.UUID,
    principal: WebhookAdmin,
    data: Annotated[RotateSecretIn | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    async def work() -> Response:
        svc = _service(request)
        sub = await svc.get(subscription_id, principal)
        asked = data.overlap_hours if data is not None else None
        hours = request.app.state.settings.webhook_secret_overlap_hours if asked is None else asked
        overlap = timedelta(hours=hours)
        secret = await svc.rotate_secret(sub, overlap)
        [out] = await svc.as_read([sub], SubscriptionOut)
        return _created(out, secret, 200)

    # A rotation retried after a lost answer would rotate again: the secret the receiver still
    # holds would stop signing at once (only the latest previous one keeps signing), and the
    # successor shown in the lost answer would be gone. The retry gets that answer instead.
    return await run_idempotent(request, principal, idempotency_key, work)


def _created(sub: WebhookSubscription | SubscriptionOut, secret: str, status_code: int) -> Response:
    """The subscription with its secret, as the response model writes it; built here because an
    idempotent request stores and replays the response itself."""
    created = SubscriptionCreated(**SubscriptionOut.model_validate(sub).model_dump(), secret=secret)
    return Response(created.model_dump_json(), status_code=status_code, media_type="application/json")


@router.post(
    "/webhooks/{subscription_id}/disable",
    response_model=SubscriptionOut,
    summary="停用订阅 Disable",
    responses=problem_responses(Forbidden, NotFound),
)
async def disable_subscription(
    request: Request, subscription_id: uuid.UUID, principal: WebhookAdmin
) -> SubscriptionOut:
    svc = _service(request)
    sub = await svc.set_active(await svc.get(subscription_id, principal), False, "disabled by its owner")
    return SubscriptionOut.model_validate(sub)


@router.post(
    "/webhooks/{subscription_id}/enable",
    response_model=SubscriptionOut,
    summary="启用订阅 Enable",
    description=(
        "Re-enables a subscription (after its endpoint answered 410, or after it was disabled for "
        "failing for days); then `POST /v1/webhooks/{id}/redeliver` sends its backlog again. One made "
        "by an API key since revoked or expired (`disabled_reason` starting `subscriber_key_lapsed`) "
        "is enabled only by a signed-in member of the organisation's staff, who takes it on: "
        "`created_by` names them from then on. An API key is refused (403 `subscriber_key_lapsed`)."
    ),
    responses=problem_responses(Forbidden, NotFound),
)
async def enable_subscription(
    request: Request, subscription_id: uuid.UUID, principal: WebhookAdmin
) -> SubscriptionOut:
    svc = _service(request)
    sub = await svc.get(subscription_id, principal)
    was = sub.created_by
    sub = await svc.set_active(sub, True, None, by=principal)
    if sub.created_by != was:
        request.state.audit_details = {"created_by": {"was": was, "now": sub.created_by}}
    [out] = await svc.as_read([sub], SubscriptionOut)
    return out


@router.post(
    "/webhooks/{subscription_id}/redeliver",
    response_model=RedeliveryOut,
    summary="批量重发 Redeliver the failed deliveries since a time",
    description=(
        "Sends again, oldest first, the subscription's dead deliveries and those cancelled when it "
        "was disabled or its organisation suspended, made since `since` (unset: all that are still "
        "kept): at most `limit` per request, so a long backlog goes in several. The subscription must "
        "be enabled first: a disabled one is refused (409 `subscription_disabled`), and so is one made by an API key since "
        "revoked or expired (409 `subscriber_key_lapsed`) until a signed-in member of the "
        "organisation's staff enables it, taking it on."
    ),
    responses=problem_responses(Forbidden, NotFound, Conflict),
)
async def redeliver_since(
    request: Request, subscription_id: uuid.UUID, principal: WebhookAdmin, data: RedeliverIn | None = None
) -> RedeliveryOut:
    data = data or RedeliverIn()
    svc = _service(request)
    sub = await svc.get(subscription_id, principal)
    redelivered, more = await svc.redeliver_since(sub, data.since, data.limit)
    request.state.audit_object = ("webhook_subscription", sub.id)
    return RedeliveryOut(redelivered=redelivered, more=more)


@router.get(
    "/webhooks/{subscription_id}/deliveries",
    response_model=list[DeliveryOut],
    summary="投递记录 Deliveries (dead letters with status=dead)",
    description=(
        "Newest first (ties broken by id), `limit` a page. The answer stays a JSON array; when more "
        'follow, it carries `Link: <...>; rel="next"` (RFC 8288), the same request with the '
        "`cursor` of the next page, so every dead letter can be walked. A cursor not handed out "
        "here is 422 `invalid_cursor`."
    ),
    responses=problem_responses(NotFound, ValidationFailed) | sends(200, "Link"),
)
async def list_deliveries(
    request: Request,
    response: Response,
    subscription_id: uuid.UUID,
    principal: Reader,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|dead|cancelled)$")] = None,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> list[DeliveryOut]:
    svc = _service(request)
    sub = await svc.get(subscription_id, principal)
    rows, next_cursor = await svc.deliveries(sub, status, limit, cursor)
    link_next_page(request, response, next_cursor)
    return [DeliveryOut.model_validate(d) for d in rows]


@router.get(
    "/webhook-deliveries/{delivery_id}/attempts",
    response_model=list[AttemptOut],
    summary="投递尝试 Delivery attempts (status and latency)",
    description=(
        "In the order they were made (a redelivery numbers its attempts from 1 again), `limit` a "
        "page." + PAGED_ARRAY
    ),
    responses=problem_responses(NotFound, ValidationFailed) | sends(200, "Link"),
)
async def list_attempts(
    request: Request,
    response: Response,
    delivery_id: uuid.UUID,
    principal: Reader,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> list[AttemptOut]:
    svc = _service(request)
    rows, next_cursor = await svc.attempts(await svc.delivery(delivery_id, principal), limit, cursor)
    link_next_page(request, response, next_cursor)
    return [AttemptOut.model_validate(a) for a in rows]


@router.post(
    "/webhook-deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    summary="手动重发 Redeliver a dead delivery",
    description=(
        "Sends a dead or cancelled delivery again, with a fresh retry schedule. One pending or "
        "delivered is refused (409 `nothing_to_redeliver`, `status_now` saying which), and so is one "
        "whose subscription is disabled (409 `subscription_disabled`, or `subscriber_key_lapsed` when "
        "the API key that made it lapsed): enable the subscription first."
    ),
    responses=problem_responses(Forbidden, NotFound, Conflict),
)
async def redeliver(request: Request, delivery_id: uuid.UUID, principal: WebhookAdmin) -> DeliveryOut:
    svc = _service(request)
    delivery = await svc.redeliver(await svc.delivery(delivery_id, principal))
    return DeliveryOut.model_validate(delivery)
