"""A court asks for more materials by a day it sets and the mediation side supplies them.

民诉法解释 Art. 354: an application lacking its materials is completed within a period (限期补交);
Art. 356: after acceptance the court may have the parties supplement what is insufficient or doubtful
(限期补充); Art. 357: not supplied without good reason, the court may treat it as withdrawn. The
documents supplied are frozen into the dossier as the first ones were."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx

from tests.support import Api
from tests.test_documents import pdf, uploaded
from tests.test_event_feed import read_all
from tests.test_handoffs import _events, _on, _post, _problem, _tick

REQUESTED = "cn.mediation.dispute.handoff_materials_requested"
SUPPLIED = "cn.mediation.dispute.handoff_materials_supplied"
LATE = "cn.mediation.dispute.handoff_materials_overdue"
ITEMS = ["申请人张三的身份证复印件", "被申请人李四的身份证复印件"]


def _asking(api: Api, days: int = 7, **extra: Any) -> dict[str, Any]:
    return {
        "items": ITEMS,
        "codes": ["identity"],
        "due_on": (api.today + timedelta(days=days)).isoformat(),
        "note": "请于期限内补交",
        **extra,
    }


async def _pending(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    dispute = await api.drive("confirmation_pending")
    return dispute, (await api.handoff(dispute))["handoff"]


async def _supply(
    api: Api, handoff: dict[str, Any], document_ids: list[str], dispute: dict[str, Any], **extra: Any
) -> httpx.Response:
    return await _post(
        api,
        handoff,
        "materials-supplied",
        {"document_ids": document_ids, "note": "已补交身份证复印件", **extra},
        as_=api.acting("body_mediator", dispute),
    )


async def _counts(api: Api, dispute: dict[str, Any]) -> tuple[int, int]:
    return await api.timeline_count(dispute["id"]), await api.outbox_count(dispute["id"])


async def test_the_court_asks_and_the_body_supplies_into_the_dossier(api: Api) -> None:
    dispute, handoff = await _pending(api)
    asked = await _post(api, handoff, "materials-request", _asking(api))
    assert asked.status_code == 200, asked.text
    after = asked.json()
    assert (after["status"], after["version"]) == ("pending", handoff["version"] + 1)
    assert asked.headers["etag"] == f'"{after["version"]}"'
    [request] = after["materials_requests"]
    assert (request["status"], request["article"], request["items"], request["codes"]) == (
        "open",
        "民诉法解释 第三百五十四条",
        ITEMS,
        ["identity"],
    )
    assert (request["due_on"], request["overdue"], request["number"]) == (
        (api.today + timedelta(days=7)).isoformat(),
        False,
        1,
    )
    [entry] = [e for e in await api.timeline(dispute) if e["action"] == "request_materials"]
    assert (entry["reason"], entry["payload"]["items"], entry["payload"]["request_id"]) == (
        "请于期限内补交",
        ITEMS,
        request["id"],
    )
    # The mediation side learns of it: the body's feed carries the event (no free text in it).
    body = api.acting("body_mediator", dispute)
    [event] = [e["data"] for e in await read_all(api, body, types=REQUESTED)]
    assert (event["handoff_id"], event["request_id"], event["codes"]) == (
        handoff["id"],
        request["id"],
        ["identity"],
    )
    assert "items" not in event and "请于期限内补交" not in str(event)

    # Handed in after the handoff, the copy is a late addition until it is supplied.
    copy = await uploaded(
        api, dispute, pdf(2048, "id"), "身份证复印件.pdf", kind="identity_document", headers=body
    )
    before = await api.handoff(dispute)
    assert before["late_documents"] == [copy["id"]]
    assert {m["code"]: m["present"] for m in before["materials"]}["identity"] is False

    supplied = await _supply(api, after, [copy["id"]], dispute)
    assert supplied.status_code == 200, supplied.text
    [answered] = supplied.json()["materials_requests"]
    assert (
        answered["status"],
        answered["supplied_on"],
        answered["document_ids"],
        answered["supplied_late"],
    ) == (
        "supplied",
        api.today.isoformat(),
        [copy["id"]],
        False,
    )
    # Frozen into the court's dossier as the first documents were, by hash, marked as the answer.
    dossier = await api.handoff(dispute)
    entry = next(m for m in dossier["manifest"] if m["document_id"] == copy["id"])
    assert (entry["sha256"], entry["kind"], entry["supplied_for"]) == (
        copy["sha256"],
        "identity_document",
        request["id"],
    )
    assert [m["kind"] for m in dossier["manifest"]][:3] == ["receipt", "agreement", "application"]
    assert dossier["late_documents"] == []
    assert {m["code"]: m["present"] for m in dossier["materials"]}["identity"] is True
    # The court is told, and reads the document, now part of what was handed to it.
    court = api.auth("court", uuid.UUID(handoff["target_id"]))
    [told] = [e["data"] for e in await read_all(api, court, types=SUPPLIED)]
    assert (told["request_id"], told["document_ids"], told["late"]) == (request["id"], [copy["id"]], False)
    listed = await api.client.get(f"/v1/disputes/{dispute['id']}/documents", headers=court)
    assert copy["id"] in [d["id"] for d in listed.json()]
    assert [e["action"] for e in await api.timeline(dispute)][-2:] == ["add_document", "supply_materials"]


async def test_only_the_court_addressed_asks(api: Api) -> None:
    dispute, handoff = await _pending(api)
    other = await _post(api, handoff, "materials-request", _asking(api), as_=api.auth("court", "other_court"))
    _problem(other, 404, "not-found")
    body = await _post(
        api, handoff, "materials-request", _asking(api), as_=api.acting("body_mediator", dispute)
    )
    _problem(body, 403, "forbidden")
    # The court does not supply its own request.
    assert (await _post(api, handoff, "materials-request", _asking(api))).status_code == 200
    current = (await api.handoff(dispute))["handoff"]
    by_court = await _post(api, current, "materials-supplied", {"document_ids": [str(uuid.uuid4())]})
    _problem(by_court, 403, "forbidden")
    assert (await api.handoff(dispute))["handoff"]["version"] == current["version"]


async def test_the_day_set_lies_after_today_and_within_bounds(api: Api) -> None:
    dispute, handoff = await _pending(api)
    counts = await _counts(api, dispute)
    for days in (0, -1, 91):
        refused = await _post(api, handoff, "materials-request", _asking(api, days))
        [error] = _problem(refused, 422, "validation-error")["errors"]
        assert (error["field"], error["code"]) == ("due_on", "implausible"), days
    assert await _counts(api, dispute) == counts
    assert (await api.handoff(dispute))["handoff"]["materials_requests"] == []
    assert (await _post(api, handoff, "materials-request", _asking(api, 90))).status_code == 200


async def test_no_request_once_the_court_has_ruled(api: Api) -> None:
    dispute = await api.drive("confirmed")
    handoff = (await api.handoff(dispute))["handoff"]
    refused = await _post(api, handoff, "materials-request", _asking(api))
    assert _problem(refused, 409, "conflict")["code"] == "handoff_settled"


async def test_a_request_after_acceptance_is_to_supplement(api: Api) -> None:
    dispute = await api.target_accepts(await api.drive("confirmation_pending"))
    handoff = (await api.handoff(dispute))["handoff"]
    asked = await _post(api, handoff, "materials-request", _asking(api))
    assert asked.status_code == 200, asked.text
    assert asked.json()["materials_requests"][0]["article"] == "民诉法解释 第三百五十六条"
    # One open at a time.
    again = await _post(api, asked.json(), "materials-request", _asking(api, 10))
    assert _problem(again, 409, "conflict")["code"] == "materials_already_requested"


async def test_a_stale_etag_is_refused_and_the_same_request_again_writes_nothing(api: Api) -> None:
    dispute, handoff = await _pending(api)
    first = await _post(api, handoff, "materials-request", _asking(api))
    assert first.status_code == 200, first.text
    counts = await _counts(api, dispute)
    # Sent again at the version it was first sent at (its answer lost): answered as it stands.
    again = await _post(api, handoff, "materials-request", _asking(api))
    assert again.status_code == 200, again.text
    assert again.json()["version"] == first.json()["version"]
    assert len(again.json()["materials_requests"]) == 1
    assert await _counts(api, dispute) == counts
    # Another request at that version is stale.
    stale = await _post(api, handoff, "materials-request", _asking(api, 10))
    _problem(stale, 412, "stale-version")
    assert await _counts(api, dispute) == counts


async def test_documents_of_another_case_are_not_supplied(api: Api) -> None:
    dispute, handoff = await _pending(api)
    handoff = (await _post(api, handoff, "materials-request", _asking(api))).json()
    elsewhere = await api.drive("mediating")
    theirs = await uploaded(api, elsewhere, pdf(1024, "other"), "他案证据.pdf")
    counts = await _counts(api, dispute)
    refused = await _supply(api, handoff, [theirs["id"]], dispute)
    [error] = _problem(refused, 422, "validation-error")["errors"]
    assert (error["field"], error["code"]) == ("document_ids[0]", "not_of_this_case")
    assert await _counts(api, dispute) == counts
    assert (await api.handoff(dispute))["handoff"]["materials_requests"][0]["status"] == "open"


async def test_a_request_past_its_day_is_flagged_once_and_still_supplied(api: Api) -> None:
    # Accepted, the court has 15 days to rule: its own step is not late when the parties are.
    dispute = await api.target_accepts(await api.drive("confirmation_pending"))
    handoff = (await api.handoff(dispute))["handoff"]
    handoff = (await _post(api, handoff, "materials-request", _asking(api, 3))).json()
    due = date.fromisoformat(handoff["materials_requests"][0]["due_on"])
    court = api.auth("court", uuid.UUID(handoff["target_id"]))

    _on(api, due)
    assert (await _tick(api)).materials_overdue == 0
    assert (await api.handoff(dispute))["handoff"]["materials_requests"][0]["overdue"] is False

    _on(api, due + timedelta(days=1))
    late = (await api.handoff(dispute))["handoff"]
    assert late["materials_requests"][0]["overdue"] is True
    assert late["overdue"] is None  # the parties are late, not the court
    listed = await api.client.get("/v1/handoffs", params={"materials_overdue": "true"}, headers=court)
    assert [h["id"] for h in listed.json()["items"]] == [handoff["id"]]
    report = await _tick(api)
    assert report.materials_overdue == 1
    assert (await _tick(api)).materials_overdue == 0  # flagged once
    [flag] = await _events(api, dispute, LATE)
    assert (flag["request_id"], flag["due_on"]) == (handoff["materials_requests"][0]["id"], due.isoformat())
    [entry] = [e for e in await api.timeline(dispute) if e["action"] == "materials_overdue"]
    assert "民诉法解释 第三百五十七条" in entry["reason"]

    # Late, the materials are still taken: the court judges whether the delay had good reason.
    copy = await uploaded(api, dispute, pdf(2048, "late"), "身份证复印件.pdf", kind="identity_document")
    current = (await api.handoff(dispute))["handoff"]
    supplied = await _supply(api, current, [copy["id"]], dispute)
    assert supplied.status_code == 200, supplied.text
    answered = supplied.json()["materials_requests"][0]
    assert (answered["status"], answered["supplied_late"], answered["overdue"]) == ("supplied", True, False)
    [told] = await _events(api, dispute, SUPPLIED)
    assert told["late"] is True
    listed = await api.client.get("/v1/handoffs", params={"materials_overdue": "true"}, headers=court)
    assert listed.json()["items"] == []


async def test_a_referral_takes_no_request_for_materials(api: Api) -> None:
    dispute = await api.drive("referred_litigation")
    handoff = (await api.handoff(dispute))["handoff"]
    refused = await _post(api, handoff, "materials-request", _asking(api))
    assert _problem(refused, 409, "conflict")["code"] == "wrong_kind"


async def test_the_ruling_closes_an_open_request(api: Api) -> None:
    dispute = await api.target_accepts(await api.drive("confirmation_pending"))
    handoff = (await api.handoff(dispute))["handoff"]
    handoff = (await _post(api, handoff, "materials-request", _asking(api))).json()
    ruling = {
        "decision": "withdrawn",
        "ruling_number": "(2026)浙0681民特7号",
        "ruled_on": api.today.isoformat(),
    }
    ruled = await _post(api, handoff, "decision", ruling)
    assert ruled.status_code == 200, ruled.text
    [closed] = ruled.json()["materials_requests"]
    assert (closed["status"], closed["overdue"]) == ("closed", False)
    late = await _supply(api, ruled.json(), [str(uuid.uuid4())], dispute)
    assert _problem(late, 409, "conflict")["code"] == "handoff_settled"


async def test_the_same_items_asked_again_after_an_answer_are_a_new_request(api: Api) -> None:
    # Only the request still waiting is a retry: the court unsatisfied with what came asks again.
    dispute, handoff = await _pending(api)
    handoff = (await _post(api, handoff, "materials-request", _asking(api))).json()
    copy = await uploaded(
        api,
        dispute,
        pdf(2048, "again"),
        "身份证复印件.pdf",
        kind="identity_document",
        headers=api.acting("body_mediator", dispute),
    )
    supplied = await _supply(api, handoff, [copy["id"]], dispute)
    assert supplied.status_code == 200, supplied.text
    again = await _post(api, supplied.json(), "materials-request", _asking(api))
    assert again.status_code == 200, again.text
    assert [r["status"] for r in again.json()["materials_requests"]] == ["supplied", "open"]
    assert again.json()["version"] == supplied.json()["version"] + 1
    entries = [e for e in await api.timeline(dispute) if e["action"] == "request_materials"]
    assert len(entries) == 2


async def test_the_dossier_is_not_answered_304_once_its_request_turns_overdue(api: Api) -> None:
    # Accepted, the court's own step (15 days to rule) is not late when the request is.
    dispute = await api.target_accepts(await api.drive("confirmation_pending"))
    handoff = (await api.handoff(dispute))["handoff"]
    handoff = (await _post(api, handoff, "materials-request", _asking(api, 3))).json()
    court = api.auth("court", uuid.UUID(handoff["target_id"]))
    url = f"/v1/handoffs/{handoff['id']}"
    due = date.fromisoformat(handoff["materials_requests"][0]["due_on"])
    _on(api, due)
    first = await api.client.get(url, headers=court)
    assert first.status_code == 200, first.text
    same_day = await api.client.get(url, headers={**court, "If-None-Match": first.headers["etag"]})
    assert same_day.status_code == 304
    # At midnight the request is late, before anything writes it down (the scheduler's flag).
    _on(api, due + timedelta(days=1))
    late = await api.client.get(url, headers={**court, "If-None-Match": first.headers["etag"]})
    assert late.status_code == 200, late.text
    assert late.json()["handoff"]["materials_requests"][0]["overdue"] is True
