"""Sessions, the agreement as data (人民调解法 Art. 29-31), its signatures, the printable document,
performance of its obligations and the follow-ups the clock raises when one is overdue."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import update
from stdnum.cn import uscc

from mediation.clocks.scheduler import tick
from mediation.core.principal import Role
from mediation.disputes.lifecycle import transitions_from
from mediation.disputes.models import Dispute
from tests.support import person

ART_29 = "人民调解法 第二十九条"
METHOD_LABELS = {
    "in_person": "本人签名",
    "fingerprint": "按指印",
    "electronic": "电子签名",
    "seal": "盖章",
    "recorded": "调解员记录",
}
VILLAGE_BODY = "枫源村人民调解委员会"


async def _tick(api):
    app = api.app
    return await tick(app.state.db, app.state.clock, app.state.settings, app.state.identity.cipher)


def _party(dispute, role):
    return next(p for p in dispute["parties"] if p["role"] == role)


def _etag(response) -> str:
    etag = response.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"'), etag
    return etag


def _problem(response, status: int, type_: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == type_, problem
    return problem


def _field_codes(response) -> set[str]:
    return {e["code"] for e in _problem(response, 422, "/problems/validation-error")["errors"]}


async def _schedule(api, dispute, role="body_mediator", **overrides):
    body = {"scheduled_at": "2026-06-01T09:00:00+08:00", "place": "枫源村调委会调解室", **overrides}
    return await api.client.post(
        f"/v1/disputes/{dispute['id']}/sessions", json=body, headers=api.acting(role, dispute)
    )


def _minutes(dispute, outcome: str, **extra):
    return {
        "held_at": "2026-06-01T09:30:00+08:00",
        "attendees": [
            {"party_id": p["id"], "name": p["name"], "capacity": "当事人"} for p in dispute["parties"]
        ],
        "minutes": "调解员向双方释明法律规定, 双方陈述意见。",
        "outcome": outcome,
        **extra,
    }


async def _record(api, dispute, session, body, *, if_match: str | None = "current", role="body_mediator"):
    headers = api.acting(role, dispute)
    if if_match == "current":
        headers["If-Match"] = f'"{session["version"]}"'
    elif if_match is not None:
        headers["If-Match"] = if_match
    return await api.client.post(
        f"/v1/disputes/{dispute['id']}/sessions/{session['id']}/record", json=body, headers=headers
    )


async def _agreement(api, dispute, agreement) -> dict:
    response = await api.client.get(f"/v1/disputes/{dispute['id']}/agreements/{agreement['id']}")
    assert response.status_code == 200, response.text
    return response.json()


def _two_obligations(api, dispute, first_due: int = 10, second_due: int = 20) -> list[dict]:
    applicant, respondent = _party(dispute, "applicant")["id"], _party(dispute, "respondent")["id"]
    return [
        {
            "obligor_party_id": respondent,
            "obligee_party_id": applicant,
            "kind": "payment",
            "amount": "800.00",
            "description": "赔偿屋檐滴水造成的墙面损失",
            "place": "枫源村调委会",
            "manner": "银行转账",
            "due_on": (api.today + timedelta(days=first_due)).isoformat(),
        },
        {
            "obligor_party_id": respondent,
            "obligee_party_id": applicant,
            "kind": "act",
            "description": "加装屋檐排水槽",
            "manner": "自行雇工施工",
            "due_on": (api.today + timedelta(days=second_due)).isoformat(),
        },
    ]


async def _agreed(api, **due_in_days: int) -> tuple[dict, dict]:
    """A case in agreement_signed, its effective agreement with two obligations."""
    dispute = await api.drive("mediating")
    agreement = await api.signed_agreement(dispute, obligations=_two_obligations(api, dispute, **due_in_days))
    dispute = await api.step(dispute, "agree")
    assert dispute["status"] == "agreement_signed"
    return dispute, agreement


async def _perform(api, dispute, obligation, performed_on=None, role="body_mediator"):
    """The obligation recorded as performed against the case as it is now (its ETag)."""
    current = await api.get(dispute)
    return await api.client.post(
        f"/v1/disputes/{dispute['id']}/obligations/{obligation['id']}/performance",
        json={"performed_on": (performed_on or api.today).isoformat(), "note": "申请人确认已收到"},
        headers={**api.acting(role, dispute), "If-Match": f'"{current["version"]}"'},
    )


async def _follow_ups(api, body: str = "village", as_: str = "village", status: str = "open"):
    return await api.client.get(
        f"/v1/bodies/{api.bodies[body]}/follow-ups",
        params={"status": status},
        headers=api.auth("body_mediator", as_),
    )


class _Tables(HTMLParser):
    """The rows of every table (cell texts) and the items of every list, from the agreement page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.items: list[str] = []
        self._cell: list[str] | None = None
        self._item: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "li":
            self._item = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "li" and self._item is not None:
            self.items.append("".join(self._item).strip())
            self._item = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._item is not None:
            self._item.append(data)


def _read_page(html: str) -> dict:
    page = _Tables()
    page.feed(html)
    page.close()
    return {
        "parties": {(r[0], r[1]) for r in page.rows if len(r) == 4 and r[0] in ("申请人", "被申请人")},
        "signatures": {
            (r[0], r[1], r[2]) for r in page.rows if len(r) == 5 and r[2] in METHOD_LABELS.values()
        },
        "obligations": page.items,
    }


def _cn_date(iso: str) -> str:
    """A day as the printed agreement dates it (GB/T 9704): 2026年6月11日."""
    year, month, day = iso.split("-")
    return f"{year}年{int(month)}月{int(day)}日"


def _assert_page_shows(html: str, dispute: dict, agreement: dict) -> dict:
    page = _read_page(html)
    assert page["parties"] == {("申请人", "张三"), ("被申请人", "李四")}
    assert len(page["obligations"]) >= len(agreement["obligations"])
    for obligation in agreement["obligations"]:
        item = next(i for i in page["obligations"] if obligation["description"] in i)
        assert f"于{_cn_date(obligation['due_on'])}前" in item
        assert "李四" in item and "向张三" in item
        assert obligation["manner"] in item
        if obligation["amount"] is not None:
            assert f"支付人民币 {obligation['amount']} 元" in item
    signer_label = {"party": "当事人", "mediator": "调解员", "body_seal": "调解组织印章"}
    assert page["signatures"] == {
        (signer_label[s["signer"]], s["name"], METHOD_LABELS[s["method"]]) for s in agreement["signatures"]
    }
    assert dispute["case_number"] in html
    assert agreement["content_hash"] in html
    return page


# ---- sessions -----------------------------------------------------------------------------------


