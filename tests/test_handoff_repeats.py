"""A court's or commission's answer sent again without an Idempotency-Key (a retry whose first
answer was lost on the network): the same answer as the one recorded succeeds, whatever ETag it
carries, and writes nothing; another answer is refused with the one recorded, so the caller can
tell its own answer that landed from someone else's."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from mediation.audit.models import AuditRecord
from mediation.events.models import OutboxEvent
from mediation.handoffs.service import HandoffService
from tests.support import Api
from tests.test_handoffs import _actions, _confirm, _post, _problem, _reasons

ACCEPT = {"decision": "accepted", "case_number": "(2026)浙0681民特5号", "note": "立案庭审查"}


async def _written(api: Api, dispute: dict[str, Any]) -> tuple[int, int, int, int]:
    """What a change leaves behind: the case's version, its timeline, its events, the audit trail."""
    async with api.app.state.db.reader() as session:
        events = await session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.dispute_id == uuid.UUID(dispute["id"]))
        )
        # Reads showing personal data are audited (pii.read), these checks' own reads among them.
        audit = await session.scalar(
            select(func.count()).select_from(AuditRecord).where(AuditRecord.action != "pii.read")
        )
    case = await api.get(dispute)
    return case["version"], len(await api.timeline(dispute)), int(events or 0), int(audit or 0)


def _recorded(problem: dict[str, Any]) -> dict[str, Any]:
    names = ("status_now", "accepted_on", "target_case_number", "decided_on", "decision", "current_etag")
    return {name: problem[name] for name in names}


async def test_an_acceptance_sent_again_as_recorded_answers_the_handoff_and_writes_nothing(api: Api) -> None:
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    first = await _post(api, handoff, "acceptance", ACCEPT)
    assert first.status_code == 200, first.text
    before = await _written(api, dispute)

    # The retry carries the ETag the first attempt was sent with, stale by now.
    again = await _post(api, handoff, "acceptance", ACCEPT)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.headers["etag"] == first.headers["etag"] == f'"{handoff["version"] + 1}"'
    assert "idempotent-replayed" not in again.headers
    # Text is compared as the request is read (trimmed), and a day left out is the day recorded.
    padded = {**ACCEPT, "case_number": f"  {ACCEPT['case_number']} ", "accepted_on": api.today.isoformat()}
    assert (await _post(api, handoff, "acceptance", padded)).status_code == 200
    # With the current ETag too.
    assert (await _post(api, first.json(), "acceptance", ACCEPT)).status_code == 200
    assert await _written(api, dispute) == before
    assert len(_actions(await api.timeline(dispute), "acknowledge_handoff")) == 1

    # Any other answer is someone else's (or a changed mind): refused with the answer recorded,
    # whatever version it names.
    others = [
        {**ACCEPT, "case_number": "(2026)浙0681民特6号"},
        {**ACCEPT, "note": "另一条备注"},
        {"decision": "accepted", "case_number": ACCEPT["case_number"]},  # the note left out
        {**ACCEPT, "accepted_on": "2026-05-31"},
        {"decision": "not_accepted", "reason_code": "outside_court_scope"},
    ]
    for body in others:
        for sent_at in (handoff, first.json()):
            refused = _problem(await _post(api, sent_at, "acceptance", body), 409, "conflict")
            assert refused["code"] == "already_answered", body
            assert _recorded(refused) == {
                "status_now": "accepted",
                "accepted_on": api.today.isoformat(),
                "target_case_number": ACCEPT["case_number"],
                "decided_on": None,
                "decision": None,
                "current_etag": first.headers["etag"],
            }
    assert await _written(api, dispute) == (before[0], before[1], before[2], before[3] + 2 * len(others))

    # If-Match is still needed, and a weak one still refused: a retry sends what the first did.
    bare = await api.client.post(
        f"/v1/handoffs/{handoff['id']}/acceptance",
        json=ACCEPT,
        headers=api.auth("court", uuid.UUID(handoff["target_id"])),
    )
    _problem(bare, 428, "precondition-required")
    weak = await _post(api, handoff, "acceptance", ACCEPT, headers={"If-Match": f'W/"{handoff["version"]}"'})
    assert _problem(weak, 412, "stale-version")["code"] == "weak_etag"

    # Ruled on since, the acceptance sent again is still the one recorded: the handoff as it stands.
    ruled = await _post(api, first.json(), "decision", _confirm(api))
    assert ruled.status_code == 200, ruled.text
    late = await _post(api, handoff, "acceptance", ACCEPT)
    assert late.status_code == 200, late.text
    assert (late.json()["status"], late.headers["etag"]) == ("confirmed", ruled.headers["etag"])


