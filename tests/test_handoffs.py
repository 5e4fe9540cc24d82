"""Handoffs to courts and commissions through the HTTP API: the legal clocks, what each court may
see, the refusals that name their article, the dossier, and every answer a target can give."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mediation.clocks.scheduler import TickReport, tick
from mediation.core.http import encode_cursor
from mediation.core.legal_time import period_end
from mediation.events.models import OutboxEvent
from mediation.handoffs.models import Handoff
from tests.support import Api, person, resident_id

COURT_NAME = "诸暨市人民法院"
OVERDUE_EVENT = "cn.mediation.dispute.handoff_overdue"


# ---- helpers --------------------------------------------------------------------------------------


def _on(api: Api, day: date, hour_utc: int = 2) -> None:
    """Set the clock to `day`; 02:00 UTC is 10:00 in Beijing, the same local day."""
    api.app.state.clock.at = datetime(day.year, day.month, day.day, hour_utc, tzinfo=UTC)


async def _tick(api: Api) -> TickReport:
    app = api.app
    return await tick(app.state.db, app.state.clock, app.state.settings, app.state.identity.cipher)


def _problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["type"] == f"/problems/{slug}"
    return problem


def _reasons(response: httpx.Response) -> dict[str, dict[str, Any]]:
    return {r["code"]: r for r in _problem(response, 422, "guard-failed")["reasons"]}


def _target_role(handoff: dict[str, Any]) -> str:
    return "court" if handoff["kind"] in ("judicial_confirmation", "litigation") else "arbitration"


async def _post(
    api: Api,
    handoff: dict[str, Any],
    step: str,
    body: dict[str, Any],
    *,
    as_: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST to /v1/handoffs/{id}/{step} as the target (unless `as_`), with the handoff's ETag."""
    credentials = as_ or api.auth(_target_role(handoff), uuid.UUID(handoff["target_id"]))
    return await api.client.post(
        f"/v1/handoffs/{handoff['id']}/{step}",
        json=body,
        headers={**credentials, "If-Match": f'"{handoff["version"]}"', **(headers or {})},
    )


async def _listed(api: Api, org: str | uuid.UUID, role: str = "court", **params: Any) -> list[dict[str, Any]]:
    response = await api.client.get("/v1/handoffs", params=params, headers=api.auth(role, org))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _actions(timeline: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [e for e in timeline if e["action"] == action]


async def _events(api: Api, dispute: dict[str, Any], event_type: str) -> list[dict[str, Any]]:
    async with api.app.state.db.reader() as session:
        rows = await session.scalars(
            select(OutboxEvent.data).where(
                OutboxEvent.dispute_id == uuid.UUID(dispute["id"]), OutboxEvent.type == event_type
            )
        )
        return list(rows.all())


def _confirm(api: Api, ruling_number: str = "(2026)浙0681民特1号") -> dict[str, Any]:
    return {"decision": "confirmed", "ruling_number": ruling_number, "ruled_on": api.today.isoformat()}


async def _labour_case_mediating(api: Api) -> dict[str, Any]:
    """A labour dispute with the labour dispute mediation committee, signed for today."""
    dispute = await api.step(
        await api.intake(category="labour", description="员工与用人单位因拖欠工资发生争议, 申请调解。"),
        "accept",
    )
    dispute = await api.step(
        dispute,
        "assign",
        {"body_id": str(api.bodies["labour_mediation"]), "override_reason": "劳动争议由专业调解委员会调解"},
    )
    dispute = await api.step(dispute, "sign_for")
    assert dispute["mediation_started_on"] == api.today.isoformat()
    return dispute


def _labour_referral(api: Api, **extra: Any) -> dict[str, Any]:
    return {"commission_id": str(api.bodies["labour_commission"]), **extra}


# ---- the legal clocks -----------------------------------------------------------------------------


async def test_confirmation_is_applied_for_within_30_days_of_the_agreement_taking_effect(api: Api) -> None:
    # The last signature is at 01:00 on Monday 2 March in Beijing (still 1 March in UTC): the
    # agreement takes effect on the local day, and day 30 is Wednesday 1 April, a working day.
    api.app.state.clock.at = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)
    in_time = await api.drive("agreement_signed")
    late = await api.drive("agreement_signed")
    assert in_time["agreement_effective_on"] == late["agreement_effective_on"] == "2026-03-02"
    assert period_end(date(2026, 3, 2), 30).last_day == date(2026, 4, 1)

    _on(api, date(2026, 4, 1))
    requested = await api.step(in_time, "request_confirmation")
    assert requested["status"] == "confirmation_pending"
    assert requested["handoff"]["requested_on"] == "2026-04-01"

    _on(api, date(2026, 4, 2))
    reasons = _reasons(await api.act(late, "request_confirmation"))
    closed = reasons["confirmation_window_closed"]
    assert "2026-04-01" in closed["message"]
    assert "民事诉讼法 第二百零五条" in closed["article"]
    after = await api.get(late)
    assert (after["status"], after["version"], after["handoff"]) == (
        "agreement_signed",
        late["version"],
        None,
    )


async def test_the_court_answers_acceptance_within_3_days_and_is_flagged_once_when_late(api: Api) -> None:
    _on(api, date(2026, 6, 4))  # Thursday: day 3 is Sunday 7 June, so the period runs to Monday
    dispute = await api.drive("confirmation_pending")
    assert dispute["handoff"]["accept_due_on"] == "2026-06-08"
    [listed] = await _listed(api, "court")
    assert (listed["accept_due_on"], listed["overdue"]) == ("2026-06-08", None)

    _on(api, date(2026, 6, 8))  # the last day itself: in time
    assert (await _tick(api)).handoffs_overdue == 0
    assert await _listed(api, "court", overdue=True) == []

    _on(api, date(2026, 6, 9))
    assert (await _tick(api)).handoffs_overdue == 1
    assert (await _tick(api)).handoffs_overdue == 0  # flagged once per step
    [late] = await _listed(api, "court", overdue=True)
    assert (late["id"], late["overdue"]) == (dispute["handoff"]["id"], "accept")
    [flag] = _actions(await api.timeline(dispute), "handoff_overdue")
    assert flag["actor_role"] == "system"
    assert flag["payload"]["step"] == "accept" and flag["payload"]["due_on"] == "2026-06-08"
    assert "法释〔2011〕5号 第四条" in flag["reason"]
    [event] = await _events(api, dispute, OVERDUE_EVENT)
    assert (event["step"], event["handoff_id"]) == ("accept", dispute["handoff"]["id"])

    # A late acceptance is still an acceptance; the decision clock starts from it.
    accepted = await api.target_accepts(dispute)
    assert accepted["handoff"]["accepted_on"] == "2026-06-09"
    assert accepted["handoff"]["decide_due_on"] == period_end(date(2026, 6, 9), 15).last_day.isoformat()
    assert (await api.handoff(accepted))["handoff"]["overdue"] is None
    assert await _listed(api, "court", overdue=True) == []


