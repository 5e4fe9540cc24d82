"""HTTP as a court's integration and the proxies in front of it use it: one 413 whatever the transfer mode."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support import Api

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
