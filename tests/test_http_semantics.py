"""HTTP as a court's integration and the proxies in front of it use it: a malformed or weak If-Match told apart
from a stale one, and one 413 whatever the transfer mode.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.support import Api

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
