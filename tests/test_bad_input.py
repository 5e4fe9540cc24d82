"""Bad input gets a clear problem+json answer and never changes the database."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mediation.agreements.models import Agreement, FollowUp, MediationSession, Obligation, Signature
from mediation.bodies.models import Body, Mediator, MediatorConflict
from mediation.disputes.lifecycle import ACTION_LABELS, Action
from mediation.disputes.models import Assignment, CaseLink, Dispute, Party, TimelineEntry
from mediation.events.models import OutboxEvent
from mediation.handoffs.models import Handoff
from mediation.triage.models import TriageRuleSet
from mediation.triage.rules import default_rules
from tests.support import intake_body, person


async def _row_counts(api) -> tuple[int, ...]:
    async with api.app.state.db.reader() as session:
        return tuple(
            [
                int(await session.scalar(select(func.count()).select_from(m)) or 0)
                for m in (Dispute, Party, TimelineEntry, OutboxEvent)
            ]
        )


def _problem(response, status: int, type_: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == type_ and body["status"] == status and body["title"]
    return body


@pytest.mark.parametrize(
    "field", ["status", "version", "tier", "body_id", "created_at", "is_group", "case_number"]
)
async def test_intake_refuses_internal_fields(api, field):
    before = await _row_counts(api)
    response = await api.client.post(
        "/v1/disputes", json=intake_body(**{field: "mediating"}), headers=api.headers()
    )
    problem = _problem(response, 422, "/problems/validation-error")
    assert problem["errors"][0]["field"] == field
    assert problem["errors"][0]["code"] == "extra_forbidden"
    assert await _row_counts(api) == before


async def test_action_payload_refuses_status(api):
    dispute = await api.drive("mediating")
    payload = {"reason_code": "other", "status": "closed"}
    problem = _problem(await api.act(dispute, "fail", payload), 422, "/problems/validation-error")
    assert problem["errors"][0]["field"] == "status"
    assert (await api.get(dispute))["status"] == "mediating"


async def test_malformed_id_number_names_the_field(api):
    before = await _row_counts(api)
    bad = person("respondent", "李四", 2)
    bad["id_number"] = bad["id_number"][:-1] + (
        "0" if bad["id_number"][-1] != "0" else "1"
    )  # wrong check digit
    response = await api.client.post(
        "/v1/disputes", json=intake_body(parties=[person("applicant", "张三", 1), bad]), headers=api.headers()
    )
    problem = _problem(response, 422, "/problems/validation-error")
    assert problem["errors"][0]["field"] == "parties[1].id_number"
    assert problem["errors"][0]["code"] == "invalid_id_number"
    assert "身份证" in problem["errors"][0]["message"]
    assert await _row_counts(api) == before


async def _intake_refused(api, applicant: dict) -> dict:
    """The problem an intake with this applicant (against 李四) is refused with."""
    response = await api.client.post(
        "/v1/disputes",
        json=intake_body(parties=[applicant, person("respondent", "李四", 2)]),
        headers=api.headers(),
    )
    return _problem(response, 422, "/problems/validation-error")


async def test_text_is_trimmed_but_no_longer_than_the_contract_says_as_sent(api):
    """Text is trimmed before it is kept ("  张三  " is 张三), but its longest length holds for the
    text as sent, as the contract's maxLength states it: a party's name of 100 characters padded
    with spaces, or an agreement's term of 2,000 padded, is refused, not trimmed to fit."""
    before = await _row_counts(api)
    padded = person("applicant", "张" * 100 + " " * 10, 1)  # a name has at most 100 characters
    problem = await _intake_refused(api, padded)
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("parties[0].name", "string_too_long")]
    assert "过长" in problem["errors"][0]["message"]
    assert await _row_counts(api) == before

    trimmed = person("applicant", "  张三  ", 1)
    case = await api.intake(parties=[trimmed, person("respondent", "李四", 2)])
    assert case["parties"][0]["name"] == "张三"

    dispute = await api.drive("mediating")
    agreement = api.agreement_content(dispute, terms=["双方确认" + "。" * 1996 + "    "])
    response = await api.client.post(
        f"/v1/disputes/{dispute['id']}/agreements",
        json=agreement,
        headers=api.acting("body_mediator", dispute),
    )
    problem = _problem(response, 422, "/problems/validation-error")
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("terms[0]", "string_too_long")]


async def test_text_holding_a_nul_character_is_refused_with_its_field_named(api):
    """PostgreSQL cannot store U+0000: a body's text holding it, or a query parameter, is refused
    (422, the field named) and nothing is written, on either database."""
    before = await _row_counts(api)
    response = await api.client.post(
        "/v1/disputes", json=intake_body(description="相邻双方因院墙\x00滴水发生争执"), headers=api.headers()
    )
    problem = _problem(response, 422, "/problems/validation-error")
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("description", "null_character")]
    problem = await _intake_refused(api, person("applicant", "张\x00三", 1))
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("parties[0].name", "null_character")]
    assert await _row_counts(api) == before

    response = await api.client.get("/v1/disputes", params={"q": "张\x00三"}, headers=api.headers())
    problem = _problem(response, 422, "/problems/validation-error")
    assert problem["errors"] == [
        {"field": "q", "location": "query", "code": "null_character", "message": "不能含空字符 (U+0000)"}
    ]


