"""A JSON body naming a field twice in one object is refused, not read by whichever name came last.

RFC 8259 §4 says the names in an object SHOULD be unique, and parsers differ on which duplicate
wins: a gateway, a log or a court's own system reading the first `reason` while the service acts on
the last is an ambiguity no change to a case may rest on. 422 names the field; nothing changes.
"""

from __future__ import annotations

import json

from sqlalchemy import func, select

from mediation.disputes.models import Dispute
from tests.support import Api, intake_body


async def _cases(api: Api) -> int:
    async with api.app.state.db.reader() as session:
        return int(await session.scalar(select(func.count()).select_from(Dispute)) or 0)


def _with_duplicate(body: dict[str, object], name: str, first: object) -> bytes:
    """`body` as JSON text with `name` written twice, `first` before the real value."""
    text = json.dumps(body, ensure_ascii=False)
    return ("{" + json.dumps(name) + ": " + json.dumps(first, ensure_ascii=False) + ", " + text[1:]).encode()


async def test_an_intake_naming_a_field_twice_registers_nothing(api: Api) -> None:
    before = await _cases(api)
    body = intake_body()
    refused = await api.client.post(
        "/v1/disputes",
        content=_with_duplicate(body, "category", "labour"),
        headers={"Content-Type": "application/json"},
    )
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert (error["field"], error["code"]) == ("category", "duplicate_field")
    assert "两次" in error["message"]

    nested = dict(body)
    parties = [dict(p) for p in body["parties"]]  # type: ignore[union-attr]
    nested["parties"] = parties
    text = json.dumps(nested, ensure_ascii=False).replace(
        '"role": "applicant"', '"role": "respondent", "role": "applicant"', 1
    )
    also_refused = await api.client.post(
        "/v1/disputes",
        content=text.encode(),
        headers={"Content-Type": "application/json; charset=utf-8", "Accept-Language": "en"},
    )
    assert also_refused.status_code == 422, also_refused.text
    assert also_refused.json()["errors"][0]["message"] == "This field appears twice in one object"
    assert await _cases(api) == before
    # Each name once, the same body registers.
    accepted = await api.client.post(
        "/v1/disputes", content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    assert accepted.status_code == 201, accepted.text


async def test_an_action_naming_its_reason_twice_changes_nothing(api: Api) -> None:
    dispute = await api.intake()
    refused = await api.client.post(
        f"/v1/disputes/{dispute['id']}/actions/decline",
        content=_with_duplicate({"reason": "不属于人民调解的受理范围"}, "reason", "已受理"),
        headers={"Content-Type": "application/json", "If-Match": f'"{dispute["version"]}"'},
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "reason"
    after = await api.get(dispute)
    assert (after["status"], after["version"]) == (dispute["status"], dispute["version"])


async def test_a_body_that_is_not_json_is_refused_as_before(api: Api) -> None:
    refused = await api.client.post(
        "/v1/disputes",
        content=b'{"category": ',
        headers={"Content-Type": "application/json", "Accept-Language": "en"},
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["code"] == "json_invalid"
    # The error names the body and where parsing stopped, not a "field" made of the offset.
    [error] = refused.json()["errors"]
    assert error["field"] == "body" and "character 13" in error["message"], error
    assert refused.json()["detail"] == "Invalid fields: body"
    in_chinese = await api.client.post(
        "/v1/disputes",
        content=b'{"category": ',
        headers={"Content-Type": "application/json", "Accept-Language": "zh"},
    )
    assert "第 13 个字符处" in in_chinese.json()["errors"][0]["message"], in_chinese.text


async def test_a_body_without_a_content_type_is_refused_with_415(api: Api) -> None:
    # Not guessed at: a body that names no media type is not read as JSON (so no duplicate passes
    # unseen either), and the client is told what to send.
    before = await _cases(api)
    refused = await api.client.post(
        "/v1/disputes", content=_with_duplicate(intake_body(), "category", "labour")
    )
    assert "content-type" not in refused.request.headers
    assert refused.status_code == 415, refused.text
    assert "application/json" in refused.json()["detail"]
    assert await _cases(api) == before


async def test_a_body_in_another_media_type_is_refused_with_415(api: Api) -> None:
    """A JSON body labelled text/plain (or a form) is not what the contract takes: 415 names the
    media type expected, rather than a 422 that reads as if the fields were wrong."""
    before = await _cases(api)
    text = json.dumps(intake_body()).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        refused = await api.client.post("/v1/disputes", content=text, headers={"Content-Type": content_type})
        assert refused.status_code == 415, (content_type, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert problem["type"].endswith("/unsupported-media-type")
        assert "application/json" in problem["detail"] and content_type in problem["detail"]
    english = await api.client.post(
        "/v1/disputes", content=text, headers={"Content-Type": "text/plain", "Accept-Language": "en"}
    )
    assert english.json()["detail"].startswith("The request body must be JSON")
    assert await _cases(api) == before

    dispute = await api.intake()
    action = await api.client.post(
        f"/v1/disputes/{dispute['id']}/actions/accept",
        content=b"{}",
        headers={"Content-Type": "text/plain", "If-Match": f'"{dispute["version"]}"'},
    )
    assert action.status_code == 415, action.text
    after = await api.get(dispute)
    assert (after["status"], after["version"]) == (dispute["status"], dispute["version"])
    # A JSON media type with parameters, or a +json one, is JSON.
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        accepted = await api.client.post(
            "/v1/disputes", content=json.dumps(intake_body()).encode(), headers={"Content-Type": content_type}
        )
        assert accepted.status_code == 201, (content_type, accepted.text)


def test_the_contract_declares_415_on_every_operation_taking_json(api: Api) -> None:
    document = api.app.openapi()
    taking_json = [
        (path, method, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]
    assert len(taking_json) > 20
    for path, method, operation in taking_json:
        assert "415" in operation["responses"], (method, path)
