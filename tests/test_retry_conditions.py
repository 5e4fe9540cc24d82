"""A client that retries every request on a timeout: a party's consent and the choice of mediator,
sent again under the same Idempotency-Key, answer what the first answered (not 412 `stale-version`,
which would read as "someone else changed the case"), and a sitting, an agreement's draft or a link
made with an If-Match naming a version the case has left is refused (412) before anything is made."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support import Api

SITTING = {"scheduled_at": "2026-06-01T09:00:00+08:00", "place": "枫源村调委会调解室"}


def _etag(case: dict[str, Any]) -> str:
    return f'"{case["version"]}"'


def _replayed(first: httpx.Response, again: httpx.Response) -> None:
    assert again.status_code == first.status_code, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["etag"] == first.headers["etag"]


def _mismatch(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "/problems/idempotency-key-mismatch"


def _stale(response: httpx.Response, case: dict[str, Any]) -> None:
    assert response.status_code == 412, response.text
    assert response.json()["type"] == "/problems/stale-version"
    assert response.json()["current_etag"] == _etag(case)


async def _counts(api: Api, case: dict[str, Any]) -> tuple[int, int, int]:
    """The case's version, its timeline entries and its events, as they stand."""
    version = (await api.get(case))["version"]
    return version, await api.timeline_count(case["id"]), await api.outbox_count(case["id"])


# ---- consent (人民调解法 Art. 17) ---------------------------------------------------------------


async def _consent(api: Api, case: dict[str, Any], body: dict[str, Any], **headers: str) -> httpx.Response:
    party = case["parties"][1]
    return await api.client.post(
        f"/v1/disputes/{case['id']}/parties/{party['id']}/consent",
        json=body,
        headers=api.headers("clerk", **{"If-Match": _etag(case), **headers}),
    )


async def test_a_consent_retried_under_its_key_answers_the_first_recording(api: Api) -> None:
    case = await api.intake()
    key = {"Idempotency-Key": "consent-respondent-1"}
    first = await _consent(api, case, {"decision": "given"}, **key)
    assert first.status_code == 200, first.text
    after = await _counts(api, case)
    assert after[0] == case["version"] + 1

    # The retry still carries the If-Match of the case as it was: the stored answer, not a 412.
    for _ in range(3):
        _replayed(first, await _consent(api, case, {"decision": "given"}, **key))
    assert await _counts(api, case) == after
    entries = [e for e in await api.timeline(case) if e["action"] == "record_consent"]
    assert len(entries) == 1


async def test_a_consent_key_reused_with_another_decision_is_refused(api: Api) -> None:
    case = await api.intake()
    key = {"Idempotency-Key": "consent-respondent-2"}
    assert (await _consent(api, case, {"decision": "given"}, **key)).status_code == 200
    after = await _counts(api, case)

    # A refusal ends mediation: it is never taken for the retry of a consent.
    _mismatch(await _consent(api, case, {"decision": "refused"}, **key))
    assert await _counts(api, case) == after
    party = next(p for p in (await api.get(case))["parties"] if p["id"] == case["parties"][1]["id"])
    assert party["consent"] == "given"


async def test_a_consent_without_a_key_is_still_judged_by_its_if_match(api: Api) -> None:
    case = await api.intake()
    assert (await _consent(api, case, {"decision": "given"})).status_code == 200
    _stale(await _consent(api, case, {"decision": "given"}), await api.get(case))


# ---- the mediator --------------------------------------------------------------------------------


async def _choose(api: Api, case: dict[str, Any], body: dict[str, Any], **headers: str) -> httpx.Response:
    return await api.client.put(
        f"/v1/disputes/{case['id']}/mediator",
        json=body,
        headers={**api.acting("body_admin", case), "If-Match": _etag(case), **headers},
    )


