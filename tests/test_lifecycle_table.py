"""Every (state, action) pair: allowed ones reach the table's target, all others answer 409 and change nothing."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import pytest

from mediation.core.principal import Role
from mediation.disputes.lifecycle import (
    NOT_ACCEPTED_AS_WITHDRAWN,
    TRANSITIONS,
    Action,
    Status,
    find_transition,
    transitions_from,
)

# Pairs whose guards need a particular case to pass: how to set that case up.
SPECIAL = {
    # 劳动争议调解仲裁法 Art. 14: a labour case may leave mediation for arbitration after 15 days.
    (Status.mediating, Action.refer_arbitration): "labour_after_15_days",
    # Art. 15: after an agreement, a labour case goes to arbitration once it is not performed in
    # time; after a refused confirmation, it does so too (a labour dispute is arbitrated, Art. 5).
    (Status.agreement_signed, Action.refer_arbitration): "labour_not_performed",
    (Status.confirmation_rejected, Action.refer_arbitration): "labour",
    # 法释〔2011〕5号 Art. 4: the court rules only on a request it accepted with its case number.
    (Status.confirmation_pending, Action.confirm): "target_accepted",
    (Status.confirmation_pending, Action.reject): "target_accepted",
    (Status.referred_arbitration, Action.record_outcome): "target_accepted",
    (Status.referred_litigation, Action.record_outcome): "target_accepted",
    # 劳动争议调解仲裁法 Art. 29: a labour commission's non-acceptance, or its period to accept
    # passed undecided, opens the court to the applicant; another commission's outcome is awaited.
    (Status.referred_arbitration, Action.not_accept): "labour_referral",
    (Status.referred_arbitration, Action.refer_litigation): "labour_referral_lapsed",
    # 人民调解法 Art. 27: a case whose confirmation was refused is closed with the reason.
    (Status.confirmation_rejected, Action.close): "close_with_reason",
    # 人民调解法 Art. 17: before a body mediates, the center ends a case a party refused.
    (Status.accepted, Action.fail): "party_refused",
    (Status.assigned, Action.fail): "party_refused",
}


async def _fresh_case(api, state: Status, special: str | None) -> tuple[dict, dict | None]:
    if special == "labour_after_15_days":
        dispute = await api.drive(state.value, category="labour")
        # Open from the day after the mediation clock's last day (Art. 14 with 民法典 Art. 201, 203).
        last_day = date.fromisoformat(dispute["clock"]["due_on"])
        clock = api.app.state.clock
        clock.at += timedelta(days=(last_day - clock.today()).days + 1)
        return dispute, {"commission_id": str(api.bodies["labour_commission"])}
    if special == "labour_not_performed":
        dispute = await api.drive(state.value, category="labour")
        clock = api.app.state.clock
        clock.at += timedelta(days=16)  # past the first obligation's day (drafted due in 15 days)
        return dispute, {"commission_id": str(api.bodies["labour_commission"])}
    if special == "labour":
        return await api.drive(state.value, category="labour"), {
            "commission_id": str(api.bodies["labour_commission"])
        }
    if special == "party_refused":
        dispute = await api.drive(state.value)
        respondent = next(p for p in dispute["parties"] if p["role"] == "respondent")
        refused = await api.client.post(
            f"/v1/disputes/{dispute['id']}/parties/{respondent['id']}/consent",
            json={"decision": "refused"},
            headers=api.headers("clerk", **{"If-Match": f'"{dispute["version"]}"'}),
        )
        assert refused.status_code == 200, refused.text
        return refused.json(), {"reason_code": "party_refused"}
    if special in ("labour_referral", "labour_referral_lapsed"):
        dispute = await api.drive("mediation_failed", category="labour")
        labour = {"commission_id": str(api.bodies["labour_commission"])}
        dispute = await api.step(dispute, "refer_arbitration", labour)
        if special == "labour_referral":
            return dispute, {"reason_code": "other"}
        last_day = date.fromisoformat(dispute["handoff"]["accept_due_on"])
        clock = api.app.state.clock
        clock.at += timedelta(days=(last_day - clock.today()).days + 1)
        return dispute, None
    if special == "close_with_reason":
        return await api.drive(state.value), {"reason": "当事人不再申请确认, 也不重新调解或起诉"}
    if special == "target_accepted":
        return await api.target_accepts(await api.drive(state.value)), None
    return await api.drive(state.value), None


@pytest.mark.parametrize("state", list(Status), ids=lambda s: s.value)
async def test_every_action_from_state(api, state: Status):
    for action in Action:
        transition = find_transition(state.value, action)
        if transition is None:
            continue
        dispute, payload = await _fresh_case(api, state, SPECIAL.get((state, action)))
        response = await api.act(dispute, action.value, payload, role=api.role_for(transition.roles, dispute))
        assert response.status_code == 200, f"{state.value} --{action.value}--> {response.text}"
        moved = response.json()
        assert moved["status"] == transition.target.value
        assert moved["version"] == dispute["version"] + 1
        timeline = await api.timeline(dispute)
        assert timeline[-1]["action"] == action.value
        assert (timeline[-1]["from_status"], timeline[-1]["to_status"]) == (
            state.value,
            transition.target.value,
        )

    # Everything the table does not allow from this state is refused and leaves no trace.
    dispute = await api.drive(state.value)
    before_timeline = await api.timeline_count(dispute["id"])
    before_events = await api.outbox_count(dispute["id"])
    for action in Action:
        if find_transition(state.value, action) is not None:
            continue
        response = await api.act(dispute, action.value, role="supervisor")
        assert response.status_code == 409, (
            f"{state.value} --{action.value}--> {response.status_code} {response.text}"
        )
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert problem["type"] == "/problems/invalid-transition"
        assert problem["status_now"] == state.value
        # The actions offered instead are the supervisor's own from this state, each once.
        offered = [t.action.value for t in transitions_from(state.value) if Role.supervisor in t.roles]
        assert problem["allowed_actions"] == list(dict.fromkeys(offered))
    after = await api.get(dispute)
    assert after["version"] == dispute["version"]
    assert after["status"] == state.value
    assert await api.timeline_count(dispute["id"]) == before_timeline
    assert await api.outbox_count(dispute["id"]) == before_events


# The rows an answer leads to instead of the action's usual one, with each answer they take.
ANSWERS = {"as_withdrawn": [{"reason_code": str(r)} for r in NOT_ACCEPTED_AS_WITHDRAWN]}


@pytest.mark.parametrize(
    ("state", "action", "payload"),
    [
        (s, t.action, p)
        for t in TRANSITIONS
        if t.when is not None
        for s in t.sources
        for p in ANSWERS[t.when.name]
    ],
    ids=str,
)
async def test_every_answer_reaches_its_row_of_the_table(api, state: Status, action: Action, payload: dict):
    transition = find_transition(state.value, action, SimpleNamespace(**payload))
    assert transition is not None and transition.when is not None
    dispute = await api.drive(state.value)
    moved = await api.step(dispute, action.value, payload, role=api.role_for(transition.roles, dispute))
    assert moved["status"] == transition.target.value != find_transition(state.value, action).target
    entry = (await api.timeline(dispute))[-1]
    assert (entry["action"], entry["from_status"], entry["to_status"]) == (
        action.value,
        state.value,
        transition.target.value,
    )


async def test_wrong_role_is_forbidden_and_changes_nothing(api):
    dispute = await api.drive("assigned")
    response = await api.act(dispute, "sign_for", role="clerk")
    assert response.status_code == 403
    assert response.json()["type"] == "/problems/forbidden"
    assert "body_mediator" in response.json()["allowed_roles"]
    assert (await api.get(dispute))["version"] == dispute["version"]


async def test_lifecycle_endpoint_describes_every_state_and_transition(client):
    response = await client.get("/v1/lifecycle")
    assert response.status_code == 200
    described = response.json()
    assert {s["name"] for s in described["states"]} == {s.value for s in Status}
    labels = {s["name"]: s["label"] for s in described["states"]}
    assert labels["confirmation_pending"] == "司法确认中"
    pairs = {(src, t["action"], t["to"]) for t in described["transitions"] for src in t["from"]}
    assert ("registered", "accept", "accepted") in pairs
    assert ("mediation_failed", "refer_arbitration", "referred_arbitration") in pairs
    confirm = next(t for t in described["transitions"] if t["action"] == "request_confirmation")
    assert any("第二百零五条" in (g["article"] or "") for g in confirm["guards"])
    assert described["mermaid"].startswith("stateDiagram-v2")


async def test_available_actions_reflect_state_role_and_guards(api):
    dispute = await api.drive("mediating")
    response = await api.client.get(
        f"/v1/disputes/{dispute['id']}/actions", headers=api.headers("body_mediator")
    )
    assert response.status_code == 200
    actions = {a["action"]: a for a in response.json()}
    assert set(actions) == {"transfer", "escalate", "withdraw", "agree", "fail", "refer_arbitration"}
    assert actions["agree"]["allowed_for_caller"] is True
    assert actions["escalate"]["allowed_for_caller"] is False  # body_mediator may not escalate
    # A neighbour dispute still in mediation cannot leave for arbitration: the guard says why.
    assert actions["refer_arbitration"]["blocked_by"][0]["code"] == "mediation_ongoing"
    assert response.headers["etag"] == f'"{dispute["version"]}"'