async def test_the_court_decides_within_15_days_of_acceptance_and_is_flagged_once_when_late(
    api: Api,
) -> None:
    _on(api, date(2026, 6, 4))
    dispute = await api.target_accepts(await api.drive("confirmation_pending"))
    # Day 15 is Friday 19 June, the Dragon Boat Festival; with the weekend after it, 民事诉讼法
    # Art. 85 carries the period to Monday 22 June.
    assert dispute["handoff"]["accepted_on"] == "2026-06-04"
    assert dispute["handoff"]["decide_due_on"] == "2026-06-22"
    handoff = (await api.handoff(dispute))["handoff"]
    assert (handoff["decide_due_on"], handoff["overdue"]) == ("2026-06-22", None)

    _on(api, date(2026, 6, 22))
    assert (await _tick(api)).handoffs_overdue == 0
    assert _actions(await api.timeline(dispute), "handoff_overdue") == []

    _on(api, date(2026, 6, 23))
    assert (await _tick(api)).handoffs_overdue == 1
    for _ in range(2):
        assert (await _tick(api)).handoffs_overdue == 0
    _on(api, date(2026, 6, 24))
    assert (await _tick(api)).handoffs_overdue == 0

    [flag] = _actions(await api.timeline(dispute), "handoff_overdue")
    assert (flag["actor_role"], flag["payload"]["step"]) == ("system", "decide")
    assert "2026-06-22" in flag["reason"] and "法释〔2011〕5号 第五条" in flag["reason"]
    [event] = await _events(api, dispute, OVERDUE_EVENT)
    assert (event["step"], event["due_on"]) == ("decide", "2026-06-22")
    [late] = await _listed(api, "court", overdue=True)
    assert (late["id"], late["overdue"], late["status"]) == (handoff["id"], "decide", "accepted")
    assert await _listed(api, "court", overdue=False) == []
    assert (await api.handoff(dispute))["handoff"]["overdue"] == "decide"


async def test_the_decision_period_is_extended_once_by_at_most_10_days(api: Api) -> None:
    dispute = await api.drive("confirmation_pending")  # Monday 1 June
    pending = (await api.handoff(dispute))["handoff"]
    refused = _problem(
        await _post(api, pending, "extension", {"days": 5, "reason": "案情复杂"}), 409, "conflict"
    )
    assert refused["code"] == "not_extendable"  # nothing to extend before acceptance

    dispute = await api.target_accepts(dispute)
    handoff = (await api.handoff(dispute))["handoff"]
    assert handoff["decide_due_on"] == "2026-06-16"

    too_long = _problem(
        await _post(api, handoff, "extension", {"days": 11, "reason": "案情复杂"}), 422, "validation-error"
    )
    assert [e["code"] for e in too_long["errors"]] == ["too_long"]
    assert (await api.handoff(dispute))["handoff"]["version"] == handoff["version"]

    reason = "需要向当事人核实协议内容, 经院长批准延长"
    response = await _post(api, handoff, "extension", {"days": 10, "reason": reason})
    assert response.status_code == 200, response.text
    extended = response.json()
    assert extended["decide_due_on"] == "2026-06-26" == period_end(date(2026, 6, 1), 25).last_day.isoformat()
    assert (extended["extended_days"], extended["extension_reason"]) == (10, reason)
    assert extended["version"] == handoff["version"] + 1
    assert response.headers["etag"] == f'"{extended["version"]}"'
    [entry] = _actions(await api.timeline(dispute), "extend_handoff")
    assert entry["reason"] == reason and entry["payload"]["decide_due_on"] == "2026-06-26"
    assert (await api.get(dispute))["handoff"]["decide_due_on"] == "2026-06-26"

    again = _problem(
        await _post(api, extended, "extension", {"days": 5, "reason": "再次延长"}), 409, "conflict"
    )
    assert again["code"] == "already_extended"
    assert again["article"] == "法释〔2011〕5号 第五条"
    assert (await api.handoff(dispute))["handoff"]["decide_due_on"] == "2026-06-26"

    # The clock goes by the extended day.
    _on(api, date(2026, 6, 17))
    assert (await _tick(api)).handoffs_overdue == 0
    _on(api, date(2026, 6, 27))
    assert (await _tick(api)).handoffs_overdue == 1


async def _accepted_on(api: Api, kind: str, day: date) -> dict[str, Any]:
    """A handoff of `kind` requested and accepted on `day`."""
    _on(api, day)
    if kind == "judicial_confirmation":
        dispute = await api.drive("confirmation_pending")
    elif kind == "labour_arbitration":
        dispute = await api.step(await _labour_case_mediating(api), "fail")
        dispute = await api.step(dispute, "refer_arbitration", _labour_referral(api))
    else:
        commission = await api.add_rural_land_commission()
        dispute = await api.drive(
            "mediation_failed", category="land_forest", description="村民之间因承包地边界发生争议, 申请调解。"
        )
        dispute = await api.step(dispute, "refer_arbitration", {"commission_id": str(commission)})
    assert dispute["handoff"]["kind"] == kind
    accepted = await api.target_accepts(dispute, case_number="(2026)浙0681受理1号")
    assert accepted["handoff"]["accepted_on"] == day.isoformat()
    return accepted


@pytest.mark.parametrize(
    ("kind", "accepted_on", "due", "days", "extended_due"),
    [
        # 法释〔2011〕5号 Art. 4-5: 15 days end on 17 February 2026, in the Spring Festival; the
        # period ends on Tuesday 24 February (民事诉讼法 Art. 85), and 10 more days from there.
        ("judicial_confirmation", date(2026, 2, 2), "2026-02-24", 10, "2026-03-06"),
        # 劳动争议调解仲裁法 Art. 43: 45 days end on 1 October, National Day; 15 more from 8 October.
        ("labour_arbitration", date(2026, 8, 17), "2026-10-08", 15, "2026-10-23"),
        # 农村土地承包经营纠纷调解仲裁法 Art. 47: 60 days end on 2 October; 30 more from 8 October
        # end on Saturday 7 November, so on Monday 9 November.
        ("rural_land_arbitration", date(2026, 8, 3), "2026-10-08", 30, "2026-11-09"),
    ],
)
async def test_an_extension_adds_its_days_from_the_periods_last_day_moved_off_a_holiday(
    api: Api, kind: str, accepted_on: date, due: str, days: int, extended_due: str
) -> None:
    dispute = await _accepted_on(api, kind, accepted_on)
    handoff = (await api.handoff(dispute))["handoff"]
    assert handoff["decide_due_on"] == due

    response = await _post(api, handoff, "extension", {"days": days, "reason": "案情复杂, 经批准延长"})
    assert response.status_code == 200, response.text
    extended = response.json()
    assert extended["decide_due_on"] == extended_due
    # Counted from the moved last day, not again from the acceptance (which would give 27 February,
    # 16 October and 2 November: fewer days than granted, the holiday's taken off the extension).
    assert extended_due == period_end(date.fromisoformat(due), days).last_day.isoformat()
    assert extended["extended_days"] == days
    assert (await api.get(dispute))["handoff"]["decide_due_on"] == extended_due
    [entry] = _actions(await api.timeline(dispute), "extend_handoff")
    assert entry["payload"]["decide_due_on"] == extended_due


async def test_a_decision_period_that_has_run_out_is_not_extended_and_stays_overdue(api: Api) -> None:
    dispute = await api.target_accepts(await api.drive("confirmation_pending"))  # Monday 1 June
    assert dispute["handoff"]["decide_due_on"] == "2026-06-16"
    _on(api, date(2026, 6, 17))
    assert (await _tick(api)).handoffs_overdue == 1
    handoff = (await api.handoff(dispute))["handoff"]
    assert handoff["overdue"] == "decide"
    case_before = await api.get(dispute)

    for language, words in (("zh", "届满"), ("en", "cannot be extended")):
        response = await _post(
            api,
            handoff,
            "extension",
            {"days": 10, "reason": "补办延长"},
            headers={"Accept-Language": language},
        )
        refused = _problem(response, 409, "conflict")
        assert refused["code"] == "period_expired"
        assert refused["article"] == "法释〔2011〕5号 第五条"
        assert words in refused["detail"] and "2026-06-16" in refused["detail"]

    still = (await api.handoff(dispute))["handoff"]
    assert (still["decide_due_on"], still["extended_days"], still["overdue"], still["version"]) == (
        "2026-06-16",
        0,
        "decide",
        handoff["version"],
    )
    assert (await api.get(dispute))["version"] == case_before["version"]
    assert _actions(await api.timeline(dispute), "extend_handoff") == []
    [late] = await _listed(api, "court", overdue=True)
    assert late["id"] == handoff["id"]
    assert (await _tick(api)).handoffs_overdue == 0  # flagged once, and still flagged


