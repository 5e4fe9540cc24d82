"""The work on a case's agreement on its timeline, over real HTTP on SQLite and PostgreSQL: each
draft, revision and signature (人民调解法 Art. 29, 30) is one entry and one event, under the case's
version, so a supervisor reads when the agreement was drafted, who signed it and when it took
effect, and other systems learn of it without the parties' names."""

from __future__ import annotations

import json
from typing import Any

from mediation.events.service import TYPE_PREFIX
from tests.support import Api
from tests.test_agreement_overlap import _oral_in_effect_and_written_draft
from tests.test_event_feed import read_all
from tests.test_web import signed_in

AGREEMENT_EVENTS = ("agreement_drafted", "agreement_revised", "agreement_signature_recorded")


async def _events(api: Api, case: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's events, in commit order, as the pull feed gives them."""
    return [e for e in await read_all(api, limit=500) if e["subject"] == case["case_number"]]


async def _counts(api: Api, case: dict[str, Any]) -> tuple[int, int, int]:
    version = (await api.get(case))["version"]
    return version, await api.timeline_count(case["id"]), await api.outbox_count(case["id"])


def _one_more(before: tuple[int, int, int], after: tuple[int, int, int]) -> None:
    """One entry, one event, and the case's version by one."""
    assert after == (before[0] + 1, before[1] + 1, before[2] + 1), (before, after)


async def _revise(api: Api, case: dict[str, Any], draft: dict[str, Any], **content: Any) -> Any:
    return await api.client.put(
        f"/v1/disputes/{case['id']}/agreements/{draft['id']}",
        json=api.agreement_content(case, **content),
        headers={**api.acting("body_mediator", case), "If-Match": f'"{draft["version"]}"'},
    )


def _party(case: dict[str, Any], role: str) -> dict[str, Any]:
    return next(p for p in case["parties"] if p["role"] == role)


async def test_a_draft_is_an_entry_and_an_event_and_one_drafted_over_names_the_version_it_follows(
    api: Api,
) -> None:
    case = await api.drive("mediating")
    before = await _counts(api, case)
    first = await api.draft_agreement(case)
    _one_more(before, middle := await _counts(api, case))
    second = await api.draft_agreement(case, supersedes=1)
    # The first draft, superseded by the second, has no entry of its own: it is the second's.
    _one_more(middle, await _counts(api, case))

    entries = [e for e in await api.timeline(case) if e["action"] == "draft_agreement"]
    assert [e["payload"] for e in entries] == [
        {"agreement_id": first["id"], "number": 1, "form": "written", "supersedes": None},
        {"agreement_id": second["id"], "number": 2, "form": "written", "supersedes": 1},
    ]
    assert all(e["from_status"] == e["to_status"] == "mediating" for e in entries)
    drafted = [e for e in await _events(api, case) if e["type"] == TYPE_PREFIX + "agreement_drafted"]
    assert [(e["data"]["number"], e["data"]["supersedes"], e["data"]["action"]) for e in drafted] == [
        (1, None, "draft_agreement"),
        (2, 1, "draft_agreement"),
    ]
    assert drafted[-1]["data"]["version"] == (await api.get(case))["version"]


async def test_a_revised_draft_is_an_entry_and_an_event(api: Api) -> None:
    case = await api.drive("mediating")
    draft = await api.draft_agreement(case)
    before = await _counts(api, case)
    revised = await _revise(api, case, draft, terms=["双方互相谅解, 不再争执。"])
    assert revised.status_code == 200, revised.text
    _one_more(before, after := await _counts(api, case))

    entry = (await api.timeline(case))[-1]
    assert entry["action"] == "revise_agreement"
    assert entry["payload"] == {"agreement_id": draft["id"], "number": 1, "form": "written"}
    event = (await _events(api, case))[-1]
    assert event["type"] == TYPE_PREFIX + "agreement_revised"
    assert event["data"]["agreement_id"] == draft["id"] and event["data"]["version"] == after[0]


async def test_each_signature_is_an_entry_and_an_event_and_the_last_says_the_version_took_effect(
    api: Api,
) -> None:
    case = await api.drive("mediating")
    draft = await api.draft_agreement(case)
    applicant, respondent = _party(case, "applicant"), _party(case, "respondent")
    signatures = [
        {"signer": "party", "party_id": applicant["id"], "method": "in_person"},
        {"signer": "party", "party_id": respondent["id"], "method": "fingerprint"},
        {"signer": "mediator", "method": "in_person"},
        {"signer": "body_seal", "method": "seal"},
    ]
    agreement = draft
    for signature in signatures:
        before = await _counts(api, case)
        response = await api.sign(case, agreement, **signature)
        assert response.status_code == 200, response.text
        agreement = response.json()
        _one_more(before, await _counts(api, case))
    assert agreement["status"] == "effective"

    entries = [e for e in await api.timeline(case) if e["action"] == "sign_agreement"]
    assert [(e["payload"]["signer"], e["payload"]["party_id"], e["payload"]["method"]) for e in entries] == [
        ("party", applicant["id"], "in_person"),
        ("party", respondent["id"], "fingerprint"),
        ("mediator", None, "in_person"),
        ("body_seal", None, "seal"),
    ]
    assert [e["payload"]["effective"] for e in entries] == [False, False, False, True]
    assert all(e["payload"]["agreement_id"] == draft["id"] and e["payload"]["number"] == 1 for e in entries)
    assert "effective_at" not in entries[0]["payload"]
    last = entries[-1]["payload"]
    assert last["effective_at"] == last["signed_at"]
    assert last["effective_on"] == agreement["effective_on"]

    signed = [
        e for e in await _events(api, case) if e["type"] == TYPE_PREFIX + "agreement_signature_recorded"
    ]
    assert [e["data"]["effective"] for e in signed] == [False, False, False, True]
    assert signed[-1]["data"]["effective_on"] == agreement["effective_on"]
    assert signed[-1]["data"]["version"] == (await api.get(case))["version"]


async def test_a_refused_signature_leaves_the_case_as_it_was(api: Api) -> None:
    case = await api.drive("mediating")
    draft = await api.draft_agreement(case)
    before = await _counts(api, case)
    stale = await api.sign(
        case, {**draft, "version": draft["version"] + 1}, signer="mediator", method="in_person"
    )
    assert stale.status_code == 412, stale.text
    unknown = await api.sign(case, draft, signer="party", party_id=draft["id"], method="in_person")
    assert unknown.status_code == 422, unknown.text
    assert await _counts(api, case) == before


async def test_the_events_carry_no_names_and_no_text_of_the_agreement(api: Api) -> None:
    """Events go to other systems' webhooks: ids, numbers and codes only; the names stay with the
    case (个人信息保护法 Art. 6: the minimum necessary)."""
    case = await api.drive("mediating")
    draft = await api.draft_agreement(case)
    assert (await _revise(api, case, draft, terms=["双方互相谅解, 不再争执。"])).status_code == 200
    await api.signed_agreement(case)
    agreement = (
        await api.client.get(f"/v1/disputes/{case['id']}/agreements/{api.agreements[case['id']]}")
    ).json()
    personal = [p["name"] for p in case["parties"]] + [agreement["mediator_name"], agreement["body_name"]]
    texts = [agreement["facts"], agreement["terms"][0], agreement["obligations"][0]["description"]]

    events = [e for e in await _events(api, case) if e["type"].removeprefix(TYPE_PREFIX) in AGREEMENT_EVENTS]
    assert len(events) == 1 + 1 + 1 + 4  # two drafts, a revision, four signatures
    for e in events:
        dumped = json.dumps(e, ensure_ascii=False)
        assert not [word for word in personal + texts if word and word in dumped], e
        assert "name" not in " ".join(e["data"])


async def test_after_signing_the_case_is_acted_on_with_its_new_etag(api: Api) -> None:
    """The case's version moves with each signature: an `agree` sent with the ETag read before the
    signatures is refused as stale (412); read again, it goes through."""
    case = await api.drive("mediating")
    seen = dict(case)
    await api.signed_agreement(case)
    stale = await api.act(seen, "agree")
    assert stale.status_code == 412, stale.text
    agreed = await api.step(await api.get(case), "agree")
    assert agreed["status"] == "agreement_signed"


async def test_a_written_version_taking_effect_says_which_oral_agreement_it_replaced(api: Api) -> None:
    case, oral, written = await _oral_in_effect_and_written_draft(api)
    signed = await api.sign_all(case, written)
    last = (await api.timeline(case))[-1]["payload"]
    assert last["effective"] is True and last["supersedes"] == oral["number"] == 1
    assert last["agreement_id"] == signed["id"]


async def test_recording_the_agreement_supersedes_a_draft_left_without_an_entry_of_its_own(api: Api) -> None:
    """`agree` closes the written draft of the oral agreement it records (close_drafts): part of the
    action's own entry, not one more."""
    case, oral, _ = await _oral_in_effect_and_written_draft(api)
    before = await _counts(api, case)
    await api.step(await api.get(case), "agree", {"agreement_id": oral["id"]})
    _one_more(before, await _counts(api, case))


async def test_the_case_page_shows_the_agreements_drafting_signatures_and_effect(api: Api, web: Any) -> None:
    case = await api.drive("mediating")
    await api.draft_agreement(case)
    second = await api.draft_agreement(case, supersedes=1)
    revised = await _revise(api, case, second, terms=["双方互相谅解, 不再争执。"])
    assert revised.status_code == 200, revised.text
    applicant = _party(case, "applicant")
    agreement = await api.sign_all(case, revised.json())

    page = await signed_in(web, api, "clerk").get(f"/cases/{case['id']}")
    assert page.status_code == 200
    text = page.text
    assert "<strong>起草调解协议 (第1版, 书面)</strong>" in text
    assert "<strong>起草调解协议 (第2版, 书面)</strong>" in text
    assert "<strong>修改调解协议 (第2版)</strong>" in text
    assert f"<strong>签署调解协议: {applicant['name']} 签名 (第2版)</strong>" in text
    assert "<strong>签署调解协议: 调解员 签名 (第2版)</strong>" in text
    assert "<strong>签署调解协议: 调解组织 盖章 (第2版)</strong>" in text
    assert f'<div class="reason took-effect">协议生效 (第2版, {agreement["effective_on"]})</div>' in text
    assert text.count("协议生效") == 1


async def test_a_written_draft_of_an_oral_agreement_in_effect_supersedes_nothing_yet(api: Api) -> None:
    """人民调解法 Art. 30: the oral agreement stays in force while its written version is a draft.
    The draft's entry and event do not say it superseded version 1; the signature that makes the
    written version effective does (above)."""
    case, oral, written = await _oral_in_effect_and_written_draft(api)
    drafted = [e["payload"] for e in await api.timeline(case) if e["action"] == "draft_agreement"]
    assert [(d["number"], d["form"], d["supersedes"]) for d in drafted] == [
        (1, "oral", None),
        (2, "written", None),
    ]
    events = [e for e in await _events(api, case) if e["type"] == TYPE_PREFIX + "agreement_drafted"]
    assert [e["data"]["supersedes"] for e in events] == [None, None]
    assert oral["status"] == "effective" and written["number"] == 2


async def test_an_edit_that_changes_nothing_is_refused_and_records_nothing(api: Api) -> None:
    case = await api.drive("mediating")
    draft = await api.draft_agreement(case)
    before = await _counts(api, case)
    same = await _revise(api, case, draft)
    assert same.status_code == 409, same.text
    assert same.headers["content-type"].startswith("application/problem+json")
    assert same.json()["code"] == "agreement_unchanged"
    assert await _counts(api, case) == before
    # The draft is as it was: its own version, its text and its obligations.
    reread = await api.client.get(
        f"/v1/disputes/{case['id']}/agreements/{draft['id']}", headers=api.acting("body_mediator", case)
    )
    assert reread.json()["version"] == draft["version"]
    assert reread.json()["obligations"] == draft["obligations"]
    # A real edit still goes through.
    changed = await _revise(api, case, draft, terms=["双方互相谅解, 不再争执。"])
    assert changed.status_code == 200, changed.text
    _one_more(before, await _counts(api, case))
