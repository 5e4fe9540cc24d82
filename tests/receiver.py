"""A webhook receiver on 127.0.0.1 for the tests: a real HTTP server that checks every delivery
with the Standard Webhooks reference library, as a court's or a body's system would."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.requests import Request
from starlette.responses import Response

from mediation.events.models import WebhookAttempt, WebhookDelivery


@dataclass
class Delivery:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """Answers each delivery with the next status of `script` (then `default`), after verifying it.

    A delivery that fails verification is answered 400, as a careful receiver would.
    """

    secrets: list[str] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    default: int = 200
    answer: Callable[[Delivery], int] | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    url: str = ""
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    def verify(self, body: bytes, headers: dict[str, str]) -> bool:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                return True
            except WebhookVerificationError:
                continue
        return False

    async def receive_delivery(self, scope: Any, receive: Any) -> Delivery:
        """Reads and verifies one delivery and picks its status (400 when it does not verify)."""
        request = Request(scope, receive)
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = self.verify(body, headers)
        status = (self.script.pop(0) if self.script else self.default) if verified else 400
        return Delivery(headers.get("webhook-id", ""), headers, body, verified, status)

    async def _app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        delivery = await self.receive_delivery(scope, receive)
        status = delivery.answered
        if delivery.verified and self.answer is not None:
            status = delivery.answered = self.answer(delivery)
        self.deliveries.append(delivery)
        await Response(status_code=status)(scope, receive, send)

    async def start(self) -> str:
        config = uvicorn.Config(
            self._app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", interface="asgi3"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hooks"
        return self.url

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task

    def ok(self) -> list[Delivery]:
        """Deliveries that verified and were answered 2xx."""
        return [d for d in self.deliveries if d.verified and 200 <= d.answered < 300]

    async def wait_for(self, predicate: Callable[[Receiver], bool], seconds: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + seconds
        while not predicate(self):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"receiver: condition not met in {seconds}s ({len(self.deliveries)} deliveries)"
                )
            await asyncio.sleep(0.05)


async def deliveries_of(api: Any, sub_id: uuid.UUID) -> list[WebhookDelivery]:
    """A subscription's deliveries, as the database holds them."""
    async with api.app.state.db.reader() as session:
        rows = await session.scalars(select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub_id))
        return list(rows.all())


async def attempts_of(api: Any, sub_id: uuid.UUID) -> list[WebhookAttempt]:
    """The attempt log of a subscription's deliveries."""
    async with api.app.state.db.reader() as session:
        rows = await session.scalars(
            select(WebhookAttempt)
            .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
            .where(WebhookDelivery.subscription_id == sub_id)
        )
        return list(rows.all())
