"""The body holding the case extends its mediation period from the case page, within the rule's
limit and with every party's consent (人民调解工作若干规定 Art. 33: one month, longer only with both
parties' agreement), through the service the API uses; the center's staff see no form for a
clock that is the body's."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx

from tests.support import Api
from tests.test_web import Page, signed_in


async def _as_mediator(api: Api, web: httpx.AsyncClient, dispute: dict[str, Any]) -> Page:
    body = next(name for name, id_ in api.bodies.items() if str(id_) == dispute["body_id"])
    await api.signed_in("body_mediator", body)
    web.cookies.set("mediation_session", api.tokens[("body_mediator", uuid.UUID(dispute["body_id"]))])
    return Page(web)


async def _mediation_due(api: Api, dispute: dict[str, Any]) -> str:
    clocks = (await api.client.get(f"/v1/disputes/{dispute['id']}/clocks", headers=api.auth())).json()
    return str(next(c for c in clocks if c["name"] == "mediation" and not c["stopped_at"])["due_on"])


async def _extend(page: Page, dispute: dict[str, Any], key: str, *consenting: str) -> httpx.Response:
    fields = [
        ("version", f'"{dispute["version"]}"'),
        ("idempotency_key", key),
        ("units", "1"),
        ("reason", "双方同意延长一个月继续调解"),
        *[("consenting_party_ids", p) for p in consenting],
    ]
    return await page.post(f"/cases/{dispute['id']}/clocks/mediation/extension", fields)


async def test_the_mediator_extends_the_period_with_both_parties_consent(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.drive("mediating")
    before = await _mediation_due(api, dispute)
    mediator = await _as_mediator(api, web, dispute)
    page = await mediator.get(f"/cases/{dispute['id']}")
    assert 'id="extend-mediation"' in page.text and "尚可延长 1 个月" in page.text

    applicant, respondent = (p["id"] for p in dispute["parties"] if p["role"] in ("applicant", "respondent"))
    refused = await _extend(mediator, dispute, "e1", applicant)
    assert refused.status_code == 422 and "延长须经各方当事人同意" in refused.text
    assert await _mediation_due(api, dispute) == before

    extended = await _extend(mediator, await api.get(dispute), "e2", applicant, respondent)
    assert extended.status_code == 303, extended.text[:2000]
    after = await _mediation_due(api, dispute)
    assert date.fromisoformat(after) > date.fromisoformat(before)
    assert (await api.timeline(dispute))[-1]["action"] == "clock_extended"
    # The rule's month is used up: no form any more.
    assert 'id="extend-mediation"' not in (await mediator.get(f"/cases/{dispute['id']}")).text


async def test_the_center_sees_no_form_for_the_bodys_clock(api: Api, web: httpx.AsyncClient) -> None:
    dispute = await api.drive("mediating")
    page = await signed_in(web, api).get(f"/cases/{dispute['id']}")
    assert page.status_code == 200 and 'id="extend-mediation"' not in page.text
