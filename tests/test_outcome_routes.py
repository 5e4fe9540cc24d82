"""Where a case goes when a court or an arbitration commission does not take it up.

- A court's non-acceptance of a confirmation request for missing materials counts as withdrawal
  (民诉法解释 Art. 357), and one by a court that is not the competent one rules nothing on the
  agreement (民事诉讼法 Art. 205): the agreement still binds, its performance is followed up, and
  the parties may apply again within the window (人民调解法 Art. 31, 33). Any other non-acceptance
  ends in `confirmation_rejected`.
- A labour arbitration commission that does not accept, or lets its period to accept (or to award)
  pass undecided, leaves the applicant free to sue (劳动争议调解仲裁法 Art. 29, 43).
- A case whose confirmation was refused and which the parties take no further is closed, with the
  reason, and archived (人民调解法 Art. 27).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from mediation.disputes.models import Dispute
from tests.support import Api
from tests.test_handoffs import _problem, _reasons


async def _answer(api: Api, handoff: dict[str, Any], step: str, body: dict[str, Any]) -> httpx.Response:
    role = "court" if handoff["kind"] in ("judicial_confirmation", "litigation") else "arbitration"
    return await api.client.post(
        f"/v1/handoffs/{handoff['id']}/{step}",
        json=body,
        headers={**api.auth(role, uuid.UUID(handoff["target_id"])), "If-Match": f'"{handoff["version"]}"'},
    )


def _past(api: Api, last_day: str) -> None:
    """Move the clock to the day after `last_day`."""
    clock = api.app.state.clock
    clock.at += timedelta(days=(date.fromisoformat(last_day) - clock.today()).days + 1)


# ---- judicial confirmation not accepted -------------------------------------------------------------


async def _not_accepted(api: Api, reason_code: str) -> tuple[dict[str, Any], dict[str, Any]]:
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    response = await _answer(
        api, handoff, "acceptance", {"decision": "not_accepted", "reason_code": reason_code}
    )
    assert response.status_code == 200, response.text
    return await api.get(dispute), response.json()


async def test_a_request_not_accepted_for_missing_materials_counts_as_withdrawn(api: Api) -> None:
    case, answered = await _not_accepted(api, "materials_missing")
    # The court's answer stands on its handoff as given; the case is back where a withdrawal leaves it.
    assert (answered["status"], answered["decision"]["reason_code"]) == ("not_accepted", "materials_missing")
    assert (case["status"], case["handoff"]["status"]) == ("agreement_signed", "not_accepted")
    assert case["handoff_target_id"] is None
    entry = (await api.timeline(case))[-1]
    assert (entry["action"], entry["from_status"], entry["to_status"]) == (
        "not_accept",
        "confirmation_pending",
        "agreement_signed",
    )
    assert "按撤回申请处理" in entry["reason"] and "民诉法解释 第三百五十七条" in entry["reason"]

    # Within the 30 days the parties supply the materials and apply again.
    again = await api.step(case, "request_confirmation")
    assert again["status"] == "confirmation_pending"
    second = (await api.handoff(again))["handoff"]
    assert (second["id"] != answered["id"], second["status"]) == (True, "pending")


async def test_an_agreement_whose_request_was_not_accepted_is_followed_up_and_performed(api: Api) -> None:
    case, _ = await _not_accepted(api, "materials_missing")
    listed = await api.client.get(
        f"/v1/disputes/{case['id']}/agreements", headers=api.acting("body_mediator", case)
    )
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"] if isinstance(listed.json(), dict) else listed.json()
    effective = next(a for a in items if a["status"] == "effective")
    for obligation in effective["obligations"]:
        # Each record moves the case's version on: the next one is made on the case as it now is.
        current = await api.get(case)
        performed = await api.client.post(
            f"/v1/disputes/{case['id']}/obligations/{obligation['id']}/performance",
            json={"performed_on": api.today.isoformat()},
            headers={**api.acting("body_mediator", case), "If-Match": f'"{current["version"]}"'},
        )
        assert performed.status_code == 200, performed.text
    assert (await api.get(case))["status"] == "performed"


async def test_a_court_not_competent_leaves_the_parties_free_to_apply_to_the_competent_one(api: Api) -> None:
    # Posted as the case's action, the same answer takes the same road.
    dispute = await api.drive("confirmation_pending")
    case = await api.step(
        dispute, "not_accept", {"reason_code": "not_competent_court", "note": "标的物不在本院辖区"}
    )
    assert (case["status"], case["handoff"]["status"]) == ("agreement_signed", "not_accepted")
    entry = (await api.timeline(case))[-1]
    assert entry["to_status"] == "agreement_signed"
    assert "民事诉讼法 第二百零五条" in entry["reason"] and "标的物不在本院辖区" in entry["reason"]
    assert (await api.step(case, "request_confirmation"))["status"] == "confirmation_pending"


@pytest.mark.parametrize(
    "reason_code",
    ["outside_court_scope", "personal_status", "special_procedure", "ownership_confirmation", "other"],
)
async def test_any_other_non_acceptance_ends_in_confirmation_rejected(api: Api, reason_code: str) -> None:
    case, answered = await _not_accepted(api, reason_code)
    assert answered["status"] == "not_accepted"
    assert case["status"] == "confirmation_rejected"
    assert (await api.timeline(case))[-1]["reason"] == reason_code


async def test_the_lifecycle_names_the_answers_that_count_as_withdrawal(client: httpx.AsyncClient) -> None:
    described = (await client.get("/v1/lifecycle")).json()
    rows = [
        t
        for t in described["transitions"]
        if t["action"] == "not_accept" and "confirmation_pending" in t["from"]
    ]
    assert {(t["to"], (t["when"] or {}).get("name")) for t in rows} == {
        ("confirmation_rejected", None),
        ("agreement_signed", "as_withdrawn"),
    }
    assert "confirmation_pending --> agreement_signed: not_accept" in described["mermaid"]


async def test_the_courts_actions_on_a_pending_request_say_which_answers_go_where(api: Api) -> None:
    dispute = await api.drive("confirmation_pending")
    listed = await api.client.get(
        f"/v1/disputes/{dispute['id']}/actions", headers=api.acting("court", dispute)
    )
    assert listed.status_code == 200, listed.text
    rows = [a for a in listed.json() if a["action"] == "not_accept"]
    assert {(a["to"], (a["when"] or {}).get("name")) for a in rows} == {
        ("confirmation_rejected", None),
        ("agreement_signed", "as_withdrawn"),
    }
    [withdrawn] = [a for a in rows if a["when"]]
    assert "materials_missing" in withdrawn["when"]["description"]
    assert withdrawn["when"]["article"] == "民诉法解释 第三百五十七条; 民事诉讼法 第二百零五条"


# ---- labour arbitration not accepted or not decided in time ----------------------------------------


async def _labour_referral(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    dispute = await api.drive("mediation_failed", category="labour")
    dispute = await api.step(
        dispute, "refer_arbitration", {"commission_id": str(api.bodies["labour_commission"])}
    )
    return dispute, (await api.handoff(dispute))["handoff"]


async def test_a_labour_commission_that_does_not_accept_leaves_the_road_to_court_open(api: Api) -> None:
    dispute, handoff = await _labour_referral(api)
    response = await _answer(api, handoff, "acceptance", {"decision": "not_accepted", "reason_code": "other"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "not_accepted"
    case = await api.get(dispute)
    assert (case["status"], case["handoff"]["status"], case["handoff_target_id"]) == (
        "mediation_failed",
        "not_accepted",
        None,
    )
    assert (await api.timeline(case))[-1]["action"] == "not_accept"
    async with api.app.state.db.reader() as session:
        row = await session.get(Dispute, uuid.UUID(case["id"]))
        assert row is not None
        # No confirmation request was decided: the statistics count none.
        assert (row.confirmation_result, row.confirmation_decided_at) == (None, None)

    sued = await api.step(case, "refer_litigation")
    assert (sued["status"], sued["handoff"]["kind"]) == ("referred_litigation", "litigation")


async def test_a_labour_non_acceptance_is_not_posted_as_an_outcome_that_closes_the_case(api: Api) -> None:
    dispute, handoff = await _labour_referral(api)
    dismissed = {"outcome": "dismissed", "reference_number": "不予受理", "decided_on": api.today.isoformat()}
    reasons = _reasons(await _answer(api, handoff, "outcome", dismissed))
    assert reasons["labour_not_accepted"]["article"] == "劳动争议调解仲裁法 第二十九条"
    assert (await api.get(dispute))["status"] == "referred_arbitration"


async def test_a_labour_commission_past_its_five_days_undecided_leaves_the_road_to_court_open(
    api: Api,
) -> None:
    dispute, handoff = await _labour_referral(api)
    early = _reasons(await api.act(dispute, "refer_litigation"))
    assert early["arbitration_period_running"]["article"] == "劳动争议调解仲裁法 第二十九条"
    assert "labour_arbitration_first" not in early

    _past(api, handoff["accept_due_on"])
    sued = await api.step(await api.get(dispute), "refer_litigation")
    assert (sued["status"], sued["handoff"]["kind"]) == ("referred_litigation", "litigation")
    lapsed = await api.client.get(f"/v1/handoffs/{handoff['id']}", headers=api.auth())
    assert lapsed.status_code == 200, lapsed.text
    assert lapsed.json()["handoff"]["status"] == "lapsed"
    assert "第二十九条" in lapsed.json()["handoff"]["decision"]["article"]

    # The commission's late answer settles nothing.
    late = await _answer(
        api, lapsed.json()["handoff"], "acceptance", {"decision": "accepted", "case_number": "劳人仲案字1号"}
    )
    assert _problem(late, 409, "conflict")["code"] == "handoff_settled"
    assert (await api.get(dispute))["status"] == "referred_litigation"


async def test_a_labour_tribunal_past_its_period_to_award_leaves_the_road_to_court_open(api: Api) -> None:
    dispute, _ = await _labour_referral(api)
    dispute = await api.target_accepts(dispute, case_number="劳人仲案字2号")
    assert "arbitration_period_running" in _reasons(await api.act(dispute, "refer_litigation"))
    _past(api, dispute["handoff"]["decide_due_on"])
    sued = await api.step(await api.get(dispute), "refer_litigation")
    assert sued["status"] == "referred_litigation"


async def test_another_commission_that_does_not_accept_sends_the_case_back_too(api: Api) -> None:
    dispute = await api.drive("referred_arbitration")  # the commercial commission
    handoff = (await api.handoff(dispute))["handoff"]
    assert _reasons(await api.act(dispute, "refer_litigation")).keys() >= {"arbitration_under_way"}
    # A court's reason for refusing a confirmation is not the commission's (仲裁法 Art. 24).
    refused = _reasons(await api.act(dispute, "not_accept", role="arbitration"))
    assert "reason_not_of_this_body" in refused
    response = await _answer(
        api, handoff, "acceptance", {"decision": "not_accepted", "reason_code": "no_arbitration_agreement"}
    )
    assert response.status_code == 200, response.text
    # Without a valid arbitration agreement the parties may sue: the case is back with the center.
    case = await api.get(dispute)
    assert (case["status"], case["handoff"]["status"]) == ("mediation_failed", "not_accepted")
    assert (await api.step(case, "refer_litigation"))["status"] == "referred_litigation"


# ---- closing a case whose confirmation was refused ---------------------------------------------------


async def test_a_refused_case_the_parties_take_no_further_is_closed_with_a_reason_and_archived(
    api: Api,
) -> None:
    case = await api.drive("confirmation_rejected")
    assert "reason_required" in _reasons(await api.act(case, "close", role="body_mediator"))
    _problem(await api.act(case, "close", {"reason": "当事人不再申请"}, role="court"), 403, "forbidden")

    closed = await api.step(case, "close", {"reason": "驳回后当事人表示不再调解或起诉"}, role="body_mediator")
    assert closed["status"] == "closed"
    entry = (await api.timeline(closed))[-1]
    assert (entry["from_status"], entry["reason"]) == (
        "confirmation_rejected",
        "驳回后当事人表示不再调解或起诉",
    )
    archived = await api.step(closed, "archive", role="clerk")
    assert archived["status"] == "archived"
