"""Triage (分流): the routing table, capacity, the region hierarchy, reasons, overrides, the return
loop until triage is exhausted, and related cases found at intake.

Bodies a test registers sit in another town of the county, 330681107 (城东镇 here), which none of
the fixture's committees cover: for any category but labour (the county labour committee takes
labour county-wide) they are the only candidates there, so the rankings below are exactly theirs.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from stdnum.cn import uscc

from mediation.audit.models import AuditRecord
from mediation.bodies.models import MEDIATING_KINDS
from mediation.core.pii import mask_id_number
from mediation.disputes.enums import Category, Severity, Tier
from mediation.events.models import OutboxEvent
from mediation.triage.engine import TIER_ORDER, BodyStats, Facts, rank, required_tier
from mediation.triage.rules import TriageRules, default_rules
from tests.support import Api, at_beijing, person, resident_id

TOWN = "330681107000"
VILLAGE = "330681107201"
COUNTY = "330681000000"
CITY = "330600000000"
TIER_REGION = {Tier.village: VILLAGE, Tier.town: TOWN, Tier.county: COUNTY, Tier.city: CITY}
HAN = re.compile(r"[\u4e00-\u9fff]")


# ---- helpers ------------------------------------------------------------------------------------


async def _register_body(
    api: Api,
    name: str,
    kind: str = "people_mediation_committee",
    tier: str = "village",
    region: str = VILLAGE,
    **extra: Any,
) -> str:
    response = await api.client.post(
        "/v1/bodies",
        json={"name": name, "kind": kind, "tier": tier, "region_code": region, **extra},
        headers=api.auth("admin"),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _patch_body(api: Api, body_id: str | uuid.UUID, changes: dict[str, Any]) -> dict[str, Any]:
    current = await api.client.get(f"/v1/bodies/{body_id}")
    assert current.status_code == 200, current.text
    response = await api.client.patch(
        f"/v1/bodies/{body_id}",
        json=changes,
        headers=api.headers("admin", **{"If-Match": current.headers["etag"]}),
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _body_keys(api: Api, body_id: str) -> None:
    """An API key for the body's mediator, for `api.step` to act with (the fixture holds keys for its
    own bodies only)."""
    response = await api.client.post(
        "/v1/api-keys",
        json={"organisation_id": body_id, "role": "body_mediator", "name": "城东镇调委会对接"},
        headers=api.auth("admin"),
    )
    assert response.status_code == 201, response.text
    api.keys[("body_mediator", uuid.UUID(body_id))] = str(response.json()["secret"])


async def _triage(api: Api, dispute: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = await api.client.get(f"/v1/disputes/{dispute['id']}/triage", headers=headers or None)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == f'"{dispute["version"]}"'
    return dict(response.json())


def _ranked(triage: dict[str, Any]) -> list[str]:
    return [r["body"]["id"] for r in triage["recommendations"]]


async def _accepted(api: Api, **overrides: Any) -> dict[str, Any]:
    return await api.step(await api.intake(**overrides), "accept")


async def _assign(
    api: Api, dispute: dict[str, Any], body_id: str | uuid.UUID, **extra: str
) -> httpx.Response:
    return await api.act(dispute, "assign", {"body_id": str(body_id), **extra})


async def _assignments(api: Api, dispute: dict[str, Any]) -> list[dict[str, Any]]:
    response = await api.client.get(f"/v1/disputes/{dispute['id']}/assignments")
    assert response.status_code == 200, response.text
    return list(response.json())


def _later(api: Api, minutes: int = 30) -> None:
    """Each sending of a case happens at its own time, so the assignment history has one order."""
    api.app.state.clock.at += timedelta(minutes=minutes)


async def _events(api: Api, dispute_id: str, name: str) -> list[OutboxEvent]:
    async with api.app.state.db.reader() as session:
        rows = await session.scalars(
            select(OutboxEvent).where(
                OutboxEvent.dispute_id == uuid.UUID(dispute_id),
                OutboxEvent.type == f"cn.mediation.dispute.{name}",
            )
        )
        return list(rows.all())


def _guard_codes(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == "/problems/guard-failed"
    return {r["code"] for r in problem["reasons"]}


def _expected_route(rules: TriageRules, category: Category, severity: Severity) -> tuple[Tier, str]:
    """What the rule file says: the higher of the severity's and the category's tier, and the
    category's first body type."""
    rule = rules.categories[category]
    by_severity = rules.tiers.severity[severity]
    tier = max(by_severity, rule.min_tier, key=TIER_ORDER.index)
    return tier, rule.body_kinds[0].value


# ---- 1. the routing table -----------------------------------------------------------------------


def _registry_of_every_kind_and_tier() -> list[BodyStats]:
    return [
        BodyStats(
            id=uuid.uuid4(),
            name=f"{tier.value}-{kind.value}",
            kind=kind.value,
            tier=tier.value,
            region_code=TIER_REGION[tier],
            categories=(),
            capacity=30,
            active_cases=0,
            specialist_mediators=0,
        )
        for kind in sorted(MEDIATING_KINDS)
        for tier in Tier
    ]