async def test_a_mediator_choice_retried_under_its_key_answers_the_first(api: Api) -> None:
    case = await api.drive("mediating")
    mediator = {"mediator_id": case["mediator_id"], "note": "由本委员会调解员承办"}
    key = {"Idempotency-Key": "mediator-1"}
    first = await _choose(api, case, mediator, **key)
    assert first.status_code == 200, first.text
    after = await _counts(api, case)
    assert after[0] == case["version"] + 1

    for _ in range(3):
        _replayed(first, await _choose(api, case, mediator, **key))
    assert await _counts(api, case) == after
    entries = [e for e in await api.timeline(case) if e["action"] == "assign_mediator"]
    assert len(entries) == 1


async def test_a_mediator_key_reused_with_another_body_is_refused(api: Api) -> None:
    case = await api.drive("mediating")
    key = {"Idempotency-Key": "mediator-2"}
    chosen = await _choose(api, case, {"mediator_id": case["mediator_id"]}, **key)
    assert chosen.status_code == 200, chosen.text
    after = await _counts(api, case)

    _mismatch(await _choose(api, case, {"mediator_id": case["mediator_id"], "note": "另一请求"}, **key))
    assert await _counts(api, case) == after


async def test_the_edit_of_a_draft_retried_under_its_key_answers_the_first(api: Api) -> None:
    case = await api.drive("mediating")
    draft = await api.draft_agreement(case)
    url = f"/v1/disputes/{case['id']}/agreements/{draft['id']}"
    edit = api.agreement_content(case, facts="双方因院墙滴水及排水沟堵塞发生争执。")
    headers = {
        **api.acting("body_mediator", case),
        "If-Match": f'"{draft["version"]}"',
        "Idempotency-Key": "edit-1",
    }
    first = await api.client.put(url, json=edit, headers=headers)
    assert first.status_code == 200, first.text
    after = await _counts(api, case)

    _replayed(first, await api.client.put(url, json=edit, headers=headers))
    assert await _counts(api, case) == after
    _mismatch(
        await api.client.put(url, json=api.agreement_content(case, facts="另一事实。"), headers=headers)
    )
    assert await _counts(api, case) == after


async def test_a_drafts_precondition_names_no_case_version(api: Api) -> None:
    """A draft carries its own ETag: the refusals speak of what is changed, not of the case."""
    case = await api.drive("mediating")
    draft = await api.draft_agreement(case)
    url = f"/v1/disputes/{case['id']}/agreements/{draft['id']}"
    edit = api.agreement_content(case, facts="双方因院墙滴水及排水沟堵塞发生争执。")
    english = {**api.acting("body_mediator", case), "Accept-Language": "en"}
    missing = await api.client.put(url, json=edit, headers=english)
    assert missing.status_code == 428 and "case" not in missing.json()["detail"]
    assert missing.json()["current_etag"] == f'"{draft["version"]}"'
    stale = await api.client.put(url, json=edit, headers={**english, "If-Match": '"99"'})
    assert stale.status_code == 412 and "case" not in stale.json()["title"]


# ---- sittings, drafts and links: an If-Match, when given, is held to ------------------------------


async def _schedule(api: Api, case: dict[str, Any], **headers: str) -> httpx.Response:
    return await api.client.post(
        f"/v1/disputes/{case['id']}/sessions",
        json=SITTING,
        headers={**api.acting("body_mediator", case), **headers},
    )


async def _sittings(api: Api, case: dict[str, Any]) -> list[dict[str, Any]]:
    response = await api.client.get(f"/v1/disputes/{case['id']}/sessions", headers=api.auth())
    assert response.status_code == 200, response.text
    return list(response.json())


async def test_a_sitting_scheduled_against_a_stale_version_is_refused(api: Api) -> None:
    case = await api.drive("mediating")
    seen = dict(case)
    moved = await _schedule(api, case)  # someone else's change meanwhile
    assert moved.status_code == 201, moved.text
    now = await api.get(case)
    before = await _counts(api, case)

    _stale(await _schedule(api, case, **{"If-Match": _etag(seen)}), now)
    assert await _counts(api, case) == before
    assert len(await _sittings(api, case)) == 1

    fresh = await _schedule(api, case, **{"If-Match": _etag(now)})
    assert fresh.status_code == 201, fresh.text
    assert (await api.get(case))["version"] == now["version"] + 1
    assert len(await _sittings(api, case)) == 2


