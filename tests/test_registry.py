"""The body registry (bodies, mediators, declared conflicts of interest) and the triage rules as data."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx

from tests.support import Api, person, resident_id

TOWN = "330681107000"
VILLAGE = "330681107201"


def _problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = dict(response.json())
    assert problem["type"] == f"/problems/{slug}"
    return problem


def _guard_codes(response: httpx.Response) -> dict[str, dict[str, Any]]:
    problem = _problem(response, 422, "guard-failed")
    return {r["code"]: r for r in problem["reasons"]}


async def _body(api: Api, body_id: str | uuid.UUID) -> httpx.Response:
    response = await api.client.get(f"/v1/bodies/{body_id}")
    assert response.status_code == 200, response.text
    return response


async def _patch(
    api: Api, body_id: str | uuid.UUID, changes: dict[str, Any], auth: dict[str, str], etag: str | None = None
) -> httpx.Response:
    headers = dict(auth)
    if etag is not None:
        headers["If-Match"] = etag
    return await api.client.patch(f"/v1/bodies/{body_id}", json=changes, headers=headers)


async def _ranked(api: Api, dispute: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    response = await api.client.get(f"/v1/disputes/{dispute['id']}/triage")
    assert response.status_code == 200, response.text
    triage = response.json()
    return triage, [r["body"]["id"] for r in triage["recommendations"]]


# ---- bodies -------------------------------------------------------------------------------------


async def test_admin_registers_a_body_with_location_and_etag(api: Api) -> None:
    response = await api.client.post(
        "/v1/bodies",
        json={
            "name": "城东镇人民调解委员会",
            "kind": "people_mediation_committee",
            "tier": "town",
            "region_code": TOWN,
            "jurisdiction": [TOWN, "330681108000"],
            "categories": ["neighbour", "marriage_family"],
            "capacity": 12,
            "contact_phone": "0575-87000000",
        },
        headers=api.auth("admin"),
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"/v1/bodies/{created['id']}"
    assert response.headers["etag"] == '"1"'
    assert {k: created[k] for k in ("kind", "tier", "region_code", "jurisdiction", "categories")} == {
        "kind": "people_mediation_committee",
        "tier": "town",
        "region_code": TOWN,
        "jurisdiction": ["330681107", "330681108"],
        "categories": ["neighbour", "marriage_family"],
    }
    assert (created["capacity"], created["active_cases"], created["active"], created["version"]) == (
        12,
        0,
        True,
        1,
    )

    fetched = await api.client.get(response.headers["location"])
    assert fetched.status_code == 200
    assert fetched.headers["etag"] == '"1"'
    assert fetched.json() == created

    # Without a jurisdiction, a body covers the region it sits in.
    village = await api.client.post(
        "/v1/bodies",
        json={
            "name": "城东镇某村人民调解委员会",
            "kind": "people_mediation_committee",
            "tier": "village",
            "region_code": VILLAGE,
        },
        headers=api.auth("admin"),
    )
    assert village.status_code == 201, village.text
    assert (village.json()["jurisdiction"], village.json()["categories"], village.json()["capacity"]) == (
        [VILLAGE],
        [],
        30,
    )
    covering = await api.client.get("/v1/bodies", params={"covers": VILLAGE})
    assert {b["id"] for b in covering.json()} >= {created["id"], village.json()["id"]}


async def test_only_the_registry_admin_registers_bodies_and_bad_input_creates_none(api: Api) -> None:
    before = len((await api.client.get("/v1/bodies")).json())
    good = {
        "name": "城东镇人民调解委员会",
        "kind": "people_mediation_committee",
        "tier": "town",
        "region_code": TOWN,
    }
    for role in ("clerk", "supervisor", "body_admin", "court"):
        _problem(await api.client.post("/v1/bodies", json=good, headers=api.auth(role)), 403, "forbidden")
    anonymous = await api.client.post("/v1/bodies", json=good, headers={"Authorization": ""})
    assert anonymous.status_code == 401
    for bad in (
        {**good, "kind": "village_elders"},
        {**good, "tier": "province"},
        {**good, "region_code": "3306811"},
        {**good, "categories": ["neighbour", "neighbour"]},
        {**good, "capacity": 0},
        {**good, "active": False},
        {**good, "name": "陶"},
    ):
        _problem(
            await api.client.post("/v1/bodies", json=bad, headers=api.auth("admin")), 422, "validation-error"
        )
    assert len((await api.client.get("/v1/bodies")).json()) == before


async def test_changing_a_body_needs_its_current_etag(api: Api) -> None:
    village = str(api.bodies["village"])
    admin = api.auth("admin")
    etag = (await _body(api, village)).headers["etag"]
    assert etag == '"1"'

    missing = _problem(await _patch(api, village, {"capacity": 5}, admin), 428, "precondition-required")
    assert missing["current_etag"] == '"1"'
    _problem(await _patch(api, village, {"capacity": 5}, admin, "*"), 428, "precondition-required")
    stale = _problem(await _patch(api, village, {"capacity": 5}, admin, '"0"'), 412, "stale-version")
    assert stale["current_etag"] == '"1"'
    assert (await _body(api, village)).json()["capacity"] == 30

    changed = await _patch(api, village, {"capacity": 5, "description": "枫源村调委会"}, admin, etag)
    assert changed.status_code == 200, changed.text
    assert changed.headers["etag"] == '"2"'
    assert (changed.json()["capacity"], changed.json()["description"], changed.json()["version"]) == (
        5,
        "枫源村调委会",
        2,
    )
    # The same ETag a second time is stale: someone (here: we) changed the body meanwhile.
    _problem(await _patch(api, village, {"capacity": 6}, admin, etag), 412, "stale-version")

    # Suspending needs a reason.
    refused = _problem(await _patch(api, village, {"active": False}, admin, '"2"'), 422, "validation-error")
    assert refused["errors"][0]["code"] == "suspended_reason_required"
    suspended = await _patch(
        api, village, {"active": False, "suspended_reason": "办公场所搬迁"}, admin, '"2"'
    )
    assert suspended.status_code == 200, suspended.text
    assert (suspended.json()["active"], suspended.json()["suspended_reason"]) == (False, "办公场所搬迁")
    listed = await api.client.get("/v1/bodies", params={"active": "false", "covers": "330681105201"})
    assert village in {b["id"] for b in listed.json()}


async def test_an_admin_moves_a_body_by_changing_its_jurisdiction(api: Api) -> None:
    dispute = await api.step(await api.intake(), "accept")
    _, ranked = await _ranked(api, dispute)
    assert str(api.bodies["village"]) in ranked
    moved = await _patch(api, api.bodies["village"], {"jurisdiction": [VILLAGE]}, api.auth("admin"), '"1"')
    assert moved.status_code == 200, moved.text
    assert moved.json()["jurisdiction"] == [VILLAGE]
    _, ranked = await _ranked(api, dispute)
    assert str(api.bodies["village"]) not in ranked


async def test_a_body_admin_changes_its_own_profile_but_not_its_tier(api: Api) -> None:
    village = str(api.bodies["village"])
    own = api.auth("body_admin", "village")
    changed = await _patch(
        api,
        village,
        {"capacity": 12, "contact_phone": "0575-87012345", "description": "周一至周五值班"},
        own,
        '"1"',
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["capacity"], changed.json()["contact_phone"], changed.json()["version"]) == (
        12,
        "0575-87012345",
        2,
    )

    for beyond in (
        {"tier": "town"},
        {"capacity": 20, "tier": "county"},
        {"active": False, "suspended_reason": "自行暂停"},
        {"jurisdiction": ["330681"]},
        {"name": "枫源村调委会"},
    ):
        forbidden = _problem(await _patch(api, village, beyond, own, '"2"'), 403, "forbidden")
        assert set(forbidden["fields"]) == set(beyond) - {"capacity"}
    after = (await _body(api, village)).json()
    assert (after["tier"], after["capacity"], after["version"], after["active"]) == ("village", 12, 2, True)

    # Another body's administrator, the body's mediator and the center do not see it as editable.
    for auth in (api.auth("body_admin", "town"), api.auth("body_mediator", "village"), api.auth("clerk")):
        _problem(await _patch(api, village, {"capacity": 99}, auth, '"2"'), 404, "not-found")
    assert (await _body(api, village)).json()["capacity"] == 12


async def test_a_body_narrowing_its_categories_drops_out_of_triage_for_the_others(api: Api) -> None:
    dispute = await api.step(await api.intake(), "accept")
    _, ranked = await _ranked(api, dispute)
    assert ranked[0] == str(api.bodies["village"])
    narrowed = await _patch(
        api,
        api.bodies["village"],
        {"categories": ["marriage_family"]},
        api.auth("body_admin", "village"),
        '"1"',
    )
    assert narrowed.status_code == 200, narrowed.text
    _, ranked = await _ranked(api, dispute)
    assert ranked == [str(api.bodies["town"])]
    family = await api.step(await api.intake(category="marriage_family"), "accept")
    triage, ranked = await _ranked(api, family)
    assert ranked[0] == str(api.bodies["village"])
    assert "body_specialty" in {r["code"] for r in triage["recommendations"][0]["reasons"]}


# ---- mediators ----------------------------------------------------------------------------------


async def _add_mediator(
    api: Api, body: str | uuid.UUID, auth: dict[str, str], name: str = "陈调解", **extra: Any
) -> httpx.Response:
    return await api.client.post(f"/v1/bodies/{body}/mediators", json={"name": name, **extra}, headers=auth)


async def test_who_adds_mediators_to_a_roster(api: Api) -> None:
    village = api.bodies["village"]
    by_admin = await _add_mediator(
        api, village, api.auth("admin"), title="调委会主任", specialties=["neighbour"]
    )
    assert by_admin.status_code == 201, by_admin.text
    assert by_admin.headers["etag"] == '"1"'
    added = by_admin.json()
    assert (added["body_id"], added["title"], added["specialties"], added["active"]) == (
        str(village),
        "调委会主任",
        ["neighbour"],
        True,
    )
    by_own_admin = await _add_mediator(api, village, api.auth("body_admin", "village"), "楼调解")
    assert by_own_admin.status_code == 201, by_own_admin.text

    for auth in (
        api.auth("body_admin", "town"),
        api.auth("body_mediator", "village"),
        api.auth("clerk"),
        api.auth("supervisor"),
    ):
        _problem(await _add_mediator(api, village, auth, "冒名调解员"), 404, "not-found")
    # Courts and commissions have no mediators.
    _problem(await _add_mediator(api, api.bodies["court"], api.auth("admin")), 403, "forbidden")
    _problem(
        await _add_mediator(api, village, api.auth("admin"), specialties=["gossip"]), 422, "validation-error"
    )

    roster = await api.client.get(f"/v1/bodies/{village}/mediators", headers=api.auth("admin"))
    assert {m["id"] for m in roster.json()} == {
        str(api.mediators[village]),
        added["id"],
        by_own_admin.json()["id"],
    }


async def test_a_roster_is_seen_by_the_center_of_its_region_the_body_itself_and_the_admin(api: Api) -> None:
    village = api.bodies["village"]
    expected = [str(api.mediators[village])]
    for auth in (
        api.auth("admin"),
        api.auth("clerk"),
        api.auth("supervisor"),
        api.auth("body_mediator", "village"),
        api.auth("body_admin", "village"),
    ):
        response = await api.client.get(f"/v1/bodies/{village}/mediators", headers=auth)
        assert response.status_code == 200, response.text
        assert [m["id"] for m in response.json()] == expected
    for auth in (
        api.auth("body_admin", "town"),
        api.auth("body_mediator", "other_village"),
        api.auth("clerk", "other_center"),
        api.auth("court"),
        api.auth("auditor"),
    ):
        _problem(await api.client.get(f"/v1/bodies/{village}/mediators", headers=auth), 404, "not-found")
    # The body itself is public reference data; only its roster is not.
    assert (await api.client.get(f"/v1/bodies/{village}", headers=api.auth("court"))).status_code == 200


async def test_an_inactive_mediator_cannot_take_a_case(api: Api) -> None:
    dispute = await api.drive("assigned")
    mediator = api.mediators[api.bodies["village"]]
    retired = await api.client.patch(
        f"/v1/bodies/{api.bodies['village']}/mediators/{mediator}",
        json={"active": False},
        headers={**api.auth("body_admin", "village"), "If-Match": '"1"'},
    )
    assert retired.status_code == 200, retired.text
    assert retired.json()["active"] is False
    assert "mediator_not_in_body" in _guard_codes(await api.act(dispute, "sign_for"))
    assert (await api.get(dispute))["status"] == "assigned"


# ---- conflicts of interest ----------------------------------------------------------------------


async def _declare(
    api: Api, body: str | uuid.UUID, mediator: str | uuid.UUID, data: dict[str, Any], auth: dict[str, str]
) -> httpx.Response:
    return await api.client.post(f"/v1/bodies/{body}/mediators/{mediator}/conflicts", json=data, headers=auth)


async def test_a_mediator_related_to_the_applicant_cannot_sign_for_the_case(api: Api) -> None:
    village = api.bodies["village"]
    cousin = api.mediators[village]
    declared = await _declare(
        api,
        village,
        cousin,
        {"relation": "申请人的表兄", "person_name": "张三", "id_number": resident_id(1)},
        api.auth("body_admin", "village"),
    )
    assert declared.status_code == 201, declared.text
    conflict = declared.json()
    assert (conflict["mediator_id"], conflict["relation"], conflict["dispute_id"]) == (
        str(cousin),
        "申请人的表兄",
        None,
    )
    assert conflict["id_number_masked"] and "*" in conflict["id_number_masked"]
    assert resident_id(1) not in declared.text

    dispute = await api.drive("assigned")
    refused = _guard_codes(await api.act(dispute, "sign_for", {"mediator_id": str(cousin)}))
    assert set(refused) == {"mediator_conflict"}
    assert "申请人的表兄" in refused["mediator_conflict"]["message"]
    assert "特邀调解规定 第十六条" in refused["mediator_conflict"]["article"]
    after = await api.get(dispute)
    assert (after["status"], after["version"], after["mediator_id"]) == ("assigned", dispute["version"], None)

    colleague = await _add_mediator(api, village, api.auth("body_admin", "village"), "楼调解")
    assert colleague.status_code == 201, colleague.text
    signed = await api.step(dispute, "sign_for", {"mediator_id": colleague.json()["id"]})
    assert (signed["status"], signed["mediator_id"], signed["mediator_name"]) == (
        "mediating",
        colleague.json()["id"],
        "楼调解",
    )

    # A conflict with somebody else blocks nothing.
    other = await api.drive(
        "assigned", parties=[person("applicant", "王五", 31), person("respondent", "赵六", 32)]
    )
    assert (await api.step(other, "sign_for", {"mediator_id": str(cousin)}))["mediator_id"] == str(cousin)


async def test_naming_a_mediator_with_a_declared_conflict_is_refused(api: Api) -> None:
    village = api.bodies["village"]
    first = api.mediators[village]
    dispute = await api.drive("mediating")
    assert dispute["mediator_id"] == str(first)
    own_admin = api.auth("body_admin", "village")
    second = (await _add_mediator(api, village, own_admin, "楼调解")).json()["id"]
    third = (await _add_mediator(api, village, own_admin, "何调解")).json()["id"]

    # Related to the respondent (李四), and an interest in this very case.
    by_person = await _declare(
        api, village, second, {"relation": "被申请人的儿媳", "id_number": resident_id(2)}, own_admin
    )
    assert by_person.status_code == 201, by_person.text
    by_case = await _declare(
        api,
        village,
        third,
        {"relation": "与本案有利害关系", "dispute_id": dispute["id"]},
        api.auth("body_mediator", "village"),
    )
    assert by_case.status_code == 201, by_case.text
    assert by_case.json()["dispute_id"] == dispute["id"]

    url = f"/v1/disputes/{dispute['id']}/mediator"
    headers = {**api.auth("body_admin", "village"), "If-Match": f'"{dispute["version"]}"'}
    for mediator, relation in ((second, "被申请人的儿媳"), (third, "与本案有利害关系")):
        refused = _guard_codes(await api.client.put(url, json={"mediator_id": mediator}, headers=headers))
        assert set(refused) == {"mediator_conflict"}
        assert relation in refused["mediator_conflict"]["message"]
    after = await api.get(dispute)
    assert (after["version"], after["mediator_id"]) == (dispute["version"], str(first))
    assert await api.timeline_count(dispute["id"]) == dispute["version"]

    # Another body's mediator is no choice either.
    stranger = api.mediators[api.bodies["town"]]
    refused = _guard_codes(await api.client.put(url, json={"mediator_id": str(stranger)}, headers=headers))
    assert "mediator_not_in_body" in refused

    # Changing to a mediator without a conflict works, with the current ETag only.
    colleague = (await _add_mediator(api, village, own_admin, "章调解")).json()["id"]
    missing = await api.client.put(
        url, json={"mediator_id": colleague}, headers=api.auth("body_admin", "village")
    )
    _problem(missing, 428, "precondition-required")
    named = await api.client.put(url, json={"mediator_id": colleague}, headers=headers)
    assert named.status_code == 200, named.text
    assert (named.json()["mediator_id"], named.json()["mediator_name"]) == (colleague, "章调解")
    assert named.headers["etag"] == f'"{dispute["version"] + 1}"'
    assert (await api.timeline(dispute))[-1]["action"] == "assign_mediator"

    # Only the body holding the case names its mediator.
    current = {"If-Match": f'"{dispute["version"] + 1}"'}
    _problem(
        await api.client.put(url, json={"mediator_id": colleague}, headers={**api.auth("clerk"), **current}),
        403,
        "forbidden",
    )
    _problem(
        await api.client.put(
            url, json={"mediator_id": colleague}, headers={**api.auth("body_admin", "town"), **current}
        ),
        404,
        "not-found",
    )


async def test_only_the_body_itself_declares_and_reads_its_mediators_conflicts(api: Api) -> None:
    village = api.bodies["village"]
    mediator = api.mediators[village]
    data = {"relation": "申请人的同学", "id_number": resident_id(1)}
    for auth in (api.auth("body_admin", "town"), api.auth("clerk"), api.auth("admin")):
        _problem(await _declare(api, village, mediator, data, auth), 404, "not-found")
    # Another body's mediator under this body's address.
    _problem(
        await _declare(
            api, village, api.mediators[api.bodies["town"]], data, api.auth("body_admin", "village")
        ),
        404,
        "not-found",
    )
    # A case the body does not hold.
    elsewhere = await api.intake()
    _problem(
        await _declare(
            api,
            village,
            mediator,
            {"relation": "亲属", "dispute_id": elsewhere["id"]},
            api.auth("body_admin", "village"),
        ),
        404,
        "not-found",
    )
    missing = await _declare(api, village, mediator, {"relation": "亲属"}, api.auth("body_admin", "village"))
    assert _problem(missing, 422, "validation-error")["errors"][0]["code"] == "conflict_target_missing"
    invalid = await _declare(
        api,
        village,
        mediator,
        {"relation": "亲属", "id_number": "330681199005170000"},
        api.auth("body_admin", "village"),
    )
    assert _problem(invalid, 422, "validation-error")["errors"][0]["code"] == "invalid_id_number"

    declared = await _declare(api, village, mediator, data, api.auth("body_mediator", "village"))
    assert declared.status_code == 201, declared.text
    url = f"/v1/bodies/{village}/mediators/{mediator}/conflicts"
    for auth in (api.auth("body_admin", "village"), api.auth("admin")):
        listed = await api.client.get(url, headers=auth)
        assert listed.status_code == 200, listed.text
        assert [c["relation"] for c in listed.json()] == ["申请人的同学"]
        assert resident_id(1) not in listed.text
    for auth in (api.auth("clerk"), api.auth("body_admin", "town")):
        _problem(await api.client.get(url, headers=auth), 404, "not-found")


# ---- the triage rules ---------------------------------------------------------------------------


async def _rules(api: Api) -> httpx.Response:
    response = await api.client.get("/v1/triage/rules")
    assert response.status_code == 200, response.text
    return response


def _with_neighbour_at_town(rules: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(rules)
    changed["name"] = "邻里纠纷由乡镇调处"
    changed["categories"]["neighbour"]["min_tier"] = "town"
    return changed


async def test_the_default_rules_are_version_0(api: Api) -> None:
    response = await _rules(api)
    assert response.headers["etag"] == '"0"'
    body = response.json()
    assert (body["version"], body["source"], body["updated_by"], body["updated_at"]) == (
        0,
        "default",
        None,
        None,
    )
    assert body["rules"]["categories"]["labour"]["group_threshold"] == 10
    assert body["rules"]["categories"]["neighbour"]["body_kinds"] == ["people_mediation_committee"]
    for role in ("supervisor", "body_mediator", "court", "admin"):
        assert (await api.client.get("/v1/triage/rules", headers=api.auth(role))).status_code == 200
    assert (await api.client.get("/v1/triage/rules", headers={"Authorization": ""})).status_code == 401


async def test_new_rules_change_routing_and_deleting_them_restores_the_default(api: Api) -> None:
    village, town = str(api.bodies["village"]), str(api.bodies["town"])
    dispute = await api.step(await api.intake(), "accept")
    triage, ranked = await _ranked(api, dispute)
    assert (triage["rules_version"], triage["tier"], ranked) == (0, "village", [village, town])

    current = (await _rules(api)).json()["rules"]
    put = await api.client.put(
        "/v1/triage/rules",
        json={"rules": _with_neighbour_at_town(current), "note": "镇里统一调处邻里纠纷"},
        headers={**api.auth("admin"), "If-Match": '"0"'},
    )
    assert put.status_code == 200, put.text
    assert put.headers["etag"] == '"1"'
    stored = put.json()
    assert (stored["version"], stored["source"], stored["updated_by"]) == (
        1,
        "database",
        str(api.users[("admin", None)]),
    )
    assert stored["rules"]["categories"]["neighbour"]["min_tier"] == "town"
    assert (await _rules(api)).json() == stored

    # The case registered under the default is triaged under the new rules: the village is too low.
    triage, ranked = await _ranked(api, dispute)
    assert (triage["rules_version"], triage["tier"], ranked) == (1, "town", [town])
    by_category = next(r for r in triage["tier_reasons"] if r["code"] == "tier_by_category")
    assert by_category["data"] == {"category": "neighbour", "tier": "town"}
    codes = _guard_codes(await api.act(dispute, "assign", {"body_id": village}))
    assert set(codes) == {"override_reason_required"}
    assert (await api.intake())["tier"] == "town"

    reset = await api.client.delete("/v1/triage/rules", headers={**api.auth("admin"), "If-Match": '"1"'})
    assert reset.status_code == 200, reset.text
    assert reset.headers["etag"] == '"2"'
    assert (reset.json()["version"], reset.json()["source"]) == (2, "default")
    assert reset.json()["rules"] == current
    triage, ranked = await _ranked(api, dispute)
    assert (triage["rules_version"], triage["tier"], ranked) == (2, "village", [village, town])
    assigned = await api.step(dispute, "assign", {"body_id": village})
    (assignment,) = (await api.client.get(f"/v1/disputes/{dispute['id']}/assignments")).json()
    assert (assigned["body_id"], assignment["rank"], assignment["recommendation"]["rules_version"]) == (
        village,
        1,
        2,
    )


async def test_a_case_registered_under_stricter_rules_follows_the_rules_once_they_are_relaxed(
    api: Api,
) -> None:
    # Triage is computed from the rules in force; a case that was never escalated has no tier of
    # its own to keep once the rule that raised it is withdrawn.
    village, town = str(api.bodies["village"]), str(api.bodies["town"])
    current = (await _rules(api)).json()["rules"]
    put = await api.client.put(
        "/v1/triage/rules",
        json={"rules": _with_neighbour_at_town(current)},
        headers={**api.auth("admin"), "If-Match": '"0"'},
    )
    assert put.status_code == 200, put.text
    dispute = await api.step(await api.intake(), "accept")
    _, ranked = await _ranked(api, dispute)
    assert ranked == [town]

    reset = await api.client.delete("/v1/triage/rules", headers={**api.auth("admin"), "If-Match": '"1"'})
    assert reset.status_code == 200, reset.text
    triage, ranked = await _ranked(api, dispute)
    assert triage["rules_version"] == 2
    assert (triage["tier"], ranked) == ("village", [village, town])
    assert all(r["data"]["tier"] == "village" for r in triage["tier_reasons"])


async def test_an_invalid_rule_set_is_refused_and_changes_nothing(api: Api) -> None:
    current = (await _rules(api)).json()["rules"]

    def edited(change: Any) -> dict[str, Any]:
        rules = copy.deepcopy(current)
        change(rules)
        return rules

    invalid = {
        "unknown body kind": edited(
            lambda r: r["categories"]["neighbour"].update(
                body_kinds=["people_mediation_committee", "village_elders"]
            )
        ),
        "no fallback": edited(lambda r: r["categories"].pop("other")),
        "a court as mediator": edited(lambda r: r["categories"]["debt"].update(body_kinds=["court"])),
        "a severity without tier": edited(lambda r: r["tiers"]["severity"].pop("serious")),
        "unknown category": edited(
            lambda r: r["categories"].update(gossip={"body_kinds": ["lawyer_mediation"]})
        ),
        "unknown tier": edited(lambda r: r["categories"]["medical"].update(min_tier="province")),
        "decline rule without condition": edited(lambda r: r["decline"][0].update(subject_matters=[])),
        "unknown field": edited(lambda r: r.update(fallback="people_mediation_committee")),
    }
    for what, rules in invalid.items():
        response = await api.client.put(
            "/v1/triage/rules", json={"rules": rules}, headers={**api.auth("admin"), "If-Match": '"0"'}
        )
        problem = _problem(response, 422, "validation-error")
        assert problem["errors"], what
        assert all(e["field"].startswith("rules") for e in problem["errors"]), (what, problem["errors"])
    missing_other = await api.client.put(
        "/v1/triage/rules",
        json={"rules": invalid["no fallback"]},
        headers={**api.auth("admin"), "If-Match": '"0"'},
    )
    assert "other" in missing_other.json()["errors"][0]["message"]
    body = (await _rules(api)).json()
    assert (body["version"], body["source"], body["rules"]) == (0, "default", current)


async def test_only_the_registry_admin_replaces_the_rules_and_only_with_the_current_version(api: Api) -> None:
    current = (await _rules(api)).json()["rules"]
    payload = {"rules": _with_neighbour_at_town(current)}
    for role in ("clerk", "supervisor", "body_admin", "auditor"):
        headers = {**api.auth(role), "If-Match": '"0"'}
        _problem(await api.client.put("/v1/triage/rules", json=payload, headers=headers), 403, "forbidden")
        _problem(await api.client.delete("/v1/triage/rules", headers=headers), 403, "forbidden")

    admin = api.auth("admin")
    _problem(
        await api.client.put("/v1/triage/rules", json=payload, headers=admin), 428, "precondition-required"
    )
    stale = await api.client.put("/v1/triage/rules", json=payload, headers={**admin, "If-Match": '"3"'})
    assert _problem(stale, 412, "stale-version")["current_etag"] == '"0"'
    assert (await _rules(api)).json()["version"] == 0

    first = await api.client.put("/v1/triage/rules", json=payload, headers={**admin, "If-Match": '"0"'})
    assert first.status_code == 200, first.text
    # A second administrator who still saw version 0 does not overwrite the first one's change.
    second = await api.client.put(
        "/v1/triage/rules", json={"rules": current}, headers={**admin, "If-Match": '"0"'}
    )
    _problem(second, 412, "stale-version")
    _problem(
        await api.client.delete("/v1/triage/rules", headers={**admin, "If-Match": '"0"'}),
        412,
        "stale-version",
    )
    body = (await _rules(api)).json()
    assert (body["version"], body["rules"]["categories"]["neighbour"]["min_tier"]) == (1, "town")
