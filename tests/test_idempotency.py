"""Idempotency-Key: a court clerk's system retrying a request three times makes one change."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from mediation.core.db import UTCDateTime
from mediation.core.idempotency import IdempotencyRecord
from mediation.migrate import downgrade, upgrade
from tests.support import intake_body
from tests.test_migrations import empty_database  # noqa: F401  (the fixture)


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
    assert response.json()["detail"] == "该幂等键已用于内容不同的请求"


async def test_same_key_on_another_path_is_refused_naming_the_path(api):
    """The same action on another case under the same key: the path differs, not the body, and the
    refusal says so."""
    one, other = await api.intake(), await api.intake()
    key = {"Idempotency-Key": "accept-1", "Accept-Language": "en"}
    assert (await api.act(one, "accept", headers=key)).status_code == 200
    response = await api.act(other, "accept", headers=key)
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "/problems/idempotency-key-mismatch"
    assert (
        problem["detail"] == "This key was used with a request to a different path or with a different method"
    )
    assert (await api.get(other))["status"] != "accepted"


async def test_a_key_stored_before_paths_were_told_apart_is_refused_as_a_different_request(api):
    headers = api.headers(**{"Idempotency-Key": "k-1", "Accept-Language": "en"})
    assert (await api.client.post("/v1/disputes", json=intake_body(), headers=headers)).status_code == 201
    async with api.app.state.db.writer() as session, session.begin():
        await session.execute(update(IdempotencyRecord).values(target_fingerprint=None))
    response = await api.client.post(
        "/v1/disputes", json=intake_body(description="完全不同的纠纷内容描述"), headers=headers
    )
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "This key was used with a different request (its method, path or body differ)"
    )


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


# ---- across an API key's rotation -----------------------------------------------------------------


async def _key_of_the_cases_body(api, dispute, owner):
    created = await api.client.post(
        "/v1/api-keys",
        json={"organisation_id": dispute["body_id"], "role": "body_mediator", "name": "调解系统对接"},
        headers=owner,
    )
    assert created.status_code == 201, created.text
    return created.json()


def _sitting_request(api, dispute, secret, key):
    return api.client.post(
        f"/v1/disputes/{dispute['id']}/sessions",
        json={"scheduled_at": "2026-06-01T09:00:00+08:00", "place": "枫源村调委会调解室"},
        headers={"X-API-Key": secret, "Authorization": "", "Idempotency-Key": key},
    )


async def _sittings(api, dispute):
    listed = await api.client.get(f"/v1/disputes/{dispute['id']}/sessions")
    assert listed.status_code == 200, listed.text
    return listed.json()


async def test_a_retry_with_the_rotated_key_replays_the_old_keys_answer(api):
    """The old key works on beside its successor so that a client can switch at any moment: a
    request sent with the old key and retried with the new one is one request."""
    dispute = await api.drive("mediating")
    body = next(name for name, id_ in api.bodies.items() if str(id_) == dispute["body_id"])
    owner = await api.signed_in("body_admin", body)
    old = await _key_of_the_cases_body(api, dispute, owner)
    first = await _sitting_request(api, dispute, old["secret"], "k1")
    assert first.status_code == 201, first.text
    rotated = await api.client.post(f"/v1/api-keys/{old['id']}/rotate", headers=owner)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    retry = await _sitting_request(api, dispute, new["secret"], "k1")
    assert retry.status_code == 201, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    # A second rotation (the first successor's own) keeps the chain: still the same request.
    again = await api.client.post(f"/v1/api-keys/{new['id']}/rotate", headers=owner)
    assert again.status_code == 201, again.text
    retry = await _sitting_request(api, dispute, again.json()["secret"], "k1")
    assert retry.headers["idempotent-replayed"] == "true" and retry.json() == first.json()
    assert len(await _sittings(api, dispute)) == 1


async def test_a_revoked_keys_answers_are_not_replayed_to_its_successor(api):
    """A key revoked (it may be in other hands) leaves its successor nothing it sent: the same
    Idempotency-Key runs anew, with another body too, instead of replaying or refusing."""
    dispute = await api.drive("mediating")
    body = next(name for name, id_ in api.bodies.items() if str(id_) == dispute["body_id"])
    owner = await api.signed_in("body_admin", body)
    old = await _key_of_the_cases_body(api, dispute, owner)
    first = await _sitting_request(api, dispute, old["secret"], "k1")
    assert first.status_code == 201, first.text
    rotated = await api.client.post(f"/v1/api-keys/{old['id']}/rotate", headers=owner)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    revoked = await api.client.post(f"/v1/api-keys/{old['id']}/revoke", headers=owner)
    assert revoked.status_code in (200, 204), revoked.text
    retry = await _sitting_request(api, dispute, new["secret"], "k1")
    assert retry.status_code == 201, retry.text
    assert "idempotent-replayed" not in retry.headers and retry.json()["id"] != first.json()["id"]
    # The successor's own answer is its own from then on.
    again = await _sitting_request(api, dispute, new["secret"], "k1")
    assert again.headers["idempotent-replayed"] == "true" and again.json() == retry.json()
    assert len(await _sittings(api, dispute)) == 2


async def test_another_key_of_the_same_body_does_not_replay_its_answer(api):
    """Keys of one organisation not rotated from one another are separate callers: each key's
    Idempotency-Keys are its own."""
    dispute = await api.drive("mediating")
    body = next(name for name, id_ in api.bodies.items() if str(id_) == dispute["body_id"])
    owner = await api.signed_in("body_admin", body)
    one = await _key_of_the_cases_body(api, dispute, owner)
    other = await _key_of_the_cases_body(api, dispute, owner)
    first = await _sitting_request(api, dispute, one["secret"], "k1")
    assert first.status_code == 201, first.text
    second = await _sitting_request(api, dispute, other["secret"], "k1")
    assert second.status_code == 201, second.text
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    assert len(await _sittings(api, dispute)) == 2


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_existing_keys_get_their_chain_and_successors_answers_move_to_it(
    empty_database: str,  # noqa: F811
) -> None:
    """Migration 0039: each key gets the first key of its chain of rotations; an answer a successor
    had stored moves to the chain, unless the chain holds one under the same Idempotency-Key."""
    upgrade(empty_database, "0038")
    sqlite = empty_database.startswith("sqlite")
    stored = (lambda u: u.hex) if sqlite else (lambda u: u)
    body = uuid.UUID(int=1)
    first, second, third, unrelated = (uuid.UUID(int=n) for n in (11, 12, 13, 14))
    at = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)

    async def run(*statements: tuple[str, dict[str, Any]]) -> list[tuple[Any, ...]]:
        engine = create_async_engine(empty_database)
        rows: list[tuple[Any, ...]] = []
        async with engine.begin() as conn:
            for sql, params in statements:
                stmt = text(sql).bindparams(
                    *(bindparam(name, type_=UTCDateTime()) for name in params if name.endswith("_at"))
                )
                result = await conn.execute(stmt, params)
                rows += [tuple(r) for r in result.all()] if result.returns_rows else []
        await engine.dispose()
        return rows

    seed: list[tuple[str, dict[str, Any]]] = [
        (
            "INSERT INTO bodies (id, name, kind, tier, region_code, active, created_at)"
            " VALUES (:id, '枫源村人民调解委员会', 'people_mediation_committee', 'village',"
            " '330681105201', true, :created_at)",
            {"id": stored(body), "created_at": at},
        )
    ]
    for key, replaces in ((first, None), (second, first), (third, second), (unrelated, None)):
        seed.append(
            (
                "INSERT INTO api_keys (id, name, prefix, secret_hash, role, organisation_id,"
                " replaces_id, created_by, created_at) VALUES (:id, '调解系统', :prefix, 'x',"
                " 'body_mediator', :org, :replaces, 'admin', :created_at)",
                {
                    "id": stored(key),
                    "prefix": f"mk_{key.int}",
                    "org": stored(body),
                    "replaces": stored(replaces) if replaces else None,
                    "created_at": at,
                },
            )
        )
    answers = [(first, "both"), (second, "both"), (second, "moved"), (unrelated, "own")]
    for n, (key, idempotency_key) in enumerate(answers):
        seed.append(
            (
                "INSERT INTO idempotency_records (id, scope, key, fingerprint, state, locked_until,"
                " expires_at, created_at) VALUES (:id, :scope, :key, :fp, 'completed', :locked_at,"
                " :expires_at, :created_at)",
                {
                    "id": stored(uuid.UUID(int=100 + n)),
                    "scope": f"api_key:{key}",
                    "key": idempotency_key,
                    "fp": str(n),
                    "locked_at": at,
                    "expires_at": at,
                    "created_at": at,
                },
            )
        )
    asyncio.run(run(*seed))

    upgrade(empty_database)

    keys = asyncio.run(run(("SELECT id, lineage_id FROM api_keys", {})))
    assert {uuid.UUID(str(k)): uuid.UUID(str(lineage)) for k, lineage in keys} == {
        first: first,
        second: first,
        third: first,
        unrelated: unrelated,
    }
    records = asyncio.run(run(("SELECT scope, key, fingerprint FROM idempotency_records", {})))
    assert sorted(records) == sorted(
        [
            (f"api_key:{first}", "both", "0"),
            (f"api_key:{second}", "both", "1"),  # the chain has one: the first key's is found
            (f"api_key:{first}", "moved", "2"),
            (f"api_key:{unrelated}", "own", "3"),
        ]
    )

    downgrade(empty_database, "0038")
    with pytest.raises(Exception, match="lineage_id"):
        asyncio.run(run(("SELECT lineage_id FROM api_keys", {})))
    with pytest.raises(Exception, match="target_fingerprint"):
        asyncio.run(run(("SELECT target_fingerprint FROM idempotency_records", {})))
    assert len(asyncio.run(run(("SELECT id FROM api_keys", {})))) == 4
