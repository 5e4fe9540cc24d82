"""Webhook subscriptions: targets, secrets, and the delivery bookkeeping the API exposes."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import secrets
import socket
import ssl
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from urllib.parse import urlsplit

import httpcore
import httpx
from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.audit.chain import AuditEntry, append
from mediation.core.db import keyset_page, utcnow
from mediation.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from mediation.core.i18n import Text
from mediation.core.pii import PiiCipher
from mediation.core.principal import Principal
from mediation.events.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from mediation.identity.models import ApiKey

SECRET_PREFIX = "whsec_"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_AAD_TABLE = "webhook_subscriptions"
_Read = TypeVar("_Read", bound=BaseModel)


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes, the Standard Webhooks secret format."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class TargetRefused(Exception):
    def __init__(self, reason: Text) -> None:
        super().__init__(reason.en)
        self.reason = reason


async def check_target(url: str, allow_private: bool) -> None:
    """Refuse URLs that reach into the center's own network (SSRF): see `refuse_non_public`. At
    subscription; when a delivery is sent, the connection itself is held to the same rule
    (`PublicAddressBackend`)."""
    host, port = check_form(url)
    if not allow_private:
        refuse_non_public(host, await resolve(host, port))


def check_form(url: str) -> tuple[str, int]:
    """The URL's host and port, once it is an http(s) URL with a host and without credentials."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused(Text("须为带主机名的 http(s) 地址", "the URL must be http(s) with a host"))
    if parts.username or parts.password:
        raise TargetRefused(Text("地址中不得含用户名或密码", "credentials in the URL are not allowed"))
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def refuse_non_public(host: str, addresses: list[IPAddress]) -> None:
    """Every address a host name resolves to must be public, and so must any IPv4 address it
    carries. "Not global" takes in loopback, private, link-local and unspecified addresses, and the
    shared space of carrier-grade NAT (100.64.0.0/10), where clouds keep their metadata services
    (Alibaba Cloud's 100.100.100.200); reserved blocks are refused as well, some of which Python
    counts global."""
    for address in addresses:
        for reached in (address, *_embedded_ipv4(address)):
            if not reached.is_global or reached.is_reserved or reached.is_multicast:
                raise TargetRefused(
                    Text(
                        f"{host} 指向非公网地址 ({reached})",
                        f"{host} resolves to a non-public address ({reached})",
                    )
                )


# Host names are looked up by the system's resolver, which blocks a thread until its name server
# answers or it gives up (tens of seconds for one that never answers). In the event loop's default
# executor, a few such names would take every thread it has, and with them every other receiver's
# lookups and whatever else runs in a thread (`asyncio.to_thread`). So lookups have a few threads
# of their own, and the sends waiting for one name share one lookup of it (`_looking_up`): a name
# that hangs holds one thread, however many deliveries wait for it. Each send waits no longer than
# its own deadline (`Relay.send`); the lookup itself runs on until the resolver gives up. A thread
# waiting on a name server costs no CPU, so there are enough of them that only many distinct names
# hanging at once could take them all.
LOOKUP_THREADS = 16
_lookup_threads: ThreadPoolExecutor | None = None
_looking_up: dict[tuple[asyncio.AbstractEventLoop, str, int], asyncio.Future[list[str]]] = {}


def _lookup_pool() -> ThreadPoolExecutor:
    global _lookup_threads
    if _lookup_threads is None:
        _lookup_threads = ThreadPoolExecutor(LOOKUP_THREADS, thread_name_prefix="webhook-lookup")
    return _lookup_threads


def _lookup(host: str, port: int) -> asyncio.Future[list[str]]:
    """The lookup of `host` under way in this loop, or a new one."""
    loop = asyncio.get_running_loop()
    key = (loop, host, port)
    shared = _looking_up.get(key)
    if shared is None:
        shared = loop.run_in_executor(_lookup_pool(), _getaddrinfo, host, port)
        _looking_up[key] = shared

        def done(finished: asyncio.Future[list[str]]) -> None:
            _looking_up.pop(key, None)
            if not finished.cancelled():
                finished.exception()  # retrieved, even when every send waiting for it timed out

        shared.add_done_callback(done)
    return shared


