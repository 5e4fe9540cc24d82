"""Asking for a case, or a court's request, outside one's scope; and which object a record names.

The answer is the one for an address that does not exist (404, the same problem), so whether the
case exists does not leak. Unlike a mistyped address, it is recorded in the audit trail, reads
included: an organisation asking for other organisations' cases is what an auditor looks for.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support import Api
from tests.test_audit import record_count, records, verified


def _problem(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    problem.pop("instance", None)  # the request's own address
    return problem


async def test_a_case_outside_the_callers_scope_answers_as_missing_and_is_recorded(api: Api) -> None:
    dispute = await api.drive("mediating")
    elsewhere = {
        "body": api.auth("body_mediator", "other_village"),
        "center": api.auth("clerk", "other_center"),
    }
    missing = uuid.uuid4()
    before = await record_count(api.app)

    for who, headers in elsewhere.items():
        for suffix in ("", "/timeline"):
            probe = await api.client.get(f"/v1/disputes/{dispute['id']}{suffix}", headers=headers)
            typo = await api.client.get(f"/v1/disputes/{missing}{suffix}", headers=headers)
            assert _problem(probe) == _problem(typo), who
    refused_write = await api.client.post(
        f"/v1/disputes/{dispute['id']}/actions/withdraw",
        json={"reason": "申请人撤回"},
        headers={**elsewhere["body"], "If-Match": f'"{dispute["version"]}"'},
    )
    assert refused_write.status_code == 404, refused_write.text

    added = (await records(api.app))[before:]
    assert [(r.action, r.outcome, r.status_code, r.object_id) for r in added] == [
        *[(name, "denied", 404, dispute["id"]) for name in ("get_dispute", "get_timeline") * 2],
        ("dispute_action_withdraw", "denied", 404, dispute["id"]),
    ]
    assert {r.details["refused"] for r in added} == {"outside_scope"}
    assert {r.actor_role for r in added[:2]} == {"body_mediator"}
    assert {r.actor_role for r in added[2:4]} == {"clerk"}
    assert (await verified(api.app))["ok"] is True
    held = await api.client.get(f"/v1/disputes/{dispute['id']}", headers=api.acting("body_mediator", dispute))
    assert held.status_code == 200, held.text


async def test_a_courts_request_addressed_to_another_court_answers_as_missing_and_is_recorded(
    api: Api,
) -> None:
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    other_court = api.auth("court", "other_court")
    before = await record_count(api.app)

    probe = await api.client.get(f"/v1/handoffs/{handoff['id']}", headers=other_court)
    typo = await api.client.get(f"/v1/handoffs/{uuid.uuid4()}", headers=other_court)

    assert _problem(probe) == _problem(typo)
    [added] = (await records(api.app))[before:]
    assert (added.action, added.outcome, added.status_code) == ("get_handoff", "denied", 404)
    assert (added.object_type, added.object_id) == ("handoff", handoff["id"])
    assert (added.actor_role, added.details["refused"]) == ("court", "outside_scope")
    addressed = await api.client.get(f"/v1/handoffs/{handoff['id']}", headers=api.acting("court", dispute))
    assert addressed.status_code == 200, addressed.text


async def test_a_courts_answer_is_recorded_against_its_request(api: Api) -> None:
    """An auditor finds what happened to a court's request by the request: its answers name it."""
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    before = await record_count(api.app)

    await api.target_accepts(dispute)

    added = (await records(api.app))[before:]
    answers = [r for r in added if r.actor_role == "court" and r.action != "pii.read"]  # its dossier read
    assert answers
    assert {(r.outcome, r.object_type, r.object_id) for r in answers} == {
        ("success", "handoff", handoff["id"])
    }