def test_routing_table_of_the_engine_follows_the_default_rule_file() -> None:
    rules = default_rules()
    registry = _registry_of_every_kind_and_tier()
    wrong = []
    for category in Category:
        for severity in Severity:
            facts = Facts(
                category=category.value,
                severity=severity.value,
                is_group=False,
                is_risk=False,
                subject_matters=(),
                region_code=VILLAGE,
                tier=Tier.village.value,
            )
            outcome = rank(facts, rules, registry, {})
            tier, kind = _expected_route(rules, category, severity)
            first = outcome.candidates[0]
            got = (outcome.decision, outcome.tier, first.body.kind, first.body.tier, first.rank)
            if got != ("route", tier, kind, tier.value, 1):
                wrong.append((category.value, severity.value, got))
            # Nothing below the tier, nothing of a type the category does not take.
            kinds = {k.value for k in rules.categories[category].body_kinds}
            assert all(c.body.kind in kinds for c in outcome.candidates)
            assert all(
                TIER_ORDER.index(Tier(c.body.tier)) >= TIER_ORDER.index(tier) for c in outcome.candidates
            )
            # The first choice beats the next one on points, not on a tie-break.
            assert first.score > outcome.candidates[1].score
    assert wrong == []


def test_group_and_risk_flags_raise_the_tier_as_the_rules_say() -> None:
    rules = default_rules()
    registry = _registry_of_every_kind_and_tier()
    for category in Category:
        rule = rules.categories[category]
        for is_group, is_risk in ((True, False), (False, True)):
            facts = Facts(category.value, "ordinary", is_group, is_risk, (), VILLAGE, "village")
            tier, reasons = required_tier(facts, rules)
            floor = (rule.group_min_tier or rules.tiers.group) if is_group else rules.tiers.risk
            expected = max(
                floor, rule.min_tier, rules.tiers.severity[Severity.ordinary], key=TIER_ORDER.index
            )
            assert tier == expected, (category, is_group, is_risk)
            assert reasons and all(r.data["tier"] == tier.value for r in reasons)
            first = rank(facts, rules, registry, {}).candidates[0]
            assert (first.body.kind, first.body.tier) == (rule.body_kinds[0].value, tier.value)


async def test_routing_table_over_http_with_one_body_of_every_kind_at_every_tier(api: Api) -> None:
    rules = default_rules()
    # The county labour committee would take labour cases in the town; it is suspended here so the
    # synthetic registry alone answers.
    await _patch_body(api, api.bodies["labour_mediation"], {"active": False, "suspended_reason": "整顿"})
    registry: dict[tuple[str, str], str] = {}
    for kind in sorted(MEDIATING_KINDS):
        for tier in Tier:
            registry[(kind.value, tier.value)] = await _register_body(
                api,
                f"{tier.value}级{kind.value}",
                kind.value,
                tier.value,
                TIER_REGION[tier],
                jurisdiction=[TOWN],
            )
    wrong = []
    for category in Category:
        for severity in Severity:
            dispute = await api.intake(category=category.value, severity=severity.value, region_code=VILLAGE)
            tier, kind = _expected_route(rules, category, severity)
            triage = await _triage(api, dispute)
            first = triage["recommendations"][0]
            got = (dispute["tier"], triage["decision"], triage["tier"], first["body"]["id"], first["rank"])
            if got != (tier.value, "route", tier.value, registry[(kind, tier.value)], 1):
                wrong.append((category.value, severity.value, got))
    assert wrong == []


async def test_group_labour_dispute_in_a_village_goes_to_the_county_labour_committee(api: Api) -> None:
    dispute = await _accepted(api, category="labour", people_involved=12)
    assert (dispute["is_group"], dispute["tier"]) == (True, "county")
    triage = await _triage(api, dispute)
    assert (triage["decision"], triage["tier"]) == ("route", "county")
    assert "tier_by_group" in {r["code"] for r in triage["tier_reasons"]}
    first = triage["recommendations"][0]
    assert first["body"] == {
        "id": str(api.bodies["labour_mediation"]),
        "name": "市劳动争议人民调解委员会",
        "kind": "industry_mediation",
        "tier": "county",
        "region_code": "330681000000",
    }
    assert {"body_type", "body_specialty", "tier_fit", "load"} <= {r["code"] for r in first["reasons"]}
    # The village and town committees are below a group labour dispute.
    recommended = set(_ranked(triage))
    assert str(api.bodies["village"]) not in recommended
    assert str(api.bodies["town"]) not in recommended
    assert {"labour_arbitration_open", "group_dispute"} <= {a["code"] for a in triage["advisories"]}
    assert [a["body"]["id"] for a in triage["alternatives"]] == [str(api.bodies["labour_commission"])]

    # Nine workers are no group labour dispute (劳动争议调解仲裁法 Art. 7): the town may take it.
    small = await api.intake(category="labour", people_involved=9)
    assert (small["is_group"], small["tier"]) == (False, "town")
    ranked = _ranked(await _triage(api, small))
    assert ranked[0] == str(api.bodies["labour_mediation"])
    assert str(api.bodies["town"]) in ranked
    assert str(api.bodies["village"]) not in ranked


async def test_neighbour_dispute_stays_with_the_village_committee(api: Api) -> None:
    dispute = await _accepted(api)
    triage = await _triage(api, dispute)
    assert (triage["decision"], triage["tier"]) == ("route", "village")
    # The town committee is one tier up, the suspended one and the labour committee never appear.
    assert _ranked(triage) == [str(api.bodies["village"]), str(api.bodies["town"])]
    assert triage["total_candidates"] == 2
    village, town = triage["recommendations"]
    assert village["score"] > town["score"]
    assert next(r for r in town["reasons"] if r["code"] == "tier_fit")["data"] == {
        "tier": "town",
        "steps_above": 1,
    }
    assigned = await api.step(dispute, "assign", {"body_id": village["body"]["id"]})
    assert (assigned["status"], assigned["body_id"]) == ("assigned", str(api.bodies["village"]))


