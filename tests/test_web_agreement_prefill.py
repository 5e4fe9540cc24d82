"""A new version of the agreement starts from the newest one on the case page: the facts, matters,
responsibility, terms and every obligation are there to correct, not to type again; saved, the new
version holds them. Masked text never becomes an agreement's content: on the case page as it
opens, the numbers masked, the form starts from the newest version only when masking hid nothing in
it; otherwise the mediator is told to show the numbers first."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support import Api
from tests.test_web import Page


async def _as_body(api: Api, web: httpx.AsyncClient, dispute: dict[str, Any], role: str) -> Page:
    body = next(name for name, id_ in api.bodies.items() if str(id_) == dispute["body_id"])
    await api.signed_in(role, body)
    web.cookies.set("mediation_session", api.tokens[(role, uuid.UUID(dispute["body_id"]))])
    return Page(web)


def _form(page: httpx.Response) -> str:
    return page.text.split('id="draft-agreement"')[1].split("</form>")[0]


async def test_a_new_version_starts_from_the_newest(api: Api, web: httpx.AsyncClient) -> None:
    dispute = await api.drive("mediating")
    content = api.agreement_content(dispute)
    second = {**content["obligations"][0], "kind": "act", "amount": None, "description": "拆除彩钢棚"}
    third = {**content["obligations"][0], "description": "支付修缮费", "amount": "300.00"}
    await api.draft_agreement(dispute, obligations=[*content["obligations"], second, third])

    mediator = await _as_body(api, web, dispute, "body_mediator")
    page = await mediator.get(f"/cases/{dispute['id']}")
    form = _form(page)
    assert 'id="draft-from-newest"' in page.text
    for text in ("双方因院墙滴水发生争执。", "屋檐滴水造成的损失及修缮责任。", "双方今后互相谅解"):
        assert text in form
    for text in ("赔偿损失", "拆除彩钢棚", "支付修缮费"):
        assert text in form
    assert form.count("履行义务 ") == 3

    # Sent as shown with one term added: the new version holds everything, and the addition.
    fields: list[tuple[str, str]] = [
        ("supersedes", "1"),
        ("idempotency_key", "v2"),
        ("facts", content["facts"]),
        ("disputed_matters", content["disputed_matters"]),
        ("responsibility", content["responsibility"]),
        ("terms", "\n".join([*content["terms"], "费用当场结清。"])),
    ]
    for i, o in enumerate([content["obligations"][0], second, third]):
        fields += [(f"obligations[{i}].{k}", str(v)) for k, v in o.items() if v is not None]
    saved = await mediator.post(f"/cases/{dispute['id']}/agreements", fields)
    assert saved.status_code == 303, saved.text[:2000]
    versions = (await api.client.get(f"/v1/disputes/{dispute['id']}/agreements")).json()
    newest = versions[-1]
    assert newest["number"] == 2 and len(newest["obligations"]) == 3
    assert newest["terms"][-1] == "费用当场结清。"


async def test_a_first_draft_starts_blank(api: Api, web: httpx.AsyncClient) -> None:
    dispute = await api.drive("mediating")
    page = await (await _as_body(api, web, dispute, "body_mediator")).get(f"/cases/{dispute['id']}")
    assert 'id="draft-from-newest"' not in page.text
    assert "双方因院墙滴水发生争执。" not in _form(page)


async def test_an_oral_agreement_in_effect_is_put_in_writing(api: Api, web: httpx.AsyncClient) -> None:
    """人民调解法 Art. 28: an oral agreement in effect may be put in writing; the form it fills is a
    written version (another oral one could not replace it)."""
    dispute = await api.drive("mediating")
    await api.signed_agreement(dispute, form="oral")
    page = await (await _as_body(api, web, dispute, "body_mediator")).get(f"/cases/{dispute['id']}")
    form = _form(page)
    assert 'id="oral-agreement-in-effect"' in page.text and "双方因院墙滴水发生争执。" in form
    assert '<option value="written" selected' in form or '<option value="written"  selected' in form


async def test_a_newest_version_holding_a_number_is_filled_in_only_once_the_numbers_are_shown(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.drive("mediating")
    term = "被申请人联系电话 13900001234, 付款后通知申请人。"
    await api.draft_agreement(dispute, terms=[term])
    mediator = await _as_body(api, web, dispute, "body_mediator")

    opened = await mediator.get(f"/cases/{dispute['id']}")
    assert 'id="draft-from-newest"' not in opened.text and 'id="draft-needs-numbers"' in opened.text
    assert "13900001234" not in opened.text and "双方因院墙滴水发生争执。" not in _form(opened)

    shown = await mediator.get(f"/cases/{dispute['id']}?show=numbers")
    assert 'id="draft-from-newest"' in shown.text and 'id="draft-needs-numbers"' not in shown.text
    assert term in _form(shown)
