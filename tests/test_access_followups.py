"""Access follow-ups: reading a case's timeline unmasked is a disclosure on record; a body does
not read the reasons another body gave for handing a case back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.support import Api
from tests.test_audit import records
from tests.test_web import Page
from tests.test_web_forms import at_the_body

# A reason that quotes a party's mobile number, as a mediator might type it.
RETURN_REASON = "本村调委会成员与当事人有亲属关系, 当事人电话13800001234"


def _later(api: Api, minutes: int = 30) -> None:
    api.app.state.clock.at += timedelta(minutes=minutes)


async def _returned_by_village_then_at_town(api: Api) -> dict[str, Any]:
    """A case the village committee returned with a reason, then assigned to the town's."""
    dispute = await api.step(await api.intake(), "accept")
    dispute = await api.step(dispute, "assign", {"body_id": str(api.bodies["village"])})
    _later(api)
    dispute = await api.step(dispute, "return", {"reason": RETURN_REASON})
    _later(api)
    return await api.step(dispute, "assign", {"body_id": str(api.bodies["town"])})


async def _timeline(api: Api, dispute: dict[str, Any], headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await api.client.get(f"/v1/disputes/{dispute['id']}/timeline", headers=headers)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    return entries


# ---- reading the timeline unmasked is a disclosure ------------------------------------------------


async def test_an_unmasked_timeline_read_is_recorded_as_a_disclosure(api: Api) -> None:
    dispute = await _returned_by_village_then_at_town(api)
    clerk = api.headers("clerk", **{"X-Request-ID": "req-timeline-unmasked"})
    entries = await _timeline(api, dispute, clerk)
    (returned,) = [e for e in entries if e["action"] == "return"]
    assert returned["reason"] == RETURN_REASON  # the clerk holds pii:read
    reads = [r for r in await records(api.app) if r.request_id == "req-timeline-unmasked"]
    assert [(r.action, r.outcome, r.status_code) for r in reads] == [("pii.read", "success", 200)]
    (read,) = reads
    assert (read.object_type, read.object_id, read.actor_role) == ("dispute", dispute["id"], "clerk")
    assert read.details == {
        "via": "get_timeline",
        "disputes": [dispute["id"]],
        "fields": ["id_number", "phone"],
    }


async def test_a_masked_or_number_free_timeline_read_records_no_disclosure(api: Api) -> None:
    dispute = await _returned_by_village_then_at_town(api)
    # A supervisor lacks pii:read: the number is masked, and nothing was disclosed.
    supervisor = api.headers("supervisor", **{"X-Request-ID": "req-timeline-masked"})
    (returned,) = [e for e in await _timeline(api, dispute, supervisor) if e["action"] == "return"]
    assert "13800001234" not in returned["reason"]
    plain = await api.step(await api.intake(), "accept")
    clerk = api.headers("clerk", **{"X-Request-ID": "req-timeline-plain"})
    assert [e["action"] for e in await _timeline(api, plain, clerk)] == ["register", "accept"]
    requests = {r.request_id for r in await records(api.app)}
    assert not {"req-timeline-masked", "req-timeline-plain"} & requests


# ---- another body's reasons stay with it -------------------------------------------------------------


async def test_a_body_reads_another_bodys_return_on_the_timeline_without_its_reason(api: Api) -> None:
    dispute = await _returned_by_village_then_at_town(api)
    town = api.headers("body_mediator", "town", **{"X-Request-ID": "req-town-timeline"})
    entries = await _timeline(api, dispute, town)
    # The entry stays (the case came back to the center), its reason does not.
    (returned,) = [e for e in entries if e["action"] == "return"]
    assert (returned["from_status"], returned["to_status"]) == ("assigned", "accepted")
    assert returned["reason"] is None and returned["payload"]["reason"] is None
    assert returned["reason_withheld"] is True
    assert not any(e["reason_withheld"] for e in entries if e is not returned)
    # What is withheld was not disclosed either.
    assert [r for r in await records(api.app) if r.request_id == "req-town-timeline"] == []
    # As /assignments has it: the other body's part is not the town's business.
    history = await api.client.get(f"/v1/disputes/{dispute['id']}/assignments", headers=town)
    assert [a["body_id"] for a in history.json()] == [str(api.bodies["town"])]

    # The center reads it as written (the body that wrote it, once the case is back with it: below).
    (own,) = [e for e in await _timeline(api, dispute, api.auth("clerk")) if e["action"] == "return"]
    assert (own["reason"], own["reason_withheld"]) == (RETURN_REASON, False)


async def test_a_body_reads_its_own_return_reasons_but_not_the_next_bodys(api: Api) -> None:
    """Withheld is another body's text only: sent back to the village, the village reads its own
    reason for returning the case, and not the town's."""
    dispute = await _returned_by_village_then_at_town(api)
    _later(api)
    dispute = await api.step(dispute, "return", {"reason": "本镇调委会无法联系被申请人"})
    _later(api)
    dispute = await api.step(
        dispute,
        "assign",
        {"body_id": str(api.bodies["village"]), "override_reason": "亲属已回避, 由其他调解员调解"},
    )
    village = api.auth("body_mediator", "village")
    returns = [e for e in await _timeline(api, dispute, village) if e["action"] == "return"]
    assert [(e["reason"], e["reason_withheld"]) for e in returns] == [
        (RETURN_REASON, False),
        (None, True),
    ]


async def test_the_case_page_withholds_another_bodys_return_reason(web: Any, api: Api) -> None:
    dispute = await _returned_by_village_then_at_town(api)
    page: Page = await at_the_body(web, api, dispute)
    html = (await page.get(f"/cases/{dispute['id']}")).text
    assert "本村调委会成员与当事人有亲属关系" not in html
    assert "其他调解组织" in html  # the page says a reason was withheld, not that none was given
    clerk_view = await api.client.get(f"/v1/disputes/{dispute['id']}/timeline")
    assert any(e["reason"] == RETURN_REASON for e in clerk_view.json())
