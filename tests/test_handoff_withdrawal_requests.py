"""A withdrawal once the court or commission has accepted is the target's to allow (民诉法解释 Art. 357;
民事诉讼法 Art. 148): the mediation side records the parties' request, the target rules and closes.
And a referral's dossier leaves out what the parties conceded in mediation (特邀调解规定 Art. 22)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from tests.support import Api
from tests.test_handoffs import _events, _post, _problem, _reasons

RULING = "(2026)浙0681民特5号"
REQUESTED = "cn.mediation.dispute.handoff_withdrawal_requested"


def _withdrawal_ruling(api: Api, **extra: Any) -> dict[str, Any]:
    return {"decision": "withdrawn", "ruling_number": RULING, "ruled_on": api.today.isoformat(), **extra}


async def _accepted_request(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    dispute = await api.target_accepts(await api.drive("confirmation_pending"))
    return dispute, (await api.handoff(dispute))["handoff"]


def _requests(handoff: dict[str, Any]) -> list[dict[str, Any]]:
    return [w for w in handoff["warnings"] if w["code"] == "withdrawal_requested"]


async def test_after_acceptance_the_bodys_withdrawal_is_a_request_the_court_rules_on(api: Api) -> None:
    dispute, handoff = await _accepted_request(api)
    court = api.auth("court", uuid.UUID(handoff["target_id"]))
    body = api.acting("body_mediator", dispute)
    applicant = next(p["id"] for p in dispute["parties"] if p["role"] == "applicant")

    asked = await _post(
        api, handoff, "withdrawal", {"reason": "申请人与被申请人自行和解", "party_id": applicant}, as_=body
    )
    assert asked.status_code == 200, asked.text
    assert asked.json()["status"] == "accepted"
    [request] = _requests(asked.json())
    assert (request["requested_on"], request["party_id"], request["article"]) == (
        api.today.isoformat(),
        applicant,
        "民诉法解释 第三百五十七条",
    )
    assert "请人民法院裁定是否准许" in request["message"]

    # Still before the court, which reads the case, the request and why, until it rules.
    case = await api.get(dispute)
    assert (case["status"], case["handoff_target_id"]) == ("confirmation_pending", handoff["target_id"])
    assert _requests(case["handoff"])
    read = await api.client.get(f"/v1/handoffs/{handoff['id']}", headers=court)
    assert read.status_code == 200, read.text
    assert _requests(read.json()["handoff"])
    [entry] = [e for e in read.json()["timeline"] if e["action"] == "request_withdrawal"]
    assert (entry["reason"], entry["to_status"]) == ("申请人与被申请人自行和解", "confirmation_pending")
    [event] = await _events(api, dispute, REQUESTED)
    assert (event["handoff_id"], event["party_id"]) == (handoff["id"], applicant)
    assert "reason" not in event

    again = await _post(api, asked.json(), "withdrawal", {"reason": "再次申请撤回"}, as_=body)
    assert _problem(again, 409, "conflict")["code"] == "withdrawal_already_requested"

    # Only the court closes it, by its ruling.
    ruled = await _post(api, asked.json(), "decision", _withdrawal_ruling(api))
    assert ruled.status_code == 200, ruled.text
    closed = ruled.json()
    assert (closed["status"], closed["decision"]["ruling_number"], closed["decided_on"]) == (
        "withdrawn",
        RULING,
        api.today.isoformat(),
    )
    assert _requests(closed) == []
    case = await api.get(dispute)
    assert (case["status"], case["handoff_target_id"]) == ("agreement_signed", None)
    assert case["outcome"]["withdraw_confirmation"]["party_id"] == applicant
    # Answered, the case has left the court: it reads how its handoff ended, not the case.
    left = await api.client.get(f"/v1/handoffs/{handoff['id']}", headers=court)
    assert left.status_code == 200, left.text
    assert (left.json()["withheld"], left.json()["case"]) == ("case_left_target", None)
    assert left.json()["handoff"]["status"] == "withdrawn"


async def test_the_case_action_after_acceptance_records_the_request_too(api: Api) -> None:
    dispute, handoff = await _accepted_request(api)
    as_court = {"ruling_number": RULING, "ruled_on": api.today.isoformat()}
    by_a_body = await api.act(dispute, "withdraw_confirmation", {"reason": "双方撤回", **as_court})
    [error] = _problem(by_a_body, 422, "validation-error")["errors"]
    assert (error["field"], error["code"]) == ("ruling_number", "ruling_by_target_only")

    response = await api.act(dispute, "withdraw_confirmation", role="clerk")
    assert response.status_code == 200, response.text
    case = response.json()
    assert (case["status"], case["version"]) == ("confirmation_pending", dispute["version"] + 1)
    assert _requests(case["handoff"])
    assert (await api.timeline(case))[-1]["action"] == "request_withdrawal"
    # The court's pending ruling is still answered (412 only for a stale ETag, not a lost request).
    handoff = (await api.handoff(case))["handoff"]
    assert handoff["status"] == "accepted"
    assert (await _post(api, handoff, "decision", _withdrawal_ruling(api))).status_code == 200


async def test_the_court_withdraws_an_accepted_application_by_its_ruling_only(api: Api) -> None:
    dispute, handoff = await _accepted_request(api)
    court = api.auth("court", uuid.UUID(handoff["target_id"]))
    missing = {"reason": "申请人未补交材料", "materials_missing": True}
    unruled = await _post(api, handoff, "withdrawal", missing, as_=court)
    assert _reasons(unruled)["withdrawal_ruling_missing"]["article"] == "民诉法解释 第三百五十七条"

    ruled = await _post(
        api,
        handoff,
        "withdrawal",
        {**missing, "ruling_number": RULING, "ruled_on": api.today.isoformat()},
        as_=court,
    )
    assert ruled.status_code == 200, ruled.text
    assert ruled.json()["status"] == "withdrawn"
    assert (await api.get(dispute))["status"] == "agreement_signed"


async def test_no_ruling_on_a_withdrawal_before_the_court_accepted(api: Api) -> None:
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    early = await _post(api, handoff, "decision", _withdrawal_ruling(api))
    assert _reasons(early)["not_yet_accepted"]["article"] == "法释〔2011〕5号 第四条"
    # Before acceptance the body's withdrawal takes the request back, as it always did.
    body = api.acting("body_mediator", dispute)
    back = await _post(api, handoff, "withdrawal", {"reason": "双方撤回申请"}, as_=body)
    assert back.status_code == 200, back.text
    assert back.json()["status"] == "withdrawn"


async def test_an_accepted_referral_takes_the_request_and_the_target_posts_the_withdrawal(api: Api) -> None:
    dispute = await api.target_accepts(await api.drive("referred_arbitration"))
    handoff = (await api.handoff(dispute))["handoff"]
    body = api.acting("body_admin", dispute)

    asked = await _post(api, handoff, "withdrawal", {"reason": "双方已自行和解"}, as_=body)
    assert asked.status_code == 200, asked.text
    [request] = _requests(asked.json())
    assert request["article"] == "仲裁法 第四十九条"
    assert (await api.get(dispute))["status"] == "referred_arbitration"

    outcome = {
        "outcome": "withdrawal",
        "reference_number": "绍仲裁字(2026)第12号",
        "decided_on": api.today.isoformat(),
    }
    closed = await _post(api, asked.json(), "outcome", outcome)
    assert closed.status_code == 200, closed.text
    assert (closed.json()["status"], _requests(closed.json())) == ("concluded", [])


async def test_a_referrals_dossier_leaves_out_the_minutes_and_notes_of_the_failed_mediation(api: Api) -> None:
    dispute = await api.drive("mediating")  # signed for at 10:00 on 1 June
    api.app.state.clock.at = datetime(2026, 6, 1, 4, tzinfo=UTC)
    mediator = api.acting("body_mediator", dispute)
    scheduled = await api.client.post(
        f"/v1/disputes/{dispute['id']}/sessions",
        json={"scheduled_at": "2026-06-01T10:30:00+08:00", "place": "枫源村调委会调解室"},
        headers=mediator,
    )
    assert scheduled.status_code == 201, scheduled.text
    conceded = "被申请人认可漏水系其装修所致, 愿赔偿八百元, 申请人坚持一千二百元。"
    recorded = await api.client.post(
        f"/v1/disputes/{dispute['id']}/sessions/{scheduled.json()['id']}/record",
        json={
            "held_at": "2026-06-01T10:30:00+08:00",
            "attendees": [
                {"party_id": p["id"], "name": p["name"], "capacity": "当事人"} for p in dispute["parties"]
            ],
            "minutes": conceded,
            "outcome": "continued",
        },
        headers={**mediator, "If-Match": scheduled.headers["etag"]},
    )
    assert recorded.status_code == 200, recorded.text
    dispute = await api.step(
        await api.get(dispute),
        "fail",
        {"reason_code": "positions_too_far_apart", "note": "被申请人只认可八百元"},
    )
    dispute = await api.step(dispute, "refer_litigation")

    dossier = await api.handoff(dispute)
    [sitting] = dossier["sessions"]
    assert (sitting["status"], sitting["outcome"], sitting["minutes"]) == ("held", "continued", None)
    assert conceded not in str(dossier) and "八百元" not in str(dossier)
    ended = next(e for e in dossier["timeline"] if e["to_status"] == "mediation_failed")
    assert ended["payload"]["reason_code"] == "positions_too_far_apart"
    assert dossier["case"]["outcome"]["fail"]["reason_code"] == "positions_too_far_apart"
    pack = dossier["filing_pack"]
    assert pack["termination"] == {"reason_code": "positions_too_far_apart"}
    assert (pack["claims"], pack["mediation_started_on"]) == ("请求判令被申请人赔偿损失。", "2026-06-01")
    assert [p for p in pack["claimants"]] and [p for p in pack["respondents"]]
    assert dossier["mediation_record_withheld"] is True
    # The body keeps its own record, in full.
    own = await api.client.get(f"/v1/disputes/{dispute['id']}/sessions", headers=mediator)
    assert own.status_code == 200 and conceded in own.text


async def test_a_confirmation_dossier_keeps_the_whole_record(api: Api) -> None:
    dispute = await api.drive("confirmation_pending")
    dossier = await api.handoff(dispute)
    assert dossier["mediation_record_withheld"] is False
    assert dossier["filing_pack"] is None
    assert date.fromisoformat(dossier["handoff"]["requested_on"]) == api.today
