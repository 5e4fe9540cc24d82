"""A query parameter the endpoint does not take is refused, as an unknown body field is.

A misspelt filter used to be ignored: `GET /v1/disputes?statuss=mediating` answered every case in
the caller's scope as if they were all being mediated, and a court's system acting on that list
would act on the wrong cases. Now it answers 422 naming the parameter, with the ones the endpoint
takes, in the language of the request, and a refused write changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx

from tests.support import Api
from tests.test_audit import record_count, records


def _query_errors(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return [e for e in response.json().get("errors") or [] if e["location"] == "query"]


def _operations(app: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """Every operation of the contract, with its path's parameters filled in."""
    out = []
    for path, operations in app.openapi()["paths"].items():
        concrete = path
        while "{" in concrete:
            start, end = concrete.index("{"), concrete.index("}")
            concrete = concrete[:start] + str(uuid.uuid4()) + concrete[end + 1 :]
        for method, operation in operations.items():
            out.append((method.upper(), concrete, operation))
    return out


def _sample(schema: dict[str, Any]) -> str | list[str]:
    """A value of the parameter's type, as text (whether it is valid for the case matters not)."""
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            return _sample(option)
    if "enum" in schema:
        return str(schema["enum"][0])
    kind = schema.get("type")
    if kind == "array":
        return [str(_sample(schema.get("items", {})))]
    if kind == "integer":
        return str(schema.get("minimum", 1))
    if kind == "boolean":
        return "true"
    if schema.get("format") == "date":
        return date.today().isoformat()
    if schema.get("format") == "uuid":
        return str(uuid.uuid4())
    return "x"


async def test_a_misspelt_filter_is_refused_in_the_language_of_the_request(api: Api) -> None:
    await api.intake()
    zh = await api.client.get("/v1/disputes", params={"statuss": "mediating", "limit": 5})
    en = await api.client.get(
        "/v1/disputes", params={"statuss": "mediating"}, headers={"Accept-Language": "en"}
    )

    assert (zh.status_code, en.status_code) == (422, 422)
    assert zh.json()["type"] == "/problems/validation-error"
    [error] = _query_errors(zh)
    assert (error["field"], error["code"]) == ("statuss", "extra_forbidden")
    assert "未知的查询参数" in error["message"] and "status" in error["message"]
    assert "statuss" in zh.json()["detail"]
    [error_en] = _query_errors(en)
    assert error_en["message"].startswith("Unknown query parameter")
    assert en.headers["content-language"] == "en"
    # Spelt right, the same filter answers.
    listed = await api.client.get("/v1/disputes", params={"status": "registered", "limit": 5})
    assert listed.status_code == 200, listed.text
    assert {c["status"] for c in listed.json()["items"]} == {"registered"}


async def test_a_write_refused_for_an_unknown_parameter_changes_nothing_and_is_recorded(api: Api) -> None:
    dispute = await api.intake()
    before = await record_count(api.app)
    timeline = await api.timeline_count(dispute["id"])
    events = await api.outbox_count(dispute["id"])

    refused = await api.client.post(
        f"/v1/disputes/{dispute['id']}/actions/accept",
        params={"dry_run": "true"},
        headers={"If-Match": f'"{dispute["version"]}"'},
    )

    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in _query_errors(refused)] == ["dry_run"]
    after = await api.get(dispute)
    assert (after["status"], after["version"]) == (dispute["status"], dispute["version"])
    assert await api.timeline_count(dispute["id"]) == timeline
    assert await api.outbox_count(dispute["id"]) == events
    [record] = [r for r in (await records(api.app))[before:] if r.action == "dispute_action_accept"]
    assert (record.outcome, record.status_code) == ("rejected", 422)


async def test_every_endpoint_refuses_an_unknown_parameter_and_says_so_in_its_contract(api: Api) -> None:
    refused: dict[str, int] = {}
    for method, path, operation in _operations(api.app):
        if not path.startswith("/v1/"):
            continue
        response = await api.client.request(
            method, path, params={"zz_unknown": "1"}, headers=api.auth("admin")
        )
        if response.status_code != 422 or [e["field"] for e in _query_errors(response)] != ["zz_unknown"]:
            refused[f"{method} {path}"] = response.status_code
        assert "422" in operation["responses"], f"{method} {path} does not document 422"
    assert refused == {}


async def test_every_parameter_an_endpoint_documents_is_taken(api: Api) -> None:
    checked = 0
    for method, path, operation in _operations(api.app):
        params = {
            p["name"]: _sample(p.get("schema", {}))
            for p in operation.get("parameters", [])
            if p["in"] == "query"
        }
        if not params:
            continue
        response = await api.client.request(method, path, params=params, headers=api.auth("admin"))
        if response.status_code == 422:
            assert not [e for e in _query_errors(response) if e["code"] == "extra_forbidden"], (
                method,
                path,
                response.text,
            )
        checked += 1
    assert checked >= 15  # the 18 operations that take query parameters, as the contract has them


async def test_the_pages_ignore_parameters_they_do_not_use(api: Api) -> None:
    page = await api.client.get("/login", params={"utm_source": "wechat"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
