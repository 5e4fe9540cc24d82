"""The two-year limitation of rural land-contract arbitration (农村土地承包经营纠纷调解仲裁法 Art. 18),
warned of when a land-contract case is referred to the rural land commission, as the labour year is
(劳动争议调解仲裁法 Art. 27, tests/test_handoffs.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from tests.support import Api

ARTICLE = "农村土地承包经营纠纷调解仲裁法 第十八条"


def _on(api: Api, day: date) -> None:
    """The clock on `day`, 10:00 in Beijing."""
    api.app.state.clock.at = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)


async def _land_case_failed(api: Api) -> dict[str, Any]:
    return await api.drive(
        "mediation_failed", category="land_forest", description="村民之间因承包地边界发生争议, 申请调解。"
    )


async def _refer(
    api: Api, dispute: dict[str, Any], commission: uuid.UUID, **extra: Any
) -> list[dict[str, Any]]:
    referred = await api.step(dispute, "refer_arbitration", {"commission_id": str(commission), **extra})
    assert referred["handoff"]["kind"] == "rural_land_arbitration"
    warnings: list[dict[str, Any]] = (await api.handoff(referred))["handoff"]["warnings"]
    assert referred["handoff"]["warnings"] == warnings
    return warnings


async def test_two_years_run_out_before_the_application_are_warned(api: Api) -> None:
    # Known on 1 April 2024: the two years ran out on 1 April 2026, before mediation was applied for
    # on 1 June 2026.
    commission = await api.add_rural_land_commission()
    [warning] = await _refer(api, await _land_case_failed(api), commission, rights_known_on="2024-04-01")
    assert warning["code"] == "land_limitation_expired"
    assert warning["article"] == ARTICLE
    assert warning["runs_until"] == "2026-04-01"
    assert warning["message"] == "申请调解时二年仲裁时效已届满, 仲裁委员会可能不予支持"


async def test_thirty_days_or_less_left_of_the_two_years_are_warned_in_the_readers_language(api: Api) -> None:
    # Applying for mediation on 1 July 2024 interrupted the period, which then runs two years
    # afresh, to 1 July 2026 (民法典 Art. 195, 198).
    commission = await api.add_rural_land_commission()
    _on(api, date(2024, 7, 1))
    near, expired = await _land_case_failed(api), await _land_case_failed(api)
    _on(api, date(2026, 6, 10))
    [warning] = await _refer(api, near, commission)
    assert (warning["code"], warning["runs_until"]) == ("land_limitation_near", "2026-07-01")
    assert warning["article"] == ARTICLE
    assert warning["message"] == "二年仲裁时效将于 2026-07-01 届满 (剩余 21 日), 请尽快申请仲裁"
    refreshed = await api.get(near)
    english = await api.client.get(
        f"/v1/handoffs/{refreshed['handoff']['id']}",
        headers=api.headers("arbitration", commission, **{"Accept-Language": "en"}),
    )
    assert english.status_code == 200, english.text
    [in_english] = english.json()["handoff"]["warnings"]
    assert in_english["message"] == (
        "The two-year limitation for rural land-contract arbitration runs out on 2026-07-01 "
        "(21 days left); apply for arbitration without delay"
    )

    _on(api, date(2026, 7, 2))
    [warning] = await _refer(api, expired, commission)
    assert (warning["code"], warning["runs_until"]) == ("land_limitation_expired", "2026-07-01")
    assert warning["message"] == "二年仲裁时效已于 2026-07-01 届满, 仲裁委员会可能不予支持"


async def test_more_than_thirty_days_left_or_a_suit_carry_no_warning(api: Api) -> None:
    commission = await api.add_rural_land_commission()
    assert await _refer(api, await _land_case_failed(api), commission, rights_known_on="2025-01-10") == []
    # A land-contract suit runs on the three-year limitation of 民法典 Art. 188, not the commission's.
    _on(api, date(2024, 7, 1))
    dispute = await _land_case_failed(api)
    _on(api, date(2026, 6, 10))
    court = api.bodies["court"]
    sued = await api.step(
        dispute, "refer_litigation", {"court_id": str(court), "claims": "请求确认承包地边界"}
    )
    assert sued["handoff"]["kind"] == "litigation"
    assert sued["handoff"]["warnings"] == []


async def test_the_case_page_shows_the_warning(api: Api) -> None:
    commission = await api.add_rural_land_commission()
    _on(api, date(2024, 7, 1))
    dispute = await _land_case_failed(api)
    _on(api, date(2026, 6, 10))
    await _refer(api, dispute, commission)
    page = await api.client.get(
        f"/cases/{dispute['id']}",
        headers={
            "Accept": "text/html",
            "Cookie": f"mediation_session={api.tokens[('clerk', api.bodies['center'])]}",
        },
    )
    assert page.status_code == 200
    assert "二年仲裁时效将于 2026-07-01 届满 (剩余 21 日), 请尽快申请仲裁" in page.text
