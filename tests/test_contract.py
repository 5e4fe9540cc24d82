"""The committed OpenAPI contract is what other systems build against: it must match the code."""

from __future__ import annotations

import json
from pathlib import Path

from mediation.app import create_app
from mediation.core.settings import Settings
from mediation.disputes.lifecycle import TRANSITIONS, Action
from mediation.events.catalogue import document as events_document
from tests.conftest import TEST_SECRETS

CONTRACT = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


EVENTS = CONTRACT.with_name("events.json")


def _generated() -> dict:
    settings = Settings(
        database_url="sqlite+aiosqlite:///never-opened.db", relay_in_app=False, **TEST_SECRETS
    )
    return create_app(settings).openapi()  # engines are lazy


def test_committed_contract_matches_the_code():
    committed = json.loads(CONTRACT.read_text(encoding="utf-8"))
    assert committed == _generated(), "openapi/openapi.json is stale: run `make openapi` and commit it"


def test_committed_event_catalogue_matches_the_code():
    committed = json.loads(EVENTS.read_text(encoding="utf-8"))
    assert committed == events_document(), "openapi/events.json is stale: run `make openapi` and commit it"
    types = {e["type"] for e in committed["events"]}
    # Every lifecycle transition's event is in the catalogue.
    assert {f"cn.mediation.dispute.{t.event}" for t in TRANSITIONS} <= types
    assert {"cn.mediation.dispute.registered", "cn.mediation.dispute.consent_recorded"} <= types


def test_contract_is_openapi_3_1_with_versioned_paths():
    document = _generated()
    assert document["openapi"].startswith("3.1")
    api_paths = [p for p in document["paths"] if p not in ("/healthz", "/readyz")]
    assert all(p.startswith("/v1/") for p in api_paths)


def test_every_error_response_is_problem_json():
    document = _generated()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    assert list(response["content"]) == ["application/problem+json"], (method, path, status)


def test_every_action_has_its_own_route_and_payload_schema():
    document = _generated()
    for action in Action:
        operation = document["paths"][f"/v1/disputes/{{dispute_id}}/actions/{action.value}"]["post"]
        assert operation["operationId"] == f"dispute_action_{action.value}"
        codes = set(operation["responses"])
        assert {"409", "412", "422", "428"} <= codes
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert "$ref" in json.dumps(body)
        params = {p["name"] for p in operation["parameters"]}
        assert {"If-Match", "Idempotency-Key"} <= params


async def test_every_error_the_app_answers_is_problem_json(client):
    for method, path in [
        ("GET", "/v1/disputes/x"),
        ("GET", "/nope"),
        ("PUT", "/v1/disputes"),
        ("GET", "/v1/disputes?limit=0"),
    ]:
        response = await client.request(method, path)
        assert response.status_code >= 400
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].startswith("/problems/")
        problem_page = await client.get(response.json()["type"])
        assert problem_page.status_code == 200


def test_docs_show_the_lifecycle_the_code_runs():
    from mediation.disputes.lifecycle import describe, mermaid

    root = Path(__file__).resolve().parents[1]
    diagram = mermaid()
    for doc in ("README.md", "docs/lifecycle.md"):
        text = (root / doc).read_text(encoding="utf-8")
        assert diagram in text, f"{doc}: lifecycle diagram is stale (paste `mediation lifecycle`)"
    table = (root / "docs/lifecycle.md").read_text(encoding="utf-8")
    for transition in describe()["transitions"]:
        for guard in transition["guards"]:
            assert f"`{guard['name']}` ({guard['article'] or 'center rule'})" in table, guard["name"]
