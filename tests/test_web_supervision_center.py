"""督办 on a case waiting at the center: the page offers the bodies the order may go to, and the
answer date and a second identical order are refused, on the page as through the API."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import update

from mediation.bodies.models import Body
from tests.support import Api, at_beijing
from tests.test_web import signed_in

INSTRUCTION = "请三日内联系双方当事人并报告进展"


def _order_form(page: str) -> str:
    start = page.index('id="issue-order"')
    return page[start : page.index("</details>", start)]


async def _issue(
    api: Api, case: dict[str, Any], h: dict[str, str] | None = None, **extra: Any
) -> httpx.Response:
    version = (await api.get(case))["version"]
    return await api.client.post(
        f"/v1/disputes/{case['id']}/supervision-orders",
        json={"instruction": INSTRUCTION, **extra},
        headers={**api.auth("supervisor"), "If-Match": f'"{version}"', **(h or {})},
    )


async def test_a_case_at_the_center_offers_the_bodies_an_order_may_go_to(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.intake()
    assert case["body_id"] is None
    shown = (await signed_in(web, api, "supervisor").get(f"/cases/{case['id']}")).text
    form = _order_form(shown)
    assert 'id="order-addressee-hint"' in form and "督办对象" in form
    offered = {key for key in api.bodies if f'value="{api.bodies[key]}"' in form}
    # Active mediation bodies covering the case's village, as the service takes them; no court,
    # suspended body, center or body of another county.
    assert offered == {"village", "town", "labour_mediation"}
    assert '<select id="f-order-body_id" name="body_id" required' in form


async def test_an_order_from_the_page_goes_to_the_body_chosen(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.intake()
    page = signed_in(web, api, "supervisor")
    sent = await page.post(
        f"/cases/{case['id']}/supervision-orders",
        {
            "version": f'"{case["version"]}"',
            "body_id": str(api.bodies["town"]),
            "instruction": INSTRUCTION,
            "idempotency_key": "o1",
        },
    )
    assert sent.status_code == 303, sent.text
    [order] = (
        await api.client.get(
            "/v1/supervision-orders", params={"dispute_id": case["id"]}, headers=api.auth("supervisor")
        )
    ).json()["items"]
    assert (order["body_id"], order["instruction"]) == (str(api.bodies["town"]), INSTRUCTION)
    issued = [e for e in await api.timeline(case) if e["action"] == "supervision_issued"]
    assert len(issued) == 1
    after = (await page.get(f"/cases/{case['id']}")).text
    assert "督办对象: 枫桥镇人民调解委员会" in after


async def test_a_body_the_order_may_not_go_to_is_refused_on_the_page(
    api: Api, web: httpx.AsyncClient
) -> None:
    case = await api.intake()
    page = signed_in(web, api, "supervisor")
    for key, reason in (
        ("other_village", "管辖区域不包括本案所在地"),
        ("suspended", "已暂停工作"),
        ("court", "不是调解组织"),
        (None, "须指明督办对象"),
    ):
        form = {"version": f'"{case["version"]}"', "instruction": INSTRUCTION, "idempotency_key": f"o-{key}"}
        if key is not None:
            form["body_id"] = str(api.bodies[key])
        refused = await page.post(f"/cases/{case['id']}/supervision-orders", form)
        assert refused.status_code == 422, (key, refused.text[:300])
        shown = _order_form(refused.text)
        assert (
            reason in shown
            and INSTRUCTION in shown
            and '<details class="task" id="issue-order" open' in refused.text
        )
    assert not [e for e in await api.timeline(case) if e["action"] == "supervision_issued"]


async def test_no_body_to_address_is_said_instead_of_the_form(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.intake()
    async with api.app.state.db.writer() as session, session.begin():
        await session.execute(
            update(Body)
            .where(Body.id.in_([api.bodies[k] for k in ("village", "town", "labour_mediation")]))
            .values(active=False)
        )
    shown = (await signed_in(web, api, "supervisor").get(f"/cases/{case['id']}")).text
    assert 'id="issue-order"' not in shown and 'id="no-addressable-body"' in shown


async def test_an_answer_date_more_than_ninety_days_away_is_refused(api: Api, web: httpx.AsyncClient) -> None:
    at_beijing(api, date(2026, 6, 1))
    case = await api.drive("mediating")
    for language, message in (
        ("zh-CN", "答复期限最长为 90 日, 不能晚于 2026-08-30"),
        ("en", "due_on is at most 90 days away: 2026-08-30 at the latest"),
    ):
        refused = await _issue(api, case, due_on="2099-12-31", h={"Accept-Language": language})
        assert refused.status_code == 422, refused.text
        [error] = refused.json()["errors"]
        assert (error["field"], error["code"], error["message"]) == ("due_on", "due_too_far", message)
    page = signed_in(web, api, "supervisor")
    shown = await page.post(
        f"/cases/{case['id']}/supervision-orders",
        {
            "version": f'"{(await api.get(case))["version"]}"',
            "instruction": INSTRUCTION,
            "due_on": "2099-12-31",
            "idempotency_key": "far",
        },
    )
    assert shown.status_code == 422 and "答复期限最长为 90 日" in _order_form(shown.text)
    last = (date(2026, 6, 1) + timedelta(days=90)).isoformat()
    assert (await _issue(api, case, due_on=last)).status_code == 201


async def test_an_identical_open_order_is_not_sent_twice(api: Api, web: httpx.AsyncClient) -> None:
    case = await api.drive("mediating")
    first = await _issue(api, case)
    assert first.status_code == 201, first.text
    again = await _issue(api, case, h={"Accept-Language": "en"})
    assert again.status_code == 409, again.text
    assert (again.json()["code"], again.json()["order_id"]) == ("order_already_open", first.json()["id"])
    shown = await signed_in(web, api, "supervisor").post(
        f"/cases/{case['id']}/supervision-orders",
        {
            "version": f'"{(await api.get(case))["version"]}"',
            "instruction": INSTRUCTION,
            "idempotency_key": "dup",
        },
    )
    assert shown.status_code == 409 and "已有一项相同的督办" in _order_form(shown.text)
    # Another instruction, or another last day, is another order.
    assert (await _issue(api, case, instruction="请一周内组织双方再次调解")).status_code == 201
    later = (date.fromisoformat(first.json()["due_on"]) + timedelta(days=1)).isoformat()
    assert (await _issue(api, case, due_on=later)).status_code == 201
