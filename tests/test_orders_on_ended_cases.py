"""A supervision order (督办) closes with its case (随案办结): the open orders on a case whose
follow-up ends (declined, withdrawn, handed on to arbitration or litigation, closed) lapse in the
transition that ends it, and no longer wait in the supervisors' lists or for the scheduler. A case
whose mediation failed is still followed until it is handed on or closed (人民调解法 Art. 26), so
its orders stay open. Migration 0033 lapses the orders the older release left open on ended cases
and works out again the reason each ended case waits for a supervisor."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import bindparam, select, text

from mediation.disputes.models import Dispute
from mediation.events.models import OutboxEvent
from mediation.migrate import downgrade, upgrade
from tests.support import Api, at_beijing
from tests.test_supervision_and_warning import _if_match, _order, _tick

# The steps from `mediating` to each state that ends the case's follow-up, and the role that takes
# each step when the helper's default would not do.
ENDINGS: dict[str, list[str]] = {
    "withdrawn": ["withdraw"],
    "referred_arbitration": ["fail", "refer_arbitration"],
    "referred_litigation": ["fail", "refer_litigation"],
    "closed": ["agree", "record_performance", "close"],
}


async def _listed(api: Api, dispute: dict[str, Any], status: str) -> list[str]:
    response = await api.client.get(
        "/v1/supervision-orders",
        params={"dispute_id": dispute["id"], "status": status},
        headers=api.auth("supervisor"),
    )
    assert response.status_code == 200, response.text
    return [o["id"] for o in response.json()["items"]]


async def _read(api: Api, order: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.get(f"/v1/supervision-orders/{order['id']}", headers=api.auth("supervisor"))
    assert response.status_code == 200, response.text
    return dict(response.json())


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.parametrize("ending", list(ENDINGS))
async def test_open_orders_lapse_with_the_transition_that_ends_the_case(api: Api, ending: str) -> None:
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    late = await _order(api, dispute, due_on="2026-06-03")
    waiting = await _order(api, await api.get(dispute), due_on="2026-06-10")
    at_beijing(api, date(2026, 6, 4))
    assert (await _tick(api)).orders_escalated == 1
    assert (await api.get(dispute))["attention"] == "supervision_overdue"

    at_beijing(api, date(2026, 6, 5), hour=15)
    dispute = await api.get(dispute)
    for action in ENDINGS[ending]:
        dispute = await api.step(dispute, action)
    assert dispute["status"] == ending
    # Nothing is left to supervise: the overdue order no longer keeps the case on the list.
    assert dispute["attention"] is None

    entries = await api.timeline(dispute)
    [ended] = [e for e in entries if e["to_status"] == ending and e["from_status"] != ending]
    lapses = [e for e in entries if e["action"] == "supervision_lapsed"]
    # Recorded with the transition, right after it, one entry per order.
    assert [e["seq"] for e in lapses] == [ended["seq"] + 1, ended["seq"] + 2]
    assert {e["payload"]["order_id"] for e in lapses} == {late["id"], waiting["id"]}
    for order in (late, waiting):
        now = await _read(api, order)
        assert (now["status"], now["lapse_reason"]) == ("lapsed", ending)
        assert _at(now["lapsed_at"]) == _at(ended["occurred_at"])
        assert now["version"] > order["version"]
    assert await _listed(api, dispute, "issued") == []
    assert await _listed(api, dispute, "escalated") == []
    assert set(await _listed(api, dispute, "lapsed")) == {late["id"], waiting["id"]}

    # The scheduler never escalates a lapsed order, nor writes to the ended case for it (a court or
    # commission late to answer a referral is its own matter).
    at_beijing(api, date(2026, 6, 20))
    assert (await _tick(api)).orders_escalated == 0
    assert (await api.get(dispute))["attention"] is None
    later = [e["action"] for e in await api.timeline(dispute) if e["seq"] > lapses[-1]["seq"]]
    assert not [a for a in later if a.startswith("supervision_")], later
    assert {(await _read(api, o))["status"] for o in (late, waiting)} == {"lapsed"}


async def test_a_lapse_is_published_with_the_order_it_concerns(api: Api) -> None:
    dispute = await api.drive("mediating")
    order = await _order(api, dispute)
    withdrawn = await api.step(await api.get(dispute), "withdraw")
    async with api.app.state.db.reader() as session:
        events = (
            await session.scalars(
                select(OutboxEvent).where(OutboxEvent.dispute_id == uuid.UUID(dispute["id"]))
            )
        ).all()
    [lapse] = [e for e in events if e.type == "cn.mediation.dispute.supervision_lapsed"]
    assert lapse.data["action"] == "supervision_lapsed"
    assert lapse.data["version"] == withdrawn["version"]
    assert (lapse.data["order_id"], lapse.data["body_id"], lapse.data["due_on"]) == (
        order["id"],
        order["body_id"],
        order["due_on"],
    )
    assert lapse.data["lapse_reason"] == "withdrawn"


async def test_an_order_waiting_for_the_next_body_lapses_when_the_party_withdraws(api: Api) -> None:
    # 人民调解法 Art. 23: the party ends it while the case waits at the center for its next body.
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    order = await _order(api, dispute, due_on="2026-06-03")
    transferred = await api.step(await api.get(dispute), "transfer")
    assert (await _read(api, order))["body_id"] is None
    withdrawn = await api.step(transferred, "withdraw", role="clerk")
    now = await _read(api, order)
    assert (now["status"], now["body_id"], now["lapse_reason"]) == ("lapsed", None, "withdrawn")
    # Once a body takes nothing any more, nothing is addressed to one either.
    at_beijing(api, date(2026, 6, 10))
    assert (await _tick(api)).orders_escalated == 0
    assert (await api.get(dispute))["version"] == withdrawn["version"]


async def test_an_order_on_a_case_declined_lapses_with_it(api: Api) -> None:
    dispute = await api.intake()
    order = await _order(api, dispute, body_id=str(api.bodies["village"]))
    await api.step(await api.get(dispute), "decline")
    now = await _read(api, order)
    assert (now["status"], now["lapse_reason"]) == ("lapsed", "declined")


async def test_a_failed_mediation_is_still_followed_until_it_is_handed_on(api: Api) -> None:
    # 人民调解法 Art. 26: the failure ends the mediation, not the center's follow-up: the parties are
    # told the other routes, and the case is handed on to arbitration or litigation (or closed).
    # Until then an order on it is answered, and escalated when it is not.
    at_beijing(api, date(2026, 6, 1))
    dispute = await api.drive("mediating")
    order = await _order(api, dispute, due_on="2026-06-03")
    failed = await api.step(await api.get(dispute), "fail")
    assert (await _read(api, order))["status"] == "issued"
    at_beijing(api, date(2026, 6, 4))
    assert (await _tick(api)).orders_escalated == 1
    assert (await api.get(dispute))["attention"] == "supervision_overdue"
    assert await _listed(api, failed, "escalated") == [order["id"]]
    referred = await api.step(await api.get(dispute), "refer_litigation")
    assert referred["attention"] is None
    now = await _read(api, order)
    assert (now["status"], now["lapse_reason"], now["escalated_at"] is not None) == (
        "lapsed",
        "referred_litigation",
        True,
    )


async def test_answering_a_lapsed_order_is_refused_with_the_reason(api: Api) -> None:
    dispute = await api.drive("mediating")
    order = await _order(api, dispute)
    await api.step(await api.get(dispute), "withdraw")
    lapsed = await _read(api, order)
    # The body read the order before the case was withdrawn, or after.
    for language, words, read in (("zh", "随案办结", order), ("en", "lapsed", lapsed)):
        refused = await api.client.post(
            f"/v1/supervision-orders/{order['id']}/response",
            json={"response": "已约见双方"},
            headers={
                **api.acting("body_mediator", dispute),
                **_if_match(read),
                "Accept-Language": language,
            },
        )
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert (problem["code"], problem["lapse_reason"]) == ("order_lapsed", "withdrawn")
        assert words in problem["detail"]
    assert (await _read(api, order))["version"] == lapsed["version"]


@pytest.mark.parametrize("ending", ["withdrawn", "referred_arbitration"])
async def test_a_case_whose_follow_up_ended_is_not_supervised(api: Api, ending: str) -> None:
    dispute = await api.drive(ending)
    refused = await api.client.post(
        f"/v1/disputes/{dispute['id']}/supervision-orders",
        json={"instruction": "请报告进展"},
        headers={**api.auth("supervisor"), **_if_match(dispute)},
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "case_finished"


async def test_the_case_page_shows_a_lapsed_order_and_offers_no_answer(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.drive("mediating")
    order = await _order(api, dispute)
    answer_form = f"/supervision-orders/{order['id']}/response"
    await api.signed_in("body_mediator", "village")
    web.cookies.set("mediation_session", api.tokens[("body_mediator", api.bodies["village"])])
    before = await web.get(f"/cases/{dispute['id']}")
    assert before.status_code == 200
    assert answer_form in before.text and "待答复" in before.text
    await api.step(await api.get(dispute), "withdraw")
    for role, org in (("body_mediator", "village"), ("supervisor", "center")):
        web.cookies.set("mediation_session", api.tokens[(role, api.bodies[org])])
        page = await web.get(f"/cases/{dispute['id']}")
        assert page.status_code == 200, page.text
        assert "已随案办结" in page.text and "已撤回" in page.text
        assert answer_form not in page.text
        assert 'id="issue-order"' not in page.text


# ---- migration 0033 --------------------------------------------------------------------------------


def _by_id(column: Any) -> Any:
    return bindparam("id", type_=column.type)


async def test_the_migration_lapses_orders_left_open_on_ended_cases_and_repairs_their_flags(
    api: Api, settings: Any
) -> None:
    """Migration 0033: the orders the older release left open on cases that had ended lapse, as the
    service lapses them now (when and why), and the reason each ended case waits for a supervisor
    is worked out again by the service's rule. Orders on cases still followed stay open."""
    at_beijing(api, date(2026, 6, 1))
    withdrawn = await api.drive("mediating")
    closed = await api.drive("mediating")
    failed = await api.drive("mediating")
    ongoing = await api.drive("mediating")
    risky = await api.intake(is_risk=True, description="被申请人是公安移交的打架案当事人, 双方情绪激动。")
    for action in ("accept", "assign", "sign_for"):
        risky = await api.step(risky, action)
    orders = {
        "withdrawn": await _order(api, withdrawn, due_on="2026-06-03"),
        "closed": await _order(api, closed),
        "failed": await _order(api, failed, due_on="2026-06-03"),
        "ongoing": await _order(api, ongoing, due_on="2026-06-03"),
        "risky": await _order(api, risky, due_on="2026-06-03"),
    }
    at_beijing(api, date(2026, 6, 4))
    assert (await _tick(api)).orders_escalated == 4
    await api.step(await api.get(withdrawn), "withdraw")
    await api.step(await api.step(await api.get(closed), "withdraw"), "close")
    at_beijing(api, date(2026, 6, 5))
    await api.step(await api.get(failed), "fail")
    await api.step(await api.get(risky), "withdraw")
    lapsed_now = {k: await _read(api, o) for k, o in orders.items()}
    assert {k for k, o in lapsed_now.items() if o["status"] == "lapsed"} == {"withdrawn", "closed", "risky"}

    # As the older release left them: open orders on ended cases, and the flags it kept on them.
    await api.app.state.db.engine.dispose()
    await asyncio.to_thread(downgrade, settings.database_url, "0032")
    stale = {
        withdrawn["id"]: "supervision_overdue",
        closed["id"]: "triage_exhausted",
        failed["id"]: "triage_exhausted",
        risky["id"]: "supervision_overdue",
    }
    async with api.app.state.db.engine.begin() as conn:
        statuses = {
            str(r[0]): r[1]
            for r in (await conn.execute(text("SELECT id, status FROM supervision_orders"))).all()
        }
        for dispute_id, reason in stale.items():
            await conn.execute(
                text("UPDATE disputes SET attention = :reason WHERE id = :id").bindparams(
                    _by_id(Dispute.__table__.c.id)
                ),
                {"id": uuid.UUID(dispute_id), "reason": reason},
            )
    assert sorted(statuses.values()) == ["escalated", "escalated", "escalated", "escalated", "issued"]
    await api.app.state.db.engine.dispose()
    await asyncio.to_thread(upgrade, settings.database_url)

    migrated = {k: await _read(api, o) for k, o in orders.items()}
    for key in ("withdrawn", "closed", "risky"):
        before, after = lapsed_now[key], migrated[key]
        assert (after["status"], after["lapse_reason"]) == ("lapsed", before["lapse_reason"]), key
        assert _at(after["lapsed_at"]) == _at(before["lapsed_at"]), key
        assert after["escalated_at"] == before["escalated_at"], key
    assert migrated["closed"]["lapse_reason"] == "withdrawn"  # it lapsed when the case was withdrawn
    assert (migrated["failed"]["status"], migrated["ongoing"]["status"]) == ("escalated", "escalated")
    flags = {
        k: (await api.get(d))["attention"]
        for k, d in (
            ("withdrawn", withdrawn),
            ("closed", closed),
            ("failed", failed),
            ("ongoing", ongoing),
            ("risky", risky),
        )
    }
    assert flags == {
        "withdrawn": None,
        "closed": None,
        # Still followed, with an order overdue: that is why it waits, not the search for a body.
        "failed": "supervision_overdue",
        "ongoing": "supervision_overdue",
        # Its risk alert is still open (人民调解法 Art. 25): the danger outlasts the case.
        "risky": "risk",
    }
