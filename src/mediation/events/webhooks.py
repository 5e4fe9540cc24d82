"""Webhook subscriptions: targets, secrets, and the delivery bookkeeping the API exposes."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import secrets
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.core.db import utcnow
from mediation.core.errors import Conflict, NotFound, ValidationFailed
from mediation.core.i18n import Text
from mediation.core.pii import PiiCipher
from mediation.core.principal import Principal
from mediation.events.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

SECRET_PREFIX = "whsec_"
_AAD_TABLE = "webhook_subscriptions"


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes, the Standard Webhooks secret format."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class TargetRefused(Exception):
    def __init__(self, reason: Text) -> None:
        super().__init__(reason.en)
        self.reason = reason


async def check_target(url: str, allow_private: bool) -> None:
    """Refuse URLs that reach into the center's own network (SSRF): whatever the host name
    resolves to must be a public address, and so must any IPv4 address it carries. "Not global"
    takes in loopback, private, link-local and unspecified addresses, and the shared space of
    carrier-grade NAT (100.64.0.0/10), where clouds keep their metadata services (Alibaba Cloud's
    100.100.100.200); reserved blocks are refused as well, some of which Python counts global."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused(Text("须为带主机名的 http(s) 地址", "the URL must be http(s) with a host"))
    if parts.username or parts.password:
        raise TargetRefused(Text("地址中不得含用户名或密码", "credentials in the URL are not allowed"))
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 443)
    except OSError as exc:
        raise TargetRefused(
            Text("主机名无法解析", f"the host does not resolve: {exc.strerror or exc}")
        ) from exc
    except UnicodeError as exc:
        # A name DNS cannot carry (a label longer than 63 characters): the lookup refuses it
        # before asking anyone, with UnicodeError rather than OSError.
        raise TargetRefused(Text("主机名无法解析", f"the host does not resolve: {exc}")) from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        for reached in (address, *_embedded_ipv4(address)):
            if not reached.is_global or reached.is_reserved or reached.is_multicast:
                raise TargetRefused(
                    Text(
                        f"{parts.hostname} 指向非公网地址 ({reached})",
                        f"{parts.hostname} resolves to a non-public address ({reached})",
                    )
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


class WebhookService:
    def __init__(self, session: AsyncSession, cipher: PiiCipher, allow_private: bool) -> None:
        self.session = session
        self.cipher = cipher
        self.allow_private = allow_private

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
            await check_target(url, self.allow_private)
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

    async def subscriptions(self, principal: Principal) -> list[WebhookSubscription]:
        rows = await self.session.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.organisation_id == principal.organisation_id)
            .order_by(WebhookSubscription.created_at)
        )
        return list(rows.all())

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
        self, sub: WebhookSubscription, active: bool, reason: str | None
    ) -> WebhookSubscription:
        sub.active = active
        sub.disabled_reason = None if active else reason
        sub.updated_at = utcnow()
        if not active:
            await cancel_pending(self.session, sub.id)
        await self.session.flush()
        return sub

    async def deliveries(
        self, sub: WebhookSubscription, status: str | None, limit: int
    ) -> list[WebhookDelivery]:
        stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub.id)
        if status:
            stmt = stmt.where(WebhookDelivery.status == status)
        rows = await self.session.scalars(stmt.order_by(WebhookDelivery.created_at.desc()).limit(limit))
        return list(rows.all())

    async def delivery(self, delivery_id: uuid.UUID, principal: Principal) -> WebhookDelivery:
        delivery = await self.session.get(WebhookDelivery, delivery_id)
        if delivery is not None:
            await self.get(delivery.subscription_id, principal)
            return delivery
        raise NotFound(Text("投递记录不存在", "No such delivery"))

    async def attempts(self, delivery: WebhookDelivery) -> list[WebhookAttempt]:
        rows = await self.session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery.id)
            # In the order they happened: a redelivery numbers its attempts from 1 again.
            .order_by(WebhookAttempt.started_at, WebhookAttempt.attempt)
        )
        return list(rows.all())

    async def redeliver(self, delivery: WebhookDelivery) -> WebhookDelivery:
        """Send a dead (or cancelled) delivery again, with a fresh retry schedule."""
        sub = await self.session.get(WebhookSubscription, delivery.subscription_id)
        assert sub is not None
        if not sub.active:
            raise Conflict(Text("订阅已停用, 请先启用", "The subscription is disabled; enable it first"))
        if delivery.status in ("pending", "delivered"):
            raise Conflict(
                Text("该投递无需重发", "This delivery is {s}; nothing to redeliver").format(s=delivery.status)
            )
        delivery.status = "pending"
        delivery.attempts = 0
        delivery.next_attempt_at = utcnow()
        delivery.claimed_by = None
        delivery.claimed_until = None
        await self.session.flush()
        return delivery


async def cancel_pending(session: AsyncSession, subscription_id: uuid.UUID) -> None:
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == subscription_id, WebhookDelivery.status == "pending")
        .values(status="cancelled", claimed_by=None, claimed_until=None)
    )
