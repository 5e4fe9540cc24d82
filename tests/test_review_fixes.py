"""Defects found reviewing this round's changes: what the older release left behind, generated
records withdrawn from a case, a tier moved by a correction without a word, and page addresses
opened after a refused form."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import bindparam, text

from mediation.disputes.models import Dispute
from mediation.migrate import downgrade, upgrade
from tests.support import Api, person
from tests.test_corrections import correct
from tests.test_misc_review import _withdraw
from tests.test_web import signed_in

# ---- cases whose confirmation request was withdrawn under the older release -------------------------


async def _name_the_court_again(api: Api, dispute: dict[str, Any], court_id: str) -> None:
    """As the older release left a withdrawn request: the case still addressed to the court."""
    async with api.app.state.db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE disputes SET handoff_target_id = :court WHERE id = :id").bindparams(
                bindparam("court", type_=Dispute.__table__.c.handoff_target_id.type),
                bindparam("id", type_=Dispute.__table__.c.id.type),
            ),
            {"court": uuid.UUID(court_id), "id": uuid.UUID(dispute["id"])},
        )


async def test_a_court_stops_reading_cases_withdrawn_before_this_release(api: Api, settings: Any) -> None:
    withdrawn = await api.drive("confirmation_pending")
    handoff = (await api.handoff(withdrawn))["handoff"]
    court = api.auth("court", uuid.UUID(handoff["target_id"]))
    await _withdraw(api, handoff, api.acting("body_mediator", withdrawn))
    await _name_the_court_again(api, withdrawn, handoff["target_id"])
    pending = await api.drive("confirmation_pending")  # still before the court: stays addressed to it
    assert (await api.client.get(f"/v1/disputes/{withdrawn['id']}", headers=court)).status_code == 200

    await api.app.state.db.engine.dispose()
    await asyncio.to_thread(downgrade, settings.database_url, "0033")
    await asyncio.to_thread(upgrade, settings.database_url)

    assert (await api.client.get(f"/v1/disputes/{withdrawn['id']}", headers=court)).status_code == 404
    assert (await api.get(withdrawn))["handoff_target_id"] is None
    assert (await api.client.get(f"/v1/disputes/{pending['id']}", headers=court)).status_code == 200
    assert (await api.get(pending))["handoff_target_id"] == handoff["target_id"]


# ---- the service's own records are not withdrawn ---------------------------------------------------


async def _documents(api: Api, dispute: dict[str, Any]) -> list[dict[str, Any]]:
    response = await api.client.get(f"/v1/disputes/{dispute['id']}/documents")
    assert response.status_code == 200, response.text
    return list(response.json())


async def test_the_signed_agreement_and_the_receipt_are_not_withdrawn(api: Api, web: Any) -> None:
    dispute = await api.drive("agreement_signed")
    generated = [d for d in await _documents(api, dispute) if d["generated"]]
    assert {d["kind"] for d in generated} >= {"receipt", "agreement"}
    for document in generated:
        refused = await api.client.post(
            f"/v1/disputes/{dispute['id']}/documents/{document['id']}/withdraw",
            json={"reason": "误传"},
            headers={**api.auth("clerk"), **await api.if_match(dispute)},
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "generated_document"
    assert all(d["status"] == "active" for d in await _documents(api, dispute) if d["generated"])

    # The case page offers no withdrawal of them either.
    page = await signed_in(web, api, "clerk").get(f"/cases/{dispute['id']}")
    assert page.status_code == 200
    for document in generated:
        assert f"/documents/{document['id']}/withdraw" not in page.text

    # And the court's dossier holds the agreement the parties signed.
    confirmation = await api.step(await api.get(dispute), "request_confirmation")
    dossier = await api.handoff(confirmation)
    assert {item["kind"] for item in dossier["manifest"]} >= {"receipt", "agreement"}


async def test_evidence_a_clerk_uploaded_is_still_withdrawn(api: Api) -> None:
    dispute = await api.intake()
    uploaded = await api.client.post(
        f"/v1/disputes/{dispute['id']}/documents",
        files={"file": ("证据.txt", "借条复印件".encode(), "text/plain")},
        data={"kind": "evidence"},
    )
    assert uploaded.status_code == 201, uploaded.text
    withdrawn = await api.client.post(
        f"/v1/disputes/{dispute['id']}/documents/{uploaded.json()['id']}/withdraw",
        json={"reason": "误传"},
        headers=await api.if_match(dispute),
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"


# ---- a short document number masked -----------------------------------------------------------------


async def test_a_passport_number_is_masked_to_its_first_and_last_two(api: Api) -> None:
    foreigner = {**person("respondent", "JOHN SMITH", 2), "id_type": "passport", "id_number": "E12345678"}
    dispute = await api.intake(parties=[person("applicant", "张三", 1), foreigner])
    seen = await api.client.get(f"/v1/disputes/{dispute['id']}", headers=api.auth("supervisor"))
    assert seen.status_code == 200, seen.text
    [passport] = [p for p in seen.json()["parties"] if p["id_type"] == "passport"]
    assert passport["id_number"] == "E******78"
    [resident] = [p for p in seen.json()["parties"] if p["id_type"] == "resident_id"]
    assert resident["id_number"].startswith("330") and resident["id_number"].count("*") == 11


# ---- the addresses of the case page's newer forms, opened as pages --------------------------------


async def test_the_newer_forms_addresses_opened_in_the_browser_lead_back_to_the_case(
    api: Api, web: Any
) -> None:
    html = {"Accept": "text/html,application/xhtml+xml"}
    case = await api.intake()
    page = signed_in(web, api)
    for path in (
        f"/cases/{case['id']}/sittings",
        f"/cases/{case['id']}/sittings/{uuid.uuid4()}/record",
        f"/cases/{case['id']}/sittings/{uuid.uuid4()}/cancel",
        f"/cases/{case['id']}/corrections",
        f"/cases/{case['id']}/documents",
    ):
        back = await page.get(path, headers=html)
        assert back.status_code == 303, (path, back.status_code)
        assert back.headers["location"] == f"/cases/{case['id']}", path


# ---- a number read masked is not cleared blind --------------------------------------------------------


async def test_a_supervisor_who_reads_numbers_masked_cannot_clear_them(api: Api) -> None:
    dispute = await api.intake()
    respondent = next(p for p in dispute["parties"] if p["role"] == "respondent")
    for field in ("phone", "id_number"):
        body = {"reason": "号码有误", "parties": [{"party_id": respondent["id"], field: None}]}
        if field == "id_number":
            body["parties"][0]["id_type"] = None
        refused = await correct(api, dispute, body, role="supervisor")
        assert refused.status_code == 403, refused.text
        assert (refused.json()["code"], refused.json()["field"]) == (
            "pii_read_required",
            f"parties[0].{field}",
        )
    assert (await api.get(dispute))["version"] == dispute["version"]
    # Staff who read it in full clear it.
    cleared = await correct(
        api, dispute, {"reason": "号码有误", "parties": [{"party_id": respondent["id"], "phone": None}]}
    )
    assert cleared.status_code == 200, cleared.text
    assert next(p for p in cleared.json()["parties"] if p["id"] == respondent["id"])["phone"] is None


# ---- how a sitting ended, on the timeline -------------------------------------------------------------


async def test_the_timeline_says_how_a_recorded_sitting_ended(api: Api, web: Any) -> None:
    from mediation.web.labels import ENUM_LABELS

    case = await api.drive("mediating")
    scheduled = await api.client.post(
        f"/v1/disputes/{case['id']}/sessions",
        json={"scheduled_at": "2026-06-01T09:00:00+08:00", "place": "调解室"},
        headers=api.acting("body_mediator", case),
    )
    assert scheduled.status_code == 201, scheduled.text
    respondent = next(p for p in case["parties"] if p["role"] == "respondent")
    recorded = await api.client.post(
        f"/v1/disputes/{case['id']}/sessions/{scheduled.json()['id']}/record",
        json={
            "held_at": "2026-06-01T09:30:00+08:00",
            "attendees": [{"name": respondent["name"], "capacity": "被申请人", "party_id": respondent["id"]}],
            "minutes": "被申请人表示不同意调解。",
            "outcome": "party_refused",
            "party_id": respondent["id"],
        },
        headers={**api.acting("body_mediator", case), "If-Match": scheduled.headers["ETag"]},
    )
    assert recorded.status_code == 200, recorded.text
    page = await signed_in(web, api, "clerk").get(f"/cases/{case['id']}")
    assert page.status_code == 200
    refused = ENUM_LABELS["outcome"]["party_refused"]
    assert (
        f'<div class="reason sitting-outcome">调解结果: {refused} ({respondent["name"]})</div>' in page.text
    )
