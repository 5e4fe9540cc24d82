"""What an agreement set aside leaves behind. A court that refuses to confirm an agreement sends the
case back to mediation (`remediate`, 民事诉讼法 Art. 206; 人民调解法 Art. 33): the parties change
the agreement or reach a new one. The old agreement binds no one any more, so the performance
follow-ups raised for its obligations (人民调解法 Art. 31) close with it, on the case's timeline,
and nothing chases its obligations again; a new agreement gets follow-ups of its own."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from mediation.agreements.service import AgreementService
from mediation.core.principal import SYSTEM
from mediation.disputes.service import DisputeService
from tests.support import BEIJING, Api
from tests.test_agreements import _agreed, _agreement, _follow_ups, _problem, _tick, _two_obligations

SET_ASIDE = "set_aside"


async def _rejected(api: Api, dispute: dict[str, Any]) -> dict[str, Any]:
    """The agreement sent for judicial confirmation, accepted by the court and rejected."""
    dispute = await api.target_accepts(await api.step(dispute, "request_confirmation"))
    dispute = await api.step(dispute, "reject")
    assert dispute["status"] == "confirmation_rejected"
    return dispute


async def _overdue_then_remediated(api: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A case whose first obligation went overdue (a follow-up in the village body's inbox), whose
    agreement the court then refused to confirm, mediated again."""
    dispute, agreement = await _agreed(api, first_due=1, second_due=30)
    api.app.state.clock.at += timedelta(days=3)
    assert (await _tick(api)).obligations_overdue == 1
    (task,) = (await _follow_ups(api)).json()["items"]
    dispute = await _rejected(api, await api.get(dispute))
    dispute = await api.step(dispute, "remediate")
    assert dispute["status"] == "mediating"
    return dispute, agreement, task


