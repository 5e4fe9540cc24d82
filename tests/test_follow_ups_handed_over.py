"""Following up an agreement's performance (人民调解法 Art. 31) is the center's while the case is in
its hands. When the case goes on to arbitration (劳动争议调解仲裁法 Art. 15) or to court (人民调解法
Art. 32), or is closed, the open performance follow-ups close with it, in the same transaction, each
with the reason and where the case went, on the case's timeline: they leave the inboxes, never go
overdue, and the clock chases the agreement's obligations no more. The follow-up visit (回访) the
case needs before it is archived (Art. 27) stays open.

And what `remediate` left before it closed the follow-ups of the agreement it sets aside (民事诉讼法
Art. 206): the scheduler closes them once, as `remediate` does now, audited as its other changes."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from mediation.agreements.models import FollowUp, Obligation
from mediation.agreements.service import FOLLOW_UP_WORKING_DAYS, OVERDUE_REASON
from tests.support import Api
from tests.test_agreements import _agreed, _follow_ups, _problem, _tick
from tests.test_follow_ups_and_signatures import _overdue, _visit_task
from tests.test_old_marks_repaired import _audited
from tests.test_remediation import (
    SET_ASIDE,
    _rejected,
    _tasks,
    follow_up_while_the_court_has_it,
    refuses_a_result,
)

LABOUR = {"category": "labour", "description": "拖欠工资三个月, 申请调解。"}


def _closings(timeline: list[dict[str, Any]], after: str) -> list[dict[str, Any]]:
    """The follow-ups closed on the timeline after the last entry of the action `after`."""
    last = max(i for i, e in enumerate(timeline) if e["action"] == after)
    return [e for e in timeline[last + 1 :] if e["action"] == "complete_follow_up"]


async def _closed_as(api: Api, dispute: dict[str, Any], task: dict[str, Any], outcome: str) -> dict[str, Any]:
    """The case has no open performance follow-up left, and `task` closed with `outcome`."""
    assert await _tasks(api, dispute, "open") == []
    (closed,) = await _tasks(api, dispute, "done")
    assert (closed["id"], closed["status"], closed["result"]["outcome"]) == (task["id"], "done", outcome)
    assert closed["done_at"] is not None
    return closed


# ---- handed on: arbitration, litigation ------------------------------------------------------------


async def test_a_referral_to_court_ends_the_follow_up_of_the_agreement(api: Api) -> None:
    dispute, agreement, task = await _overdue(api)
    dispute = await api.step(await api.get(dispute), "refer_litigation")
    assert dispute["status"] == "referred_litigation"

    # Out of the body's inbox and the center's list, closed with where the case went.
    assert (await _follow_ups(api)).json()["items"] == []
    closed = await _closed_as(api, dispute, task, "referred_litigation")
    assert closed["result"]["agreement_id"] == agreement["id"]
    assert "导入诉讼" in closed["result"]["reason"] and "第三十二条" in closed["result"]["reason"]

    # On the timeline after the referral, by whoever referred it, in the state it went to.
    timeline = await api.timeline(dispute)
    (entry,) = _closings(timeline, "refer_litigation")
    assert entry["payload"] == {"follow_up_id": task["id"], "outcome": "referred_litigation"}
    assert (entry["actor_role"], entry["from_status"], entry["to_status"]) == (
        "body_admin",
        "referred_litigation",
        "referred_litigation",
    )
    assert entry["reason"] == closed["result"]["reason"]
    assert f"第{agreement['number']}版" in entry["reason"]
    assert dispute["version"] == timeline[-1]["seq"] == (await api.get(dispute))["version"]

    # A result posted to it afterwards is refused.
    await refuses_a_result(api, task, "refuses")

    # The second obligation's day passes while the court has the case: the clock chases nothing.
    api.app.state.clock.at += timedelta(days=40)
    report = await _tick(api)
    assert (report.obligations_overdue, report.failed) == (0, 0)
    assert await _tasks(api, dispute, "open") == []
    later = (await api.timeline(dispute))[len(timeline) :]
    assert [e for e in later if e["action"] in ("obligation_overdue", "complete_follow_up")] == []

    # The court's judgment closes the case; nothing is left to close.
    dispute = await api.target_accepts(dispute, "(2026)浙0681民初9号")
    dispute = await api.step(dispute, "record_outcome")
    assert dispute["status"] == "closed"
    assert _closings(await api.timeline(dispute), "record_outcome") == []
    assert len(await _tasks(api, dispute, "done")) == 1


async def test_a_labour_agreement_not_performed_and_referred_to_arbitration_ends_its_follow_up(
    api: Api,
) -> None:
    dispute = await api.drive("agreement_signed", **LABOUR)
    api.app.state.clock.at += timedelta(days=17)  # the obligation was due in 15 days
    assert (await _tick(api)).obligations_overdue == 1
    (task,) = await _tasks(api, dispute, "open")
    labour = {"commission_id": str(api.bodies["labour_commission"])}
    dispute = await api.step(await api.get(dispute), "refer_arbitration", labour, role="clerk")
    assert dispute["status"] == "referred_arbitration"

    closed = await _closed_as(api, dispute, task, "referred_arbitration")
    assert "导入仲裁" in closed["result"]["reason"] and "第十五条" in closed["result"]["reason"]
    (entry,) = _closings(await api.timeline(dispute), "refer_arbitration")
    assert (entry["payload"]["follow_up_id"], entry["actor_role"]) == (task["id"], "clerk")
    assert (await _follow_ups(api)).json()["items"] == []


async def test_a_case_taken_to_court_after_its_confirmation_was_refused_ends_the_follow_up(
    api: Api,
) -> None:
    # Raised while the court had the request; the court refused to confirm, and the parties sue.
    dispute, _, task = await follow_up_while_the_court_has_it(api)
    dispute = await api.step(await api.target_accepts(dispute), "reject")
    assert dispute["status"] == "confirmation_rejected"
    # Refused, the case is still the center's: the parties may mediate again or sue.
    assert [t["id"] for t in await _tasks(api, dispute, "open")] == [task["id"]]
    dispute = await api.step(dispute, "refer_litigation")
    await _closed_as(api, dispute, task, "referred_litigation")
    (entry,) = _closings(await api.timeline(dispute), "refer_litigation")
    assert entry["payload"]["follow_up_id"] == task["id"]


# ---- closed ------------------------------------------------------------------------------------------


async def test_closing_a_confirmed_case_ends_its_follow_ups_and_keeps_the_visit(api: Api) -> None:
    dispute, agreement = await _agreed(api, first_due=1, second_due=30)
    dispute = await api.target_accepts(await api.step(dispute, "request_confirmation"))
    api.app.state.clock.at += timedelta(days=3)
    assert (await _tick(api)).obligations_overdue == 1
    (task,) = await _tasks(api, dispute, "open")
    dispute = await api.step(await api.get(dispute), "confirm")
    # Confirmed, its performance is still followed up until the case is closed.
    assert [t["id"] for t in await _tasks(api, dispute, "open")] == [task["id"]]
    dispute = await api.step(dispute, "close")
    assert dispute["status"] == "closed"

    closed = await _closed_as(api, dispute, task, "case_closed")
    assert "已结案" in closed["result"]["reason"]
    assert closed["result"]["agreement_id"] == agreement["id"]
    (entry,) = _closings(await api.timeline(dispute), "close")
    assert (entry["actor_role"], entry["to_status"]) == ("clerk", "closed")
    # What is left in the body's inbox is the visit closing opened.
    assert [t["kind"] for t in (await _follow_ups(api)).json()["items"]] == ["visit"]

    # The visit the case needs before archiving is open, and archiving still waits for it.
    visit = await _visit_task(api, dispute)
    assert (visit["kind"], visit["status"]) == ("visit", "open")
    refused = await api.act(dispute, "archive", {})
    problem = _problem(refused, 422, "/problems/guard-failed")
    assert "follow_up_visit_missing" in {r["code"] for r in problem["reasons"]}
    recorded = await api.client.post(
        f"/v1/follow-ups/{visit['id']}/visit",
        json={
            "visited_on": api.today.isoformat(),
            "contact_method": "phone",
            "reached": True,
            "satisfaction": 4,
        },
        headers={**api.acting("body_mediator", dispute), **await api.case_if_match(dispute["id"])},
    )
    assert recorded.status_code == 200, recorded.text
    archived = await api.step(await api.get(dispute), "archive", {})
    assert archived["status"] == "archived"
    # The performance follow-up stays as it closed.
    assert (await _tasks(api, archived, "done"))[0]["result"]["outcome"] == "case_closed"


async def test_a_case_ended_with_no_follow_up_open_writes_nothing_more(api: Api) -> None:
    dispute = await api.drive("mediation_failed")
    dispute = await api.step(dispute, "refer_litigation")
    assert _closings(await api.timeline(dispute), "refer_litigation") == []
    assert dispute["version"] == (await api.timeline(dispute))[-1]["seq"]
    closed = await api.step(await api.drive("closed"), "archive")
    assert closed["status"] == "archived"


# ---- left open by `remediate` before it closed them ---------------------------------------------------


async def _raised_as_the_clock_did(api: Api, dispute: dict[str, Any], obligation: dict[str, Any]) -> str:
    """The first obligation marked overdue and its follow-up open in the body's inbox, as the clock
    wrote them on the day after its due date."""
    today = api.today
    async with api.app.state.db.writer() as session, session.begin():
        row = await session.get(Obligation, uuid.UUID(obligation["id"]))
        assert row is not None
        row.status, row.overdue_since = "overdue", today
        task = FollowUp(
            id=uuid.uuid4(),
            dispute_id=uuid.UUID(dispute["id"]),
            body_id=uuid.UUID(str(api.bodies["village"])),
            kind="performance",
            obligation_id=row.id,
            reason=OVERDUE_REASON.format(i=1, what=f"{row.amount:.2f} 元", due=row.due_on.isoformat()),
            status="open",
            raised_at=api.app.state.clock.now(),
        )
        task.count_due(today, FOLLOW_UP_WORKING_DAYS)
        session.add(task)
    return str(task.id)


async def test_the_scheduler_closes_follow_ups_remediation_left_open_before(api: Api) -> None:
    # Remediated before `remediate` closed the follow-ups: the agreement superseded, its
    # follow-up left open. The case has since reached a new agreement.
    remediated, old = await _agreed(api, first_due=1, second_due=30)
    remediated = await api.step(await _rejected(api, remediated), "remediate")
    # In force: a case whose agreement binds the parties, its follow-up open. Left alone.
    current, agreement = await _agreed(api, first_due=1, second_due=30)
    api.app.state.clock.at += timedelta(days=3)
    stale = await _raised_as_the_clock_did(api, remediated, old["obligations"][0])
    in_force = await _raised_as_the_clock_did(api, current, agreement["obligations"][0])
    assert {t["id"] for t in (await _follow_ups(api)).json()["items"]} == {stale, in_force}
    before = await api.timeline(remediated)

    report = await _tick(api)

    assert (report.set_aside_repaired, report.failed) == (1, 0)
    closed = await _closed_as(api, remediated, {"id": stale}, SET_ASIDE)
    assert closed["result"]["agreement_id"] == old["id"]
    assert "第二百零六条" in closed["result"]["reason"]
    (entry,) = (await api.timeline(remediated))[len(before) :]
    assert entry["action"] == "complete_follow_up"
    assert entry["payload"] == {"follow_up_id": stale, "outcome": SET_ASIDE}
    assert (entry["actor_role"], entry["from_status"]) == ("system", "mediating")
    assert entry["reason"] == closed["result"]["reason"]
    assert [t["id"] for t in await _tasks(api, current, "open")] == [in_force]
    assert [t["id"] for t in (await _follow_ups(api)).json()["items"]] == [in_force]
    audited = await _audited(api, "scheduler.follow_up_completed", remediated)
    assert [d["job"] for d in audited] == ["follow-ups of set-aside agreements closed"]
    assert await _audited(api, "scheduler.follow_up_completed", current) == []

    # Once: the next pass finds nothing to put right.
    seen = await api.get(remediated)
    assert (await _tick(api)).set_aside_repaired == 0
    assert (await api.get(remediated))["version"] == seen["version"]
    assert [t["id"] for t in await _tasks(api, remediated, "done")] == [stale]
