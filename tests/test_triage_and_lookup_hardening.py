"""Triage and the parties' status lookup against what the other tests leave out, over real HTTP
through the ASGI app, on SQLite and PostgreSQL: a mediator who must step aside counts for nothing
in the ranking, an assignment names the rules it was recommended under even when they are replaced
meanwhile, and the lookup page keeps what a party types out of the audit trail, reads the
full-width characters a phone's input method types, and answers an odd token with a page."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mediation.audit.models import AuditRecord
from mediation.triage.service import TriageService
from tests.support import CSRF, Api, intake_body, pause_after, person, resident_id
from tests.test_registry import _with_neighbour_at_town
from tests.test_triage import VILLAGE, _accepted, _assignments, _register_body, _triage
from tests.test_web import Page, case_number_in, intake_form, signed_in

# ---- helpers ------------------------------------------------------------------------------------


async def _specialist(api: Api, body_id: str, name: str) -> str:
    """A mediator of the body experienced in neighbour disputes."""
    response = await api.client.post(
        f"/v1/bodies/{body_id}/mediators",
        json={"name": name, "specialties": ["neighbour"]},
        headers=api.auth("admin"),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _declare(api: Api, body_id: str, mediator_id: str, **conflict: Any) -> None:
    """The body's own administrator declares the mediator's conflict (an API key of its own)."""
    key = ("body_admin", uuid.UUID(body_id))
    if key not in api.keys:
        issued = await api.client.post(
            "/v1/api-keys",
            json={"organisation_id": body_id, "role": "body_admin", "name": "城东镇调委会管理"},
            headers=api.auth("admin"),
        )
        assert issued.status_code == 201, issued.text
        api.keys[key] = str(issued.json()["secret"])
    response = await api.client.post(
        f"/v1/bodies/{body_id}/mediators/{mediator_id}/conflicts",
        json=conflict,
        headers=api.auth("body_admin", uuid.UUID(body_id)),
    )
    assert response.status_code == 201, response.text


def _reasons(triage: dict[str, Any], body_id: str) -> dict[str, dict[str, Any]]:
    recommendation = next(r for r in triage["recommendations"] if r["body"]["id"] == body_id)
    return {r["code"]: r for r in recommendation["reasons"]}


async def _receipt(api: Api, web: httpx.AsyncClient) -> tuple[str, str]:
    """A case registered at the window, and the query code its receipt shows once."""
    receipt = await signed_in(web, api).post("/intake", intake_form(intake_body()))
    assert receipt.status_code == 200, receipt.text[:2000]
    number = case_number_in(receipt.text)
    code = receipt.text.split('id="query-code"', 1)[1].split(">", 1)[1].split("<", 1)[0]
    web.cookies.delete("mediation_session")
    return number, code


async def _lookup_audits(app: Any) -> list[AuditRecord]:
    async with app.state.db.reader() as session:
        rows = await session.scalars(select(AuditRecord).where(AuditRecord.action == "lookup"))
        return list(rows.all())


# ---- triage: a mediator who must step aside -----------------------------------------------------


async def test_a_mediator_who_must_step_aside_is_no_specialist_for_the_case(api: Api) -> None:
    """特邀调解规定 Art. 16: a mediator related to a party steps aside. Such a mediator adds no
    points and is not named in the reasons the clerk reads; a conflict with someone else changes
    nothing."""
    related = await _register_body(api, "城东镇丁村人民调解委员会", categories=["neighbour"])
    free = await _register_body(api, "城东镇戊村人民调解委员会", categories=["neighbour"])
    parties = [person("applicant", "张三", 1), person("respondent", "李四", 2)]
    await _declare(
        api,
        related,
        await _specialist(api, related, "何调解"),
        relation="申请人的表兄",
        id_number=parties[0]["id_number"],
    )
    await _declare(
        api,
        free,
        await _specialist(api, free, "孙调解"),
        relation="另一案当事人的邻居",
        id_number=resident_id(77),
    )
    dispute = await _accepted(api, region_code=VILLAGE, parties=parties)

    triage = await _triage(api, dispute)
    first, second = triage["recommendations"]
    assert (first["body"]["id"], second["body"]["id"]) == (free, related)
    assert _reasons(triage, free)["mediator_specialty"]["data"] == {"mediators": 1}
    reasons = _reasons(triage, related)
    assert "mediator_specialty" not in reasons, reasons
    assert second["score"] == sum(r["points"] for r in reasons.values()) < first["score"]


async def test_a_body_none_of_whose_mediators_may_take_the_case_comes_after_every_body_that_can(
    api: Api, web: httpx.AsyncClient
) -> None:
    """人民调解法 Art. 19: the committee names a mediator for the case. A body whose registered
    mediators are all inactive or bound to step aside cannot; whatever its points, it is ranked
    after the bodies that can, and says why. A body that registers no mediators is not judged by
    them. When one of its mediators is back, so is its place."""
    parties = [person("applicant", "张三", 1), person("respondent", "李四", 2)]
    unable = await _register_body(api, "城东镇丁村人民调解委员会", categories=["neighbour"])
    unregistered = await _register_body(api, "城东镇戊村人民调解委员会")
    staffed = await _register_body(api, "城东镇己村人民调解委员会")
    cousin = await _specialist(api, unable, "何调解")
    await _declare(api, unable, cousin, relation="申请人的表兄", id_number=parties[0]["id_number"])
    retired = await api.client.post(
        f"/v1/bodies/{unable}/mediators", json={"name": "钱调解"}, headers=api.auth("admin")
    )
    assert retired.status_code == 201, retired.text

    mediator = retired.json()

    async def set_active(active: bool) -> None:
        nonlocal mediator
        patched = await api.client.patch(
            f"/v1/bodies/{unable}/mediators/{mediator['id']}",
            json={"active": active},
            headers={**api.auth("admin"), "If-Match": f'"{mediator["version"]}"'},
        )
        assert patched.status_code == 200, patched.text
        mediator = patched.json()

    await set_active(False)
    await api.client.post(
        f"/v1/bodies/{staffed}/mediators",
        json={"name": "孙调解", "specialties": ["debt"]},
        headers=api.auth("admin"),
    )
    dispute = await _accepted(api, region_code=VILLAGE, parties=parties)

    triage = await _triage(api, dispute)
    ranked = [(r["body"]["id"], r["mediator_available"]) for r in triage["recommendations"]]
    assert ranked[-1] == (unable, False)
    assert set(ranked[:-1]) == {(unregistered, None), (staffed, True)}
    last = triage["recommendations"][-1]
    assert last["score"] > max(r["score"] for r in triage["recommendations"][:-1]), "its points alone lead"
    reason = _reasons(triage, unable)["no_mediator_available"]
    assert (reason["points"], reason["data"]) == (0, {"registered": 2, "available": 0})
    assert "无人可承办本案" in reason["text"]
    english = await _triage(api, dispute, **{"Accept-Language": "en"})
    assert "may take this case" in _reasons(english, unable)["no_mediator_available"]["text"]
    page = await signed_in(web, api).get(f"/cases/{dispute['id']}")
    assert page.status_code == 200, page.text[:2000]
    listed = page.text.split('id="triage"', 1)[1].split("</section>", 1)[0]
    assert listed.count("无可承办的调解员") == 1 and "无人可承办本案" in listed

    await set_active(True)
    again = await _triage(api, dispute)
    first = again["recommendations"][0]
    assert (first["body"]["id"], first["mediator_available"]) == (unable, True)
    assert "no_mediator_available" not in _reasons(again, unable)


# ---- triage: rules replaced while a case is being assigned --------------------------------------


@pytest.mark.postgres_only
async def test_an_assignment_names_the_rules_it_was_recommended_under(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New rules committed between the recommendation and the assignment's record: the record
    names the version the recommendation was computed under, not the one in force when written.
    PostgreSQL only: on SQLite the assignment holds the one writer's lock, so no rules change
    commits meanwhile."""
    village = str(api.bodies["village"])
    dispute = await _accepted(api)
    reached, go_on = pause_after(monkeypatch, TriageService, "evaluate")
    assigning = asyncio.create_task(api.act(dispute, "assign", {"body_id": village}))
    await asyncio.wait_for(reached.wait(), 10)
    current = (await api.client.get("/v1/triage/rules")).json()["rules"]
    replaced = await api.client.put(
        "/v1/triage/rules",
        json={"rules": _with_neighbour_at_town(current)},
        headers={**api.auth("admin"), "If-Match": '"0"'},
    )
    assert replaced.status_code == 200, replaced.text
    go_on.set()
    assigned = await assigning
    assert assigned.status_code == 200, assigned.text

    (record,) = await _assignments(api, dispute)
    # Ranked first under the default rules (version 0); the new ones take no village body at all.
    assert (record["rank"], record["recommendation"]["rules_version"]) == (1, 0)