@pytest.mark.parametrize("value", [0, 1, 0.0, "0", "yes"])
async def test_a_yes_or_no_is_true_or_false_and_nothing_else(api, value):
    """A boolean in a request body is JSON's true or false, as the contract says: 0, 1 or "yes" are
    refused (422, the field named), not read as a no or a yes."""
    before = await _row_counts(api)
    refused = await api.client.post("/v1/auth/logout", json={"everywhere": value}, headers=api.headers())
    problem = _problem(refused, 422, "/problems/validation-error")
    assert [(e["field"], e["code"], e["message"]) for e in problem["errors"]] == [
        ("everywhere", "bool_type", "应为布尔值 (true 或 false)")
    ]
    response = await api.client.post("/v1/disputes", json=intake_body(is_risk=value), headers=api.headers())
    problem = _problem(response, 422, "/problems/validation-error")
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("is_risk", "bool_type")]
    assert await _row_counts(api) == before
    assert (await api.client.get("/v1/me", headers=api.headers())).status_code == 200  # still signed in


async def test_a_webhook_address_longer_than_it_can_be_kept_is_refused(api):
    """The address is kept in 500 characters, as the contract says: a longer one is refused (422),
    not a server error."""
    url = "https://receiver.example.cn/" + "a" * 480
    response = await api.client.post(
        "/v1/webhooks", json={"url": url, "event_types": []}, headers=api.headers("court")
    )
    problem = _problem(response, 422, "/problems/validation-error")
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("url", "url_too_long")]


async def test_errors_answer_in_english_when_asked(api):
    bad = person("applicant", "张三", 1)
    bad["phone"] = "12345"
    response = await api.client.post(
        "/v1/disputes",
        json=intake_body(parties=[bad, person("respondent", "李四", 2)]),
        headers={**api.headers(), "Accept-Language": "en-US,en;q=0.9"},
    )
    problem = _problem(response, 422, "/problems/validation-error")
    assert problem["title"] == "The request is not valid"
    assert problem["errors"][0] == {
        "field": "parties[0].phone",
        "location": "body",
        "code": "invalid_phone",
        "message": "Invalid phone number",
    }
    assert response.headers["content-language"] == "en"
    assert "Accept-Language" in response.headers["vary"]


async def test_a_refused_action_names_it_and_the_role_in_the_language_asked(api):
    """The action's and the role's names in Chinese, their codes in parentheses for an integrator."""
    closed = await api.drive("closed")
    wrong_state = await api.act(closed, "accept")
    detail = _problem(wrong_state, 409, "/problems/invalid-transition")["detail"]
    assert detail == "案件处于「已结案」, 不能「受理」(accept)"
    mediating = await api.drive("mediating")
    wrong_role = await api.act(mediating, "escalate", role="body_mediator")
    escalate = ACTION_LABELS[Action.escalate].zh
    assert (
        _problem(wrong_role, 403, "/problems/forbidden")["detail"]
        == f"「调解员」不能执行「{escalate}」(escalate)"
    )
    english = await api.client.post(
        f"/v1/disputes/{closed['id']}/actions/accept",
        json={},
        headers={**api.headers(), "If-Match": f'"{closed["version"]}"', "Accept-Language": "en"},
    )
    assert (
        _problem(english, 409, "/problems/invalid-transition")["detail"]
        == "The case is closed; cannot accept"
    )


async def test_oversized_body_is_refused_with_413(api):
    before = await _row_counts(api)
    huge = intake_body(description="纠" * 600_000)
    response = await api.client.post("/v1/disputes", json=huge, headers=api.headers())
    _problem(response, 413, "/problems/payload-too-large")
    assert await _row_counts(api) == before


async def test_oversized_chunked_body_is_refused_with_413(api):
    async def chunks():
        yield b'{"category": "neighbour", "description": "'
        for _ in range(300):
            yield b"x" * 4096
        yield b'"}'

    response = await api.client.post(
        "/v1/disputes", content=chunks(), headers={**api.headers(), "Content-Type": "application/json"}
    )
    _problem(response, 413, "/problems/payload-too-large")


PAGE_FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html,application/xhtml+xml"}


def _too_large_page(response) -> str:
    assert response.status_code == 413, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    page = response.text
    assert "<h1>提交的内容过大</h1>" in page
    # The limit, the way a clerk reads it (1 MiB by default), and that nothing was kept.
    assert "超过 1 MB 的上限" in page and "没有保存任何内容" in page
    assert "application/problem" not in page and '"type"' not in page
    return page