async def test_a_refusal_to_accept_sent_again_as_recorded_succeeds(api: Api) -> None:
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    refusal = {
        "decision": "not_accepted",
        "reason_code": "outside_court_scope",
        "notice_number": "(2026)浙0681民特7号",
    }
    first = await _post(api, handoff, "acceptance", refusal)
    assert first.status_code == 200, first.text
    before = await _written(api, dispute)

    again = await _post(api, handoff, "acceptance", refusal)
    assert again.status_code == 200, again.text
    assert (again.json(), again.headers["etag"]) == (first.json(), first.headers["etag"])
    assert await _written(api, dispute) == before

    other = await _post(api, handoff, "acceptance", {**refusal, "notice_number": None})
    problem = _problem(other, 409, "conflict")
    assert problem["code"] == "already_answered"
    assert (problem["status_now"], problem["decision"]["notice_number"]) == (
        "not_accepted",
        "(2026)浙0681民特7号",
    )


@pytest.mark.parametrize(
    ("ruling", "status"),
    [
        ({"decision": "confirmed", "note": "当庭确认"}, "confirmed"),
        ({"decision": "rejected", "ground": "unclear_content"}, "rejected"),
    ],
)
async def test_a_ruling_sent_again_as_recorded_answers_the_handoff_and_writes_nothing(
    api: Api, ruling: dict[str, Any], status: str
) -> None:
    dispute = await api.target_accepts(await api.drive("confirmation_pending"))
    handoff = (await api.handoff(dispute))["handoff"]
    body = {**_confirm(api), **ruling}
    first = await _post(api, handoff, "decision", body)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == status
    before = await _written(api, dispute)

    again = await _post(api, handoff, "decision", body)  # the ETag before the ruling
    assert again.status_code == 200, again.text
    assert (again.json(), again.headers["etag"]) == (first.json(), first.headers["etag"])
    assert await _written(api, dispute) == before

    others = [
        {**body, "ruling_number": "(2026)浙0681民特99号"},
        {**body, "ruled_on": "2026-05-31"},
        {**body, "note": "另一条备注"},
        {**_confirm(api), "decision": "rejected", "ground": "not_voluntary"},
        _confirm(api),
    ]
    for other in others:
        if other == body:
            continue
        problem = _problem(await _post(api, handoff, "decision", other), 409, "conflict")
        assert problem["code"] == "handoff_settled", other
        recorded = _recorded(problem)
        assert recorded["decision"] == first.json()["decision"]
        assert {
            k: recorded[k] for k in ("status_now", "target_case_number", "decided_on", "current_etag")
        } == {
            "status_now": status,
            "target_case_number": "(2026)浙0681民特1号",
            "decided_on": api.today.isoformat(),
            "current_etag": first.headers["etag"],
        }
    assert (await _written(api, dispute))[:3] == before[:3]


