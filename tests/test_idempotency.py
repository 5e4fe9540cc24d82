"""Idempotency-Key: a court clerk's system retrying a request three times makes one change."""

from __future__ import annotations

import asyncio

from tests.support import intake_body


async def test_intake_retried_with_the_same_key_makes_one_case(api):
    headers = api.headers(**{"Idempotency-Key": "hotline-7781"})
    first = await api.client.post("/v1/disputes", json=intake_body(), headers=headers)
    assert first.status_code == 201
    for _ in range(3):
        again = await api.client.post("/v1/disputes", json=intake_body(), headers=headers)
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["idempotent-replayed"] == "true"
    listed = await api.client.get("/v1/disputes")
    assert len(listed.json()["items"]) == 1


async def test_same_key_with_a_different_body_is_refused(api):
    headers = api.headers(**{"Idempotency-Key": "k-1"})
    assert (await api.client.post("/v1/disputes", json=intake_body(), headers=headers)).status_code == 201
    response = await api.client.post(
        "/v1/disputes", json=intake_body(description="完全不同的纠纷内容描述"), headers=headers
    )
    assert response.status_code == 422
    assert response.json()["type"] == "/problems/idempotency-key-mismatch"


async def test_keys_belong_to_their_caller(api):
    first = await api.client.post(
        "/v1/disputes", json=intake_body(), headers=api.headers("clerk", **{"Idempotency-Key": "same"})
    )
    second = await api.client.post(
        "/v1/disputes", json=intake_body(), headers=api.headers("supervisor", **{"Idempotency-Key": "same"})
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]


async def test_action_replay_returns_the_first_response(api):
    dispute = await api.intake()
    first = await api.act(dispute, "accept", headers={"Idempotency-Key": "accept-1"})
    assert first.status_code == 200
    # The retry carries the old If-Match; it still gets the stored answer, not a 412.
    replay = await api.act(dispute, "accept", headers={"Idempotency-Key": "accept-1"})
    assert replay.status_code == 200 and replay.json() == first.json()
    assert replay.headers["etag"] == first.headers["etag"] == '"2"'
    assert await api.timeline_count(dispute["id"]) == 2


async def test_a_refused_request_releases_its_key(api):
    dispute = await api.drive("mediating")
    agreement = await api.draft_agreement(dispute)
    for party in dispute["parties"]:
        signed = await api.sign(dispute, agreement, signer="party", party_id=party["id"], method="in_person")
        assert signed.status_code == 200, signed.text
        agreement = signed.json()
    sealed = await api.sign(dispute, agreement, signer="body_seal", method="seal")
    assert sealed.status_code == 200, sealed.text
    agreement = sealed.json()
    payload = {"agreement_id": agreement["id"]}  # the mediator has not signed it yet
    key = {"Idempotency-Key": "agree-1"}
    refused = await api.act(dispute, "agree", payload, headers=key)
    assert refused.status_code == 422
    assert refused.json()["reasons"][0]["code"] == "agreement_unsigned"
    assert (await api.act(dispute, "agree", payload, headers=key)).status_code == 422
    assert (await api.get(dispute))["status"] == "mediating"
    # Once the mediator signs, the same request under the same key runs afresh: no stored refusal.
    signed = await api.sign(dispute, agreement, signer="mediator", method="in_person")
    assert signed.status_code == 200, signed.text
    agreed = await api.act(dispute, "agree", payload, headers=key)
    assert agreed.status_code == 200, agreed.text
    assert agreed.json()["status"] == "agreement_signed"


async def test_concurrent_duplicates_make_one_case(api):
    headers = api.headers(**{"Idempotency-Key": "burst"})
    responses = await asyncio.gather(
        *(api.client.post("/v1/disputes", json=intake_body(), headers=headers) for _ in range(10))
    )
    codes = [r.status_code for r in responses]
    assert set(codes) <= {201, 409}, codes
    assert 201 in codes
    for r in responses:
        if r.status_code == 409:
            assert r.json()["type"] == "/problems/idempotency-in-progress"
            assert r.headers["retry-after"] == "1"
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    assert len((await api.client.get("/v1/disputes")).json()["items"]) == 1