async def test_a_form_over_the_limit_is_answered_with_a_page(api):
    """A browser's form too large to take is refused before it is read, as the API's bodies are,
    but with a page in Chinese saying so and what the limit is, not the API's JSON."""
    before = await _row_counts(api)
    form = {"csrf": "x" * 43, "description": "纠" * 400_000}
    declared = await api.client.post(
        "/intake",
        data=form,
        headers={**PAGE_FORM, "Referer": "http://mediation.test/intake?draft=1"},
    )
    page = _too_large_page(declared)
    # A way back to the form it came from, when that is one of ours.
    assert 'href="/intake?draft=1"' in page
    assert await _row_counts(api) == before

    async def chunks():
        yield b"csrf=" + b"x" * 43 + b"&description="
        for _ in range(300):
            yield b"x" * 4096

    streamed = await api.client.post(
        "/apply", content=chunks(), headers={**PAGE_FORM, "Referer": "http://elsewhere.example/"}
    )
    page = _too_large_page(streamed)
    assert "elsewhere.example" not in page and 'href="/"' in page
    assert await _row_counts(api) == before


@pytest.mark.parametrize("referer_path", ["//evil.example/x", "/\\evil.example/x", "/intake\\..\\x"])
async def test_the_way_back_from_a_form_over_the_limit_stays_on_this_site(api, referer_path):
    """A Referer of this host whose path reads as another site's address (protocol-relative, or
    with a backslash, which browsers take for a slash) gives no way back but the home page."""
    response = await api.client.post(
        "/intake",
        data={"csrf": "x" * 43, "description": "纠" * 400_000},
        headers={**PAGE_FORM, "Referer": f"http://mediation.test{referer_path}"},
    )
    page = _too_large_page(response)
    assert "返回原页面" not in page and "evil.example" not in page and 'href="/"' in page


async def test_the_api_keeps_its_problem_document_for_a_body_over_the_limit(api):
    huge = intake_body(description="纠" * 600_000)
    response = await api.client.post(
        "/v1/disputes", json=huge, headers={**api.headers(), "Accept": "text/html,application/xhtml+xml"}
    )
    assert "上限" in _problem(response, 413, "/problems/payload-too-large")["detail"]


async def test_page_size_over_the_maximum_is_refused(api):
    problem = _problem(
        await api.client.get("/v1/disputes", params={"limit": 101}), 422, "/problems/validation-error"
    )
    assert problem["errors"][0]["field"] == "limit"


async def test_garbage_cursor_is_refused(api):
    problem = _problem(
        await api.client.get("/v1/disputes", params={"cursor": "not-a-cursor"}),
        422,
        "/problems/validation-error",
    )
    assert problem["errors"][0]["field"] == "cursor"


async def test_malformed_json_is_refused(api):
    response = await api.client.post(
        "/v1/disputes",
        content=b'{"category": ',
        headers={**api.headers(), "Content-Type": "application/json"},
    )
    _problem(response, 422, "/problems/validation-error")


async def test_a_body_that_is_not_even_text_is_refused_at_the_body(api):
    dispute = await api.intake()
    response = await api.client.post(
        f"/v1/disputes/{dispute['id']}/actions/accept",
        content=b"YS|\xfe\xff1\x1d\x90\x05",
        headers={**api.headers(), "Content-Type": "application/json", "If-Match": '"1"'},
    )
    errors = _problem(response, 422, "/problems/validation-error")["errors"]
    assert errors[0]["field"] == "body"
    assert (await api.get(dispute))["status"] == "registered"


async def test_action_without_if_match_is_428_and_stale_is_412(api):
    dispute = await api.intake()
    response = await api.client.post(f"/v1/disputes/{dispute['id']}/actions/accept", headers=api.headers())
    assert _problem(response, 428, "/problems/precondition-required")["current_etag"] == '"1"'
    response = await api.client.post(
        f"/v1/disputes/{dispute['id']}/actions/accept", headers=api.headers(**{"If-Match": "*"})
    )
    _problem(response, 428, "/problems/precondition-required")
    response = await api.client.post(
        f"/v1/disputes/{dispute['id']}/actions/accept", headers=api.headers(**{"If-Match": '"7"'})
    )
    _problem(response, 412, "/problems/stale-version")
    response = await api.client.post(
        f"/v1/disputes/{dispute['id']}/actions/accept", headers=api.headers(**{"If-Match": 'W/"1"'})
    )
    _problem(response, 412, "/problems/stale-version")
    assert (await api.get(dispute))["version"] == 1


async def test_unknown_case_unknown_path_and_wrong_method(api):
    _problem(
        await api.client.get("/v1/disputes/6f1e0c4e-0000-4000-8000-000000000000"), 404, "/problems/not-found"
    )
    _problem(await api.client.get("/v1/nothing-here"), 404, "/problems/not-found")
    _problem(await api.client.delete("/v1/disputes"), 405, "/problems/method-not-allowed")
    # Only a UUID names a case: anything else at that place is no resource at all.
    _problem(await api.client.get("/v1/disputes/not-a-uuid"), 404, "/problems/not-found")


async def test_a_creation_time_filter_is_a_date_time_not_a_number(api):
    # A number would otherwise be read as Unix seconds while the contract says date-time.
    response = await api.client.get("/v1/disputes?created_to=0.5", headers=api.headers())
    assert _problem(response, 422, "/problems/validation-error")["errors"][0]["field"] == "created_to"
    ok = await api.client.get("/v1/disputes?created_to=2026-06-01T10:00:00%2B08:00", headers=api.headers())
    assert ok.status_code == 200, ok.text


