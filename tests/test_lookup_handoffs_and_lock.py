"""The parties' status lookup once the case has left the center, and its query codes kept from
being guessed per case, over real HTTP on SQLite and PostgreSQL.

A party whose case went to a court or a commission is told which, its case number there, the day
by which it must decide, and after judicial confirmation the ruling and the last day to apply for
enforcement (民事诉讼法 Art. 250); an applicant whose labour arbitration commission let its period
pass is told it may sue (劳动争议调解仲裁法 Art. 29, 43). Wrong query codes for one case, from any
address, lock its lookup until they are older than the window or the center gives a new code,
and the center is alerted; a number
that names no case is answered exactly alike. The page says how to get a new code, and marks its
fields for a phone's screen reader.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mediation.audit.chain import AuditEntry, append
from mediation.bodies.models import Body
from mediation.core.db import utcnow
from mediation.core.principal import Principal, Role
from mediation.disputes.lookup import LOOKUP_ACTIONS, REISSUE_ACTIONS
from tests.support import Api
from tests.test_decline_notice import section
from tests.test_lookup_review import _known_code
from tests.test_outcome_routes import _answer, _past
from tests.test_web import Page

ANONYMOUS = {"Authorization": ""}


@asynccontextmanager
async def _from(app: Any, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://mediation.test") as client:
        yield client


async def _lookup(
    api: Api, dispute: dict[str, Any], code: str, *, language: str = "zh", address: str = "127.0.0.1"
) -> httpx.Response:
    async with _from(api.app, address) as party:
        return await party.post(
            "/v1/status-lookup",
            json={"case_number": dispute["case_number"], "query_code": code},
            headers={"Accept-Language": language},
        )


async def _answer_of(api: Api, dispute: dict[str, Any], code: str, language: str = "zh") -> dict[str, Any]:
    response = await _lookup(api, dispute, code, language=language)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _input(html: str, element_id: str) -> str:
    found = re.search(rf'<input id="{element_id}"[^>]*>', html)
    assert found, html[:3000]
    return found.group(0)


async def _name(api: Api, body: str) -> str:
    async with api.app.state.db.reader() as session:
        name = await session.scalar(select(Body.name).where(Body.id == api.bodies[body]))
        assert name is not None
        return str(name)


# ---- the case at a court ------------------------------------------------------------------------------


async def test_a_party_follows_a_confirmation_request_to_the_ruling_and_the_last_day_for_enforcement(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.drive("confirmation_pending")
    code = await _known_code(api, dispute)
    court = await _name(api, "court")
    pending = await _answer_of(api, dispute, code)
    handoff = pending["handoff"]
    accept_by = dispute["handoff"]["accept_due_on"]
    assert (handoff["kind"], handoff["target_name"], handoff["status"]) == (
        "judicial_confirmation",
        court,
        "pending",
    )
    assert (handoff["due_on"], handoff["target_case_number"]) == (accept_by, None)
    assert (
        court in pending["next_step"] and accept_by in pending["next_step"] and "受理" in pending["next_step"]
    )

    dispute = await api.target_accepts(dispute, case_number="(2026)浙0681民特7号")
    accepted = await _answer_of(api, dispute, code)
    decide_by = dispute["handoff"]["decide_due_on"]
    assert (accepted["handoff"]["target_case_number"], accepted["handoff"]["due_on"]) == (
        "(2026)浙0681民特7号",
        decide_by,
    )
    assert "(2026)浙0681民特7号" in accepted["next_step"] and decide_by in accepted["next_step"]

    ruling = {
        "ruling_number": "(2026)浙0681民特7号",
        "ruled_on": api.today.isoformat(),
        "note": "承办法官王某某意见",
    }
    dispute = await api.step(dispute, "confirm", ruling)
    enforcement_by = (await api.handoff(dispute))["handoff"]["enforcement_deadline"]
    assert enforcement_by  # 民事诉讼法 Art. 250, as the handoff counted it
    confirmed = await _answer_of(api, dispute, code)
    assert confirmed["handoff"]["ruling_number"] == "(2026)浙0681民特7号"
    assert (confirmed["handoff"]["ruled_on"], confirmed["handoff"]["enforcement_deadline"]) == (
        api.today.isoformat(),
        enforcement_by,
    )
    assert confirmed["handoff"]["due_on"] is None
    assert "强制执行" in confirmed["next_step"] and enforcement_by in confirmed["next_step"]
    assert "第二百五十条" in confirmed["next_step"]
    # To the court that confirmed it: 法释〔2011〕5号 Art. 9, with 民事诉讼法 Art. 206.
    assert (
        "该法院申请强制执行 (最高人民法院关于人民调解协议司法确认程序的若干规定 第九条"
        in confirmed["next_step"]
    )
    english = await _answer_of(api, dispute, code, "en")
    assert "enforcement" in english["next_step"] and enforcement_by in english["next_step"]
    assert english["handoff"]["kind_label"] == "Judicial confirmation request"
    # The court's note and the parties stay off the anonymous lookup.
    for said in ("王某某", *(p["name"] for p in dispute["parties"])):
        assert said not in str(confirmed) and said not in str(english)

    page = await Page(web).post("/lookup", {"case_number": dispute["case_number"], "query_code": code})
    assert page.status_code == 200, page.text[:2000]
    shown = section(page.text, 'id="lookup-result"')
    assert court in shown and enforcement_by in shown and "(2026)浙0681民特7号" in shown


async def test_a_case_not_yet_handed_on_has_no_handoff(api: Api) -> None:
    dispute = await api.intake()
    answer = await _answer_of(api, dispute, dispute["query_code"])
    assert answer["handoff"] is None and answer["next_step"] == "中心正在审查是否受理"


# ---- labour arbitration: the road to court -----------------------------------------------------------


async def _labour_referral(api: Api) -> tuple[dict[str, Any], str]:
    dispute = await api.drive("mediation_failed", category="labour")
    dispute = await api.step(
        dispute, "refer_arbitration", {"commission_id": str(api.bodies["labour_commission"])}
    )
    return dispute, await _known_code(api, dispute)


async def test_an_applicant_is_told_when_the_labour_commission_must_accept_and_that_it_may_sue_after(
    api: Api,
) -> None:
    dispute, code = await _labour_referral(api)
    commission = await _name(api, "labour_commission")
    due = dispute["handoff"]["accept_due_on"]
    waiting = await _answer_of(api, dispute, code)
    assert waiting["handoff"]["target_name"] == commission and waiting["handoff"]["due_on"] == due
    assert due in waiting["next_step"] and "第二十九条" in waiting["next_step"]

    _past(api, due)
    overdue = await _answer_of(api, dispute, code)
    assert "向人民法院提起诉讼" in overdue["next_step"] and "第二十九条" in overdue["next_step"]
    assert "未在" in overdue["next_step"] and due in overdue["next_step"]
    english = await _answer_of(api, dispute, code, "en")
    assert "may take the labour dispute to the people's court" in english["next_step"]


async def test_an_applicant_is_told_it_may_sue_once_no_award_came_within_the_period(api: Api) -> None:
    dispute, code = await _labour_referral(api)
    dispute = await api.target_accepts(dispute, case_number="劳人仲案字2号")
    due = dispute["handoff"]["decide_due_on"]
    running = await _answer_of(api, dispute, code)
    assert running["handoff"]["target_case_number"] == "劳人仲案字2号" and running["handoff"]["due_on"] == due
    assert "仲裁裁决" in running["next_step"] and "第四十三条" in running["next_step"]
    _past(api, due)
    overdue = await _answer_of(api, dispute, code)
    assert "未在" in overdue["next_step"] and "向人民法院提起诉讼" in overdue["next_step"]
    assert "第四十三条" in overdue["next_step"]


async def test_an_applicant_whose_labour_commission_did_not_accept_is_told_it_may_sue(api: Api) -> None:
    dispute, code = await _labour_referral(api)
    handoff = (await api.handoff(dispute))["handoff"]
    response = await _answer(api, handoff, "acceptance", {"decision": "not_accepted", "reason_code": "other"})
    assert response.status_code == 200, response.text
    answer = await _answer_of(api, dispute, code)
    assert answer["status"] == "mediation_failed" and answer["handoff"]["status"] == "not_accepted"
    assert "不予受理" in answer["next_step"] and "第二十九条" in answer["next_step"]
    assert "向人民法院提起诉讼" in answer["next_step"]


# ---- wrong query codes, per case ---------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [{"lookup_max_failures": 3}], ids=["3-wrong"])
async def test_wrong_codes_from_many_addresses_lock_the_case_until_the_center_gives_a_new_code(
    api: Api,
) -> None:
    dispute = await api.intake()
    right = dispute["query_code"]
    for n in range(3):
        refused = await _lookup(api, dispute, "WRONGCD2", address=f"198.51.100.{n + 1}")
        assert refused.status_code == 404, refused.text
    # Locked: the right code is refused too, from an address that never guessed, and exactly as a
    # number that names no case is.
    locked = await _lookup(api, dispute, right, address="203.0.113.9")
    unknown = await _lookup(api, {"case_number": "330681-2026-999999"}, right, address="203.0.113.9")
    assert locked.status_code == unknown.status_code == 404
    assert locked.json() == unknown.json()
    assert "受理窗口重新获取查询码" in locked.json()["detail"]

    # The center is asked for a new code, once.
    listed = await api.client.get("/v1/alerts", params={"kind": "query_code"}, headers=api.auth("supervisor"))
    assert listed.status_code == 200, listed.text
    [alert] = [a for a in listed.json()["items"] if a["case_count"] == 1]
    assert dispute["case_number"] in alert["title"] and alert["status"] == "open"

    dispute = await api.get(dispute)
    reissued = await api.client.post(
        f"/v1/disputes/{dispute['id']}/query-code",
        json={"cause": "lost"},
        headers={**api.auth("clerk"), "If-Match": f'"{dispute["version"]}"'},
    )
    assert reissued.status_code == 200, reissued.text
    new = reissued.json()["query_code"]
    assert (await _lookup(api, dispute, new, address="203.0.113.9")).status_code == 200
    after = await api.client.get(f"/v1/alerts/{alert['id']}", headers=api.auth("supervisor"))
    assert after.json()["status"] == "resolved", after.text


@pytest.mark.parametrize("overrides", [{"lookup_max_failures": 3}], ids=["3-wrong"])
async def test_a_lookup_found_locked_asks_for_a_new_code_when_the_wrong_codes_passed_the_limit_unseen(
    api: Api,
) -> None:
    """Wrong codes given at the same moment each read the count before the others' refusals were
    recorded, and may carry it past the limit with none of them the one that reached it: the next
    refusal, finding the lookup locked, asks for a new code."""
    dispute = await api.intake()
    case_id = (await api.get(dispute))["id"]
    # Four refusals recorded as the lookup records them, none of which raised the alert.
    wrong = AuditEntry.by(
        Principal(role=Role.party, id="anonymous@198.51.100.1", kind="anonymous"),
        "status_lookup",
        "denied",
        object_type="dispute",
        object_id=case_id,
        status_code=404,
        client_address="198.51.100.1",
        details={"case_number": dispute["case_number"], "method": "POST", "path": "/v1/status-lookup"},
    )
    async with api.app.state.db.writer() as session, session.begin():
        await append(session, [wrong] * 4, utcnow())

    async def alerts() -> list[dict[str, Any]]:
        listed = await api.client.get(
            "/v1/alerts", params={"kind": "query_code"}, headers=api.auth("supervisor")
        )
        assert listed.status_code == 200, listed.text
        return [a for a in listed.json()["items"] if dispute["case_number"] in a["title"]]

    assert await alerts() == []
    assert (await _lookup(api, dispute, "WRONGCD2", address="198.51.100.2")).status_code == 404
    [alert] = await alerts()
    assert alert["status"] == "open"
    # Asked once: the refusals after it leave the alert as it is.
    assert (await _lookup(api, dispute, dispute["query_code"], address="198.51.100.3")).status_code == 404
    [again] = await alerts()
    assert again["id"] == alert["id"] and again["version"] == alert["version"]


@pytest.mark.parametrize("overrides", [{"lookup_max_failures": 3}], ids=["3-wrong"])
async def test_a_right_code_starts_the_count_again_and_a_number_naming_no_case_locks_nothing(
    api: Api,
) -> None:
    dispute = await api.intake()
    right = dispute["query_code"]
    for _ in range(2):
        assert (await _lookup(api, dispute, "WRONGCD2", address="198.51.100.1")).status_code == 404
    assert (await _lookup(api, dispute, right, address="198.51.100.2")).status_code == 200
    for _ in range(2):
        assert (await _lookup(api, dispute, "WRONGCD2", address="198.51.100.3")).status_code == 404
    assert (await _lookup(api, dispute, right, address="198.51.100.4")).status_code == 200


@pytest.mark.parametrize("overrides", [{"lookup_max_failures": 2}], ids=["2-wrong"])
async def test_wrong_codes_older_than_the_window_no_longer_count(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    dispute = await api.intake()
    # A wrong code recorded 25 hours ago (the audit trail's own time, which the count reads).
    monkeypatch.setattr("mediation.audit.recorder.utcnow", lambda: utcnow() - timedelta(hours=25))
    assert (await _lookup(api, dispute, "WRONGCD2", address="198.51.100.1")).status_code == 404
    monkeypatch.setattr("mediation.audit.recorder.utcnow", utcnow)
    assert (await _lookup(api, dispute, "WRONGCD2", address="198.51.100.2")).status_code == 404
    assert (await _lookup(api, dispute, dispute["query_code"], address="198.51.100.3")).status_code == 200


@pytest.mark.parametrize("overrides", [{"anonymous_rate_limit_per_minute": 3}], ids=["3-per-minute"])
async def test_a_party_checking_often_with_the_right_code_uses_up_no_allowance(api: Api) -> None:
    dispute = await api.intake()
    async with _from(api.app, "198.51.100.50") as party:
        for _ in range(5):
            answer = await party.post(
                "/v1/status-lookup",
                json={"case_number": dispute["case_number"], "query_code": dispute["query_code"]},
            )
            assert answer.status_code == 200, answer.text


# ---- the page on a phone ----------------------------------------------------------------------------


async def test_the_page_marks_a_wrong_code_for_screen_readers_and_says_how_to_get_a_new_one(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.intake()
    page = Page(web)
    blank = await page.get("/lookup")
    code_input = _input(blank.text, "f-lookup-query_code")
    for attribute in ('autocapitalize="characters"', 'spellcheck="false"', 'autocorrect="off"'):
        assert attribute in code_input
    refused = await page.post("/lookup", {"case_number": dispute["case_number"], "query_code": "WRONGCD2"})
    assert refused.status_code == 404
    message = section(refused.text, 'id="lookup-error"')
    assert "请携带身份证件到受理窗口重新获取查询码" in message and "data-focus" in message
    for field in ("case_number", "query_code"):
        typed = _input(refused.text, f"f-lookup-{field}")
        assert 'aria-invalid="true"' in typed and 'aria-describedby="lookup-error"' in typed

    invalid = await page.post("/lookup", {"case_number": dispute["case_number"], "query_code": ""})
    assert invalid.status_code == 422
    summary = section(invalid.text, 'class="error-summary"')
    assert 'href="#f-lookup-query_code"' in summary and "查询码" in summary
    typed = _input(invalid.text, "f-lookup-query_code")
    assert 'aria-invalid="true"' in typed and 'aria-describedby="f-lookup-query_code-error"' in typed
    assert 'id="f-lookup-query_code-error"' in invalid.text

    answered = await page.post(
        "/lookup", {"case_number": dispute["case_number"], "query_code": dispute["query_code"]}
    )
    assert answered.status_code == 200
    assert "data-focus" in section(answered.text, 'id="lookup-result"')


def test_the_lookup_routes_are_named_as_the_count_of_wrong_codes_reads_them(api: Api) -> None:
    """The audit record names a request by its route's name, which the count of wrong codes reads:
    the lookups and the new code, on the API and the pages, keep those names."""
    case = "00000000-0000-0000-0000-000000000000"
    app = api.app
    assert [app.url_path_for(name) for name in LOOKUP_ACTIONS] == ["/v1/status-lookup", "/lookup"]
    assert {app.url_path_for(name, dispute_id=case) for name in REISSUE_ACTIONS} == {
        f"/v1/disputes/{case}/query-code"
    }
