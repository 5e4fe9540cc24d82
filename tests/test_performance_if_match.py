"""Recording an obligation as performed changes the case (its timeline, its version, and its
state once the last obligation is performed): like every change, it needs the case's ETag."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import Api


async def first_obligation(api: Api, dispute: dict[str, Any]) -> dict[str, Any]:
    agreements = (await api.client.get(f"/v1/disputes/{dispute['id']}/agreements", headers=api.auth())).json()
    return agreements[0]["obligations"][0]


async def perform(
    api: Api, dispute: dict[str, Any], obligation: dict[str, Any], **headers: str
) -> httpx.Response:
    return await api.client.post(
        f"/v1/disputes/{dispute['id']}/obligations/{obligation['id']}/performance",
        json={"performed_on": api.today.isoformat()},
        headers={**api.acting("body_mediator", dispute), **headers},
    )


async def test_performance_without_the_cases_etag_is_refused(api: Api) -> None:
    dispute = await api.drive("agreement_signed")
    obligation = await first_obligation(api, dispute)
    missing = await perform(api, dispute, obligation)
    assert missing.status_code == 428, missing.text
    after = await api.get(dispute)
    assert (after["status"], after["version"]) == ("agreement_signed", dispute["version"])
    assert (await first_obligation(api, dispute))["status"] == "pending"


async def test_performance_against_a_stale_etag_is_refused(api: Api) -> None:
    dispute = await api.drive("agreement_signed")
    obligation = await first_obligation(api, dispute)
    stale = await perform(api, dispute, obligation, **{"If-Match": f'"{dispute["version"] - 1}"'})
    assert stale.status_code == 412, stale.text
    assert (await api.get(dispute))["version"] == dispute["version"]


async def test_performance_with_the_cases_etag_moves_it_on(api: Api) -> None:
    dispute = await api.drive("agreement_signed")
    obligation = await first_obligation(api, dispute)
    done = await perform(api, dispute, obligation, **{"If-Match": f'"{dispute["version"]}"'})
    assert done.status_code == 200, done.text
    after = await api.get(dispute)
    assert after["version"] > dispute["version"]
    assert done.headers["etag"] == f'"{after["version"]}"'
    # The ETag the answer gives is the one the next change of the case needs.
    assert (
        await perform(api, dispute, obligation, **{"If-Match": f'"{dispute["version"]}"'})
    ).status_code == 412


async def test_the_contract_asks_for_the_cases_etag(app: Any) -> None:
    operation = app.openapi()["paths"]["/v1/disputes/{dispute_id}/obligations/{obligation_id}/performance"][
        "post"
    ]
    assert "If-Match" in [p["name"] for p in operation["parameters"]]
    assert {"412", "428"} <= set(operation["responses"])