async def test_a_time_without_its_zone_is_refused_everywhere_not_a_server_error(api):
    """A key's expiry and the audit trail's time filters took any time: one without its zone
    could not be compared with the stored ones, and answered 500."""
    key = {"organisation_id": str(api.bodies["village"]), "role": "body_mediator", "name": "对接"}
    for expires_at, code in (
        ("2027-01-01T00:00:00", "timezone_missing"),
        ("2020-01-01T00:00:00Z", "in_past"),
    ):
        refused = await api.client.post(
            "/v1/api-keys", json={**key, "expires_at": expires_at}, headers=api.auth("admin")
        )
        problem = _problem(refused, 422, "/problems/validation-error")
        assert [(e["field"], e["code"]) for e in problem["errors"]] == [("expires_at", code)]
    listed = await api.client.get("/v1/api-keys", headers=api.auth("admin"))
    assert "对接" not in listed.text  # nothing was made
    made = await api.client.post(
        "/v1/api-keys", json={**key, "expires_at": "2099-01-01T00:00:00+08:00"}, headers=api.auth("admin")
    )
    assert made.status_code == 201, made.text
    auditor = api.headers("auditor")
    for name in ("occurred_from", "occurred_to"):
        naive = await api.client.get(
            "/v1/audit-records", params={name: "2026-12-01T00:00:00"}, headers=auditor
        )
        assert _problem(naive, 422, "/problems/validation-error")["errors"][0]["field"] == name
        aware = await api.client.get(
            "/v1/audit-records", params={name: "2026-12-01T00:00:00Z"}, headers=auditor
        )
        assert aware.status_code == 200, aware.text


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/disputes", "GET, HEAD, POST"),
        ("OPTIONS", "/v1/bodies", "GET, HEAD, POST"),
        ("PATCH", "/v1/triage/rules", "DELETE, GET, HEAD, PUT"),
        # A static path beside a case id: the path exists, for POST only.
        ("GET", "/v1/disputes/search-by-party", "POST"),
        ("PUT", "/v1/disputes/6f1e0c4e-0000-4000-8000-000000000000/agreements", "GET, HEAD, POST"),
    ],
)
async def test_a_wrong_method_is_405_naming_every_method_the_path_serves(api, method, path, allowed):
    # RFC 9110 §15.5.6: Allow lists all of them, not only those of the first route that matched;
    # HEAD wherever GET is served (§9.3.2).
    response = await api.client.request(method, path, headers=api.headers())
    _problem(response, 405, "/problems/method-not-allowed")
    assert response.headers["Allow"] == allowed


async def test_a_declared_role_grants_nothing(api):
    # Roles come from credentials only; a header claiming one is ignored.
    response = await api.client.post(
        "/v1/disputes", json=intake_body(), headers={"X-Actor-Role": "clerk", "Authorization": ""}
    )
    problem = _problem(response, 401, "/problems/unauthenticated")
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert problem["status"] == 401


async def test_intake_needs_both_sides(api):
    response = await api.client.post(
        "/v1/disputes",
        json=intake_body(parties=[person("applicant", "张三", 1), person("third_party", "王五", 3)]),
        headers=api.headers(),
    )
    assert _problem(response, 422, "/problems/validation-error")["errors"][0]["code"] == "parties_incomplete"


async def test_region_code_must_be_a_real_province(api):
    response = await api.client.post(
        "/v1/disputes", json=intake_body(region_code="990000"), headers=api.headers()
    )
    assert _problem(response, 422, "/problems/validation-error")["errors"][0]["field"] == "region_code"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/disputes?region=852995",
        "/v1/disputes?region=990000000000",
        "/v1/bodies?region=852995458511",
        "/v1/bodies?tier=village&region=852995458511",
        "/v1/bodies?covers=990000",
    ],
)
async def test_region_filters_must_be_a_real_province(api, path):
    # Six or twelve digits that name no province are refused as input, not failed on as a 500.
    response = await api.client.get(path, headers=api.auth("supervisor"))
    errors = _problem(response, 422, "/problems/validation-error")["errors"]
    assert errors[0]["field"] in ("region", "covers"), errors


