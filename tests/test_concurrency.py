"""Two clients acting on the same case at once never both succeed."""

from __future__ import annotations

import asyncio
from collections import Counter

from tests.support import intake_body


async def test_fifty_concurrent_actions_with_one_etag_exactly_one_succeeds(api):
    dispute = await api.intake()
    events_before = await api.outbox_count(dispute["id"])
    responses = await asyncio.gather(*(api.act(dispute, "accept") for _ in range(50)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses[200] == 1, statuses
    assert set(statuses) <= {200, 409, 412}, statuses  # never a 5xx, never "database is locked"
    for r in responses:
        assert r.status_code < 500, r.text
    after = await api.get(dispute)
    assert after["version"] == dispute["version"] + 1
    assert after["status"] == "accepted"
    timeline = await api.timeline(dispute)
    assert [e["action"] for e in timeline] == ["register", "accept"]
    assert await api.outbox_count(dispute["id"]) == events_before + 1


async def test_concurrent_different_actions_on_one_case(api):
    dispute = await api.drive("mediating")
    # Drafted and signed beforehand: the race is between recording it and ending mediation.
    await api.signed_agreement(dispute)
    dispute = await api.get(dispute)
    attempts = [api.act(dispute, "agree") for _ in range(10)] + [api.act(dispute, "fail") for _ in range(10)]
    responses = await asyncio.gather(*attempts)
    assert sum(r.status_code == 200 for r in responses) == 1
    assert all(r.status_code in (200, 409, 412) for r in responses)
    after = await api.get(dispute)
    assert after["version"] == dispute["version"] + 1
    assert await api.timeline_count(dispute["id"]) == dispute["version"] + 1


async def test_concurrent_intake_gets_distinct_dense_case_numbers(api):
    responses = await asyncio.gather(
        *(api.client.post("/v1/disputes", json=intake_body(), headers=api.headers()) for _ in range(20))
    )
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses if r.status_code != 201]
    numbers = sorted(r.json()["case_number"] for r in responses)
    assert numbers == [f"330681-2026-{i:06d}" for i in range(1, 21)]
