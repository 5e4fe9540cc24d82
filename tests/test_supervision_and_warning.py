"""Supervision orders and case owners, follow-up visits before archiving, and early warning."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, text
from stdnum.cn import uscc

from mediation.agreements.models import FollowUp
from mediation.alerts.models import Alert, AlertCase
from mediation.audit.models import AuditRecord
from mediation.clocks.scheduler import tick
from mediation.core.pii import mask_id_number
from mediation.disputes.models import Dispute
from mediation.events.models import OutboxEvent
from mediation.supervision.models import SupervisionOrder
from tests.support import Api, at_beijing, first_intake_waits_after_looking, person, resident_id


async def _tick(api: Api) -> Any:
    app = api.app
    return await tick(app.state.db, app.state.clock, app.state.settings, app.state.identity.cipher)


def _if_match(thing: dict[str, Any]) -> dict[str, str]:
    return {"If-Match": f'"{thing["version"]}"'}


# ---- supervision ---------------------------------------------------------------------------------


async def _order(api: Api, dispute: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = await api.client.post(
        f"/v1/disputes/{dispute['id']}/supervision-orders",
        json={"instruction": "请于三日内报告调解进展并约见双方", **extra},
        headers={**api.auth("supervisor"), **_if_match(dispute)},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_an_order_due_before_today_is_refused_naming_the_reply_deadline(api: Api) -> None:
    """The field the page labels 答复期限 is named so in its message too."""
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    refused = await api.client.post(
        f"/v1/disputes/{dispute['id']}/supervision-orders",
        json={"instruction": "请于三日内报告调解进展并约见双方", "due_on": "2026-05-31"},
        headers={**api.auth("supervisor"), **_if_match(dispute)},
    )
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert (error["field"], error["code"], error["message"]) == ("due_on", "in_past", "答复期限不能早于今天")


async def test_a_supervision_order_is_issued_then_answered(api: Api) -> None:
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    # A clerk does not supervise.
    refused = await api.client.post(
        f"/v1/disputes/{dispute['id']}/supervision-orders",
        json={"instruction": "督办"},
        headers={**api.auth("clerk"), **_if_match(dispute)},
    )
    assert refused.status_code == 403
    order = await _order(api, dispute)
    assert (order["status"], order["body_id"], order["due_on"]) == (
        "issued",
        dispute["body_id"],
        "2026-06-04",
    )
    inbox = await api.client.get("/v1/supervision-orders", headers=api.acting("body_mediator", dispute))
    assert [o["id"] for o in inbox.json()["items"]] == [order["id"]]
    # Another body cannot answer it, and sees nothing of it.
    other = await api.client.post(
        f"/v1/supervision-orders/{order['id']}/response",
        json={"response": "冒名答复"},
        headers={**api.auth("body_mediator", "town"), **_if_match(order)},
    )
    assert other.status_code == 404
    answered = await api.client.post(
        f"/v1/supervision-orders/{order['id']}/response",
        json={"response": "已于六月二日约见双方, 拟六月五日再次调解"},
        headers={**api.acting("body_mediator", dispute), **_if_match(order)},
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "responded"
    at_beijing(api, date(2026, 6, 10))
    assert (await _tick(api)).orders_escalated == 0
    actions = [e["action"] for e in await api.timeline(dispute)]
    assert actions[-2:] == ["supervision_issued", "supervision_responded"]


async def test_numbers_in_an_orders_instruction_and_answer_are_masked_without_pii_read(api: Api) -> None:
    """个人信息保护法 Art. 51: the body's answer quotes a party's new phone and ID numbers. The
    supervisor (no pii:read) reads them masked in the order, in the list and on the case page, as on
    the timeline; the body reads them as written, and that read is recorded as a disclosure."""
    phone, id_number = "13912345678", resident_id(9)
    dispute = await api.drive("mediating")
    order = await _order(api, dispute, instruction=f"请联系申请人(电话{phone})")
    body = api.acting("body_mediator", dispute)
    answered = await api.client.post(
        f"/v1/supervision-orders/{order['id']}/response",
        json={"response": f"已联系申请人, 新电话{phone}, 身份证{id_number}"},
        headers={**body, **_if_match(order)},
    )
    assert answered.status_code == 200, answered.text
    masked_answer = f"已联系申请人, 新电话139****5678, 身份证{mask_id_number(id_number)}"

    supervisor = {**api.auth("supervisor"), "X-Request-ID": "req-order-masked"}
    one = await api.client.get(f"/v1/supervision-orders/{order['id']}", headers=supervisor)
    listed = await api.client.get(
        "/v1/supervision-orders", params={"dispute_id": dispute["id"]}, headers=supervisor
    )
    for response in (one, listed):
        assert response.status_code == 200, response.text
        assert phone not in response.text and id_number not in response.text
    assert (one.json()["response"], one.json()["instruction"]) == (
        masked_answer,
        "请联系申请人(电话139****5678)",
    )
    assert listed.json()["items"][0]["response"] == masked_answer
    cookie = {"Cookie": f"mediation_session={api.tokens[('supervisor', api.bodies['center'])]}"}
    page = await api.client.get(f"/cases/{dispute['id']}", headers={**cookie, "Accept": "text/html"})
    assert page.status_code == 200
    assert phone not in page.text and id_number not in page.text
    assert "新电话139****5678" in page.text

    shown = await api.client.get(
        f"/v1/supervision-orders/{order['id']}", headers={**body, "X-Request-ID": "req-order-shown"}
    )
    assert shown.json()["response"] == f"已联系申请人, 新电话{phone}, 身份证{id_number}"
    reads = {r for r in await _pii_reads(api) if r[0] in ("req-order-masked", "req-order-shown")}
    assert reads == {("req-order-shown", dispute["id"])}


async def _pii_reads(api: Api) -> list[tuple[str | None, str | None]]:
    async with api.app.state.db.reader() as session:
        rows = await session.execute(
            select(AuditRecord.request_id, AuditRecord.object_id).where(AuditRecord.action == "pii.read")
        )
        return [(r[0], r[1]) for r in rows]


async def test_an_unanswered_order_past_its_deadline_is_escalated_once(api: Api) -> None:
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    order = await _order(api, dispute, due_on="2026-06-03")
    at_beijing(api, date(2026, 6, 3))
    assert (await _tick(api)).orders_escalated == 0  # the last day is not over
    at_beijing(api, date(2026, 6, 4))
    assert (await _tick(api)).orders_escalated == 1
    assert (await _tick(api)).orders_escalated == 0
    current = await api.get(dispute)
    assert current["attention"] == "supervision_overdue"
    escalated = await api.client.get(
        "/v1/supervision-orders", params={"status": "escalated"}, headers=api.auth("supervisor")
    )
    assert [o["id"] for o in escalated.json()["items"]] == [order["id"]]
    order = (await api.client.get(f"/v1/supervision-orders/{order['id']}")).json()
    answered = await api.client.post(
        f"/v1/supervision-orders/{order['id']}/response",
        json={"response": "迟复: 已安排再次调解"},
        headers={**api.acting("body_mediator", dispute), **_if_match(order)},
    )
    assert answered.status_code == 200, answered.text
    assert (await api.get(dispute))["attention"] is None
    actions = [e["action"] for e in await api.timeline(dispute)]
    assert actions.count("supervision_escalated") == 1


async def test_an_order_on_a_case_closed_meanwhile_is_not_escalated(api: Api) -> None:
    # The parties withdrew and the case was closed before the body answered: nothing is left to
    # supervise, and the closed case gets no flag or timeline entry from the scheduler.
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    await _order(api, dispute, due_on="2026-06-03")
    closed = await api.step(await api.step(await api.get(dispute), "withdraw"), "close")
    assert closed["status"] == "closed"
    at_beijing(api, date(2026, 6, 4))
    assert (await _tick(api)).orders_escalated == 0
    after = await api.get(dispute)
    assert (after["attention"], after["version"]) == (None, closed["version"])


async def _orders(api: Api, headers: dict[str, str], dispute: dict[str, Any]) -> dict[str, dict[str, Any]]:
    listed = await api.client.get(
        "/v1/supervision-orders", params={"dispute_id": dispute["id"]}, headers=headers
    )
    assert listed.status_code == 200, listed.text
    return {o["id"]: o for o in listed.json()["items"]}


async def _answer(api: Api, order: dict[str, Any], org: str) -> Any:
    return await api.client.post(
        f"/v1/supervision-orders/{order['id']}/response",
        json={"response": "已约见双方, 定于下周再次调解"},
        headers={**api.auth("body_mediator", org), **_if_match(order)},
    )


async def test_an_open_order_follows_the_case_to_the_body_that_takes_it_over(api: Api) -> None:
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    village, town = str(api.bodies["village"]), str(api.bodies["town"])
    order = await _order(api, dispute)
    # An order addressed on purpose to a body that is not handling the case stays with it.
    guidance = await _order(
        api, await api.get(dispute), body_id=town, instruction="请镇调委会指导村调委会调解"
    )
    transferred = await api.step(await api.get(dispute), "transfer")
    assert (transferred["status"], transferred["body_id"]) == ("accepted", None)

    # While the case waits at the center the order is addressed to no body: the village, which no
    # longer has the case, neither sees it nor may answer it, like any body it is not addressed to.
    listed = await _orders(api, api.auth("supervisor"), dispute)
    assert (listed[order["id"]]["body_id"], listed[order["id"]]["status"]) == (None, "issued")
    assert listed[guidance["id"]]["body_id"] == town
    assert await _orders(api, api.auth("body_mediator", "village"), dispute) == {}
    refused = await _answer(api, listed[order["id"]], "village")
    assert refused.status_code == 404
    assert (
        refused.json()["type"] == (await _answer(api, listed[order["id"]], "labour_mediation")).json()["type"]
    )

    # The town takes the case: the order is its to answer, with the same instruction and last day.
    assign = {"body_id": town, "override_reason": "村调委会转办, 由镇调委会调解"}
    assigned = await api.step(await api.get(dispute), "assign", assign)
    listed = await _orders(api, api.auth("supervisor"), dispute)
    moved = listed[order["id"]]
    assert (moved["body_id"], moved["instruction"], moved["due_on"], moved["status"]) == (
        town,
        order["instruction"],
        order["due_on"],
        "issued",
    )
    assert listed[guidance["id"]]["version"] == guidance["version"]
    assert set(await _orders(api, api.auth("body_mediator", "town"), dispute)) == {
        order["id"],
        guidance["id"],
    }
    entries = [e for e in await api.timeline(dispute) if e["action"] == "supervision_readdressed"]
    assert [(e["payload"]["order_id"], e["payload"]["body_id"], e["payload"]["due_on"]) for e in entries] == [
        (order["id"], town, order["due_on"])
    ]
    assert "枫桥镇人民调解委员会" in entries[0]["reason"]
    assert entries[0]["seq"] == (await api.get(dispute))["version"] > assigned["version"] - 1
    async with api.app.state.db.reader() as session:
        events = (
            await session.scalars(
                select(OutboxEvent).where(OutboxEvent.dispute_id == uuid.UUID(dispute["id"]))
            )
        ).all()
    [event] = [e for e in events if e.data["action"] == "supervision_readdressed"]
    assert (event.type, event.body_id, event.data["body_id"]) == (
        "cn.mediation.dispute.supervision_issued",
        api.bodies["town"],
        town,
    )

    # The village is refused still; the town answers.
    assert (await _answer(api, moved, "village")).status_code == 404
    answered = await _answer(api, moved, "town")
    assert answered.status_code == 200, answered.text
    assert (answered.json()["status"], answered.json()["body_id"]) == ("responded", town)
    assert village not in {
        o["body_id"] for o in (await _orders(api, api.auth("supervisor"), dispute)).values()
    }


async def test_an_order_waiting_for_the_next_body_is_escalated_against_that_body(api: Api) -> None:
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    order = await _order(api, dispute, due_on="2026-06-03")
    at_beijing(api, date(2026, 6, 2))
    await api.step(await api.get(dispute), "transfer")
    waiting = await api.get(dispute)
    # Past its last day with no body holding the case: nobody is escalated against.
    at_beijing(api, date(2026, 6, 4))
    assert (await _tick(api)).orders_escalated == 0
    after = await api.get(dispute)
    assert (after["attention"], after["version"]) == (None, waiting["version"])
    assign = {"body_id": str(api.bodies["town"]), "override_reason": "村调委会转办, 由镇调委会调解"}
    await api.step(after, "assign", assign)
    at_beijing(api, date(2026, 6, 5))
    assert (await _tick(api)).orders_escalated == 1
    [escalation] = [e for e in await api.timeline(dispute) if e["action"] == "supervision_escalated"]
    assert escalation["payload"]["body_id"] == str(api.bodies["town"])
    current = (await _orders(api, api.auth("supervisor"), dispute))[order["id"]]
    assert (current["status"], current["body_id"], current["due_on"]) == (
        "escalated",
        str(api.bodies["town"]),
        "2026-06-03",
    )
    assert (await api.get(dispute))["attention"] == "supervision_overdue"
    answered = await _answer(api, current, "town")
    assert answered.status_code == 200, answered.text
    assert (await api.get(dispute))["attention"] is None


async def test_an_escalated_order_stays_escalated_and_flagged_with_the_next_body(api: Api) -> None:
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    order = await _order(api, dispute, due_on="2026-06-03")
    at_beijing(api, date(2026, 6, 4))
    assert (await _tick(api)).orders_escalated == 1
    # Up a tier: the county's supervisor sends it to the town.
    escalated = await api.step(await api.get(dispute), "escalate")
    assert escalated["body_id"] is None
    listed = await _orders(api, api.auth("supervisor"), dispute)
    assert (listed[order["id"]]["status"], listed[order["id"]]["body_id"]) == ("escalated", None)
    assign = {"body_id": str(api.bodies["town"]), "override_reason": "上移至镇调委会"}
    assigned = await api.step(await api.get(dispute), "assign", assign)
    # Assigning clears what the case waited for, but the order is still unanswered past its day.
    assert (await api.get(dispute))["attention"] == "supervision_overdue"
    assert assigned["body_id"] == str(api.bodies["town"])
    current = (await _orders(api, api.auth("body_mediator", "town"), dispute))[order["id"]]
    assert current["status"] == "escalated"
    at_beijing(api, date(2026, 6, 5))
    assert (await _tick(api)).orders_escalated == 0  # escalated once, with the village
    answered = await _answer(api, current, "town")
    assert answered.status_code == 200, answered.text
    assert (await api.get(dispute))["attention"] is None


async def test_a_case_owner_is_set_and_cleared(api: Api) -> None:
    dispute = await api.drive("mediating")
    url = f"/v1/disputes/{dispute['id']}/owner"
    owned = await api.client.put(
        url,
        json={"name": "王副书记", "title": "镇党委副书记", "reason": "涉及多户, 由镇领导包案"},
        headers={**api.auth("supervisor"), **_if_match(dispute)},
    )
    assert owned.status_code == 200, owned.text
    assert owned.json()["owner"]["name"] == "王副书记"
    cleared = await api.client.put(
        url, json=None, headers={**api.auth("supervisor"), **_if_match(owned.json())}
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["owner"] is None
    actions = [e["action"] for e in await api.timeline(dispute)]
    assert actions[-2:] == ["owner_set", "owner_cleared"]


# ---- follow-up visits ------------------------------------------------------------------------------


async def _visit_task(api: Api, dispute: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.get(
        "/v1/follow-ups",
        params={"kind": "visit", "dispute_id": dispute["id"]},
        headers=api.acting("body_mediator", dispute),
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) == 1
    return items[0]


async def test_closed_case_gets_a_visit_then_is_archived_with_its_satisfaction(api: Api) -> None:
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("closed")
    assert dispute["clock"]["name"] == "follow_up_visit" and dispute["clock"]["due_on"] == "2026-07-01"
    task = await _visit_task(api, dispute)
    assert (task["kind"], task["status"], task["body_id"]) == ("visit", "open", dispute["body_id"])
    refused = await api.act(await api.get(dispute), "archive", {})
    assert refused.status_code == 422
    assert refused.json()["reasons"][0]["code"] == "follow_up_visit_missing"
    visited = await api.client.post(
        f"/v1/follow-ups/{task['id']}/visit",
        json={
            "visited_on": "2026-06-01",
            "contact_method": "phone",
            "reached": True,
            "satisfaction": 4,
            "agreement_performed": True,
            "notes": "双方表示协议已履行, 邻里关系缓和",
        },
        headers={**api.acting("body_mediator", dispute), **await api.case_if_match(dispute["id"])},
    )
    assert visited.status_code == 200, visited.text
    assert visited.json()["status"] == "done"
    archived = await api.step(await api.get(dispute), "archive", {})
    assert archived["status"] == "archived" and archived["clock"] is None
    actions = [e["action"] for e in await api.timeline(dispute)]
    assert actions[-2:] == ["visit_completed", "archive"]
    async with api.app.state.db.reader() as session:
        row = await session.get(Dispute, uuid.UUID(dispute["id"]))
        assert row is not None and row.satisfaction == 4


async def test_parties_unreachable_after_three_tries_make_the_visit_impossible(api: Api) -> None:
    dispute = await api.drive("closed")
    task = await _visit_task(api, dispute)
    for attempt in range(1, 4):
        response = await api.client.post(
            f"/v1/follow-ups/{task['id']}/visit",
            json={"visited_on": api.today.isoformat(), "contact_method": "phone", "reached": False},
            # Each try moves the case's version on: the next names the one it left.
            headers={**api.acting("body_mediator", dispute), **await api.case_if_match(dispute["id"])},
        )
        assert response.status_code == 200, response.text
        assert len(response.json()["attempts"]) == attempt
    assert response.json()["status"] == "impossible"
    assert response.json()["result"] == {"outcome": "unreachable", "attempts": 3}
    assert (await api.step(await api.get(dispute), "archive", {}))["status"] == "archived"
    # A reached visit needs its rating.
    other = await api.drive("closed")
    task = await _visit_task(api, other)
    bad = await api.client.post(
        f"/v1/follow-ups/{task['id']}/visit",
        json={"visited_on": api.today.isoformat(), "contact_method": "visit", "reached": True},
        headers={**api.acting("body_mediator", other), **await api.case_if_match(other["id"])},
    )
    assert bad.status_code == 422


async def test_a_visit_recorded_as_impossible_with_a_reason_allows_archiving(api: Api) -> None:
    dispute = await api.drive("closed")
    task = await _visit_task(api, dispute)
    response = await api.client.post(
        f"/v1/follow-ups/{task['id']}/impossible",
        json={"reason": "申请人已迁居外省, 无联系方式"},
        headers={**api.auth("clerk"), **await api.case_if_match(dispute["id"])},
    )
    assert response.status_code == 200, response.text
    assert (await api.step(await api.get(dispute), "archive", {}))["status"] == "archived"


# ---- early warning ---------------------------------------------------------------------------------


def _employer(serial: int = 1) -> dict[str, Any]:
    first17 = f"91330681MA2C{serial:05d}"
    return {
        "role": "respondent",
        "kind": "organisation",
        "name": "诸暨市某建筑劳务有限公司",
        "id_type": "uscc",
        "id_number": first17 + uscc.calc_check_digit(first17),
    }


async def _wage_claim(api: Api, worker: int, employer: int = 1) -> dict[str, Any]:
    return await api.intake(
        category="labour",
        description="工人追讨拖欠工资, 申请调解。",
        parties=[person("applicant", f"工人{worker}", 100 + worker), _employer(employer)],
    )


async def test_six_wage_claims_against_one_employer_in_five_days_raise_one_cluster_alert(api: Api) -> None:
    cases = []
    for n in range(6):
        at_beijing(api, date(2026, 6, 1 + min(n, 4)))  # 1-5 June
        cases.append(await _wage_claim(api, n))
    listed = await api.client.get("/v1/alerts", params={"kind": "cluster"}, headers=api.auth("supervisor"))
    alerts = listed.json()["items"]
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert["case_count"], alert["status"], alert["details"]["by"]) == (6, "open", "respondent")
    full = (await api.client.get(f"/v1/alerts/{alert['id']}", headers=api.auth("supervisor"))).json()
    assert {c["dispute_id"] for c in full["cases"]} == {c["id"] for c in cases}
    # The case that raised it and each one that joined it carry it on their timeline.
    assert "alert_raised" in [e["action"] for e in await api.timeline(cases[4])]
    assert "alert_raised" in [e["action"] for e in await api.timeline(cases[5])]
    assert "alert_raised" not in [e["action"] for e in await api.timeline(cases[0])]
    of_case = await api.client.get(f"/v1/disputes/{cases[0]['id']}/alerts")
    assert [a["id"] for a in of_case.json()] == [alert["id"]]
    # Acknowledged, then resolved; a later wave raises a new alert.
    acknowledged = await api.client.post(
        f"/v1/alerts/{alert['id']}/acknowledgement",
        json={"note": "已通知人社所"},
        headers={**api.auth("supervisor"), **_if_match(full)},
    )
    assert acknowledged.status_code == 200, acknowledged.text
    resolved = await api.client.post(
        f"/v1/alerts/{alert['id']}/resolution",
        json={"resolution": "联合人社所约谈企业, 已制定工资支付计划"},
        headers={**api.auth("supervisor"), **_if_match(acknowledged.json())},
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    assert [e["action"] for e in await api.timeline(cases[0])][-2:] == [
        "alert_acknowledged",
        "alert_resolved",
    ]
    # The cases the supervisor handled do not count again: one more claim is no wave; five new
    # claimants are, and their alert lists them alone.
    at_beijing(api, date(2026, 6, 6))
    later = [await _wage_claim(api, 7)]
    listed = await api.client.get(
        "/v1/alerts", params={"kind": "cluster", "status": "open"}, headers=api.auth("supervisor")
    )
    assert listed.json()["items"] == []
    later += [await _wage_claim(api, worker) for worker in (8, 9, 10, 11)]
    listed = await api.client.get(
        "/v1/alerts", params={"kind": "cluster", "status": "open"}, headers=api.auth("supervisor")
    )
    [second] = listed.json()["items"]
    assert second["id"] != alert["id"] and second["case_count"] == 5
    second_full = (await api.client.get(f"/v1/alerts/{second['id']}", headers=api.auth("supervisor"))).json()
    assert {c["dispute_id"] for c in second_full["cases"]} == {c["id"] for c in later}
    # One worker filing five times against another employer is one claimant, not a crowd.
    for _ in range(5):
        await _wage_claim(api, 99, employer=2)
    listed = await api.client.get(
        "/v1/alerts", params={"kind": "cluster", "status": "open"}, headers=api.auth("supervisor")
    )
    assert len(listed.json()["items"]) == 1


async def test_claimants_are_recognised_by_phone_or_company_name_when_no_id_number_is_given(api: Api) -> None:
    """A wave counts claimants, not cases: each case stands for its first applicant the parties
    recognise, by ID number, else (a company) by its name, else by phone; a case whose applicant
    nothing recognises counts on its own."""
    at_beijing(api, date(2026, 7, 1))

    def worker(name: str, phone: str | None) -> dict[str, Any]:
        return {"role": "applicant", "kind": "person", "name": name, "phone": phone}

    def supplier(name: str) -> dict[str, Any]:
        return {"role": "applicant", "kind": "organisation", "name": name}

    async def claims(employer: int, applicants: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
        for listed_first in applicants:
            await api.intake(
                category="labour",
                description="追讨拖欠款项, 申请调解。",
                parties=[*listed_first, _employer(employer)],
            )
        listed = await api.client.get(
            "/v1/alerts", params={"kind": "cluster", "status": "open"}, headers=api.auth("supervisor")
        )
        items: list[dict[str, Any]] = listed.json()["items"]
        return items

    # One worker without an ID number, five times by the same phone (under other names): one claimant.
    assert await claims(4, [[worker(f"工人{n}", "13900001111")] for n in range(5)]) == []
    # One supplier company five times: one claimant. Each case also lists a different worker after
    # it; a case stands for its first applicant.
    company = [[supplier("诸暨市某建材商行"), worker(f"工人{n}", f"1390000200{n}")] for n in range(5)]
    assert await claims(5, company) == []
    # Five workers nobody can recognise (no ID number, no phone): five claimants, a wave.
    raised = await claims(6, [[worker(f"工人{n}", None)] for n in range(5)])
    assert len(raised) == 1 and raised[0]["case_count"] == 5


async def test_fifteen_cases_of_one_category_in_one_town_in_three_days_raise_a_category_alert(
    api: Api,
) -> None:
    """The category wave counts a town's cases (the first nine digits of the region code); the same
    category in the next town of the county is not part of it."""

    async def consumer_case(n: int, region_code: str) -> dict[str, Any]:
        return await api.intake(
            category="consumer",
            region_code=region_code,
            parties=[person("applicant", "顾客", 300 + n), person("respondent", "商户", 600 + n)],
        )

    async def category_alerts() -> list[dict[str, Any]]:
        listed = await api.client.get(
            "/v1/alerts", params={"kind": "cluster"}, headers=api.auth("supervisor")
        )
        return [a for a in listed.json()["items"] if a["details"]["by"] == "category"]

    town = []
    for n in range(14):
        at_beijing(api, date(2026, 6, 1 + n % 3))  # 1-3 June
        town.append(await consumer_case(n, "330681105201"))
    for n in range(14, 18):
        await consumer_case(n, "330681101200")  # 店口镇: the same county, another town
    assert await category_alerts() == []
    at_beijing(api, date(2026, 6, 3), hour=16)  # within three days of the first
    town.append(await consumer_case(18, "330681105202"))  # another village of 枫桥镇
    [alert] = await category_alerts()
    assert alert["case_count"] == 15
    # The supervisor reads the category by its name, and the town by its code.
    assert (
        alert["title"]
        == "群体性风险预警: 3 日内 15 起纠纷 (同一乡镇同类纠纷短期内集中发生): 消费类, 乡镇代码 330681105"
    )
    full = (await api.client.get(f"/v1/alerts/{alert['id']}", headers=api.auth("supervisor"))).json()
    assert {c["dispute_id"] for c in full["cases"]} == {c["id"] for c in town}


async def test_a_case_joining_an_open_wave_keeps_its_title_and_reads_none_of_its_cases(api: Api) -> None:
    """Once a wave has its alert, a case of the wave joins it: the alert counts one case more and
    keeps the title of the cases that raised it (a case whose own window holds fewer cases does not
    rename it "1 起纠纷"). Joining costs the same however large the wave: the same statements at the
    wave's sixteenth case and its twenty-first, none of them given the wave's cases."""

    async def consumer_case(n: int) -> dict[str, Any]:
        return await api.intake(
            category="consumer",
            region_code="330681105201",
            parties=[person("applicant", "顾客", 700 + n), person("respondent", "商户", 900 + n)],
        )

    async def category_alert() -> dict[str, Any]:
        listed = await api.client.get(
            "/v1/alerts", params={"kind": "cluster"}, headers=api.auth("supervisor")
        )
        [alert] = [a for a in listed.json()["items"] if a["details"]["by"] == "category"]
        return alert

    wave: set[str] = set()  # the earlier cases' ids, as either database may bind them
    for n in range(15):
        at_beijing(api, date(2026, 6, 1 + n % 3), hour=9 + n // 3)  # 1-3 June
        case_id = uuid.UUID((await consumer_case(n))["id"])
        wave |= {str(case_id), case_id.hex}
    raised = await category_alert()
    assert raised["case_count"] == 15
    assert raised["title"].startswith("群体性风险预警: 3 日内 15 起纠纷")

    statements: list[tuple[str, int]] = []

    def log(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        rows = parameters if many else [parameters]
        values = [v for row in rows for v in (row.values() if isinstance(row, dict) else row)]
        flat = [str(x) for v in values for x in (v if isinstance(v, list | tuple) else [v])]
        statements.append((" ".join(statement.split()), sum(value in wave for value in flat)))

    engine = api.app.state.db.write_engine.sync_engine
    joined: list[list[tuple[str, int]]] = []  # each statement, with how many of the wave's cases it is given
    for n in range(15, 21):
        at_beijing(api, date(2026, 6, 3), hour=n - 1)  # every case of the wave within three days
        event.listen(engine, "before_cursor_execute", log)
        try:
            case = await consumer_case(n)
        finally:
            event.remove(engine, "before_cursor_execute", log)
        joined.append(statements[:])
        statements.clear()
        assert "alert_raised" in [e["action"] for e in await api.timeline(case)]
    assert any("INSERT INTO alert_cases" in sql for sql, _ in joined[-1]), joined[-1]
    assert joined[0] == joined[-1]  # the sixteenth case's statements, and the twenty-first's
    assert all(given == 0 for _, given in joined[-1]), "no statement is given the wave's cases"
    assert not [sql for sql, _ in joined[-1] if "count(" in sql.lower()], "no claimants counted"
    # Nor does it ask which of its cases the alert lists: it lists none of a case being registered.
    assert not [sql for sql, _ in joined[-1] if sql.startswith("SELECT alert_cases.dispute_id")]
    # 5 June: this case's own three days hold only the cases of 3 June and since, fewer than
    # fifteen; it joins the wave all the same, under the title the wave was raised with.
    at_beijing(api, date(2026, 6, 5))
    assert "alert_raised" in [e["action"] for e in await api.timeline(await consumer_case(21))]
    alert = await category_alert()
    assert alert["case_count"] == 22
    assert alert["title"] == raised["title"]


async def _consumer_case(api: Api, n: int) -> dict[str, Any]:
    """A consumer dispute in 枫桥镇, with an applicant and a respondent of its own."""
    return await api.intake(
        category="consumer",
        region_code="330681105201",
        parties=[person("applicant", "顾客", 1300 + n), person("respondent", "商户", 1500 + n)],
    )


async def _consumer_case_stopped_after_looking(
    api: Api, monkeypatch: pytest.MonkeyPatch, n: int, day: date, hour: int = 10
) -> tuple[asyncio.Task[dict[str, Any]], asyncio.Event]:
    """The intake of consumer case `n` at `day`, `hour`, stopped once it has looked for its waves;
    it goes on when the returned event is set, and the task gives the case."""
    looked, go_on = first_intake_waits_after_looking(monkeypatch)
    at_beijing(api, day, hour)
    task = asyncio.create_task(_consumer_case(api, n))
    await asyncio.wait_for(looked.wait(), 10)
    return task, go_on


async def _category_alert(api: Api) -> dict[str, Any]:
    listed = await api.client.get("/v1/alerts", params={"kind": "cluster"}, headers=api.auth("supervisor"))
    [alert] = [a for a in listed.json()["items"] if a["details"]["by"] == "category"]
    full = (await api.client.get(f"/v1/alerts/{alert['id']}", headers=api.auth("supervisor"))).json()
    return dict(full)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_case_alone_when_it_looked_joins_the_wave_raised_while_it_waited(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A case that was alone in its window when it looked, and whose wave fifteen later intakes
    raise before it reaches the counter, is not in their reading (it had not committed), so it
    joins their alert under the counter."""
    first, go_on = await _consumer_case_stopped_after_looking(api, monkeypatch, 0, date(2026, 6, 1))
    later = []
    for n in range(1, 16):
        at_beijing(api, date(2026, 6, 1), hour=11 + n // 3)
        later.append(await _consumer_case(api, n))
    go_on.set()
    alone = await asyncio.wait_for(first, 10)

    alert = await _category_alert(api)
    assert alert["title"].startswith("群体性风险预警: 3 日内 15 起纠纷"), "raised by the fifteen later ones"
    assert alert["case_count"] == 16
    assert {c["dispute_id"] for c in alert["cases"]} == {c["id"] for c in [alone, *later]}
    [noted] = [e for e in await api.timeline(alone) if e["action"] == "alert_raised"]
    assert noted["reason"] == alert["title"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_wave_two_intakes_each_saw_short_is_raised_by_the_later_to_take_the_counter(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thirteen cases of a wave; two more arrive at once, and each sees fourteen. The later of them
    to arrive takes the counter first, and raises nothing. The earlier takes it next: one intake
    was numbered since it looked, so the wave may have reached fifteen. It reads the wave again,
    on to the present (the other case was registered after it), and raises the alert with all
    fifteen cases (a wave of exactly fifteen would otherwise wait for a sixteenth)."""
    before = []
    for n in range(13):
        at_beijing(api, date(2026, 6, 1 + n % 3), hour=9 + n // 3)  # 1-3 June
        before.append(await _consumer_case(api, n))
    waiting, go_on = await _consumer_case_stopped_after_looking(api, monkeypatch, 13, date(2026, 6, 3), 15)
    at_beijing(api, date(2026, 6, 3), hour=16)
    other = await _consumer_case(api, 14)
    assert "alert_raised" not in [e["action"] for e in await api.timeline(other)], "it saw fourteen"
    go_on.set()
    last = await asyncio.wait_for(waiting, 10)

    alert = await _category_alert(api)
    assert alert["title"].startswith("群体性风险预警: 3 日内 15 起纠纷")
    assert alert["case_count"] == 15
    assert {c["dispute_id"] for c in alert["cases"]} == {c["id"] for c in [*before, other, last]}
    [noted] = [e for e in await api.timeline(last) if e["action"] == "alert_raised"]
    assert noted["reason"] == alert["title"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_case_that_would_have_raised_a_wave_raised_meanwhile_joins_it_under_its_title(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A case looks and sees sixteen cases in its window, two of them three days old. Before it
    takes the counter, later intakes, whose windows have left those two behind, raise the wave
    with fifteen. The case joins their alert with the cases it saw, and the alert keeps the title
    it was raised with."""
    before = []
    for n in range(15):
        at_beijing(api, date(2026, 6, 1 + (n + 1) // 8), hour=9 + n % 8)  # two on 1 June, 9-10h
        before.append(await _consumer_case(api, n))
    waiting, go_on = await _consumer_case_stopped_after_looking(api, monkeypatch, 15, date(2026, 6, 4), 8)
    at_beijing(api, date(2026, 6, 4), hour=11)
    later = [await _consumer_case(api, 16), await _consumer_case(api, 17)]
    raised = await _category_alert(api)
    assert raised["title"].startswith("群体性风险预警: 3 日内 15 起纠纷"), "the later two saw fifteen"
    go_on.set()
    joined = await asyncio.wait_for(waiting, 10)

    alert = await _category_alert(api)
    assert alert["title"] == raised["title"]
    assert alert["case_count"] == 18
    assert {c["dispute_id"] for c in alert["cases"]} == {c["id"] for c in [*before, *later, joined]}
    [noted] = [e for e in await api.timeline(joined) if e["action"] == "alert_raised"]
    assert noted["reason"] == alert["title"]


async def test_a_wave_short_of_claimants_is_read_once_by_an_intake_nobody_raced(api: Api) -> None:
    """Fifteen cases of one town and category in three days, all brought by one resident: one
    claimant, no alert. The next case, with no other intake between its look and its number,
    reads the wave and counts its claimants once; under the counter there is nothing new to read."""
    one_resident = person("applicant", "顾客", 1700)
    statements: list[str] = []

    def log(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    engine = api.app.state.db.write_engine.sync_engine
    for n in range(16):
        at_beijing(api, date(2026, 6, 1 + n % 3), hour=9 + n // 3) if n < 15 else at_beijing(
            api, date(2026, 6, 3), hour=20
        )
        statements.clear()
        event.listen(engine, "before_cursor_execute", log)
        try:
            case = await api.intake(
                category="consumer",
                region_code="330681105201",
                parties=[one_resident, person("respondent", "商户", 1800 + n)],
            )
        finally:
            event.remove(engine, "before_cursor_execute", log)
    assert "alert_raised" not in [e["action"] for e in await api.timeline(case)]
    town_wave = [sql for sql in statements if "substr(disputes.region_code" in sql and "category" in sql]
    claimants = [sql for sql in statements if "count(" in sql.lower()]
    assert (len(town_wave), len(claimants)) == (1, 1), statements


async def test_the_category_wave_is_read_off_its_index(api: Api) -> None:
    """The query spells the town as the index does (migration 0014), so the database can use it."""
    from mediation.alerts.service import _CATEGORY_WAVE_IN_TOWN

    params = {
        "county": "330681",
        "town": "330681105",
        "category": "consumer",
        "since": datetime(2026, 6, 1, tzinfo=UTC),
        "until": datetime(2026, 6, 4, tzinfo=UTC),
        "key": "cluster:test",
    }
    assert "ix_disputes_town_category_created_at" in await _plan(api, _CATEGORY_WAVE_IN_TOWN, params)


async def _plan(api: Api, query: Any, params: dict[str, Any]) -> str:
    """How the database would run `query`, as its EXPLAIN tells."""
    async with api.app.state.db.writer() as session:
        dialect = session.get_bind().dialect
        compiled = query.compile(dialect=dialect)
        values = compiled.construct_params(params)
        positional = [values[name] for name in compiled.positiontup or ()]
        driver = (await (await session.connection()).get_raw_connection()).driver_connection
        if dialect.name == "postgresql":
            # Too few rows for the planner to prefer any index of its own accord.
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            rows = await driver.fetch(f"EXPLAIN {compiled}", *positional)
            plan = "\n".join(r[0] for r in rows)
        else:
            positional = [v.isoformat() if isinstance(v, datetime) else v for v in positional]
            async with driver.execute(f"EXPLAIN QUERY PLAN {compiled}", positional) as cursor:
                plan = "\n".join(str(r[-1]) for r in await cursor.fetchall())
    return plan


async def test_five_residents_of_one_housing_project_in_a_week_raise_a_place_alert(api: Api) -> None:
    """The place wave: the same place named in the cases' addresses, whatever the building or room
    (alerts.detect.place_key), within seven days in the county. Each case keeps its place from
    intake; the next project down the road is another place."""

    async def at_home(n: int, address: str) -> dict[str, Any]:
        return await api.intake(
            category="property_management",
            address=address,
            parties=[person("applicant", f"业主{n}", 400 + n), person("respondent", f"邻居{n}", 500 + n)],
        )

    async def place_alerts() -> list[dict[str, Any]]:
        listed = await api.client.get(
            "/v1/alerts", params={"kind": "cluster"}, headers=api.auth("supervisor")
        )
        return [a for a in listed.json()["items"] if a["details"]["by"] == "place"]

    homes = ["诸暨市枫桥镇幸福小区3栋2单元501", "诸暨市枫桥镇幸福小区 5栋", "诸暨市枫桥镇幸福小区12幢302室"]
    project = []
    for n in range(4):
        at_beijing(api, date(2026, 6, 1 + n))
        project.append(await at_home(n, homes[n % len(homes)]))
    await at_home(9, "诸暨市枫桥镇和平小区1栋")  # another project
    assert await place_alerts() == []
    at_beijing(api, date(2026, 6, 7))  # within seven days of the first
    project.append(await at_home(4, "诸暨市枫桥镇幸福小区8栋101"))
    [alert] = await place_alerts()
    assert alert["case_count"] == 5
    full = (await api.client.get(f"/v1/alerts/{alert['id']}", headers=api.auth("supervisor"))).json()
    assert {c["dispute_id"] for c in full["cases"]} == {c["id"] for c in project}


async def test_a_place_named_at_length_raises_its_alert_under_a_key_that_fits(api: Api) -> None:
    """An address may be 200 characters long; the alert's key, which names the place after the
    rule and the county, still fits its column (PostgreSQL refused the insert before)."""
    address = "诸暨市枫桥镇" + "幸福" * 97
    for n in range(5):
        await api.intake(
            category="property_management",
            address=address,
            parties=[person("applicant", f"业主{n}", 440 + n), person("respondent", "物业公司", 540 + n)],
        )
    async with api.app.state.db.writer() as session:
        keys = (await session.execute(select(Alert.key, Alert.open_key).where(Alert.kind == "cluster"))).all()
        places = (await session.scalars(select(Dispute.place_key).where(Dispute.address == address))).all()
    [(key, open_key)] = [k for k in keys if k[0].startswith("cluster:place:")]
    assert key == open_key and len(key) == 200
    assert len(places) == 5 and len(set(places)) == 1 and len(places[0]) == 200


async def test_the_place_wave_is_read_off_its_index(api: Api) -> None:
    from mediation.alerts.service import _PLACE_WAVE

    params = {
        "county": "330681",
        "place": "诸暨市枫桥镇幸福小区",
        "since": datetime(2026, 6, 1, tzinfo=UTC),
        "until": datetime(2026, 6, 8, tzinfo=UTC),
        "key": "cluster:test",
    }
    assert "ix_disputes_place_key_created_at" in await _plan(api, _PLACE_WAVE, params)


@pytest.mark.parametrize(
    "description",
    [
        "手机充电时电池炸了, 要求商家退货赔偿。",  # a consumer complaint, not a bomb
        "双方均表示不会报复对方, 同意调解。",  # a threat denied
        "申请人多次上门讨说法未果, 要求返还押金。",  # an ordinary claim
        "没有人拿刀, 只是言语冲突。",
        "被申请人没有拿刀, 双方已冷静。",  # the negation denies the word itself
        "申请人称不会跳楼, 只是一时气话。",
        "双方表示不会再去报复对方, 同意调解。",
    ],
)
async def test_ordinary_words_and_denied_threats_raise_no_risk(api: Api, description: str) -> None:
    # 人民调解法 Art. 25 asks for the police where violence threatens; a false alarm sends a small
    # case past its village (小事不出村) and floods the supervisors.
    dispute = await api.intake(description=description)
    assert (dispute["is_risk"], dispute["attention"]) == (False, None)
    listed = await api.client.get("/v1/alerts", params={"kind": "risk"}, headers=api.auth("supervisor"))
    assert listed.json()["items"] == []


@pytest.mark.parametrize(
    "description",
    [
        "拖欠工资三个月, 申请人称再没钱就跳楼。",  # the money is denied, the jump is threatened
        "对方说没有钱就拿刀去找他。",
        "工人称再没钱便堵路讨薪。",
        "申请人称工资再没了就上吊。",
        "催讨无果, 对方答没有。跳楼的话已说过多次。",  # the negation ends its clause
    ],
)
async def test_a_threat_after_a_negated_condition_raises_a_risk(api: Api, description: str) -> None:
    dispute = await api.intake(description=description)
    assert dispute["is_risk"] is True and dispute["attention"] == "risk"
    alerts = (await api.client.get(f"/v1/disputes/{dispute['id']}/alerts")).json()
    assert [(a["kind"], a["level"]) for a in alerts] == [("risk", "immediate")]


async def test_a_threat_said_once_counts_though_denied_elsewhere(api: Api) -> None:
    dispute = await api.intake(description="被申请人扬言报复, 事后又称不会报复, 申请人仍感害怕。")
    assert dispute["is_risk"] is True and dispute["attention"] == "risk"


async def test_a_threat_of_violence_at_intake_raises_a_risk_alert_at_once(api: Api) -> None:
    dispute = await api.intake(description="因宅基地边界争执, 被申请人扬言要拿刀砍死对方, 情绪激动。")
    assert dispute["is_risk"] is True and dispute["attention"] == "risk"
    assert dispute["tier"] != "village"  # risk cases go up (triage rules: tiers.risk)
    alerts = (await api.client.get(f"/v1/disputes/{dispute['id']}/alerts")).json()
    assert [(a["kind"], a["level"]) for a in alerts] == [("risk", "immediate")]
    assert "violence" in alerts[0]["details"]["kinds"]
    assert "第二十五条" in alerts[0]["details"]["advice"]
    timeline = await api.timeline(dispute)
    assert [e["action"] for e in timeline][:2] == ["register", "alert_raised"]
    # An ordinary description raises nothing of the kind.
    calm = await api.intake(
        description="相邻双方因院墙滴水发生争执, 申请调解。",
        parties=[person("applicant", "赵六", 31), person("respondent", "钱七", 32)],
    )
    assert calm["is_risk"] is False
    assert (await api.client.get(f"/v1/disputes/{calm['id']}/alerts")).json() == []


async def test_a_case_the_clerk_marks_dangerous_raises_a_risk_alert_at_once(api: Api) -> None:
    """No risk word, but the clerk knows the case is dangerous (a fight the police handed over): the
    same risk alert as words of violence, with the police-report advice (人民调解法 Art. 25)."""
    dispute = await api.intake(is_risk=True, description="被申请人是公安移交的打架案当事人, 双方情绪激动。")
    assert dispute["is_risk"] is True and dispute["attention"] == "risk"
    assert dispute["tier"] != "village"
    alerts = (await api.client.get(f"/v1/disputes/{dispute['id']}/alerts")).json()
    assert [(a["kind"], a["level"], a["case_count"]) for a in alerts] == [("risk", "immediate", 1)]
    (alert,) = alerts
    assert "受理员" in alert["title"] and dispute["case_number"] in alert["title"]
    assert "第二十五条" in alert["details"]["advice"]
    assert alert["details"]["marked_by"] and alert["details"]["words"] == []
    timeline = await api.timeline(dispute)
    assert [e["action"] for e in timeline][:2] == ["register", "alert_raised"]
    assert "受理员" in timeline[1]["reason"]
    listed = await api.client.get("/v1/alerts", params={"kind": "risk"}, headers=api.auth("supervisor"))
    assert [a["id"] for a in listed.json()["items"]] == [alert["id"]]
    # The body the case goes to sees the alert too.
    assigned = await api.step(await api.step(dispute, "accept"), "assign")
    seen = await api.client.get("/v1/alerts", headers=api.acting("body_mediator", assigned))
    assert [a["id"] for a in seen.json()["items"]] == [alert["id"]]


async def test_a_case_marked_dangerous_whose_words_also_threaten_raises_one_alert(api: Api) -> None:
    dispute = await api.intake(is_risk=True, description="被申请人扬言要拿刀砍人, 情绪激动。")
    alerts = (await api.client.get(f"/v1/disputes/{dispute['id']}/alerts")).json()
    assert [(a["kind"], a["case_count"]) for a in alerts] == [("risk", 1)]
    assert "受理员" in alerts[0]["title"] and "暴力威胁" in alerts[0]["title"]
    assert "violence" in alerts[0]["details"]["kinds"]
    actions = [e["action"] for e in await api.timeline(dispute)]
    assert actions.count("alert_raised") == 1


async def test_repeated_disputes_between_the_same_parties_are_flagged(api: Api) -> None:
    parties = [person("applicant", "孙八", 41), person("respondent", "周九", 42)]
    first = await api.drive("closed", parties=parties)
    assert (await api.client.get(f"/v1/disputes/{first['id']}/alerts")).json() == []
    # The same dispute arriving again while the first is open is a duplicate, not a repeat.
    duplicate = await api.intake(parties=[person("applicant", "孙八", 41), person("respondent", "吴十", 43)])
    assert (await api.client.get(f"/v1/disputes/{duplicate['id']}/alerts")).json() == []
    second = await api.intake(parties=parties, description="双方再次因排水问题发生争执。")
    alerts = (await api.client.get(f"/v1/disputes/{second['id']}/alerts")).json()
    assert [a["kind"] for a in alerts] == ["repeat"]
    assert alerts[0]["case_count"] == 2 and "第 2 起" in alerts[0]["title"]


async def test_a_repeat_alerts_title_counts_the_cases_it_lists(api: Api) -> None:
    """The title and the list agree however the cases came to the alert: a case whose look-back
    window sees fewer earlier disputes than the alert lists still reads the alert's own count."""
    parties = [person("applicant", "郑一", 51), person("respondent", "王二", 52)]
    start = api.app.state.clock.at
    # Two hundred days apart: the third sees only the second within the year it looks back, but
    # joins the alert the second raised, which lists the first too.
    for n in range(3):
        api.app.state.clock.at = start + timedelta(days=200 * n)
        latest = await api.drive("closed", parties=parties)
    [alert] = (await api.client.get(f"/v1/disputes/{latest['id']}/alerts")).json()
    assert alert["case_count"] == 3 and "第 3 起" in alert["title"], alert["title"]


# ---- keyset pages --------------------------------------------------------------------------------


async def _every_page(api: Api, path: str, **params: Any) -> list[str]:
    """Every item id of a list, two per page, following `next_cursor` to the end."""
    ids: list[str] = []
    cursor = None
    while True:
        query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await api.client.get(path, params=query, headers=api.auth("supervisor"))
        assert response.status_code == 200, response.text
        page = response.json()
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


async def test_the_lists_page_through_ties_in_their_key_by_id_each_row_once(api: Api) -> None:
    """Alerts, supervision orders and follow-ups continue from a cursor on (key, id): rows that share
    the key (raised in the same instant, due on the same day) come in id order, none twice, none
    skipped, across page boundaries that fall between them."""
    dispute = await api.intake()
    case_id, body_id = uuid.UUID(dispute["id"]), api.bodies["village"]
    at = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
    day = date(2026, 6, 10)
    moments = [at, at, at, at.replace(hour=1), at.replace(hour=3)]
    days = [day, day, day, date(2026, 6, 9), date(2026, 6, 12)]
    alerts = [
        Alert(
            id=uuid.uuid4(),
            kind="risk",
            key=f"k{n}",
            level="high",
            region_code="330681105201",
            title="预警",
            details={},
            status="open",
            case_count=1,
            raised_at=m,
            last_seen_at=m,
            version=1,
        )
        for n, m in enumerate(moments)
    ]
    orders = [
        SupervisionOrder(
            id=uuid.uuid4(),
            dispute_id=case_id,
            body_id=body_id,
            instruction="报告进展",
            due_on=d,
            status="issued",
            issued_by="supervisor",
            issued_at=at,
            version=1,
        )
        for d in days
    ]
    tasks = [
        FollowUp(
            id=uuid.uuid4(),
            dispute_id=case_id,
            body_id=body_id,
            kind="visit",
            reason="回访",
            due_on=d,
            status="open",
            raised_at=m,
        )
        for d, m in zip(days, moments, strict=True)
    ]
    async with api.app.state.db.writer() as session, session.begin():
        session.add_all([*alerts, *orders, *tasks])
        await session.flush()
        session.add_all(AlertCase(alert_id=a.id, dispute_id=case_id, matched={}, added_at=at) for a in alerts)

    def order(rows: list[Any], key: str, newest_first: bool = False) -> list[str]:
        ranked = sorted(rows, key=lambda r: (getattr(r, key), r.id), reverse=newest_first)
        return [str(r.id) for r in ranked]

    assert await _every_page(api, "/v1/alerts") == order(alerts, "raised_at", newest_first=True)
    assert await _every_page(api, "/v1/supervision-orders") == order(orders, "due_on")
    assert await _every_page(api, "/v1/follow-ups") == order(tasks, "due_on")
    assert await _every_page(api, f"/v1/bodies/{body_id}/follow-ups") == order(tasks, "raised_at")


async def test_a_finished_case_is_not_supervised(api: Api) -> None:
    # Its order could never be escalated, nor answered by a body still handling it.
    for state in ("declined", "closed", "archived"):
        dispute = await api.drive(state)
        refused = await api.client.post(
            f"/v1/disputes/{dispute['id']}/supervision-orders",
            json={"instruction": "请报告进展"},
            headers={**api.auth("supervisor"), **_if_match(dispute), "Accept-Language": "en"},
        )
        assert refused.status_code == 409, (state, refused.text)
        assert refused.json()["code"] == "case_finished"
        assert state in refused.json()["detail"]
        listed = await api.client.get(
            "/v1/supervision-orders", params={"dispute_id": dispute["id"]}, headers=api.auth("supervisor")
        )
        assert listed.json()["items"] == []