async def test_a_referrals_outcome_sent_again_as_recorded_succeeds(api: Api) -> None:
    dispute = await api.step(await api.drive("mediation_failed"), "refer_litigation")
    dispute = await api.target_accepts(dispute, case_number="(2026)浙0681民初123号")
    handoff = (await api.handoff(dispute))["handoff"]
    judgment = {
        "outcome": "judgment",
        "reference_number": "(2026)浙0681民初123号",
        "decided_on": "2026-06-01",
    }
    first = await _post(api, handoff, "outcome", judgment)
    assert first.status_code == 200, first.text
    before = await _written(api, dispute)

    again = await _post(api, handoff, "outcome", judgment)
    assert again.status_code == 200, again.text
    assert (again.json(), again.headers["etag"]) == (first.json(), first.headers["etag"])
    assert await _written(api, dispute) == before

    settlement = {**judgment, "outcome": "settlement"}
    problem = _problem(await _post(api, handoff, "outcome", settlement), 409, "conflict")
    assert (problem["code"], problem["status_now"]) == ("handoff_settled", "concluded")
    assert problem["decision"]["outcome"] == "judgment"


async def test_an_answer_to_a_request_withdrawn_before_it_was_answered_names_how_it_ended(api: Api) -> None:
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    body = api.acting("body_mediator", dispute)
    withdrawn = await _post(api, handoff, "withdrawal", {"reason": "双方当事人撤回申请"}, as_=body)
    assert withdrawn.status_code == 200, withdrawn.text

    problem = _problem(await _post(api, handoff, "acceptance", ACCEPT), 409, "conflict")
    assert problem["code"] == "handoff_settled"
    recorded = _recorded(problem)
    assert recorded["decision"]["reason"] == "双方当事人撤回申请"
    assert {k: v for k, v in recorded.items() if k != "decision"} == {
        "status_now": "withdrawn",
        "accepted_on": None,
        "target_case_number": None,
        "decided_on": api.today.isoformat(),
        "current_etag": withdrawn.headers["etag"],
    }


