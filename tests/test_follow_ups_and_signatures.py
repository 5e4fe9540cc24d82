"""Follow-up tasks as each caller reads them, which route records which kind, the order in which
working on a task locks it and its case, and who signs a written agreement (人民调解法 Art. 28-31)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Awaitable
from datetime import timedelta
from typing import TypeVar

import pytest
from sqlalchemy import select

from mediation.agreements.models import FollowUp
from mediation.disputes.models import Dispute
from tests.support import Api
from tests.test_agreements import _agreed, _field_codes, _follow_ups, _perform, _problem, _tick
from tests.test_sessions import _requests_waiting_on_a_lock

T, U = TypeVar("T"), TypeVar("U")
PHONE, MASKED = "13912345678", "139****5678"
RESULT = {"contacted_on": None, "method": "phone", "outcome": "performed"}


async def _visit_task(api: Api, dispute: dict) -> dict:
    response = await api.client.get(
        "/v1/follow-ups",
        params={"kind": "visit", "dispute_id": dispute["id"]},
        headers=api.acting("body_mediator", dispute),
    )
    assert response.status_code == 200, response.text
    (task,) = response.json()["items"]
    return task


def _result(api: Api, **changes: str) -> dict:
    return {**RESULT, "contacted_on": api.today.isoformat(), **changes}


async def _overdue(api: Api) -> tuple[dict, dict, dict]:
    """A case in agreement_signed whose first obligation is past due, and the follow-up it raised."""
    dispute, agreement = await _agreed(api, first_due=1, second_due=30)
    api.app.state.clock.at += timedelta(days=3)
    assert (await _tick(api)).obligations_overdue == 1
    (task,) = (await _follow_ups(api)).json()["items"]
    return dispute, agreement, task


# ---- personal data in follow-up tasks ------------------------------------------------------------


async def test_a_visits_notes_are_masked_for_a_reader_without_pii_read(api: Api) -> None:
    dispute = await api.drive("closed")
    task = await _visit_task(api, dispute)
    tried = await api.client.post(
        f"/v1/follow-ups/{task['id']}/visit",
        json={
            "visited_on": api.today.isoformat(),
            "contact_method": "phone",
            "reached": False,
            "notes": f"申请人新号码 {PHONE}, 未接通",
        },
        headers={**api.acting("body_mediator", dispute), **await api.case_if_match(dispute["id"])},
    )
    assert tried.status_code == 200, tried.text
    # The body holds pii:read and reads its own note as typed.
    assert tried.json()["attempts"][0]["notes"] == f"申请人新号码 {PHONE}, 未接通"
    # A supervisor reads it masked, as on the case's timeline.
    listed = await api.client.get(
        "/v1/follow-ups", params={"dispute_id": dispute["id"]}, headers=api.auth("supervisor")
    )
    assert listed.status_code == 200, listed.text
    assert PHONE not in listed.text
    (item,) = listed.json()["items"]
    assert item["attempts"][0]["notes"] == f"申请人新号码 {MASKED}, 未接通"
    # So is what a supervisor's own recorded try answers.
    impossible = await api.client.post(
        f"/v1/follow-ups/{task['id']}/impossible",
        json={"reason": f"当事人已迁居外省, 原号码 {PHONE} 停机"},
        headers={**api.auth("supervisor"), **await api.case_if_match(dispute["id"])},
    )
    assert impossible.status_code == 200, impossible.text
    assert PHONE not in impossible.text
    assert impossible.json()["result"]["reason"] == f"当事人已迁居外省, 原号码 {MASKED} 停机"
    timeline = await api.client.get(f"/v1/disputes/{dispute['id']}/timeline", headers=api.auth("supervisor"))
    assert PHONE not in timeline.text


async def test_a_performance_follow_ups_reason_and_result_are_masked_without_pii_read(api: Api) -> None:
    dispute = await api.drive("mediating")
    obligations = [
        {
            "obligor_party_id": next(p["id"] for p in dispute["parties"] if p["role"] == "respondent"),
            "kind": "act",
            "description": f"致电申请人 {PHONE} 道歉",
            "manner": "电话",
            "due_on": (api.today + timedelta(days=1)).isoformat(),
        }
    ]
    await api.signed_agreement(dispute, obligations=obligations)
    dispute = await api.step(dispute, "agree")
    api.app.state.clock.at += timedelta(days=3)
    assert (await _tick(api)).obligations_overdue == 1
    (task,) = (await _follow_ups(api)).json()["items"]
    assert PHONE in task["reason"]  # the body, with pii:read

    done = await api.client.post(
        f"/v1/follow-ups/{task['id']}/result",
        json=_result(api, outcome="performing", note=f"已拨打 {PHONE} 督促"),
        headers={**api.auth("body_mediator", "village"), **await api.case_if_match(dispute["id"])},
    )
    assert done.status_code == 200, done.text
    for path, params in (
        (f"/v1/bodies/{api.bodies['village']}/follow-ups", {"status": "done"}),
        ("/v1/follow-ups", {"status": "done", "dispute_id": dispute["id"]}),
    ):
        listed = await api.client.get(path, params=params, headers=api.auth("supervisor"))
        assert listed.status_code == 200, listed.text
        assert PHONE not in listed.text
        (item,) = listed.json()["items"]
        assert MASKED in item["reason"] and item["result"]["note"] == f"已拨打 {MASKED} 督促"


# ---- the result route records a performance follow-up, and only an open one ---------------------


async def test_a_visit_is_not_closed_through_the_performance_result(api: Api) -> None:
    dispute = await api.drive("closed")
    task = await _visit_task(api, dispute)
    # No satisfaction rating, one try: the visit's own rules would refuse it.
    refused = await api.client.post(
        f"/v1/follow-ups/{task['id']}/result",
        json=_result(api, outcome="unreachable"),
        headers={**api.acting("body_mediator", dispute), **await api.case_if_match(dispute["id"])},
    )
    _problem(refused, 404, "/problems/not-found")
    assert (await _visit_task(api, dispute))["status"] == "open"

    impossible = await api.client.post(
        f"/v1/follow-ups/{task['id']}/impossible",
        json={"reason": "当事人已迁居外省"},
        headers={**api.acting("body_mediator", dispute), **await api.case_if_match(dispute["id"])},
    )
    assert impossible.status_code == 200, impossible.text
    overwrite = await api.client.post(
        f"/v1/follow-ups/{task['id']}/result",
        json=_result(api),
        headers={**api.acting("body_mediator", dispute), **await api.case_if_match(dispute["id"])},
    )
    _problem(overwrite, 404, "/problems/not-found")
    async with api.app.state.db.reader() as session:
        row = await session.get(FollowUp, uuid.UUID(task["id"]))
        assert row is not None
        assert (row.status, row.result) == (
            "impossible",
            {"outcome": "impossible", "reason": "当事人已迁居外省"},
        )


async def test_a_closed_performance_follow_up_is_not_recorded_again(api: Api) -> None:
    dispute, agreement, task = await _overdue(api)
    performed = await _perform(api, dispute, agreement["obligations"][0])
    assert performed.status_code == 200, performed.text
    again = await api.client.post(
        f"/v1/follow-ups/{task['id']}/result",
        json=_result(api),
        headers={**api.auth("body_mediator", "village"), **await api.case_if_match(dispute["id"])},
    )
    assert _problem(again, 409, "/problems/conflict")["code"] == "follow_up_closed"


# ---- lock order: the case, then its task or obligation ----------------------------------------
#
# A transaction holds the case's row; the request that takes the case first queues on it, then the
# one under test. When the case is let go, the first holds it and reaches for the task or obligation:
# had the second locked that before queueing for the case, each would wait for the other and
# PostgreSQL would end one with a deadlock (a 500).


async def _case_held_while(api: Api, dispute: dict, first: Awaitable[T], second: Awaitable[U]) -> tuple[T, U]:
    async with api.app.state.db.writer() as holder, holder.begin():
        await holder.get(Dispute, uuid.UUID(dispute["id"]), with_for_update=True)
        first_started = asyncio.ensure_future(first)
        await _requests_waiting_on_a_lock(api.app, 1)
        second_started = asyncio.ensure_future(second)
        await _requests_waiting_on_a_lock(api.app, 2)
    return await first_started, await second_started


@pytest.mark.parametrize("recorded", ["visited", "impossible"])
async def test_archiving_keeps_the_visit_already_recorded_and_its_satisfaction(
    api: Api, recorded: str
) -> None:
    """人民调解法 Art. 27: the visit that closed the loop is what the file keeps. A result sent with
    `archive` completes a visit still open; one already made (rated 1) or recorded as impossible
    stands, and the case's satisfaction stays what the visit gave it (none, for no visit)."""
    dispute = await api.drive("closed")
    task = await _visit_task(api, dispute)
    if recorded == "visited":
        url, body = (
            f"/v1/follow-ups/{task['id']}/visit",
            {
                "visited_on": api.today.isoformat(),
                "contact_method": "phone",
                "reached": True,
                "satisfaction": 1,
                "agreement_performed": False,
            },
        )
    else:
        url, body = f"/v1/follow-ups/{task['id']}/impossible", {"reason": "当事人已迁居外地, 无法联系"}
    response = await api.client.post(
        url,
        json=body,
        headers={**api.acting("body_mediator", dispute), **await api.case_if_match(dispute["id"])},
    )
    assert response.status_code == 200, response.text
    before = response.json()

    # The default archive payload carries a visit rated 5.
    archived = await api.step(await api.get(dispute), "archive")
    assert archived["status"] == "archived"
    async with api.app.state.db.reader() as session:
        satisfaction = await session.scalar(
            select(Dispute.satisfaction).where(Dispute.id == uuid.UUID(dispute["id"]))
        )
        row = await session.get(FollowUp, uuid.UUID(task["id"]))
    assert satisfaction == (1 if recorded == "visited" else None)
    assert row is not None and (row.status, row.result) == (before["status"], before["result"])


