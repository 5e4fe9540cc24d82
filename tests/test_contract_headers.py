"""The response headers the committed contract declares are the ones the service sends: a header
the contract requires on an answer is there, and the headers a client branches on (ETag,
Location, Idempotent-Replayed, Retry-After, WWW-Authenticate, Link) are never sent where the
contract does not declare them. The contract fuzz (tests/test_contract_fuzz.py) checks both on every
answer it gets; these are the answers it seldom or never reaches, taken one by one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import Api, intake_body

CONTRACT = json.loads(
    (Path(__file__).resolve().parents[1] / "openapi" / "openapi.json").read_text(encoding="utf-8")
)
# What a client acts on: a header the service sends where the contract is silent is one a
# generated client never reads.
WATCHED = ("etag", "location", "idempotent-replayed", "retry-after", "www-authenticate", "link")


def declared(method: str, path: str, status: int) -> dict[str, bool]:
    """The headers the contract declares on one answer of one operation, each with whether it is
    required, by lower-case name."""
    response = CONTRACT["paths"][path][method.lower()]["responses"][str(status)]
    headers = {}
    for name, header in response.get("headers", {}).items():
        if "$ref" in header:
            header = CONTRACT["components"]["headers"][header["$ref"].rsplit("/", 1)[-1]]
        headers[name.lower()] = bool(header.get("required", False))
    return headers


def as_declared(response: httpx.Response, method: str, path: str) -> httpx.Response:
    headers = declared(method, path, response.status_code)
    missing = [name for name, required in headers.items() if required and name not in response.headers]
    assert not missing, (method, path, response.status_code, missing)
    undeclared = [name for name in WATCHED if name in response.headers and name not in headers]
    assert not undeclared, (method, path, response.status_code, undeclared)
    return response


async def test_a_case_is_read_and_changed_with_the_etag_and_location_the_contract_declares(api: Api):
    key = {"Idempotency-Key": "contract-headers-1"}
    body = intake_body()
    created = as_declared(
        await api.client.post("/v1/disputes", json=body, headers=key), "POST", "/v1/disputes"
    )
    assert created.status_code == 201, created.text
    case = created.json()
    assert created.headers["location"] == f"/v1/disputes/{case['id']}"
    assert created.headers["etag"] == f'"{case["version"]}"'
    assert "idempotent-replayed" not in created.headers

    replayed = as_declared(
        await api.client.post("/v1/disputes", json=body, headers=key), "POST", "/v1/disputes"
    )
    assert replayed.status_code == 201
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.headers["location"] == created.headers["location"]
    assert replayed.headers["etag"] == created.headers["etag"]

    one = "/v1/disputes/{dispute_id}"
    read = as_declared(await api.client.get(f"/v1/disputes/{case['id']}"), "GET", one)
    assert read.status_code == 200 and read.headers["etag"] == created.headers["etag"]
    actions = "/v1/disputes/{dispute_id}/actions"
    listed = as_declared(await api.client.get(f"/v1/disputes/{case['id']}/actions"), "GET", actions)
    assert listed.headers["etag"] == read.headers["etag"]

    accept = "/v1/disputes/{dispute_id}/actions/accept"
    url = f"/v1/disputes/{case['id']}/actions/accept"
    payload = api.payload("accept", case) or {}
    without = as_declared(await api.client.post(url, json=payload), "POST", accept)
    assert without.status_code == 428
    assert without.json()["current_etag"] == read.headers["etag"]
    stale = as_declared(
        await api.client.post(url, json=payload, headers={"If-Match": '"999"'}), "POST", accept
    )
    assert stale.status_code == 412
    assert stale.json()["current_etag"] == read.headers["etag"]
    accepted = as_declared(
        await api.client.post(url, json=payload, headers={"If-Match": read.headers["etag"]}), "POST", accept
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.headers["etag"] == f'"{accepted.json()["version"]}"' != read.headers["etag"]


async def test_a_body_registered_answers_its_location_and_etag_as_declared(api: Api):
    created = as_declared(
        await api.client.post(
            "/v1/bodies",
            json={
                "name": "合同头部核对调解委员会",
                "kind": "people_mediation_committee",
                "tier": "town",
                "region_code": "330681107000",
                "jurisdiction": ["330681107000"],
                "categories": ["neighbour"],
            },
            headers=api.auth("admin"),
        ),
        "POST",
        "/v1/bodies",
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == f"/v1/bodies/{body['id']}"
    read = as_declared(await api.client.get(created.headers["location"]), "GET", "/v1/bodies/{body_id}")
    assert read.headers["etag"] == created.headers["etag"]


async def test_lists_and_the_feed_send_no_etag_and_declare_none(api: Api):
    await api.intake()
    for path in ("/v1/disputes", "/v1/events"):
        response = as_declared(await api.client.get(path), "GET", path)
        assert response.status_code == 200 and "etag" not in response.headers


async def test_an_unauthenticated_request_names_the_schemes_as_declared(app: Any):
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as anonymous:
        refused = as_declared(await anonymous.get("/v1/disputes"), "GET", "/v1/disputes")
    assert refused.status_code == 401
    assert "Bearer" in refused.headers["www-authenticate"]
    assert refused.headers["content-language"] in ("zh", "en")


@pytest.mark.parametrize("overrides", [{"rate_limit_per_minute": 2}], ids=["2-per-minute"])
async def test_a_refusal_for_too_many_requests_says_when_to_retry_as_declared(api: Api):
    for _ in range(2):
        await api.client.get("/v1/disputes")
    refused = as_declared(await api.client.get("/v1/disputes"), "GET", "/v1/disputes")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) == refused.json()["retry_after_seconds"] >= 1


async def test_a_webhooks_deliveries_name_their_next_page_in_the_link_the_contract_declares(api: Api):
    made = await api.client.post("/v1/webhooks", json={"url": "https://hooks.example.org/contract"})
    assert made.status_code == 201, made.text
    await api.intake()
    await api.intake()
    path = "/v1/webhooks/{subscription_id}/deliveries"
    url = f"/v1/webhooks/{made.json()['id']}/deliveries"
    first = as_declared(await api.client.get(url, params={"limit": 1}), "GET", path)
    assert first.status_code == 200 and len(first.json()) == 1
    assert first.links["next"]["url"].startswith(url + "?")
    whole = as_declared(await api.client.get(url), "GET", path)
    assert "link" not in whole.headers
