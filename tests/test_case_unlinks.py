"""A link made by mistake is removed (解除关联): by the center, with a reason, on both cases'
timelines and in an event on each, both versions moved on; the pair may be linked again. A pair
not linked is 404 `link_not_found`, which is also what a removal sent again without its
Idempotency-Key finds; with it, the first answer is replayed."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from mediation.events.models import OutboxEvent
from tests.support import Api


async def _events(api: Api, dispute_id: str, name: str) -> list[OutboxEvent]:
    async with api.app.state.db.reader() as session:
        rows = await session.scalars(
            select(OutboxEvent)
            .where(
                OutboxEvent.dispute_id == uuid.UUID(dispute_id),
                OutboxEvent.type == f"cn.mediation.dispute.{name}",
            )
            .order_by(OutboxEvent.created_at, OutboxEvent.id)
        )
        return list(rows.all())


async def _linked_pair(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two cases the center linked; each as it stands after the link."""
    first = await api.intake()
    hotline = await api.intake(channel="hotline", external_reference="12345-20260601-0303")
    made = await api.client.post(
        f"/v1/disputes/{hotline['id']}/links",
        json={"dispute_id": first["id"], "kind": "same_dispute", "note": "热线重复反映"},
    )
    assert made.status_code == 201, made.text
    return await api.get(first), await api.get(hotline)


def _removal(this: dict[str, Any], other: dict[str, Any]) -> str:
    return f"/v1/disputes/{this['id']}/links/{other['id']}/removal"


async def _links(api: Api, case: dict[str, Any]) -> list[str]:
    listed = await api.client.get(f"/v1/disputes/{case['id']}/links")
    assert listed.status_code == 200, listed.text
    return [item["dispute_id"] for item in listed.json()]


async def test_unlinking_records_it_on_both_cases_and_the_pair_may_be_linked_again(api: Api) -> None:
    first, hotline = await _linked_pair(api)

    removed = await api.client.post(
        _removal(hotline, first),
        json={"reason": "经核实并非同一纠纷, 误关联"},
        headers=api.headers(**{"If-Match": f'"{hotline["version"]}"'}),
    )
    assert removed.status_code == 200, removed.text
    answer = removed.json()
    assert answer["dispute"] == {
        "id": hotline["id"],
        "case_number": hotline["case_number"],
        "version": hotline["version"] + 1,
    }
    assert answer["other"] == {
        "id": first["id"],
        "case_number": first["case_number"],
        "version": first["version"] + 1,
    }
    assert answer["kind"] == "same_dispute"
    assert removed.headers["etag"] == f'"{hotline["version"] + 1}"'

    for case, other in ((first, hotline), (hotline, first)):
        assert await _links(api, case) == []
        assert (await api.get(case))["version"] == case["version"] + 1
        entry = (await api.timeline(case))[-1]
        assert (entry["action"], entry["reason"]) == ("unlink", "经核实并非同一纠纷, 误关联")
        assert entry["from_status"] == entry["to_status"] == case["status"]
        assert entry["payload"] == {
            "linked_dispute_id": other["id"],
            "case_number": other["case_number"],
            "kind": "same_dispute",
        }
        # The link's own entry stays: the timeline is append-only.
        assert [e["action"] for e in await api.timeline(case)].count("link") == 1
        [event] = await _events(api, case["id"], "case_unlinked")
        assert event.data == {
            "dispute_id": case["id"],
            "case_number": case["case_number"],
            "action": "unlink",
            "version": case["version"] + 1,
            "linked_dispute_id": other["id"],
            "kind": "same_dispute",
        }
    # The pair is linked again, from the other side, and unlinked again from it.
    again = await api.client.post(
        f"/v1/disputes/{first['id']}/links", json={"dispute_id": hotline["id"], "kind": "related"}
    )
    assert again.status_code == 201, again.text
    assert await _links(api, hotline) == [first["id"]]
    removed = await api.client.post(_removal(first, hotline), json={"reason": "仍非关联纠纷"})
    assert removed.status_code == 200, removed.text
    assert removed.json()["kind"] == "related"
    for case in (first, hotline):
        assert (await api.get(case))["version"] == case["version"] + 3
        assert len(await _events(api, case["id"], "case_unlinked")) == 2

    # The audit trail records the removal as it records the link: the route, the case, the path.
    audit = await api.client.get(
        "/v1/audit-records",
        params={"action": "unlink_disputes", "object_id": first["id"]},
        headers=api.auth("auditor"),
    )
    assert audit.status_code == 200, audit.text
    [record] = audit.json()["items"]
    assert (record["outcome"], record["object_type"]) == ("success", "dispute")
    assert record["details"]["path"] == _removal(first, hotline)