# ---- the status lookup page ---------------------------------------------------------------------


async def test_what_a_party_types_into_the_lookup_is_audited_masked(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    """A party who types an ID or mobile number into the case number field: the refused lookup is
    audited (an audit record is kept for years and never altered), with the number masked as the
    logs mask it (个人信息保护法 Art. 6, 51; audit_details never hold personal data)."""
    id_number, phone = resident_id(5), "13800005555"
    page = Page(web)
    for typed in (id_number, phone, f"手机{phone}"):
        response = await page.post("/lookup", {"case_number": typed, "query_code": "ABCD2345"})
        assert response.status_code in (404, 422), response.text[:2000]
    audits = await _lookup_audits(app)
    assert len(audits) == 3
    stored = " ".join(str(a.details) for a in audits)
    assert id_number not in stored and phone not in stored
    assert "330***********" in stored and "138****5555" in stored


async def test_a_case_number_and_code_typed_in_full_width_find_the_case(
    api: Api, web: httpx.AsyncClient
) -> None:
    """A phone's Chinese input method types full-width digits, letters and dashes (３３０６８１－…,
    ＡＢＣＤ): the party with the right receipt is not told the code is wrong."""
    number, code = await _receipt(api, web)
    wide = str.maketrans({c: chr(ord(c) + 0xFEE0) for c in "0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZ"})
    found = await Page(web).post(
        "/lookup", {"case_number": number.translate(wide), "query_code": f"\u3000{code.translate(wide)}"}
    )
    assert found.status_code == 200, found.text[:2000]
    assert "中心正在审查是否受理" in found.text and number in found.text
    wrong = await Page(web).post(
        "/lookup", {"case_number": number.translate(wide), "query_code": "ＡＢＣＤ２３４５"}
    )
    assert wrong.status_code == 404 and "不正确" in wrong.text


async def test_the_api_lookup_reads_full_width_and_audits_what_was_typed_masked(api: Api, app: Any) -> None:
    """The same for `POST /v1/status-lookup`, which a party's mini-program or the center's kiosk calls."""
    dispute = await api.intake()
    number, code = dispute["case_number"], dispute["query_code"]
    wide = str.maketrans({c: chr(ord(c) + 0xFEE0) for c in "0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZ"})
    anonymous = {"Authorization": ""}
    found = await api.client.post(
        "/v1/status-lookup",
        json={"case_number": number.translate(wide), "query_code": f"\u3000{code.translate(wide)}"},
        headers=anonymous,
    )
    assert found.status_code == 200, found.text
    assert found.json()["case_number"] == number
    phone = "13800005555"
    typed = await api.client.post(
        "/v1/status-lookup", json={"case_number": phone, "query_code": "ABCD2345"}, headers=anonymous
    )
    assert typed.status_code == 404, typed.text
    async with app.state.db.reader() as session:
        records = list(
            (await session.scalars(select(AuditRecord).where(AuditRecord.action == "status_lookup"))).all()
        )
    stored = " ".join(str(r.details) for r in records)
    assert len(records) == 2 and phone not in stored and "138****5555" in stored


async def test_a_code_within_the_stated_length_is_never_refused_as_too_long(api: Api) -> None:
    """Reading full-width forms as printed keeps one character for one. NFKC did not: a ½ or a ㎏
    became several characters, and a 16-character code the contract allows was refused as too long
    (found by the contract fuzzing). Such a code is simply wrong: 404, as any wrong code."""
    dispute = await api.intake()
    for code in ("½" * 16, "㎏" * 16, "ﬁ" * 16):
        answer = await api.client.post(
            "/v1/status-lookup",
            json={"case_number": dispute["case_number"], "query_code": code},
            headers={"Authorization": ""},
        )
        assert answer.status_code == 404, answer.text


@pytest.mark.parametrize("path", ["/lookup", "/login", "/logout", "/apply"])
async def test_a_csrf_token_of_non_ascii_characters_is_refused_with_a_page(
    api: Api, web: httpx.AsyncClient, path: str
) -> None:
    """A token no page of ours sends (non-ASCII, or bytes that are not UTF-8) is a token that does
    not match: 403 with the page that says so, never a server error."""
    fields = {"/lookup": "case_number=330681-2026-000001&query_code=ABCD2345", "/login": "username=clerk"}
    for token in (b"%FF%FE", "页面".encode(), b"%C3%A9" + CSRF.encode()):
        body = fields.get(path, "").encode() + b"&csrf=" + token
        response = await web.post(
            path, content=body, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert response.status_code == 403, response.text[:2000]
        assert "页面已过期" in response.text
