"""What a court or a commission answers a referral with: its own outcomes, and its own reasons for
not accepting it.

- An arbitration commission ends an arbitration with an award, a settlement before it, a withdrawal
  or a dismissal, never a judgment; a court ends a suit with a judgment, a ruling dismissing it, a
  民事调解书 or a withdrawal, never an award (劳动争议调解仲裁法 Art. 42, 46; 仲裁法 Art. 49-54;
  民事诉讼法 Art. 100, 148, 155-157).
- Each does not accept for the reasons its own law gives (劳动争议调解仲裁法 Art. 27, 29; 仲裁法
  Art. 21, 24; 民事诉讼法 Art. 122, 127), by a notice or ruling with a number: the labour applicant
  sues with the commission's 不予受理通知书 (劳动争议调解仲裁法 Art. 29).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.support import Api
from tests.test_handoffs import _confirm, _post, _problem, _reasons


async def _labour_referral(api: Api) -> dict[str, Any]:
    dispute = await api.drive("mediation_failed", category="labour")
    return await api.step(
        dispute, "refer_arbitration", {"commission_id": str(api.bodies["labour_commission"])}
    )


async def _referral(api: Api, kind: str) -> dict[str, Any]:
    """A case referred to the labour commission, the commercial commission or the court."""
    if kind == "labour_arbitration":
        return await _labour_referral(api)
    return await api.drive(
        "referred_arbitration" if kind == "commercial_arbitration" else "referred_litigation"
    )


async def _pending(api: Api, dispute: dict[str, Any]) -> dict[str, Any]:
    return dict((await api.handoff(dispute))["handoff"])


async def _accepted(api: Api, dispute: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    dispute = await api.target_accepts(dispute, case_number="（2026）受理1号")
    return dispute, await _pending(api, dispute)


def _outcome(outcome: str, api: Api) -> dict[str, Any]:
    return {
        "outcome": outcome,
        "reference_number": "（2026）浙0681民初1号",
        "decided_on": api.today.isoformat(),
    }


async def _unchanged(api: Api, dispute: dict[str, Any], handoff: dict[str, Any]) -> None:
    case = await api.get(dispute)
    assert (case["status"], case["version"]) == (dispute["status"], dispute["version"])
    again = await _pending(api, dispute)
    assert (again["status"], again["version"], again["decision"]) == (
        handoff["status"],
        handoff["version"],
        handoff["decision"],
    )


# ---- outcomes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "wrong", "right"),
    [
        ("labour_arbitration", "judgment", "award"),
        ("commercial_arbitration", "judgment", "award"),
        ("litigation", "award", "judgment"),
    ],
)
async def test_a_referral_ends_only_with_an_outcome_its_body_gives(
    api: Api, kind: str, wrong: str, right: str
) -> None:
    dispute, handoff = await _accepted(api, await _referral(api, kind))
    refused = _reasons(await _post(api, handoff, "outcome", _outcome(wrong, api)))
    reason = refused["outcome_not_of_this_body"]
    assert right in reason["message"] and wrong in reason["message"]
    assert reason["article"]
    await _unchanged(api, dispute, handoff)

    answered = await _post(api, handoff, "outcome", _outcome(right, api))
    assert answered.status_code == 200, answered.text
    assert (answered.json()["status"], answered.json()["decision"]["outcome"]) == ("concluded", right)
    assert (await api.get(dispute))["status"] == "closed"


@pytest.mark.parametrize(
    ("kind", "outcome", "says", "article", "dated"),
    [
        (
            "labour_arbitration",
            "award",
            "仲裁委员会须先登记受理",
            "劳动争议调解仲裁法 第二十九条",
            "裁决日期",
        ),
        ("commercial_arbitration", "award", "仲裁委员会须先登记受理", "仲裁法 第二十四条", "裁决日期"),
        ("litigation", "judgment", "人民法院须先登记受理 (立案)", "民事诉讼法 第一百二十六条", "裁判日期"),
    ],
)
async def test_an_outcome_before_acceptance_is_refused_under_the_referrals_own_law(
    api: Api, kind: str, outcome: str, says: str, article: str, dated: str
) -> None:
    """A referral's outcome waits for the body to record its acceptance, by the law of the referral:
    the judicial-confirmation rule (法释〔2011〕5号) governs no suit and no arbitration. And the date
    of what ends it is the date of an award (裁决) for a commission, of a judgment or ruling (裁判)
    for a court."""
    dispute = await _referral(api, kind)
    handoff = await _pending(api, dispute)
    early = _reasons(await _post(api, handoff, "outcome", _outcome(outcome, api)))["not_yet_accepted"]
    assert says in early["message"] and early["article"] == article
    assert "法释" not in early["article"] and "裁定" not in early["message"]
    await _unchanged(api, dispute, handoff)

    dispute, handoff = await _accepted(api, dispute)
    tomorrow = {**_outcome(outcome, api), "decided_on": (api.today + timedelta(days=1)).isoformat()}
    future = _reasons(await _post(api, handoff, "outcome", tomorrow))["decision_date_implausible"]
    assert future["message"].startswith(dated)


async def test_a_confirmation_ruled_before_acceptance_cites_the_confirmation_rule(api: Api) -> None:
    dispute = await api.drive("confirmation_pending")
    handoff = await _pending(api, dispute)
    early = _reasons(await _post(api, handoff, "decision", _confirm(api)))["not_yet_accepted"]
    assert early["article"] == "法释〔2011〕5号 第四条" and "裁定" in early["message"]

    _, handoff = await _accepted(api, dispute)
    tomorrow = {**_confirm(api), "ruled_on": (api.today + timedelta(days=1)).isoformat()}
    future = _reasons(await _post(api, handoff, "decision", tomorrow))["decision_date_implausible"]
    assert future["message"].startswith("裁定日期")


async def test_the_refusal_names_the_outcomes_in_english_too(api: Api) -> None:
    _, handoff = await _accepted(api, await _labour_referral(api))
    response = await _post(
        api, handoff, "outcome", _outcome("judgment", api), headers={"Accept-Language": "en"}
    )
    message = _reasons(response)["outcome_not_of_this_body"]["message"]
    assert "labour arbitration commission" in message
    assert all(o in message for o in ("award", "settlement", "withdrawal", "dismissed"))


@pytest.mark.parametrize("outcome", ["settlement", "withdrawal", "dismissed"])
async def test_outcomes_both_give_are_taken_from_either(api: Api, outcome: str) -> None:
    for kind in ("commercial_arbitration", "litigation"):
        dispute, handoff = await _accepted(api, await _referral(api, kind))
        answered = await _post(api, handoff, "outcome", _outcome(outcome, api))
        assert answered.status_code == 200, (kind, answered.text)
        assert (await api.get(dispute))["status"] == "closed"


async def test_the_case_action_refuses_an_outcome_of_another_body(api: Api) -> None:
    dispute, _ = await _accepted(api, await _referral(api, "litigation"))
    refused = await api.act(dispute, "record_outcome", _outcome("award", api), role="court")
    assert "outcome_not_of_this_body" in _reasons(refused)
    assert (await api.get(dispute))["status"] == "referred_litigation"


async def test_the_lifecycle_and_the_offered_actions_say_which_outcomes_each_body_gives(api: Api) -> None:
    described = (await api.client.get("/v1/lifecycle")).json()
    guards = {
        t["from"][0]: {g["name"]: g for g in t["guards"]}
        for t in described["transitions"]
        if t["action"] == "record_outcome"
    }
    assert "award" in guards["referred_arbitration"]["outcome_of_this_body"]["description"]
    assert "judgment" in guards["referred_litigation"]["outcome_of_this_body"]["description"]
    assert "民事诉讼法" in guards["referred_litigation"]["outcome_of_this_body"]["article"]

    dispute, _ = await _accepted(api, await _referral(api, "litigation"))
    offered = await api.client.get(
        f"/v1/disputes/{dispute['id']}/actions", headers=api.acting("court", dispute)
    )
    assert offered.status_code == 200, offered.text
    [row] = [a for a in offered.json() if a["action"] == "record_outcome"]
    requires = {g["name"]: g for g in row["requires"]}
    assert "judgment" in requires["outcome_of_this_body"]["description"]


# ---- not accepting a referral --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reason_code"),
    [
        ("labour_arbitration", "time_limit_passed"),
        ("labour_arbitration", "not_competent"),
        ("commercial_arbitration", "no_arbitration_agreement"),
        ("litigation", "arbitration_agreement"),
        ("litigation", "already_decided"),
    ],
)
async def test_a_referral_not_accepted_keeps_its_reason_note_and_notice_number(
    api: Api, kind: str, reason_code: str
) -> None:
    dispute = await _referral(api, kind)
    handoff = await _pending(api, dispute)
    refusal = {
        "decision": "not_accepted",
        "reason_code": reason_code,
        "notice_number": "诸劳人仲不字〔2026〕第7号",
        "note": "经审查不予受理",
    }
    response = await _post(api, handoff, "acceptance", refusal)
    assert response.status_code == 200, response.text
    answered = response.json()
    assert answered["status"] == "not_accepted"
    assert answered["decision"] == {
        "reason_code": reason_code,
        "notice_number": "诸劳人仲不字〔2026〕第7号",
        "note": "经审查不予受理",
    }
    assert answered["decided_on"] == api.today.isoformat()
    # Back with the center, for the road the notice leaves open: nothing is before the target now.
    case = await api.get(dispute)
    assert (case["status"], case["handoff"]["status"], case["handoff_target_id"]) == (
        "mediation_failed",
        "not_accepted",
        None,
    )
    entry = (await api.timeline(case))[-1]
    assert entry["action"] == "not_accept"
    assert (entry["payload"]["reason_code"], entry["payload"]["notice_number"]) == (
        reason_code,
        "诸劳人仲不字〔2026〕第7号",
    )


@pytest.mark.parametrize(
    ("kind", "reason_code"),
    [
        ("labour_arbitration", "personal_status"),  # a confirmation's reason
        ("labour_arbitration", "not_competent_court"),  # a court's
        ("commercial_arbitration", "time_limit_passed"),
        ("litigation", "time_limit_passed"),
        ("litigation", "materials_missing"),
        ("litigation", "no_arbitration_agreement"),
    ],
)
async def test_a_referral_is_not_refused_for_a_reason_of_another_body(
    api: Api, kind: str, reason_code: str
) -> None:
    dispute = await _referral(api, kind)
    handoff = await _pending(api, dispute)
    response = await _post(
        api, handoff, "acceptance", {"decision": "not_accepted", "reason_code": reason_code}
    )
    reason = _reasons(response)["reason_not_of_this_body"]
    assert reason_code in reason["message"] and "other" in reason["message"]
    await _unchanged(api, dispute, handoff)


async def test_a_confirmation_request_is_not_refused_for_a_referrals_reason(api: Api) -> None:
    dispute = await api.drive("confirmation_pending")
    handoff = await _pending(api, dispute)
    response = await _post(
        api, handoff, "acceptance", {"decision": "not_accepted", "reason_code": "time_limit_passed"}
    )
    assert "reason_not_of_this_body" in _reasons(response)
    await _unchanged(api, dispute, handoff)

    # Its own reasons go where they went, now with the ruling's number kept.
    response = await _post(
        api,
        handoff,
        "acceptance",
        {
            "decision": "not_accepted",
            "reason_code": "materials_missing",
            "notice_number": "（2026）浙0681民特3号",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["decision"]["notice_number"] == "（2026）浙0681民特3号"
    assert (await api.get(dispute))["status"] == "agreement_signed"


async def test_a_notice_number_goes_with_not_accepting_only(api: Api) -> None:
    dispute = await _labour_referral(api)
    handoff = await _pending(api, dispute)
    response = await _post(
        api,
        handoff,
        "acceptance",
        {"decision": "accepted", "case_number": "劳人仲案字1号", "notice_number": "劳人仲不字1号"},
    )
    problem = _problem(response, 422, "validation-error")
    assert [e["field"] for e in problem["errors"]] == ["notice_number"]
    await _unchanged(api, dispute, handoff)


async def test_a_referral_not_taken_up_is_no_outcome(api: Api) -> None:
    dispute = await _referral(api, "litigation")
    handoff = await _pending(api, dispute)
    refused = _reasons(await _post(api, handoff, "outcome", _outcome("dismissed", api)))
    assert refused["not_accepted_is_no_outcome"]["article"].startswith("民事诉讼法")
    await _unchanged(api, dispute, handoff)


async def test_the_suit_after_a_labour_commission_refused_carries_its_notice(api: Api) -> None:
    dispute = await _labour_referral(api)
    handoff = await _pending(api, dispute)
    refusal = {
        "decision": "not_accepted",
        "reason_code": "outside_scope",
        "notice_number": "诸劳人仲不字〔2026〕第9号",
    }
    assert (await _post(api, handoff, "acceptance", refusal)).status_code == 200

    # 劳动争议调解仲裁法 Art. 29: the applicant sues, with the commission's notice.
    sued = await api.step(await api.get(dispute), "refer_litigation")
    dossier = await api.handoff(sued)
    [earlier] = dossier["filing_pack"]["prior_arbitration"]
    assert (earlier["handoff_id"], earlier["kind"], earlier["status"]) == (
        handoff["id"],
        "labour_arbitration",
        "not_accepted",
    )
    assert earlier["commission"] == "劳动人事争议仲裁委员会"
    assert earlier["decision"]["notice_number"] == "诸劳人仲不字〔2026〕第9号"
    assert earlier["decision"]["reason_code"] == "outside_scope"


async def test_a_suit_with_no_arbitration_before_lists_none(api: Api) -> None:
    dispute = await api.drive("referred_litigation")
    assert (await api.handoff(dispute))["filing_pack"]["prior_arbitration"] == []


async def test_the_court_refusing_a_suit_leaves_the_case_to_go_where_its_ruling_points(api: Api) -> None:
    # 民事诉讼法 Art. 127(2): a written arbitration agreement; the parties go to arbitration.
    dispute = await _referral(api, "litigation")
    handoff = await _pending(api, dispute)
    refusal = {
        "decision": "not_accepted",
        "reason_code": "arbitration_agreement",
        "notice_number": "（2026）浙0681民初2号",
    }
    assert (await _post(api, handoff, "acceptance", refusal)).status_code == 200
    case = await api.get(dispute)
    arbitration = await api.step(case, "refer_arbitration")
    assert (arbitration["status"], arbitration["handoff"]["kind"]) == (
        "referred_arbitration",
        "commercial_arbitration",
    )
    kept = await api.client.get(f"/v1/handoffs/{handoff['id']}", headers=api.auth())
    assert kept.status_code == 200, kept.text
    assert kept.json()["handoff"]["decision"]["reason_code"] == "arbitration_agreement"


async def test_a_suit_once_accepted_is_dismissed_not_refused(api: Api) -> None:
    dispute, handoff = await _accepted(api, await _referral(api, "litigation"))
    refused = _reasons(
        await api.act(dispute, "not_accept", {"reason_code": "conditions_not_met"}, role="court")
    )
    assert "outcome" in refused["already_accepted"]["message"]
    await _unchanged(api, dispute, handoff)
