"""A full path through the API for each way a case can end."""

from __future__ import annotations


async def _walk(api, dispute, *actions):
    """Take each action in turn; "court_accept" is the court or commission acknowledging acceptance."""
    for action in actions:
        if action == "court_accept":
            dispute = await api.target_accepts(dispute)
        else:
            dispute = await api.step(dispute, action)
    return dispute


async def _timeline_actions(api, dispute):
    return [e["action"] for e in await api.timeline(dispute)]


async def test_ends_performed_then_closed_and_archived(api):
    dispute = await api.intake()
    dispute = await _walk(
        api, dispute, "accept", "assign", "sign_for", "agree", "record_performance", "close", "archive"
    )
    assert dispute["status"] == "archived"
    assert dispute["closed_at"] is not None
    assert dispute["outcome"]["follow_up"]["follow_up"]["satisfaction"] == 5
    assert await _timeline_actions(api, dispute) == [
        "register",
        "accept",
        "assign",
        "sign_for",
        # The agreement drafted and signed by both parties, the mediator and the body's seal.
        "draft_agreement",
        *["sign_agreement"] * 4,
        "agree",
        "record_performance",
        "close",
        "archive",
    ]
    assert [e["seq"] for e in await api.timeline(dispute)] == list(range(1, 14))
    assert await api.outbox_count(dispute["id"]) == 13


async def test_ends_confirmed_by_court(api):
    dispute = await api.intake()
    dispute = await _walk(
        api,
        dispute,
        "accept",
        "assign",
        "sign_for",
        "agree",
        "request_confirmation",
        "court_accept",
        "confirm",
        "close",
    )
    assert dispute["status"] == "closed"
    handoff = dispute["handoff"]
    assert (handoff["kind"], handoff["status"]) == ("judicial_confirmation", "confirmed")
    assert handoff["target_case_number"] == "(2026)浙0681民特1号"
    assert handoff["decision"]["ruled_on"] == "2026-06-01"
    # 民事诉讼法 Art. 250: two years to apply for enforcement, counted from the last day the
    # agreement gives for performance (its one obligation is due on 16 June 2026).
    assert handoff["enforcement_deadline"] == "2028-06-16"
    assert dispute["handoff_target_id"] == str(api.bodies["court"])
    assert "acknowledge_handoff" in await _timeline_actions(api, dispute)


async def test_confirmation_rejected_then_remediated_and_confirmed(api):
    dispute = await api.intake()
    dispute = await _walk(
        api,
        dispute,
        "accept",
        "assign",
        "sign_for",
        "agree",
        "request_confirmation",
        "court_accept",
        "reject",
    )
    assert dispute["status"] == "confirmation_rejected"
    assert dispute["handoff"]["status"] == "rejected"
    rejected = dispute["agreement"]["id"]
    dispute = await api.step(dispute, "remediate")
    assert dispute["status"] == "mediating"
    assert dispute["agreement"] is None
    # The agreement the court refused cannot be recorded again: the parties sign a new version.
    refused = await api.act(dispute, "agree", {"agreement_id": rejected})
    assert refused.status_code == 422, refused.text
    assert [r["code"] for r in refused.json()["reasons"]] == ["agreement_superseded"]
    second = await api.signed_agreement(dispute, terms=["双方同意变更原协议的履行方式。"])
    assert second["number"] == 2 and second["id"] != rejected
    versions = (await api.client.get(f"/v1/disputes/{dispute['id']}/agreements")).json()
    assert [(a["id"], a["status"]) for a in versions] == [
        (rejected, "superseded"),
        (second["id"], "effective"),
    ]
    dispute = await api.step(dispute, "agree", {"agreement_id": second["id"]})
    assert dispute["agreement"]["id"] == second["id"]
    dispute = await _walk(api, dispute, "request_confirmation", "court_accept", "confirm")
    assert dispute["status"] == "confirmed"
    assert dispute["handoff"]["status"] == "confirmed"
    actions = await _timeline_actions(api, dispute)
    assert actions.count("agree") == 2 and actions.count("request_confirmation") == 2
    assert actions.count("acknowledge_handoff") == 2


async def test_failed_then_referred_to_arbitration(api):
    dispute = await api.intake(category="contract")
    dispute = await _walk(api, dispute, "accept", "assign", "sign_for", "fail", "refer_arbitration")
    assert dispute["status"] == "referred_arbitration"
    assert dispute["handoff"]["kind"] == "commercial_arbitration"
    outcome = {"outcome": "award", "reference_number": "绍仲裁字(2026)第8号", "decided_on": "2026-06-01"}
    # The commission decides only once it has accepted the case under its own number.
    refused = await api.act(dispute, "record_outcome", outcome, role="arbitration")
    assert refused.status_code == 422, refused.text
    assert [r["code"] for r in refused.json()["reasons"]] == ["not_yet_accepted"]
    dispute = await api.target_accepts(dispute, case_number="绍仲案字(2026)第8号")
    assert dispute["handoff"]["target_case_number"] == "绍仲案字(2026)第8号"
    dispute = await api.step(dispute, "record_outcome", outcome, role="arbitration")
    assert dispute["status"] == "closed"
    assert dispute["handoff"]["status"] == "concluded"


async def test_failed_then_referred_to_litigation(api):
    dispute = await api.intake()
    dispute = await _walk(
        api,
        dispute,
        "accept",
        "assign",
        "sign_for",
        "fail",
        "refer_litigation",
        "court_accept",
        "record_outcome",
    )
    assert dispute["status"] == "closed"
    assert dispute["handoff"]["kind"] == "litigation"
    assert dispute["handoff"]["status"] == "concluded"
    assert dispute["handoff"]["claims"]
    assert dispute["outcome"]["record_outcome"]["outcome"] == "judgment"


async def test_withdrawn_then_closed(api):
    dispute = await api.intake()
    dispute = await _walk(api, dispute, "accept", "assign", "sign_for", "withdraw", "close")
    assert dispute["status"] == "closed"
    assert dispute["outcome"]["withdraw"]["reason"] == "申请人撤回申请"


async def test_declined_with_advice(api):
    dispute = await api.intake()
    dispute = await api.step(dispute, "decline")
    assert dispute["status"] == "declined"
    assert dispute["outcome"]["decline"]["advice"] == "police"
    assert dispute["closed_at"] is not None
    # Declined is final: nothing more can happen.
    response = await api.act(dispute, "accept")
    assert response.status_code == 409


async def test_closed_then_archived_requires_follow_up(api):
    dispute = await api.drive("closed")
    response = await api.act(dispute, "archive", {})
    assert response.status_code == 422
    assert [r["code"] for r in response.json()["reasons"]] == ["follow_up_visit_missing"]
    dispute = await api.step(dispute, "archive", {"visit_impossible_reason": "当事人电话停机, 三次上门未遇"})
    assert dispute["status"] == "archived"


async def test_return_then_reassign_and_escalate(api):
    dispute = await api.drive("assigned")
    dispute = await api.step(dispute, "return")
    assert dispute["status"] == "accepted" and dispute["body_id"] is None
    dispute = await _walk(api, dispute, "assign", "sign_for")
    assert dispute["tier"] == "village"
    dispute = await api.step(dispute, "escalate")
    assert (dispute["status"], dispute["tier"]) == ("accepted", "town")
    history = [(e["action"], e["from_status"], e["to_status"]) for e in await api.timeline(dispute)]
    assert ("return", "assigned", "accepted") in history and ("escalate", "mediating", "accepted") in history
