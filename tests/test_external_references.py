"""The number a referring system gave a case (a 12345 work order, a court's 诉前调 case number, a
petition's 信访 number, a police report) registers one case per issuing side: the county the case
is registered in, or for a court-delegated case the delegating court. Two counties' platforms may
issue the same number; the same platform's number twice is one case. References are read the way
Chinese institutions write them, in one canonical form, so typing （ for ( does not register a
second case; and two intakes of one referral at the same moment get the same answer as one after
the other."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from mediation.bodies.models import Body, BodyJurisdiction
from mediation.disputes.identity import region_prefix
from mediation.disputes.service import DisputeService
from mediation.migrate import upgrade
from tests.support import Api, intake_body, pause_after, waits_on_a_lock
from tests.test_migrations import empty_database  # noqa: F401  (the fixture)
from tests.test_web import case_number_in, intake_form, signed_in

ON_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
DUPLICATE = "/problems/duplicate-external-reference"


async def _post(api: Api, as_: str = "center", **overrides: Any) -> httpx.Response:
    return await api.client.post(
        "/v1/disputes", json=intake_body(**overrides), headers=api.headers("clerk", as_)
    )


def _names_the_case(response: httpx.Response, case: dict[str, Any]) -> None:
    """The refusal of a duplicate the caller may see: 409, naming the case and where it is."""
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["type"] == DUPLICATE
    assert problem["case_number"] == case["case_number"]
    assert problem["dispute_id"] == case["id"]
    assert response.headers["location"] == f"/v1/disputes/{case['id']}"


async def _town_center(api: Api) -> str:
    """A town's center in the first county (枫桥's neighbour town): it sees its town's cases only."""
    async with api.app.state.db.writer() as session, session.begin():
        body = Body(
            id=uuid.uuid4(),
            name="诸暨市某镇矛盾纠纷调处化解中心",
            kind="mediation_center",
            tier="town",
            region_code="330681106000",
            active=True,
            categories=[],
            created_at=datetime.now(UTC),
        )
        session.add(body)
        await session.flush()
        session.add(BodyJurisdiction(body_id=body.id, region_prefix=region_prefix(body.region_code)))
    api.bodies["town_center"] = body.id
    await api.signed_in("clerk", "town_center")
    return "town_center"


# ---- 1. the issuing side --------------------------------------------------------------------------


async def test_two_counties_platforms_may_issue_the_same_work_order_number(api):
    here = await api.intake(channel="hotline", external_reference="12345-2026-00001")
    there = await _post(
        api,
        "other_center",
        channel="hotline",
        external_reference="12345-2026-00001",
        region_code="330604001001",
    )
    assert there.status_code == 201, there.text
    assert there.json()["external_reference"] == "12345-2026-00001"
    assert there.json()["id"] != here["id"]
    # Each county's own number is still one case there.
    _names_the_case(
        await _post(
            api,
            "other_center",
            channel="hotline",
            external_reference="12345-2026-00001",
            region_code="330604100201",
        ),
        there.json(),
    )
    _names_the_case(await _post(api, channel="hotline", external_reference="12345-2026-00001"), here)


async def test_petition_and_police_numbers_are_scoped_to_their_county_too(api):
    for channel, reference in (("petition", "XF-2026-0012"), ("police", "GA-2026-0042")):
        here = await api.intake(channel=channel, external_reference=reference)
        there = await _post(
            api, "other_center", channel=channel, external_reference=reference, region_code="330604001001"
        )
        assert there.status_code == 201, there.text
        _names_the_case(await _post(api, channel=channel, external_reference=reference), here)


async def test_a_town_center_is_refused_a_work_order_its_county_registered_without_its_case_named(api):
    first = await api.intake(channel="hotline", external_reference="12345-20260601-0077")
    town = await _town_center(api)
    response = await _post(
        api, town, channel="hotline", external_reference="12345-20260601-0077", region_code="330681106201"
    )
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["type"] == DUPLICATE
    assert "case_number" not in problem and "dispute_id" not in problem and "location" not in response.headers
    assert first["case_number"] not in response.text and first["id"] not in response.text


async def test_two_courts_may_delegate_cases_under_the_same_number(api):
    court, other_court = str(api.bodies["court"]), str(api.bodies["other_court"])
    reference = "2026-SQT-00123"
    first = await api.intake(channel="court_delegated", inviting_court_id=court, external_reference=reference)
    second = await _post(
        api, channel="court_delegated", inviting_court_id=other_court, external_reference=reference
    )
    assert second.status_code == 201, second.text
    # The same court's number twice is one delegated case, wherever it is registered.
    _names_the_case(
        await _post(api, channel="court_delegated", inviting_court_id=court, external_reference=reference),
        first,
    )
    elsewhere = await _post(
        api,
        "other_center",
        channel="court_delegated",
        inviting_court_id=court,
        external_reference=reference,
        region_code="330604001001",
    )
    assert elsewhere.status_code == 409, elsewhere.text
    assert elsewhere.json()["type"] == DUPLICATE and "case_number" not in elsewhere.json()


