"""The events of a confirmation request or a referral, and of the target's answer to it, name the
handoff they concern (its id, kind and the court or commission it is addressed to): a court or
commission acts on a handoff by its id, and once the case has left it (a request withdrawn or not
accepted) it reads the handoff still, but no longer the case's list of handoffs."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mediation.events.relay import Relay
from mediation.events.service import TYPE_PREFIX
from tests.receiver import Receiver
from tests.support import Api
from tests.test_event_feed import read_all
from tests.test_outcome_routes import _answer, _labour_referral, _past
from tests.test_webhooks import pump, subscribe


async def _events_of(
    api: Api, dispute: dict[str, Any], role: str, org: str | uuid.UUID
) -> list[dict[str, Any]]:
    """The case's events as the court's or commission's own feed has them: (type, data)."""
    return [
        {"type": e["type"].removeprefix(TYPE_PREFIX), **e["data"]}
        for e in await read_all(api, api.auth(role, org))
        if e["subject"] == dispute["case_number"]
    ]


def _named(event: dict[str, Any]) -> tuple[Any, ...]:
    return (event.get("handoff_id"), event.get("handoff_kind"), event.get("target_id"))


def _of(handoff: dict[str, Any]) -> tuple[str, str, str]:
    return (handoff["id"], handoff["kind"], handoff["target_id"])


async def _on_its_list(api: Api, handoff_id: str, role: str, org: str | uuid.UUID) -> None:
    """The handoff the event names is on the court's or commission's own list (its dossier is
    not, once the case has left it: HandoffService.dossier_parts)."""
    response = await api.client.get("/v1/handoffs", headers=api.auth(role, org))
    assert response.status_code == 200, response.text
    assert handoff_id in {h["id"] for h in response.json()["items"]}


@pytest.mark.parametrize(
    ("answer", "event"),
    [
        ("confirm", "confirmed"),
        ("reject", "confirmation_rejected"),
        ("not_accepted", "confirmation_not_accepted"),
        ("withdraw_confirmation", "confirmation_withdrawn"),
    ],
)
async def test_the_court_reads_in_its_feed_which_confirmation_request_each_event_concerns(
    api: Api, answer: str, event: str
) -> None:
    dispute = await api.step(await api.drive("agreement_signed"), "request_confirmation")
    handoff = (await api.handoff(dispute))["handoff"]
    if answer in ("confirm", "reject"):
        dispute = await api.step(await api.target_accepts(dispute), answer)
    elif answer == "not_accepted":
        # Missing materials count as withdrawn (民诉法解释 Art. 357): the case leaves the court.
        body = {"decision": "not_accepted", "reason_code": "materials_missing"}
        response = await _answer(api, handoff, "acceptance", body)
        assert response.status_code == 200, response.text
    else:
        dispute = await api.step(dispute, answer)

    events = await _events_of(api, dispute, "court", "court")
    [requested] = [e for e in events if e["type"] == "confirmation_requested"]
    [answered] = [e for e in events if e["type"] == event]
    assert _named(requested) == _named(answered) == _of(handoff)
    assert handoff["kind"] == "judicial_confirmation"
    assert handoff["target_id"] == str(api.bodies["court"])
    # The court finds what the event names, also once the case has left it.
    await _on_its_list(api, answered["handoff_id"], "court", "court")


async def test_a_request_that_left_the_court_is_still_named_to_it(api: Api) -> None:
    """Withdrawn, the case is no longer the court's: its handoffs are not listed to it, and the
    event, which no longer names a court holding the case, names the request."""
    dispute = await api.step(await api.drive("agreement_signed"), "request_confirmation")
    handoff = (await api.handoff(dispute))["handoff"]
    dispute = await api.step(dispute, "withdraw_confirmation")
    listed = await api.client.get(f"/v1/disputes/{dispute['id']}/handoffs", headers=api.auth("court"))
    assert listed.status_code == 404, listed.text

    [withdrawn] = [
        e for e in await _events_of(api, dispute, "court", "court") if e["type"] == "confirmation_withdrawn"
    ]
    assert "handoff_target_id" not in withdrawn
    assert _named(withdrawn) == _of(handoff)