# ---- 2. capacity and suspension -----------------------------------------------------------------


async def test_new_cases_alternate_between_two_equal_bodies(api: Api) -> None:
    first_body = await _register_body(api, "城东镇甲村人民调解委员会")
    second_body = await _register_body(api, "城东镇乙村人民调解委员会")
    taken = []
    for n in range(4):
        dispute = await _accepted(api, region_code=VILLAGE)
        triage = await _triage(api, dispute)
        assert set(_ranked(triage)) == {first_body, second_body}
        top = triage["recommendations"][0]
        assert top["active_cases"] == n // 2
        taken.append(top["body"]["id"])
        assigned = await api.step(dispute, "assign", {"body_id": top["body"]["id"]})
        assert assigned["body_id"] == top["body"]["id"]
        (assignment,) = await _assignments(api, dispute)
        assert (assignment["rank"], assignment["override_reason"]) == (1, None)
    assert taken[0] != taken[1]
    assert taken == [taken[0], taken[1], taken[0], taken[1]]
    listed = await api.client.get(
        "/v1/bodies", params={"covers": VILLAGE, "kind": "people_mediation_committee"}
    )
    assert {b["id"]: b["active_cases"] for b in listed.json()} == {first_body: 2, second_body: 2}


async def test_a_body_at_capacity_is_never_first_even_with_more_points(api: Api) -> None:
    # The village committee specialises in neighbour disputes but takes one case at a time; the
    # town committee above it is a general one.
    village = await _register_body(api, "城东镇邻里纠纷调解委员会", categories=["neighbour"], capacity=1)
    town = await _register_body(api, "城东镇人民调解委员会", tier="town", region=TOWN)
    first = await _accepted(api, region_code=VILLAGE)
    assert _ranked(await _triage(api, first)) == [village, town]
    await api.step(first, "assign", {"body_id": village})

    second = await _accepted(api, region_code=VILLAGE)
    triage = await _triage(api, second)
    assert _ranked(triage) == [town, village]
    top, full = triage["recommendations"]
    assert (top["at_capacity"], full["at_capacity"]) == (False, True)
    assert (full["active_cases"], full["capacity"]) == (1, 1)
    assert full["score"] > top["score"]
    load = next(r for r in full["reasons"] if r["code"] == "load")
    assert load["data"] == {"active_cases": 1, "capacity": 1, "at_capacity": True}
    assert "满负荷" in load["text"]

    # Once the body has room again (its case returned), it is first again.
    await _body_keys(api, village)
    await api.step(await api.get(first), "return", {"reason": "调解员外出学习, 无法按期调解"})
    assert _ranked(await _triage(api, second))[0] == village


async def test_a_suspended_body_never_appears_and_cannot_be_assigned(api: Api) -> None:
    village = await _register_body(api, "城东镇丙村人民调解委员会")
    town = await _register_body(api, "城东镇人民调解委员会", tier="town", region=TOWN)
    dispute = await _accepted(api, region_code=VILLAGE)
    assert _ranked(await _triage(api, dispute)) == [village, town]

    suspended = await _patch_body(api, village, {"active": False, "suspended_reason": "换届期间暂停工作"})
    assert (suspended["active"], suspended["suspended_reason"]) == (False, "换届期间暂停工作")
    triage = await _triage(api, dispute)
    assert _ranked(triage) == [town]
    assert village not in {e["body"]["id"] for e in triage["excluded"]}
    # Not even with a reason: the guard wants an active mediation body.
    refused = await _assign(api, dispute, village, override_reason="当事人要求由本村调解")
    assert "target_inactive" in _guard_codes(refused)
    assert (await api.get(dispute))["version"] == dispute["version"]

    # The fixture's suspended committee covers 枫桥 and never appears there either.
    other = await _accepted(api)
    assert str(api.bodies["suspended"]) not in _ranked(await _triage(api, other))

    resumed = await _patch_body(api, village, {"active": True})
    assert (resumed["active"], resumed["suspended_reason"]) == (True, None)
    assert _ranked(await _triage(api, dispute)) == [village, town]


# ---- 3. the region hierarchy --------------------------------------------------------------------


async def test_a_county_body_covers_its_villages_and_no_other_county(api: Api) -> None:
    county = await _register_body(
        api, "诸暨市人民调解委员会", tier="county", region=COUNTY, jurisdiction=["330681"]
    )
    town = await _register_body(api, "城东镇人民调解委员会", tier="town", region=TOWN)

    ours = await _accepted(api, region_code=VILLAGE)
    triage = await _triage(api, ours)
    assert _ranked(triage) == [town, county]
    tier_fit = next(r for r in triage["recommendations"][1]["reasons"] if r["code"] == "tier_fit")
    assert tier_fit["data"] == {"tier": "county", "steps_above": 2}

    # A village of 枫桥 (another town of the county): the county body, not 城东镇's town body.
    fengqiao = await _accepted(api)
    ranked = _ranked(await _triage(api, fengqiao))
    assert county in ranked
    assert town not in ranked

    # A village of 上虞 (another county), seen by 上虞's center: only 上虞's own committee.
    shangyu_parties = [person("applicant", "欧阳娜娜", 81), person("respondent", "司马青衫", 82)]
    theirs = await api.intake(
        "other_center",
        region_code="330604100201",
        description="上虞某村相邻通行纠纷。",
        parties=shangyu_parties,
    )
    theirs = await api.step(theirs, "accept", headers=api.auth("clerk", "other_center"))
    response = await api.client.get(
        f"/v1/disputes/{theirs['id']}/triage", headers=api.auth("clerk", "other_center")
    )
    assert response.status_code == 200, response.text
    assert _ranked(response.json()) == [str(api.bodies["other_village"])]
    # Assigning our county body there is an override, and needs its reason.
    refused = await api.act(theirs, "assign", {"body_id": county}, headers=api.auth("clerk", "other_center"))
    assert _guard_codes(refused) == {"override_reason_required"}

    covering = await api.client.get("/v1/bodies", params={"covers": "330604100201"})
    assert county not in {b["id"] for b in covering.json()}