async def test_a_decision_period_is_extended_on_its_last_day(api: Api) -> None:
    dispute = await api.target_accepts(await api.drive("confirmation_pending"))  # Monday 1 June
    _on(api, date(2026, 6, 16))
    handoff = (await api.handoff(dispute))["handoff"]
    response = await _post(api, handoff, "extension", {"days": 10, "reason": "案情复杂"})
    assert response.status_code == 200, response.text
    assert response.json()["decide_due_on"] == "2026-06-26"


async def test_a_labour_dispute_may_go_to_arbitration_after_15_days_of_mediation(api: Api) -> None:
    dispute = await _labour_case_mediating(api)  # signed for on Monday 1 June
    # The fifteen days run from 2 June (民法典 Art. 201) to Tuesday 16 June: on their last day an
    # agreement may still be reached, so arbitration is open from the day after.
    for day in (date(2026, 6, 15), date(2026, 6, 16)):
        _on(api, day)
        refused = _reasons(await api.act(dispute, "refer_arbitration", _labour_referral(api)))
        assert refused["labour_window_open"]["article"] == "劳动争议调解仲裁法 第十四条"
        assert "2026-06-16" in refused["labour_window_open"]["message"]
        assert (await api.get(dispute))["status"] == "mediating"

    _on(api, date(2026, 6, 17))
    referred = await api.step(dispute, "refer_arbitration", _labour_referral(api))
    assert referred["status"] == "referred_arbitration"
    handoff = referred["handoff"]
    assert (handoff["kind"], handoff["target_id"]) == (
        "labour_arbitration",
        str(api.bodies["labour_commission"]),
    )
    # 劳动争议调解仲裁法 Art. 29: five days to accept.
    assert handoff["accept_due_on"] == "2026-06-22" == period_end(date(2026, 6, 17), 5).last_day.isoformat()
    assert handoff["warnings"] == []

    # The commission accepts (award due in 45 days, Art. 43) and posts its award, which closes the case.
    referred = await api.target_accepts(referred, case_number="诸劳人仲案字〔2026〕第88号")
    assert referred["handoff"]["decide_due_on"] == period_end(date(2026, 6, 17), 45).last_day.isoformat()
    award = {"outcome": "award", "reference_number": "诸劳人仲案字〔2026〕第88号", "decided_on": "2026-06-17"}
    response = await _post(api, (await api.handoff(referred))["handoff"], "outcome", award)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "concluded"
    assert (await api.get(dispute))["status"] == "closed"


async def test_a_labour_limitation_run_out_before_the_application_is_warned(api: Api) -> None:
    # Known on 1 May 2025: the year ran out on 6 May 2026 (1 May fell in the Labour Day holiday, 1-5
    # May: 民法典 Art. 203), before mediation was applied for on 1 June.
    dispute = await api.step(await _labour_case_mediating(api), "fail")
    referred = await api.step(
        dispute, "refer_arbitration", _labour_referral(api, rights_known_on="2025-05-01")
    )
    [warning] = (await api.handoff(referred))["handoff"]["warnings"]
    assert warning["code"] == "labour_limitation_expired"
    assert warning["article"] == "劳动争议调解仲裁法 第二十七条"
    assert warning["runs_until"] == "2026-05-06"
    assert referred["handoff"]["warnings"] == [warning]


async def test_a_labour_limitation_with_30_days_or_less_left_is_warned(api: Api) -> None:
    # 劳动争议调解仲裁法 Art. 27: applying for mediation on 1 June 2026 interrupted the year, which
    # then runs afresh to 1 June 2027. A referral with more than 30 days left carries no warning;
    # one with 30 days or less, or after the year ran out, does.
    cases = [await api.step(await _labour_case_mediating(api), "fail") for _ in range(3)]
    referrals = zip(cases, (date(2027, 5, 1), date(2027, 5, 2), date(2027, 6, 2)), strict=True)
    answers = []
    for dispute, day in referrals:
        _on(api, day)
        referred = await api.step(
            dispute, "refer_arbitration", _labour_referral(api, rights_known_on="2026-05-20")
        )
        answers.append((await api.handoff(referred))["handoff"]["warnings"])
    far, near, expired = answers
    assert far == []
    [warning] = near
    assert (warning["code"], warning["runs_until"]) == ("labour_limitation_near", "2027-06-01")
    assert "剩余 30 日" in warning["message"]
    assert warning["article"] == "劳动争议调解仲裁法 第二十七条"
    assert [w["code"] for w in expired] == ["labour_limitation_expired"]
    assert expired[0]["message"] == "一年仲裁时效已于 2027-06-01 届满, 仲裁委员会可能不予支持"
    # The message is in the reader's language, and the clerk sees it on the case page.
    near_case = await api.get(cases[1])
    handoff_id = near_case["handoff"]["id"]
    commission = uuid.UUID(str(near_case["handoff_target_id"]))
    english = await api.client.get(
        f"/v1/handoffs/{handoff_id}",
        headers=api.headers("arbitration", commission, **{"Accept-Language": "en"}),
    )
    [in_english] = english.json()["handoff"]["warnings"]
    assert in_english["message"] == (
        "The one-year limitation for labour arbitration runs out on 2027-06-01 (30 days left); "
        "apply for arbitration without delay"
    )
    page = await api.client.get(
        f"/cases/{near_case['id']}",
        headers={
            "Accept": "text/html",
            "Cookie": f"mediation_session={api.tokens[('clerk', api.bodies['center'])]}",
        },
    )
    assert page.status_code == 200
    assert "一年仲裁时效将于 2027-06-01 届满 (剩余 30 日), 请尽快申请仲裁" in page.text


async def test_a_labour_limitation_ending_on_a_holiday_runs_to_the_next_working_day(api: Api) -> None:
    # 劳动争议调解仲裁法 Art. 27, with 民法典 Art. 203 (民事诉讼法 Art. 85): a year from Saturday 4
    # October 2025 would end on Sunday 4 October 2026, inside the National Day holiday (1-7 October),
    # so it ends on Thursday 8 October, the first working day after it.
    _on(api, date(2025, 10, 4))
    applied_on_the_holiday = await api.step(await _labour_case_mediating(api), "fail")
    _on(api, date(2026, 10, 8))
    known_on_the_holiday = await api.step(await _labour_case_mediating(api), "fail")
    # Known on 4 October 2025 and applied for on 8 October 2026: not run out before the application.
    referred = await api.step(
        known_on_the_holiday, "refer_arbitration", _labour_referral(api, rights_known_on="2025-10-04")
    )
    assert (await api.handoff(referred))["handoff"]["warnings"] == []
    # Applied for on 4 October 2025 and referred on 8 October 2026: the year's last day, not past it.
    referred = await api.step(applied_on_the_holiday, "refer_arbitration", _labour_referral(api))
    [warning] = (await api.handoff(referred))["handoff"]["warnings"]
    assert (warning["code"], warning["runs_until"]) == ("labour_limitation_near", "2026-10-08")
    assert "剩余 0 日" in warning["message"]


async def test_a_right_known_shortly_before_the_application_runs_afresh_from_it(api: Api) -> None:
    # 20 days of the year were left when mediation was applied for; the application interrupts the
    # period (Art. 27 para. 2), so the referral two weeks later has most of a year ahead of it.
    dispute = await api.step(await _labour_case_mediating(api), "fail")
    _on(api, date(2026, 6, 15))
    referred = await api.step(
        dispute, "refer_arbitration", _labour_referral(api, rights_known_on="2025-06-21")
    )
    assert (await api.handoff(referred))["handoff"]["warnings"] == []