async def test_a_session_is_scheduled_and_recorded_on_the_timeline(api):
    dispute = await api.drive("mediating")
    before = await api.timeline_count(dispute["id"])

    response = await _schedule(api, dispute)
    assert response.status_code == 201, response.text
    session = response.json()
    assert (session["status"], session["place"], session["online"]) == (
        "scheduled",
        "枫源村调委会调解室",
        False,
    )
    assert session["mediator_name"] == dispute["mediator_name"]
    assert _etag(response) == f'"{session["version"]}"'
    timeline = await api.timeline(dispute)
    assert len(timeline) == before + 1
    assert timeline[-1]["action"] == "schedule_session"
    assert timeline[-1]["payload"]["session_id"] == session["id"]
    assert (timeline[-1]["from_status"], timeline[-1]["to_status"]) == ("mediating", "mediating")

    recorded = await _record(api, dispute, session, _minutes(dispute, "continued"))
    assert recorded.status_code == 200, recorded.text
    held = recorded.json()
    assert (held["status"], held["outcome"]) == ("held", "continued")
    assert held["minutes"] == "调解员向双方释明法律规定, 双方陈述意见。"
    assert {a["name"] for a in held["attendees"]} == {"张三", "李四"}
    assert held["version"] == session["version"] + 1
    # Continuing does not end mediation.
    assert (await api.get(dispute))["status"] == "mediating"
    timeline = await api.timeline(dispute)
    assert [e["action"] for e in timeline[-2:]] == ["schedule_session", "record_session"]
    assert timeline[-1]["payload"]["outcome"] == "continued"

    listed = await api.client.get(f"/v1/disputes/{dispute['id']}/sessions")
    assert [(s["id"], s["status"]) for s in listed.json()] == [(session["id"], "held")]

    # Recorded once only: a second record is a conflict, even with the new ETag.
    again = await _record(
        api, dispute, held, _minutes(dispute, "party_refused", party_id=_party(dispute, "respondent")["id"])
    )
    assert _problem(again, 409, "/problems/conflict")["code"] == "session_recorded"
    assert (await api.get(dispute))["status"] == "mediating"
    assert await api.timeline_count(dispute["id"]) == before + 2


@pytest.mark.parametrize(
    "scheduled_at",
    [
        # Converting these to UTC overflows: they were a 500 until times got a range.
        "0001-01-01T00:00:00+08:00",
        "9999-12-31T23:59:59-05:00",
        "1989-12-31T23:59:59+00:00",
        "2100-01-01T08:00:00+08:00",
    ],
)
async def test_a_time_outside_1990_2099_is_refused_and_nothing_is_written(api, scheduled_at):
    dispute = await api.drive("mediating")
    before = await api.timeline_count(dispute["id"])

    refused = await _schedule(api, dispute, scheduled_at=scheduled_at)
    assert _field_codes(refused) == {"date_out_of_range"}
    assert _problem(refused, 422, "/problems/validation-error")["errors"][0]["field"] == "scheduled_at"
    assert (await api.client.get(f"/v1/disputes/{dispute['id']}/sessions")).json() == []
    assert await api.timeline_count(dispute["id"]) == before
    # A time without its offset is refused for that, before its range is looked at.
    assert _field_codes(await _schedule(api, dispute, scheduled_at="2026-06-01T09:00:00")) == {
        "timezone_missing"
    }
    # The bounds themselves are inside, in any offset (the first instant only to be refused as
    # before mediation began, which is no longer a matter of range).
    assert (await _schedule(api, dispute, scheduled_at="2100-01-01T07:59:59+08:00")).status_code == 201
    assert _field_codes(await _schedule(api, dispute, scheduled_at="1990-01-01T08:00:00+08:00")) == {
        "before_mediation"
    }
    # A list filtered from such a time is refused the same way.
    listed = await api.client.get("/v1/disputes", params={"created_from": scheduled_at})
    assert _field_codes(listed) == {"date_out_of_range"}


@pytest.mark.parametrize("due_on", ["9999-12-31", "0001-01-01", "1989-12-31", "2100-01-01"])
async def test_a_day_outside_1990_2099_is_refused(api, due_on):
    dispute = await api.drive("mediating")
    content = api.agreement_content(dispute)
    content["obligations"][0]["due_on"] = due_on
    refused = await api.client.post(
        f"/v1/disputes/{dispute['id']}/agreements", json=content, headers=api.acting("body_mediator", dispute)
    )
    problem = _problem(refused, 422, "/problems/validation-error")
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [
        ("obligations[0].due_on", "date_out_of_range")
    ]
    assert (await api.client.get(f"/v1/disputes/{dispute['id']}/agreements")).json() == []


async def test_an_obligations_errors_name_its_field_as_request_validation_does(api):
    dispute = await api.drive("mediating")
    stranger = api.agreement_content(dispute)
    stranger["obligations"][0]["obligee_party_id"] = "00000000-0000-4000-8000-000000000001"
    early = api.agreement_content(dispute)
    early["obligations"][0]["due_on"] = "2000-01-01"
    for content, expected in (
        (stranger, ("obligations[0].obligee_party_id", "unknown_party")),
        (early, ("obligations[0].due_on", "before_application")),
    ):
        refused = await api.client.post(
            f"/v1/disputes/{dispute['id']}/agreements",
            json=content,
            headers=api.acting("body_mediator", dispute),
        )
        problem = _problem(refused, 422, "/problems/validation-error")
        assert [(e["field"], e["code"]) for e in problem["errors"]] == [expected]


@pytest.mark.parametrize("action", ["withdraw", "transfer", "fail", "agree"])
async def test_sittings_still_to_come_are_cancelled_when_mediation_at_the_body_ends(api, action):
    """A case withdrawn (人民调解法 Art. 23), ended without agreement, agreed or sent to another
    body: the body's sittings still to be held will not be, and are not left "scheduled" for a
    mediator to summon the parties to. A sitting already held stays as it was."""
    dispute = await api.drive("mediating")
    held = (await _schedule(api, dispute)).json()
    assert (await _record(api, dispute, held, _minutes(dispute, "continued"))).status_code == 200
    coming = (await _schedule(api, dispute, scheduled_at="2026-06-08T09:00:00+08:00")).json()
    if action == "agree":
        await api.signed_agreement(dispute)  # drafting and each signature have entries of their own
    dispute = await api.get(dispute)
    before = await api.timeline_count(dispute["id"])

    ended = await api.step(dispute, action)
    assert ended["status"] != "mediating"
    listed = await api.client.get(f"/v1/disputes/{dispute['id']}/sessions", headers=api.auth("supervisor"))
    assert {s["id"]: s["status"] for s in listed.json()} == {held["id"]: "held", coming["id"]: "cancelled"}
    assert await api.timeline_count(dispute["id"]) == before + 1  # the action's entry alone
    refused = await _record(
        api, dispute, {**coming, "version": coming["version"] + 1}, _minutes(dispute, "continued")
    )
    if action == "transfer":
        assert refused.status_code == 404, refused.text  # the case is no longer the body's
    else:
        assert refused.status_code == 409 and refused.json()["code"] == "session_cancelled", refused.text


async def test_recording_a_session_needs_if_match_and_a_body_role(api):
    dispute = await api.drive("mediating")
    session = (await _schedule(api, dispute, place=None, online=True)).json()
    body = _minutes(dispute, "continued")

    _problem(
        await _record(api, dispute, session, body, if_match=None), 428, "/problems/precondition-required"
    )
    _problem(await _record(api, dispute, session, body, if_match='"999"'), 412, "/problems/stale-version")
    _problem(await _record(api, dispute, session, body, role="clerk"), 403, "/problems/forbidden")
    # Nor may a clerk schedule one.
    _problem(await _schedule(api, dispute, role="clerk"), 403, "/problems/forbidden")

    listed = (await api.client.get(f"/v1/disputes/{dispute['id']}/sessions")).json()
    assert [(s["status"], s["minutes"]) for s in listed] == [("scheduled", None)]


