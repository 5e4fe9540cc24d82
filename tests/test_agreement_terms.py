"""When an agreement is in force, and the dates it and its follow-ups carry: an oral agreement
binds until its written version takes effect (人民调解法 Art. 28-30), an obligation falls due on or
after the day its agreement takes effect, and a follow-up visit (回访) comes after the case closed
and no later than today (人民调解法 Art. 27, 31)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from tests.support import BEIJING, Api
from tests.test_agreements import _agreed, _field_codes, _follow_ups, _problem, _tick


async def _versions(api: Api, case: dict[str, Any]) -> list[tuple[int, str]]:
    listed = (await api.client.get(f"/v1/disputes/{case['id']}/agreements")).json()
    return [(a["number"], a["status"]) for a in listed]


async def _draft(api: Api, case: dict[str, Any], **content: Any) -> Any:
    return await api.client.post(
        f"/v1/disputes/{case['id']}/agreements",
        json={**api.agreement_content(case), **content},
        headers=api.acting("body_mediator", case),
    )


async def _oral_in_effect(api: Api, due_in_days: int = 15) -> tuple[dict, dict]:
    case = await api.drive("mediating")
    obligations = api.agreement_content(case)["obligations"]
    obligations[0]["due_on"] = (api.today + timedelta(days=due_in_days)).isoformat()
    oral = await api.draft_agreement(case, form="oral", obligations=obligations)
    recorded = await api.sign(case, oral, signer="mediator", method="recorded")
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["status"] == "effective"
    return await api.get(case), recorded.json()


def _beijing(day: date, hour: int = 10) -> str:
    return datetime.combine(day, time(hour), BEIJING).isoformat()


# ---- an oral agreement binds until its written version takes effect -------------------------------


async def test_an_oral_agreement_stays_in_force_until_its_written_version_takes_effect(api: Api) -> None:
    """人民调解法 Art. 30: the oral agreement took effect when reached; Art. 29: the written one only
    when every party, the mediator and the body's seal are on it. Until then the oral one binds: the
    case is not failed over it, and it is what `agree` may record."""
    case, oral = await _oral_in_effect(api)
    drafted = await _draft(api, case, form="written", supersedes=1)
    assert drafted.status_code == 201, drafted.text
    written = drafted.json()
    assert written["supersedes_id"] == oral["id"]
    assert await _versions(api, case) == [(1, "effective"), (2, "draft")]

    # Signed by some, the written version binds no one yet: the oral one still does.
    applicant = next(p for p in case["parties"] if p["role"] == "applicant")
    signed = await api.sign(case, written, signer="party", party_id=applicant["id"], method="in_person")
    assert signed.status_code == 200, signed.text
    written = signed.json()
    assert await _versions(api, case) == [(1, "effective"), (2, "draft")]
    case = await api.get(case)
    failed = await api.act(case, "fail")
    reasons = {r["code"] for r in _problem(failed, 422, "/problems/guard-failed")["reasons"]}
    assert "agreement_in_effect" in reasons
    listed = await api.client.get(
        f"/v1/disputes/{case['id']}/actions", headers=api.acting("body_mediator", case)
    )
    agree = next(a for a in listed.json() if a["action"] == "agree")
    assert agree["allowed_for_caller"] is True

    # The last signature makes the written version effective, and only now is the oral one replaced.
    written = await api.sign_all(case, written)
    assert await _versions(api, case) == [(1, "superseded"), (2, "effective")]
    stale = await api.act(case, "agree", {"agreement_id": oral["id"]})
    assert "agreement_superseded" in {
        r["code"] for r in _problem(stale, 422, "/problems/guard-failed")["reasons"]
    }
    agreed = await api.step(case, "agree", {"agreement_id": written["id"]})
    assert (agreed["agreement"]["id"], agreed["agreement"]["form"]) == (written["id"], "written")
    assert agreed["agreement_effective_on"] == written["effective_on"]
    confirming = await api.step(agreed, "request_confirmation")
    assert confirming["status"] == "confirmation_pending"


async def test_an_abandoned_written_draft_leaves_the_oral_agreement_in_force(api: Api) -> None:
    """A written version drafted, partly signed and then replaced by another draft, never took
    effect (人民调解法 Art. 29): the oral agreement (Art. 30) is the one recorded on the case, whose
    obligations the body follows up (Art. 31)."""
    case, oral = await _oral_in_effect(api, due_in_days=2)
    first = (await _draft(api, case, form="written", supersedes=1)).json()
    respondent = next(p for p in case["parties"] if p["role"] == "respondent")
    signed = await api.sign(case, first, signer="party", party_id=respondent["id"], method="in_person")
    assert signed.status_code == 200, signed.text
    second = await _draft(api, case, form="written", supersedes=2)
    assert second.status_code == 201, second.text
    assert await _versions(api, case) == [(1, "effective"), (2, "superseded"), (3, "draft")]

    # No other oral agreement replaces the one in force, by a new draft or by editing the draft.
    again = await _draft(api, case, form="oral", supersedes=3)
    assert _problem(again, 409, "/problems/conflict")["code"] == "agreement_effective"
    edited = await api.client.put(
        f"/v1/disputes/{case['id']}/agreements/{second.json()['id']}",
        json={**api.agreement_content(case), "form": "oral"},
        headers={**api.acting("body_mediator", case), "If-Match": f'"{second.json()["version"]}"'},
    )
    assert _problem(edited, 409, "/problems/conflict")["code"] == "agreement_effective"
    assert await _versions(api, case) == [(1, "effective"), (2, "superseded"), (3, "draft")]

    case = await api.step(await api.get(case), "agree", {"agreement_id": oral["id"]})
    assert (case["status"], case["agreement"]["id"], case["agreement"]["form"]) == (
        "agreement_signed",
        oral["id"],
        "oral",
    )
    api.app.state.clock.at += timedelta(days=5)
    assert (await _tick(api)).obligations_overdue == 1
    (task,) = (await _follow_ups(api)).json()["items"]
    assert task["obligation_id"] == oral["obligations"][0]["id"]


# ---- obligations fall due on or after the agreement takes effect ----------------------------------


async def test_an_obligation_due_before_the_case_was_accepted_is_refused(api: Api) -> None:
    """An obligation agreed in mediation cannot fall due before the center accepted the case."""
    applied = api.today
    case = await api.intake()
    api.app.state.clock.at += timedelta(days=3)
    for action in ("accept", "assign", "sign_for"):
        case = await api.step(case, action)
    content = api.agreement_content(case)
    content["obligations"][0]["due_on"] = (applied + timedelta(days=1)).isoformat()
    refused = await _draft(api, case, **content)
    problem = _problem(refused, 422, "/problems/validation-error")
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [
        ("obligations[0].due_on", "before_acceptance")
    ]
    assert await _versions(api, case) == []


async def test_an_obligation_due_before_the_agreement_takes_effect_is_refused_at_signing(api: Api) -> None:
    """人民调解法 Art. 29, 31: the parties perform an agreement from the day it takes effect, which is
    the day the last of them, the mediator or the seal goes on it. Recorded after the event, a
    version signed on an earlier day may carry that day's dates; signed today it may not."""
    case = await api.drive("mediating")
    began = api.today
    api.app.state.clock.at += timedelta(days=5)
    content = api.agreement_content(case)
    content["obligations"][0]["due_on"] = (began + timedelta(days=2)).isoformat()
    drafted = await _draft(api, case, **content)
    assert drafted.status_code == 201, drafted.text
    agreement = drafted.json()

    applicant = next(p for p in case["parties"] if p["role"] == "applicant")
    today = await api.sign(case, agreement, signer="party", party_id=applicant["id"], method="in_person")
    assert _field_codes(today) == {"before_effective"}
    assert today.json()["errors"][0]["field"] == "obligations[0].due_on"
    assert (await api.client.get(f"/v1/disputes/{case['id']}/agreements/{agreement['id']}")).json()[
        "signatures"
    ] == []

    # The paper was signed on the day the obligation fell due, and is recorded now with that date.
    on_paper = _beijing(began + timedelta(days=2))
    for waiting in agreement["awaiting_signatures"]:
        signer = {"signer": waiting["signer"], "signed_at": on_paper}
        if waiting["signer"] == "party":
            signer |= {"party_id": waiting["party_id"], "method": "in_person"}
        else:
            signer |= {"method": "in_person" if waiting["signer"] == "mediator" else "seal"}
        signed = await api.sign(case, agreement, **signer)
        assert signed.status_code == 200, signed.text
        agreement = signed.json()
    assert (agreement["status"], agreement["effective_on"]) == (
        "effective",
        (began + timedelta(days=2)).isoformat(),
    )


