"""A document's withdrawal is a change to the case, and takes the case's conditions as every other
change does (domain §6), over real HTTP on SQLite and PostgreSQL: the case's ETag in If-Match (428
without it, 412 when stale, nothing changed either way), the case's new ETag in the answer, and an
Idempotency-Key that replays the first answer and refuses another body. An upload, which creates,
does not require If-Match but holds a client that sends one to it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support import Api
from tests.test_documents import docs_url, pdf, problem, snapshot, upload, uploaded

KIB = 1024


async def case_as_it_is(api: Api, case: dict[str, Any]) -> tuple[int, int, int, list[str]]:
    """The case's version, its timeline and events, and its documents' states: what a refused
    withdrawal must leave as it was."""
    version = int((await api.if_match(case))["If-Match"].strip('"'))
    listed = (await api.client.get(docs_url(case))).json()
    return (
        version,
        await api.timeline_count(case["id"]),
        await api.outbox_count(case["id"]),
        [d["status"] for d in listed],
    )


async def withdraw_with(
    api: Api,
    case: dict[str, Any],
    document: dict[str, Any],
    reason: str = "重复上传",
    *,
    if_match: str | None = None,
    key: str | None = None,
) -> httpx.Response:
    """The clerk withdraws `document` with these conditions, and no others."""
    headers = api.auth()
    if if_match is not None:
        headers["If-Match"] = if_match
    if key is not None:
        headers["Idempotency-Key"] = key
    return await api.client.post(
        docs_url(case, document, "/withdraw"), json={"reason": reason}, headers=headers
    )


async def a_case_with_a_document(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    """A case worked on a little, so that its version is well past its first."""
    case = await api.intake()
    for i in range(3):
        await uploaded(api, case, pdf(KIB, f"earlier {i}"), f"材料{i}.pdf")
    document = await uploaded(api, case, pdf(2 * KIB, "twice"), "借条.pdf")
    return case, document


# ---- If-Match ---------------------------------------------------------------------------------------


async def test_a_withdrawal_without_the_cases_etag_is_428_and_changes_nothing(api: Api) -> None:
    case, document = await a_case_with_a_document(api)
    before = await case_as_it_is(api, case)

    refused = await withdraw_with(api, case, document)
    body = problem(refused, 428, "precondition-required")
    assert body["current_etag"] == f'"{before[0]}"'
    assert await case_as_it_is(api, case) == before


async def test_a_withdrawal_with_a_stale_etag_is_412_and_changes_nothing(api: Api) -> None:
    """The case read at version 1 and changed since: the withdrawal is refused before anything is
    judged or written, and its Idempotency-Key is given back (a refusal stores no answer)."""
    case, document = await a_case_with_a_document(api)
    before = await case_as_it_is(api, case)
    assert before[0] > 1

    refused = await withdraw_with(api, case, document, if_match='"1"', key="abc-123")
    body = problem(refused, 412, "stale-version")
    assert body["current_etag"] == f'"{before[0]}"'
    assert refused.headers.get("idempotent-replayed") is None
    assert await case_as_it_is(api, case) == before

    # Sent again with the case as it is, under the same key: done now, not a replay of the refusal.
    done = await withdraw_with(api, case, document, if_match=f'"{before[0]}"', key="abc-123")
    assert done.status_code == 200, done.text
    assert done.headers.get("idempotent-replayed") is None
    assert done.json()["status"] == "withdrawn"


async def test_a_withdrawal_with_the_cases_etag_answers_with_the_new_one(api: Api) -> None:
    case, document = await a_case_with_a_document(api)
    version, timeline, events, _ = await case_as_it_is(api, case)

    done = await withdraw_with(api, case, document, if_match=f'"{version}"')
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "withdrawn" and done.json()["withdrawn_reason"] == "重复上传"
    assert done.headers["ETag"] == f'"{version + 1}"'
    after = await case_as_it_is(api, case)
    assert after[:3] == (version + 1, timeline + 1, events + 1)

    # The ETag it answered with is the case's: the next change names it, the one before is stale.
    other = [d for d in (await api.client.get(docs_url(case))).json() if d["status"] == "active"][-1]
    stale = await withdraw_with(api, case, other, if_match=f'"{version}"')
    problem(stale, 412, "stale-version")
    fresh = await withdraw_with(api, case, other, if_match=done.headers["ETag"])
    assert fresh.status_code == 200, fresh.text


# ---- Idempotency-Key --------------------------------------------------------------------------------


async def test_a_withdrawal_sent_again_with_its_key_replays_the_first_answer(api: Api) -> None:
    """The client that lost the first answer sends the same request again, with the If-Match it
    sent then (stale now, as the withdrawal moved the case on): it gets the first answer, marked as
    replayed, not 409 'already withdrawn' or 412, and the case moves on once."""
    case, document = await a_case_with_a_document(api)
    version = (await case_as_it_is(api, case))[0]
    key = f"withdraw-{uuid.uuid4().hex}"

    first = await withdraw_with(api, case, document, if_match=f'"{version}"', key=key)
    assert first.status_code == 200, first.text
    after = await case_as_it_is(api, case)

    again = await withdraw_with(api, case, document, if_match=f'"{version}"', key=key)
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["ETag"] == first.headers["ETag"] == f'"{version + 1}"'
    assert await case_as_it_is(api, case) == after


async def test_a_withdrawals_key_sent_with_another_body_is_422(api: Api) -> None:
    case, document = await a_case_with_a_document(api)
    version = (await case_as_it_is(api, case))[0]
    key = f"withdraw-{uuid.uuid4().hex}"
    first = await withdraw_with(api, case, document, if_match=f'"{version}"', key=key)
    assert first.status_code == 200, first.text
    after = await case_as_it_is(api, case)

    other = await withdraw_with(api, case, document, "另一个理由", if_match=f'"{version + 1}"', key=key)
    problem(other, 422, "idempotency-key-mismatch")
    assert await case_as_it_is(api, case) == after
    listed = {d["id"]: d for d in (await api.client.get(docs_url(case))).json()}
    assert listed[document["id"]]["withdrawn_reason"] == "重复上传"


# ---- an upload's If-Match, when sent ---------------------------------------------------------------


async def test_an_upload_holds_a_client_to_the_etag_it_sends_without_requiring_one(api: Api) -> None:
    case, _ = await a_case_with_a_document(api)
    before = await case_as_it_is(api, case)
    stored = await snapshot(api)

    stale = await upload(api, case, pdf(KIB, "late"), "补充.pdf", headers={**api.auth(), "If-Match": '"1"'})
    assert problem(stale, 412, "stale-version")["current_etag"] == f'"{before[0]}"'
    assert await case_as_it_is(api, case) == before and await snapshot(api) == stored

    current = await upload(
        api, case, pdf(KIB, "late"), "补充.pdf", headers={**api.auth(), "If-Match": f'"{before[0]}"'}
    )
    assert current.status_code == 201, current.text
    assert current.headers["ETag"] == f'"{before[0] + 1}"'
    # Without one, as before: an upload creates, and its retries are made safe by its key.
    unconditional = await upload(api, case, pdf(KIB, "later"), "再补充.pdf", headers=api.auth())
    assert unconditional.status_code == 201, unconditional.text
    assert unconditional.headers["ETag"] == f'"{before[0] + 2}"'


# ---- a withdrawal sent again ------------------------------------------------------------------------


async def a_ruling_the_court_filed(api: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """A case handed to a court for confirmation, and a ruling the court filed in it: (case, ruling,
    the court's credentials)."""
    case = await api.drive("confirmation_pending")
    court = api.acting("court", case)
    ruling = await uploaded(
        api, case, pdf(2 * KIB, "ruling"), "民事裁定书.pdf", kind="court_ruling", headers=court
    )
    return case, ruling, court


async def withdrawn_by(
    api: Api,
    case: dict[str, Any],
    document: dict[str, Any],
    headers: dict[str, str],
    etag: str,
    key: str | None = None,
) -> httpx.Response:
    sent = {**headers, "If-Match": etag, **({"Idempotency-Key": key} if key else {})}
    return await api.client.post(
        docs_url(case, document, "/withdraw"), json={"reason": "裁定书有误, 重新制作"}, headers=sent
    )


async def test_a_court_withdrawing_its_ruling_again_is_told_it_is_withdrawn(api: Api) -> None:
    """A court's system that lost the answer sends the withdrawal again, with the ETag it sent then
    (stale now) or read afresh: 409 `already_withdrawn`, not 404 (which reads as "never existed")
    nor 412 (reloading would only lead to the same refusal), and nothing changes."""
    case, ruling, court = await a_ruling_the_court_filed(api)
    etag = (await api.if_match(case))["If-Match"]
    first = await withdrawn_by(api, case, ruling, court, etag)
    assert first.status_code == 200, first.text
    after = await case_as_it_is(api, case)

    for sent_with in (etag, first.headers["ETag"]):
        again = await withdrawn_by(api, case, ruling, court, sent_with)
        assert problem(again, 409, "conflict")["code"] == "already_withdrawn"
    assert await case_as_it_is(api, case) == after

    # The court reads what it filed, withdrawn, as the clerk does: it wrote it, and may withdraw it.
    read = await api.client.get(docs_url(case, ruling), headers=court)
    assert read.status_code == 200, read.text
    assert (read.json()["status"], read.json()["withdrawn_reason"]) == ("withdrawn", "裁定书有误, 重新制作")
    assert ruling["id"] in {d["id"] for d in (await api.client.get(docs_url(case), headers=court)).json()}
    entries = [
        e
        for e in (await api.client.get(f"/v1/disputes/{case['id']}/timeline", headers=court)).json()
        if (e["payload"] or {}).get("document_id") == ruling["id"]
    ]
    assert [(e["action"], e["reason_withheld"]) for e in entries] == [
        ("add_document", False),
        ("withdraw_document", False),
    ]
    # Not a late addition to the dossier: what was withdrawn is not handed over.
    dossier = (await api.client.get(f"/v1/disputes/{case['id']}/dossier", headers=court)).json()
    assert ruling["id"] not in dossier["late_documents"]


async def test_a_court_is_still_not_shown_what_others_withdrew_after_handing_it_in_late(api: Api) -> None:
    """What the court is shown of withdrawn documents is only its own: a body's late evidence,
    withdrawn, stays out of its sight, and its withdrawal is not the court's to send."""
    case, _, court = await a_ruling_the_court_filed(api)
    body = await api.client.post(
        docs_url(case),
        files={"file": ("补充证据.pdf", pdf(KIB, "late"), "application/pdf")},
        data={"kind": "evidence"},
        headers=api.auth(),
    )
    assert body.status_code == 201, body.text
    late = body.json()
    etag = (await api.if_match(case))["If-Match"]
    assert (await withdrawn_by(api, case, late, api.auth(), etag)).status_code == 200

    problem(await api.client.get(docs_url(case, late), headers=court), 404, "not-found")
    refused = await withdrawn_by(api, case, late, court, (await api.if_match(case))["If-Match"])
    problem(refused, 404, "not-found")


async def test_a_courts_withdrawal_sent_again_with_its_key_replays_then_another_key_is_409(api: Api) -> None:
    case, ruling, court = await a_ruling_the_court_filed(api)
    etag = (await api.if_match(case))["If-Match"]
    key = f"withdraw-{uuid.uuid4().hex}"
    first = await withdrawn_by(api, case, ruling, court, etag, key)
    assert first.status_code == 200, first.text
    after = await case_as_it_is(api, case)

    replayed = await withdrawn_by(api, case, ruling, court, etag, key)
    assert replayed.status_code == 200, replayed.text
    assert replayed.headers["idempotent-replayed"] == "true" and replayed.json() == first.json()
    other = await withdrawn_by(
        api, case, ruling, court, first.headers["ETag"], f"withdraw-{uuid.uuid4().hex}"
    )
    assert problem(other, 409, "conflict")["code"] == "already_withdrawn"
    assert await case_as_it_is(api, case) == after
