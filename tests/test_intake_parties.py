"""Intake: the day the resident applied, who the parties are, the documents of residents of Hong
Kong, Macao and Taiwan, and the employer of a wage-arrears wave named by any of its respondents."""

from __future__ import annotations

from datetime import date
from typing import Any

from stdnum.cn import uscc

from tests.support import Api, at_beijing, intake_body, person


def _company(name: str, role: str, serial: int = 1) -> dict[str, Any]:
    first17 = f"91330681MA2C{serial:05d}"
    return {
        "role": role,
        "kind": "organisation",
        "name": name,
        "id_type": "uscc",
        "id_number": first17 + uscc.calc_check_digit(first17),
    }


async def _refused(api: Api, **overrides: Any) -> dict[str, Any]:
    response = await api.client.post("/v1/disputes", json=intake_body(**overrides), headers=api.headers())
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "/problems/validation-error"
    return problem


# ---- early warning: wage arrears against one employer --------------------------------------------


async def test_a_wage_arrears_wave_counts_the_employer_wherever_it_stands_among_the_respondents(
    api: Api,
) -> None:
    # Five workers claim unpaid wages from the same labour company within five days. Some name the
    # foreman who hired them first and the company second: each claim is against the company all
    # the same (domain.md §4.4: clusters against one respondent, e.g. wage arrears). The fifth
    # names the foreman first and raises the alert; a sixth naming him first joins it.
    employer = _company("诸暨市某建筑劳务有限公司", "respondent")

    async def wage_claim(n: int) -> None:
        at_beijing(api, date(2026, 6, 1 + n))
        foreman = person("respondent", f"包工头{n}", 200 + n)
        respondents = [employer, foreman] if n % 2 else [foreman, employer]
        await api.intake(
            category="labour",
            description="工人追讨拖欠工资, 申请调解。",
            parties=[person("applicant", f"工人{n}", 100 + n), *respondents],
        )

    async def respondent_alerts() -> list[tuple[int, str]]:
        listed = await api.client.get(
            "/v1/alerts", params={"kind": "cluster"}, headers=api.auth("supervisor")
        )
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        return [(a["case_count"], a["details"]["about"]) for a in items if a["details"]["by"] == "respondent"]

    for n in range(5):
        await wage_claim(n)
    assert await respondent_alerts() == [(5, "诸暨市某建筑劳务有限公司")]
    await wage_claim(6)
    assert await respondent_alerts() == [(6, "诸暨市某建筑劳务有限公司")]