async def test_a_repeated_answer_that_changed_something_after_all_is_audited_as_a_change(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`changed_nothing` spares a change's audit record only while the session holds no change:
    an answer found recorded whose handling still altered a row commits with its audit record."""
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    assert (await _post(api, handoff, "acceptance", ACCEPT)).status_code == 200
    before = await _written(api, dispute)
    acknowledge = HandoffService.acknowledge

    async def acknowledge_and_touch(self: HandoffService, *args: Any, **kwargs: Any) -> Any:
        found = await acknowledge(self, *args, **kwargs)
        assert self.unchanged
        found.target_case_number = "(2026)浙0681民特99号"  # a write left behind by mistake
        return found

    monkeypatch.setattr(HandoffService, "acknowledge", acknowledge_and_touch)
    assert (await _post(api, handoff, "acceptance", ACCEPT)).status_code == 200
    after = await _written(api, dispute)
    assert after[3] == before[3] + 1  # the change's audit record


async def test_an_extension_sent_again_as_recorded_answers_the_handoff_and_writes_nothing(api: Api) -> None:
    dispute = await api.target_accepts(await api.drive("confirmation_pending"))
    handoff = (await api.handoff(dispute))["handoff"]
    extension = {"days": 10, "reason": "案情复杂, 需进一步核实"}
    first = await _post(api, handoff, "extension", extension)
    assert first.status_code == 200, first.text
    before = await _written(api, dispute)

    again = await _post(api, handoff, "extension", extension)  # the ETag before the extension
    assert again.status_code == 200, again.text
    assert (again.json(), again.headers["etag"]) == (first.json(), first.headers["etag"])
    assert (await _post(api, first.json(), "extension", extension)).status_code == 200
    assert await _written(api, dispute) == before
    assert len(_actions(await api.timeline(dispute), "extend_handoff")) == 1

    # Another extension, the budget used: refused with the one recorded, whatever version it names.
    others = [{**extension, "days": 5}, {**extension, "reason": "另一理由"}]
    for other in others:
        for sent_at in (handoff, first.json()):
            problem = _problem(await _post(api, sent_at, "extension", other), 409, "conflict")
            assert problem["code"] == "already_extended", other
            assert (
                problem["extended_days"],
                problem["extension_reason"],
                problem["status_now"],
                problem["current_etag"],
            ) == (10, extension["reason"], "accepted", first.headers["etag"])
    assert await _written(api, dispute) == (before[0], before[1], before[2], before[3] + 2 * len(others))

    # Ruled on since, the extension sent again is still the one recorded: the handoff as it stands.
    ruled = await _post(api, first.json(), "decision", _confirm(api))
    assert ruled.status_code == 200, ruled.text
    late = await _post(api, handoff, "extension", extension)
    assert late.status_code == 200, late.text
    assert (late.json()["status"], late.headers["etag"]) == ("confirmed", ruled.headers["etag"])


async def test_a_withdrawal_sent_again_after_the_request_was_withdrawn_writes_nothing(api: Api) -> None:
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    body = api.acting("body_mediator", dispute)
    withdrawal = {"reason": "双方当事人撤回申请"}
    first = await _post(api, handoff, "withdrawal", withdrawal, as_=body)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "withdrawn"
    before = await _written(api, dispute)

    again = await _post(api, handoff, "withdrawal", withdrawal, as_=body)  # the ETag before it
    assert again.status_code == 200, again.text
    assert (again.json(), again.headers["etag"]) == (first.json(), first.headers["etag"])
    assert (await _post(api, first.json(), "withdrawal", withdrawal, as_=body)).status_code == 200
    assert await _written(api, dispute) == before
    assert len(_actions(await api.timeline(dispute), "withdraw_confirmation")) == 1

    # Another withdrawal is refused with the one recorded, whatever version it names.
    for sent_at in (handoff, first.json()):
        refused = await _post(api, sent_at, "withdrawal", {"reason": "另一理由"}, as_=body)
        problem = _problem(refused, 409, "conflict")
        assert (problem["code"], problem["status_now"], problem["current_etag"]) == (
            "handoff_settled",
            "withdrawn",
            first.headers["etag"],
        )
        assert problem["decision"]["reason"] == withdrawal["reason"]
    assert await _written(api, dispute) == (before[0], before[1], before[2], before[3] + 2)


@pytest.mark.parametrize("kind", ["judicial_confirmation", "litigation"])
async def test_a_withdrawal_request_sent_again_while_it_waits_writes_nothing(api: Api, kind: str) -> None:
    """Once the target accepted, the body's withdrawal is the parties' request for the target's
    ruling (民诉法解释 Art. 357; 民事诉讼法 Art. 148): sent again the same, it is that request."""
    if kind == "litigation":
        dispute = await api.step(await api.drive("mediation_failed"), "refer_litigation")
        body = api.acting("body_admin", dispute)
    else:
        dispute = await api.drive("confirmation_pending")
        body = api.acting("body_mediator", dispute)
    dispute = await api.target_accepts(dispute)
    handoff = (await api.handoff(dispute))["handoff"]
    applicant = next(p["id"] for p in dispute["parties"] if p["role"] == "applicant")
    request = {"reason": "申请人与被申请人自行和解", "party_id": applicant}
    first = await _post(api, handoff, "withdrawal", request, as_=body)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "accepted"
    before = await _written(api, dispute)

    again = await _post(api, handoff, "withdrawal", request, as_=body)  # the ETag before it
    assert again.status_code == 200, again.text
    assert (again.json(), again.headers["etag"]) == (first.json(), first.headers["etag"])
    assert (await _post(api, first.json(), "withdrawal", request, as_=body)).status_code == 200
    assert await _written(api, dispute) == before
    assert len(_actions(await api.timeline(dispute), "request_withdrawal")) == 1

    # Another reason, or no party named: another request, refused with the one waiting.
    others = [{**request, "reason": "再次申请撤回"}, {"reason": request["reason"]}]
    for other in others:
        for sent_at in (handoff, first.json()):
            problem = _problem(await _post(api, sent_at, "withdrawal", other, as_=body), 409, "conflict")
            assert problem["code"] == "withdrawal_already_requested", other
            assert (problem["status_now"], problem["requested_on"], problem["current_etag"]) == (
                "accepted",
                api.today.isoformat(),
                first.headers["etag"],
            )
    assert await _written(api, dispute) == (before[0], before[1], before[2], before[3] + 2 * len(others))

    if kind == "judicial_confirmation":
        # The court's own withdrawal is its ruling, never the parties' request sent again.
        ruling_missing = await _post(api, first.json(), "withdrawal", request)
        assert "withdrawal_ruling_missing" in _reasons(ruling_missing)


async def test_the_case_actions_withdrawal_request_sent_again_while_it_waits_writes_nothing(api: Api) -> None:
    """The case's own action takes a withdrawal sent again as `/withdrawal` does: once the court
    accepted, the body's withdrawal is the parties' request for its ruling (民诉法解释 Art. 357), and
    the same request sent again is that request, whatever ETag it names: the case as it stands,
    nothing written. Another is refused with the one waiting, whatever version it names."""
    dispute = await api.target_accepts(await api.drive("confirmation_pending"))
    applicant = next(p["id"] for p in dispute["parties"] if p["role"] == "applicant")
    request = {"reason": "申请人与被申请人自行和解", "party_id": applicant}
    first = await api.act(dispute, "withdraw_confirmation", request)
    assert first.status_code == 200, first.text
    case = first.json()
    assert (case["status"], case["version"]) == ("confirmation_pending", dispute["version"] + 1)
    before = await _written(api, dispute)

    for sent_at in (dispute, case):  # the ETag the first attempt was sent with, and the current one
        again = await api.act(sent_at, "withdraw_confirmation", request)
        assert again.status_code == 200, again.text
        assert (again.json(), again.headers["etag"]) == (case, first.headers["etag"])
        assert "idempotent-replayed" not in again.headers
    assert await _written(api, dispute) == before
    assert len(_actions(await api.timeline(dispute), "request_withdrawal")) == 1

    handoff = (await api.handoff(case))["handoff"]
    others = [{**request, "reason": "再次申请撤回"}, {"reason": request["reason"]}]
    for other in others:
        for sent_at in (dispute, case):
            refused = _problem(await api.act(sent_at, "withdraw_confirmation", other), 409, "conflict")
            assert refused["code"] == "withdrawal_already_requested", other
            assert (refused["status_now"], refused["requested_on"], refused["current_etag"]) == (
                "accepted",
                api.today.isoformat(),
                f'"{handoff["version"]}"',
            )
    assert await _written(api, dispute) == (before[0], before[1], before[2], before[3] + 2 * len(others))

    # If-Match is still needed, and a weak one still refused: a retry sends what the first did.
    path = f"/v1/disputes/{dispute['id']}/actions/withdraw_confirmation"
    body = api.acting("body_mediator", dispute)
    _problem(await api.client.post(path, json=request, headers=body), 428, "precondition-required")
    weak = await api.act(
        dispute, "withdraw_confirmation", request, headers={"If-Match": f'W/"{case["version"]}"'}
    )
    assert _problem(weak, 412, "stale-version")["code"] == "weak_etag"


async def test_the_case_actions_withdrawal_sent_again_after_the_request_was_withdrawn_writes_nothing(
    api: Api,
) -> None:
    dispute = await api.drive("confirmation_pending")
    withdrawal = {"reason": "双方当事人撤回申请"}
    first = await api.act(dispute, "withdraw_confirmation", withdrawal)
    assert first.status_code == 200, first.text
    case = first.json()
    assert case["status"] == "agreement_signed"
    before = await _written(api, dispute)

    for sent_at in (dispute, case):
        again = await api.act(sent_at, "withdraw_confirmation", withdrawal)
        assert again.status_code == 200, again.text
        assert (again.json(), again.headers["etag"]) == (case, first.headers["etag"])
    assert await _written(api, dispute) == before
    assert len(_actions(await api.timeline(dispute), "withdraw_confirmation")) == 1
    assert (await api.handoff(case))["handoff"]["status"] == "withdrawn"

    # Another withdrawal is the case's to refuse, as before: nothing is pending any more.
    other = await api.act(case, "withdraw_confirmation", {"reason": "另一理由"})
    assert _problem(other, 409, "invalid-transition")