@pytest.mark.parametrize("outcome", ["party_refused", "termination_demanded"])
async def test_a_party_refusing_or_demanding_termination_ends_mediation(api, outcome):
    dispute = await api.drive("mediating")
    respondent = _party(dispute, "respondent")
    session = (await _schedule(api, dispute)).json()

    # The party must be named.
    assert "party_missing" in _field_codes(await _record(api, dispute, session, _minutes(dispute, outcome)))

    response = await _record(api, dispute, session, _minutes(dispute, outcome, party_id=respondent["id"]))
    assert response.status_code == 200, response.text
    assert (response.json()["outcome"], response.json()["party_id"]) == (outcome, respondent["id"])

    after = await api.get(dispute)
    assert after["status"] == "mediation_failed"
    assert after["outcome"]["fail"]["reason_code"] == "party_refused"
    consent = {p["id"]: p["consent"] for p in after["parties"]}
    if outcome == "party_refused":
        assert consent[respondent["id"]] == "refused"
    assert consent[_party(dispute, "applicant")["id"]] != "refused"
    timeline = await api.timeline(dispute)
    assert [e["action"] for e in timeline[-2:]] == ["record_session", "fail"]
    assert (timeline[-1]["from_status"], timeline[-1]["to_status"]) == ("mediating", "mediation_failed")

    # Mediation is over: no more sessions.
    refused = await _schedule(api, after)
    assert refused.status_code == 409, refused.text


async def test_work_refused_in_the_cases_state_names_what_the_caller_could_do_instead(api):
    """A 409 `invalid-transition` from case work says, as the lifecycle actions' does, which
    lifecycle actions the caller's role may take from the case's state, each once."""
    dispute = await api.drive("mediation_failed")
    refused = await _schedule(api, dispute)
    problem = _problem(refused, 409, "/problems/invalid-transition")
    assert problem["status_now"] == "mediation_failed"
    rows = transitions_from("mediation_failed")
    offered = list(dict.fromkeys(t.action.value for t in rows if Role.body_mediator in t.roles))
    assert offered and problem["allowed_actions"] == offered
    assert (await api.get(dispute))["version"] == dispute["version"]


# ---- the agreement as data (Art. 29) ------------------------------------------------------------


async def test_an_incomplete_draft_is_saved_but_cannot_be_signed(api):
    dispute = await api.drive("mediating")
    draft = await api.draft_agreement(
        dispute, facts="", disputed_matters="", responsibility="", terms=[], obligations=[]
    )
    assert draft["status"] == "draft" and draft["number"] == 1
    missing = {m["code"]: m for m in draft["missing"]}
    assert set(missing) == {
        "facts_missing",
        "disputed_matters_missing",
        "responsibility_missing",
        "content_missing",
    }
    assert {m["article"] for m in draft["missing"]} == {ART_29}
    before = await api.timeline_count(dispute["id"])

    response = await api.sign(
        dispute, draft, signer="party", party_id=_party(dispute, "applicant")["id"], method="in_person"
    )
    problem = _problem(response, 422, "/problems/guard-failed")
    reasons = {r["code"]: r for r in problem["reasons"]}
    assert set(reasons) == set(missing)
    assert {r["article"] for r in problem["reasons"]} == {ART_29}

    stored = await _agreement(api, dispute, draft)
    assert stored["signatures"] == []
    assert stored["version"] == draft["version"]
    assert stored["status"] == "draft"
    assert len(stored["awaiting_signatures"]) == 4
    assert await api.timeline_count(dispute["id"]) == before
    # Nor can `agree` record it.
    assert (await api.act(dispute, "agree", {"agreement_id": draft["id"]})).status_code == 422
    assert (await api.get(dispute))["status"] == "mediating"


async def test_a_party_without_an_id_number_blocks_signing(api):
    nameless = {**person("respondent", "李四", 2), "id_type": None, "id_number": None}
    dispute = await api.drive("mediating", parties=[person("applicant", "张三", 1), nameless])
    draft = await api.draft_agreement(dispute)
    assert [m["code"] for m in draft["missing"]] == ["party_identity_missing"]
    assert "李四" in draft["missing"][0]["message"]
    assert draft["missing"][0]["article"] == ART_29

    response = await api.sign(dispute, draft, signer="mediator", method="in_person")
    problem = _problem(response, 422, "/problems/guard-failed")
    assert [r["code"] for r in problem["reasons"]] == ["party_identity_missing"]
    assert (await _agreement(api, dispute, draft))["signatures"] == []


# ---- signatures ---------------------------------------------------------------------------------


async def test_every_signature_is_needed_and_the_last_one_sets_the_local_effective_date(api, clock):
    dispute = await api.drive("mediating")
    draft = await api.draft_agreement(dispute)
    assert draft["missing"] == []
    waiting = [(w["signer"], w["party_id"], w["name"]) for w in draft["awaiting_signatures"]]
    assert waiting == [
        ("party", _party(dispute, "applicant")["id"], "张三"),
        ("party", _party(dispute, "respondent")["id"], "李四"),
        ("mediator", None, dispute["mediator_name"]),
        ("body_seal", None, VILLAGE_BODY),
    ]
    # 16:30 UTC on 2 June is already 3 June in Beijing.
    clock.at = datetime(2026, 6, 2, 16, 30, tzinfo=UTC)
    signatures = [
        {
            "signer": "party",
            "party_id": waiting[0][1],
            "method": "in_person",
            "signed_at": "2026-06-02T10:00:00+08:00",
        },
        {
            "signer": "party",
            "party_id": waiting[1][1],
            "method": "fingerprint",
            "signed_at": "2026-06-02T10:05:00+08:00",
        },
        {"signer": "mediator", "method": "in_person"},
    ]
    agreement = draft
    for count, signature in enumerate(signatures, start=1):
        response = await api.sign(dispute, agreement, **signature)
        assert response.status_code == 200, response.text
        agreement = response.json()
        assert agreement["status"] == "draft"
        assert agreement["effective_on"] is None
        assert len(agreement["signatures"]) == count
        assert len(agreement["awaiting_signatures"]) == 4 - count
    assert [w["signer"] for w in agreement["awaiting_signatures"]] == ["body_seal"]

    # `agree` with a version still missing the seal is refused, naming who has not signed.
    dispute = await api.get(dispute)
    response = await api.act(dispute, "agree", {"agreement_id": agreement["id"]})
    reasons = {r["code"]: r for r in _problem(response, 422, "/problems/guard-failed")["reasons"]}
    assert set(reasons) == {"agreement_unsigned"}
    assert VILLAGE_BODY in reasons["agreement_unsigned"]["message"]
    assert reasons["agreement_unsigned"]["article"] == ART_29
    assert (await api.get(dispute))["status"] == "mediating"

    response = await api.sign(dispute, agreement, signer="body_seal", method="seal")
    assert response.status_code == 200, response.text
    agreement = response.json()
    assert agreement["status"] == "effective"
    assert agreement["effective_on"] == "2026-06-03"
    assert agreement["awaiting_signatures"] == [] and agreement["missing"] == []
    assert {(s["signer"], s["name"], s["method"]) for s in agreement["signatures"]} == {
        ("party", "张三", "in_person"),
        ("party", "李四", "fingerprint"),
        ("mediator", dispute["mediator_name"], "in_person"),
        ("body_seal", VILLAGE_BODY, "seal"),
    }
    # An effective version takes no more signatures.
    late = await api.sign(dispute, agreement, signer="mediator", method="in_person")
    assert _problem(late, 409, "/problems/conflict")["code"] == "agreement_effective"

    moved = await api.step(dispute, "agree", {"agreement_id": agreement["id"]})
    assert moved["status"] == "agreement_signed"
    assert moved["agreement_effective_on"] == "2026-06-03"
    assert moved["agreement"]["id"] == agreement["id"]


