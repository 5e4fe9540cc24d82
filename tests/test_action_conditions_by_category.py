"""A case's own list of actions names the conditions that concern it: a neighbour dispute's
referral to litigation is not said to need labour arbitration first (劳动争议调解仲裁法 Art. 5,
16 concern labour disputes only); a labour dispute's is. The lifecycle table keeps every one."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support import Api

LABOUR_ONLY = {"labour_arbitration_first", "labour_payment_order"}


async def _requires(api: Api, dispute: dict[str, Any], action: str) -> set[str]:
    response = await api.client.get(f"/v1/disputes/{dispute['id']}/actions", headers=api.auth())
    assert response.status_code == 200, response.text
    [row] = [a for a in response.json() if a["action"] == action]
    return {r["name"] for r in row["requires"]}


async def test_a_neighbour_dispute_is_not_told_to_go_to_labour_arbitration(
    api: Api, web: httpx.AsyncClient
) -> None:
    neighbour = await api.drive("mediation_failed")
    assert not (await _requires(api, neighbour, "refer_litigation")) & LABOUR_ONLY
    body = next(name for name, id_ in api.bodies.items() if str(id_) == neighbour["body_id"])
    await api.signed_in("body_admin", body)
    web.cookies.set("mediation_session", api.tokens[("body_admin", uuid.UUID(neighbour["body_id"]))])
    page = await web.get(f"/cases/{neighbour['id']}")
    assert page.status_code == 200 and 'action="/cases/' in page.text
    assert "导入诉讼" in page.text and "劳动争议仲裁前置" not in page.text

    labour = await api.drive("mediation_failed", category="labour")
    assert "labour_arbitration_first" in await _requires(api, labour, "refer_litigation")

    table = (await api.client.get("/v1/lifecycle", headers=api.auth())).json()
    assert "labour_arbitration_first" in str(table)
