"""Access follow-ups: reading a case's timeline unmasked is a disclosure on record."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.support import Api
from tests.test_audit import records

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