def _company(role: str, name: str) -> dict:
    first17 = "91330681MA2D00001"
    return {
        "role": role,
        "kind": "organisation",
        "name": name,
        "id_type": "uscc",
        "id_number": first17 + uscc.calc_check_digit(first17),
        "phone": "0575-87001234",
        "address": "浙江省诸暨市枫桥镇工业区",
    }


async def test_a_fingerprint_is_a_natural_persons_and_anyone_may_seal(api):
    """人民调解法 Art. 29: each party signs, seals or puts a fingerprint on the agreement: a company
    cannot fingerprint; a natural person may seal with a personal seal (私章), as a company does."""
    firm_name = "诸暨市某某建材有限公司"
    dispute = await api.drive(
        "mediating", parties=[person("applicant", "张三", 1), _company("respondent", firm_name)]
    )
    draft = await api.draft_agreement(dispute)
    assert draft["missing"] == []
    applicant, firm = _party(dispute, "applicant")["id"], _party(dispute, "respondent")["id"]

    fingerprinted = await api.sign(dispute, draft, signer="party", party_id=firm, method="fingerprint")
    [error] = _problem(fingerprinted, 422, "/problems/validation-error")["errors"]
    assert (error["field"], error["code"]) == ("method", "method_not_for_party_kind")
    assert firm_name in error["message"] and "按指印" in error["message"]
    english = await api.client.post(
        f"/v1/disputes/{dispute['id']}/agreements/{draft['id']}/signatures",
        json={"signer": "party", "party_id": firm, "method": "fingerprint"},
        headers={
            **api.acting("body_mediator", dispute),
            "Accept-Language": "en",
            "If-Match": f'"{draft["version"]}"',
        },
    )
    [error] = _problem(english, 422, "/problems/validation-error")["errors"]
    assert error["message"].startswith(f"Party {firm_name} is an organisation")
    assert (await _agreement(api, dispute, draft))["signatures"] == []

    # The person's personal seal, the company's seal; elsewhere a fingerprint, a representative's hand.
    for party_id, method in ((applicant, "seal"), (firm, "seal")):
        response = await api.sign(dispute, draft, signer="party", party_id=party_id, method=method)
        assert response.status_code == 200, response.text
        draft = response.json()
    stored = await _agreement(api, dispute, draft)
    assert [(s["party_id"], s["method"]) for s in stored["signatures"]] == [
        (applicant, "seal"),
        (firm, "seal"),
    ]
    other = await api.drive(
        "mediating", parties=[person("applicant", "王五", 3), _company("respondent", firm_name)]
    )
    other_draft = await api.draft_agreement(other)
    for role, method in (("respondent", "in_person"), ("applicant", "fingerprint")):
        signed = await api.sign(
            other, other_draft, signer="party", party_id=_party(other, role)["id"], method=method
        )
        assert signed.status_code == 200, signed.text
        other_draft = signed.json()


async def test_an_electronic_signature_must_sign_the_current_content(api):
    dispute = await api.drive("mediating")
    draft = await api.draft_agreement(dispute)
    applicant = _party(dispute, "applicant")["id"]
    assert re.fullmatch(r"[0-9a-f]{64}", draft["content_hash"])

    wrong = "0" * 64 if draft["content_hash"] != "0" * 64 else "1" * 64
    response = await api.sign(
        dispute, draft, signer="party", party_id=applicant, method="electronic", document_hash=wrong
    )
    assert "document_hash_mismatch" in _field_codes(response)
    assert (await _agreement(api, dispute, draft))["signatures"] == []
    # An electronic signature without the hash of what was signed is malformed.
    response = await api.sign(dispute, draft, signer="party", party_id=applicant, method="electronic")
    assert response.status_code == 422, response.text

    response = await api.sign(
        dispute,
        draft,
        signer="party",
        party_id=applicant,
        method="electronic",
        document_hash=draft["content_hash"],
    )
    assert response.status_code == 200, response.text
    (signature,) = response.json()["signatures"]
    assert (signature["method"], signature["document_hash"], signature["name"]) == (
        "electronic",
        draft["content_hash"],
        "张三",
    )


async def test_a_signer_signs_once_and_not_in_the_future(api, clock):
    dispute = await api.drive("mediating")
    draft = await api.draft_agreement(dispute)
    applicant = _party(dispute, "applicant")["id"]

    future = (clock.now() + timedelta(hours=1)).isoformat()
    response = await api.sign(
        dispute, draft, signer="party", party_id=applicant, method="in_person", signed_at=future
    )
    assert "implausible" in _field_codes(response)
    assert (await _agreement(api, dispute, draft))["signatures"] == []

    first = await api.sign(dispute, draft, signer="party", party_id=applicant, method="in_person")
    assert first.status_code == 200, first.text
    again = await api.sign(dispute, first.json(), signer="party", party_id=applicant, method="fingerprint")
    assert _problem(again, 409, "/problems/conflict")["code"] == "already_signed"
    stored = await _agreement(api, dispute, draft)
    assert [(s["name"], s["method"]) for s in stored["signatures"]] == [("张三", "in_person")]

    # Only the body handling the case records signatures.
    clerk = await api.client.post(
        f"/v1/disputes/{dispute['id']}/agreements/{draft['id']}/signatures",
        json={"signer": "mediator", "method": "in_person"},
        headers=api.auth("clerk"),
    )
    _problem(clerk, 403, "/problems/forbidden")
    assert len((await _agreement(api, dispute, draft))["signatures"]) == 1


async def test_an_oral_agreement_takes_effect_on_the_mediators_record(api):
    dispute = await api.drive("mediating")
    draft = await api.draft_agreement(dispute, form="oral")
    assert draft["form"] == "oral" and draft["missing"] == []
    assert [(w["signer"], w["name"]) for w in draft["awaiting_signatures"]] == [
        ("mediator", dispute["mediator_name"])
    ]
    # The parties do not sign an oral agreement.
    response = await api.sign(
        dispute, draft, signer="party", party_id=_party(dispute, "applicant")["id"], method="in_person"
    )
    assert "not_a_signatory" in _field_codes(response)

    response = await api.sign(dispute, draft, signer="mediator", method="recorded")
    assert response.status_code == 200, response.text
    agreement = response.json()
    assert agreement["status"] == "effective"
    assert agreement["effective_on"] == api.today.isoformat()
    assert [(s["signer"], s["method"]) for s in agreement["signatures"]] == [("mediator", "recorded")]
    assert (await api.step(dispute, "agree", {"agreement_id": agreement["id"]}))[
        "status"
    ] == "agreement_signed"


# ---- an agreement in effect binds: the case records it before anything else -----------------------

BINDS = "人民调解法 第二十九条、第三十条、第三十一条"