# ---- 4. reasons, overrides and the assignment record --------------------------------------------


async def test_every_recommendation_carries_readable_and_machine_readable_reasons(api: Api) -> None:
    village = await _register_body(api, "城东镇丁村人民调解委员会", categories=["neighbour"])
    mediator = await api.client.post(
        f"/v1/bodies/{village}/mediators",
        json={"name": "何调解", "title": "金牌调解员", "specialties": ["neighbour", "debt"]},
        headers=api.auth("admin"),
    )
    assert mediator.status_code == 201, mediator.text
    await _register_body(api, "城东镇人民调解委员会", tier="town", region=TOWN)
    dispute = await _accepted(api, region_code=VILLAGE)

    triage = await _triage(api, dispute)
    assert triage["decision_text"] and HAN.search(triage["decision_text"])
    # A neighbour dispute of ordinary severity: both the severity and the category say village.
    assert [r["code"] for r in triage["tier_reasons"]] == ["tier_by_severity", "tier_by_category"]
    assert len(triage["recommendations"]) == 2
    for recommendation in triage["recommendations"]:
        assert recommendation["reasons"]
        for reason in recommendation["reasons"]:
            assert re.fullmatch(r"[a-z_]+", reason["code"])
            assert HAN.search(reason["text"]), reason
            assert isinstance(reason["data"], dict) and reason["data"]
            assert isinstance(reason["points"], int)
        # The score is the sum of the reasons' points.
        assert recommendation["score"] == sum(r["points"] for r in recommendation["reasons"])
    top = {r["code"]: r for r in triage["recommendations"][0]["reasons"]}
    assert top["body_type"]["data"] == {"kind": "people_mediation_committee", "choice": 1}
    assert top["body_specialty"]["data"] == {"category": "neighbour"}
    assert top["mediator_specialty"]["data"] == {"mediators": 1}
    assert "人民调解委员会" in top["body_type"]["text"]

    english = await _triage(api, dispute, **{"Accept-Language": "en"})
    reason = english["recommendations"][0]["reasons"][0]
    assert not HAN.search(reason["text"]) and reason["code"] == "body_type"


async def test_assigning_outside_the_recommendations_needs_a_reason(api: Api) -> None:
    dispute = await _accepted(api)
    triage = await _triage(api, dispute)
    assert str(api.bodies["other_village"]) not in _ranked(triage)
    before = await api.get(dispute)
    timeline, outbox = await api.timeline_count(dispute["id"]), await api.outbox_count(dispute["id"])

    refused = await _assign(api, dispute, api.bodies["other_village"])
    assert _guard_codes(refused) == {"override_reason_required"}
    reason = refused.json()["reasons"][0]
    assert "上虞区某村人民调解委员会" in reason["message"]
    after = await api.get(dispute)
    assert (after["version"], after["status"], after["body_id"]) == (before["version"], "accepted", None)
    assert await api.timeline_count(dispute["id"]) == timeline
    assert await api.outbox_count(dispute["id"]) == outbox
    assert await _assignments(api, dispute) == []

    overridden = await api.step(
        dispute,
        "assign",
        {
            "body_id": str(api.bodies["other_village"]),
            "override_reason": "申请人长期居住在上虞, 双方同意在当地调解",
        },
    )
    assert (overridden["status"], overridden["body_id"]) == ("assigned", str(api.bodies["other_village"]))
    (assignment,) = await _assignments(api, dispute)
    assert assignment["body_id"] == str(api.bodies["other_village"])
    assert assignment["rank"] is None
    assert assignment["override_reason"] == "申请人长期居住在上虞, 双方同意在当地调解"
    assert assignment["recommendation"]["rank"] is None
    assert [t["body_id"] for t in assignment["recommendation"]["top"]] == _ranked(triage)
    assert assignment["outcome"] is None and assignment["ended_at"] is None


async def test_taking_a_recommendation_records_its_rank(api: Api) -> None:
    dispute = await _accepted(api)
    triage = await _triage(api, dispute)
    second = triage["recommendations"][1]
    assert second["body"]["id"] == str(api.bodies["town"])
    # The second choice is a recommendation too: no reason needed.
    assigned = await api.step(dispute, "assign", {"body_id": second["body"]["id"]})
    assert assigned["body_id"] == str(api.bodies["town"])
    (assignment,) = await _assignments(api, dispute)
    assert (assignment["rank"], assignment["override_reason"]) == (2, None)
    assert assignment["recommendation"]["rank"] == 2
    assert assignment["recommendation"]["score"] == second["score"]
    assert assignment["recommendation"]["rules_version"] == 0
    assert [r["code"] for r in assignment["recommendation"]["reasons"]] == [
        r["code"] for r in second["reasons"]
    ]
    assert assignment["assigned_by"]
    assert assignment["sign_by"] == assigned["sign_for_due_on"]


