"""The sign-for clock: a body signs for an assigned case within 3 working days or the system
returns it, and re-triage leaves that body out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from mediation.clocks.scheduler import tick
from mediation.disputes.models import Assignment


async def _tick(api):
    app = api.app
    return await tick(app.state.db, app.state.clock, app.state.settings, app.state.identity.cipher)


async def _assigned_on(api, when: datetime) -> dict:
    api.app.state.clock.at = when
    dispute = await api.step(await api.intake(), "accept")
    return await api.step(dispute, "assign", {"body_id": str(api.bodies["village"])})


async def test_sign_for_due_counts_working_days_around_a_holiday(api):
    # Wednesday 17 June 2026; 19 June is the Dragon Boat Festival (端午), the weekend follows.
    dispute = await _assigned_on(api, datetime(2026, 6, 17, 2, 0, tzinfo=UTC))
    assert dispute["sign_for_due_on"] == "2026-06-23"
    inbox = await api.client.get(
        f"/v1/bodies/{api.bodies['village']}/cases",
        params={"status": "assigned"},
        headers=api.auth("body_mediator", "village"),
    )
    assert [(d["id"], d["sign_for_due_on"]) for d in inbox.json()["items"]] == [(dispute["id"], "2026-06-23")]


async def test_a_case_not_signed_for_in_time_goes_back_to_triage_without_that_body(api):
    monday = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
    dispute = await _assigned_on(api, monday)
    assert dispute["sign_for_due_on"] == "2026-06-04"  # Thursday: three working days

    api.app.state.clock.at = monday + timedelta(days=3)  # the last day itself: still in time
    assert (await _tick(api)).lapsed == 0
    assert (await api.get(dispute))["status"] == "assigned"

    api.app.state.clock.at = monday + timedelta(days=4)  # Friday: the period has passed
    report = await _tick(api)
    assert (report.lapsed, report.failed) == (1, 0)
    after = await api.get(dispute)
    assert (after["status"], after["body_id"], after["sign_for_due_on"]) == ("accepted", None, None)
    timeline = await api.timeline(dispute)
    assert (timeline[-1]["action"], timeline[-1]["actor_role"]) == ("return", "system")
    assert "逾期未签收" in timeline[-1]["reason"]

    async with api.app.state.db.reader() as session:
        assignment = await session.scalar(
            select(Assignment).where(Assignment.dispute_id == uuid.UUID(dispute["id"]))
        )
    assert assignment is not None and assignment.outcome == "lapsed"

    triage = (await api.client.get(f"/v1/disputes/{dispute['id']}/triage")).json()
    recommended = {r["body"]["id"] for r in triage["recommendations"]}
    assert str(api.bodies["village"]) not in recommended
    assert [e["reason"]["code"] for e in triage["excluded"]] == ["excluded_lapsed"]
    # A second tick finds nothing more to do.
    assert (await _tick(api)).lapsed == 0


async def test_a_case_signed_for_in_time_is_left_alone(api):
    monday = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
    dispute = await _assigned_on(api, monday)
    dispute = await api.step(dispute, "sign_for")
    api.app.state.clock.at = monday + timedelta(days=10)
    assert (await _tick(api)).lapsed == 0
    after = await api.get(dispute)
    assert (after["status"], after["sign_for_due_on"]) == ("mediating", None)
