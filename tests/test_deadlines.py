"""The case clocks: deadlines from the rules, counted on the official calendar; pauses and
extensions; at-risk and overdue reported exactly once, also with two schedulers at once."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from mediation.audit.models import AuditRecord
from mediation.clocks import engine
from mediation.clocks.rules import Unit
from mediation.clocks.scheduler import tick
from mediation.core.db import Database
from mediation.disputes.models import TimelineEntry
from mediation.events.models import OutboxEvent
from tests.conftest import TEST_SECRETS
from tests.support import Api, intake_body

BEIJING = ZoneInfo("Asia/Shanghai")
SRC = Path(__file__).resolve().parents[1] / "src"


def _at(api: Api, day: date, hour: int = 10) -> None:
    api.app.state.clock.at = datetime.combine(day, time(hour), BEIJING).astimezone(UTC)


async def _tick(api: Api, db: Database | None = None) -> Any:
    app = api.app
    return await tick(db or app.state.db, app.state.clock, app.state.settings, app.state.identity.cipher)


async def _clocks(api: Api, dispute: dict[str, Any]) -> dict[str, dict[str, Any]]:
    response = await api.client.get(f"/v1/disputes/{dispute['id']}/clocks")
    assert response.status_code == 200, response.text
    return {c["name"]: c for c in response.json() if c["stopped_at"] is None}


async def _entries(api: Api, dispute_id: str, action: str) -> int:
    async with api.app.state.db.reader() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(TimelineEntry)
                .where(TimelineEntry.dispute_id == uuid.UUID(dispute_id), TimelineEntry.action == action)
            )
            or 0
        )


async def _events(api: Api, dispute_id: str, kind: str) -> int:
    async with api.app.state.db.reader() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.dispute_id == uuid.UUID(dispute_id), OutboxEvent.type.endswith(kind))
            )
            or 0
        )


# ---- counting ------------------------------------------------------------------------------------


async def test_working_days_across_national_day_land_on_the_make_up_saturday(api: Api) -> None:
    # Assigned on Wednesday 30 September 2026: 1-7 October are the National Day holiday, Thursday 8
    # and Friday 9 are working days, and Saturday 10 October is a make-up working day (调休).
    _at(api, date(2026, 9, 30))
    dispute = await api.step(await api.intake(), "accept")
    assigned = await api.step(dispute, "assign", {"body_id": str(api.bodies["village"])})
    assert assigned["sign_for_due_on"] == "2026-10-10"
    clock = assigned["clock"]
    assert (clock["name"], clock["due_on"], clock["level"], clock["provisional"]) == (
        "sign_for",
        "2026-10-10",
        "normal",
        False,
    )
    # Due at the end of that Saturday, Beijing time.
    assert datetime.fromisoformat(clock["due_at"]) == datetime(2026, 10, 11, tzinfo=BEIJING)
    response = await api.client.get(
        "/v1/calendar/deadline", params={"start": "2026-09-30", "length": 3, "unit": "working_days"}
    )
    assert response.json()["last_day"] == "2026-10-10"


async def test_calendar_days_ending_in_the_holiday_move_to_the_first_working_day(api: Api) -> None:
    # 民事诉讼法 Art. 85: 30 days from 1 September end on 1 October, a holiday: the period ends on 8 October.
    response = await api.client.get(
        "/v1/calendar/deadline", params={"start": "2026-09-01", "length": 30, "unit": "days"}
    )
    assert response.status_code == 200
    assert (response.json()["last_day"], response.json()["moved_off_rest_day"]) == ("2026-10-08", True)
    # One month from 31 January is the last day of February; 28 February 2026 is a Saturday, but a
    # make-up working day after the Spring Festival, so the period ends on it.
    end = engine.period(date(2026, 1, 31), 1, Unit.months)
    assert (end.last_day, end.extended) == (date(2026, 2, 28), False)


async def test_a_period_into_an_unpublished_year_is_refused_by_the_calculator_and_flagged_on_a_case(
    api: Api, calendar_package_until_2026: None
) -> None:
    response = await api.client.get(
        "/v1/calendar/deadline",
        params={"start": "2026-12-28", "length": 10, "unit": "working_days"},
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"][0]["code"] == "calendar_unknown"
    assert "not yet published" in problem["detail"]
    # A case's clock is never refused: it counts weekends and the statutory holidays only and says so.
    _at(api, date(2026, 12, 29))
    dispute = await api.step(await api.intake(), "accept")
    assigned = await api.step(dispute, "assign", {"body_id": str(api.bodies["village"])})
    assert assigned["clock"]["provisional"] is True
    # 30, 31 December, then past New Year's Day (a Friday) and the weekend: Monday 4 January.
    assert assigned["sign_for_due_on"] == "2027-01-04"


async def test_each_stage_runs_the_clock_its_rule_names(api: Api) -> None:
    _at(api, date(2026, 6, 1))
    dispute = await api.intake(complexity="general")
    assert dispute["clock"]["name"] == "acceptance" and dispute["clock"]["due_on"] == "2026-06-02"
    dispute = await api.step(dispute, "accept")
    clocks = await _clocks(api, dispute)
    assert set(clocks) == {"handling"}
    assert (clocks["handling"]["rule_id"], clocks["handling"]["due_on"]) == ("handling.general", "2026-06-08")
    dispute = await api.step(dispute, "assign", {"body_id": str(api.bodies["village"])})
    dispute = await api.step(dispute, "sign_for")
    clocks = await _clocks(api, dispute)
    assert set(clocks) == {"handling", "mediation"}
    # People's mediation: one month (人民调解工作若干规定 Art. 33); the most urgent clock is shown.
    assert clocks["mediation"]["due_on"] == "2026-07-01"
    assert dispute["clock"]["name"] == "handling"
    labour = await api.drive("mediating", category="labour", description="工人追讨工资, 申请调解。")
    labour_clocks = await _clocks(api, labour)
    assert (labour_clocks["mediation"]["rule_id"], labour_clocks["mediation"]["due_on"]) == (
        "mediation.labour",
        "2026-06-16",
    )
    history = {c["name"]: c for c in (await api.client.get(f"/v1/disputes/{dispute['id']}/clocks")).json()}
    assert history["acceptance"]["outcome"] == "met" and history["sign_for"]["outcome"] == "met"


# ---- pause, resume, extend ------------------------------------------------------------------------


async def test_a_paused_clock_does_not_run(api: Api) -> None:
    _at(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    assert (await _clocks(api, dispute))["mediation"]["due_on"] == "2026-07-01"
    _at(api, date(2026, 6, 5))
    response = await api.client.post(
        f"/v1/disputes/{dispute['id']}/clocks/mediation/pause",
        json={"reason": "appraisal", "note": "等待房屋损失评估报告"},
        headers={**api.acting("body_mediator", dispute), "If-Match": f'"{dispute["version"]}"'},
    )
    assert response.status_code == 200, response.text
    assert response.json()["paused_at"] is not None
    # Five weeks later, past the original last day: the scheduler reports nothing.
    _at(api, date(2026, 7, 10))
    report = await _tick(api)
    assert (report.at_risk, report.overdue) == (0, 0)
    dispute = await api.get(dispute)
    assert dispute["clock"]["paused"] is True and dispute["clock"]["level"] == "normal"
    # Resumed: the 35 days it stood still are added; nothing is due yet.
    response = await api.client.post(
        f"/v1/disputes/{dispute['id']}/clocks/mediation/resume",
        json={},
        headers={**api.acting("body_mediator", dispute), "If-Match": f'"{dispute["version"]}"'},
    )
    assert response.status_code == 200, response.text
    assert response.json()["due_on"] == "2026-08-05"
    report = await _tick(api)
    assert (report.at_risk, report.overdue) == (0, 0)
    actions = [e["action"] for e in await api.timeline(dispute)]
    assert actions[-2:] == ["clock_paused", "clock_resumed"]


async def test_a_resumed_follow_up_visit_clock_moves_the_visit_task_with_it(api: Api) -> None:
    # Closed on Monday 1 June: the visit (回访) is due in 30 days, Wednesday 1 July, in the inbox of
    # the body that mediated. The center pauses the clock while the parties are away for ten days.
    _at(api, date(2026, 6, 1))
    dispute = await api.drive("closed")
    body = api.acting("body_mediator", dispute)

    async def visit_due() -> str:
        response = await api.client.get(
            "/v1/follow-ups", params={"kind": "visit", "dispute_id": dispute["id"]}, headers=body
        )
        assert response.status_code == 200, response.text
        [task] = response.json()["items"]
        return str(task["due_on"])

    assert (await _clocks(api, dispute))["follow_up_visit"]["due_on"] == await visit_due() == "2026-07-01"
    for day, step, payload in (
        (date(2026, 6, 1), "pause", {"reason": "waiting_party"}),
        (date(2026, 6, 11), "resume", {}),
    ):
        _at(api, day)
        dispute = await api.get(dispute)
        response = await api.client.post(
            f"/v1/disputes/{dispute['id']}/clocks/follow_up_visit/{step}",
            json=payload,
            headers={**api.auth("clerk"), "If-Match": f'"{dispute["version"]}"'},
        )
        assert response.status_code == 200, response.text
    # Ten days added: Saturday 11 July, so Monday the 13th; the task is due when its clock is.
    assert response.json()["due_on"] == "2026-07-13"
    assert await visit_due() == "2026-07-13"


# (state the case is in, clock, a role that may change it, roles refused). The center keeps its
# own deadlines, the body that has the case its mediation period; courts and commissions none.
CLOCK_KEEPING = [
    ("assigned", "sign_for", "clerk", ["body_mediator", "body_admin"]),
    ("mediating", "handling", "supervisor", ["body_mediator", "body_admin"]),
    ("mediating", "mediation", "body_admin", ["clerk", "supervisor"]),
    ("closed", "follow_up_visit", "clerk", ["court", "body_mediator"]),
]


@pytest.mark.parametrize(("state", "name", "keeper", "refused"), CLOCK_KEEPING, ids=lambda v: str(v))
async def test_only_the_keeper_of_a_clock_may_pause_resume_or_extend_it(
    api: Api, state: str, name: str, keeper: str, refused: list[str]
) -> None:
    if state == "closed":
        # Closed after the court confirmed the agreement: the court still sees the case.
        dispute = await api.step(await api.drive("confirmed"), "close")
        assert dispute["handoff_target_id"] == str(api.bodies["court"])
    else:
        dispute = await api.drive(state, complexity="general")
    assert name in await _clocks(api, dispute)
    url = f"/v1/disputes/{dispute['id']}/clocks/{name}"
    extension = {"units": 1, "reason": "延长", "consenting_party_ids": [p["id"] for p in dispute["parties"]]}
    for role in refused:
        for step, body in (("pause", {"reason": "waiting_party"}), ("resume", {}), ("extension", extension)):
            response = await api.client.post(
                f"{url}/{step}",
                json=body,
                headers={**api.acting(role, dispute), "If-Match": f'"{dispute["version"]}"'},
            )
            assert response.status_code == 403, (role, step, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            problem = response.json()
            assert problem["type"] == "/problems/forbidden"
            center = keeper in ("clerk", "supervisor")
            assert problem["allowed_roles"] == (
                ["clerk", "supervisor"] if center else ["body_admin", "body_mediator"]
            )
    assert (await api.get(dispute))["version"] == dispute["version"]
    async with api.app.state.db.reader() as session:
        refusals = (
            await session.execute(
                select(AuditRecord.actor_role, AuditRecord.action, AuditRecord.outcome).where(
                    AuditRecord.object_id == dispute["id"], AuditRecord.status_code == 403
                )
            )
        ).all()
    assert sorted(refusals) == sorted(
        (role, f"{operation}_clock", "denied")
        for role in refused
        for operation in ("pause", "resume", "extend")
    )
    response = await api.client.post(
        f"{url}/pause",
        json={"reason": "waiting_party"},
        headers={**api.acting(keeper, dispute), "If-Match": f'"{dispute["version"]}"'},
    )
    if name == "sign_for":  # a few working days to sign for or return: nothing to wait on a party for
        assert response.json()["reasons"][0]["code"] == "clock_not_pausable"
    else:
        assert response.status_code == 200, response.text


async def test_a_court_or_commission_changes_none_of_the_cases_clocks(api: Api) -> None:
    # Referred to arbitration, the case has no clock of its own running; the commission is refused
    # before that is looked at, as is a court asked to confirm the agreement.
    for state, role in (("referred_arbitration", "arbitration"), ("confirmation_pending", "court")):
        dispute = await api.drive(state)
        for name in ("handling", "mediation", "follow_up_visit"):
            response = await api.client.post(
                f"/v1/disputes/{dispute['id']}/clocks/{name}/pause",
                json={"reason": "waiting_party"},
                headers={**api.acting(role, dispute), "If-Match": f'"{dispute["version"]}"'},
            )
            assert response.status_code == 403, (state, name, response.text)


async def test_a_statutory_window_cannot_be_paused(api: Api) -> None:
    dispute = await api.drive("agreement_signed")
    response = await api.client.post(
        f"/v1/disputes/{dispute['id']}/clocks/confirmation_window/pause",
        json={"reason": "waiting_party"},
        headers={**api.acting("body_mediator", dispute), "If-Match": f'"{dispute["version"]}"'},
    )
    assert response.status_code == 422
    assert response.json()["reasons"][0]["code"] == "clock_not_pausable"
    assert (await api.get(dispute))["version"] == dispute["version"]


async def test_an_extension_needs_every_partys_consent_and_stays_within_the_limit(api: Api) -> None:
    _at(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    url = f"/v1/disputes/{dispute['id']}/clocks/mediation/extension"
    body = api.acting("body_mediator", dispute)
    first_party = dispute["parties"][0]["id"]
    response = await api.client.post(
        url,
        json={"units": 1, "reason": "双方同意延长", "consenting_party_ids": [first_party]},
        headers={**body, "If-Match": f'"{dispute["version"]}"'},
    )
    assert response.status_code == 422
    assert response.json()["reasons"][0]["code"] == "consent_of_all_parties"
    everyone = [p["id"] for p in dispute["parties"]]
    response = await api.client.post(
        url,
        json={"units": 1, "reason": "双方同意延长一个月", "consenting_party_ids": everyone},
        headers={**body, "If-Match": f'"{dispute["version"]}"'},
    )
    assert response.status_code == 200, response.text
    assert response.json()["due_on"] == "2026-08-03"  # 1 August is a Saturday
    dispute = await api.get(dispute)
    response = await api.client.post(
        url,
        json={"units": 1, "reason": "再延长", "consenting_party_ids": everyone},
        headers={**body, "If-Match": f'"{dispute["version"]}"'},
    )
    assert response.status_code == 422
    assert response.json()["reasons"][0]["code"] == "clock_extension_limit"
    # Labour mediation has no extension: after 15 days the parties may go to arbitration.
    labour = await api.drive("mediating", category="labour", description="工人追讨工资, 申请调解。")
    response = await api.client.post(
        f"/v1/disputes/{labour['id']}/clocks/mediation/extension",
        json={"units": 5, "reason": "延长", "consenting_party_ids": [p["id"] for p in labour["parties"]]},
        headers={**api.acting("body_mediator", labour), "If-Match": f'"{labour["version"]}"'},
    )
    assert response.status_code == 422
    assert "第十四条" in response.json()["reasons"][0]["article"]


async def _clock_action(api: Api, dispute: dict[str, Any], path: str, body: dict[str, Any]) -> dict[str, Any]:
    dispute = await api.get(dispute)
    response = await api.client.post(
        f"/v1/disputes/{dispute['id']}/clocks/mediation/{path}",
        json=body,
        headers={**api.acting("body_mediator", dispute), "If-Match": f'"{dispute["version"]}"'},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _replayed(clock: dict[str, Any]) -> date:
    """The last day a recount on the calendar as it stands gives the clock."""
    end, _ = engine.replay(
        datetime.fromisoformat(clock["started_at"]),
        clock["length"],
        Unit(clock["unit"]),
        clock["history"],
        BEIJING,
    )
    return end.last_day


async def test_a_pause_is_added_to_the_nominal_last_day_not_to_the_day_it_was_moved_to(api: Api) -> None:
    # One month from Thursday 5 November ends on Saturday 5 December, moved to Monday 7 December.
    _at(api, date(2026, 11, 5))
    dispute = await api.drive("mediating")
    assert (await _clocks(api, dispute))["mediation"]["due_on"] == "2026-12-07"
    _at(api, date(2026, 11, 10))
    await _clock_action(api, dispute, "pause", {"reason": "waiting_party"})
    _at(api, date(2026, 11, 11))
    resumed = await _clock_action(api, dispute, "resume", {})
    # A day stood still: 5 December + 1 is Sunday 6 December, moved once, to Monday 7 December
    # (民法典 Art. 203; 民事诉讼法 Art. 85); not the moved Monday + 1.
    assert resumed["due_on"] == "2026-12-07"
    assert _replayed(resumed) == date(2026, 12, 7)


async def test_an_extension_runs_from_the_last_day_as_moved_off_a_rest_day(api: Api) -> None:
    # One month from Thursday 4 June ends on Saturday 4 July, moved to Monday 6 July.
    _at(api, date(2026, 6, 4))
    dispute = await api.drive("mediating")
    assert (await _clocks(api, dispute))["mediation"]["due_on"] == "2026-07-06"
    extended = await _clock_action(
        api,
        dispute,
        "extension",
        {"units": 1, "reason": "双方同意延长", "consenting_party_ids": [p["id"] for p in dispute["parties"]]},
    )
    # The extension is a month after the period ended, on the moved 6 July (民法典 Art. 203;
    # 民事诉讼法 Art. 85), as a court's extension is (法释〔2011〕5号 Art. 5): Thursday 6 August,
    # not two months from 4 June.
    assert extended["due_on"] == "2026-08-06"
    assert _replayed(extended) == date(2026, 8, 6)


async def test_the_rural_land_commission_decides_on_acceptance_within_five_working_days(api: Api) -> None:
    """农村土地承包经营纠纷调解仲裁法 Art. 23: 五个工作日 from receipt of the application."""
    commission = await api.add_rural_land_commission()
    _at(api, date(2026, 12, 1))
    dispute = await api.drive(
        "mediation_failed", category="land_forest", description="双方因承包地边界发生争执, 申请调解。"
    )
    # Referred on Saturday 5 December: Monday 7 to Friday 11 December are the five working days.
    _at(api, date(2026, 12, 5))
    referred = await api.step(dispute, "refer_arbitration", {"commission_id": str(commission)})
    assert referred["handoff"]["kind"] == "rural_land_arbitration"
    assert referred["handoff"]["accept_due_on"] == "2026-12-11"


# ---- levels, exactly once --------------------------------------------------------------------------


async def test_at_risk_then_overdue_are_reported_once_each_even_by_two_schedulers_at_once(api: Api) -> None:
    _at(api, date(2026, 6, 1))
    cases = [await api.drive("mediating") for _ in range(6)]
    # The mediation clock runs 1 June 10:00 to the end of 1 July; 75 % of it is used on 24 June.
    second = Database(api.app.state.settings)
    try:
        _at(api, date(2026, 6, 25))
        first_report, second_report = await asyncio.gather(_tick(api), _tick(api, second))
        assert first_report.at_risk + second_report.at_risk == len(cases)
        _at(api, date(2026, 7, 2))
        first_report, second_report = await asyncio.gather(_tick(api), _tick(api, second))
        assert first_report.overdue + second_report.overdue == len(cases)
        again = await asyncio.gather(_tick(api), _tick(api, second))
        assert sum(r.at_risk + r.overdue for r in again) == 0
    finally:
        await second.dispose()
    for case in cases:
        assert await _entries(api, case["id"], "clock_at_risk") == 1
        assert await _entries(api, case["id"], "clock_overdue") == 1
        assert await _events(api, case["id"], "clock_at_risk") == 1
        assert await _events(api, case["id"], "clock_overdue") == 1
        current = await api.get(case)
        assert current["clock"]["level"] == "overdue" and current["clock"]["remaining_seconds"] < 0
    # In words the clerk reads on the timeline.
    reasons = [e["reason"] for e in await api.timeline(current) if e["action"].startswith("clock_")]
    assert reasons == ["时限预警: 调解期限将于 2026-07-01 届满", "时限超期: 调解期限已于 2026-07-01 届满"]
    # Supervisors list what is overdue.
    listed = await api.client.get(
        "/v1/disputes", params={"clock_level": "overdue"}, headers=api.auth("supervisor")
    )
    assert {d["id"] for d in listed.json()["items"]} == {c["id"] for c in cases}


async def test_an_extension_after_overdue_reports_overdue_again_only_when_reached_again(api: Api) -> None:
    _at(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    _at(api, date(2026, 7, 2))
    assert (await _tick(api)).overdue == 1
    dispute = await api.get(dispute)
    response = await api.client.post(
        f"/v1/disputes/{dispute['id']}/clocks/mediation/extension",
        json={
            "units": 1,
            "reason": "双方同意延长",
            "consenting_party_ids": [p["id"] for p in dispute["parties"]],
        },
        headers={**api.acting("body_mediator", dispute), "If-Match": f'"{dispute["version"]}"'},
    )
    assert response.status_code == 200, response.text
    # Due 3 August now: back to normal (75 % of 1 June - 3 August is used on 18 July).
    assert (response.json()["due_on"], response.json()["level"]) == ("2026-08-03", "normal")
    assert (await _tick(api)).overdue == 0
    _at(api, date(2026, 8, 4))
    assert (await _tick(api)).overdue == 1
    assert await _entries(api, dispute["id"], "clock_overdue") == 2


async def test_the_overview_of_a_case_shows_the_clock_stopping_when_the_stage_ends(api: Api) -> None:
    _at(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    _at(api, date(2026, 6, 10))
    failed = await api.step(dispute, "fail")
    assert failed["clock"] is None
    history = {c["name"]: c for c in (await api.client.get(f"/v1/disputes/{dispute['id']}/clocks")).json()}
    assert history["mediation"]["outcome"] == "met" and history["mediation"]["remaining_seconds"] is None
    bad = await api.client.post("/v1/disputes", json=intake_body(complexity="easy"))
    assert bad.status_code == 422


@pytest.mark.postgres_only
async def test_two_scheduler_processes_report_each_overdue_case_once(api: Api, tmp_path: Path) -> None:
    """Two `mediation scheduler --once` processes at the same moment, on the real clock: the cases
    were opened in June 2026 (the test clock), so by now every mediation clock is past due."""
    _at(api, date(2026, 6, 1))
    cases = [await api.drive("mediating") for _ in range(8)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIATION_")}
    env.update(
        {
            "MEDIATION_DATABASE_URL": api.app.state.settings.database_url,
            "MEDIATION_JWT_SECRET": TEST_SECRETS["jwt_secret"],
            "MEDIATION_PII_ENCRYPTION_KEYS": TEST_SECRETS["pii_encryption_keys"],
            "MEDIATION_PII_INDEX_KEY": TEST_SECRETS["pii_index_key"],
            "MEDIATION_SECRETS_FILE": str(tmp_path / "unused.secrets.json"),
            "PYTHONPATH": str(SRC),
        }
    )
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mediation.cli",
            "scheduler",
            "--once",
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in processes)), timeout=120)
    assert [p.returncode for p in processes] == [0, 0], outputs
    for case in cases:
        assert await _entries(api, case["id"], "clock_overdue") == 1
        assert await _events(api, case["id"], "clock_overdue") == 1
        # Jumping straight to red reports red only.
        assert await _entries(api, case["id"], "clock_at_risk") == 0
