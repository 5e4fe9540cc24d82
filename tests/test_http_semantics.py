"""HTTP as a court's integration and the proxies in front of it use it: HEAD wherever GET is served,
a malformed or weak If-Match told apart from a stale one, and one 413 whatever the transfer mode.

HEAD is checked on the ASGI messages themselves: httpx drops a HEAD's body on its own, so a body
sent would go unseen through the test client.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from mediation.audit.models import AuditRecord
from tests.support import Api, resident_id
from tests.test_documents import KIB, audit_rows, pdf, uploaded

# The headers a HEAD answers as its GET does; the others (request id, date) belong to each answer.
SAME_HEADERS = (
    "content-type",
    "content-length",
    "content-language",
    "content-disposition",
    "etag",
    "accept-ranges",
    "last-modified",
    "cache-control",
    "vary",
    "www-authenticate",
    "allow",
)


async def exchange(
    api: Api, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], list[bytes]]:
    """The status, headers and body messages the app sends for a request without a body; as the
    window clerk unless `headers` name other credentials (or none: an empty Authorization)."""
    sent = dict(api.client.headers) if headers is None else {"accept-language": "zh", **headers}
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            *((k.lower().encode(), v.encode()) for k, v in sent.items() if v),
            (b"host", b"mediation.test"),
        ],
        "client": ("127.0.0.1", 50_000),
        "server": ("mediation.test", 80),
    }
    start: dict[str, Any] = {}
    bodies: list[bytes] = []

    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if requested:  # the client stays until the answer is sent
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}
        requested = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            bodies.append(message.get("body", b""))

    await api.app(scope, receive, send)
    found = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], found, bodies


def same_headers(head: dict[str, str], get: dict[str, str]) -> None:
    assert {k: head.get(k) for k in SAME_HEADERS} == {k: get.get(k) for k in SAME_HEADERS}


async def test_head_of_a_document_answers_its_downloads_headers_without_the_file_or_a_download_record(
    api: Api,
) -> None:
    dispute = await api.intake()
    personal = await uploaded(api, dispute, pdf(3 * KIB, "id card"), "身份证.pdf", kind="identity_document")

    status, head, body = await exchange(api, "HEAD", personal["href"])
    assert status == 200
    assert b"".join(body) == b""
    assert head["content-length"] == str(3 * KIB) and head["accept-ranges"] == "bytes"
    # A HEAD shows no content: it is no download of personal data (the GET's record follows).
    assert await audit_rows(api, AuditRecord.action == "document.download") == []

    status, get, body = await exchange(api, "GET", personal["href"])
    assert status == 200 and b"".join(body) == pdf(3 * KIB, "id card")
    same_headers(head, get)
    assert len(await audit_rows(api, AuditRecord.action == "document.download")) == 1


async def test_head_of_a_case_shown_unmasked_discloses_nothing_and_records_no_pii_read(api: Api) -> None:
    dispute = await api.intake()
    path = f"/v1/disputes/{dispute['id']}"
    disclosed = (AuditRecord.action == "pii.read", AuditRecord.object_id == dispute["id"])
    before = len(await audit_rows(api, *disclosed))

    # The clerk holds pii:read: the GET's body would show the parties' ID and phone numbers.
    status, head, body = await exchange(api, "HEAD", path)
    assert status == 200 and b"".join(body) == b""
    assert len(await audit_rows(api, *disclosed)) == before

    get_status, get, get_body = await exchange(api, "GET", path)
    assert get_status == 200 and resident_id(1).encode() in b"".join(get_body)
    assert head["etag"] == get["etag"] == f'"{dispute["version"]}"'
    same_headers(head, get)
    [read] = (await audit_rows(api, *disclosed))[before:]
    assert (read.outcome, read.details["via"]) == ("success", "get_dispute")


async def test_head_of_a_document_whose_name_holds_a_number_records_the_read_its_header_shows(
    api: Api,
) -> None:
    """The file's name goes out in Content-Disposition, to a HEAD as to a GET: a number in it is
    disclosed by the header, and recorded, though no body is sent."""
    dispute = await api.intake()
    phone = "13812345678"
    document = await uploaded(api, dispute, pdf(KIB, "scan"), f"张三{phone}.pdf")
    disclosed = (AuditRecord.action == "pii.read", AuditRecord.object_id == dispute["id"])
    before = len(await audit_rows(api, *disclosed))

    status, head, body = await exchange(api, "HEAD", document["href"])
    assert status == 200 and b"".join(body) == b""
    assert phone in head["content-disposition"]
    [read] = (await audit_rows(api, *disclosed))[before:]
    assert read.outcome == "success"


async def test_head_of_a_list_and_of_a_handoff_answers_their_gets_headers_without_a_body(api: Api) -> None:
    dispute = await api.drive("confirmation_pending")
    dossier = await api.handoff(dispute)
    court = api.auth("court", uuid.UUID(dossier["handoff"]["target_id"]))
    for path in ("/v1/handoffs", f"/v1/handoffs/{dossier['handoff']['id']}", f"/v1/disputes/{dispute['id']}"):
        head_status, head, body = await exchange(api, "HEAD", path, court)
        get_status, get, get_body = await exchange(api, "GET", path, court)
        assert head_status == get_status == 200, path
        assert b"".join(body) == b"" and b"".join(get_body), path
        same_headers(head, get)


async def test_head_of_what_is_not_there_is_the_problems_headers_without_its_body(api: Api) -> None:
    dispute = await api.intake()
    missing = f"/v1/disputes/{dispute['id']}/documents/{uuid.uuid4()}/content"
    status, head, body = await exchange(api, "HEAD", missing)
    get_status, get, _ = await exchange(api, "GET", missing)
    assert status == get_status == 404
    assert head["content-type"] == "application/problem+json" and head["content-language"] == "zh"
    assert b"".join(body) == b""
    same_headers(head, get)


async def test_head_without_credentials_is_401_with_its_challenge_and_no_body(api: Api) -> None:
    status, head, body = await exchange(api, "HEAD", "/v1/handoffs", {"authorization": ""})
    assert status == 401 and b"".join(body) == b""
    assert head["www-authenticate"].startswith("Bearer")
    assert head["content-type"] == "application/problem+json"


async def test_head_is_served_where_get_is_and_named_in_allow(api: Api) -> None:
    # The operations' probes and the pages answer it too.
    for path in ("/healthz", "/login"):
        status, _, body = await exchange(api, "HEAD", path, {"authorization": ""})
        assert status == 200 and b"".join(body) == b"", path
    # A path served for POST alone is no GET's, and so no HEAD's.
    status, head, body = await exchange(api, "HEAD", "/v1/disputes/search-by-party")
    assert (status, head["allow"], b"".join(body)) == (405, "POST", b"")


# ---- If-Match ----------------------------------------------------------------------------------


async def _accept(api: Api, dispute: dict[str, Any], if_match: str) -> dict[str, Any]:
    response = await api.client.post(
        f"/v1/disputes/{dispute['id']}/actions/accept", headers=api.headers(**{"If-Match": if_match})
    )
    assert response.headers["content-type"] == "application/problem+json", response.text
    return {"status": response.status_code, **response.json()}


async def test_an_if_match_without_its_quotes_is_a_malformed_header_not_a_stale_version(api: Api) -> None:
    dispute = await api.intake()
    for malformed in ("1", '"1', "W/1", '"1"x', "version 1"):
        problem = await _accept(api, dispute, malformed)
        assert (problem["status"], problem["type"], problem["code"]) == (
            428,
            "/problems/precondition-required",
            "if_match_malformed",
        ), malformed
        assert problem["current_etag"] == '"1"'
        assert '"<版本号>"' in problem["detail"] and "过期" not in problem["detail"]
    english = await api.client.post(
        f"/v1/disputes/{dispute['id']}/actions/accept",
        headers=api.headers(**{"If-Match": "1", "Accept-Language": "en"}),
    )
    assert 'as "<version>"' in english.json()["detail"]
    assert (await api.get(dispute))["version"] == 1


async def test_a_weak_etag_is_refused_as_weak_not_as_out_of_date(api: Api) -> None:
    # Behind a proxy that compresses (nginx's gzip), "1" reaches the client as W/"1": told it is
    # stale, the client would reread W/"1" and send it again, for ever.
    dispute = await api.intake()
    for weak in ('W/"1"', 'W/"1", W/"2"'):
        problem = await _accept(api, dispute, weak)
        assert (problem["status"], problem["type"], problem["code"]) == (
            412,
            "/problems/stale-version",
            "weak_etag",
        ), weak
        assert problem["current_etag"] == '"1"'
        assert "弱 ETag" in problem["detail"] and "过期" not in problem["detail"]
    # An out-of-date strong tag is still stale, with no code; a list naming the current one passes.
    stale = await _accept(api, dispute, 'W/"1", "7"')
    assert (stale["status"], stale.get("code")) == (412, None) and "过期" in stale["detail"]
    assert (await api.act(dispute, "accept", headers={"If-Match": 'W/"1", "1"'})).status_code == 200


# ---- 413 ---------------------------------------------------------------------------------------


async def test_a_body_over_the_limit_gets_one_problem_whether_its_length_is_sent_or_not(api: Api) -> None:
    path = f"/v1/handoffs/{uuid.uuid4()}/acceptance"
    body = b'{"decision": "accepted", "case_number": "' + b"x" * 2_000_000 + b'"}'

    async def chunked() -> Any:
        for at in range(0, len(body), 65536):
            yield body[at : at + 65536]

    limit = api.app.state.settings.max_body_bytes
    for language, said in (
        ("zh", f"请求体超过 {limit} 字节上限"),
        ("en", f"Request body exceeds {limit} bytes"),
    ):
        headers = {**api.auth("court"), "Content-Type": "application/json", "Accept-Language": language}
        declared = await api.client.post(path, content=body, headers=headers)
        streamed = await api.client.post(path, content=chunked(), headers=headers)
        assert "content-length" in declared.request.headers
        assert streamed.request.headers.get("transfer-encoding") == "chunked"
        expected = {
            "type": "/problems/payload-too-large",
            "title": "请求体过大" if language == "zh" else "Request body too large",
            "status": 413,
            "detail": said,
            "instance": path,
        }
        for response in (declared, streamed):
            assert response.status_code == 413
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["content-language"] == language
            assert response.json() == expected
