"""The case's mediator and its 包案领导 are named from the case page, as the API names them: the body
holding the case names or changes its mediator while it mediates, never one who declared a conflict
with the case or a party (特邀调解规定 Art. 16); a supervisor names, changes or clears the owner.
The page shows who they are, offers each form to whom the API lets make the change, and says a
refusal in Chinese, the case unchanged."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select

from mediation.audit.models import AuditRecord
from mediation.events.models import OutboxEvent
from tests.support import Api
from tests.test_lifecycle_rules import _declare_conflict
from tests.test_web import Page, signed_in

OWNER = {"name": "陈副镇长", "title": "枫桥镇副镇长", "reason": "医疗纠纷涉及多方, 由镇领导包案"}
# The parts of a timeline entry that say what was done, apart from when, by whom and its number.
SAID = ("action", "from_status", "to_status", "actor_role", "reason", "payload")
# The parts of an event that say which case it is about, and at which version.
WHICH = frozenset({"dispute_id", "case_number", "version"})


async def _as_body(api: Api, web: httpx.AsyncClient, dispute: dict[str, Any]) -> Page:
    """The case page as a mediator of the body holding the case, signed in."""
    body = next(name for name, id_ in api.bodies.items() if str(id_) == dispute["body_id"])
    await api.signed_in("body_mediator", body)
    web.cookies.set("mediation_session", api.tokens[("body_mediator", uuid.UUID(dispute["body_id"]))])
    return Page(web)


async def _add_mediator(api: Api, body: str, name: str) -> str:
    made = await api.client.post(
        f"/v1/bodies/{body}/mediators", json={"name": name}, headers=api.auth("admin")
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def _choose(page: Page, dispute: dict[str, Any], mediator: str, key: str) -> httpx.Response:
    return await page.post(
        f"/cases/{dispute['id']}/mediator",
        {
            "version": f'"{dispute["version"]}"',
            "mediator_id": mediator,
            "note": "原调解员休假, 改由他人承办",
            "idempotency_key": key,
        },
    )


async def _name_owner(page: Page, dispute: dict[str, Any], key: str, **owner: str) -> httpx.Response:
    return await page.post(
        f"/cases/{dispute['id']}/owner",
        {"version": f'"{dispute["version"]}"', **OWNER, **owner, "idempotency_key": key},
    )


def _said(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in SAID}


async def _events(app: Any, dispute: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    async with app.state.db.reader() as session:
        rows = await session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.dispute_id == uuid.UUID(dispute["id"]))
            .order_by(OutboxEvent.created_at, OutboxEvent.id)
        )
        return [(e.type, {k: v for k, v in e.data.items() if k not in WHICH}) for e in rows.all()]


async def _audited(app: Any, dispute: dict[str, Any], action: str) -> list[tuple[str, str]]:
    async with app.state.db.reader() as session:
        rows = await session.execute(
            select(AuditRecord.outcome, AuditRecord.actor_role).where(
                AuditRecord.action == action, AuditRecord.object_id == dispute["id"]
            )
        )
        return [(outcome, role) for outcome, role in rows.all()]


async def test_the_body_changes_the_mediator_from_the_case_page_as_the_api_does(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    dispute = await api.drive("mediating")
    twin = await api.drive("mediating")
    assert twin["body_id"] == dispute["body_id"]
    body = dispute["body_id"]
    wang = await _add_mediator(api, body, "王五")
    li = await _add_mediator(api, body, "李四")
    await _declare_conflict(api, li, body, relation="被申请人的女婿", dispute_id=dispute["id"])
    named = dispute["mediator_name"]

    page = await _as_body(api, web, dispute)
    shown = await page.get(f"/cases/{dispute['id']}")
    assert shown.status_code == 200
    assert f'id="current-mediator">{named}<' in shown.text
    form = shown.text.split('id="choose-mediator"')[1].split("</details>")[0]
    assert "更换调解员" in form and "特邀调解规定第十六条" in form
    # The body's mediators the API would take: not the one who declared a conflict, nor the one named.
    assert f'<option value="{wang}" >王五</option>' in form
    assert li not in form and "李四" not in form and dispute["mediator_id"] not in form

    changed = await _choose(page, dispute, wang, "m1")
    assert changed.status_code == 303, changed.text[:2000]
    assert changed.headers["location"] == f"/cases/{dispute['id']}?done=mediator_chosen#assignment"
    after = await api.get(dispute)
    assert (after["mediator_id"], after["mediator_name"]) == (wang, "王五")
    assert after["version"] == dispute["version"] + 1
    shown = await page.get(changed.headers["location"])
    assert "已指定承办调解员" in shown.text and 'id="current-mediator">王五<' in shown.text
    assert "指定承办调解员: <span" in shown.text

    # The same change through the API: the same timeline entry, the same event, the same audit name.
    by_api = await api.client.put(
        f"/v1/disputes/{twin['id']}/mediator",
        json={"mediator_id": wang, "note": "原调解员休假, 改由他人承办"},
        headers={**api.acting("body_mediator", twin), "If-Match": f'"{twin["version"]}"'},
    )
    assert by_api.status_code == 200, by_api.text
    web_entry, api_entry = (await api.timeline(dispute))[-1], (await api.timeline(twin))[-1]
    assert web_entry["action"] == "assign_mediator"
    assert web_entry["payload"] == {"mediator_id": wang, "mediator_name": "王五"}
    assert _said(web_entry) == _said(api_entry)
    assert (await _events(app, dispute))[-1] == (await _events(app, twin))[-1]
    assert (await _events(app, dispute))[-1][0] == "cn.mediation.dispute.mediator_assigned"
    assert await _audited(app, dispute, "choose_mediator") == [("success", "body_mediator")]


async def test_a_mediator_who_declared_a_conflict_is_refused_on_the_page(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.drive("mediating")
    body = dispute["body_id"]
    li = await _add_mediator(api, body, "李四")
    await _declare_conflict(api, li, body, relation="被申请人的女婿", dispute_id=dispute["id"])
    page = await _as_body(api, web, dispute)

    refused = await _choose(page, dispute, li, "c1")
    assert refused.status_code == 422, refused.text[:2000]
    # Said in the form that was sent, which comes back open.
    form = refused.text.split('id="choose-mediator"')[1].split("</details>")[0]
    assert form.startswith(" open")
    assert "调解员「李四」已申报与本案当事人存在利害关系 (被申请人的女婿), 应当回避" in form
    after = await api.get(dispute)
    assert (after["mediator_id"], after["version"]) == (dispute["mediator_id"], dispute["version"])
    assert (await api.timeline(dispute))[-1]["action"] != "assign_mediator"


async def test_a_stale_page_changes_neither_the_mediator_nor_the_owner(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.drive("mediating")
    wang = await _add_mediator(api, dispute["body_id"], "王五")
    stale = {**dispute, "version": dispute["version"] - 1}

    body = await _as_body(api, web, dispute)
    refused = await _choose(body, stale, wang, "s1")
    assert refused.status_code == 412
    assert 'id="refusal">该案件在您打开页面后已被他人更新, 您的操作未执行' in refused.text
    assert (await api.get(dispute))["mediator_id"] == dispute["mediator_id"]

    supervisor = signed_in(web, api, "supervisor")
    refused = await _name_owner(supervisor, stale, "s2")
    assert refused.status_code == 412 and "已被他人更新" in refused.text
    form = refused.text.split('id="set-owner"')[1].split("</details>")[0]
    assert form.startswith(" open") and f'value="{OWNER["name"]}"' in form
    after = await api.get(dispute)
    assert (after["owner"], after["version"]) == (None, dispute["version"])


async def test_the_supervisor_names_changes_and_clears_the_owner_as_the_api_does(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    dispute = await api.drive("mediating")
    twin = await api.drive("mediating")
    page = signed_in(web, api, "supervisor")
    shown = await page.get(f"/cases/{dispute['id']}")
    assert 'id="current-owner"><span class="muted">未确定</span>' in shown.text
    form = shown.text.split('id="set-owner"')[1].split("</details>")[0]
    assert "确定包案领导" in form and "包案领导姓名" in form and "职务" in form
    assert 'name="user_id"' not in form and 'id="clear-owner"' not in shown.text

    named = await _name_owner(page, dispute, "o1")
    assert named.status_code == 303, named.text[:2000]
    assert named.headers["location"] == f"/cases/{dispute['id']}?done=owner_set#assignment"
    after = await api.get(dispute)
    assert {k: after["owner"][k] for k in ("name", "title")} == {"name": "陈副镇长", "title": "枫桥镇副镇长"}
    shown = await page.get(named.headers["location"])
    assert "已确定包案领导" in shown.text
    assert 'id="current-owner">陈副镇长 (枫桥镇副镇长) · ' in shown.text
    assert "确定包案领导: <span" in shown.text and 'id="clear-owner"' in shown.text

    by_api = await api.client.put(
        f"/v1/disputes/{twin['id']}/owner",
        json=OWNER,
        headers={**api.auth("supervisor"), "If-Match": f'"{twin["version"]}"'},
    )
    assert by_api.status_code == 200, by_api.text
    web_entry, api_entry = (await api.timeline(dispute))[-1], (await api.timeline(twin))[-1]
    assert web_entry["action"] == "owner_set" and web_entry["reason"] == OWNER["reason"]
    # The same supervisor's account on the page and through the API: the same entry, by the same one.
    assert web_entry["payload"]["owner"]["set_by"] == web_entry["actor_id"] == api_entry["actor_id"]
    assert _said(web_entry) == _said(api_entry)
    web_event, api_event = (await _events(app, dispute))[-1], (await _events(app, twin))[-1]
    assert web_event[0] == api_event[0] == "cn.mediation.dispute.owner_changed"

    changed = await _name_owner(page, after, "o2", name="王书记", title="枫桥镇党委书记")
    assert changed.status_code == 303
    after = await api.get(dispute)
    assert after["owner"]["name"] == "王书记"

    cleared = await page.post(
        f"/cases/{dispute['id']}/owner/clear", {"version": f'"{after["version"]}"', "idempotency_key": "o3"}
    )
    assert cleared.status_code == 303, cleared.text[:2000]
    assert (await api.get(dispute))["owner"] is None
    assert (await api.timeline(dispute))[-1]["action"] == "owner_cleared"
    assert "已取消包案" in (await page.get(cleared.headers["location"])).text
    assert [o for o, _ in await _audited(app, dispute, "set_owner")] == ["success"] * 3


async def test_each_form_is_offered_only_to_whom_the_api_lets_make_the_change(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.drive("mediating")
    wang = await _add_mediator(api, dispute["body_id"], "王五")

    supervisor = await signed_in(web, api, "supervisor").get(f"/cases/{dispute['id']}")
    assert 'id="set-owner"' in supervisor.text and 'id="choose-mediator"' not in supervisor.text
    body = await _as_body(api, web, dispute)
    shown = await body.get(f"/cases/{dispute['id']}")
    assert 'id="choose-mediator"' in shown.text and 'id="set-owner"' not in shown.text

    # A body's mediator sending the owner form by hand: the API's permission, said on the page.
    refused = await _name_owner(body, dispute, "r1")
    assert refused.status_code == 403
    assert 'id="assignment-refused"' in refused.text and "当前角色没有「督办」权限" in refused.text

    clerk = signed_in(web, api, "clerk")
    shown = await clerk.get(f"/cases/{dispute['id']}")
    assert 'id="choose-mediator"' not in shown.text and 'id="set-owner"' not in shown.text
    refused = await _choose(clerk, dispute, wang, "r2")
    assert refused.status_code == 403
    assert 'id="assignment-refused"' in refused.text and "只有承办组织可以指定调解员" in refused.text
    after = await api.get(dispute)
    assert (after["mediator_id"], after["owner"], after["version"]) == (
        dispute["mediator_id"],
        None,
        dispute["version"],
    )


async def test_no_mediator_is_named_before_the_body_signs_for_the_case(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.drive("assigned")
    wang = await _add_mediator(api, dispute["body_id"], "王五")
    page = await _as_body(api, web, dispute)
    shown = await page.get(f"/cases/{dispute['id']}")
    assert shown.status_code == 200 and 'id="choose-mediator"' not in shown.text
    assert 'id="current-mediator">尚未指定<' in shown.text
    refused = await _choose(page, dispute, wang, "w1")
    assert refused.status_code == 409
    assert "不能指定调解员" in refused.text.split('id="assignment-refused"')[1]
    after = await api.get(dispute)
    assert (after["mediator_id"], after["version"]) == (None, dispute["version"])


async def test_the_sign_for_offers_only_the_mediators_it_would_take(api: Api, web: httpx.AsyncClient) -> None:
    dispute = await api.drive("assigned")
    body = dispute["body_id"]
    wang = await _add_mediator(api, body, "王五")
    li = await _add_mediator(api, body, "李四")
    await _declare_conflict(api, li, body, relation="申请人的表兄", dispute_id=dispute["id"])
    shown = await (await _as_body(api, web, dispute)).get(f"/cases/{dispute['id']}")
    form = shown.text.split('data-action="sign_for"')[1].split("</details>")[0]
    assert f'<option value="{wang}"' in form
    assert li not in form and "李四" not in form