async def test_a_pair_not_linked_is_404_in_the_callers_language(api: Api) -> None:
    first = await api.intake()
    second = await api.intake(channel="hotline", external_reference="12345-20260601-0404")
    url = _removal(first, second)

    chinese = await api.client.post(url, json={"reason": "误关联"})
    assert chinese.status_code == 404, chinese.text
    assert chinese.headers["content-type"].startswith("application/problem+json")
    assert (chinese.json()["code"], chinese.json()["detail"]) == (
        "link_not_found",
        "两案未关联 (或关联已解除)",
    )
    english = await api.client.post(url, json={"reason": "误关联"}, headers={"Accept-Language": "en"})
    assert english.status_code == 404
    assert english.json()["code"] == "link_not_found"
    assert english.json()["detail"] == "The cases are not linked (or were unlinked already)"

    itself = await api.client.post(_removal(first, first), json={"reason": "误关联"})
    assert itself.status_code == 422, itself.text
    [error] = itself.json()["errors"]
    assert (error["field"], error["location"], error["code"]) == ("other_id", "path", "self_link")

    unknown = await api.client.post(_removal(first, {"id": str(uuid.uuid4())}), json={"reason": "误关联"})
    assert unknown.status_code == 404
    assert "code" not in unknown.json()

    missing_reason = await api.client.post(url, json={})
    assert missing_reason.status_code == 422
    blank = await api.client.post(url, json={"reason": "  "})
    assert blank.status_code == 422
    for case in (first, second):
        assert (await api.get(case))["version"] == case["version"]
        assert await _events(api, case["id"], "case_unlinked") == []


async def test_only_the_center_unlinks(api: Api) -> None:
    first, hotline = await _linked_pair(api)
    for role in ("body_mediator", "body_admin", "court", "auditor"):
        refused = await api.client.post(
            _removal(first, hotline), json={"reason": "误关联"}, headers=api.auth(role)
        )
        assert refused.status_code == 403, (role, refused.text)
    supervisor = await api.client.post(
        _removal(first, hotline), json={"reason": "误关联"}, headers=api.auth("supervisor")
    )
    assert supervisor.status_code == 200, supervisor.text


async def test_another_centers_pair_is_not_found(api: Api) -> None:
    first, hotline = await _linked_pair(api)
    theirs = await api.client.post(
        _removal(first, hotline), json={"reason": "误关联"}, headers=api.auth("clerk", "other_center")
    )
    assert theirs.status_code == 404, theirs.text
    their_case = await api.intake("other_center", region_code="330604001000")
    # Our case unlinked from a case we cannot see, and theirs from ours: neither exists for the caller.
    for url, headers in (
        (_removal(first, their_case), api.auth("clerk")),
        (_removal(their_case, first), api.auth("clerk")),
    ):
        response = await api.client.post(url, json={"reason": "误关联"}, headers=headers)
        assert response.status_code == 404, response.text
        assert "code" not in response.json()
    assert await _links(api, first) == [hotline["id"]]
    assert (await api.get(first))["version"] == first["version"]


async def test_a_stale_if_match_is_412_and_removes_nothing(api: Api) -> None:
    first, hotline = await _linked_pair(api)
    third = await api.intake(channel="grid", description="同一纠纷经网格员上报, 邻里因院墙滴水发生争执")
    moved = await api.client.post(f"/v1/disputes/{hotline['id']}/links", json={"dispute_id": third["id"]})
    assert moved.status_code == 201, moved.text  # someone else's change meanwhile

    stale = await api.client.post(
        _removal(hotline, first),
        json={"reason": "误关联"},
        headers=api.headers(**{"If-Match": f'"{hotline["version"]}"'}),
    )
    assert stale.status_code == 412, stale.text
    assert stale.json()["current_etag"] == f'"{hotline["version"] + 1}"'
    assert sorted(await _links(api, hotline)) == sorted([first["id"], third["id"]])
    assert await _events(api, hotline["id"], "case_unlinked") == []

    # Only the path's case's version is the caller's to name: the other one's moved too.
    fresh = await api.client.post(
        _removal(hotline, first),
        json={"reason": "误关联"},
        headers=api.headers(**{"If-Match": f'"{hotline["version"] + 1}"'}),
    )
    assert fresh.status_code == 200, fresh.text
    assert await _links(api, hotline) == [third["id"]]


async def test_a_removal_sent_again_is_replayed_with_its_key_and_finds_no_link_without(api: Api) -> None:
    first, hotline = await _linked_pair(api)
    url = _removal(first, hotline)
    sent = {"If-Match": f'"{first["version"]}"', "Idempotency-Key": "court-system-unlink-1"}

    done = await api.client.post(url, json={"reason": "误关联"}, headers=api.headers(**sent))
    assert done.status_code == 200, done.text
    replayed = await api.client.post(url, json={"reason": "误关联"}, headers=api.headers(**sent))
    assert replayed.status_code == 200, replayed.text
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == done.json() and replayed.headers["etag"] == done.headers["etag"]
    other_reason = await api.client.post(url, json={"reason": "另一理由"}, headers=api.headers(**sent))
    assert other_reason.status_code == 422
    assert other_reason.json()["type"].endswith("/idempotency-key-mismatch")

    # Without the key, the retry learns the link is gone: 404, not the 412 its old If-Match would earn.
    retried = await api.client.post(
        url, json={"reason": "误关联"}, headers=api.headers(**{"If-Match": sent["If-Match"]})
    )
    assert retried.status_code == 404, retried.text
    assert retried.json()["code"] == "link_not_found"
    for case in (first, hotline):
        assert (await api.get(case))["version"] == case["version"] + 1
        assert len(await _events(api, case["id"], "case_unlinked")) == 1
        assert [e["action"] for e in await api.timeline(case)].count("unlink") == 1


async def test_unlinking_needs_a_json_reason_not_a_query(api: Api) -> None:
    first, hotline = await _linked_pair(api)
    by_query = await api.client.post(_removal(first, hotline), params={"reason": "误关联"}, json={})
    assert by_query.status_code == 422
    assert await _links(api, first) == [hotline["id"]]