# ---- the migration ----------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_references_registered_before_get_their_issuing_side_from_the_migration(empty_database):  # noqa: F811
    """Migration 0030 gives every case holding a reference its issuing side (the county, or the
    delegating court), as intake does from then on; from then on another county's same number is
    another case, and the same county's is still refused by the database."""
    upgrade(empty_database, "0029")
    sqlite = empty_database.startswith("sqlite")
    court = "5b0c9a8e-1f0e-4d7c-9a51-0000000000c1"

    def uuid_literal(value: str) -> str:
        return value.replace("-", "") if sqlite else value

    async def run(statements: list[tuple[str, dict[str, object]]]) -> list[tuple[Any, ...]]:
        engine = create_async_engine(empty_database)
        rows: list[tuple[Any, ...]] = []
        try:
            async with engine.begin() as conn:
                for sql, params in statements:
                    result = await conn.execute(text(sql), params)
                    rows += [tuple(r) for r in result.all()] if result.returns_rows else []
        finally:
            await engine.dispose()
        return rows

    def case(number: str, channel: str, reference: str | None, region: str, court_id: str | None) -> tuple:
        return (
            "INSERT INTO disputes (id, case_number, query_code_hash, category, subject_matters,"
            " description, channel, external_reference, region_code, inviting_court_id, people_involved,"
            " severity, is_group, is_risk, tier, status, version, applied_on, created_by, created_at,"
            " updated_at) VALUES (:id, :number, 'x', 'neighbour', '[]', '旧数据', :channel, :reference,"
            " :region, :court, 2, 'ordinary', false, false, 'village', 'registered', 1, '2026-06-01',"
            " 'clerk', '2026-06-01 02:00:00', '2026-06-01 02:00:00')",
            {
                "id": uuid_literal(str(uuid.uuid4())),
                "number": number,
                "channel": channel,
                "reference": reference,
                "region": region,
                "court": uuid_literal(court_id) if court_id else None,
            },
        )

    asyncio.run(
        run(
            [
                (
                    "INSERT INTO bodies (id, name, kind, tier, region_code, active, categories, capacity,"
                    " version, created_at) VALUES (:id, '诸暨市人民法院', 'court', 'county', '330681000000',"
                    " true, '[]', 30, 1, '2026-06-01 02:00:00')",
                    {"id": uuid_literal(court)},
                ),
                case("330681-2026-000001", "hotline", "12345-2026-1", "330681105201", None),
                case(
                    "330681-2026-000002", "court_delegated", "(2026)浙0681民诉前调1号", "330604105201", court
                ),
                case("330681-2026-000003", "window", None, "330681105201", None),
            ]
        )
    )
    upgrade(empty_database)
    rows = asyncio.run(run([("SELECT case_number, reference_scope FROM disputes ORDER BY case_number", {})]))
    assert rows == [
        ("330681-2026-000001", "330681"),
        ("330681-2026-000002", court),
        ("330681-2026-000003", None),
    ]

    def with_scope(statement: tuple, scope: str) -> tuple:
        sql, params = statement
        sql = sql.replace("inviting_court_id,", "inviting_court_id, reference_scope,").replace(
            ":court,", ":court, :scope,"
        )
        return sql, {**params, "scope": scope}

    another_county = case("330604-2026-000001", "hotline", "12345-2026-1", "330604001001", None)
    asyncio.run(run([with_scope(another_county, "330604")]))
    same_county = case("330681-2026-000004", "hotline", "12345-2026-1", "330681105201", None)
    with pytest.raises(IntegrityError):
        asyncio.run(run([with_scope(same_county, "330681")]))


# ---- 2. how references are written ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("（2026）浙0681民诉前调123号", "(2026)浙0681民诉前调123号"),
        ("(2026)浙0681民诉前调123号", "(2026)浙0681民诉前调123号"),
        ("浙信转〔2026〕12号", "浙信转〔2026〕12号"),
        ("12345-2026-00001", "12345-2026-00001"),
        ("诸公（枫）行罚决字〔2026〕00315号", "诸公(枫)行罚决字〔2026〕00315号"),
        ("ZJ12345_2026.06/01:#7", "ZJ12345_2026.06/01:#7"),
    ],
)
async def test_references_as_chinese_institutions_write_them_are_accepted(api, written, stored):
    case = await api.intake(channel="petition", external_reference=written)
    assert case["external_reference"] == stored
    assert (await api.get(case))["external_reference"] == stored


@pytest.mark.parametrize(
    ("first", "again"),
    [
        ("（2026）浙0681民诉前调123号", "(2026)浙0681民诉前调123号"),
        ("(2026)浙0681民诉前调123号", "（２０２６）浙０６８１民诉前调１２３号"),
        ("浙信转〔2026〕12号", "浙信转[2026]12号"),
        ("浙信转〔2026〕12号", "浙信转【2026】12号"),
        ("浙信转〔2026〕12号", "浙信转 〔2026〕 12号"),
        ("12345-2026-00001", "１２３４５－２０２６－００００１"),
        ("12345-2026-00001", "12345—2026—00001"),
        ("12345-2026-00001", "\u300012345-2026-00001 "),
    ],
)
async def test_the_same_reference_written_another_way_is_the_same_case(api, first, again):
    case = await api.intake(
        channel="court_delegated", inviting_court_id=str(api.bodies["court"]), external_reference=first
    )
    _names_the_case(
        await _post(
            api,
            channel="court_delegated",
            inviting_court_id=str(api.bodies["court"]),
            external_reference=again,
        ),
        case,
    )