@pytest.mark.parametrize(
    ("referral", "role", "org", "event", "kind", "decision"),
    [
        (
            "refer_arbitration",
            "arbitration",
            "commercial_commission",
            "referred_arbitration",
            "commercial_arbitration",
            "award",
        ),
        ("refer_litigation", "court", "court", "referred_litigation", "litigation", "judgment"),
    ],
)
async def test_a_referral_and_its_outcome_name_the_handoff(
    api: Api, referral: str, role: str, org: str, event: str, kind: str, decision: str
) -> None:
    dispute = await api.step(await api.drive("mediation_failed"), referral)
    handoff = (await api.handoff(dispute))["handoff"]
    assert (handoff["kind"], handoff["target_id"]) == (kind, str(api.bodies[org]))
    dispute = await api.target_accepts(dispute)
    outcome = {
        "outcome": decision,  # each decides as its own law lets it: a commission an award
        "reference_number": "(2026)浙0681民初9号",
        "decided_on": api.today.isoformat(),
    }
    handoff = (await api.handoff(dispute))["handoff"]
    response = await _answer(api, handoff, "outcome", outcome)
    assert response.status_code == 200, response.text

    events = await _events_of(api, dispute, role, org)
    [referred] = [e for e in events if e["type"] == event]
    [concluded] = [e for e in events if e["type"] == "referral_concluded"]
    assert _named(referred) == _named(concluded) == _of(handoff)
    assert "lapsed_handoff_id" not in referred


async def test_a_labour_commissions_non_acceptance_names_its_referral(api: Api) -> None:
    dispute, handoff = await _labour_referral(api)
    response = await _answer(api, handoff, "acceptance", {"decision": "not_accepted", "reason_code": "other"})
    assert response.status_code == 200, response.text
    commission = uuid.UUID(handoff["target_id"])
    [not_accepted] = [
        e
        for e in await _events_of(api, dispute, "arbitration", commission)
        if e["type"] == "referral_not_accepted"
    ]
    assert _named(not_accepted) == _of(handoff)
    await _on_its_list(api, not_accepted["handoff_id"], "arbitration", commission)


async def test_a_suit_after_a_labour_referral_lapsed_names_both_handoffs(api: Api) -> None:
    """劳动争议调解仲裁法 Art. 29: the commission let its five days pass; the applicant sues."""
    dispute, referral = await _labour_referral(api)
    _past(api, referral["accept_due_on"])
    sued = await api.step(await api.get(dispute), "refer_litigation")
    suit = (await api.handoff(sued))["handoff"]
    [referred] = [
        e for e in await _events_of(api, sued, "court", "court") if e["type"] == "referred_litigation"
    ]
    assert _named(referred) == _of(suit)
    assert referred["lapsed_handoff_id"] == referral["id"] != suit["id"]


async def test_a_courts_webhook_is_told_which_handoff_each_delivery_concerns(
    api: Api, relay: Relay, receiver: Receiver
) -> None:
    await subscribe(api, receiver.url, role="court", org="court", receiver=receiver)
    dispute = await api.step(await api.drive("agreement_signed"), "request_confirmation")
    handoff = (await api.handoff(dispute))["handoff"]
    dispute = await api.step(await api.target_accepts(dispute), "confirm")
    await pump(relay, lambda: len(receiver.ok()) == 3)

    delivered = {d.event["type"].removeprefix(TYPE_PREFIX): d.event["data"] for d in receiver.deliveries}
    assert set(delivered) == {"confirmation_requested", "handoff_accepted", "confirmed"}
    for name in ("confirmation_requested", "confirmed"):
        assert _named(delivered[name]) == _of(handoff), name
    assert delivered["handoff_accepted"]["handoff_id"] == handoff["id"]
