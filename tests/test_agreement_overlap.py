"""An oral agreement in effect and the written version drafted of it, over real HTTP on SQLite and
PostgreSQL: recording the oral agreement on the case ends mediation and with it the written draft
(人民调解法 Art. 28, 30; the center's rule that an agreement for confirmation is written while
mediating, 民诉法解释 Art. 354), and the written version's signatures cannot predate the oral
agreement they replace (Art. 29, 30)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.support import Api, at_beijing
from tests.test_agreements import _problem


async def _versions(api: Api, case: dict[str, Any]) -> list[tuple[int, str]]:
    listed = (await api.client.get(f"/v1/disputes/{case['id']}/agreements")).json()
    return [(a["number"], a["status"]) for a in listed]


async def _oral_in_effect_and_written_draft(
    api: Api,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A mediating case whose oral agreement took effect at 15:00 today (Beijing time), and the
    written version of it, drafted and not yet signed."""
    case = await api.drive("mediating")
    at_beijing(api, api.today, 15)
    oral = await api.sign_all(case, await api.draft_agreement(case, form="oral"))
    written = await api.client.post(
        f"/v1/disputes/{case['id']}/agreements",
        json={**api.agreement_content(case), "form": "written", "supersedes": 1},
        headers=api.acting("body_mediator", case),
    )
    assert written.status_code == 201, written.text
    await api.keep_current(case)  # the draft is on the case's timeline: its version moved on
    assert await _versions(api, case) == [(1, "effective"), (2, "draft")]
    return case, oral, written.json()


# ---- recording the oral agreement while its written version is a draft --------------------------------


async def test_recording_the_oral_agreement_closes_the_written_draft_of_it(api: Api) -> None:
    """人民调解法 Art. 30: the oral agreement took effect when reached; `agree` records it and ends
    mediation, after which nothing is drafted or signed. The written draft can never take effect
    then: it is closed as superseded with the record, not left waiting for signatures forever."""
    case, oral, written = await _oral_in_effect_and_written_draft(api)

    agreed = await api.step(case, "agree", {"agreement_id": oral["id"]})
    assert agreed["status"] == "agreement_signed"
    assert agreed["agreement"]["id"] == oral["id"]
    assert await _versions(api, case) == [(1, "effective"), (2, "superseded")]

    shown = await api.client.get(f"/v1/disputes/{case['id']}/agreements/{written['id']}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["status"] == "superseded"
    assert shown.json()["awaiting_signatures"] == []
    refused = await api.sign(case, shown.json(), signer="body_seal", method="seal")
    assert _problem(refused, 409, "/problems/conflict")["code"] == "agreement_superseded"
    # Printed, it says it binds no one; no newer version replaced it, and it does not claim one did.
    printed = await api.client.get(
        f"/v1/disputes/{case['id']}/agreements/{written['id']}/document", headers=api.auth("clerk")
    )
    assert printed.status_code == 200 and "已被取代, 不具效力" in printed.text
    assert "新版本" not in printed.text


async def test_a_written_version_in_effect_is_recorded_and_the_oral_one_is_not_any_more(api: Api) -> None:
    """Once the written version took effect (its last signature, Art. 29) it replaced the oral one:
    the case records the written one, and the oral one cannot be recorded instead."""
    case, oral, written = await _oral_in_effect_and_written_draft(api)
    written = await api.sign_all(case, written)
    assert await _versions(api, case) == [(1, "superseded"), (2, "effective")]

    refused = await api.act(case, "agree", {"agreement_id": oral["id"]})
    problem = _problem(refused, 422, "/problems/guard-failed")
    assert "agreement_superseded" in {r["code"] for r in problem["reasons"]}
    agreed = await api.step(case, "agree", {"agreement_id": written["id"]})
    assert agreed["agreement"]["id"] == written["id"]
    assert await _versions(api, case) == [(1, "superseded"), (2, "effective")]


# ---- the written version's signatures and the oral agreement's time ----------------------------------


async def test_a_signature_on_the_written_version_cannot_predate_the_oral_agreement(api: Api) -> None:
    """人民调解法 Art. 29, 30: the written version replaces the oral agreement as it takes effect, on
    its last signature; a signature dated before the oral agreement took effect would have the
    written one take effect before the agreement it puts in writing. Refused on `signed_at`."""
    case, oral, written = await _oral_in_effect_and_written_draft(api)
    effective_at = oral["effective_at"]
    earlier = (api.app.state.clock.now() - timedelta(hours=1)).isoformat()
    party = next(w for w in written["awaiting_signatures"] if w["signer"] == "party")

    refused = await api.sign(
        case, written, signer="party", party_id=party["party_id"], method="in_person", signed_at=earlier
    )
    problem = _problem(refused, 422, "/problems/validation-error")
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("signed_at", "before_oral_agreement")]
    assert await _versions(api, case) == [(1, "effective"), (2, "draft")]

    # Signed at the moment the oral agreement took effect, or later, is recorded.
    signed = await api.sign(
        case, written, signer="party", party_id=party["party_id"], method="in_person", signed_at=effective_at
    )
    assert signed.status_code == 200, signed.text
    at_beijing(api, api.today, 16)
    written = await api.sign_all(case, signed.json())
    assert await _versions(api, case) == [(1, "superseded"), (2, "effective")]
    assert datetime.fromisoformat(written["effective_at"]) > datetime.fromisoformat(effective_at)


async def test_an_agreement_put_in_writing_of_nothing_oral_keeps_its_signature_dates(api: Api) -> None:
    """Only a written version of an oral agreement in effect is held to the oral agreement's time: a
    first written agreement may record signatures made earlier that day on paper."""
    case = await api.drive("mediating")
    at_beijing(api, api.today, 15)
    written = await api.draft_agreement(case)
    party = next(w for w in written["awaiting_signatures"] if w["signer"] == "party")
    earlier = (api.app.state.clock.now() - timedelta(hours=1)).isoformat()
    signed = await api.sign(
        case, written, signer="party", party_id=party["party_id"], method="in_person", signed_at=earlier
    )
    assert signed.status_code == 200, signed.text
