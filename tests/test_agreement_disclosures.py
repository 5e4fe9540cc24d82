"""What a mediator writes into a case's agreement and a sitting's minutes may quote a party's ID or
telephone number. The API shows it as written to a role holding `pii:read`, and that answer is then
a read of the case's personal data, recorded as `pii.read` as a read of the case itself is
(个人信息保护法 Art. 55); an answer quoting no number discloses nothing and records nothing; a role
without `pii:read` reads the numbers masked and records nothing. Over HTTP, on SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.support import Api
from tests.test_web_show_numbers import disclosures

PHONE = "13912345678"
PHONE_MASKED = "139****5678"


def agreement_paths(case: dict[str, Any], agreement: dict[str, Any]) -> list[str]:
    base = f"/v1/disputes/{case['id']}/agreements"
    return [base, f"{base}/{agreement['id']}", f"{base}/{agreement['id']}/document"]


async def test_an_agreement_quoting_a_number_is_a_recorded_read(api: Api, app: Any) -> None:
    case = await api.drive("mediating")
    agreement = await api.draft_agreement(case, terms=[f"被申请人付款后电话{PHONE}告知申请人。"])
    for path in agreement_paths(case, agreement):
        before = len(await disclosures(app, case["id"]))
        read = await api.client.get(path)
        assert read.status_code == 200, read.text
        assert PHONE in read.text, path
        [record] = (await disclosures(app, case["id"]))[before:]
        assert (record.actor_role, record.outcome, record.object_id) == ("clerk", "success", case["id"])
        assert record.details["disputes"] == [case["id"]]

    before = len(await disclosures(app, case["id"]))
    for path in agreement_paths(case, agreement):
        masked = await api.client.get(path, headers=api.auth("supervisor"))
        assert masked.status_code == 200, masked.text
        assert PHONE not in masked.text and PHONE_MASKED in masked.text, path
    assert len(await disclosures(app, case["id"])) == before


async def test_an_agreement_quoting_no_number_records_nothing(api: Api, app: Any) -> None:
    case = await api.drive("mediating")
    agreement = await api.draft_agreement(case)
    before = len(await disclosures(app, case["id"]))
    for path in agreement_paths(case, agreement):
        read = await api.client.get(path)
        assert read.status_code == 200, read.text
    assert len(await disclosures(app, case["id"])) == before


async def recorded_sitting(api: Api, case: dict[str, Any], minutes: str) -> dict[str, Any]:
    scheduled = await api.client.post(
        f"/v1/disputes/{case['id']}/sessions",
        json={"scheduled_at": "2026-06-01T09:00:00+08:00", "place": "枫源村调委会调解室"},
        headers=api.acting("body_mediator", case),
    )
    assert scheduled.status_code == 201, scheduled.text
    sitting = scheduled.json()
    recorded = await api.client.post(
        f"/v1/disputes/{case['id']}/sessions/{sitting['id']}/record",
        json={
            "held_at": "2026-06-01T09:30:00+08:00",
            "attendees": [
                {"party_id": p["id"], "name": p["name"], "capacity": "当事人"} for p in case["parties"]
            ],
            "minutes": minutes,
            "outcome": "continued",
        },
        headers={**api.acting("body_mediator", case), "If-Match": f'"{sitting["version"]}"'},
    )
    assert recorded.status_code == 200, recorded.text
    return dict(recorded.json())


async def test_minutes_quoting_a_number_are_a_recorded_read_and_others_are_not(api: Api, app: Any) -> None:
    quoting = await api.drive("mediating")
    sitting = await recorded_sitting(api, quoting, f"申请人留下联系电话{PHONE}, 双方陈述意见。")
    plain = await api.drive("mediating")
    other = await recorded_sitting(api, plain, "调解员向双方释明法律规定, 双方陈述意见。")

    for path in (
        f"/v1/disputes/{quoting['id']}/sessions",
        f"/v1/disputes/{quoting['id']}/sessions/{sitting['id']}",
    ):
        before = len(await disclosures(app, quoting["id"]))
        read = await api.client.get(path)
        assert read.status_code == 200 and PHONE in read.text, read.text
        [record] = (await disclosures(app, quoting["id"]))[before:]
        assert (record.actor_role, record.object_id) == ("clerk", quoting["id"])
        masked = await api.client.get(path, headers=api.auth("supervisor"))
        assert PHONE not in masked.text and PHONE_MASKED in masked.text
        assert len(await disclosures(app, quoting["id"])) == before + 1

    before = len(await disclosures(app, plain["id"]))
    for path in (
        f"/v1/disputes/{plain['id']}/sessions",
        f"/v1/disputes/{plain['id']}/sessions/{other['id']}",
    ):
        assert (await api.client.get(path)).status_code == 200
    assert len(await disclosures(app, plain["id"])) == before