async def test_consent_endpoint_refuses_bad_requests_and_changes_nothing(api):
    dispute = await api.drive("mediating")
    party = dispute["parties"][0]
    url = f"/v1/disputes/{dispute['id']}/parties/{party['id']}/consent"
    fresh = api.headers(**{"If-Match": f'"{dispute["version"]}"'})
    _problem(
        await api.client.post(url, json={"decision": "refused"}, headers=api.headers()),
        428,
        "/problems/precondition-required",
    )
    stale = api.headers(**{"If-Match": '"1"'})
    _problem(
        await api.client.post(url, json={"decision": "refused"}, headers=stale),
        412,
        "/problems/stale-version",
    )
    _problem(
        await api.client.post(url, json={"decision": "unknown"}, headers=fresh),
        422,
        "/problems/validation-error",
    )
    _problem(
        await api.client.post(url, json={"decision": "given", "status": "x"}, headers=fresh),
        422,
        "/problems/validation-error",
    )
    other = f"/v1/disputes/{dispute['id']}/parties/6f1e0c4e-0000-4000-8000-000000000000/consent"
    _problem(
        await api.client.post(other, json={"decision": "given"}, headers=fresh), 404, "/problems/not-found"
    )
    # A court sees only cases handed to it: this one does not exist for it.
    court = api.headers("court", **{"If-Match": f'"{dispute["version"]}"'})
    _problem(
        await api.client.post(url, json={"decision": "given"}, headers=court), 404, "/problems/not-found"
    )
    auditor = api.headers("auditor", **{"If-Match": f'"{dispute["version"]}"'})
    _problem(
        await api.client.post(url, json={"decision": "given"}, headers=auditor), 403, "/problems/forbidden"
    )
    after = await api.get(dispute)
    assert after["version"] == dispute["version"] and after["parties"][0]["consent"] == "unknown"
    closed = await api.drive("closed")
    url = f"/v1/disputes/{closed['id']}/parties/{closed['parties'][0]['id']}/consent"
    headers = api.headers(**{"If-Match": f'"{closed["version"]}"'})
    _problem(
        await api.client.post(url, json={"decision": "refused"}, headers=headers),
        409,
        "/problems/invalid-transition",
    )


async def test_new_endpoints_answer_bad_requests_with_problems_and_change_nothing(api):
    dispute = await api.drive("assigned")
    missing = "6f1e0c4e-0000-4000-8000-000000000000"
    cases = [
        ("get", "/v1/audit-records?after=-1", api.auth("auditor"), None, 422),
        ("get", "/v1/audit-records?limit=100000", api.auth("auditor"), None, 422),
        ("get", f"/v1/bodies/{api.bodies['village']}/cases?status=nonsense", api.auth("clerk"), None, 422),
        ("get", "/v1/events?after=not-a-cursor", api.auth("clerk"), None, 422),
        ("get", "/v1/events?wait=3600", api.auth("clerk"), None, 422),
        ("post", f"/v1/users/{missing}/deactivate", api.auth("admin"), None, 404),
        ("post", f"/v1/api-keys/{missing}/revoke", api.auth("admin"), None, 404),
        (
            "post",
            "/v1/api-keys",
            api.auth("admin"),
            {"organisation_id": missing, "role": "court", "name": "x"},
            422,
        ),
        ("post", f"/v1/webhook-deliveries/{missing}/redeliver", api.auth("clerk"), None, 404),
        ("post", "/v1/webhooks", api.auth("clerk"), {"url": "ftp://example.com/x"}, 422),
        (
            "post",
            "/v1/webhooks",
            api.auth("clerk"),
            {"url": "http://127.0.0.1:9/x", "event_types": ["x"]},
            422,
        ),
        (
            "post",
            f"/v1/disputes/{dispute['id']}/documents/{missing}/withdraw",
            api.auth("clerk"),
            {"reason": "上传错误"},
            404,
        ),
        (
            "post",
            "/v1/disputes/search-by-party",
            api.auth("clerk"),
            {"id_number": "123", "phone": "13800000001"},
            422,
        ),
        ("post", "/v1/auth/token", {}, {"username": "", "password": ""}, 422),
    ]
    for method, url, headers, body, status in cases:
        response = await api.client.request(method.upper(), url, json=body, headers=headers)
        assert response.status_code == status, (url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), url
    after = await api.get(dispute)
    assert after["version"] == dispute["version"]


async def _registry_counts(api) -> tuple[int, ...]:
    async with api.app.state.db.reader() as session:
        return tuple(
            [
                int(await session.scalar(select(func.count()).select_from(m)) or 0)
                for m in (Body, Mediator, MediatorConflict, TriageRuleSet, CaseLink, Assignment)
            ]
        )


