"""The demo county (`mediation seed-demo`, run by `make run`): whoever signs in with a demo account
finds work of their role to do, the mediator included."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from mediation import cli
from mediation.core.settings import Settings

CSRF = "demo-desk-csrf-token"


async def _signed_in(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post(
        "/v1/auth/token", json={"username": username, "password": f"{username}-demo-2026"}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_the_demo_mediator_finds_a_case_in_every_column_of_the_queue(
    app: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    assert await asyncio.to_thread(cli.main, ["seed-demo"]) == 0
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://mediation.test"
    ) as client:
        mediator = await _signed_in(client, "mediator")
        listed = await client.get("/v1/disputes", params={"limit": 100}, headers=mediator)
        assert listed.status_code == 200, listed.text
        cases = listed.json()["items"]
        statuses = sorted(case["status"] for case in cases)
        # One to sign for, two in mediation, one agreed, and the older one performed.
        assert statuses == ["agreement_signed", "assigned", "mediating", "mediating", "performed"]
        mediating = [case for case in cases if case["status"] == "mediating"]
        sittings = {}
        drafts = {}
        for case in mediating:
            sessions = await client.get(f"/v1/disputes/{case['id']}/sessions", headers=mediator)
            assert sessions.status_code == 200, sessions.text
            sittings[case["category"]] = [s["status"] for s in sessions.json()]
            versions = await client.get(f"/v1/disputes/{case['id']}/agreements", headers=mediator)
            assert versions.status_code == 200, versions.text
            drafts[case["category"]] = [v["status"] for v in versions.json()]
        assert sittings == {"housing_homestead": ["scheduled"], "neighbour": []}
        # The sitting is still to come, whenever the demo is loaded.
        [housing] = [case for case in mediating if case["category"] == "housing_homestead"]
        [sitting] = (await client.get(f"/v1/disputes/{housing['id']}/sessions", headers=mediator)).json()
        assert datetime.fromisoformat(sitting["scheduled_at"]) > datetime.now(UTC)
        assert drafts == {"housing_homestead": [], "neighbour": ["draft"]}

        # The web queue shows the same desk: the case to sign for on the first tab, and the
        # sitting and the draft on their case pages.
        client.cookies.set("mediation_csrf", CSRF)
        signed_in = await client.post(
            "/login",
            data={"username": "mediator", "password": "mediator-demo-2026", "next": "", "csrf": CSRF},
        )
        assert signed_in.status_code == 303, signed_in.text
        queue = await client.get("/queue")
        assert queue.status_code == 200
        [to_sign_for] = [case for case in cases if case["status"] == "assigned"]
        assert to_sign_for["case_number"] in queue.text


async def test_the_demo_windows_receipts_name_the_demo_clerk_and_the_centers_telephone(
    app: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's cases are registered by the demo clerk's own account, so that a receipt printed
    from them names a 经办人, and the demo center has a (made-up) telephone for it to give."""
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    assert await asyncio.to_thread(cli.main, ["seed-demo"]) == 0
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://mediation.test"
    ) as client:
        clerk = await _signed_in(client, "clerk")
        listed = await client.get("/v1/disputes", params={"limit": 100}, headers=clerk)
        assert listed.status_code == 200, listed.text
        window = [case for case in listed.json()["items"] if case["channel"] == "window"]
        assert window
        client.cookies.set("mediation_csrf", CSRF)
        signed_in = await client.post(
            "/login", data={"username": "clerk", "password": "clerk-demo-2026", "next": "", "csrf": CSRF}
        )
        assert signed_in.status_code == 303, signed_in.text
        for case in window:
            receipt = await client.get(f"/cases/{case['id']}/receipt")
            assert receipt.status_code == 200
            assert '经办人: <span id="clerk">窗口受理员(演示)</span>' in receipt.text, case["case_number"]
            assert '<td id="center-phone">0575-00000000</td>' in receipt.text