# ---- a court sees only its own --------------------------------------------------------------------


async def test_a_court_never_sees_or_acts_on_another_courts_requests(api: Api) -> None:
    ours = await api.drive("confirmation_pending")
    # A respondent living in 上虞 makes the 上虞 court competent (民事诉讼法 Art. 205, party domicile).
    parties = [
        person("applicant", "张三", 1),
        {**person("respondent", "王五", 3), "address": "绍兴市上虞区", "region_code": "330604001000"},
    ]
    theirs = await api.drive("agreement_signed", parties=parties)
    payload = api.payload("request_confirmation", theirs)
    assert payload is not None
    payload.update(court_id=str(api.bodies["other_court"]), basis="party_domicile")
    theirs = await api.step(theirs, "request_confirmation", payload)
    assert theirs["handoff_target_id"] == str(api.bodies["other_court"])

    court = api.auth("court", "court")
    assert [h["id"] for h in await _listed(api, "court")] == [ours["handoff"]["id"]]
    assert [h["id"] for h in await _listed(api, "other_court")] == [theirs["handoff"]["id"]]
    handoff_url = f"/v1/handoffs/{theirs['handoff']['id']}"
    _problem(await api.client.get(handoff_url, headers=court), 404, "not-found")
    _problem(await api.client.get(f"/v1/disputes/{theirs['id']}", headers=court), 404, "not-found")

    async def untouched(before: dict[str, Any], case_version: int) -> None:
        handoff = (await api.handoff(theirs))["handoff"]
        assert (handoff["version"], handoff["status"]) == (before["version"], before["status"])
        assert (await api.get(theirs))["version"] == case_version

    before = (await api.handoff(theirs))["handoff"]
    accept = {"decision": "accepted", "case_number": "(2026)浙0681民特99号"}
    _problem(await _post(api, before, "acceptance", accept, as_=court), 404, "not-found")
    await untouched(before, theirs["version"])

    theirs = await api.target_accepts(theirs, case_number="(2026)浙0604民特7号")
    before = (await api.handoff(theirs))["handoff"]
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("acceptance", accept),
        ("extension", {"days": 10, "reason": "案情复杂"}),
        ("decision", _confirm(api, "(2026)浙0681民特99号")),
        ("outcome", {"outcome": "judgment", "reference_number": "x", "decided_on": api.today.isoformat()}),
        ("withdrawal", {"reason": "法院按撤回处理", "materials_missing": True}),
    ]
    for step, body in attempts:
        _problem(await _post(api, before, step, body, as_=court), 404, "not-found")
    await untouched(before, theirs["version"])
    assert (await api.handoff(theirs))["handoff"]["target_case_number"] == "(2026)浙0604民特7号"
    assert [h["id"] for h in await _listed(api, "court")] == [ours["handoff"]["id"]]