@pytest.mark.postgres_only
async def test_a_visit_recorded_while_the_case_is_archived_waits_for_it(api: Api) -> None:
    dispute = await api.drive("closed")
    task = await _visit_task(api, dispute)
    seen = await api.case_if_match(dispute["id"])  # the case as both callers read it
    archived, visited = await _case_held_while(
        api,
        dispute,
        api.act(dispute, "archive"),
        api.client.post(
            f"/v1/follow-ups/{task['id']}/visit",
            json={
                "visited_on": api.today.isoformat(),
                "contact_method": "phone",
                "reached": True,
                "satisfaction": 4,
            },
            headers={**api.acting("body_mediator", dispute), **seen},
        ),
    )
    assert archived.status_code == 200, archived.text
    # Archiving settled the visit with its own result first, and moved the case past the version
    # the visit named: it is refused as stale, not a deadlock.
    _problem(visited, 412, "/problems/stale-version")
    async with api.app.state.db.reader() as session:
        row = await session.get(FollowUp, uuid.UUID(task["id"]))
        assert row is not None and row.result is not None
        assert (row.status, row.result["satisfaction"], row.attempts or []) == ("done", 5, [])


@pytest.mark.postgres_only
async def test_a_follow_up_result_recorded_while_the_obligation_is_performed_waits_for_it(api: Api) -> None:
    dispute, agreement, task = await _overdue(api)
    seen = await api.case_if_match(dispute["id"])  # the case as both callers read it
    performed, recorded = await _case_held_while(
        api,
        dispute,
        _perform(api, dispute, agreement["obligations"][0]),
        api.client.post(
            f"/v1/follow-ups/{task['id']}/result",
            json=_result(api, outcome="performing"),
            headers={**api.auth("body_mediator", "village"), **seen},
        ),
    )
    assert performed.status_code == 200, performed.text
    # Performing the obligation closed its follow-up first and moved the case past the version the
    # result named: it is refused as stale, not a deadlock.
    _problem(recorded, 412, "/problems/stale-version")
    (done,) = (await _follow_ups(api, status="done")).json()["items"]
    assert (done["id"], done["result"]["outcome"]) == (task["id"], "performed")


