"""Bad requests to a court's request for materials and to the answer supplying them: each is a
problem document naming what is wrong, in the language asked, and writes nothing (the handoff's
version, its requests, the case's timeline and events stay as they were)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.support import Api
from tests.test_documents import pdf, uploaded
from tests.test_handoff_materials_requests import _asking, _pending
from tests.test_handoffs import _post, _problem


async def _state(api: Api, dispute: dict[str, Any]) -> tuple[Any, ...]:
    handoff = (await api.handoff(dispute))["handoff"]
    return (
        handoff["version"],
        handoff["materials_requests"],
        await api.timeline_count(dispute["id"]),
        await api.outbox_count(dispute["id"]),
    )


def _court(api: Api, handoff: dict[str, Any]) -> dict[str, str]:
    return api.auth("court", uuid.UUID(handoff["target_id"]))


async def _raw(
    api: Api, handoff: dict[str, Any], step: str, content: bytes, headers: dict[str, str]
) -> httpx.Response:
    return await api.client.post(
        f"/v1/handoffs/{handoff['id']}/{step}",
        content=content,
        headers={"Content-Type": "application/json", **headers},
    )


def _fields(response: httpx.Response) -> set[tuple[str, str]]:
    return {(e["field"], e["code"]) for e in _problem(response, 422, "validation-error")["errors"]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"items": []}, "items"),
        ({"items": [""]}, "items[0]"),
        ({"items": ["x" * 501]}, "items[0]"),
        ({"items": ["材料"] * 31}, "items"),
        ({"items": "身份证复印件"}, "items"),
        ({"codes": ["no_such_code"]}, "codes[0]"),
        ({"codes": ["identity", "identity"]}, "codes"),
        ({"due_on": "2026-02-30"}, "due_on"),
        ({"due_on": "明天"}, "due_on"),
        ({"due_on": None}, "due_on"),
        ({"status": "answered"}, "status"),
        ({"note": "x" * 5000}, "note"),
    ],
)
async def test_a_malformed_request_for_materials_is_refused_and_writes_nothing(
    api: Api, change: dict[str, Any], field: str
) -> None:
    dispute, handoff = await _pending(api)
    before = await _state(api, dispute)
    refused = await _post(api, handoff, "materials-request", {**_asking(api), **change})
    assert field in {f for f, _ in _fields(refused)}, refused.text
    assert await _state(api, dispute) == before


async def test_a_request_for_materials_without_its_day_or_items_names_both(api: Api) -> None:
    dispute, handoff = await _pending(api)
    before = await _state(api, dispute)
    refused = await _post(api, handoff, "materials-request", {"note": "请补交"})
    assert {f for f, _ in _fields(refused)} >= {"items", "due_on"}
    assert await _state(api, dispute) == before


@pytest.mark.parametrize("step", ["materials-request", "materials-supplied"])
async def test_without_if_match_the_step_is_428_naming_the_current_etag(api: Api, step: str) -> None:
    dispute, handoff = await _pending(api)
    if step == "materials-supplied":
        handoff = (await _post(api, handoff, "materials-request", _asking(api))).json()
    before = await _state(api, dispute)
    body = (
        _asking(api)
        if step == "materials-request"
        else {"document_ids": [(await uploaded(api, dispute, pdf(900, "id"), "身份证.pdf"))["id"]]}
    )
    who = _court(api, handoff) if step == "materials-request" else api.acting("body_mediator", dispute)
    before = await _state(api, dispute)
    response = await api.client.post(f"/v1/handoffs/{handoff['id']}/{step}", json=body, headers=who)
    problem = _problem(response, 428, "precondition-required")
    assert problem["current_etag"]
    assert await _state(api, dispute) == before


@pytest.mark.parametrize("step", ["materials-request", "materials-supplied"])
async def test_a_body_over_the_limit_is_413_and_writes_nothing(api: Api, step: str) -> None:
    dispute, handoff = await _pending(api)
    before = await _state(api, dispute)
    huge = b'{"items": ["' + b"x" * 1_100_000 + b'"], "due_on": "2030-01-01"}'
    headers = {**_court(api, handoff), "If-Match": f'"{handoff["version"]}"'}
    response = await _raw(api, handoff, step, huge, headers)
    _problem(response, 413, "payload-too-large")
    assert await _state(api, dispute) == before


@pytest.mark.parametrize("content", [b'{"items": ["a"], ', b"\xfe\xff\x00garbage", b"[]", b'"text"'])
async def test_a_body_that_is_not_an_object_is_refused_at_the_body(api: Api, content: bytes) -> None:
    dispute, handoff = await _pending(api)
    before = await _state(api, dispute)
    headers = {**_court(api, handoff), "If-Match": f'"{handoff["version"]}"'}
    response = await _raw(api, handoff, "materials-request", content, headers)
    assert _problem(response, 422, "validation-error")["errors"][0]["field"] == "body"
    assert await _state(api, dispute) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"document_ids": []}, "document_ids"),
        ({"document_ids": ["not-a-uuid"]}, "document_ids[0]"),
        ({"document_ids": [str(uuid.uuid4())] * 2}, "document_ids"),
        ({"document_ids": [str(uuid.uuid4()) for _ in range(51)]}, "document_ids"),
        ({}, "document_ids"),
    ],
)
async def test_a_malformed_supply_is_refused_and_writes_nothing(
    api: Api, body: dict[str, Any], field: str
) -> None:
    dispute, handoff = await _pending(api)
    handoff = (await _post(api, handoff, "materials-request", _asking(api))).json()
    before = await _state(api, dispute)
    refused = await _post(api, handoff, "materials-supplied", body, as_=api.acting("body_mediator", dispute))
    assert field in {f for f, _ in _fields(refused)}, refused.text
    assert await _state(api, dispute) == before
    assert before[1][0]["status"] == "open"


async def test_a_document_no_one_uploaded_is_refused_by_its_place(api: Api) -> None:
    dispute, handoff = await _pending(api)
    handoff = (await _post(api, handoff, "materials-request", _asking(api))).json()
    mine = await uploaded(api, dispute, pdf(900, "id"), "身份证.pdf")
    before = await _state(api, dispute)
    refused = await _post(
        api,
        handoff,
        "materials-supplied",
        {"document_ids": [mine["id"], str(uuid.uuid4())]},
        as_=api.acting("body_mediator", dispute),
    )
    assert [f for f, _ in _fields(refused)] == ["document_ids[1]"]
    assert await _state(api, dispute) == before


async def test_refusals_speak_the_language_asked(api: Api) -> None:
    dispute, handoff = await _pending(api)
    before = await _state(api, dispute)
    late = (api.today + timedelta(days=400)).isoformat()
    english = await _post(
        api, handoff, "materials-request", _asking(api, due_on=late), headers={"Accept-Language": "en"}
    )
    chinese = await _post(
        api, handoff, "materials-request", _asking(api, due_on=late), headers={"Accept-Language": "zh-CN"}
    )
    [en] = _problem(english, 422, "validation-error")["errors"]
    [zh] = _problem(chinese, 422, "validation-error")["errors"]
    assert (en["field"], en["code"]) == (zh["field"], zh["code"]) == ("due_on", "implausible")
    assert en["message"].isascii() and not zh["message"].isascii()
    assert await _state(api, dispute) == before