async def test_a_sitting_needs_no_if_match(api: Api) -> None:
    case = await api.drive("mediating")
    created = await _schedule(api, case)
    assert created.status_code == 201, created.text
    assert (await api.get(case))["version"] == case["version"] + 1


@pytest.mark.parametrize("blank", [",", " , "])
async def test_an_if_match_of_commas_only_is_none_where_it_is_required(api: Api, blank: str) -> None:
    """No entity tag in it: 428 as with no header, not 412 as if a version were named."""
    case = await api.drive("mediating")
    response = await api.act(case, "fail", headers={"If-Match": blank})
    assert response.status_code == 428, response.text
    assert (await api.get(case))["version"] == case["version"]


@pytest.mark.parametrize("blank", ["", "  ", ","])
async def test_an_empty_if_match_on_a_creating_post_is_no_condition(api: Api, blank: str) -> None:
    """An If-Match with no entity tag in it names no version; the header is optional here, so the
    sitting is scheduled as without it (it used to answer 428, "send If-Match")."""
    case = await api.drive("mediating")
    created = await _schedule(api, case, **{"If-Match": blank})
    assert created.status_code == 201, created.text
    assert len(await _sittings(api, case)) == 1


async def _draft(api: Api, case: dict[str, Any], **headers: str) -> httpx.Response:
    return await api.client.post(
        f"/v1/disputes/{case['id']}/agreements",
        json=api.agreement_content(case),
        headers={**api.acting("body_mediator", case), **headers},
    )


async def _agreements(api: Api, case: dict[str, Any]) -> list[dict[str, Any]]:
    response = await api.client.get(f"/v1/disputes/{case['id']}/agreements", headers=api.auth())
    assert response.status_code == 200, response.text
    return list(response.json())


async def test_a_draft_made_against_a_stale_version_is_refused(api: Api) -> None:
    case = await api.drive("mediating")
    seen = dict(case)
    assert (await _schedule(api, case)).status_code == 201  # someone else's change meanwhile
    now = await api.get(case)
    before = await _counts(api, case)

    _stale(await _draft(api, case, **{"If-Match": _etag(seen)}), now)
    assert await _counts(api, case) == before
    assert await _agreements(api, case) == []

    fresh = await _draft(api, case, **{"If-Match": _etag(now)})
    assert fresh.status_code == 201, fresh.text
    assert (await api.get(case))["version"] == now["version"] + 1
    assert [a["number"] for a in await _agreements(api, case)] == [1]


async def test_a_draft_needs_no_if_match(api: Api) -> None:
    case = await api.drive("mediating")
    created = await _draft(api, case)
    assert created.status_code == 201, created.text
    assert (await api.get(case))["version"] == case["version"] + 1


async def test_a_link_made_against_a_stale_version_is_refused(api: Api) -> None:
    case = await api.intake()
    other = await api.intake(description="同一纠纷经网格员上报, 邻里因院墙滴水发生争执")
    third = await api.intake(description="同一纠纷经热线来电反映, 邻里因院墙滴水发生争执")
    url = f"/v1/disputes/{case['id']}/links"
    made = await api.client.post(url, json={"dispute_id": third["id"]}, headers=api.headers())
    assert made.status_code == 201, made.text  # someone else's change meanwhile
    now = await api.get(case)
    before, others = await _counts(api, case), await _counts(api, other)

    stale = await api.client.post(
        url, json={"dispute_id": other["id"]}, headers=api.headers(**{"If-Match": _etag(case)})
    )
    _stale(stale, now)
    assert (await _counts(api, case), await _counts(api, other)) == (before, others)

    fresh = await api.client.post(
        url, json={"dispute_id": other["id"]}, headers=api.headers(**{"If-Match": _etag(now)})
    )
    assert fresh.status_code == 201, fresh.text
    assert (await api.get(case))["version"] == now["version"] + 1
