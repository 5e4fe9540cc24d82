"""A body's retry of a lost answer adds its mediator, or declares a conflict, once
(`Idempotency-Key`, as every creating POST)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import Api


async def three_times(api: Api, url: str, body: dict[str, Any], key: str) -> list[httpx.Response]:
    headers = {**api.auth("body_admin", "village"), "Idempotency-Key": key}
    return [await api.client.post(url, json=body, headers=headers) for _ in range(3)]


async def test_a_mediator_added_three_times_with_one_key_is_added_once(api: Api) -> None:
    village = api.bodies["village"]
    url = f"/v1/bodies/{village}/mediators"
    answers = await three_times(api, url, {"name": "王调解员"}, "add-mediator-1")
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert [a.headers.get("idempotent-replayed") for a in answers] == [None, "true", "true"]
    assert answers[1].headers["etag"] == answers[0].headers["etag"]
    roster = (await api.client.get(url, headers=api.auth("body_admin", "village"))).json()
    assert [m["name"] for m in roster].count("王调解员") == 1
    # The same key for another mediator is a mistake, not a replay.
    other = await api.client.post(
        url,
        json={"name": "李调解员"},
        headers={**api.auth("body_admin", "village"), "Idempotency-Key": "add-mediator-1"},
    )
    assert other.status_code == 422 and other.json()["type"] == "/problems/idempotency-key-mismatch"


async def test_a_conflict_declared_three_times_with_one_key_is_declared_once(api: Api) -> None:
    village = api.bodies["village"]
    url = f"/v1/bodies/{village}/mediators/{api.mediators[village]}/conflicts"
    declared = {"relation": "申请人的表兄", "id_number": "330681199005170016", "person_name": "张三"}
    answers = await three_times(api, url, declared, "declare-conflict-1")
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert answers[0].json()["id_number_masked"] == "330***********0016"
    listed = (await api.client.get(url, headers=api.auth("body_admin", "village"))).json()
    assert len(listed) == 1


async def test_the_contract_names_the_key_on_both(app: Any) -> None:
    paths = app.openapi()["paths"]
    for path in ("/v1/bodies/{body_id}/mediators", "/v1/bodies/{body_id}/mediators/{mediator_id}/conflicts"):
        names = [p["name"] for p in paths[path]["post"].get("parameters", [])]
        assert "Idempotency-Key" in names, path