@pytest.mark.parametrize(
    ("action", "role"),
    [
        ("fail", "body_mediator"),
        ("withdraw", "clerk"),
        ("withdraw", "body_mediator"),
        ("transfer", "body_admin"),
        ("transfer", "clerk"),
        ("escalate", "body_admin"),
        ("refer_arbitration", "body_admin"),
    ],
)
async def test_a_case_whose_agreement_took_effect_records_it_before_ending_or_moving(api, action, role):
    """人民调解法 Art. 29-31: once every party, the mediator and the body have signed, the agreement
    binds the parties, and its performance is followed up (Art. 31) and may be confirmed (Art. 33).
    Failing, withdrawing, transferring or escalating the case, or sending a labour case to
    arbitration (劳动争议调解仲裁法 Art. 14: only without an agreement), would drop it: refused
    until `agree` records it. A party's wish to end mediation (Art. 23) comes too late then."""
    labour = action == "refer_arbitration"
    dispute = await api.drive("mediating", **({"category": "labour"} if labour else {}))
    payload = None
    if labour:
        last_day = date.fromisoformat(dispute["clock"]["due_on"])
        api.app.state.clock.at += timedelta(days=(last_day - api.today).days + 1)
        payload = {"commission_id": str(api.bodies["labour_commission"])}
    agreement = await api.signed_agreement(dispute)
    dispute = await api.get(dispute)

    response = await api.act(dispute, action, payload, role=role)
    reasons = {r["code"]: r for r in _problem(response, 422, "/problems/guard-failed")["reasons"]}
    assert reasons["agreement_in_effect"]["article"] == BINDS
    assert "第1版调解协议已经生效" in reasons["agreement_in_effect"]["message"]
    assert "请先记录「达成协议」" in reasons["agreement_in_effect"]["message"]
    after = await api.get(dispute)
    assert (after["status"], after["version"]) == ("mediating", dispute["version"])
    listed = await api.client.get(f"/v1/disputes/{dispute['id']}/actions", headers=api.acting(role, dispute))
    offered = next(a for a in listed.json() if a["action"] == action)
    assert "agreement_in_effect" in {r["code"] for r in offered["blocked_by"]}
    assert offered["allowed_for_caller"] is False

    agreed = await api.step(after, "agree", {"agreement_id": agreement["id"]})
    assert agreed["agreement"]["id"] == agreement["id"]


async def test_a_refusal_of_mediation_is_not_recorded_once_the_agreement_binds(api):
    """人民调解法 Art. 29-31: mediation ended in the agreement in effect; a party's refusal to be
    mediated (Art. 17) comes too late, and would leave the case neither agreed nor ended."""
    dispute = await api.drive("mediating")
    agreement = await api.signed_agreement(dispute)
    dispute = await api.get(dispute)
    respondent = _party(dispute, "respondent")
    refused = await api.client.post(
        f"/v1/disputes/{dispute['id']}/parties/{respondent['id']}/consent",
        json={"decision": "refused"},
        headers=api.headers("clerk", **{"If-Match": f'"{dispute["version"]}"'}),
    )
    problem = _problem(refused, 409, "/problems/conflict")
    assert problem["code"] == "agreement_in_effect" and "第1版调解协议已经生效" in problem["detail"]
    assert (await api.get(dispute))["version"] == dispute["version"]
    assert (await api.step(dispute, "agree", {"agreement_id": agreement["id"]}))[
        "status"
    ] == "agreement_signed"


async def test_a_draft_not_yet_in_effect_does_not_hold_the_case(api):
    dispute = await api.drive("mediating")
    draft = await api.draft_agreement(dispute)
    await api.sign(
        dispute, draft, signer="party", party_id=_party(dispute, "applicant")["id"], method="in_person"
    )
    failed = await api.step(await api.get(dispute), "fail")
    assert failed["status"] == "mediation_failed"


async def test_an_overdue_obligation_is_followed_up_by_the_body_now_holding_the_case(api):
    """人民调解法 Art. 31: the body holding the case follows up its agreement's performance. A case
    that reached another body after its agreement took effect (handed on before that was refused)
    has its follow-ups raised for that body, which alone sees the case, not for the drafting one."""
    dispute, agreement = await _agreed(api, first_due=1, second_due=30)
    assert agreement["body_id"] == str(api.bodies["village"])
    async with api.app.state.db.writer() as session, session.begin():
        await session.execute(
            update(Dispute).where(Dispute.id == uuid.UUID(dispute["id"])).values(body_id=api.bodies["town"])
        )
    api.app.state.clock.at += timedelta(days=3)
    assert (await _tick(api)).obligations_overdue == 1

    assert (await _follow_ups(api)).json()["items"] == []
    (task,) = (await _follow_ups(api, body="town", as_="town")).json()["items"]
    assert task["body_id"] == str(api.bodies["town"])
    overdue = [e for e in await api.timeline(dispute) if e["action"] == "obligation_overdue"]
    assert overdue[-1]["payload"]["body_id"] == str(api.bodies["town"])
    result = await api.client.post(
        f"/v1/follow-ups/{task['id']}/result",
        json={"contacted_on": api.today.isoformat(), "method": "phone", "outcome": "performing"},
        headers={**api.auth("body_mediator", "town"), **await api.case_if_match(dispute["id"])},
    )
    assert result.status_code == 200, result.text


async def test_an_oral_agreement_needs_a_mediator_to_record_it(api):
    """人民调解法 Art. 28, 30: the mediator records an oral agreement, which takes effect on that
    record; on a case with no mediator it is refused as a written draft is (mediator_missing)."""
    dispute = await api.intake()
    for action in ("accept", "assign"):
        dispute = await api.step(dispute, action)
    dispute = await api.step(dispute, "sign_for", {})
    assert dispute["mediator_id"] is None
    draft = await api.draft_agreement(dispute, form="oral")
    [missing] = draft["missing"]
    assert (missing["code"], missing["article"]) == ("mediator_missing", "人民调解法 第二十八条")
    refused = await api.sign(dispute, draft, signer="mediator", method="recorded")
    assert "mediator_missing" in {
        r["code"] for r in _problem(refused, 422, "/problems/guard-failed")["reasons"]
    }
    stored = await _agreement(api, dispute, draft)
    assert (stored["status"], stored["signatures"]) == ("draft", [])
    response = await api.act(await api.get(dispute), "agree", {"agreement_id": draft["id"]})
    assert "mediator_missing" in {
        r["code"] for r in _problem(response, 422, "/problems/guard-failed")["reasons"]
    }


# ---- a signed version does not change; a change is a new version -------------------------------


async def test_a_draft_is_edited_until_the_first_signature(api):
    dispute = await api.drive("mediating")
    draft = await api.draft_agreement(dispute)
    url = f"/v1/disputes/{dispute['id']}/agreements/{draft['id']}"
    changed = api.agreement_content(dispute, responsibility="双方各负一半责任。")
    changed["obligations"][0]["amount"] = "600.00"

    headers = api.acting("body_mediator", dispute)
    _problem(await api.client.put(url, json=changed, headers=headers), 428, "/problems/precondition-required")
    response = await api.client.put(
        url, json=changed, headers={**headers, "If-Match": f'"{draft["version"]}"'}
    )
    assert response.status_code == 200, response.text
    edited = response.json()
    assert edited["responsibility"] == "双方各负一半责任。"
    assert edited["obligations"][0]["amount"] == "600.00"
    assert edited["content_hash"] != draft["content_hash"]
    assert edited["version"] == draft["version"] + 1
    assert _etag(response) == f'"{edited["version"]}"'
    # The old ETag is stale now.
    stale = await api.client.put(url, json=changed, headers={**headers, "If-Match": f'"{draft["version"]}"'})
    _problem(stale, 412, "/problems/stale-version")

    signed = await api.sign(
        dispute, edited, signer="party", party_id=_party(dispute, "applicant")["id"], method="in_person"
    )
    assert signed.status_code == 200, signed.text
    signed = signed.json()
    again = api.agreement_content(dispute, responsibility="被申请人负全部责任。")
    response = await api.client.put(
        url, json=again, headers={**headers, "If-Match": f'"{signed["version"]}"'}
    )
    problem = _problem(response, 409, "/problems/conflict")
    assert problem["code"] == "agreement_signed"
    stored = await _agreement(api, dispute, draft)
    assert stored["responsibility"] == "双方各负一半责任。"
    assert stored["content_hash"] == edited["content_hash"]
    assert len(stored["signatures"]) == 1


