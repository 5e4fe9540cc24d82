"""Two edits naming the same version at once: one goes through, the other is refused with 412, and
neither answers 500. The reads are slowed down so that both edits have read the row before either
writes (PostgreSQL; SQLite takes writes one at a time)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from mediation.bodies.service import BodyService
from mediation.triage.service import TriageService
from tests.support import Api

pytestmark = pytest.mark.postgres_only


def slowed(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """The method, then a pause: whoever read the row holds what it read while the other reads."""

    async def slow(*args: Any, **kwargs: Any) -> Any:
        found = await method(*args, **kwargs)
        await asyncio.sleep(0.3)
        return found

    return slow


async def test_two_edits_of_a_mediator_with_the_same_if_match_one_is_refused(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    village = api.bodies["village"]
    headers = api.headers("body_admin", "village")
    made = await api.client.post(f"/v1/bodies/{village}/mediators", json={"name": "王五"}, headers=headers)
    assert made.status_code == 201, made.text
    url = f"/v1/bodies/{village}/mediators/{made.json()['id']}"
    monkeypatch.setattr(BodyService, "_mediator", slowed(BodyService._mediator))
    first, second = await asyncio.gather(
        api.client.patch(url, json={"title": "主任"}, headers={**headers, "If-Match": made.headers["etag"]}),
        api.client.patch(url, json={"active": False}, headers={**headers, "If-Match": made.headers["etag"]}),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 412], (first.text, second.text)
    won = first if first.status_code == 200 else second
    roster = (await api.client.get(f"/v1/bodies/{village}/mediators", headers=headers)).json()
    (mediator,) = [m for m in roster if m["id"] == made.json()["id"]]
    # What the one accepted edit answered is what is stored: no other change hides under its ETag.
    assert won.headers["etag"] == '"2"'
    assert (mediator["title"], mediator["active"]) == (won.json()["title"], won.json()["active"])


async def test_two_administrators_replacing_the_rules_at_once_one_is_refused(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = api.auth("admin")
    current = await api.client.get("/v1/triage/rules", headers=admin)
    monkeypatch.setattr(TriageService, "rules", slowed(TriageService.rules))
    first, second = await asyncio.gather(
        api.client.delete("/v1/triage/rules", headers={**admin, "If-Match": current.headers["etag"]}),
        api.client.delete("/v1/triage/rules", headers={**admin, "If-Match": current.headers["etag"]}),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 412], (first.text, second.text)
    refused = first if first.status_code == 412 else second
    assert refused.headers["content-type"].startswith("application/problem+json")
    monkeypatch.undo()
    now = await api.client.get("/v1/triage/rules", headers=admin)
    assert refused.json()["current_etag"] == now.headers["etag"]
