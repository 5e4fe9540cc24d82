"""The legal rules the lifecycle encodes, one test per rule."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from mediation.core.legal_time import period_end


def _reasons(response):
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "/problems/guard-failed"
    return {r["code"]: r for r in problem["reasons"]}


async def test_agreement_not_signed_by_everyone_is_refused_with_reasons(api):
    dispute = await api.drive("mediating")
    agreement = await api.draft_agreement(dispute)
    applicant = next(p for p in dispute["parties"] if p["role"] == "applicant")
    signed = await api.sign(dispute, agreement, signer="party", party_id=applicant["id"], method="in_person")
    assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "draft"
    payload = {"agreement_id": agreement["id"]}
    reasons = _reasons(await api.act(dispute, "agree", payload))
    unsigned = reasons["agreement_unsigned"]["message"]
    # Who is still missing: the other party, the mediator and the body's seal; not who signed.
    assert "李四" in unsigned and "张三" not in unsigned
    assert agreement["mediator_name"] in unsigned
    assert agreement["body_name"] in unsigned
    assert reasons["agreement_unsigned"]["article"] == "人民调解法 第二十九条"
    assert (await api.get(dispute))["status"] == "mediating"
    # Up to mediating, then the draft and the one signature: the refused `agree` added nothing.
    assert await api.timeline_count(dispute["id"]) == 6


async def test_oral_agreement_needs_the_mediators_record(api):
    dispute = await api.drive("mediating")
    agreement = await api.draft_agreement(dispute, form="oral")
    assert [w["signer"] for w in agreement["awaiting_signatures"]] == ["mediator"]
    payload = {"agreement_id": agreement["id"]}
    reasons = _reasons(await api.act(dispute, "agree", payload))
    assert reasons["oral_agreement_unrecorded"]["article"] == "人民调解法 第二十八条"
    recorded = await api.sign(dispute, agreement, signer="mediator", method="recorded")
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["status"] == "effective"
    signed = await api.step(dispute, "agree", payload)
    assert signed["status"] == "agreement_signed"
    # The court confirms a written agreement only (民诉法解释 Art. 353).
    refused = _reasons(await api.act(signed, "request_confirmation"))
    assert refused["oral_agreement"]["article"] == "民诉法解释 第三百五十四条"
    assert (await api.get(dispute))["status"] == "agreement_signed"


async def _agreement_effective_on(api, clock, effective: date):
    """A case mediated for a few days whose agreement's last signature, the body's seal, falls on
    `effective`: that day, not the drafting or the first signatures, is when it takes effect."""
    clock.at = datetime(effective.year, effective.month, effective.day, 2, tzinfo=UTC) - timedelta(days=5)
    dispute = await api.drive("mediating")
    agreement = await api.draft_agreement(dispute)
    clock.at += timedelta(days=4)
    for waiting in agreement["awaiting_signatures"][:-1]:
        signature = {"signer": waiting["signer"], "method": "in_person"}
        if waiting["party_id"] is not None:
            signature["party_id"] = waiting["party_id"]
        response = await api.sign(dispute, agreement, **signature)
        assert response.status_code == 200, response.text
        agreement = response.json()
    assert [w["signer"] for w in agreement["awaiting_signatures"]] == ["body_seal"]
    clock.at += timedelta(days=1)
    sealed = await api.sign(dispute, agreement, signer="body_seal", method="seal")
    assert sealed.status_code == 200, sealed.text
    assert sealed.json()["effective_on"] == effective.isoformat()
    dispute = await api.step(dispute, "agree", {"agreement_id": agreement["id"]})
    assert dispute["agreement_effective_on"] == effective.isoformat()
    return dispute


async def test_confirmation_applied_on_day_30_is_accepted(api, clock):
    # Agreement effective Mon 2 March 2026; day 30 is Wed 1 April, a working day.
    dispute = await _agreement_effective_on(api, clock, date(2026, 3, 2))
    clock.at += timedelta(days=30)
    requested = await api.step(dispute, "request_confirmation")
    assert requested["status"] == "confirmation_pending"
    assert requested["handoff"]["requested_on"] == "2026-04-01"


async def test_confirmation_refused_on_day_31(api, clock):
    dispute = await _agreement_effective_on(api, clock, date(2026, 3, 2))
    clock.at += timedelta(days=31)
    reasons = _reasons(await api.act(dispute, "request_confirmation"))
    assert "2026-04-01" in reasons["confirmation_window_closed"]["message"]
    assert "民事诉讼法 第二百零五条" in reasons["confirmation_window_closed"]["article"]
    assert (await api.get(dispute))["status"] == "agreement_signed"


async def test_confirmation_window_ending_in_a_holiday_runs_to_the_next_working_day(api, clock):
    # Effective 1 September 2026: day 30 is 1 October (National Day, holiday 1-7 October). 民诉法
    # Art. 85 carries the period to the first working day after the holiday: Thursday 8 October.
    dispute = await _agreement_effective_on(api, clock, date(2026, 9, 1))
    clock.at = datetime(2026, 10, 9, 2, tzinfo=UTC)
    assert (
        "2026-10-08"
        in _reasons(await api.act(dispute, "request_confirmation"))["confirmation_window_closed"]["message"]
    )
    clock.at = datetime(2026, 10, 8, 2, tzinfo=UTC)
    requested = await api.step(dispute, "request_confirmation")
    assert requested["status"] == "confirmation_pending"
    assert requested["handoff"]["requested_on"] == "2026-10-08"


async def test_confirmation_needs_both_sides(api):
    dispute = await api.drive("agreement_signed")
    payload = api.payload("request_confirmation", dispute)
    payload["applicant_party_ids"] = [dispute["parties"][0]["id"]]
    reasons = _reasons(await api.act(dispute, "request_confirmation", payload))
    assert "李四" in reasons["not_joint_application"]["message"]


async def test_confirmation_refused_for_personal_status(api):
    dispute = await api.drive(
        "agreement_signed", category="marriage_family", subject_matters=["personal_status"]
    )
    reasons = _reasons(await api.act(dispute, "request_confirmation"))
    assert reasons["not_confirmable"]["article"] == "民诉法解释 第三百五十五条"


async def test_confirmation_must_go_to_a_court(api):
    dispute = await api.drive("agreement_signed")
    payload = api.payload("request_confirmation", dispute)
    payload["court_id"] = str(api.bodies["labour_commission"])
    assert "target_wrong_kind" in _reasons(await api.act(dispute, "request_confirmation", payload))


async def test_arbitration_refused_for_marriage_and_family(api):
    dispute = await api.drive("mediation_failed", category="marriage_family")
    reasons = _reasons(await api.act(dispute, "refer_arbitration"))
    assert reasons["not_arbitrable"]["article"] == "仲裁法 第三条"


async def test_arbitration_refused_for_inheritance(api):
    dispute = await api.drive("mediation_failed", category="other", subject_matters=["inheritance"])
    reasons = _reasons(await api.act(dispute, "refer_arbitration"))
    assert "继承" in reasons["not_arbitrable"]["message"]
    assert (await api.get(dispute))["status"] == "mediation_failed"


async def test_commercial_arbitration_needs_an_arbitration_agreement(api):
    dispute = await api.drive("mediation_failed", category="contract")
    payload = {"commission_id": str(api.bodies["commercial_commission"])}
    reasons = _reasons(await api.act(dispute, "refer_arbitration", payload))
    assert "仲裁法 第四条" in reasons["no_arbitration_agreement"]["article"]


async def test_labour_dispute_goes_to_labour_commission(api):
    dispute = await api.drive("mediation_failed", category="labour")
    assert "wrong_commission" in _reasons(await api.act(dispute, "refer_arbitration"))
    moved = await api.step(
        dispute, "refer_arbitration", {"commission_id": str(api.bodies["labour_commission"])}
    )
    assert moved["status"] == "referred_arbitration"


async def test_labour_arbitration_possible_after_15_days_without_agreement(api, clock):
    """Open from the day after the fifteen days' last day, the mediation clock's (which moves off a
    day off, 民法典 Art. 203), not on it."""
    dispute = await api.drive("mediating", category="labour")
    assert dispute["clock"]["name"] == "mediation"
    last_day = date.fromisoformat(dispute["clock"]["due_on"])
    payload = {"commission_id": str(api.bodies["labour_commission"])}
    clock.at += timedelta(days=14)
    assert "labour_window_open" in _reasons(await api.act(dispute, "refer_arbitration", payload))
    clock.at += timedelta(days=(last_day - clock.today()).days)
    assert clock.today() == last_day
    assert "labour_window_open" in _reasons(await api.act(dispute, "refer_arbitration", payload))
    clock.at += timedelta(days=1)
    assert (await api.step(dispute, "refer_arbitration", payload))["status"] == "referred_arbitration"


async def test_the_labour_window_counts_from_the_first_receipt_not_from_a_transfer(api, clock):
    """Art. 14 counts from the day a mediation organisation received the application. A transfer
    to another body starts no new fifteen days: arbitration opens as it would have."""
    dispute = await api.drive("mediating", category="labour")
    last_day = date.fromisoformat(dispute["clock"]["due_on"])
    payload = {"commission_id": str(api.bodies["labour_commission"])}
    clock.at += timedelta(days=10)
    dispute = await api.step(dispute, "transfer", {"reason": "需由镇调委会调处"})
    dispute = await api.step(
        dispute, "assign", {"body_id": str(api.bodies["town"]), "override_reason": "转由镇调委会调解"}
    )
    dispute = await api.step(dispute, "sign_for")
    assert dispute["status"] == "mediating"
    clock.at += timedelta(days=(last_day - clock.today()).days)
    assert "labour_window_open" in _reasons(await api.act(dispute, "refer_arbitration", payload))
    clock.at += timedelta(days=1)
    assert (await api.step(dispute, "refer_arbitration", payload))["status"] == "referred_arbitration"


async def test_a_labour_agreement_not_performed_in_time_goes_to_arbitration(api, clock):
    """劳动争议调解仲裁法 Art. 15: after an agreement, arbitration lies once a party has not
    performed it within its period; any other dispute's agreement goes to court (人民调解法 Art. 32)."""
    labour = {"commission_id": str(api.bodies["labour_commission"])}
    dispute = await api.drive("agreement_signed", category="labour")
    reasons = _reasons(await api.act(dispute, "refer_arbitration", labour))
    assert reasons["agreement_not_breached"]["article"] == "劳动争议调解仲裁法 第十五条"
    clock.at += timedelta(days=16)  # the obligation was due in 15 days
    assert (await api.step(dispute, "refer_arbitration", labour))["status"] == "referred_arbitration"

    other = await api.drive("agreement_signed", category="contract")
    clock.at += timedelta(days=16)
    payload = {"commission_id": str(api.bodies["commercial_commission"])}
    reasons = _reasons(await api.act(other, "refer_arbitration", payload))
    assert reasons["agreement_goes_to_court"]["article"] == "人民调解法 第三十二条"


