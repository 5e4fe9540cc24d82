"""Intake, the case number and query code, lists with filters and cursors, the party's lookup."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from mediation.core.http import encode_cursor
from tests.support import intake_body, person, resident_id


async def test_intake_answers_201_with_location_etag_case_number_and_query_code(api):
    response = await api.client.post("/v1/disputes", json=intake_body(), headers=api.headers())
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/v1/disputes/{body['id']}"
    assert response.headers["etag"] == '"1"'
    assert body["case_number"] == "330681-2026-000001"
    assert body["status_label"] == "已登记"
    assert body["region_code"] == "330681105201"
    assert body["applied_on"] == "2026-06-01"  # 民法典 Art. 195: the application date is kept
    assert body["parties"][0]["consent"] == "unknown"
    # The query code is shown once and never again.
    assert "query_code" not in (await api.get(body))


async def test_group_flag_follows_the_labour_threshold(api):
    # 劳动争议调解仲裁法 Art. 7: ten or more workers; the respondent employer is not one of them.
    labour = await api.intake(category="labour", people_involved=11)
    assert labour["is_group"] is True
    small = await api.intake(category="labour", people_involved=10)
    assert small["is_group"] is False


async def test_tier_follows_severity(api):
    assert (await api.intake(severity="ordinary"))["tier"] == "village"
    assert (await api.intake(severity="major"))["tier"] == "town"
    assert (await api.intake(severity="serious"))["tier"] == "county"


async def test_id_number_is_normalised(api):
    p = person("applicant", "张三", 1)
    p["id_number"] = p["id_number"][:6] + " " + p["id_number"][6:]
    created = await api.intake(parties=[p, person("respondent", "李四", 2)])
    assert created["parties"][0]["id_number"] == person("applicant", "张三", 1)["id_number"]


def _applicant_with(id_number: str) -> dict:
    applicant = person("applicant", "王五", 7)
    applicant["id_number"] = id_number
    return applicant


# Address codes are assigned when the number is issued, not at birth, and counties come and go:
# 临平区 (330113) was created in 2021, 雄安新区 (133100) in 2017, and 富阳 (330183, a county-level
# city until 2014) issued numbers to people born decades before its code existed.
@pytest.mark.parametrize(
    "id_number",
    [
        resident_id(14, born=date(2022, 3, 1), region="330113"),
        resident_id(10, born=date(2019, 1, 1), region="133100"),
        resident_id(10, born=date(1990, 1, 1), region="330183"),
    ],
)
async def test_a_resident_id_of_a_county_newer_than_its_holder_is_registered_and_found(api, id_number):
    created = await api.intake(parties=[_applicant_with(id_number), person("respondent", "李四", 2)])
    assert created["parties"][0]["id_number"] == id_number
    found = await api.client.post(
        "/v1/disputes/search-by-party", json={"id_number": id_number}, headers=api.headers()
    )
    assert found.status_code == 200, found.text
    assert [d["id"] for d in found.json()["items"]] == [created["id"]]


@pytest.mark.parametrize(
    "id_number",
    [
        resident_id(11, born=date(2090, 1, 1)),  # born in the future
        resident_id(11, born=date(1850, 1, 1)),  # before anyone holding an 18-digit number
        resident_id(11, born=date(1990, 1, 1), region="990101"),  # no province 99
        resident_id(11, born=date(1990, 1, 1))[:-1] + "Y",  # no check character Y
        "330681900517001",  # first-generation 15-digit number
    ],
)
async def test_a_resident_id_with_an_impossible_birth_date_or_province_is_refused(api, id_number):
    response = await api.client.post(
        "/v1/disputes",
        json=intake_body(parties=[_applicant_with(id_number), person("respondent", "李四", 2)]),
        headers=api.headers(),
    )
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert (error["field"], error["code"]) == ("parties[0].id_number", "invalid_id_number")


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("0575-87654321", "057587654321"),
        ("(0575)87654321", "057587654321"),
        ("0575 8765 4321", "057587654321"),
        ("+86 575 8765 4321", "057587654321"),
        ("0575-87654321-123", "057587654321-123"),
        ("010-12345678", "01012345678"),
        ("+86 138 0000 0001", "13800000001"),
        ("86-13800000001", "13800000001"),
        ("008613800000001", "13800000001"),
        ("138-0000-0001", "13800000001"),
        ("１３８０００００００１", "13800000001"),  # full-width digits from an input method
    ],
)
async def test_a_phone_number_is_stored_in_one_form_however_it_was_written(api, written, stored):
    applicant = person("applicant", "王五", 7)
    applicant["phone"] = written
    created = await api.intake(parties=[applicant, person("respondent", "李四", 2)])
    assert created["parties"][0]["phone"] == stored


async def test_a_landline_written_with_or_without_its_hyphen_is_the_same_party(api):
    first = person("applicant", "王五", 7)
    del first["id_type"], first["id_number"]
    first["phone"] = "0575-87654321"
    earlier = await api.intake(parties=[first, person("respondent", "李四", 2)])
    again = {**first, "phone": "057587654321"}
    later = await api.intake(parties=[again, person("respondent", "赵六", 3)])
    assert [(r["id"], r["matched_on"]) for r in later["related_cases"]] == [(earlier["id"], ["phone"])]
    found = await api.client.post(
        "/v1/disputes/search-by-party", json={"phone": "(0575) 8765-4321"}, headers=api.headers()
    )
    assert found.status_code == 200, found.text
    assert {d["id"] for d in found.json()["items"]} == {earlier["id"], later["id"]}


async def test_platform_retry_with_the_same_work_order_never_makes_a_second_case(api):
    first = await api.intake(channel="hotline", external_reference="12345-20260601-0042")
    response = await api.client.post(
        "/v1/disputes",
        json=intake_body(channel="hotline", external_reference="12345-20260601-0042"),
        headers=api.headers(),
    )
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == "/problems/duplicate-external-reference"
    assert problem["case_number"] == first["case_number"]
    assert response.headers["location"] == f"/v1/disputes/{first['id']}"
    # The same number from another channel is another platform's number.
    assert (await api.intake(channel="grid", external_reference="12345-20260601-0042"))["id"] != first["id"]


async def test_list_filters(api):
    a = await api.intake(category="labour", channel="hotline", region_code="330681105201")
    b = await api.intake(
        "other_center",
        category="debt",
        channel="window",
        region_code="330604001000",
        description="借款三万元到期未还的纠纷",
    )
    c = await api.drive("assigned", category="debt")

    async def ids(center: str = "center", **params):
        response = await api.client.get("/v1/disputes", params=params, headers=api.auth("clerk", center))
        assert response.status_code == 200, response.text
        return {d["id"] for d in response.json()["items"]}

    assert await ids(category="labour") == {a["id"]}
    assert await ids(channel="hotline") == {a["id"]}
    assert await ids(region="330681") == {a["id"], c["id"]}
    # A wider filter never reaches past the caller's own region.
    assert await ids(region="330600") == {a["id"], c["id"]}
    assert await ids(region="330604") == set()
    assert await ids("other_center", region="330600") == {b["id"]}
    assert await ids(status="assigned") == {c["id"]}
    assert await ids(status=["assigned", "registered"]) == {a["id"], c["id"]}
    assert await ids(body_id=str(api.bodies["village"])) == {c["id"]}
    assert await ids("other_center", q="借款三万") == {b["id"]}
    assert await ids(q="借款三万") == set()
    assert await ids(q="张三") == {a["id"], c["id"]}
    assert await ids(q="100%") == set()


async def test_list_created_range(api, clock):
    early = await api.intake()
    clock.at += timedelta(days=2)
    late = await api.intake()
    since = (clock.at - timedelta(days=1)).isoformat()
    response = await api.client.get("/v1/disputes", params={"created_from": since})
    assert [d["id"] for d in response.json()["items"]] == [late["id"]]
    response = await api.client.get("/v1/disputes", params={"created_to": since})
    assert [d["id"] for d in response.json()["items"]] == [early["id"]]


async def test_cursor_pagination_visits_every_case_once_newest_first(api, clock):
    created = []
    for i in range(7):
        clock.at += timedelta(minutes=1 if i != 3 else 0)  # two cases share a timestamp
        created.append((await api.intake())["id"])
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get("/v1/disputes", params=params)).json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and set(seen) == set(created)
    assert seen[0] == created[-1]


@pytest.mark.parametrize(
    "at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-01-01T00:00:00"]
)
async def test_a_cursor_with_a_time_the_service_never_wrote_is_an_invalid_cursor(api, at):
    # The first two convert to no UTC time PostgreSQL takes; the third has no zone.
    cursor = encode_cursor({"t": at, "i": str(uuid.uuid4())})
    response = await api.client.get("/v1/disputes", params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["code"] == "invalid_cursor"


async def test_party_status_lookup_shows_status_and_no_personal_data(api):
    created = await api.intake()
    response = await api.client.post(
        "/v1/status-lookup",
        json={"case_number": created["case_number"], "query_code": created["query_code"].lower()},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "registered" and body["status_label"] == "已登记" and body["next_step"]
    text = response.text
    for party in created["parties"]:
        assert party["name"] not in text and party["id_number"] not in text and party["phone"] not in text


async def test_party_status_lookup_with_a_wrong_code_is_404(api):
    created = await api.intake()
    response = await api.client.post(
        "/v1/status-lookup", json={"case_number": created["case_number"], "query_code": "WRONGCOD"}
    )
    assert response.status_code == 404
    response = await api.client.post(
        "/v1/status-lookup", json={"case_number": "330681-2026-999999", "query_code": "WRONGCOD"}
    )
    assert response.status_code == 404


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_bodies_are_listed_by_kind_and_region(api):
    response = await api.client.get("/v1/bodies", params={"kind": "court", "region": "330681"})
    assert [b["name"] for b in response.json()] == ["诸暨市人民法院"]
    body = await api.client.get(f"/v1/bodies/{api.bodies['village']}")
    assert body.json()["tier"] == "village"


@pytest.mark.parametrize("sent", ["1e5", 100000, 1e5, "100000", "100000.0"])
async def test_an_amount_is_answered_in_yuan_and_fen_however_it_was_written(api, sent):
    """The registration's answer (and its replay) gives the amount as a read of the case does."""
    headers = {**api.headers(), "Idempotency-Key": f"amount-{sent!r}"}
    created = await api.client.post("/v1/disputes", json=intake_body(amount_in_dispute=sent), headers=headers)
    assert created.status_code == 201, created.text
    replayed = await api.client.post(
        "/v1/disputes", json=intake_body(amount_in_dispute=sent), headers=headers
    )
    read = await api.client.get(f"/v1/disputes/{created.json()['id']}", headers=api.headers())
    assert created.json()["amount_in_dispute"] == replayed.json()["amount_in_dispute"] == "100000.00"
    assert read.json()["amount_in_dispute"] == "100000.00"