async def _walk(api: Api, court: dict[str, str], cursor: str | None, limit: int = 2) -> list[str]:
    """The ids listed from `cursor` (the start if None) to the end of the list, page by page."""
    seen: list[str] = []
    while True:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        page = await api.client.get("/v1/handoffs", params=params, headers=court)
        assert page.status_code == 200, page.text
        seen += [h["id"] for h in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return seen


async def test_a_walk_of_the_list_resumed_later_finds_the_handoffs_made_meanwhile(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list is in the order the handoffs were made: one made the same day after a page was
    read comes after that page, whatever its id (ids are random)."""
    court = api.auth("court", "court")
    made = [(await api.drive("confirmation_pending"))["handoff"]["id"] for _ in range(3)]
    first = await api.client.get("/v1/handoffs", params={"limit": 2}, headers=court)
    assert first.status_code == 200, first.text
    page = [h["id"] for h in first.json()["items"]]
    cursor = first.json()["next_cursor"]
    assert page == made[:2] and cursor

    # Made after the page was read, with an id below every id on it (below any random one).
    signed = await api.drive("agreement_signed")
    low = iter(range(1, 10_000))
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(low)))
    late = (await api.step(signed, "request_confirmation"))["handoff"]["id"]
    monkeypatch.undo()
    assert uuid.UUID(late) < min(uuid.UUID(i) for i in page)

    assert await _walk(api, court, cursor) == [made[2], late]
    assert await _walk(api, court, None) == [*made, late]
    assert await _walk(api, court, None, limit=1) == [*made, late]


@pytest.mark.postgres_only
async def test_handoffs_are_numbered_in_the_order_they_commit(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handoff made first but committed last comes after the one committed before it: a court
    that read the list between the two commits finds it when resuming. (SQLite's writers take turns
    from their first statement, so there the first made is always the first committed.)"""
    court = api.auth("court", "court")
    slow_case, quick_case = await api.drive("agreement_signed"), await api.drive("agreement_signed")
    held, released = asyncio.Event(), asyncio.Event()

    async def hold_the_slow_one(session: Any) -> None:
        made = select(Handoff.id).where(Handoff.dispute_id == uuid.UUID(slow_case["id"]))
        if await session.scalar(made) is not None:  # its own row, not yet committed
            held.set()
            await released.wait()

    monkeypatch.setattr(api.app.state, "before_commit", [hold_the_slow_one, *api.app.state.before_commit])
    slow = asyncio.create_task(api.step(slow_case, "request_confirmation"))
    await asyncio.wait_for(held.wait(), 10)  # written, not yet committed
    quick = (await asyncio.wait_for(api.step(quick_case, "request_confirmation"), 10))["handoff"]["id"]
    first = await api.client.get("/v1/handoffs", headers=court)
    assert [h["id"] for h in first.json()["items"]] == [quick]
    # The cursor a page ending with it would carry (this one is the last page: it carries none).
    async with api.app.state.db.reader() as session:
        cursor = encode_cursor(
            {"seq": await session.scalar(select(Handoff.seq).where(Handoff.id == uuid.UUID(quick)))}
        )
    released.set()
    late = (await asyncio.wait_for(slow, 10))["handoff"]["id"]

    assert await _walk(api, court, None) == [quick, late]
    assert await _walk(api, court, cursor) == [late]


async def test_a_cursor_of_the_lists_former_order_is_refused_not_misread(api: Api) -> None:
    """A cursor handed out when the list was ordered by request date and id names a day and an
    id, which place nothing in the order of making: refused, so the walk starts again."""
    handoff = (await api.drive("confirmation_pending"))["handoff"]
    court = api.auth("court", "court")

    def cursor(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    for position in (
        {"d": handoff["requested_on"], "id": handoff["id"]},
        {"seq": "1"},
        {"seq": -1},
        {"seq": True},
        {"seq": 1, "id": handoff["id"]},
    ):
        response = await api.client.get("/v1/handoffs", params={"cursor": cursor(position)}, headers=court)
        problem = _problem(response, 422, "validation-error")
        assert [(e["field"], e["code"]) for e in problem["errors"]] == [("cursor", "invalid_cursor")], (
            position
        )


# ---- refusals that name their article -------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "matter"),
    [("marriage_family", "personal_status"), ("housing_homestead", "property_ownership")],
)
async def test_a_matter_the_court_cannot_confirm_is_refused(api: Api, category: str, matter: str) -> None:
    dispute = await api.drive("agreement_signed", category=category, subject_matters=[matter])
    reasons = _reasons(await api.act(dispute, "request_confirmation"))
    assert reasons["not_confirmable"]["article"] == "民诉法解释 第三百五十五条"
    assert (await api.get(dispute))["status"] == "agreement_signed"
    assert await _listed(api, "court") == []


@pytest.mark.parametrize(("category", "matters"), [("marriage_family", []), ("contract", ["inheritance"])])
async def test_a_matter_that_cannot_be_arbitrated_is_not_referred(
    api: Api, category: str, matters: list[str]
) -> None:
    dispute = await api.drive("mediation_failed", category=category, subject_matters=matters)
    reasons = _reasons(await api.act(dispute, "refer_arbitration"))
    assert reasons["not_arbitrable"]["article"] == "仲裁法 第三条"
    assert (await api.get(dispute))["status"] == "mediation_failed"
    assert await _listed(api, "commercial_commission", "arbitration") == []


async def test_commercial_arbitration_without_an_arbitration_agreement_is_refused(api: Api) -> None:
    dispute = await api.drive("mediation_failed", category="contract")
    response = await api.act(
        dispute, "refer_arbitration", {"commission_id": str(api.bodies["commercial_commission"])}
    )
    assert "仲裁法 第四条" in _reasons(response)["no_arbitration_agreement"]["article"]
    assert (await api.get(dispute))["status"] == "mediation_failed"


async def test_confirmation_goes_to_a_competent_court(api: Api) -> None:
    dispute = await api.drive("agreement_signed")  # mediated by a 诸暨 village committee
    payload = api.payload("request_confirmation", dispute)
    assert payload is not None
    payload.update(court_id=str(api.bodies["other_court"]), basis="body_location")
    refused = _reasons(await api.act(dispute, "request_confirmation", payload))["court_not_competent"]
    assert refused["article"] == "民事诉讼法 第二百零五条"
    assert COURT_NAME in refused["message"]  # the competent one is named
    assert "不是调解组织所在地的基层人民法院" in refused["message"]  # and the basis, by its name
    assert "body_location" not in refused["message"]
    assert (await api.get(dispute))["status"] == "agreement_signed"
    assert await _listed(api, "other_court") == []


async def test_a_court_not_competent_is_explained_in_english(api: Api) -> None:
    """With no court known for the basis chosen, the English refusal says "none", not the Chinese."""
    dispute = await api.drive("agreement_signed")
    payload = api.payload("request_confirmation", dispute)
    assert payload is not None
    payload.update(court_id=str(api.bodies["other_court"]), basis="party_domicile")
    response = await api.act(dispute, "request_confirmation", payload, headers={"Accept-Language": "en"})
    refused = _reasons(response)["court_not_competent"]
    assert refused["message"].endswith("competent on that basis: none"), refused["message"]
    assert "无" not in refused["message"] and "、" not in refused["message"]
    assert (await api.get(dispute))["status"] == "agreement_signed"


async def test_mediation_a_court_delegated_is_confirmed_by_that_court_alone(api: Api) -> None:
    # 民事诉讼法 Art. 205 item 1: the court that invited the mediation, on no other basis, even when
    # another court covers where the body is.
    inviting = str(api.bodies["other_court"])
    dispute = await api.drive("assigned", channel="court_delegated", inviting_court_id=inviting)
    for party in dispute["parties"]:
        consent = await api.client.post(
            f"/v1/disputes/{dispute['id']}/parties/{party['id']}/consent",
            json={"decision": "given"},
            headers=api.headers("clerk", **{"If-Match": f'"{dispute["version"]}"'}),
        )
        assert consent.status_code == 200, consent.text
        dispute = await api.get(dispute)
    dispute = await api.step(dispute, "sign_for")
    await api.signed_agreement(dispute)
    dispute = await api.step(dispute, "agree")

    courts = await api.client.get(f"/v1/disputes/{dispute['id']}/competent-courts", headers=api.auth())
    assert courts.status_code == 200, courts.text
    assert [(c["basis"], c["court_id"]) for c in courts.json()] == [("inviting_court", inviting)]

    payload = api.payload("request_confirmation", dispute)
    assert payload is not None
    payload.update(court_id=str(api.bodies["court"]), basis="body_location")
    refused = _reasons(await api.act(dispute, "request_confirmation", payload))["court_not_competent"]
    assert "须向委派调解的人民法院申请司法确认: 上虞区人民法院" in refused["message"]
    assert (await api.get(dispute))["status"] == "agreement_signed"

    payload.update(court_id=inviting, basis="inviting_court")
    requested = await api.step(dispute, "request_confirmation", payload)
    assert (requested["status"], requested["handoff_target_id"]) == ("confirmation_pending", inviting)


# ---- the dossier and the target's answers ---------------------------------------------------------


async def test_the_court_reads_the_full_dossier(api: Api) -> None:
    dispute = await api.drive("mediating")  # signed for at 10:00 on 1 June
    _on(api, date(2026, 6, 1), hour_utc=4)  # noon: the session was held this morning
    mediator = api.acting("body_mediator", dispute)
    scheduled = await api.client.post(
        f"/v1/disputes/{dispute['id']}/sessions",
        json={"scheduled_at": "2026-06-01T10:30:00+08:00", "place": "枫源村调委会调解室"},
        headers=mediator,
    )
    assert scheduled.status_code == 201, scheduled.text
    recorded = await api.client.post(
        f"/v1/disputes/{dispute['id']}/sessions/{scheduled.json()['id']}/record",
        json={
            "held_at": "2026-06-01T10:30:00+08:00",
            "attendees": [
                {"party_id": p["id"], "name": p["name"], "capacity": "当事人"} for p in dispute["parties"]
            ],
            "minutes": "双方同意由被申请人赔偿损失一千二百元。",
            "outcome": "agreement_reached",
        },
        headers={**mediator, "If-Match": scheduled.headers["etag"]},
    )
    assert recorded.status_code == 200, recorded.text
    dispute = await api.get(dispute)
    agreement = await api.signed_agreement(dispute)
    dispute = await api.step(await api.step(dispute, "agree"), "request_confirmation")

    response = await api.client.get(f"/v1/handoffs/{dispute['handoff']['id']}", headers=api.auth("court"))
    assert response.status_code == 200, response.text
    dossier = response.json()
    handoff = dossier["handoff"]
    # The dossier's ETag names the handoff's version and the case's (core/http.py DossierETag).
    assert response.headers["etag"].startswith(f'"h{handoff["version"]}-c{dossier["case"]["version"]}-')
    assert (handoff["kind"], handoff["status"], handoff["target_name"]) == (
        "judicial_confirmation",
        "pending",
        COURT_NAME,
    )
    assert handoff["case_number"] == dispute["case_number"]
    assert handoff["basis"] == "body_location"
    assert sorted(handoff["applicant_party_ids"]) == sorted(p["id"] for p in dispute["parties"])

    # The parties as the court must identify and serve them: nothing masked.
    parties = {p["name"]: p for p in dossier["case"]["parties"]}
    assert (parties["张三"]["id_number"], parties["李四"]["id_number"]) == (resident_id(1), resident_id(2))
    assert (parties["张三"]["phone"], parties["张三"]["masked"]) == ("13800000001", False)
    assert parties["李四"]["address"] == "浙江省诸暨市枫桥镇"

    signed = dossier["agreement"]
    assert (signed["id"], signed["status"], signed["content_hash"]) == (
        agreement["id"],
        "effective",
        agreement["content_hash"],
    )
    [obligation] = signed["obligations"]
    assert (obligation["amount"], obligation["due_on"]) == ("1200.00", "2026-06-16")
    assert sorted(s["signer"] for s in signed["signatures"]) == ["body_seal", "mediator", "party", "party"]

    [held] = dossier["sessions"]
    assert (held["status"], held["minutes"]) == ("held", "双方同意由被申请人赔偿损失一千二百元。")
    actions = [e["action"] for e in dossier["timeline"]]
    assert {"schedule_session", "record_session", "agree"} <= set(actions)
    assert actions[-1] == "request_confirmation"
    assert [m["kind"] for m in dossier["manifest"]] == ["receipt", "agreement", "application"]
    assert all(m["sha256"] for m in dossier["manifest"])
    assert dossier["late_documents"] == []
    # The agreement, each party's address and contact, the mediation's record (民诉法解释 Art. 354);
    # no proof of identity was handed in, and an ID number typed in at intake is none.
    present = {m["code"]: m["present"] for m in dossier["materials"]}
    assert present == {"agreement": True, "identity": False, "contact_address": True, "mediation_proof": True}
    assert {m["article"] for m in dossier["materials"]} == {"民诉法解释 第三百五十四条"}
    assert dossier["filing_pack"] is None


async def test_a_request_the_court_does_not_accept_ends_in_confirmation_rejected(api: Api) -> None:
    # Outside the courts' scope (民诉法解释 Art. 355). Missing materials count as withdrawal instead
    # (Art. 357): tests/test_outcome_routes.py.
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    incomplete = await _post(api, handoff, "acceptance", {"decision": "not_accepted"})
    _problem(incomplete, 422, "validation-error")

    response = await _post(
        api, handoff, "acceptance", {"decision": "not_accepted", "reason_code": "outside_court_scope"}
    )
    assert response.status_code == 200, response.text
    answered = response.json()
    assert (answered["status"], answered["decision"]["reason_code"]) == (
        "not_accepted",
        "outside_court_scope",
    )
    case = await api.get(dispute)
    assert (case["status"], case["handoff"]["status"]) == ("confirmation_rejected", "not_accepted")
    assert (await api.timeline(dispute))[-1]["action"] == "not_accept"

    again = await _post(
        api, answered, "acceptance", {"decision": "accepted", "case_number": "(2026)浙0681民特3号"}
    )
    assert _problem(again, 409, "conflict")["code"] == "already_answered"


async def test_an_answer_posted_to_a_settled_handoff_settles_no_other(api: Api) -> None:
    # The parties withdraw their request and make it again to the same court: the case's action
    # settles its open handoff, so a ruling or a withdrawal posted to the first request (with that
    # request's own ETag) must be refused, not applied to the second.
    dispute = await api.drive("confirmation_pending")
    first = (await api.handoff(dispute))["handoff"]
    body = api.acting("body_mediator", dispute)
    withdrawn = await _post(api, first, "withdrawal", {"reason": "双方当事人撤回申请"}, as_=body)
    assert withdrawn.status_code == 200, withdrawn.text
    first = withdrawn.json()
    again = await api.step(await api.get(dispute), "request_confirmation")
    second = (await api.handoff(again))["handoff"]
    assert second["id"] != first["id"] and second["target_id"] == first["target_id"]
    accepted = await _post(
        api, second, "acceptance", {"decision": "accepted", "case_number": "(2026)浙0681民特9号"}
    )
    assert accepted.status_code == 200, accepted.text
    before = await api.get(dispute)

    for step, answer, as_ in (
        ("decision", _confirm(api), None),
        ("withdrawal", {"reason": "重复提交的撤回"}, body),
        ("extension", {"days": 5, "reason": "案情复杂"}, None),
    ):
        response = await _post(api, first, step, answer, as_=as_)
        assert response.status_code == 409, (step, response.text)
        if step != "extension":
            assert _problem(response, 409, "conflict")["code"] == "handoff_settled"
            assert "已撤回" in response.json()["detail"]

    after = await api.get(dispute)
    assert (after["status"], after["version"]) == (before["status"], before["version"])
    still = (await api.handoff(after))["handoff"]
    assert (still["id"], still["status"], still["version"]) == (
        second["id"],
        "accepted",
        accepted.json()["version"],
    )
    assert still["decision"] is None


async def test_withdrawing_a_request_returns_the_case_to_agreement_signed(api: Api) -> None:
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    body = api.acting("body_mediator", dispute)
    withdrawal = {"reason": "双方当事人撤回司法确认申请"}
    missing = await api.client.post(f"/v1/handoffs/{handoff['id']}/withdrawal", json=withdrawal, headers=body)
    _problem(missing, 428, "precondition-required")

    response = await _post(api, handoff, "withdrawal", withdrawal, as_=body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "withdrawn"
    case = await api.get(dispute)
    assert (case["status"], case["handoff"]["status"]) == ("agreement_signed", "withdrawn")
    assert case["outcome"]["withdraw_confirmation"]["reason"] == withdrawal["reason"]

    # Still within the period, the parties may apply again: a fresh request.
    again = await api.step(case, "request_confirmation")
    assert again["handoff"]["id"] != handoff["id"]
    listed = {h["id"]: h["status"] for h in await _listed(api, "court")}
    assert listed == {handoff["id"]: "withdrawn", again["handoff"]["id"]: "pending"}


async def test_a_joint_application_names_each_party_of_the_case_once(api: Api) -> None:
    dispute = await api.drive("agreement_signed")
    request = api.payload("request_confirmation", dispute)
    assert request is not None
    ids = request["applicant_party_ids"]
    stranger = str(uuid.uuid4())

    for named, field, code in (
        ([*ids, stranger], f"applicant_party_ids[{len(ids)}]", "not_a_party"),
        ([*ids, ids[0]], f"applicant_party_ids[{len(ids)}]", "duplicate_party"),
        # A stranger and one side named twice stand in for no one: the other side did not apply.
        ([ids[0], ids[0], stranger], "applicant_party_ids[1]", "duplicate_party"),
    ):
        response = await api.act(dispute, "request_confirmation", {**request, "applicant_party_ids": named})
        errors = _problem(response, 422, "validation-error")["errors"]
        assert {"field": field, "code": code} in [{"field": e["field"], "code": e["code"]} for e in errors]

    case = await api.get(dispute)
    assert (case["status"], case["version"], case["handoff"]) == (
        "agreement_signed",
        dispute["version"],
        None,
    )
    assert await _listed(api, "court") == []

    requested = await api.step(dispute, "request_confirmation", request)
    applicants = (await api.handoff(requested))["handoff"]["applicant_party_ids"]
    assert sorted(applicants) == sorted(ids)


async def test_a_withdrawal_is_by_a_party_of_the_case(api: Api) -> None:
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    body = api.acting("body_mediator", dispute)
    withdrawal = {"reason": "申请人撤回司法确认申请"}

    stranger = await _post(
        api, handoff, "withdrawal", {**withdrawal, "party_id": str(uuid.uuid4())}, as_=body
    )
    [error] = _problem(stranger, 422, "validation-error")["errors"]
    assert (error["field"], error["code"]) == ("party_id", "not_a_party")
    assert (await api.get(dispute))["status"] == "confirmation_pending"

    applicant = next(p["id"] for p in dispute["parties"] if p["role"] == "applicant")
    response = await _post(api, handoff, "withdrawal", {**withdrawal, "party_id": applicant}, as_=body)
    assert response.status_code == 200, response.text
    case = await api.get(dispute)
    assert (case["status"], case["outcome"]["withdraw_confirmation"]["party_id"]) == (
        "agreement_signed",
        applicant,
    )


@pytest.mark.usefixtures("calendar_package_until_2026")
async def test_a_confirmed_agreement_is_enforceable_for_2_years_after_its_last_due_date(api: Api) -> None:
    dispute = await api.drive("mediating")
    base = api.agreement_content(dispute)["obligations"][0]
    await api.signed_agreement(
        dispute,
        obligations=[{**base, "amount": "600.00", "due_on": due} for due in ("2026-09-30", "2026-07-15")],
    )
    dispute = await api.step(await api.step(dispute, "agree"), "request_confirmation")
    handoff = (await api.handoff(dispute))["handoff"]
    early = _reasons(await _post(api, handoff, "decision", _confirm(api)))
    assert early["not_yet_accepted"]["article"] == "法释〔2011〕5号 第四条"

    dispute = await api.target_accepts(dispute)
    handoff = (await api.handoff(dispute))["handoff"]
    response = await _post(api, handoff, "decision", _confirm(api))
    assert response.status_code == 200, response.text
    confirmed = response.json()
    assert (confirmed["status"], confirmed["decided_on"]) == ("confirmed", "2026-06-01")
    assert confirmed["decision"]["ruling_number"] == "(2026)浙0681民特1号"
    # 民事诉讼法 Art. 250: two years from the last day of the last instalment, 30 September 2028; a
    # Saturday, and 1-3 October are National Day's days off by law (全国年节及纪念日放假办法 Art. 2),
    # so the period ends on the next working day (Art. 85), Wednesday 4 October, as far as 2028 is
    # known yet.
    assert (confirmed["enforcement_deadline"], confirmed["provisional"]) == ("2028-10-04", True)
    case = await api.get(dispute)
    assert (case["status"], case["handoff"]["enforcement_deadline"]) == ("confirmed", "2028-10-04")


async def test_an_enforcement_period_counts_from_a_last_due_date_on_a_rest_day_moved_to_a_working_day(
    api: Api,
) -> None:
    # The last instalment falls due on Sunday 14 June 2026: the last day of performance is Monday
    # the 15th (民法典 Art. 203; 民事诉讼法 Art. 85), and the two years to apply for enforcement
    # (民事诉讼法 Art. 250) run from it to Thursday 15 June 2028.
    dispute = await api.drive("mediating")
    base = api.agreement_content(dispute)["obligations"][0]
    await api.signed_agreement(dispute, obligations=[{**base, "due_on": "2026-06-14"}])
    dispute = await api.target_accepts(
        await api.step(await api.step(dispute, "agree"), "request_confirmation")
    )
    handoff = (await api.handoff(dispute))["handoff"]
    response = await _post(api, handoff, "decision", _confirm(api))
    assert response.status_code == 200, response.text
    assert response.json()["enforcement_deadline"] == "2028-06-15"


async def test_a_litigation_referral_carries_a_filing_pack_and_ends_with_the_courts_outcome(api: Api) -> None:
    dispute = await api.step(await api.drive("mediation_failed"), "refer_litigation")
    assert dispute["status"] == "referred_litigation"
    dossier = await api.handoff(dispute)
    handoff = dossier["handoff"]
    # 民事诉讼法 Art. 126: a qualifying suit is registered within 7 days.
    assert (handoff["kind"], handoff["accept_due_on"]) == ("litigation", "2026-06-08")
    pack = dossier["filing_pack"]
    assert (pack["claimants"], pack["respondents"]) == (["张三"], ["李四"])
    assert pack["claims"] == "请求判令被申请人赔偿损失。"
    assert pack["facts"] == dispute["description"]
    assert (pack["amount_in_dispute"], pack["applied_on"]) == ("1200.00", "2026-06-01")
    assert pack["mediation_body"] == "枫源村人民调解委员会"
    assert pack["mediator"] == dispute["mediator_name"] and pack["mediator"]
    assert pack["termination"]["reason_code"] == "positions_too_far_apart"
    assert "民法典第一百九十五条" in pack["limitation_note"]

    judgment = {
        "outcome": "judgment",
        "reference_number": "(2026)浙0681民初123号",
        "decided_on": "2026-06-01",
    }
    assert "not_yet_accepted" in _reasons(await _post(api, handoff, "outcome", judgment))
    wrong = await _post(api, handoff, "decision", _confirm(api))
    assert _problem(wrong, 409, "conflict")["code"] == "wrong_kind"

    response = await _post(
        api, handoff, "acceptance", {"decision": "accepted", "case_number": "(2026)浙0681民初123号"}
    )
    assert response.status_code == 200, response.text
    accepted = response.json()
    assert (accepted["status"], accepted["target_case_number"]) == ("accepted", "(2026)浙0681民初123号")
    assert accepted["decide_due_on"] is None  # the court's own procedure times the suit
    [ack] = _actions(await api.timeline(dispute), "acknowledge_handoff")
    assert ack["payload"]["target_case_number"] == "(2026)浙0681民初123号"

    response = await _post(api, accepted, "outcome", judgment)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "concluded"
    case = await api.get(dispute)
    assert (case["status"], case["handoff"]["status"]) == ("closed", "concluded")
    assert case["closed_at"] is not None


async def test_a_referral_not_taken_is_answered_on_acceptance_the_day_it_is_refused(api: Api) -> None:
    # A suit the court does not take up has no outcome: it is not accepted (民事诉讼法 Art. 126),
    # dated the day the court answers.
    dispute = await api.step(await api.drive("mediation_failed"), "refer_litigation")  # 1 June
    handoff = (await api.handoff(dispute))["handoff"]
    assert (handoff["status"], handoff["requested_on"]) == ("pending", "2026-06-01")
    _on(api, date(2026, 6, 3))
    dismissed = {
        "outcome": "dismissed",
        "reference_number": "(2026)浙0681民初1号",
        "decided_on": "2026-06-01",
    }
    assert "not_accepted_is_no_outcome" in _reasons(await _post(api, handoff, "outcome", dismissed))
    case = await api.get(dispute)
    assert (case["status"], case["handoff"]["status"]) == ("referred_litigation", "pending")

    refusal = {
        "decision": "not_accepted",
        "reason_code": "conditions_not_met",
        "notice_number": "(2026)浙0681民初1号",
    }
    response = await _post(api, handoff, "acceptance", refusal)
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["decided_on"]) == ("not_accepted", "2026-06-03")
    assert (await api.get(dispute))["status"] == "mediation_failed"


async def test_an_acceptance_retried_with_its_idempotency_key_replays_the_first_answer(api: Api) -> None:
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    accept = {"decision": "accepted", "case_number": "(2026)浙0681民特5号"}
    first = await _post(api, handoff, "acceptance", accept, headers={"Idempotency-Key": "court-7f3a"})
    assert first.status_code == 200, first.text
    # The retry still carries the ETag it was sent with; it gets the stored answer, not a 412.
    replay = await _post(api, handoff, "acceptance", accept, headers={"Idempotency-Key": "court-7f3a"})
    assert replay.status_code == 200, replay.text
    assert replay.json() == first.json()
    assert replay.headers["etag"] == first.headers["etag"] == f'"{handoff["version"] + 1}"'
    assert replay.headers["idempotent-replayed"] == "true"
    assert len(_actions(await api.timeline(dispute), "acknowledge_handoff")) == 1
    assert (await api.handoff(dispute))["handoff"]["version"] == handoff["version"] + 1

    # Without the key, the same answer with the old ETag is told apart by what it answers: it is
    # the answer recorded, so it succeeds without being made again (tests/test_handoff_repeats.py).
    again = await _post(api, handoff, "acceptance", accept)
    assert (again.status_code, again.headers["etag"]) == (200, first.headers["etag"])
    assert len(_actions(await api.timeline(dispute), "acknowledge_handoff")) == 1
    no_etag = await api.client.post(
        f"/v1/handoffs/{handoff['id']}/acceptance", json=accept, headers=api.auth("court")
    )
    _problem(no_etag, 428, "precondition-required")


async def test_a_court_reads_the_dossier_only_while_the_case_is_addressed_to_it(api: Api) -> None:
    """Rejected, then mediated again: the court keeps the handoff and its own answer, and reads
    its handoff's record for good, but no longer the case, its parties, or the sessions held
    after it left."""
    dispute = await api.drive("confirmation_rejected")
    handoff = (await api.handoff(dispute))["handoff"]
    court = api.auth("court", uuid.UUID(handoff["target_id"]))
    again = await api.step(await api.get(dispute), "remediate")
    assert again["status"] == "mediating" and again["handoff_target_id"] is None

    response = await api.client.get(f"/v1/handoffs/{handoff['id']}", headers=court)
    assert response.status_code == 200, response.text
    dossier = response.json()
    assert dossier["withheld"] == "case_left_target"
    record = dossier["handoff"]
    assert (record["id"], record["status"], record["decision"]["ground"]) == (
        handoff["id"],
        "rejected",
        "unclear_content",
    )
    assert (record["target_case_number"], record["decided_on"]) == (
        "(2026)浙0681民特1号",
        api.today.isoformat(),
    )
    assert response.headers["etag"].startswith(f'"h{record["version"]}-c')
    withheld = (
        "case",
        "agreement",
        "sessions",
        "timeline",
        "manifest",
        "late_documents",
        "materials",
        "filing_pack",
    )
    assert {name: dossier[name] for name in withheld} == dict.fromkeys(withheld)
    assert "证" not in response.text and "张三" not in response.text  # no party named or numbered
    listed = {h["id"]: h for h in await _listed(api, uuid.UUID(handoff["target_id"]))}
    assert listed[handoff["id"]]["status"] == "rejected" and listed[handoff["id"]]["decision"]
    # The case's own pages were closed to it already; they stay closed.
    assert (await api.client.get(f"/v1/disputes/{dispute['id']}", headers=court)).status_code == 404
    # The center still reads the whole dossier, and says nothing is withheld.
    whole = (await api.client.get(f"/v1/handoffs/{handoff['id']}", headers=api.auth("clerk"))).json()
    assert whole["withheld"] is None and whole["case"]["id"] == dispute["id"]


async def test_a_withheld_dossier_shows_its_handoffs_text_as_the_case_is_shown(api: Api) -> None:
    """Once the case has left the court, the handoff's own record still carries text typed about
    the case: a number in it is shown to a reader with `pii:read` as a recorded read of the case's
    personal data, audited on the case."""
    from tests.test_audit import by_request_id

    dispute = await api.drive("confirmation_rejected")
    handoff = (await api.handoff(dispute))["handoff"]
    async with api.app.state.db.writer() as session, session.begin():
        row = await session.get(Handoff, uuid.UUID(handoff["id"]))
        assert row is not None
        row.claims = "请求确认协议, 申请人电话13812345678"
    await api.step(await api.get(dispute), "remediate")
    court = api.auth("court", uuid.UUID(handoff["target_id"])) | {"X-Request-ID": "req-withheld-0001"}

    response = await api.client.get(f"/v1/handoffs/{handoff['id']}", headers=court)
    assert response.status_code == 200, response.text
    assert response.json()["withheld"] == "case_left_target"
    assert "13812345678" in response.json()["handoff"]["claims"]
    recorded = await by_request_id(api.app, "req-withheld-0001")
    assert {(r.action, r.object_type, r.object_id) for r in recorded} >= {
        ("pii.read", "dispute", dispute["id"])
    }


async def test_the_lists_of_handoffs_show_their_text_as_the_dossier_does(api: Api) -> None:
    """Both lists show a handoff's text as its dossier shows it (as the case's own text is shown): a
    number in it masked for a role without `pii:read`, with nothing recorded; in full for a role
    with it, and then a recorded read of that case's personal data, of that case alone (个人信息保护法
    Art. 55): a list whose text holds no number records nothing."""
    from tests.test_audit import by_request_id

    dispute = await api.target_accepts(await api.drive("confirmation_pending"))
    handoff = (await api.handoff(dispute))["handoff"]
    extended = await _post(api, handoff, "extension", {"days": 5, "reason": "需核实申请人电话13812345678"})
    assert extended.status_code == 200, extended.text
    quiet = await api.drive("confirmation_pending")
    court = api.auth("court", uuid.UUID(handoff["target_id"]))
    lists = {
        "all": ("/v1/handoffs", {}),
        "pending": ("/v1/handoffs", {"status": "pending"}),  # the quiet case's alone
        "case": (f"/v1/disputes/{dispute['id']}/handoffs", {}),
    }

    async def read(
        name: str, role: str, credentials: dict[str, str]
    ) -> tuple[list[dict[str, Any]], list[Any]]:
        path, params = lists[name]
        request_id = f"req-list-{name}-{role}"
        response = await api.client.get(
            path, params=params, headers=credentials | {"X-Request-ID": request_id}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        items = body["items"] if isinstance(body, dict) else body
        reads = [r for r in await by_request_id(api.app, request_id) if r.action == "pii.read"]
        return items, reads

    for name in ("all", "case"):
        items, reads = await read(name, "court", court)
        [shown] = [h for h in items if h["id"] == handoff["id"]]
        assert shown["extension_reason"] == "需核实申请人电话13812345678"
        assert [(r.object_type, r.details["disputes"]) for r in reads] == [("dispute", [dispute["id"]])]

        items, reads = await read(name, "supervisor", api.auth("supervisor"))
        [masked] = [h for h in items if h["id"] == handoff["id"]]
        assert masked["extension_reason"] == "需核实申请人电话138****5678"
        assert reads == []

    items, reads = await read("pending", "court", court)
    assert [h["id"] for h in items] == [quiet["handoff"]["id"]]
    assert reads == []


async def test_a_steps_answer_shows_the_handoffs_text_as_the_lists_do(api: Api) -> None:
    """A step's answer is the handoff as it stands, its text shown as the lists and the dossier show
    it: a number in it in full to a caller with `pii:read`, and that answer recorded as a read of the
    case's personal data (个人信息保护法 Art. 55), a retry and a replay too; masked to one without it,
    with nothing recorded; an answer with no number in its text records nothing."""
    from tests.test_audit import by_request_id

    reason = "需核实申请人电话13812345678"
    dispute = await api.target_accepts(await api.drive("confirmation_pending"))
    handoff = (await api.handoff(dispute))["handoff"]

    async def answered(
        step: str, body: dict[str, Any], request_id: str, **kw: Any
    ) -> tuple[dict[str, Any], list[Any]]:
        headers = {"X-Request-ID": request_id, **kw.pop("headers", {})}
        response = await _post(api, handoff, step, body, headers=headers, **kw)
        assert response.status_code == 200, response.text
        reads = [r for r in await by_request_id(api.app, request_id) if r.action == "pii.read"]
        return response.json(), [(r.object_type, r.object_id, r.details["disputes"]) for r in reads]

    case = [("dispute", dispute["id"], [dispute["id"]])]
    extension = {"days": 5, "reason": reason}
    key = {"Idempotency-Key": "extend-with-a-number-0001"}
    # The court holds pii:read: shown in full, and recorded; the answer replayed, recorded again.
    shown, reads = await answered("extension", extension, "req-step-extend", headers=key)
    assert (shown["extension_reason"], reads) == (reason, case)
    replayed, reads = await answered("extension", extension, "req-step-replay", headers=key)
    assert (replayed["extension_reason"], reads) == (reason, case)
    # Sent again without the key, the extension recorded: nothing written, the number shown all the same.
    again, reads = await answered("extension", extension, "req-step-again")
    assert (again["extension_reason"], reads) == (reason, case)

    # A supervisor lacks pii:read: the same text masked in its answer, and nothing recorded.
    handoff, supervisor = again, api.auth("supervisor")
    asked, reads = await answered(
        "withdrawal", {"reason": "当事人申请撤回"}, "req-step-withdraw-masked", as_=supervisor
    )
    assert (asked["status"], asked["extension_reason"], reads) == (
        "accepted",
        "需核实申请人电话138****5678",
        [],
    )

    # The court's answer on a handoff whose text holds no number shows none, and records none.
    quiet = await api.drive("confirmation_pending")
    handoff = (await api.handoff(quiet))["handoff"]
    accepted, reads = await answered(
        "acceptance", {"decision": "accepted", "case_number": "(2026)浙0681民特9号"}, "req-step-quiet"
    )
    assert (accepted["status"], reads) == ("accepted", [])
