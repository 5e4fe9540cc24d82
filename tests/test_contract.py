"""The committed OpenAPI contract is what other systems build against: it must match the code."""

from __future__ import annotations

import ast
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


def test_every_operation_has_its_own_id_and_head_is_left_to_its_get():
    # Every GET also answers HEAD (core/http.py); listed, each would repeat its GET and its id.
    document = _generated()
    ids = [op["operationId"] for operations in document["paths"].values() for op in operations.values()]
    assert len(ids) == len(set(ids))
    # Named from GET alone, not from whichever of GET and HEAD a set lists first in this process.
    gets = [
        op["operationId"]
        for operations in document["paths"].values()
        for m, op in operations.items()
        if m == "get"
    ]
    assert gets and all(i.endswith("_get") for i in gets)
    assert not any("head" in operations for operations in document["paths"].values())
    assert "Every GET also answers HEAD" in document["info"]["description"]


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


def test_every_component_schema_has_a_clean_name():
    """Two models of one class name come out as `module__path__Name`: a generated client gets
    those as type names. Each schema carries a name of its own."""
    names = list(_generated()["components"]["schemas"])
    assert [n for n in names if "__" in n] == []


# ---- problems: every member the service sends is declared, every code listed ------------------

SOURCE = Path(__file__).resolve().parents[1] / "src" / "mediation"


def _raised_problems() -> list[tuple[type, dict[str, ast.expr], str]]:
    """Each construction of a problem in the API's code: its class, its keyword arguments, where.
    The pages (web/) answer HTML, not problem documents."""
    import mediation.core.errors as errors

    problems = {
        name: cls
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, errors.ProblemError)
    }
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        if path.relative_to(SOURCE).parts[0] == "web":
            continue
        module = ".".join(("mediation", *path.relative_to(SOURCE).with_suffix("").parts))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in problems:
                keywords = {k.arg: k.value for k in node.keywords if k.arg is not None}
                found.append((problems[name], keywords, f"{module}:{node.lineno}"))
    return found


def _codes(expression: ast.expr, where: str) -> set[str]:
    """The codes an argument can be: a literal, a module constant, or either side of a condition."""
    import importlib

    if isinstance(expression, ast.Constant) and isinstance(expression.value, str):
        return {expression.value}
    if isinstance(expression, ast.IfExp):
        return _codes(expression.body, where) | _codes(expression.orelse, where)
    if isinstance(expression, ast.Name):
        value = getattr(importlib.import_module(where.split(":")[0]), expression.id)
        assert isinstance(value, str), where
        return {value}
    raise AssertionError(f"{where}: a problem's code must be a literal or a constant, to be listed")


def test_the_problem_schema_declares_every_member_the_service_sends():
    from mediation.core.errors import Problem

    declared = set(Problem.model_fields)
    raised = _raised_problems()
    assert len(raised) > 100  # the scan sees the code it checks
    for _problem, keywords, where in raised:
        members = set(keywords) - {"headers", "http_status"}
        assert members <= declared, f"{where}: {sorted(members - declared)} missing from Problem"
    schema = _generated()["components"]["schemas"]["Problem"]
    assert set(schema["properties"]) == declared
    for name, member in schema["properties"].items():
        assert member.get("description"), f"Problem.{name} has no description"


def test_every_code_a_problem_carries_is_listed_with_its_meaning():
    from mediation.core.errors import PROBLEM_CODES, problem_codes_text

    sent: dict[type, set[str]] = {}
    for problem, keywords, where in _raised_problems():
        if "code" in keywords:
            listed_under = next((p for p in PROBLEM_CODES if issubclass(problem, p)), None)
            assert listed_under is not None, f"{where}: {problem.__name__} has no codes listed"
            sent.setdefault(listed_under, set()).update(_codes(keywords["code"], where))
    # Every code sent is listed under its type, and every code listed is sent.
    assert {p: set(codes) for p, codes in PROBLEM_CODES.items()} == sent
    assert all(meaning.strip() for codes in PROBLEM_CODES.values() for meaning in codes.values())
    # The contract publishes them.
    code = _generated()["components"]["schemas"]["Problem"]["properties"]["code"]
    assert code["description"] == problem_codes_text()
    for problem, codes in PROBLEM_CODES.items():
        assert problem.type_uri() in code["description"]
        assert all(f"`{c}`" in code["description"] for c in codes)
        assert list(codes) == sorted(codes), f"{problem.__name__}'s codes are kept in alphabetical order"


def test_every_conflict_says_which_conflict_in_its_code():
    """A conflict is a dozen different situations under one `type`: each carries the `code` a
    client branches on (README, docs/errors.md), so none is raised without one."""
    from mediation.core.errors import Conflict

    raised = [
        (keywords, where) for problem, keywords, where in _raised_problems() if issubclass(problem, Conflict)
    ]
    assert len(raised) > 40  # the scan sees the raises it checks
    assert [where for keywords, where in raised if "code" not in keywords] == []


def test_docs_list_every_problem_and_code_the_code_has():
    from mediation.core.errors import problem_catalogue_markdown

    doc = (Path(__file__).resolve().parents[1] / "docs" / "errors.md").read_text(encoding="utf-8")
    assert doc == problem_catalogue_markdown(), "docs/errors.md is stale: run `make openapi` and commit it"


def test_every_response_header_the_contract_refers_to_is_defined():
    document = _generated()
    defined = set(document["components"]["headers"])
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                for name, header in response.get("headers", {}).items():
                    assert header["$ref"].rsplit("/", 1)[-1] in defined, (method, path, status, name)


def test_problem_responses_declare_the_headers_problems_carry():
    document = _generated()
    feed = document["paths"]["/v1/events"]["get"]["responses"]
    assert feed["401"]["headers"]["WWW-Authenticate"] == {"$ref": "#/components/headers/WWWAuthenticate"}
    for status in ("429", "503"):
        assert feed[status]["headers"]["Retry-After"] == {"$ref": "#/components/headers/RetryAfter"}
    intake = document["paths"]["/v1/disputes"]["post"]["responses"]
    # A 409 there is a duplicate reference or a request still in progress: only the second says when to retry.
    assert intake["409"]["headers"]["Retry-After"] == {"$ref": "#/components/headers/RetryAfterIfSent"}
    assert document["components"]["headers"]["RetryAfterIfSent"]["required"] is False
    assert set(intake["201"]["headers"]) == {"ETag", "Location", "Idempotent-Replayed"}


async def test_every_problem_type_the_service_answers_has_its_page(client):
    """A `type` dereferences to its page; range-not-satisfiable once had none."""
    import mediation.core.errors as errors

    slugs = {
        cls.slug
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.ProblemError)
    }
    assert "range-not-satisfiable" in slugs
    for slug in sorted(slugs):
        page = await client.get(f"/problems/{slug}")
        assert page.status_code == 200, slug
        assert page.json()["type"] == f"/problems/{slug}"