async def test_an_oral_agreement_recorded_after_its_obligations_fell_due_is_refused(api: Api) -> None:
    """人民调解法 Art. 30: the oral agreement takes effect on the mediator's record; an obligation
    in it cannot have fallen due before."""
    case = await api.drive("mediating")
    content = api.agreement_content(case, form="oral")
    content["obligations"][0]["due_on"] = api.today.isoformat()
    agreement = (await _draft(api, case, **content)).json()
    api.app.state.clock.at += timedelta(days=2)
    refused = await api.sign(case, agreement, signer="mediator", method="recorded")
    assert _field_codes(refused) == {"before_effective"}
    assert await _versions(api, case) == [(1, "draft")]


# ---- the follow-up visit comes after the case closed ---------------------------------------------


async def _visit(api: Api, case: dict, visited_on: date) -> Any:
    listed = await api.client.get(
        "/v1/follow-ups",
        params={"kind": "visit", "dispute_id": case["id"]},
        headers=api.acting("body_mediator", case),
    )
    (task,) = listed.json()["items"]
    return await api.client.post(
        f"/v1/follow-ups/{task['id']}/visit",
        json={
            "visited_on": visited_on.isoformat(),
            "contact_method": "phone",
            "reached": True,
            "satisfaction": 4,
        },
        headers={**api.acting("body_mediator", case), **await api.case_if_match(case["id"])},
    )


