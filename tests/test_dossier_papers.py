"""A case handed off again carries the papers of its earlier handoffs in its file, and its dossier
marks which one is addressed to the court or commission reading it: a confirmation applied for again
after a rejection (民事诉讼法 Art. 205-206) lists the first application as history, and a suit after a
commission's refusal (劳动争议调解仲裁法 Art. 29; 民事诉讼法 Art. 127) the referral letter it refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.support import Api
from tests.test_handoffs import _post


async def _manifest(api: Api, dispute: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """The frozen dossier's list, read by the court or commission now addressed, both ways it can."""
    dossier = await api.handoff(dispute, role)
    response = await api.client.get(f"/v1/disputes/{dispute['id']}/dossier", headers=api.auth("clerk"))
    assert response.status_code == 200, response.text
    assert response.json()["manifest"] == dossier["manifest"]
    return list(dossier["manifest"])


def _days_later(api: Api, days: int) -> None:
    """The next handoff is days after the first, as it would be (the tests' clock stands still)."""
    api.app.state.clock.at += timedelta(days=days)


def _papers(manifest: list[dict[str, Any]], kind: str) -> list[tuple[str, str | None]]:
    return [(m["document_id"], m["paper_of"]) for m in manifest if m["kind"] == kind]


async def test_a_confirmation_applied_for_again_marks_the_current_application(api: Api) -> None:
    dispute = await api.drive("confirmation_pending")
    [first] = _papers(await _manifest(api, dispute, "court"), "application")
    assert first[1] == "this_handoff"
    # Every other document of a first handoff carries no mark.
    assert {m["paper_of"] for m in await _manifest(api, dispute, "court") if m["kind"] != "application"} == {
        None
    }

    first_handoff = dispute["handoff"]["id"]
    dispute = await api.target_accepts(dispute)
    dispute = await api.step(dispute, "reject")
    _days_later(api, 3)
    dispute = await api.step(dispute, "remediate")
    dispute = await api.step(dispute, "agree")
    dispute = await api.step(dispute, "request_confirmation")
    assert dispute["status"] == "confirmation_pending"

    papers = _papers(await _manifest(api, dispute, "court"), "application")
    assert len(papers) == 2
    assert papers[0] == (first[0], "earlier_handoff")
    assert papers[1][0] != first[0] and papers[1][1] == "this_handoff"
    # The first handoff's dossier stays as it was frozen, its application the one addressed then.
    response = await api.client.get(f"/v1/handoffs/{first_handoff}", headers=api.auth("clerk"))
    assert response.status_code == 200, response.text
    assert _papers(response.json()["manifest"], "application") == [first]


async def test_a_suit_after_a_refused_referral_marks_its_own_letter(api: Api) -> None:
    dispute = await api.drive("mediation_failed", category="labour")
    dispute = await api.step(
        dispute, "refer_arbitration", {"commission_id": str(api.bodies["labour_commission"])}
    )
    refused = (await api.handoff(dispute))["handoff"]
    [letter] = _papers(list((await api.handoff(dispute))["manifest"]), "filing_pack")
    assert letter[1] == "this_handoff"
    answer = {
        "decision": "not_accepted",
        "reason_code": "time_limit_passed",
        "notice_number": "劳人仲不字7号",
    }
    assert (await _post(api, refused, "acceptance", answer)).status_code == 200
    _days_later(api, 2)

    dispute = await api.step(await api.get(dispute), "refer_litigation")
    assert dispute["status"] == "referred_litigation"
    papers = _papers(await _manifest(api, dispute, "court"), "filing_pack")
    assert papers[0] == (letter[0], "earlier_handoff")
    assert papers[1][0] != letter[0] and papers[1][1] == "this_handoff"
    assert len(papers) == 2