async def test_triage_advising_to_decline_makes_every_assignment_an_override(api: Api) -> None:
    dispute = await _accepted(api, category="other", subject_matters=["administrative"])
    triage = await _triage(api, dispute)
    assert triage["decision"] == "decline"
    (advice,) = triage["decline_advice"]
    assert (advice["code"], advice["advice"]) == ("administrative_dispute", "administrative_review")
    assert HAN.search(advice["text"])
    top = triage["recommendations"][0]["body"]["id"]
    assert _guard_codes(await _assign(api, dispute, top)) == {"override_reason_required"}
    assert (await api.get(dispute))["version"] == dispute["version"]
    await api.step(dispute, "assign", {"body_id": top, "override_reason": "当事人同意先行调解民事部分"})
    (assignment,) = await _assignments(api, dispute)
    assert (assignment["rank"], assignment["recommendation"]["decision"]) == (None, "decline")


async def test_triage_is_the_centers_work(api: Api) -> None:
    dispute = await _accepted(api)
    url = f"/v1/disputes/{dispute['id']}/triage"
    assert (await api.client.get(url, headers=api.auth("supervisor"))).status_code == 200
    assert (await api.client.get(url, headers=api.auth("admin"))).status_code == 403
    # Another center's clerk does not see the case at all.
    assert (await api.client.get(url, headers=api.auth("clerk", "other_center"))).status_code == 404
    assigned = await api.step(dispute, "assign", {"body_id": str(api.bodies["village"])})
    assert (await api.client.get(url, headers=api.acting("body_mediator", assigned))).status_code == 403


# ---- 5. return, re-triage and exhaustion --------------------------------------------------------


async def test_returning_bodies_are_never_offered_again_and_the_case_is_flagged_when_none_is_left(
    api: Api,
) -> None:
    village, town = str(api.bodies["village"]), str(api.bodies["town"])
    untouched = await _accepted(api)
    dispute = await _accepted(api)
    assert _ranked(await _triage(api, dispute)) == [village, town]

    dispute = await api.step(dispute, "assign", {"body_id": village})
    _later(api)
    dispute = await api.step(dispute, "return", {"reason": "本村调委会成员与当事人有亲属关系"})
    assert (dispute["status"], dispute["body_id"], dispute["attention"]) == ("accepted", None, None)
    triage = await _triage(api, dispute)
    assert triage["decision"] == "route"
    assert _ranked(triage) == [town]
    assert triage["recommendations"][0]["rank"] == 1
    (excluded,) = triage["excluded"]
    assert excluded["body"]["id"] == village
    assert excluded["reason"]["code"] == "excluded_returned"
    assert excluded["reason"]["data"] == {"outcome": "returned", "reason": "本村调委会成员与当事人有亲属关系"}
    assert HAN.search(excluded["reason"]["text"])
    # The returning body is no recommendation any more: sending it back needs a reason.
    assert _guard_codes(await _assign(api, dispute, village)) == {"override_reason_required"}

    _later(api)
    dispute = await api.step(dispute, "assign", {"body_id": town})
    assert (await _assignments(api, dispute))[-1]["rank"] == 1
    dispute = await api.step(dispute, "return")
    assert dispute["attention"] == "triage_exhausted"

    triage = await _triage(api, dispute)
    assert triage["decision"] == "exhausted"
    assert triage["recommendations"] == []
    assert triage["total_candidates"] == 0
    assert {e["body"]["id"] for e in triage["excluded"]} == {village, town}
    assert {e["reason"]["code"] for e in triage["excluded"]} == {"excluded_returned"}

    (event,) = await _events(api, dispute["id"], "triage_exhausted")
    assert event.data["decision"] == "exhausted"
    assert set(event.data["excluded_body_ids"]) == {village, town}
    history = await _assignments(api, dispute)
    assert [(a["body_id"], a["rank"], a["outcome"]) for a in history] == [
        (village, 1, "returned"),
        (town, 1, "returned"),
    ]
    assert all(a["ended_at"] for a in history)

    flagged = await api.client.get(
        "/v1/disputes", params={"attention": "triage_exhausted"}, headers=api.auth("supervisor")
    )
    assert flagged.status_code == 200, flagged.text
    assert [d["id"] for d in flagged.json()["items"]] == [dispute["id"]]
    assert untouched["id"] not in {d["id"] for d in flagged.json()["items"]}

    # A supervisor decides: sending it to a body that returned it is an override with its reason,
    # and clears the flag.
    _later(api)
    decided = await api.step(
        dispute,
        "assign",
        {"body_id": town, "override_reason": "经督办协调, 由镇调委会牵头调处"},
        role="supervisor",
    )
    assert (decided["status"], decided["attention"]) == ("assigned", None)
    flagged = await api.client.get(
        "/v1/disputes", params={"attention": "triage_exhausted"}, headers=api.auth("supervisor")
    )
    assert flagged.json()["items"] == []
    last = (await _assignments(api, dispute))[-1]
    assert (last["rank"], last["override_reason"]) == (None, "经督办协调, 由镇调委会牵头调处")


async def test_a_body_sees_only_its_own_part_of_the_assignment_history(api: Api) -> None:
    dispute = await _accepted(api)
    dispute = await api.step(dispute, "assign", {"body_id": str(api.bodies["village"])})
    dispute = await api.step(dispute, "return", {"reason": "人手不足, 无法按期调解"})
    _later(api)
    dispute = await api.step(dispute, "assign", {"body_id": str(api.bodies["town"])})
    response = await api.client.get(
        f"/v1/disputes/{dispute['id']}/assignments", headers=api.auth("body_mediator", "town")
    )
    assert response.status_code == 200, response.text
    assert [a["body_id"] for a in response.json()] == [str(api.bodies["town"])]
    assert len(await _assignments(api, dispute)) == 2


