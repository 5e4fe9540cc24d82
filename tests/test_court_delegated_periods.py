"""Court-delegated mediation (特邀调解): which cases, and the court's period.

A case is court-delegated when it names the court that invited the mediation, whatever channel it
was registered by, or when it came by the court channel. One predicate says so, and the parties'
consent (特邀调解规定 Art. 11), the court's period (Art. 27) and the court competent to confirm the
agreement (民事诉讼法 Art. 205) all read it.

特邀调解规定 Art. 27 times the mediation by the stage of the court's case: thirty days delegated
before filing (委派调解), fifteen (ordinary procedure) or seven (simple procedure) entrusted after
filing (委托调解), longer only by the parties' agreement: the court's period is extended with every
party's consent and never paused.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import Uuid, bindparam, text

from mediation.clocks.rules import CaseFacts, ClockName, parse, procedures_of
from mediation.disputes.court_delegation import is_court_delegated
from mediation.migrate import downgrade, upgrade
from tests.support import Api, intake_body
from tests.test_clock_starts import shipped_rules
from tests.test_clock_transfers import _consent, _mediation_clock
from tests.test_deadlines import _at, _clocks
from tests.test_web import case_number_in, intake_form, signed_in

STAGE_RULES = {
    "pre_filing": ("mediation.court_delegated", 30),
    "after_filing_ordinary": ("mediation.court_entrusted.ordinary", 15),
    "after_filing_simple": ("mediation.court_entrusted.simple", 7),
}


def _reasons(response: httpx.Response) -> list[str]:
    return [r["code"] for r in response.json().get("reasons", [])]


def _field_errors(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return [(e["field"], e["code"]) for e in response.json()["errors"]]


async def _assigned(api: Api, **intake: Any) -> dict[str, Any]:
    intake.setdefault("inviting_court_id", str(api.bodies["court"]))
    return await api.drive("assigned", **intake)


async def _mediating(api: Api, **intake: Any) -> dict[str, Any]:
    return await api.step(await _consent(api, await _assigned(api, **intake)), "sign_for")


# ---- one predicate: consent, clocks and the court agree ---------------------------------------------


def test_a_case_is_court_delegated_when_it_names_the_inviting_court_or_came_from_the_court() -> None:
    court = uuid.uuid4()
    assert is_court_delegated("window", court)
    assert is_court_delegated("court_delegated", court)
    assert is_court_delegated("court_delegated", None)
    assert not is_court_delegated("window", None)


@pytest.mark.parametrize("channel", ["window", "court_delegated"])
async def test_a_case_naming_the_inviting_court_needs_the_parties_consent_whatever_its_channel(
    api: Api, channel: str
) -> None:
    # A party may bring the court's referral to the window: the case is the court's all the same.
    dispute = await _assigned(api, channel=channel)
    assert dispute["court_delegated"] is True
    refused = await api.act(dispute, "sign_for")
    assert refused.status_code == 422, refused.text
    assert "consent_missing" in _reasons(refused)
    assert (await api.get(dispute))["version"] == dispute["version"]
    # With both sides' consent (特邀调解规定 Art. 11) it is mediated on the court's period, and the
    # inviting court alone confirms the agreement (民事诉讼法 Art. 205).
    dispute = await api.step(await _consent(api, dispute), "sign_for")
    assert (await _clocks(api, dispute))["mediation"]["rule_id"] == "mediation.court_delegated"
    courts = await api.client.get(f"/v1/disputes/{dispute['id']}/competent-courts", headers=api.auth())
    assert courts.status_code == 200, courts.text
    assert [(c["basis"], c["court_id"]) for c in courts.json()] == [
        ("inviting_court", str(api.bodies["court"]))
    ]


async def test_a_case_no_court_delegated_needs_no_court_consent(api: Api) -> None:
    dispute = await api.drive("assigned")
    assert (dispute["court_delegated"], dispute["court_stage"]) == (False, None)
    assert (await api.step(dispute, "sign_for"))["status"] == "mediating"
    assert (await _clocks(api, dispute))["mediation"]["rule_id"] == "mediation"


# ---- the stage of the court's case at intake -------------------------------------------------------


async def test_a_court_delegated_case_is_delegated_before_filing_unless_said_otherwise(api: Api) -> None:
    for channel in ("window", "court_delegated"):
        dispute = await api.intake(channel=channel, inviting_court_id=str(api.bodies["court"]))
        assert (dispute["court_stage"], dispute["court_case_number"]) == ("pre_filing", None)


async def test_mediation_entrusted_after_filing_records_the_stage_and_the_courts_case_number(
    api: Api,
) -> None:
    dispute = await api.intake(
        channel="court_delegated",
        inviting_court_id=str(api.bodies["court"]),
        court_stage="after_filing_simple",
        court_case_number="（2026）浙0681民初 123号",
    )
    # Stored in one form, as an external reference is.
    assert (dispute["court_stage"], dispute["court_case_number"]) == (
        "after_filing_simple",
        "(2026)浙0681民初123号",
    )
    assert (await api.get(dispute))["court_stage"] == "after_filing_simple"


@pytest.mark.parametrize(
    "field, value", [("court_stage", "after_filing_ordinary"), ("court_case_number", "(2026)浙0681民初1号")]
)
async def test_a_court_stage_is_refused_on_a_case_no_court_delegated(
    api: Api, field: str, value: str
) -> None:
    refused = await api.client.post(
        "/v1/disputes", json=intake_body(channel="window", **{field: value}), headers=api.headers()
    )
    assert _field_errors(refused) == [(field, "not_court_delegated")]
    unknown = await api.client.post(
        "/v1/disputes",
        json=intake_body(
            channel="court_delegated", inviting_court_id=str(api.bodies["court"]), court_stage="x"
        ),
        headers=api.headers(),
    )
    assert [f for f, _ in _field_errors(unknown)] == ["court_stage"]


# ---- the court's period by stage (特邀调解规定 Art. 27) ----------------------------------------------


@pytest.mark.parametrize(
    "stage, due_on",
    [
        # Signed for on Monday 2 November 2026.
        ("pre_filing", "2026-12-02"),  # thirty days: Wednesday 2 December
        ("after_filing_ordinary", "2026-11-17"),  # fifteen days: Tuesday 17 November
        ("after_filing_simple", "2026-11-09"),  # seven days: Monday 9 November
    ],
)
async def test_the_courts_period_follows_the_stage_it_delegated_the_case_at(
    api: Api, stage: str, due_on: str
) -> None:
    _at(api, date(2026, 11, 2))
    dispute = await _mediating(api, channel="court_delegated", court_stage=stage)
    clock = (await _clocks(api, dispute))["mediation"]
    rule_id, days = STAGE_RULES[stage]
    assert (clock["rule_id"], clock["length"], clock["unit"], clock["due_on"]) == (
        rule_id,
        days,
        "days",
        due_on,
    )
    assert "特邀调解的规定 第二十七条" in clock["source"]


async def test_the_period_entrusted_after_filing_is_longer_only_with_every_partys_consent(api: Api) -> None:
    _at(api, date(2026, 11, 2))
    dispute = await _mediating(api, channel="window", court_stage="after_filing_ordinary")
    refused = await _mediation_clock(api, dispute, "extension", {"units": 10, "reason": "需要更多时间"})
    assert refused.status_code == 422, refused.text
    assert _reasons(refused) == ["consent_of_all_parties"]
    everyone = [p["id"] for p in dispute["parties"]]
    agreed = await _mediation_clock(
        api,
        dispute,
        "extension",
        {"units": 10, "reason": "各方当事人同意延长", "consenting_party_ids": everyone},
    )
    assert agreed.status_code == 200, agreed.text
    assert agreed.json()["due_on"] == "2026-11-27"  # 17 November + 10 days, a Friday


@pytest.mark.parametrize("stage", list(STAGE_RULES))
async def test_the_courts_period_is_not_stretched_by_a_pause(api: Api, stage: str) -> None:
    # 特邀调解规定 Art. 27: longer only by agreement. A pause, which needs nobody's consent, would
    # move the court's day as an extension does.
    _at(api, date(2026, 11, 2))
    dispute = await _mediating(api, channel="window", court_stage=stage)
    due_on = (await _clocks(api, dispute))["mediation"]["due_on"]
    for reason in ("other", "waiting_party", "appraisal"):
        refused = await _mediation_clock(api, dispute, "pause", {"reason": reason})
        assert refused.status_code == 422, refused.text
        assert _reasons(refused) == ["clock_not_pausable"]
    clock = (await _clocks(api, dispute))["mediation"]
    assert (clock["pausable"], clock["paused_at"], clock["due_on"]) == (False, None, due_on)


async def test_the_peoples_mediation_month_still_pauses(api: Api) -> None:
    dispute = await api.drive("mediating")
    paused = await _mediation_clock(api, dispute, "pause", {"reason": "waiting_party"})
    assert paused.status_code == 200, paused.text
    assert (await _clocks(api, dispute))["mediation"]["paused_at"] is not None


def test_a_centers_rule_file_may_time_every_court_case_or_one_stage() -> None:
    shipped = shipped_rules()
    shipped = [r for r in shipped if not r["id"].startswith("mediation.court_")]
    own = [
        {
            "id": "mediation.court_entrusted.simple",
            "clock": "mediation",
            "when": {"procedures": ["court_after_filing_simple"]},
            "length": 5,
            "unit": "working_days",
            "source": "中心工作规范 (特邀调解规定 第二十七条)",
        },
        {
            "id": "mediation.court",
            "clock": "mediation",
            "when": {"procedures": ["court_delegated"]},
            "length": 20,
            "unit": "days",
            "source": "中心工作规范 (特邀调解规定 第二十七条)",
        },
    ]
    rules = parse(json.dumps({"rules": [*shipped, *own]}))

    def rule_for(court_delegated: bool, stage: str | None) -> str | None:
        facts = CaseFacts("contract", "window", None, None, procedures_of(court_delegated, stage))
        rule = rules.for_(ClockName.mediation, facts)
        return rule.id if rule else None

    assert rule_for(True, "after_filing_simple") == "mediation.court_entrusted.simple"
    assert rule_for(True, "after_filing_ordinary") == "mediation.court"
    assert rule_for(True, "pre_filing") == "mediation.court"
    assert rule_for(True, None) == "mediation.court"  # no stage recorded: before filing
    assert rule_for(False, None) == "mediation"
    assert procedures_of(False, "pre_filing") == frozenset()


def test_no_shipped_court_period_pauses_and_the_peoples_month_does() -> None:
    rules = {r.id: r for r in parse(json.dumps({"rules": shipped_rules()})).rules}
    for rule_id, days in STAGE_RULES.values():
        rule = rules[rule_id]
        assert (rule.length, rule.pausable, rule.on_transfer) == (days, False, "runs_on")
        assert rule.extension is not None and rule.extension.consent == "all_parties"
    assert rules["mediation"].pausable is True


# ---- the pages ------------------------------------------------------------------------------------


async def test_the_window_registers_the_court_stage_and_the_case_page_shows_it(
    api: Api, web: httpx.AsyncClient
) -> None:
    page = signed_in(web, api)
    form = await page.get("/intake")
    assert 'name="court_stage"' in form.text and 'name="court_case_number"' in form.text
    assert "立案后委托调解(简易程序)" in form.text
    body = intake_body(
        inviting_court_id=str(api.bodies["court"]),
        court_stage="after_filing_ordinary",
        court_case_number="(2026)浙0681民初77号",
    )
    response = await page.post("/intake", intake_form(body))
    assert response.status_code == 200, response.text[:3000]
    listed = await api.client.get("/v1/disputes", params={"q": case_number_in(response.text)})
    (case,) = listed.json()["items"]
    assert (case["channel"], case["court_delegated"], case["court_stage"]) == (
        "window",
        True,
        "after_filing_ordinary",
    )
    shown = await page.get(f"/cases/{case['id']}")
    assert shown.status_code == 200
    delegation = re.search(r'<span id="court-delegation">(.*?)</span>', shown.text, re.S)
    assert delegation, shown.text[:3000]
    assert delegation.group(1) == "诸暨市人民法院立案后委托调解(普通程序) ((2026)浙0681民初77号)"


async def test_the_window_form_refuses_a_court_stage_for_a_case_no_court_delegated(
    api: Api, web: httpx.AsyncClient
) -> None:
    page = signed_in(web, api)
    response = await page.post("/intake", intake_form(intake_body(court_stage="after_filing_simple")))
    assert response.status_code == 422
    field = re.search(r'data-field="court_stage".*?</div>', response.text, re.S)
    assert field and "只有法院委派或委托调解的案件" in field.group(0)


async def test_the_online_application_offers_no_court_stage(api: Api, web: httpx.AsyncClient) -> None:
    form = await web.get("/apply")
    assert form.status_code == 200
    assert 'name="court_stage"' not in form.text and 'name="court_case_number"' not in form.text


# ---- the cases before this release -----------------------------------------------------------------


# SQLite's batch migrations reflect the tables they refer to (test_migrations says why this is harmless).
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
async def test_the_court_cases_before_this_release_were_delegated_before_filing(
    api: Api, settings: Any
) -> None:
    """Migration 0036: every case naming an inviting court or come from the court is pre_filing;
    the others have no stage."""
    court = str(api.bodies["court"])
    at_window = await api.intake(channel="window", inviting_court_id=court)
    entrusted = await api.intake(
        channel="court_delegated", inviting_court_id=court, court_stage="after_filing_simple"
    )
    plain = await api.intake()
    await api.app.state.db.engine.dispose()
    await asyncio.to_thread(downgrade, settings.database_url, "0035")
    await asyncio.to_thread(upgrade, settings.database_url)
    stages = [(await api.get(d))["court_stage"] for d in (at_window, entrusted, plain)]
    assert stages == ["pre_filing", "pre_filing", None]


async def test_the_courts_clocks_running_before_this_release_take_no_more_pauses(
    api: Api, settings: Any
) -> None:
    """Migration 0036: a court's mediation clock started under the earlier rules (pausable) stops
    taking pauses; one paused then is resumed as before. The people's month keeps its pauses."""
    running, paused = await _mediating(api), await _mediating(api)
    month = await api.drive("mediating")
    await api.app.state.db.engine.dispose()
    await asyncio.to_thread(downgrade, settings.database_url, "0035")
    # As the earlier release started them: pausable; one of them paused.
    async with api.app.state.db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE case_clocks SET pausable = true WHERE rule_id = 'mediation.court_delegated'")
        )
        await conn.execute(
            text(
                "UPDATE case_clocks SET paused_at = started_at, pause_reason = 'other' "
                "WHERE rule_id = 'mediation.court_delegated' AND dispute_id = :id"
            ).bindparams(bindparam("id", type_=Uuid)),
            {"id": uuid.UUID(paused["id"])},
        )
    await api.app.state.db.engine.dispose()
    await asyncio.to_thread(upgrade, settings.database_url)

    refused = await _mediation_clock(api, running, "pause", {"reason": "other"})
    assert refused.status_code == 422, refused.text
    assert _reasons(refused) == ["clock_not_pausable"]
    assert (await _clocks(api, running))["mediation"]["pausable"] is False
    resumed = await _mediation_clock(api, paused, "resume", {})
    assert resumed.status_code == 200, resumed.text
    assert (await _clocks(api, paused))["mediation"]["paused_at"] is None
    again = await _mediation_clock(api, paused, "pause", {"reason": "other"})
    assert _reasons(again) == ["clock_not_pausable"]
    kept = await _mediation_clock(api, month, "pause", {"reason": "waiting_party"})
    assert kept.status_code == 200, kept.text