@pytest.mark.postgres_only
async def test_the_clock_marking_an_obligation_overdue_while_it_is_performed_waits_for_it(api: Api) -> None:
    dispute, agreement = await _agreed(api, first_due=1, second_due=30)
    api.app.state.clock.at += timedelta(days=3)
    performed, report = await _case_held_while(
        api, dispute, _perform(api, dispute, agreement["obligations"][0]), _tick(api)
    )
    assert performed.status_code == 200, performed.text
    # Performed meanwhile: nothing left to chase, and no follow-up raised.
    assert (report.obligations_overdue, report.failed) == (0, 0)
    assert (await _follow_ups(api)).json()["items"] == []


# ---- the mediator who signs ---------------------------------------------------------------------


async def test_a_draft_made_before_the_mediator_changed_is_not_signed(api: Api) -> None:
    dispute = await api.drive("mediating")
    draft = await api.draft_agreement(dispute)
    applicant = next(p["id"] for p in dispute["parties"] if p["role"] == "applicant")
    signed = await api.sign(dispute, draft, signer="party", party_id=applicant, method="in_person")
    assert signed.status_code == 200, signed.text
    draft = signed.json()
    added = await api.client.post(
        f"/v1/bodies/{dispute['body_id']}/mediators", json={"name": "王五"}, headers=api.auth("admin")
    )
    assert added.status_code == 201, added.text
    dispute = await api.get(dispute)
    changed = await api.client.put(
        f"/v1/disputes/{dispute['id']}/mediator",
        json={"mediator_id": added.json()["id"]},
        headers={**api.acting("body_admin", dispute), "If-Match": f'"{dispute["version"]}"'},
    )
    assert changed.status_code == 200, changed.text
    dispute = changed.json()

    for signature in (
        {"signer": "mediator", "method": "in_person"},
        {"signer": "body_seal", "method": "seal"},
    ):
        refused = await api.sign(dispute, draft, **signature)
        problem = _problem(refused, 409, "/problems/conflict")
        assert problem["code"] == "mediator_changed" and "调解员已更换" in problem["detail"]
    # A new version names the case's mediator now, and is signed under that name.
    agreement = await api.signed_agreement(dispute)
    assert {s["name"] for s in agreement["signatures"] if s["signer"] == "mediator"} == {"王五"}