async def _tasks(api: Api, dispute: dict[str, Any], status: str) -> list[dict[str, Any]]:
    response = await api.client.get(
        "/v1/follow-ups",
        params={"kind": "performance", "status": status, "dispute_id": dispute["id"]},
        headers=api.auth("supervisor"),
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def refuses_a_result(api: Api, task: dict[str, Any], outcome: str) -> None:
    """A result posted to a follow-up that was closed is refused (409 `follow_up_closed`)."""
    refused = await api.client.post(
        f"/v1/follow-ups/{task['id']}/result",
        json={"contacted_on": api.today.isoformat(), "method": "phone", "outcome": outcome},
        headers={**api.auth("body_mediator", "village"), **await api.case_if_match(task["dispute_id"])},
    )
    assert _problem(refused, 409, "/problems/conflict")["code"] == "follow_up_closed"


async def follow_up_while_the_court_has_it(api: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """An agreement sent for confirmation whose first obligation went overdue meanwhile: the case,
    the agreement and the one open follow-up raised for it."""
    dispute, agreement = await _agreed(api, first_due=1, second_due=30)
    dispute = await api.step(dispute, "request_confirmation")
    api.app.state.clock.at += timedelta(days=3)
    assert (await _tick(api)).obligations_overdue == 1
    (task,) = await _tasks(api, dispute, "open")
    return dispute, agreement, task


async def test_remediation_closes_the_set_aside_agreements_follow_ups_on_the_timeline(api: Api) -> None:
    dispute, agreement, task = await _overdue_then_remediated(api)

    # Nothing of the old agreement is left to chase: not in the body's inbox, not in the center's.
    assert (await _follow_ups(api)).json()["items"] == []
    assert await _tasks(api, dispute, "open") == []
    (closed,) = await _tasks(api, dispute, "done")
    assert (closed["id"], closed["status"]) == (task["id"], "done")
    assert closed["result"]["outcome"] == SET_ASIDE
    assert closed["result"]["agreement_id"] == agreement["id"]
    assert closed["done_at"] is not None
    # In the body's list of finished tasks too, with the same result.
    (done,) = (await _follow_ups(api, status="done")).json()["items"]
    assert done["result"]["outcome"] == SET_ASIDE

    # On the case's timeline, after the transition, by whoever mediated again, with the reason.
    timeline = await api.timeline(dispute)
    remediated = next(i for i, e in enumerate(timeline) if e["action"] == "remediate")
    closing = [e for e in timeline[remediated + 1 :] if e["action"] == "complete_follow_up"]
    assert len(closing) == 1
    entry = closing[0]
    assert entry["payload"] == {"follow_up_id": task["id"], "outcome": SET_ASIDE}
    assert entry["actor_role"] == "body_mediator"
    assert entry["from_status"] == entry["to_status"] == "mediating"
    assert "第二百零六条" in entry["reason"] and f"第{agreement['number']}版" in entry["reason"]
    # The case's version is the last entry's: the answer to `remediate` carries it.
    assert dispute["version"] == timeline[-1]["seq"] == (await api.get(dispute))["version"]

    # A result posted to it afterwards is refused: it is closed.
    await refuses_a_result(api, task, "performing")

    # The obligations stay on record as they stood, and the clock never chases them again.
    stored = await _agreement(api, dispute, agreement)
    assert stored["status"] == "superseded"
    assert [o["status"] for o in stored["obligations"]] == ["overdue", "pending"]
    api.app.state.clock.at += timedelta(days=40)
    report = await _tick(api)
    assert (report.obligations_overdue, report.failed) == (0, 0)
    assert await _tasks(api, dispute, "open") == []
    later = await api.timeline(dispute)
    assert [e for e in later if e["action"] == "obligation_overdue"] == [
        e for e in timeline if e["action"] == "obligation_overdue"
    ]
    # No case clock of the old agreement or its confirmation runs on.
    clocks = await api.client.get(f"/v1/disputes/{dispute['id']}/clocks", headers=api.auth())
    assert clocks.status_code == 200, clocks.text
    running = {c["name"] for c in clocks.json() if c["stopped_at"] is None}
    assert running <= {"handling", "mediation"}, running


async def test_a_request_the_court_did_not_accept_sets_the_agreement_aside_as_well(api: Api) -> None:
    # Not accepted as outside the courts' scope (解释 Art. 355) ends in confirmation_rejected too;
    # mediated again from there, the agreement is set aside the same way. (Missing materials count
    # as withdrawal instead, Art. 357, and the agreement stays in force: test_outcome_routes.py.) The
    # follow-up was raised while the court had the request.
    dispute, agreement, task = await follow_up_while_the_court_has_it(api)
    dispute = await api.step(await api.get(dispute), "not_accept", {"reason_code": "outside_court_scope"})
    assert dispute["status"] == "confirmation_rejected"
    dispute = await api.step(dispute, "remediate", role="clerk")
    assert await _tasks(api, dispute, "open") == []
    (closed,) = await _tasks(api, dispute, "done")
    assert (closed["id"], closed["result"]["outcome"]) == (task["id"], SET_ASIDE)
    entry = (await api.timeline(dispute))[-1]
    assert (entry["action"], entry["actor_role"], entry["payload"]["follow_up_id"]) == (
        "complete_follow_up",
        "clerk",
        task["id"],
    )
    assert (await _agreement(api, dispute, agreement))["status"] == "superseded"


async def test_a_new_agreement_reached_after_remediation_gets_follow_ups_of_its_own(api: Api) -> None:
    dispute, old, old_task = await _overdue_then_remediated(api)
    new = await api.signed_agreement(dispute, obligations=_two_obligations(api, dispute, 1, 30))
    assert (new["number"], new["supersedes_id"]) == (old["number"] + 1, old["id"])
    dispute = await api.step(dispute, "agree")
    assert (dispute["status"], dispute["agreement"]["id"]) == ("agreement_signed", new["id"])

    api.app.state.clock.at += timedelta(days=4)
    assert (await _tick(api)).obligations_overdue == 1
    (task,) = await _tasks(api, dispute, "open")
    assert task["obligation_id"] == new["obligations"][0]["id"]
    assert task["id"] != old_task["id"]
    (stale,) = await _tasks(api, dispute, "done")
    assert (stale["id"], stale["result"]["outcome"]) == (old_task["id"], SET_ASIDE)

    # Performing the new obligation closes the new task as performed, as always.
    performed = await api.client.post(
        f"/v1/disputes/{dispute['id']}/obligations/{task['obligation_id']}/performance",
        json={"performed_on": api.today.isoformat()},
        headers={
            **api.acting("body_mediator", dispute),
            "If-Match": f'"{(await api.get(dispute))["version"]}"',
        },
    )
    assert performed.status_code == 200, performed.text
    outcomes = {t["id"]: t["result"]["outcome"] for t in await _tasks(api, dispute, "done")}
    assert outcomes == {old_task["id"]: SET_ASIDE, task["id"]: "performed"}


async def test_the_clock_never_raises_a_follow_up_for_an_obligation_of_a_set_aside_agreement(
    api: Api,
) -> None:
    # The scheduler lists the obligations past their day, then handles each in its own transaction:
    # one listed while its agreement bound the parties may reach its turn after the case was
    # mediated again and a new agreement recorded. The case is back in a state where obligations
    # are followed, but that obligation belongs to no agreement in force.
    dispute, old = await _agreed(api, first_due=1, second_due=2)
    dispute = await api.step(await _rejected(api, dispute), "remediate")
    await api.signed_agreement(dispute, obligations=_two_obligations(api, dispute, 30, 40))
    dispute = await api.step(dispute, "agree")
    api.app.state.clock.at += timedelta(days=5)
    app = api.app
    async with app.state.db.writer() as session, session.begin():
        service = DisputeService(session, app.state.clock, app.state.settings, app.state.identity.cipher)
        raised = await AgreementService(service).raise_overdue(uuid.UUID(old["obligations"][0]["id"]), SYSTEM)
    assert raised is False
    assert await _tasks(api, dispute, "open") == []
    assert (await api.get(dispute))["version"] == dispute["version"]
    stored = await _agreement(api, dispute, old)
    assert [o["status"] for o in stored["obligations"]] == ["pending", "pending"]


async def test_a_set_aside_follow_up_is_not_counted_again_when_its_years_holidays_are_loaded(
    api: Api, calendar_package_until_2026: None
) -> None:
    # Raised on 31 December 2026: its three working days run into 2027, whose schedule is not
    # published yet (weekends only, provisional). Once the agreement is set aside, loading 2027's
    # schedule counts nothing of it again and writes nothing on the case.
    api.app.state.clock.at = datetime(2026, 12, 28, 10, tzinfo=BEIJING)
    dispute, _ = await _agreed(api, first_due=1, second_due=30)
    api.app.state.clock.at += timedelta(days=3)
    assert (await _tick(api)).obligations_overdue == 1
    (task,) = (await _follow_ups(api)).json()["items"]
    assert task["provisional"] is True
    dispute = await api.step(await _rejected(api, await api.get(dispute)), "remediate")
    response = await api.client.put(
        "/v1/calendar/years/2027",
        json={"reference": "测试用", "holidays": [{"date": "2027-01-01", "name": "元旦"}]},
        headers=api.auth("admin"),
    )
    assert response.status_code == 200, response.text
    report = await _tick(api)
    assert (report.follow_ups_recounted, report.failed) == (0, 0)
    # The clocks of the new mediation are counted again; the closed task is not.
    timeline = await api.timeline(dispute)
    about_it = [e["action"] for e in timeline if e["payload"].get("follow_up_id") == task["id"]]
    assert about_it == ["obligation_overdue", "complete_follow_up"]
    (closed,) = await _tasks(api, dispute, "done")
    assert (closed["due_on"], closed["provisional"]) == (task["due_on"], True)


async def test_the_statistics_count_no_overdue_for_a_set_aside_agreement(api: Api) -> None:
    # The set-aside task's own day passes (three working days after it was raised), inside every
    # running clock of the new mediation: the case is not counted as overdue.
    await _overdue_then_remediated(api)
    api.app.state.clock.at += timedelta(days=5)
    assert (await _tick(api)).failed == 0
    overview = await api.client.get("/v1/stats/overview", headers=api.auth())
    assert overview.status_code == 200, overview.text
    overdue = overview.json()["rates"]["overdue"]
    assert (overdue["numerator"], overdue["denominator"]) == (0, 1)