async def test_a_follow_up_visit_dated_before_the_case_closed_is_refused(api: Api) -> None:
    """人民调解法 Art. 27 and the center's practice: the visit (回访) follows the closing of the case."""
    case = await api.drive("closed")
    refused = await _visit(api, case, api.today - timedelta(days=1))
    assert _field_codes(refused) == {"before_closing"}
    assert refused.json()["errors"][0]["field"] == "visited_on"
    future = await _visit(api, case, api.today + timedelta(days=1))
    assert _field_codes(future) == {"in_future"}
    visited = await _visit(api, case, api.today)
    assert visited.status_code == 200, visited.text
    assert visited.json()["status"] == "done"


async def test_a_performance_follow_up_dated_before_the_agreement_took_effect_is_refused(api: Api) -> None:
    """人民调解法 Art. 31: the body follows up the performance of the agreement in effect: no
    contact about it can come before it took effect."""
    _, agreement = await _agreed(api, first_due=1, second_due=30)
    api.app.state.clock.at += timedelta(days=3)
    assert (await _tick(api)).obligations_overdue == 1
    (task,) = (await _follow_ups(api)).json()["items"]
    effective = date.fromisoformat(agreement["effective_on"])
    body = {"method": "phone", "outcome": "performing"}
    early = await api.client.post(
        f"/v1/follow-ups/{task['id']}/result",
        json={**body, "contacted_on": (effective - timedelta(days=1)).isoformat()},
        headers={**api.auth("body_mediator", "village"), **await api.case_if_match(task["dispute_id"])},
    )
    assert _field_codes(early) == {"before_effective"}
    done = await api.client.post(
        f"/v1/follow-ups/{task['id']}/result",
        json={**body, "contacted_on": effective.isoformat()},
        headers={**api.auth("body_mediator", "village"), **await api.case_if_match(task["dispute_id"])},
    )
    assert done.status_code == 200, done.text