async def _pii_reads(api: Api, request_id: str) -> list[AuditRecord]:
    async with api.app.state.db.reader() as session:
        rows = await session.scalars(
            select(AuditRecord).where(AuditRecord.request_id == request_id, AuditRecord.action == "pii.read")
        )
        return list(rows)


async def test_numbers_in_assignment_reasons_are_masked_without_pii_read(api: Api) -> None:
    """个人信息保护法 Art. 51: a mediator returning the case, or a clerk overriding the
    recommendation, may quote a party's numbers; a supervisor reads them masked, as in the case's
    own text, and a clerk reads them as typed, that read recorded as a disclosure."""
    phone, id_number = "13912345678", resident_id(9)
    dispute = await api.step(await _accepted(api), "assign", {"body_id": str(api.bodies["village"])})
    dispute = await api.step(dispute, "return", {"reason": f"申请人电话{phone}无法接通, 身份证{id_number}"})
    _later(api)
    dispute = await api.step(
        dispute, "assign", {"body_id": str(api.bodies["town"]), "override_reason": f"改派, 联系人{phone}"}
    )
    path = f"/v1/disputes/{dispute['id']}/assignments"

    masked = await api.client.get(path, headers={**api.auth("supervisor"), "X-Request-ID": "req-masked"})
    assert masked.status_code == 200, masked.text
    assert phone not in masked.text and id_number not in masked.text
    returned, reassigned = masked.json()
    assert returned["outcome_reason"] == f"申请人电话139****5678无法接通, 身份证{mask_id_number(id_number)}"
    assert reassigned["override_reason"] == "改派, 联系人139****5678"
    assert await _pii_reads(api, "req-masked") == []

    shown = await api.client.get(path, headers={**api.auth("clerk"), "X-Request-ID": "req-shown"})
    assert [a["override_reason"] for a in shown.json()][1] == f"改派, 联系人{phone}"
    assert id_number in shown.json()[0]["outcome_reason"]
    (read,) = await _pii_reads(api, "req-shown")
    assert (read.object_id, read.outcome, read.details["via"]) == (
        dispute["id"],
        "success",
        "list_assignments",
    )


async def test_a_body_that_transferred_the_case_away_is_not_offered_again(api: Api) -> None:
    village, town = str(api.bodies["village"]), str(api.bodies["town"])
    dispute = await api.step(await _accepted(api), "assign", {"body_id": village})
    dispute = await api.step(dispute, "sign_for")
    dispute = await api.step(dispute, "transfer", {"reason": "涉及宅基地权属, 需由镇调委会调处"})
    assert (dispute["status"], dispute["body_id"], dispute["attention"]) == ("accepted", None, None)
    triage = await _triage(api, dispute)
    assert _ranked(triage) == [town]
    assert [(e["body"]["id"], e["reason"]["code"]) for e in triage["excluded"]] == [
        (village, "excluded_transferred")
    ]
    (assignment,) = await _assignments(api, dispute)
    assert (assignment["outcome"], assignment["signed_for_at"] is not None) == ("transferred", True)


async def test_a_case_triage_advises_declining_is_flagged_too_once_every_body_returned_it(api: Api) -> None:
    # The clerk sent an administrative matter to mediation anyway (with a reason); both committees
    # returned it. No candidate is left, so a supervisor must decide, as for any other case.
    village, town = str(api.bodies["village"]), str(api.bodies["town"])
    dispute = await _accepted(api, category="other", subject_matters=["administrative"])
    for body in (village, town):
        _later(api)
        dispute = await api.step(dispute, "assign", {"body_id": body, "override_reason": "先行调解民事部分"})
        dispute = await api.step(dispute, "return")
    triage = await _triage(api, dispute)
    assert (triage["recommendations"], triage["total_candidates"]) == ([], 0)
    assert {e["body"]["id"] for e in triage["excluded"]} == {village, town}
    assert dispute["attention"] == "triage_exhausted"
    assert len(await _events(api, dispute["id"], "triage_exhausted")) == 1


async def test_a_case_no_body_covers_is_flagged_as_soon_as_it_comes_back(api: Api) -> None:
    # Medical disputes go to county industry committees only; the county has none.
    dispute = await _accepted(api, category="medical")
    triage = await _triage(api, dispute)
    assert (triage["decision"], triage["recommendations"], triage["excluded"]) == ("no_candidate", [], [])
    dispute = await api.step(
        dispute, "assign", {"body_id": str(api.bodies["town"]), "override_reason": "暂由镇调委会先行调处"}
    )
    dispute = await api.step(dispute, "return")
    assert dispute["attention"] == "triage_exhausted"
    (event,) = await _events(api, dispute["id"], "triage_exhausted")
    assert event.data["decision"] == "no_candidate"


# ---- 6. related and linked cases ----------------------------------------------------------------