async def test_registry_and_triage_endpoints_refuse_bad_requests_and_change_nothing(api):
    dispute = await api.drive("mediating")
    other = await api.intake()
    village = api.bodies["village"]
    mediator = api.mediators[village]
    missing = "6f1e0c4e-0000-4000-8000-000000000000"
    admin, body_admin = api.auth("admin"), api.auth("body_admin", "village")
    rules = default_rules().model_dump(mode="json")
    version = {"If-Match": '"1"'}
    cases = [
        # malformed or out of range
        ("post", "/v1/bodies", admin, {"name": "x", "kind": "people_mediation_committee"}, 422),
        (
            "post",
            "/v1/bodies",
            admin,
            {"name": "某调委会", "kind": "spaceship", "tier": "village", "region_code": "330681105201"},
            422,
        ),
        (
            "post",
            "/v1/bodies",
            admin,
            {
                "name": "某调委会",
                "kind": "people_mediation_committee",
                "tier": "village",
                "region_code": "990681105201",
                "capacity": 0,
            },
            422,
        ),
        ("patch", f"/v1/bodies/{village}", {**admin, **version}, {"version": 7}, 422),
        ("patch", f"/v1/bodies/{village}", {**admin, **version}, {"active": False}, 422),
        ("patch", f"/v1/bodies/{village}", {**admin, **version}, {"categories": ["labour", "labour"]}, 422),
        ("post", f"/v1/bodies/{village}/mediators", body_admin, {"name": "", "specialties": ["x"]}, 422),
        (
            "post",
            f"/v1/bodies/{village}/mediators/{mediator}/conflicts",
            body_admin,
            {"relation": "表兄"},
            422,
        ),
        (
            "post",
            f"/v1/bodies/{village}/mediators/{mediator}/conflicts",
            body_admin,
            {"relation": "表兄", "id_number": "110101199003070000"},
            422,
        ),
        (
            "put",
            "/v1/triage/rules",
            {**admin, "If-Match": '"0"'},
            {"rules": {**rules, "categories": {}}},
            422,
        ),
        ("put", "/v1/triage/rules", {**admin, "If-Match": '"0"'}, {"rules": {**rules, "extra": 1}}, 422),
        ("put", f"/v1/disputes/{dispute['id']}/mediator", body_admin, {"mediator_id": "not-a-uuid"}, 422),
        (
            "post",
            f"/v1/disputes/{dispute['id']}/links",
            api.auth("clerk"),
            {"dispute_id": dispute["id"]},
            422,
        ),
        ("post", f"/v1/disputes/{dispute['id']}/links", api.auth("clerk"), {"dispute_id": missing}, 404),
        ("get", f"/v1/disputes/{other['id']}/triage?limit=0", api.auth("clerk"), None, 422),
        # missing or stale preconditions
        ("patch", f"/v1/bodies/{village}", admin, {"capacity": 5}, 428),
        ("patch", f"/v1/bodies/{village}", {**admin, "If-Match": '"9"'}, {"capacity": 5}, 412),
        ("put", "/v1/triage/rules", admin, {"rules": rules}, 428),
        ("delete", "/v1/triage/rules", {**admin, "If-Match": '"3"'}, None, 412),
        ("put", f"/v1/disputes/{dispute['id']}/mediator", body_admin, {"mediator_id": str(mediator)}, 428),
        # out of order: no mediator can be named before the body signs for the case
        (
            "put",
            f"/v1/disputes/{other['id']}/mediator",
            {**api.auth("body_admin", "village"), "If-Match": f'"{other["version"]}"'},
            {"mediator_id": str(mediator)},
            404,
        ),
        # unauthorised
        ("post", "/v1/bodies", api.auth("clerk"), {"name": "某调委会"}, 403),
        ("put", "/v1/triage/rules", {**api.auth("supervisor"), "If-Match": '"0"'}, {"rules": rules}, 403),
        ("patch", f"/v1/bodies/{village}", {**body_admin, **version}, {"tier": "county"}, 403),
        ("get", "/v1/triage/rules", {"Authorization": ""}, None, 401),
        ("get", f"/v1/disputes/{other['id']}/triage", api.auth("body_mediator", "village"), None, 403),
    ]
    before = await _registry_counts(api)
    for method, url, headers, body, status in cases:
        response = await api.client.request(method.upper(), url, json=body, headers=headers)
        assert response.status_code == status, (method, url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), url
    assert await _registry_counts(api) == before
    assert (await api.get(dispute))["version"] == dispute["version"]
    assert (await api.get(other))["version"] == other["version"]
    async with api.app.state.db.reader() as session:
        body = await session.get(Body, village)
    assert body is not None and (body.version, body.capacity, body.tier) == (1, 30, "village")
    malformed = await api.client.post(
        "/v1/bodies", content=b'{"name": ', headers={**admin, "Content-Type": "application/json"}
    )
    _problem(malformed, 422, "/problems/validation-error")


async def _agreement_counts(api) -> tuple[int, ...]:
    async with api.app.state.db.reader() as session:
        return tuple(
            [
                int(await session.scalar(select(func.count()).select_from(m)) or 0)
                for m in (MediationSession, Agreement, Signature, Obligation, Handoff, FollowUp)
            ]
        )