def _getaddrinfo(host: str, port: int) -> list[str]:
    """The addresses the resolver answers for `host`, in its order."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses `host` resolves to."""
    try:
        return [ipaddress.ip_address(host)]  # an address already: nothing to look up
    except ValueError:
        pass
    try:
        # Shielded: a send that gives up at its deadline leaves the lookup to the others waiting.
        found = await asyncio.shield(_lookup(host, port))
    except OSError as exc:
        raise TargetRefused(
            Text("主机名无法解析", f"the host does not resolve: {exc.strerror or exc}")
        ) from exc
    except UnicodeError as exc:
        # A name DNS cannot carry (a label longer than 63 characters): the lookup refuses it
        # before asking anyone, with UnicodeError rather than OSError.
        raise TargetRefused(Text("主机名无法解析", f"the host does not resolve: {exc}")) from exc
    return [ipaddress.ip_address(address) for address in found]


class PublicAddressBackend(httpcore.AsyncNetworkBackend):
    """Opens a delivery's connection to an address its host name resolved to and that was checked,
    never to one looked up again: a name that answers a public address when it is checked and an
    internal one a moment later (DNS rebinding, a zero TTL is all it takes) would otherwise carry
    the request into the center's network. Only the TCP connection goes to the address; the URL,
    and so the Host header, TLS SNI and the certificate's host name check, keep the name."""

    def __init__(self, allow_private: Callable[[], bool]) -> None:
        self.allow_private = allow_private  # asked at each connection: the setting may change
        self._network = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve(host, port)
        if not self.allow_private():
            refuse_non_public(host, addresses)
        failure: Exception | None = None
        for address in addresses:  # in the resolver's order, as a client connecting by name does
            try:
                return await self._network.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"{host} resolves to no address")

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


class WebhookTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connections opened by `PublicAddressBackend`. httpx takes no
    network backend, so its pool (`_pool`, the one attribute its request handling and error
    mapping use) is replaced by httpcore's with the backend; the webhook tests fail if an httpx
    release changes that. A client given a transport takes no proxy from the environment either:
    a proxy would look the name up itself."""

    def __init__(self, allow_private: Callable[[], bool], verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(verify=verify)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            # The relay bounds how many sends it has open (relay_max_in_flight); the pool does not.
            max_connections=None,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=PublicAddressBackend(allow_private),
        )


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: an IPv4 address behind a NAT64 gateway
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # RFC 4291's deprecated form


def _embedded_ipv4(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries to (mapped, NAT64, IPv4-compatible, 6to4,
    Teredo): 64:ff9b::a9fe:a9fe is 169.254.169.254 reached through a gateway, and must be judged
    as that."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [a for a in found if a is not None]


def _invalid(field: str, code: str, message: Text) -> ValidationFailed:
    return ValidationFailed.of_field(field, code, message)


def _nothing_to_redeliver(delivery: WebhookDelivery) -> Conflict:
    """A delivery still on its way, or already received, is not sent again: only a dead or
    cancelled one is. `status_now` says which it is."""
    return Conflict(
        Text("该投递无需重发", "This delivery is {s}; nothing to redeliver").format(s=delivery.status),
        code="nothing_to_redeliver",
        status_now=delivery.status,
    )


class WebhookService:
    def __init__(
        self,
        session: AsyncSession,
        cipher: PiiCipher,
        allow_private: bool,
        lookup_timeout: float | None = None,
    ) -> None:
        self.session = session
        self.cipher = cipher
        self.allow_private = allow_private
        # How long a subscription waits for its host name to resolve (None: as long as it takes).
        self.lookup_timeout = lookup_timeout

    def _encrypt(self, sub_id: uuid.UUID, column: str, secret: str) -> str:
        return self.cipher.encrypt(secret, table=_AAD_TABLE, column=column, row_id=str(sub_id))

    def secrets_of(self, sub: WebhookSubscription, now: datetime) -> list[str]:
        """The secrets that sign a delivery now: the current one, and the previous one during rotation."""
        out = [self.cipher.decrypt(sub.secret_enc, table=_AAD_TABLE, column="secret", row_id=str(sub.id))]
        if (
            sub.previous_secret_enc
            and sub.previous_secret_expires_at
            and sub.previous_secret_expires_at > now
        ):
            out.append(
                self.cipher.decrypt(
                    sub.previous_secret_enc, table=_AAD_TABLE, column="previous_secret", row_id=str(sub.id)
                )
            )
        return out

    async def create(
        self, principal: Principal, url: str, event_types: list[str], description: str | None
    ) -> tuple[WebhookSubscription, str]:
        try:
            # Bounded as a delivery's send is: a name server that never answers would otherwise
            # hold the request, with a write's turn and its connection, until the system resolver
            # gives up or the request's time limit ends it (503). The lookup itself runs on in its
            # own thread, shared with any send waiting for the same name (`resolve`).
            async with asyncio.timeout(self.lookup_timeout):
                await check_target(url, self.allow_private)
        except TimeoutError as exc:
            waited = f"{self.lookup_timeout:g}"
            raise _invalid(
                "url",
                "target_refused",
                Text(
                    f"不能使用该地址: 主机名解析超时 ({waited} 秒)",
                    f"URL refused: the host did not resolve within {waited} s",
                ),
            ) from exc
        except TargetRefused as exc:
            raise _invalid(
                "url",
                "target_refused",
                Text(f"不能使用该地址: {exc.reason.zh}", f"URL refused: {exc.reason.en}"),
            ) from exc
        assert principal.organisation_id is not None
        now = utcnow()
        secret = new_secret()
        sub = WebhookSubscription(
            id=uuid.uuid4(),
            organisation_id=principal.organisation_id,
            role=principal.role.value,
            url=url,
            event_types=sorted(set(event_types)),
            description=description,
            active=True,
            created_by=principal.id,
            created_at=now,
            updated_at=now,
        )
        sub.secret_enc = self._encrypt(sub.id, "secret", secret)
        self.session.add(sub)
        await self.session.flush()
        return sub, secret

    async def get(self, sub_id: uuid.UUID, principal: Principal) -> WebhookSubscription:
        sub = await self.session.get(WebhookSubscription, sub_id)
        if sub is None or sub.organisation_id != principal.organisation_id:
            raise NotFound(Text("订阅不存在", "No such subscription"))
        return sub

    async def subscriptions(
        self, principal: Principal, limit: int, cursor: str | None = None
    ) -> tuple[list[WebhookSubscription], str | None]:
        """A page of the organisation's subscriptions, oldest first, and the cursor after it
        (`keyset_page`)."""
        stmt = select(WebhookSubscription).where(
            WebhookSubscription.organisation_id == principal.organisation_id
        )
        return await keyset_page(
            self.session, stmt, WebhookSubscription.created_at, WebhookSubscription.id, limit, cursor
        )

    async def as_read(self, subs: list[WebhookSubscription], model: type[_Read]) -> list[_Read]:
        """The subscriptions as an API client reads them: one whose key has expired (or was
        revoked) reads as disabled, saying why, although its row still says active. The relay sends
        nothing under such a key (`Relay.claim`) and records the subscription as disabled when it
        next sends to it or looks after its upkeep, up to ten minutes later (`PURGE_EVERY_SECONDS`); meanwhile a
        client that read `active` would wait for events that never come."""
        now = utcnow()
        lapsed = await lapsed_keys(self.session, {sub.created_by for sub in subs if sub.active}, now)
        out = []
        for sub in subs:
            read = model.model_validate(sub)
            key = lapsed.get(sub.created_by) if sub.active else None
            if key is not None:
                read = read.model_copy(update={"active": False, "disabled_reason": lapsed_reason(key, now)})
            out.append(read)
        return out

    async def rotate_secret(self, sub: WebhookSubscription, overlap: timedelta) -> str:
        now = utcnow()
        current = self.cipher.decrypt(sub.secret_enc, table=_AAD_TABLE, column="secret", row_id=str(sub.id))
        secret = new_secret()
        sub.previous_secret_enc = self._encrypt(sub.id, "previous_secret", current)
        sub.previous_secret_expires_at = now + overlap
        sub.secret_enc = self._encrypt(sub.id, "secret", secret)
        sub.updated_at = now
        await self.session.flush()
        return secret

    async def set_active(
        self, sub: WebhookSubscription, active: bool, reason: str | None, by: Principal | None = None
    ) -> WebhookSubscription:
        """Disables or enables `sub`. Enabled by `by`, a subscription whose key no longer holds
        (`lapsed_keys`) is taken on by `by`, who must be signed in: see `take_on`."""
        await lock_subscriptions(self.session, [sub.id])
        if active and by is not None:
            await self.take_on(sub, by)
        if active and not sub.active:
            # Enabled again (its receiver fixed, say): the failures that disabled it no longer
            # count, and it fails for the whole period anew before the relay disables it again
            # (`Relay._disable_if_failing_too_long`). An enabled one keeps its count.
            sub.failing_since = None
        sub.active = active
        sub.disabled_reason = None if active else reason
        sub.updated_at = utcnow()
        await self.session.flush()
        if not active:
            await cancel_pending(self.session, sub.id)
        return sub

    async def take_on(self, sub: WebhookSubscription, by: Principal) -> str | None:
        """A subscription whose key was revoked or has expired receives nothing (`lapsed_keys`):
        the URL it sends a body's case events to was chosen by a credential no longer trusted. A
        signed-in member of the organisation's staff who enables it again vouches for the URL, and
        becomes who it was created by; another key is refused (403 `subscriber_key_lapsed`), as
        it could not know who chose the URL. Returns who it was created by before, if it changed."""
        lapsed = await lapsed_keys(self.session, [sub.created_by], utcnow())
        if sub.created_by not in lapsed:
            return None
        if by.kind != "user":
            raise Forbidden(
                Text(
                    "该订阅由已吊销或已过期的 API 密钥创建, 须由本机构管理员登录后核对推送地址并启用",
                    "This subscription was made by an API key since revoked or expired: an "
                    "administrator of the organisation signs in, checks its URL and enables it",
                ),
                code=SUBSCRIBER_KEY_LAPSED,
            )
        before, sub.created_by = sub.created_by, by.id
        return before

    async def deliveries(
        self, sub: WebhookSubscription, status: str | None, limit: int, cursor: str | None = None
    ) -> tuple[list[WebhookDelivery], str | None]:
        """A page of the subscription's deliveries, newest first, and the cursor after it
        (`keyset_page`)."""
        stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub.id)
        if status:
            stmt = stmt.where(WebhookDelivery.status == status)
        return await keyset_page(
            self.session,
            stmt,
            WebhookDelivery.created_at,
            WebhookDelivery.id,
            limit,
            cursor,
            newest_first=True,
        )

    async def delivery(self, delivery_id: uuid.UUID, principal: Principal) -> WebhookDelivery:
        delivery = await self.session.get(WebhookDelivery, delivery_id)
        if delivery is not None:
            await self.get(delivery.subscription_id, principal)
            return delivery
        raise NotFound(Text("投递记录不存在", "No such delivery"))

    async def attempts(
        self, delivery: WebhookDelivery, limit: int, cursor: str | None = None
    ) -> tuple[list[WebhookAttempt], str | None]:
        """A page of the delivery's attempts in the order they happened (by when each started: a
        redelivery numbers its attempts from 1 again, so the number is no order), and the cursor
        after it (`keyset_page`). A delivery sent again and again has no bound on its attempts."""
        stmt = select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id)
        return await keyset_page(
            self.session, stmt, WebhookAttempt.started_at, WebhookAttempt.id, limit, cursor
        )

    async def _refuse_if_stopped(self, sub: WebhookSubscription) -> None:
        """Refuses (409) to send again to a subscription that sends nothing: one disabled, or one
        whose key has expired or was revoked, which reads as disabled (`as_read`) although its row
        still says active until the relay records it. Its deliveries set pending would be
        cancelled by the relay (`Relay.claim`), not sent, while the answer counted them as sent."""
        if not sub.active:
            raise Conflict(
                Text("订阅已停用, 请先启用", "The subscription is disabled; enable it first"),
                code="subscription_disabled",
            )
        key = (await lapsed_keys(self.session, [sub.created_by], utcnow())).get(sub.created_by)
        if key is None:
            return
        why = Text("已被吊销", "was revoked") if key.revoked_at is not None else Text("已过期", "has expired")
        raise Conflict(
            Text(
                f"订阅已停用: 创建它的 API 密钥 ({key.prefix}) {why.zh}, 须由本机构管理员登录后核对推送地址并启用",
                f"The subscription is disabled: the API key that made it ({key.prefix}) {why.en}; an "
                "administrator of the organisation signs in, checks its URL and enables it first",
            ),
            code=SUBSCRIBER_KEY_LAPSED,
        )

    async def redeliver(self, delivery: WebhookDelivery) -> WebhookDelivery:
        """Send a dead (or cancelled) delivery again, with a fresh retry schedule."""
        # Locked, and read again: one disabled meanwhile is refused, not sent to.
        sub = (await lock_subscriptions(self.session, [delivery.subscription_id]))[0]
        await self.session.refresh(delivery)
        await self._refuse_if_stopped(sub)
        if delivery.status in ("pending", "delivered"):
            raise _nothing_to_redeliver(delivery)
        # A claim it still has is left in place (`cancel_pending`). Changed only while it is still
        # dead or cancelled: its row is not locked, and a send that was out when it was cancelled
        # may be recorded as delivered meanwhile (the relay holds the subscription only then).
        changed = await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery.id, WebhookDelivery.status.in_(("dead", "cancelled")))
            .values(status="pending", attempts=0, next_attempt_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        await self.session.refresh(delivery)
        if not changed.rowcount:  # type: ignore[attr-defined]
            raise _nothing_to_redeliver(delivery)
        return delivery

    async def redeliver_since(
        self, sub: WebhookSubscription, since: datetime | None, limit: int
    ) -> tuple[int, bool]:
        """Send again, with a fresh retry schedule, up to `limit` of the subscription's dead and
        cancelled deliveries made since `since`, oldest first: the backlog of a receiver that was
        down, once it is back and the subscription enabled. Returns how many, and whether more
        are left (the same request again sends the next ones)."""
        await lock_subscriptions(self.session, [sub.id])  # and read again: see `redeliver`
        await self._refuse_if_stopped(sub)
        stmt = select(WebhookDelivery.id).where(
            WebhookDelivery.subscription_id == sub.id, WebhookDelivery.status.in_(("dead", "cancelled"))
        )
        if since is not None:
            stmt = stmt.where(WebhookDelivery.created_at >= since)
        rows = await self.session.scalars(
            stmt.order_by(WebhookDelivery.created_at, WebhookDelivery.id).limit(limit + 1)
        )
        ids = list(rows.all())
        chosen = ids[:limit]
        if not chosen:
            return 0, False
        result = await self.session.execute(
            update(WebhookDelivery)
            # The status again: one sent or delivered meanwhile is left alone, and not counted.
            # A claim is left in place (`cancel_pending`).
            .where(WebhookDelivery.id.in_(chosen), WebhookDelivery.status.in_(("dead", "cancelled")))
            .values(status="pending", attempts=0, next_attempt_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return result.rowcount, len(ids) > limit  # type: ignore[attr-defined]


async def lock_subscriptions(
    session: AsyncSession, subscription_ids: Iterable[uuid.UUID]
) -> list[WebhookSubscription]:
    """Locks subscriptions' rows, in the order of their ids, and reads them again.

    Whatever changes a subscription together with its deliveries (disabling it by hand, a 410, the
    relay disabling one that failed for days, a redelivery) takes its row first, then the deliveries'
    rows: on PostgreSQL two of them then wait for each other at the subscription, where one holding
    deliveries and waiting for the subscription while the other holds the subscription and waits for
    those deliveries would deadlock. `FOR NO KEY UPDATE` is the lock an UPDATE of the row's other
    columns takes; unlike `FOR UPDATE` it does not wait for new deliveries, whose foreign keys take
    a key-share lock on the row. (SQLite has one writer at a time, and no row locks.)"""
    rows = await session.scalars(
        select(WebhookSubscription)
        .where(WebhookSubscription.id.in_(set(subscription_ids)))
        .order_by(WebhookSubscription.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


async def cancel_pending(session: AsyncSession, subscription_id: uuid.UUID) -> None:
    """Cancels what is pending for a subscription; the caller has locked it (`lock_subscriptions`).

    A delivery a relay is sending keeps that relay's claim (`claimed_by`, `claimed_until`) until its
    outcome is recorded or the lease lapses: were the claim cleared, a redelivery of the cancelled
    delivery would make it due at once, and it would be sent a second time while the first send is
    still out, the older outcome then overwriting the newer (`Relay.record`)."""
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == subscription_id, WebhookDelivery.status == "pending")
        .values(status="cancelled")
    )


# A subscription stopped because the key that made it no longer holds (403 `code` on enabling it
# with another key, and the audit trail's reason).
SUBSCRIBER_KEY_LAPSED = "subscriber_key_lapsed"


async def lapsed_keys(session: AsyncSession, created_by: Iterable[str], now: datetime) -> dict[str, ApiKey]:
    """Of these `created_by` values, those naming an API key that is revoked or has expired, with
    the key. A staff account's id names no key: its subscriptions do not lapse with any key."""
    ids = set()
    for value in created_by:
        try:
            ids.add(uuid.UUID(value))
        except ValueError:
            continue
    if not ids:
        return {}
    rows = await session.scalars(
        select(ApiKey).where(
            ApiKey.id.in_(ids),
            (ApiKey.revoked_at.is_not(None)) | (ApiKey.expires_at <= now),
        )
    )
    return {str(key.id): key for key in rows}


