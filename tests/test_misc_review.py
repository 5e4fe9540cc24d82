"""Foreign residents' documents at intake; a webhook whose key has expired reads as stopped; a
text file's character set judged by the whole of it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from stdnum.cn import ric

from mediation.events.relay import Relay
from mediation.identity.models import ApiKey
from tests.receiver import Receiver
from tests.support import Api, intake_body, person
from tests.test_documents import uploaded

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


# ---- a webhook whose key has expired ---------------------------------------------------------------


async def _expire(api: Api, key_id: str) -> None:
    """The hour passes: the key expires, nothing revokes it, and the relay has not looked yet."""
    async with api.app.state.db.writer() as session, session.begin():
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(key_id))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


async def test_a_webhook_whose_key_has_expired_reads_as_stopped_before_the_relay_stops_it(
    api: Api, relay: Relay, receiver: Receiver
) -> None:
    admin = await api.signed_in("body_admin", "village")
    expiring_key = await api.expiring_key()
    key_id = expiring_key["id"]
    made = await api.client.post(
        "/v1/webhooks", json={"url": receiver.url}, headers={"X-API-Key": expiring_key["secret"]}
    )
    assert made.status_code == 201, made.text
    by_key = made.json()
    by_staff = await api.client.post("/v1/webhooks", json={"url": receiver.url}, headers=admin)
    assert by_staff.status_code == 201, by_staff.text
    assert by_key["active"] is True  # the key holds for an hour yet

    await _expire(api, key_id)
    # Nothing goes out under the key any more (the relay stops it when it next sends or looks
    # after its upkeep): an integrator reading the subscription meanwhile is told so, and why.
    read = await api.client.get(f"/v1/webhooks/{by_key['id']}", headers=admin)
    assert read.status_code == 200, read.text
    assert read.json()["active"] is False
    assert read.json()["disabled_reason"].startswith("subscriber_key_lapsed: ")
    assert "expired" in read.json()["disabled_reason"]
    listed = await api.client.get("/v1/webhooks", headers=admin)
    assert listed.status_code == 200, listed.text
    states = {s["id"]: (s["active"], s["disabled_reason"]) for s in listed.json()}
    assert states == {
        by_key["id"]: (False, read.json()["disabled_reason"]),
        by_staff.json()["id"]: (True, None),
    }
    rotated = await api.client.post(f"/v1/webhooks/{by_key['id']}/rotate-secret", headers=admin)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["active"] is False

    # When the relay stops it, the reading does not change.
    assert await relay.stop_lapsed() == [uuid.UUID(by_key["id"])]
    stopped = await api.client.get(f"/v1/webhooks/{by_key['id']}", headers=admin)
    assert stopped.json()["active"] is False
    assert stopped.json()["disabled_reason"].startswith("subscriber_key_lapsed: ")
    # Taken on by the signed-in administrator, it reads as active again.
    enabled = await api.client.post(f"/v1/webhooks/{by_key['id']}/enable", headers=admin)
    assert enabled.status_code == 200, enabled.text
    assert (enabled.json()["active"], enabled.json()["disabled_reason"]) == (True, None)
    assert (await api.client.get(f"/v1/webhooks/{by_key['id']}", headers=admin)).json()["active"] is True


# ---- a text file's character set ------------------------------------------------------------------

# A log exported from a system, or a table saved as CSV: a long header of ASCII (more than the first
# 8 KiB) before the first Chinese character.
HEADER = "".join(f"line {n:05d}, case 330681-2026-{n:06d}, status ok\r\n" for n in range(300))
MINUTES = "调解笔录\r\n申请人: 双方同意分期还款, 每月 3000 元。\r\n"


@pytest.mark.parametrize("charset", ["gb18030", "utf-8"])
async def test_a_text_file_whose_first_8_kib_are_ascii_is_served_in_the_character_set_of_the_whole(
    api: Api, charset: str
) -> None:
    encoded = (HEADER + MINUTES).encode("gbk" if charset == "gb18030" else charset)
    assert len(HEADER) > 8192 and HEADER.isascii()
    dispute = await api.intake()
    document = await uploaded(api, dispute, encoded, "导出记录.csv", content_type="text/csv")
    assert document["media_type"] == "text/plain"
    download = await api.client.get(document["href"])
    assert download.status_code == 200 and download.content == encoded
    assert download.headers["content-type"] == f"text/plain; charset={charset}"
    assert download.content.decode(charset).endswith(MINUTES)
    # A part of it is labelled as the whole is.
    part = await api.client.get(document["href"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206, part.text
    assert part.headers["content-type"] == f"text/plain; charset={charset}"


# ---- a withdrawn confirmation request ---------------------------------------------------------------


async def _court_events(api: Api, dispute: dict[str, Any], court: dict[str, str]) -> list[str]:
    types: list[str] = []
    cursor = None
    while True:
        params = {"after": cursor} if cursor else {}
        page = await api.client.get("/v1/events", params=params, headers=court)
        assert page.status_code == 200, page.text
        if not page.json()["items"]:
            return types
        types += [e["type"] for e in page.json()["items"] if e["data"]["dispute_id"] == dispute["id"]]
        cursor = page.json()["next_cursor"]


async def _withdraw(api: Api, handoff: dict[str, Any], headers: dict[str, str]) -> None:
    response = await api.client.post(
        f"/v1/handoffs/{handoff['id']}/withdrawal",
        json={"reason": "双方当事人撤回司法确认申请"},
        headers={**headers, "If-Match": f'"{handoff["version"]}"'},
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "withdrawn"


async def test_a_court_no_longer_reads_a_case_whose_confirmation_request_was_withdrawn(api: Api) -> None:
    """The request withdrawn, the case is back with the body that follows the agreement's performance
    (人民调解法 Art. 31): the court keeps the request and the withdrawal on its list, but no longer
    reads the case, its parties, or what happens to it next (个人信息保护法 Art. 6, 51)."""
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    court = api.auth("court", uuid.UUID(handoff["target_id"]))
    assert (await api.client.get(f"/v1/disputes/{dispute['id']}", headers=court)).status_code == 200

    await _withdraw(api, handoff, api.acting("body_mediator", dispute))
    case = await api.get(dispute)
    assert (case["status"], case["handoff_target_id"]) == ("agreement_signed", None)
    assert case["handoff"]["status"] == "withdrawn"  # the center and the body see what became of it

    assert (await api.client.get(f"/v1/disputes/{dispute['id']}", headers=court)).status_code == 404
    listed = await api.client.get("/v1/disputes", headers=court)
    assert dispute["id"] not in [d["id"] for d in listed.json()["items"]]
    dossier = await api.client.get(f"/v1/handoffs/{handoff['id']}", headers=court)
    assert dossier.status_code == 200, dossier.text
    # Its own request's record it still reads, how it ended too; the case not.
    assert (dossier.json()["withheld"], dossier.json()["case"]) == ("case_left_target", None)
    assert dossier.json()["handoff"]["status"] == "withdrawn"
    mine = await api.client.get("/v1/handoffs", headers=court)
    assert {h["id"]: h["status"] for h in mine.json()["items"]} == {handoff["id"]: "withdrawn"}

    # It learns of the withdrawal by its event; of the performance the body records next, nothing.
    obligation = (await api.client.get(f"/v1/disputes/{dispute['id']}/agreements")).json()[0]["obligations"][
        0
    ]
    done = await api.client.post(
        f"/v1/disputes/{dispute['id']}/obligations/{obligation['id']}/performance",
        json={"performed_on": api.today.isoformat()},
        headers={
            **api.acting("body_mediator", dispute),
            "If-Match": f'"{(await api.get(dispute))["version"]}"',
        },
    )
    assert done.status_code == 200, done.text
    seen = await _court_events(api, dispute, court)
    assert seen[-1].endswith("confirmation_withdrawn"), seen
    assert len(await _court_events(api, dispute, api.auth("clerk"))) > len(seen)


async def test_the_court_that_treats_a_request_as_withdrawn_no_longer_reads_the_case(api: Api) -> None:
    """Materials not supplied: the court treats the request as withdrawn (民诉法解释 Art. 357). If the
    parties apply again, to it or another court, the new request is addressed to that court."""
    dispute = await api.drive("confirmation_pending")
    handoff = (await api.handoff(dispute))["handoff"]
    court = api.auth("court", uuid.UUID(handoff["target_id"]))
    await _withdraw(api, handoff, court)
    assert (await api.client.get(f"/v1/disputes/{dispute['id']}", headers=court)).status_code == 404

    again = await api.step(await api.get(dispute), "request_confirmation")
    assert again["handoff_target_id"] == handoff["target_id"]
    assert (await api.client.get(f"/v1/disputes/{dispute['id']}", headers=court)).status_code == 200