async def test_the_same_applicant_by_another_channel_is_found_at_intake(api: Api) -> None:
    first = await api.intake()
    assert first["related_cases"] == []
    # The same 张三 calls the 12345 hotline from another phone, about the same wall, naming the
    # respondent differently.
    applicant = {**person("applicant", "张三", 1), "phone": "13912345678"}
    hotline = await api.intake(
        channel="hotline",
        external_reference="12345-20260601-0101",
        parties=[applicant, person("respondent", "李老四", 31)],
    )
    (related,) = hotline["related_cases"]
    assert related["id"] == first["id"]
    assert related["case_number"] == first["case_number"]
    assert related["matched_on"] == ["id_number"]
    assert (related["channel"], related["linked"]) == ("window", False)

    # A caller with the same phone number but no ID number on file matches on the phone.
    by_phone = await api.intake(
        channel="grid",
        parties=[
            {"role": "applicant", "kind": "person", "name": "张三", "phone": "13912345678"},
            person("respondent", "钱七", 32),
        ],
    )
    assert {r["id"]: r["matched_on"] for r in by_phone["related_cases"]} == {hotline["id"]: ["phone"]}

    # Both parties of the first case again: ID and phone of each.
    again = await api.intake(channel="online")
    matched = {r["id"]: r["matched_on"] for r in again["related_cases"]}
    assert matched == {first["id"]: ["id_number", "phone"], hotline["id"]: ["id_number"]}


async def test_a_stranger_with_the_same_or_a_similar_name_is_not_related(api: Api) -> None:
    first = await api.intake()
    for n, (applicant, respondent) in enumerate((("张三", "李四"), ("张 三", "李 四"), ("張三", "李肆"))):
        stranger = await api.intake(
            parties=[person("applicant", applicant, 41 + n), person("respondent", respondent, 51 + n)]
        )
        assert stranger["related_cases"] == [], (applicant, respondent)
    search = await api.client.get(f"/v1/disputes/{first['id']}/related")
    assert search.status_code == 200
    assert search.json()["items"] == []


async def test_cases_sharing_only_an_agent_are_not_related(api: Api) -> None:
    """A legal-aid lawyer acts for parties in many unrelated cases: an agent is no party."""
    lawyer = person("agent", "法律援助律师", 77)
    first = await api.intake(parties=[person("applicant", "甲", 61), person("respondent", "乙", 62), lawyer])
    second = await api.intake(parties=[person("applicant", "丙", 63), person("respondent", "丁", 64), lawyer])
    assert second["related_cases"] == []
    search = await api.client.get(f"/v1/disputes/{first['id']}/related")
    assert search.status_code == 200 and search.json()["items"] == []
    # Nor does the lawyer relate a case to one where the same person is a party.
    own = await api.intake(parties=[{**lawyer, "role": "applicant"}, person("respondent", "戊", 65)])
    assert own["related_cases"] == []
    # The applicant again, with the lawyer: related by the applicant alone.
    again = await api.intake(parties=[person("applicant", "甲", 61), person("respondent", "己", 66), lawyer])
    assert {r["id"]: r["matched_on"] for r in again["related_cases"]} == {first["id"]: ["id_number", "phone"]}


def _company(name: str, role: str = "respondent", code: str | None = None) -> dict[str, Any]:
    party: dict[str, Any] = {"role": role, "kind": "organisation", "name": name}
    if code is not None:
        party.update(id_type="uscc", id_number=code)
    return party


def _uscc(serial: int) -> str:
    first17 = f"91330681MA2B{serial:05d}"
    return first17 + uscc.calc_check_digit(first17)


async def test_a_case_against_the_same_company_is_found_however_its_name_is_written(api: Api) -> None:
    first = await api.intake(
        category="labour",
        description="工人追讨工资, 申请调解。",
        parties=[person("applicant", "王五", 61), _company("诸暨市枫桥建筑劳务有限公司（第一分公司）")],
    )
    spellings = (
        "诸暨市枫桥建筑劳务有限公司(第一分公司)",
        "诸暨市 枫桥建筑劳务有限公司 第一分公司",
        "诸暨市枫桥建筑劳务有限公司　（第一分公司）",
    )
    later: list[str] = []
    for n, spelling in enumerate(spellings):
        case = await api.intake(
            category="labour",
            description="另一名工人追讨工资。",
            parties=[person("applicant", f"工人{n}", 62 + n), _company(spelling)],
        )
        matched = {r["id"]: r["matched_on"] for r in case["related_cases"]}
        assert matched == {earlier: ["respondent_organisation"] for earlier in (first["id"], *later)}, (
            spelling
        )
        later.append(case["id"])

    # Another company, or the same company as applicant, is not the same respondent.
    other = await api.intake(
        category="labour",
        parties=[person("applicant", "孙八", 70), _company("诸暨市枫桥建筑劳务有限公司第二分公司")],
    )
    assert other["related_cases"] == []
    applicant_company = await api.intake(
        category="contract",
        parties=[
            _company("诸暨市枫桥建筑劳务有限公司（第一分公司）", "applicant"),
            person("respondent", "周九", 71),
        ],
    )
    assert applicant_company["related_cases"] == []

    # By credit code, whatever the name on the form.
    code = _uscc(1)
    with_code = await api.intake(
        category="contract", parties=[person("applicant", "吴十", 72), _company("枫桥劳务公司", code=code)]
    )
    assert with_code["related_cases"] == []
    same_code = await api.intake(
        category="contract",
        parties=[person("applicant", "郑十一", 73), _company("诸暨枫桥某劳务有限责任公司", code=code)],
    )
    assert [(r["id"], r["matched_on"]) for r in same_code["related_cases"]] == [
        (with_code["id"], ["respondent_organisation"])
    ]