async def test_the_mediator_signs_a_written_agreement_and_records_only_an_oral_one(api: Api) -> None:
    dispute = await api.drive("mediating")
    written = await api.draft_agreement(dispute)
    assert written["form"] == "written"
    recorded = await api.sign(dispute, written, signer="mediator", method="recorded")
    assert "method_not_for_form" in _field_codes(recorded)
    signed = await api.sign(dispute, written, signer="mediator", method="in_person")
    assert signed.status_code == 200, signed.text

    oral = await api.draft_agreement(dispute, form="oral")
    recorded = await api.sign(dispute, oral, signer="mediator", method="recorded")
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["status"] == "effective"


# ---- page cursors ---------------------------------------------------------------------------------


def _cursor(key: str) -> str:
    raw = json.dumps({"k": key, "id": str(uuid.uuid4())}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "key", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-06-01T10:00:00", "2026-06-01"]
)
@pytest.mark.parametrize("path", ["/v1/bodies/{village}/follow-ups", "/v1/alerts"])
async def test_a_cursor_time_outside_the_service_years_is_an_invalid_cursor(
    api: Api, path: str, key: str
) -> None:
    response = await api.client.get(
        path.format(village=api.bodies["village"]),
        params={"cursor": _cursor(key)},
        headers=api.auth("supervisor"),
    )
    problem = _problem(response, 422, "/problems/validation-error")
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("cursor", "invalid_cursor")]
