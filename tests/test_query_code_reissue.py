"""重新生成查询码: a party who lost the intake receipt's query code, or whose code others may know,
is given a new one at the center's window. The new code works at the status lookup at once and the
old one stops working; the new one is answered once and kept nowhere but as its hash (not on the
timeline, in the event, in the audit trail or in the logs). Only the center's window staff give it,
against the case's current version; a refused or stale request changes nothing."""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mediation.audit.models import AuditRecord
from mediation.disputes.service import QUERY_CODE_ALPHABET
from tests.support import PATHS, Api
from tests.test_corrections import events_of
from tests.test_web import Page, signed_in

EVENT = "query_code_reissued"


def reissue_url(dispute: dict[str, Any]) -> str:
    return f"/v1/disputes/{dispute['id']}/query-code"


async def reissue(
    api: Api,
    dispute: dict[str, Any],
    body: dict[str, Any] | None = None,
    *,
    role: str = "clerk",
    version: int | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await api.client.post(
        reissue_url(dispute),
        json=body,
        headers={
            **(headers if headers is not None else api.acting(role, dispute)),
            "If-Match": f'"{dispute["version"] if version is None else version}"',
        },
    )


async def lookup(api: Api, dispute: dict[str, Any], code: str) -> httpx.Response:
    return await api.client.post(
        "/v1/status-lookup",
        json={"case_number": dispute["case_number"], "query_code": code},
    )


async def drive(api: Api, state: str) -> dict[str, Any]:
    """A case taken to `state`, with the query code its intake answered."""
    dispute = await api.intake()
    code = dispute["query_code"]
    for action in PATHS[state]:
        dispute = await (
            api.target_accepts(dispute) if action == "court_accept" else api.step(dispute, action)
        )
    assert dispute["status"] == state
    return {**dispute, "query_code": code}


async def audit_of(api: Api, dispute: dict[str, Any]) -> list[AuditRecord]:
    async with api.app.state.db.reader() as session:
        rows = await session.scalars(select(AuditRecord).where(AuditRecord.object_id == dispute["id"]))
        return list(rows.all())


async def unchanged_after(api: Api, dispute: dict[str, Any], response: httpx.Response, status: int) -> None:
    """Refused: the case as it was, the intake's code still the one that works, nothing recorded."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "query_code" not in response.json()
    after = await api.get(dispute)
    assert after["version"] == dispute["version"]
    assert (await lookup(api, dispute, dispute["query_code"])).status_code == 200
    assert not await events_of(api, dispute, EVENT)
    assert not [e for e in await api.timeline(dispute) if e["action"] == "reissue_query_code"]


# ---- what the new code does -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["clerk", "supervisor"])
async def test_the_new_code_works_and_the_old_one_stops_working(api: Api, role: str) -> None:
    dispute = await api.intake()
    old = dispute["query_code"]
    assert (await lookup(api, dispute, old)).status_code == 200
    response = await reissue(api, dispute, {"cause": "lost", "note": "申请人本人持身份证到窗口"}, role=role)
    assert response.status_code == 200, response.text
    answer = response.json()
    new = answer["query_code"]
    assert answer["case_number"] == dispute["case_number"]
    assert answer["dispute_id"] == dispute["id"]
    assert answer["version"] == dispute["version"] + 1
    assert response.headers["ETag"] == f'"{dispute["version"] + 1}"'
    assert response.headers["Cache-Control"] == "no-store"
    # Made as intake makes it: same length and alphabet, and not the old one.
    assert len(new) == len(old) == 8 and set(new) <= set(QUERY_CODE_ALPHABET) and new != old
    found = await lookup(api, dispute, new)
    assert found.status_code == 200, found.text
    assert found.json()["case_number"] == dispute["case_number"]
    # Typed as a party may type it: lower case, with spaces.
    assert (await lookup(api, dispute, f" {new.lower()} ")).status_code == 200
    assert (await lookup(api, dispute, old)).status_code == 404
    assert (await api.get(dispute))["version"] == dispute["version"] + 1


async def test_given_again_the_code_before_stops_working_too(api: Api) -> None:
    dispute = await api.intake()
    first = await reissue(api, dispute)
    assert first.status_code == 200, first.text
    second = await reissue(api, dispute, version=first.json()["version"])
    assert second.status_code == 200, second.text
    assert (await lookup(api, dispute, first.json()["query_code"])).status_code == 404
    assert (await lookup(api, dispute, second.json()["query_code"])).status_code == 200
    assert len(await events_of(api, dispute, EVENT)) == 2


@pytest.mark.parametrize("state", ["declined", "closed", "archived"])
async def test_a_case_that_ended_is_still_given_one(api: Api, state: str) -> None:
    # The lookup answers an ended case too: the route a declined party was told, how a case ended.
    dispute = await drive(api, state)
    response = await reissue(api, dispute)
    assert response.status_code == 200, response.text
    found = await lookup(api, dispute, response.json()["query_code"])
    assert found.status_code == 200 and found.json()["status"] == state


async def test_without_a_body_the_cause_is_a_lost_code(api: Api) -> None:
    dispute = await api.intake()
    response = await api.client.post(
        reissue_url(dispute), headers={**api.auth("clerk"), "If-Match": f'"{dispute["version"]}"'}
    )
    assert response.status_code == 200, response.text
    [event] = await events_of(api, dispute, EVENT)
    assert event.data["cause"] == "lost"


# ---- where the code is not ------------------------------------------------------------------------


async def test_the_timeline_the_event_the_audit_and_the_logs_never_hold_the_code(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    dispute = await api.intake()
    with caplog.at_level(logging.DEBUG):
        response = await reissue(api, dispute, {"cause": "disclosed", "note": "申请人称查询码被邻居看到"})
    assert response.status_code == 200, response.text
    code = response.json()["query_code"]

    [entry] = [e for e in await api.timeline(dispute) if e["action"] == "reissue_query_code"]
    assert entry["payload"] == {"cause": "disclosed"}
    assert entry["reason"] == "申请人称查询码被邻居看到"
    assert entry["from_status"] == entry["to_status"] == "registered"
    [event] = await events_of(api, dispute, EVENT)
    assert event.data["action"] == "reissue_query_code"
    assert event.data["cause"] == "disclosed"
    assert event.data["version"] == dispute["version"] + 1
    assert "note" not in event.data  # free text stays with the case
    [audited] = [a for a in await audit_of(api, dispute) if a.action == "reissue_query_code"]
    assert audited.outcome == "success"
    assert audited.details["query_code_reissue"] == {"cause": "disclosed"}

    timeline = json.dumps(await api.timeline(dispute), ensure_ascii=False)
    events = json.dumps([e.data for e in await events_of(api, dispute, EVENT)], ensure_ascii=False)
    audit = json.dumps([a.details for a in await audit_of(api, dispute)], ensure_ascii=False)
    case = json.dumps(await api.get(dispute), ensure_ascii=False)
    for kept in (timeline, events, audit, case, caplog.text):
        assert code not in kept
        assert code.lower() not in kept


async def test_an_idempotency_key_keeps_no_answer_and_a_retry_is_stale(api: Api) -> None:
    dispute = await api.intake()
    headers = {**api.auth("clerk"), "If-Match": f'"{dispute["version"]}"', "Idempotency-Key": "qc-1"}
    first = await api.client.post(reissue_url(dispute), json={}, headers=headers)
    assert first.status_code == 200, first.text
    # The same request again is not a replay of the code: the case moved on, the retry is stale.
    again = await api.client.post(reissue_url(dispute), json={}, headers=headers)
    assert again.status_code == 412, again.text
    assert "Idempotent-Replayed" not in again.headers
    assert first.json()["query_code"] not in again.text
    assert (await lookup(api, dispute, first.json()["query_code"])).status_code == 200
    assert len(await events_of(api, dispute, EVENT)) == 1


# ---- who may, and when ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["body_mediator", "body_admin", "court", "arbitration", "admin", "auditor"])
async def test_only_the_centers_window_gives_a_new_code(api: Api, role: str) -> None:
    # Handed to a court: the body that mediated it and the court both see the case.
    dispute = await drive(api, "confirmation_pending")
    response = await reissue(api, dispute, role=role)
    await unchanged_after(api, dispute, response, 403)


async def test_a_body_holding_the_case_is_refused_by_its_signed_in_staff_too(api: Api) -> None:
    dispute = await drive(api, "mediating")
    response = await reissue(api, dispute, headers=await api.signed_in("body_admin", "village"))
    await unchanged_after(api, dispute, response, 403)


async def test_another_centers_window_does_not_see_the_case(api: Api) -> None:
    dispute = await api.intake()
    response = await reissue(api, dispute, headers=api.auth("clerk", "other_center"))
    await unchanged_after(api, dispute, response, 404)


async def test_a_stale_version_gives_no_code_and_changes_nothing(api: Api) -> None:
    dispute = await api.intake()
    response = await reissue(api, dispute, version=dispute["version"] - 1 if dispute["version"] > 1 else 99)
    await unchanged_after(api, dispute, response, 412)


async def test_without_if_match_it_is_428_and_nothing_changes(api: Api) -> None:
    dispute = await api.intake()
    response = await api.client.post(reissue_url(dispute), json={}, headers=api.auth("clerk"))
    await unchanged_after(api, dispute, response, 428)


async def test_an_unknown_cause_is_refused_and_nothing_changes(api: Api) -> None:
    dispute = await api.intake()
    response = await reissue(api, dispute, {"cause": "forgotten_and_something"})
    await unchanged_after(api, dispute, response, 422)
    extra = await reissue(api, dispute, {"query_code": "AAAAAAAA"})
    await unchanged_after(api, dispute, extra, 422)


# ---- the case page ------------------------------------------------------------------------------


def code_on(html: str) -> str:
    found = re.search(r'id="query-code"[^>]*>([A-Z0-9]+)<', html)
    assert found, html[:3000]
    return found.group(1)


async def test_the_case_page_gives_a_new_code_on_a_slip_to_print(api: Api, web: httpx.AsyncClient) -> None:
    dispute = await api.intake()
    page = signed_in(web, api)
    shown = await page.get(f"/cases/{dispute['id']}")
    assert shown.status_code == 200
    assert 'action="/cases/{}/query-code"'.format(dispute["id"]) in shown.text
    assert "重新生成查询码" in shown.text
    response = await page.post(
        f"/cases/{dispute['id']}/query-code",
        {
            "version": f'"{dispute["version"]}"',
            "cause": "lost",
            "note": "申请人本人持身份证到窗口",
            "idempotency_key": uuid.uuid4().hex,
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    code = code_on(response.text)
    assert f'id="case-number">{dispute["case_number"]}<' in response.text
    assert 'id="old-code-void"' in response.text and "原查询码" in response.text and "作废" in response.text
    assert "打印查询码" in response.text
    assert (await lookup(api, dispute, code)).status_code == 200
    assert (await lookup(api, dispute, dispute["query_code"])).status_code == 404
    # The case page afterwards shows that it was given, and why, not the code.
    after = await page.get(f"/cases/{dispute['id']}")
    assert "查询码遗失; 原查询码已作废" in after.text
    assert code not in after.text
    [audited] = [a for a in await audit_of(api, dispute) if a.action == "reissue_query_code"]
    assert code not in json.dumps(audited.details, ensure_ascii=False)


async def test_the_same_form_sent_twice_gives_one_code_and_never_shows_it_again(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.intake()
    page = signed_in(web, api)
    form = {"version": f'"{dispute["version"]}"', "cause": "lost", "idempotency_key": uuid.uuid4().hex}
    first = await page.post(f"/cases/{dispute['id']}/query-code", form)
    assert first.status_code == 200, first.text
    code = code_on(first.text)
    again = await page.post(f"/cases/{dispute['id']}/query-code", form)
    assert again.status_code == 200, again.text
    assert 'id="already-reissued"' in again.text and code not in again.text
    assert len(await events_of(api, dispute, EVENT)) == 1
    assert (await lookup(api, dispute, code)).status_code == 200


async def test_a_stale_form_gives_no_code_and_says_so(api: Api, web: httpx.AsyncClient) -> None:
    dispute = await api.intake()
    page = signed_in(web, api)
    response = await page.post(
        f"/cases/{dispute['id']}/query-code",
        {"version": '"0"', "cause": "lost", "idempotency_key": uuid.uuid4().hex},
    )
    assert response.status_code == 412
    [banner] = re.findall(r'id="refusal">([^<]*)<', response.text)
    assert "已被他人更新" in banner and "未执行" in banner
    assert 'id="query-code"' not in response.text
    assert (await lookup(api, dispute, dispute["query_code"])).status_code == 200
    assert not await events_of(api, dispute, EVENT)


async def test_a_bodys_staff_are_not_offered_the_form_and_are_refused(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await drive(api, "mediating")
    await api.signed_in("body_mediator", "village")
    web.cookies.set("mediation_session", api.tokens[("body_mediator", api.bodies["village"])])
    page = Page(web)
    shown = await page.get(f"/cases/{dispute['id']}")
    assert shown.status_code == 200
    assert "/query-code" not in shown.text
    response = await page.post(
        f"/cases/{dispute['id']}/query-code",
        {"version": f'"{dispute["version"]}"', "cause": "lost", "idempotency_key": uuid.uuid4().hex},
    )
    assert response.status_code == 403
    assert 'id="query-code"' not in response.text
    assert (await api.get(dispute))["version"] == dispute["version"]
    assert (await lookup(api, dispute, dispute["query_code"])).status_code == 200
    assert not await events_of(api, dispute, EVENT)