@pytest.mark.parametrize(
    ("reference", "code"),
    [
        ("12345\x072026", "external_reference_characters"),
        ("12345\n2026", "external_reference_characters"),
        ("12345\u200b2026", "external_reference_characters"),
        ("12345\u202e2026", "external_reference_characters"),
        ("12345;DROP", "external_reference_characters"),
        ("工单<script>", "external_reference_characters"),
        ("12345\x002026", "null_character"),
        ("1" * 65, "string_too_long"),
        ("㈱" * 30, "external_reference_too_long"),  # each is （株） once folded: 90 characters
        ("   ", "external_reference_empty"),
        ("\u3000", "external_reference_empty"),
        ("12345\t2026", "external_reference_characters"),
    ],
)
async def test_a_reference_that_is_no_number_is_refused_with_its_reason(api, reference, code):
    response = await _post(api, channel="hotline", external_reference=reference)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["errors"][0]["field"] == "external_reference"
    assert problem["errors"][0]["code"] == code


# ---- 3. two intakes of one referral at once -------------------------------------------------------


@ON_POSTGRESQL
async def test_an_intake_that_loses_the_race_for_a_reference_is_answered_like_any_duplicate(api, monkeypatch):
    """The first intake has looked for the reference and found none; the second then registers it
    and commits. The first's insert meets the database's constraint, and its refusal names the
    case the second registered, exactly as a refusal found by the look would."""
    looked, go_on = pause_after(monkeypatch, DisputeService, "_refuse_duplicate_reference")
    loser = asyncio.create_task(_post(api, channel="hotline", external_reference="12345-2026-00777"))
    await asyncio.wait_for(looked.wait(), 10)
    winner = await _post(api, channel="hotline", external_reference="12345-2026-00777")
    assert winner.status_code == 201, winner.text
    go_on.set()
    _names_the_case(await loser, winner.json())
    assert (await loser).json()["detail"] == (
        await _post(api, channel="hotline", external_reference="12345-2026-00777")
    ).json()["detail"]


@ON_POSTGRESQL
async def test_an_intake_waiting_on_the_winners_insert_is_answered_like_any_duplicate(api, monkeypatch):
    """Both have looked and found nothing; the first inserts while the second still runs, so the
    second's insert waits on the first's uncommitted row, and loses once the first commits."""
    looked, go_on = pause_after(monkeypatch, DisputeService, "_refuse_duplicate_reference")
    first = asyncio.create_task(_post(api, channel="hotline", external_reference="12345-2026-00778"))
    await asyncio.wait_for(looked.wait(), 10)
    # The second holds its insert open until the first has inserted behind it and waits.
    numbered, commit = pause_after(monkeypatch, DisputeService, "_take_counters")
    second = asyncio.create_task(_post(api, channel="hotline", external_reference="12345-2026-00778"))
    await asyncio.wait_for(numbered.wait(), 10)
    go_on.set()
    assert await waits_on_a_lock(api, first)
    commit.set()
    won, lost = await second, await first
    assert won.status_code == 201, won.text
    _names_the_case(lost, won.json())


@ON_POSTGRESQL
async def test_many_intakes_of_one_referral_at_once_register_one_case_and_name_it_to_the_rest(api):
    responses = await asyncio.gather(
        *(_post(api, channel="hotline", external_reference="12345-2026-00999") for _ in range(12))
    )
    created = [r for r in responses if r.status_code == 201]
    assert len(created) == 1, [r.text for r in responses if r.status_code != 409]
    for response in responses:
        if response is not created[0]:
            _names_the_case(response, created[0].json())


# ---- the window's page ----------------------------------------------------------------------------


async def test_the_intake_page_shows_a_registered_work_order_with_a_link_to_its_case(api, web):
    first = await api.intake(channel="hotline", external_reference="12345-2026-00055")
    page = signed_in(web, api)
    response = await page.post(
        "/intake", intake_form(intake_body(channel="hotline", external_reference="１２３４５－2026－00055"))
    )
    assert response.status_code == 409, response.text[:2000]
    assert f'href="/cases/{first["id"]}"' in response.text
    assert first["case_number"] in response.text
    assert "intake-form" in response.text or 'name="external_reference"' in response.text
    # A new number registers as usual from the same page.
    receipt = await page.post(
        "/intake", intake_form(intake_body(channel="hotline", external_reference="12345-2026-00056"))
    )
    assert receipt.status_code == 200, receipt.text[:2000]
    assert case_number_in(receipt.text) != first["case_number"]