async def test_a_labour_dispute_is_arbitrated_before_any_suit(api, clock):
    """劳动争议调解仲裁法 Art. 5: mediation failed, the labour dispute goes to arbitration, not to
    court; an agreement not performed in its period may still go to court for a payment order
    (Art. 16), and only then."""
    failed = await api.drive("mediation_failed", category="labour")
    reasons = _reasons(await api.act(failed, "refer_litigation"))
    assert reasons["labour_arbitration_first"]["article"] == "劳动争议调解仲裁法 第五条"
    assert (await api.get(failed))["status"] == "mediation_failed"
    signed = await api.drive("agreement_signed", category="labour")
    reasons = _reasons(await api.act(signed, "refer_litigation"))
    assert reasons["agreement_not_breached"]["article"] == "劳动争议调解仲裁法 第十六条"
    clock.at += timedelta(days=16)  # the obligation was due in 15 days
    assert (await api.step(signed, "refer_litigation"))["status"] == "referred_litigation"


async def _record_consent(api, dispute, party, decision):
    response = await api.client.post(
        f"/v1/disputes/{dispute['id']}/parties/{party['id']}/consent",
        json={"decision": decision},
        headers=api.headers("clerk", **{"If-Match": f'"{dispute["version"]}"'}),
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_partys_refusal_stops_mediation(api):
    dispute = await api.drive("mediating")
    dispute = await _record_consent(api, dispute, dispute["parties"][1], "refused")
    # No agreement was reached (one in effect would bind the parties: it is recorded, not failed).
    reasons = _reasons(await api.act(dispute, "agree", {"agreement_id": str(uuid.uuid4())}))
    assert reasons["party_refused_mediation"]["article"] == "人民调解法 第十七条"
    # What remains is to end mediation, with the refusal as the reason.
    ended = await api.step(dispute, "fail", {"reason_code": "party_refused"})
    assert ended["status"] == "mediation_failed"
    assert (await api.timeline(ended))[-2]["action"] == "record_consent"


async def test_court_delegated_mediation_needs_consent_of_both_sides(api):
    dispute = await api.drive(
        "assigned", channel="court_delegated", inviting_court_id=str(api.bodies["court"])
    )
    assert "consent_missing" in _reasons(await api.act(dispute, "sign_for"))
    # The parties still to consent are listed as each language lists names.
    names = [p["name"] for p in dispute["parties"]]
    for language, listed in (("zh", "、".join(names)), ("en", ", ".join(names))):
        refused = await api.act(dispute, "sign_for", headers={"Accept-Language": language})
        assert _reasons(refused)["consent_missing"]["message"].endswith(": " + listed), refused.text
    for party in dispute["parties"]:
        dispute = await _record_consent(api, dispute, party, "given")
    assert (await api.step(dispute, "sign_for"))["status"] == "mediating"


async def test_assignment_to_a_suspended_body_is_refused(api):
    dispute = await api.drive("accepted")
    response = await api.act(dispute, "assign", {"body_id": str(api.bodies["suspended"])})
    assert "target_inactive" in _reasons(response)
    response = await api.act(dispute, "assign", {"body_id": str(api.bodies["court"])})
    assert "target_wrong_kind" in _reasons(response)


async def test_escalation_stops_at_the_top_tier(api):
    dispute = await api.drive("mediating", severity="serious")  # starts at county
    dispute = await api.step(dispute, "escalate")
    assert dispute["tier"] == "city"
    # No city body exists: only a supervisor sends an escalated case below its tier.
    assert "below_escalated_tier" in _reasons(await api.act(dispute, "assign"))
    dispute = await api.step(dispute, "assign", headers=api.auth("supervisor"))
    dispute = await api.step(dispute, "sign_for")
    assert "top_tier" in _reasons(await api.act(dispute, "escalate"))


def test_period_end_counts_from_the_next_day_and_skips_rest_days():
    assert period_end(date(2026, 3, 2), 30).last_day == date(2026, 4, 1)
    ends = period_end(date(2026, 9, 1), 30)  # 1 Oct: National Day holiday, 1-7 October
    assert (ends.last_day, ends.extended, ends.calendar_known) == (date(2026, 10, 8), True, True)
    # Saturday 14 Feb 2026 is a make-up working day (调休): a period ending then is not extended.
    assert period_end(date(2026, 1, 15), 30).last_day == date(2026, 2, 14)


def test_period_end_beyond_the_published_holiday_schedule_counts_weekends_only():
    ends = period_end(date(2026, 12, 4), 30)  # 3 Jan 2027 is a Sunday; 2027 is not yet published
    assert ends.last_day == date(2027, 1, 4)
    assert ends.calendar_known is False