@pytest.mark.parametrize(
    ("signer", "method"), [("party", "in_person"), ("party", "fingerprint"), ("body_seal", "seal")]
)
async def test_a_signature_is_recorded_only_against_the_version_the_signer_saw(api, signer, method):
    """人民调解法 Art. 29: a party is bound by the text it signed. A signature names the version
    its signer was shown (If-Match), whatever the method: one for a draft edited since is refused
    and nothing is recorded; the text as it stands is read, shown and signed."""
    dispute = await api.drive("mediating")
    seen = await api.draft_agreement(dispute)  # shown to the signer: 1200 yuan
    url = f"/v1/disputes/{dispute['id']}/agreements/{seen['id']}"
    headers = api.acting("body_mediator", dispute)
    changed = api.agreement_content(dispute)
    changed["obligations"][0]["amount"] = "600.00"
    edited = await api.client.put(url, json=changed, headers={**headers, "If-Match": f'"{seen["version"]}"'})
    assert edited.status_code == 200, edited.text

    signature = {"signer": signer, "method": method}
    if signer == "party":
        signature["party_id"] = _party(dispute, "applicant")["id"]
    missing = await api.client.post(f"{url}/signatures", json=signature, headers=headers)
    _problem(missing, 428, "/problems/precondition-required")
    stale = await api.sign(dispute, seen, **signature)
    assert _problem(stale, 412, "/problems/stale-version")["current_etag"] == _etag(edited)
    stored = await _agreement(api, dispute, seen)
    assert stored["signatures"] == [] and stored["obligations"][0]["amount"] == "600.00"

    signed = await api.sign(dispute, edited.json(), **signature)
    assert signed.status_code == 200, signed.text
    assert _etag(signed) == f'"{edited.json()["version"] + 1}"'
    assert [s["method"] for s in signed.json()["signatures"]] == [method]


async def test_a_superseded_draft_is_not_edited_and_says_so(api):
    """A version superseded before anyone signed it is refused as superseded, not as signed."""
    dispute = await api.drive("mediating")
    first = await api.draft_agreement(dispute)
    await api.draft_agreement(dispute)
    old = await _agreement(api, dispute, first)
    assert (old["status"], old["signatures"]) == ("superseded", [])
    response = await api.client.put(
        f"/v1/disputes/{dispute['id']}/agreements/{first['id']}",
        json=api.agreement_content(dispute, responsibility="双方各负一半责任。"),
        headers={**api.acting("body_mediator", dispute), "If-Match": f'"{old["version"]}"'},
    )
    problem = _problem(response, 409, "/problems/conflict")
    assert problem["code"] == "agreement_superseded" and "已被取代" in problem["detail"]
    assert (await _agreement(api, dispute, first))["responsibility"] == old["responsibility"]


async def test_a_new_version_supersedes_the_old_and_needs_its_own_signatures(api):
    dispute = await api.drive("mediating")
    first = await api.draft_agreement(dispute)
    applicant = _party(dispute, "applicant")["id"]
    signed = await api.sign(dispute, first, signer="party", party_id=applicant, method="in_person")
    assert signed.status_code == 200, signed.text

    second = await api.draft_agreement(dispute, responsibility="双方各负一半责任。")
    assert (second["number"], second["supersedes_id"], second["status"]) == (2, first["id"], "draft")
    assert second["signatures"] == []
    assert len(second["awaiting_signatures"]) == 4
    assert second["content_hash"] != first["content_hash"]

    old = await _agreement(api, dispute, first)
    assert old["status"] == "superseded"
    assert [(s["name"], s["method"]) for s in old["signatures"]] == [("张三", "in_person")]
    listed = (await api.client.get(f"/v1/disputes/{dispute['id']}/agreements")).json()
    assert [(a["number"], a["status"]) for a in listed] == [(1, "superseded"), (2, "draft")]

    # The superseded version takes no signature and cannot be agreed.
    late = await api.sign(dispute, old, signer="mediator", method="in_person")
    assert _problem(late, 409, "/problems/conflict")["code"] == "agreement_superseded"
    refused = await api.act(dispute, "agree", {"agreement_id": first["id"]})
    assert "agreement_superseded" in {
        r["code"] for r in _problem(refused, 422, "/problems/guard-failed")["reasons"]
    }

    # The applicant's signature on version 1 does not count for version 2.
    response = await api.act(await api.get(dispute), "agree", {"agreement_id": second["id"]})
    reasons = {r["code"]: r for r in _problem(response, 422, "/problems/guard-failed")["reasons"]}
    assert "张三" in reasons["agreement_unsigned"]["message"]

    effective = await api.sign_all(dispute, second)
    assert (effective["number"], effective["status"]) == (2, "effective")
    moved = await api.step(await api.get(dispute), "agree", {"agreement_id": second["id"]})
    assert moved["agreement"]["id"] == second["id"]


# ---- the printable document ---------------------------------------------------------------------


async def test_the_printable_agreement_and_the_stored_document_show_everything(api):
    dispute = await api.drive("mediating")
    draft = await api.draft_agreement(dispute, obligations=_two_obligations(api, dispute))
    applicant, respondent = _party(dispute, "applicant")["id"], _party(dispute, "respondent")["id"]
    for signature in (
        {"signer": "party", "party_id": applicant, "method": "fingerprint"},
        {
            "signer": "party",
            "party_id": respondent,
            "method": "electronic",
            "document_hash": draft["content_hash"],
        },
        {"signer": "mediator", "method": "in_person"},
        {"signer": "body_seal", "method": "seal"},
    ):
        response = await api.sign(dispute, draft, **signature)
        assert response.status_code == 200, response.text
        draft = response.json()
    agreement = draft
    assert agreement["status"] == "effective"

    response = await api.client.get(f"/v1/disputes/{dispute['id']}/agreements/{agreement['id']}/document")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    page = _assert_page_shows(html, dispute, agreement)
    assert {label for _, _, label in page["signatures"]} == {"按指印", "电子签名", "本人签名", "盖章"}
    assert "支付人民币 800.00 元" in html and "加装屋檐排水槽" in html
    assert "已生效" in html and f"本协议于{_cn_date(agreement['effective_on'])}生效" in html
    assert "待签署" not in html

    api.agreements[dispute["id"]] = agreement["id"]
    await api.step(dispute, "agree")
    documents = (await api.client.get(f"/v1/disputes/{dispute['id']}/documents")).json()
    stored = [d for d in documents if d["kind"] == "agreement"]
    assert len(stored) == 1
    assert stored[0]["generated"] is True
    content = await api.client.get(stored[0]["href"])
    assert content.status_code == 200, content.text
    assert content.headers["content-type"].startswith("text/html")
    # The contract declares what the download serves, generated pages included.
    download = api.app.openapi()["paths"]["/v1/disputes/{dispute_id}/documents/{document_id}/content"]["get"]
    assert "text/html" in download["responses"]["200"]["content"]
    stored_html = content.content.decode("utf-8")
    assert _read_page(stored_html) == page
    _assert_page_shows(stored_html, dispute, agreement)