def lapsed_reason(key: ApiKey, now: datetime) -> str:
    """Why a subscription of `key` stopped, as its API representation and the audit trail say."""
    if key.revoked_at is not None:
        what, at = "was revoked", key.revoked_at
    else:
        what, at = "expired", key.expires_at or now
    return (
        f"{SUBSCRIBER_KEY_LAPSED}: the API key that subscribed it ({key.prefix}) {what} "
        f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC; a signed-in administrator of the organisation "
        "enables it again to take it on"
    )


async def stop_subscriptions_of_lapsed_keys(
    session: AsyncSession,
    by: Principal,
    now: datetime,
    subscription_ids: Iterable[uuid.UUID] | None = None,
    *,
    by_key: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Disables the active subscriptions made by an API key that is revoked or has expired (of
    `subscription_ids`, or of the key `by_key`, or all), cancels what is pending for them, and
    audits each as `by`'s doing; returns their ids. A revoked or expired key no longer reads the organisation's cases, so what
    it set up no longer receives them either: the events may carry a case owner's name and a
    mediator's notes, and the URL was chosen by a credential no longer trusted (个人信息保护法
    Art. 9, 51: the handler keeps personal data from unauthorised access). Subscriptions made by
    staff accounts are left alone."""
    stmt = select(WebhookSubscription.id, WebhookSubscription.created_by).where(
        WebhookSubscription.active.is_(True)
    )
    if subscription_ids is not None:
        stmt = stmt.where(WebhookSubscription.id.in_(set(subscription_ids)))
    if by_key is not None:
        stmt = stmt.where(WebhookSubscription.created_by == str(by_key))
    candidates = (await session.execute(stmt)).all()
    lapsed = await lapsed_keys(session, {created_by for _, created_by in candidates}, now)
    chosen = [sub_id for sub_id, created_by in candidates if created_by in lapsed]
    if not chosen:
        return []
    stopped = []
    entries = []
    # Locked, and read again (`lock_subscriptions`): one enabled and taken on meanwhile is spared.
    for sub in await lock_subscriptions(session, chosen):
        key = lapsed.get(sub.created_by)
        if not sub.active or key is None:
            continue
        reason = lapsed_reason(key, now)
        sub.active, sub.disabled_reason, sub.updated_at = False, reason, now
        await session.flush()
        await cancel_pending(session, sub.id)
        stopped.append(sub.id)
        entries.append(
            AuditEntry.by(
                by,
                "webhook.subscriber_key_lapsed",
                object_type="webhook_subscription",
                object_id=str(sub.id),
                details={"reason": reason, "api_key": str(key.id), "organisation": str(sub.organisation_id)},
            )
        )
    if entries:
        await append(session, entries, now)
    return stopped