async def test_linking_cases_works_once(api: Api) -> None:
    first = await api.intake()
    hotline = await api.intake(channel="hotline", external_reference="12345-20260601-0202")
    assert [r["id"] for r in hotline["related_cases"]] == [first["id"]]

    response = await api.client.post(
        f"/v1/disputes/{hotline['id']}/links",
        json={"dispute_id": first["id"], "kind": "same_dispute", "note": "同一纠纷经热线重复反映"},
    )
    assert response.status_code == 201, response.text
    link = response.json()
    assert (link["dispute_id"], link["case_number"], link["kind"]) == (
        first["id"],
        first["case_number"],
        "same_dispute",
    )
    assert (link["channel"], link["note"]) == ("window", "同一纠纷经热线重复反映")

    for case, other in ((first, hotline), (hotline, first)):
        listed = await api.client.get(f"/v1/disputes/{case['id']}/links")
        assert listed.status_code == 200
        assert [(item["dispute_id"], item["kind"]) for item in listed.json()] == [
            (other["id"], "same_dispute")
        ]
        after = await api.get(case)
        assert after["version"] == case["version"] + 1
        assert (await api.timeline(case))[-1]["action"] == "link"
        assert len(await _events(api, case["id"], "case_linked")) == 1

    # A second link of the pair, from either side, is a conflict and changes nothing.
    for this, other in ((hotline, first), (first, hotline)):
        again = await api.client.post(
            f"/v1/disputes/{this['id']}/links", json={"dispute_id": other["id"], "kind": "related"}
        )
        assert again.status_code == 409, again.text
        assert again.headers["content-type"].startswith("application/problem+json")
        assert again.json()["code"] == "already_linked"
    for case in (first, hotline):
        assert (await api.get(case))["version"] == case["version"] + 1
        assert len((await api.client.get(f"/v1/disputes/{case['id']}/links")).json()) == 1

    itself = await api.client.post(f"/v1/disputes/{first['id']}/links", json={"dispute_id": first["id"]})
    assert itself.status_code == 422
    missing = await api.client.post(
        f"/v1/disputes/{first['id']}/links", json={"dispute_id": str(uuid.uuid4())}
    )
    assert missing.status_code == 404
    by_body = await api.client.post(
        f"/v1/disputes/{first['id']}/links",
        json={"dispute_id": hotline["id"]},
        headers=api.auth("body_admin", "village"),
    )
    assert by_body.status_code == 403


async def test_a_case_escalated_to_a_tier_no_body_serves_reaches_a_supervisor(api: Api) -> None:
    """Escalated from the county to the city, where no mediating body of this registry sits: it
    would wait unseen in `accepted`, so it is flagged as triage's other dead ends are."""
    dispute = await api.drive("mediating", severity="serious")  # at the county
    dispute = await api.step(dispute, "escalate")
    assert (dispute["tier"], dispute["status"]) == ("city", "accepted")
    assert dispute["attention"] == "triage_exhausted"
    triage = await _triage(api, dispute)
    assert (triage["decision"], triage["recommendations"]) == ("no_candidate", [])
    # One event per change of the case: the escalation's own.
    assert await _events(api, dispute["id"], "triage_exhausted") == []
    assert await api.outbox_count(dispute["id"]) == dispute["version"]
    flagged = await api.client.get(
        "/v1/disputes", params={"attention": "triage_exhausted"}, headers=api.auth("supervisor")
    )
    assert [d["id"] for d in flagged.json()["items"]] == [dispute["id"]]


# ---- what no override reason changes ------------------------------------------------------------------


async def test_a_body_is_not_sent_a_category_it_does_not_take_even_with_a_reason(api: Api) -> None:
    dispute = await _accepted(api)  # a neighbour dispute
    before = await api.get(dispute)
    refused = await _assign(api, dispute, api.bodies["labour_mediation"], override_reason="就近调解")
    assert _guard_codes(refused) == {"target_wrong_category"}
    after = await api.get(dispute)
    assert (after["version"], after["status"], after["body_id"]) == (before["version"], "accepted", None)
    labour = await _accepted(api, category="labour")
    assigned = await api.step(labour, "assign", {"body_id": str(api.bodies["labour_mediation"])})
    assert assigned["body_id"] == str(api.bodies["labour_mediation"])


async def test_an_escalated_case_goes_below_its_tier_only_by_a_supervisor(api: Api) -> None:
    dispute = await api.drive("mediating")  # at the village committee
    dispute = await api.step(dispute, "escalate", headers=api.auth("supervisor"))
    assert dispute["tier"] == "town"
    back_down = {"override_reason": "村委会熟悉情况"}
    refused = await _assign(api, dispute, api.bodies["village"], **back_down)
    assert _guard_codes(refused) == {"below_escalated_tier"}
    assert "督办" in refused.json()["reasons"][0]["message"]
    assigned = await api.step(
        dispute,
        "assign",
        {"body_id": str(api.bodies["village"]), **back_down},
        headers=api.auth("supervisor"),
    )
    assert assigned["body_id"] == str(api.bodies["village"])


async def test_a_body_does_not_sign_for_a_case_after_its_days_to_sign_for(api: Api) -> None:
    """在线调解规则 Art. 12: one that does not answer in time is taken to have declined. The body is
    refused even if the scheduler has not yet returned the case."""
    dispute = await api.drive("assigned")
    due = date.fromisoformat(dispute["sign_for_due_on"])
    at_beijing(api, due, 23, 30)
    on_the_last_day = await api.act(dispute, "sign_for", headers=api.acting("body_mediator", dispute))
    assert on_the_last_day.status_code == 200, on_the_last_day.text

    late = await api.drive("assigned")
    at_beijing(api, date.fromisoformat(late["sign_for_due_on"]) + timedelta(days=1), 9)
    refused = await api.act(late, "sign_for", headers=api.acting("body_mediator", late))
    assert _guard_codes(refused) == {"sign_for_lapsed"}
    assert (await api.get(late))["status"] == "assigned"