async def test_a_draft_document_names_who_has_yet_to_sign(api):
    dispute = await api.drive("mediating")
    draft = await api.draft_agreement(dispute)
    response = await api.sign(
        dispute, draft, signer="party", party_id=_party(dispute, "applicant")["id"], method="in_person"
    )
    agreement = response.json()
    html = (await api.client.get(f"/v1/disputes/{dispute['id']}/agreements/{draft['id']}/document")).text
    assert _read_page(html)["signatures"] == {("当事人", "张三", "本人签名")}
    for name in ("李四", dispute["mediator_name"], VILLAGE_BODY):
        assert f"待签署: {name}" in html
    assert "本协议尚未生效" in html
    assert agreement["content_hash"] in html


async def test_the_printable_oral_agreement_states_the_law_of_oral_agreements(api):
    """人民调解法 Art. 30: an oral agreement takes effect when reached, recorded by the mediator; it
    bears no seal and is not confirmed by a court (the service refuses that). The page says so, and
    not the written agreement's rules."""
    dispute = await api.drive("mediating")
    oral = await api.signed_agreement(dispute, form="oral")
    html = (await api.client.get(f"/v1/disputes/{dispute['id']}/agreements/{oral['id']}/document")).text
    assert "口头调解协议记录" in html and "人民调解法第二十八条、第三十条" in html
    assert "口头调解协议不能申请司法确认" in html
    assert "加盖调解组织印章后生效" not in html and "三十日内共同向" not in html
    written = await api.drive("mediating")
    agreement = await api.signed_agreement(written)
    html = (await api.client.get(f"/v1/disputes/{written['id']}/agreements/{agreement['id']}/document")).text
    assert "加盖调解组织印章后生效" in html and "三十日内共同向" in html and "口头" not in html


# ---- performance (Art. 31) ----------------------------------------------------------------------


async def test_performing_every_obligation_moves_the_case_to_performed(api):
    dispute, agreement = await _agreed(api)
    first, second = agreement["obligations"]
    assert (first["status"], second["status"]) == ("pending", "pending")

    # Plausibility: not in the future, not before the agreement took effect.
    future = await _perform(api, dispute, first, api.today + timedelta(days=1))
    assert "implausible" in _field_codes(future)
    earlier = await _perform(api, dispute, first, api.today - timedelta(days=1))
    assert "implausible" in _field_codes(earlier)
    # Only the body records performance.
    _problem(await _perform(api, dispute, first, role="clerk"), 403, "/problems/forbidden")
    assert [o["status"] for o in (await _agreement(api, dispute, agreement))["obligations"]] == [
        "pending",
        "pending",
    ]

    before = await api.timeline_count(dispute["id"])
    response = await _perform(api, dispute, first)
    assert response.status_code == 200, response.text
    performed = response.json()
    assert (performed["id"], performed["status"]) == (first["id"], "performed")
    assert performed["performed_on"] == api.today.isoformat()
    assert performed["performance_note"] == "申请人确认已收到"
    after = await api.get(dispute)
    assert after["status"] == "agreement_signed"
    assert _etag(response) == f'"{after["version"]}"'
    timeline = await api.timeline(dispute)
    assert len(timeline) == before + 1
    assert timeline[-1]["action"] == "record_obligation_performance"
    assert timeline[-1]["payload"]["obligation_id"] == first["id"]
    assert (timeline[-1]["from_status"], timeline[-1]["to_status"]) == (
        "agreement_signed",
        "agreement_signed",
    )

    again = await _perform(api, dispute, first)
    _problem(again, 409, "/problems/conflict")

    response = await _perform(api, dispute, second)
    assert response.status_code == 200, response.text
    done = await api.get(dispute)
    assert done["status"] == "performed"
    assert done["outcome"]["record_performance"]["performed_on"] == api.today.isoformat()
    timeline = await api.timeline(dispute)
    assert [e["action"] for e in timeline[-2:]] == ["record_obligation_performance", "record_performance"]
    assert (timeline[-1]["from_status"], timeline[-1]["to_status"]) == ("agreement_signed", "performed")
    stored = await _agreement(api, dispute, agreement)
    assert [o["status"] for o in stored["obligations"]] == ["performed", "performed"]


async def test_record_performance_marks_every_remaining_obligation_performed(api):
    dispute, agreement = await _agreed(api)
    first, second = agreement["obligations"]
    response = await _perform(api, dispute, first)
    assert response.status_code == 200, response.text
    first_on = api.today

    api.app.state.clock.at += timedelta(days=2)
    dispute = await api.get(dispute)
    moved = await api.step(
        dispute, "record_performance", {"performed_on": api.today.isoformat(), "note": "登记履行完毕"}
    )
    assert moved["status"] == "performed"
    stored = await _agreement(api, dispute, agreement)
    assert [(o["id"], o["status"], o["performed_on"]) for o in stored["obligations"]] == [
        (first["id"], "performed", first_on.isoformat()),
        (second["id"], "performed", api.today.isoformat()),
    ]
    assert stored["obligations"][1]["performance_note"] == "登记履行完毕"
    assert (await api.timeline(dispute))[-1]["action"] == "record_performance"


# ---- overdue obligations and the body's follow-ups ----------------------------------------------