async def test_agreement_and_handoff_endpoints_refuse_bad_requests_and_change_nothing(api):
    mediating = await api.drive("mediating")
    draft = await api.draft_agreement(mediating)
    pending = await api.drive("confirmation_pending")
    handoff = (await api.handoff(pending))["handoff"]
    body = api.acting("body_mediator", mediating)
    court = {**api.auth("court", "court"), "If-Match": f'"{handoff["version"]}"'}
    missing = "6f1e0c4e-0000-4000-8000-000000000000"
    sessions = f"/v1/disputes/{mediating['id']}/sessions"
    agreements = f"/v1/disputes/{mediating['id']}/agreements"
    obligation = dict(api.agreement_content(mediating)["obligations"][0])
    cases = [
        # A session in person needs a place; times need their offset.
        ("post", sessions, body, {"scheduled_at": "2026-06-02T09:00:00+08:00"}, 422),
        ("post", sessions, body, {"scheduled_at": "2026-06-02T09:00:00", "online": True}, 422),
        ("post", f"{sessions}/{missing}/record", {**body, "If-Match": '"1"'}, None, 422),
        # Obligations: a negative amount, an unknown party, a due date before the application.
        ("post", agreements, body, {"obligations": [{**obligation, "amount": "-5"}]}, 422),
        ("post", agreements, body, {"obligations": [{**obligation, "obligor_party_id": missing}]}, 422),
        ("post", agreements, body, {"obligations": [{**obligation, "due_on": "2020-01-01"}]}, 422),
        ("post", agreements, body, {"form": "sung"}, 422),
        # Signatures: a party's without party_id, an electronic one without the hash, a bad hash.
        (
            "post",
            f"{agreements}/{draft['id']}/signatures",
            body,
            {"signer": "party", "method": "in_person"},
            422,
        ),
        (
            "post",
            f"{agreements}/{draft['id']}/signatures",
            body,
            {"signer": "mediator", "method": "electronic"},
            422,
        ),
        (
            "post",
            f"{agreements}/{draft['id']}/signatures",
            body,
            {"signer": "mediator", "method": "electronic", "document_hash": "abc"},
            422,
        ),
        (
            "post",
            f"{agreements}/{draft['id']}/signatures",
            body,
            {"signer": "body_seal", "method": "fingerprint"},
            422,
        ),
        ("get", f"{agreements}/{missing}", body, None, 404),
        (
            "post",
            f"/v1/disputes/{mediating['id']}/obligations/{missing}/performance",
            body,
            {"performed_on": "x"},
            422,
        ),
        # The court: acceptance without a case number, a rejection without its ground, 0 days.
        ("post", f"/v1/handoffs/{handoff['id']}/acceptance", court, {"decision": "accepted"}, 422),
        ("post", f"/v1/handoffs/{handoff['id']}/acceptance", court, {"decision": "not_accepted"}, 422),
        (
            "post",
            f"/v1/handoffs/{handoff['id']}/decision",
            court,
            {"decision": "rejected", "ruling_number": "x", "ruled_on": api.today.isoformat()},
            422,
        ),
        ("post", f"/v1/handoffs/{handoff['id']}/extension", court, {"days": 0, "reason": "x"}, 422),
        (
            "post",
            f"/v1/handoffs/{missing}/acceptance",
            court,
            {"decision": "accepted", "case_number": "x"},
            404,
        ),
        ("get", "/v1/handoffs?cursor=not-a-cursor", api.auth("court", "court"), None, 422),
        ("get", "/v1/handoffs?status=lost", api.auth("court", "court"), None, 422),
        ("post", f"/v1/follow-ups/{missing}/result", body, {"method": "pigeon"}, 422),
    ]
    before = await _agreement_counts(api)
    for method, url, headers, payload, status in cases:
        response = await api.client.request(method.upper(), url, json=payload, headers=headers)
        assert response.status_code == status, (url, payload, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), url
    assert await _agreement_counts(api) == before
    assert (await api.get(mediating))["version"] == mediating["version"]
    assert (await api.get(pending))["version"] == pending["version"]
    again = (await api.handoff(pending))["handoff"]
    assert (again["version"], again["status"]) == (handoff["version"], "pending")

    # In English when asked, naming the field.
    response = await api.client.post(
        f"/v1/handoffs/{handoff['id']}/acceptance",
        json={"decision": "accepted"},
        headers={**court, "Accept-Language": "en"},
    )
    assert response.status_code == 422
    assert "case number" in response.text


