"""Foreign residents' documents at intake."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from stdnum.cn import ric

from tests.support import Api, intake_body, person

# ---- foreign permanent resident ID cards and passports -------------------------------------------


def _applicant_holding(id_type: str, id_number: str) -> list[dict[str, Any]]:
    applicant = {**person("applicant", "Anna Schmidt", 7), "id_type": id_type, "id_number": id_number}
    return [applicant, person("respondent", "李四", 2)]


def permanent_residence_card(
    province: str = "33", nationality: str = "276", born: date = date(1985, 3, 9), serial: int = 1
) -> str:
    """The card of 2023: 9, the province that took the application, the nationality, the birth date,
    a serial and the GB 11643 check character."""
    first17 = f"9{province}{nationality}{born:%Y%m%d}{serial:03d}"
    return first17 + ric.calc_check_digit(first17 + "0")


def _checked(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "0")


def _wrong_check(number: str) -> str:
    return number[:-1] + ("1" if number[-1] == "0" else "0")


async def _refused(api: Api, language: str = "zh", **overrides: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/v1/disputes", json=intake_body(**overrides), headers=api.headers(**{"Accept-Language": language})
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "/problems/validation-error"
    return problem


@pytest.mark.parametrize(
    ("id_type", "written", "stored"),
    [
        ("foreign_permanent_residence", permanent_residence_card(), permanent_residence_card()),
        ("foreign_permanent_residence", permanent_residence_card("11", "840", serial=7), None),
        ("foreign_permanent_residence", "DEU330785030912", "DEU330785030912"),  # the cards before 2023
        ("foreign_permanent_residence", "usa 1100 8003 0101", "USA110080030101"),
        ("passport", "C12345678", "C12345678"),
        ("passport", "e 1234 5678", "E12345678"),
        ("passport", "12345", "12345"),
    ],
)
async def test_a_well_formed_foreign_residents_document_is_registered(
    api: Api, id_type: str, written: str, stored: str | None
) -> None:
    created = await api.intake(parties=_applicant_holding(id_type, written))
    party = created["parties"][0]
    assert (party["id_type"], party["id_number"]) == (id_type, stored or written)


@pytest.mark.parametrize(
    ("id_type", "id_number", "expected"),
    [
        # A resident ID's number is not a permanent resident card's: no province code starts with 9.
        ("foreign_permanent_residence", "330681199005170011", "以 9 开头"),
        ("foreign_permanent_residence", permanent_residence_card()[:-1], "18 位"),
        ("foreign_permanent_residence", permanent_residence_card("99"), "省级代码"),
        ("foreign_permanent_residence", permanent_residence_card("81"), "省级代码"),  # not a mainland office
        ("foreign_permanent_residence", _wrong_check(permanent_residence_card()), "校验位"),
        ("foreign_permanent_residence", permanent_residence_card()[:-1] + "Y", "校验位"),
        ("foreign_permanent_residence", _checked("93327619850230001"), "出生日期"),  # 30 February
        ("foreign_permanent_residence", permanent_residence_card(born=date(2090, 1, 1)), "出生日期"),
        ("foreign_permanent_residence", "DE1330785030912", "3 位国籍字母代码"),
        ("foreign_permanent_residence", "DEU33078503091", "15 位"),
        ("foreign_permanent_residence", "DEU3307850309123", "15 位"),
        ("foreign_permanent_residence", "P12345678", "15 位"),
        ("passport", "E123", "5 至 20 位"),
        ("passport", "E123456789012345678901", "5 至 20 位"),
        ("passport", "E(1234567)", "字母或数字"),
    ],
)
async def test_a_malformed_foreign_residents_document_is_refused_saying_what_is_expected(
    api: Api, id_type: str, id_number: str, expected: str
) -> None:
    before = (await api.client.get("/v1/disputes", headers=api.auth())).json()["items"]
    problem = await _refused(api, parties=_applicant_holding(id_type, id_number))
    [error] = problem["errors"]
    assert (error["field"], error["code"]) == ("parties[0].id_number", "invalid_id_number")
    assert expected in error["message"], error["message"]
    assert (await api.client.get("/v1/disputes", headers=api.auth())).json()["items"] == before


async def test_the_refusal_of_a_permanent_resident_card_is_in_the_requests_language(api: Api) -> None:
    problem = await _refused(
        api, language="en", parties=_applicant_holding("foreign_permanent_residence", "P12345678")
    )
    [error] = problem["errors"]
    assert error["field"] == "parties[0].id_number"
    assert "Foreign permanent resident ID card" in error["message"]


async def test_a_permanent_resident_card_given_as_a_resident_id_is_refused_naming_its_document_type(
    api: Api,
) -> None:
    """The card of 2023 shares the resident ID's structure and check character; its 9 tells them apart."""
    problem = await _refused(api, parties=_applicant_holding("resident_id", permanent_residence_card()))
    [error] = problem["errors"]
    assert (error["field"], error["code"]) == ("parties[0].id_number", "invalid_id_number")
    assert "外国人永久居留身份证" in error["message"]


async def test_a_search_by_a_malformed_permanent_resident_card_is_refused(api: Api) -> None:
    response = await api.client.post(
        "/v1/disputes/search-by-party",
        json={
            "id_type": "foreign_permanent_residence",
            "id_number": _wrong_check(permanent_residence_card()),
        },
        headers=api.headers(),
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["code"] == "invalid_id_number"