async def test_an_overdue_obligation_raises_one_follow_up_in_the_bodys_inbox(api):
    dispute, agreement = await _agreed(api, first_due=10, second_due=12)
    first = agreement["obligations"][0]

    api.app.state.clock.at += timedelta(days=10)  # the due day itself: still in time
    assert (await _tick(api)).obligations_overdue == 0
    assert (await _follow_ups(api)).json()["items"] == []

    api.app.state.clock.at += timedelta(days=1)
    report = await _tick(api)
    assert (report.obligations_overdue, report.failed) == (1, 0)
    stored = await _agreement(api, dispute, agreement)
    assert [o["status"] for o in stored["obligations"]] == ["overdue", "pending"]
    assert stored["obligations"][0]["overdue_since"] == api.today.isoformat()

    inbox = await _follow_ups(api)
    assert inbox.status_code == 200, inbox.text
    (task,) = inbox.json()["items"]
    assert (task["obligation_id"], task["dispute_id"], task["case_number"]) == (
        first["id"],
        dispute["id"],
        dispute["case_number"],
    )
    assert (task["status"], task["kind"], task["body_id"]) == (
        "open",
        "performance",
        str(api.bodies["village"]),
    )
    assert first["due_on"] in task["reason"] and "800.00" in task["reason"]
    assert task["due_on"] > api.today.isoformat()

    # Exactly once: the next tick finds nothing to do.
    assert (await _tick(api)).obligations_overdue == 0
    assert len((await _follow_ups(api)).json()["items"]) == 1
    timeline = await api.timeline(dispute)
    overdue = [e for e in timeline if e["action"] == "obligation_overdue"]
    assert len(overdue) == 1
    assert (overdue[0]["actor_role"], overdue[0]["payload"]["obligation_id"]) == ("system", first["id"])
    assert overdue[0]["payload"]["follow_up_id"] == task["id"]
    assert (await api.get(dispute))["status"] == "agreement_signed"

    # Another body sees neither the inbox nor the task.
    assert (await _follow_ups(api, as_="other_village")).status_code == 404
    result = {
        "contacted_on": api.today.isoformat(),
        "method": "phone",
        "outcome": "performing",
        "note": "已电话督促",
    }
    other = await api.client.post(
        f"/v1/follow-ups/{task['id']}/result",
        json=result,
        headers={**api.auth("body_mediator", "other_village"), **await api.case_if_match(dispute["id"])},
    )
    _problem(other, 404, "/problems/not-found")

    response = await api.client.post(
        f"/v1/follow-ups/{task['id']}/result",
        json=result,
        headers={**api.auth("body_mediator", "village"), **await api.case_if_match(dispute["id"])},
    )
    assert response.status_code == 200, response.text
    closed = response.json()
    assert (closed["status"], closed["result"]["outcome"], closed["case_number"]) == (
        "done",
        "performing",
        dispute["case_number"],
    )
    assert (await _follow_ups(api)).json()["items"] == []
    assert [t["id"] for t in (await _follow_ups(api, status="done")).json()["items"]] == [task["id"]]
    assert (await api.timeline(dispute))[-1]["action"] == "complete_follow_up"
    again = await api.client.post(
        f"/v1/follow-ups/{task['id']}/result",
        json=result,
        headers={**api.auth("body_mediator", "village"), **await api.case_if_match(dispute["id"])},
    )
    _problem(again, 409, "/problems/conflict")


async def test_a_follow_up_finding_the_obligation_performed_records_it_performed(api):
    # 人民调解法 Art. 31: what the body learns on its follow-up is the record of performance; the
    # obligation must not stay overdue (the statistics and the labour guard read it).
    dispute, agreement = await _agreed(api, first_due=1, second_due=2)
    api.app.state.clock.at += timedelta(days=3)
    assert (await _tick(api)).obligations_overdue == 2
    tasks = {t["obligation_id"]: t for t in (await _follow_ups(api)).json()["items"]}
    first, second = agreement["obligations"]
    performing = {"contacted_on": api.today.isoformat(), "method": "phone", "outcome": "performing"}
    response = await api.client.post(
        f"/v1/follow-ups/{tasks[first['id']]['id']}/result",
        json=performing,
        headers={**api.auth("body_mediator"), **await api.case_if_match(dispute["id"])},
    )
    assert response.status_code == 200, response.text
    stored = await _agreement(api, dispute, agreement)
    assert [o["status"] for o in stored["obligations"]] == ["overdue", "overdue"]  # still only promised

    done = {
        "contacted_on": api.today.isoformat(),
        "method": "visit",
        "outcome": "performed",
        "note": "已付清",
    }
    response = await api.client.post(
        f"/v1/follow-ups/{tasks[second['id']]['id']}/result",
        json=done,
        headers={**api.auth("body_mediator"), **await api.case_if_match(dispute["id"])},
    )
    assert response.status_code == 200, response.text
    stored = await _agreement(api, dispute, agreement)
    assert [(o["status"], o["performed_on"]) for o in stored["obligations"]] == [
        ("overdue", None),
        ("performed", api.today.isoformat()),
    ]
    assert (await api.get(dispute))["status"] == "agreement_signed"  # one obligation is still open


async def test_an_obligation_due_on_a_rest_day_is_in_time_to_the_next_working_day(api):
    # Due on Saturday 6 June 2026: the day runs to Monday 8 June (民法典 Art. 203), so the
    # obligation is overdue from Tuesday, not from Sunday.
    _, agreement = await _agreed(api, first_due=5, second_due=12)
    assert agreement["obligations"][0]["due_on"] == "2026-06-06"
    for day, expected in ((7, 0), (8, 0), (9, 1)):
        api.app.state.clock.at = api.app.state.clock.at.replace(day=day)
        assert (await _tick(api)).obligations_overdue == expected, day


async def test_an_obligation_of_a_closed_case_is_not_chased(api):
    # Confirmed by the court and closed: enforcement is the court's now. An instalment falling due
    # after that raises no follow-up and writes nothing on the closed case.
    dispute, _ = await _agreed(api, first_due=10, second_due=12)
    dispute = await api.target_accepts(await api.step(dispute, "request_confirmation"))
    closed = await api.step(await api.step(dispute, "confirm"), "close")
    assert closed["status"] == "closed"
    api.app.state.clock.at += timedelta(days=20)
    report = await _tick(api)
    assert (report.obligations_overdue, report.failed) == (0, 0)
    tasks = (await _follow_ups(api)).json()["items"]
    assert [t["kind"] for t in tasks if t["kind"] == "performance"] == []
    assert (await api.get(dispute))["version"] == closed["version"]


async def test_performing_an_overdue_obligation_closes_its_follow_up(api):
    dispute, agreement = await _agreed(api, first_due=3, second_due=30)
    first, second = agreement["obligations"]
    api.app.state.clock.at += timedelta(days=5)
    assert (await _tick(api)).obligations_overdue == 1
    (task,) = (await _follow_ups(api)).json()["items"]
    assert task["obligation_id"] == first["id"]

    response = await _perform(api, dispute, first)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "performed"
    assert (await _follow_ups(api)).json()["items"] == []
    (done,) = (await _follow_ups(api, status="done")).json()["items"]
    assert (done["id"], done["result"]["outcome"]) == (task["id"], "performed")
    assert done["result"]["performed_on"] == api.today.isoformat()

    # A performed obligation is never overdue, however late the clock runs.
    api.app.state.clock.at += timedelta(days=40)
    assert (await _tick(api)).obligations_overdue == 1  # the second one only
    open_tasks = (await _follow_ups(api)).json()["items"]
    assert [t["obligation_id"] for t in open_tasks] == [second["id"]]


async def test_recording_performance_of_everything_closes_open_follow_ups(api):
    dispute, agreement = await _agreed(api, first_due=3, second_due=4)
    api.app.state.clock.at += timedelta(days=6)
    assert (await _tick(api)).obligations_overdue == 2
    assert len((await _follow_ups(api)).json()["items"]) == 2

    moved = await api.step(await api.get(dispute), "record_performance")
    assert moved["status"] == "performed"
    stored = await _agreement(api, dispute, agreement)
    assert [o["status"] for o in stored["obligations"]] == ["performed", "performed"]
    # Nothing is left to follow up once every obligation is recorded as performed.
    assert (await _follow_ups(api)).json()["items"] == []


async def test_an_obligations_amount_is_answered_in_yuan_and_fen(api):
    dispute = await api.drive("mediating")
    content = api.agreement_content(dispute)
    content["obligations"][0]["amount"] = "1.2e3"
    drafted = await api.draft_agreement(dispute, obligations=content["obligations"])
    assert drafted["obligations"][0]["amount"] == "1200.00"
    read = await api.client.get(f"/v1/disputes/{dispute['id']}/agreements/{drafted['id']}")
    assert read.json()["obligations"][0]["amount"] == "1200.00"