async def test_clock_supervision_alert_and_visit_endpoints_refuse_bad_requests_and_change_nothing(api):
    mediating = await api.drive("mediating")
    closed = await api.drive("closed")
    body = {**api.acting("body_mediator", mediating), "If-Match": f'"{mediating["version"]}"'}
    supervisor = {**api.auth("supervisor"), "If-Match": f'"{mediating["version"]}"'}
    clerk = {**api.auth("clerk"), "If-Match": f'"{mediating["version"]}"'}
    # A visit changes the closed case: it names the case's version (its checks come after that).
    visiting = {**api.auth("clerk"), "If-Match": f'"{closed["version"]}"'}
    clocks = f"/v1/disputes/{mediating['id']}/clocks"
    missing = "6f1e0c4e-0000-4000-8000-000000000000"
    visit = (
        await api.client.get("/v1/follow-ups", params={"kind": "visit", "dispute_id": closed["id"]})
    ).json()["items"][0]
    cases = [
        # Clocks: an unknown clock, a reason off the list, no If-Match, a clock not running, 0 units.
        ("post", f"{clocks}/lunch/pause", body, {"reason": "other"}, 422),
        ("post", f"{clocks}/mediation/pause", body, {"reason": "napping"}, 422),
        (
            "post",
            f"{clocks}/mediation/pause",
            api.acting("body_mediator", mediating),
            {"reason": "other"},
            428,
        ),
        # (The sign-for clock is the center's to change: asked by the body, it would be refused.)
        ("post", f"{clocks}/sign_for/pause", clerk, {"reason": "other"}, 404),
        ("post", f"{clocks}/mediation/resume", body, {}, 409),
        ("post", f"{clocks}/mediation/extension", body, {"units": 0, "reason": "x"}, 422),
        ("get", "/v1/calendar/deadline?start=2026-13-01&length=3", api.auth("clerk"), None, 422),
        ("get", "/v1/calendar/deadline?start=2026-06-01&length=0", api.auth("clerk"), None, 422),
        ("get", "/v1/calendar/deadline?start=2026-06-01&length=3&unit=weeks", api.auth("clerk"), None, 422),
        # Counting from the end of the calendar would overflow: a day outside the service's years.
        ("get", "/v1/calendar/deadline?start=9999-12-31&length=1", api.auth("clerk"), None, 422),
        (
            "get",
            "/v1/calendar/deadline?start=9999-12-01&length=3650&unit=months",
            api.auth("clerk"),
            None,
            422,
        ),
        # Supervision: no instruction, a deadline in the past, an unknown order.
        ("post", f"/v1/disputes/{mediating['id']}/supervision-orders", supervisor, {"instruction": ""}, 422),
        (
            "post",
            f"/v1/disputes/{mediating['id']}/supervision-orders",
            supervisor,
            {"instruction": "报告进展", "due_on": "2020-01-01"},
            422,
        ),
        ("post", f"/v1/supervision-orders/{missing}/response", body, {"response": "已办"}, 404),
        ("get", "/v1/supervision-orders?status=lost", api.auth("supervisor"), None, 422),
        ("get", "/v1/supervision-orders?cursor=not-a-cursor", api.auth("supervisor"), None, 422),
        ("put", f"/v1/disputes/{mediating['id']}/owner", supervisor, {"name": "王"}, 422),
        # Alerts: unknown, bad filters.
        ("post", f"/v1/alerts/{missing}/resolution", supervisor, {"resolution": "已处置"}, 404),
        ("get", "/v1/alerts?kind=rumour", api.auth("supervisor"), None, 422),
        ("get", "/v1/alerts?cursor=not-a-cursor", api.auth("supervisor"), None, 422),
        # Visits: a rating out of range, reached without a rating, a date in the future.
        (
            "post",
            f"/v1/follow-ups/{visit['id']}/visit",
            visiting,
            {"visited_on": "2026-06-01", "contact_method": "phone", "reached": True, "satisfaction": 6},
            422,
        ),
        (
            "post",
            f"/v1/follow-ups/{visit['id']}/visit",
            visiting,
            {"visited_on": "2026-06-01", "contact_method": "phone", "reached": True},
            422,
        ),
        (
            "post",
            f"/v1/follow-ups/{visit['id']}/visit",
            visiting,
            {"visited_on": "2026-12-01", "contact_method": "phone", "reached": False},
            422,
        ),
        ("post", f"/v1/follow-ups/{visit['id']}/impossible", visiting, {"reason": ""}, 422),
        ("get", "/v1/follow-ups?kind=gift", api.auth("clerk"), None, 422),
    ]
    for method, url, headers, payload, status in cases:
        response = await api.client.request(method.upper(), url, json=payload, headers=headers)
        assert response.status_code == status, (url, payload, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), url
    assert (await api.get(mediating))["version"] == mediating["version"]
    assert (await api.get(closed))["version"] == closed["version"]
    again = (
        await api.client.get("/v1/follow-ups", params={"kind": "visit", "dispute_id": closed["id"]})
    ).json()
    assert again["items"][0]["attempts"] == [] and again["items"][0]["status"] == "open"
    # In English when asked, naming the field.
    response = await api.client.post(
        f"/v1/follow-ups/{visit['id']}/visit",
        json={"visited_on": "2026-06-01", "contact_method": "phone", "reached": True},
        headers={**visiting, "Accept-Language": "en"},
    )
    assert response.status_code == 422
    assert "satisfaction" in response.text


async def test_a_court_delegated_case_names_the_delegating_court(api):
    before = await _row_counts(api)
    refused = await api.client.post(
        "/v1/disputes", json=intake_body(channel="court_delegated"), headers=api.headers()
    )
    problem = _problem(refused, 422, "/problems/validation-error")
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [
        ("inviting_court_id", "inviting_court_missing")
    ]
    assert await _row_counts(api) == before
    named = await api.intake(channel="court_delegated", inviting_court_id=str(api.bodies["court"]))
    assert named["channel"] == "court_delegated"


@pytest.mark.parametrize(
    ("amount", "zh", "en"),
    [
        ("100.555", "小数不能超过 2 位", "decimal places"),
        ("-1", "数值过小 (应不小于 0)", "greater than or equal to 0"),
        ("NaN", "应为有限的数字 (不能是 NaN 或无穷大)", "finite number"),
    ],
)
async def test_an_amount_refused_says_the_limit_in_the_readers_language(api, amount, zh, en):
    """The clerk at the window reads why in Chinese, with the limit the check applied."""
    for language, expected in (("zh", zh), ("en", en)):
        refused = await api.client.post(
            "/v1/disputes",
            json=intake_body(amount_in_dispute=amount),
            headers={**api.auth("clerk"), "Accept-Language": language},
        )
        assert refused.status_code == 422, refused.text
        [error] = [e for e in refused.json()["errors"] if e["field"] == "amount_in_dispute"]
        assert expected in error["message"], (language, error)
    async with api.app.state.db.reader() as session:
        assert await session.scalar(select(func.count()).select_from(Dispute)) == 0
