"""The parties' status lookup once the case has left the center, and its query codes kept from
being guessed per case, over real HTTP on SQLite and PostgreSQL.

A party whose case went to a court or a commission is told which, its case number there, the day
by which it must decide, and after judicial confirmation the ruling and the last day to apply for
enforcement (民事诉讼法 Art. 250); an applicant whose labour arbitration commission let its period
pass is told it may sue (劳动争议调解仲裁法 Art. 29, 43). Wrong query codes for one case, from any
address, bring on waits between the codes examined, doubling up to a few minutes, that a stranger
cannot stretch into a lock on the party, and the center is alerted; a number that names no case, a
wrong code and a wait answer exactly alike, after the same work. The page says how to get a new
code, and marks its fields for a phone's screen reader.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from mediation.audit.chain import AuditEntry, append
from mediation.audit.models import AuditRecord
from mediation.bodies.models import Body
from mediation.core.db import utcnow
from mediation.core.principal import Principal, Role
from mediation.core.settings import Settings
from mediation.disputes import lookup, service
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


# A lookup refused during a wait, as the audit trail names it (disputes.lookup.WAITED).
WAITED = ("status_lookup_waited", "lookup_waited")


class _AuditTime:
    """The audit trail's time, as the refusals are recorded in it and as the lookup reads it against
    them (not the service's clock), set by the test."""

    def __init__(self) -> None:
        self.at = utcnow()

    def __call__(self) -> datetime:
        return self.at

    def passes(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def audit_time(monkeypatch: pytest.MonkeyPatch) -> _AuditTime:
    time = _AuditTime()
    monkeypatch.setattr("mediation.audit.recorder.utcnow", time)
    monkeypatch.setattr("mediation.disputes.service.utcnow", time)
    return time


async def _query_code_alerts(api: Api, dispute: dict[str, Any]) -> list[dict[str, Any]]:
    listed = await api.client.get("/v1/alerts", params={"kind": "query_code"}, headers=api.auth("supervisor"))
    assert listed.status_code == 200, listed.text
    return [a for a in listed.json()["items"] if dispute["case_number"] in a["title"]]


async def _lookups_recorded(api: Api, dispute: dict[str, Any]) -> dict[str, int]:
    """The case's lookups in the audit trail, by action and outcome."""
    case_id = (await api.get(dispute))["id"]
    async with api.app.state.db.reader() as session:
        rows = await session.execute(
            select(AuditRecord.action, AuditRecord.outcome).where(AuditRecord.object_id == case_id)
        )
        counted: dict[str, int] = {}
        for action, outcome in rows:
            if action in (*LOOKUP_ACTIONS, *WAITED):
                counted[f"{action}:{outcome}"] = counted.get(f"{action}:{outcome}", 0) + 1
        return counted


def _wrong_codes(case_id: str, case_number: str, n: int) -> list[AuditEntry]:
    """`n` refusals of wrong codes for the case, recorded as the lookup records them."""
    return [
        AuditEntry.by(
            Principal(role=Role.party, id=f"anonymous@198.51.100.{i % 250 + 1}", kind="anonymous"),
            "status_lookup",
            "denied",
            object_type="dispute",
            object_id=case_id,
            status_code=404,
            client_address=f"198.51.100.{i % 250 + 1}",
            details={"case_number": case_number, "method": "POST", "path": "/v1/status-lookup"},
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(
    "overrides", [{"lookup_max_failures": 3, "lookup_max_wait_seconds": 300}], ids=["3-wrong-300s"]
)
async def test_a_strangers_burst_keeps_the_right_code_out_no_longer_than_the_longest_wait(
    api: Api, audit_time: _AuditTime
) -> None:
    """Anyone who knows a case number could once lock its lookup for a day with ten wrong codes,
    and again the next day: now the party who holds the code is kept out at most the longest wait
    after the stranger's last wrong code, and trying during it does not lengthen it."""
    dispute = await api.intake()
    case_id = (await api.get(dispute))["id"]
    burst_at = audit_time.at
    async with api.app.state.db.writer() as session, session.begin():
        await append(session, _wrong_codes(case_id, dispute["case_number"], 40), burst_at)

    audit_time.passes(299)
    waiting = await _lookup(api, dispute, dispute["query_code"], address="203.0.113.9")
    assert waiting.status_code == 404, waiting.text
    audit_time.passes(1)
    assert (await _lookup(api, dispute, dispute["query_code"], address="203.0.113.9")).status_code == 200
    recorded = await _lookups_recorded(api, dispute)
    assert recorded == {
        "status_lookup:denied": 40,
        "status_lookup_waited:denied": 1,
        "status_lookup:success": 1,
    }


@pytest.mark.parametrize(
    "overrides", [{"lookup_max_failures": 3, "lookup_max_wait_seconds": 300}], ids=["3-wrong-300s"]
)
async def test_guessing_waits_longer_after_each_wrong_code_and_codes_given_meanwhile_go_unexamined(
    api: Api, web: httpx.AsyncClient, audit_time: _AuditTime
) -> None:
    dispute = await api.intake()
    right = dispute["query_code"]
    for n in range(3):  # the free ones, from anywhere
        assert (await _lookup(api, dispute, "WRONGCD2", address=f"198.51.100.{n + 1}")).status_code == 404
    # The center is asked for a new code once the waits begin, once.
    [alert] = await _query_code_alerts(api, dispute)
    assert alert["status"] == "open" and "3" in alert["title"]

    # The first wait, 1 s: the right code given during it, from an address that never guessed, is
    # refused unexamined, on the page as on the API.
    assert (await _lookup(api, dispute, right, address="203.0.113.9")).status_code == 404
    page = await Page(web).post("/lookup", {"case_number": dispute["case_number"], "query_code": right})
    assert page.status_code == 404
    audit_time.passes(1)
    assert (await _lookup(api, dispute, "WRONGCD3", address="198.51.100.4")).status_code == 404
    # The second, 2 s, from that wrong code; the codes refused during the first did not lengthen it.
    audit_time.passes(1.9)
    assert (await _lookup(api, dispute, "WRONGCD4", address="198.51.100.5")).status_code == 404
    audit_time.passes(0.1)
    assert (await _lookup(api, dispute, "WRONGCD5", address="198.51.100.6")).status_code == 404
    # The third, 4 s.
    audit_time.passes(3.9)
    assert (await _lookup(api, dispute, right, address="203.0.113.9")).status_code == 404
    audit_time.passes(0.1)
    assert (await _lookup(api, dispute, right, address="203.0.113.9")).status_code == 200

    assert await _lookups_recorded(api, dispute) == {
        "status_lookup:denied": 5,
        "status_lookup_waited:denied": 3,
        "lookup_waited:denied": 1,
        "status_lookup:success": 1,
    }
    [again] = await _query_code_alerts(api, dispute)
    assert again["id"] == alert["id"] and again["version"] == alert["version"]


@pytest.mark.parametrize("overrides", [{"lookup_max_failures": 3}], ids=["3-wrong"])
async def test_a_new_code_from_the_center_ends_the_wait_and_resolves_its_alert(
    api: Api, audit_time: _AuditTime
) -> None:
    dispute = await api.intake()
    for n in range(3):
        assert (await _lookup(api, dispute, "WRONGCD2", address=f"198.51.100.{n + 1}")).status_code == 404
    assert (await _lookup(api, dispute, dispute["query_code"], address="203.0.113.9")).status_code == 404
    [alert] = await _query_code_alerts(api, dispute)

    audit_time.passes(0.5)  # still within the first wait
    dispute = await api.get(dispute)
    reissued = await api.client.post(
        f"/v1/disputes/{dispute['id']}/query-code",
        json={"cause": "lost"},
        headers={**api.auth("clerk"), "If-Match": f'"{dispute["version"]}"'},
    )
    assert reissued.status_code == 200, reissued.text
    audit_time.passes(0.1)
    new = reissued.json()["query_code"]
    assert (await _lookup(api, dispute, new, address="203.0.113.9")).status_code == 200
    after = await api.client.get(f"/v1/alerts/{alert['id']}", headers=api.auth("supervisor"))
    assert after.json()["status"] == "resolved", after.text


@pytest.mark.parametrize("overrides", [{"lookup_max_failures": 3}], ids=["3-wrong"])
async def test_a_wait_asks_for_a_new_code_when_the_wrong_codes_passed_the_free_ones_unseen(
    api: Api, audit_time: _AuditTime
) -> None:
    """Wrong codes given at the same moment each read the count before the others' refusals were
    recorded, and may carry it past the free ones with none of them the one that used up the last:
    the next refusal, finding the case waiting, asks for a new code."""
    dispute = await api.intake()
    case_id = (await api.get(dispute))["id"]
    async with api.app.state.db.writer() as session, session.begin():
        await append(session, _wrong_codes(case_id, dispute["case_number"], 4), audit_time.at)
    assert await _query_code_alerts(api, dispute) == []
    assert (await _lookup(api, dispute, "WRONGCD2", address="198.51.100.2")).status_code == 404
    [alert] = await _query_code_alerts(api, dispute)
    assert alert["status"] == "open"
    # Asked once: the refusals after it leave the alert as it is.
    assert (await _lookup(api, dispute, dispute["query_code"], address="198.51.100.3")).status_code == 404
    [again] = await _query_code_alerts(api, dispute)
    assert again["id"] == alert["id"] and again["version"] == alert["version"]


def test_the_waits_keep_the_query_codes_out_of_reach() -> None:
    """The arithmetic of disputes/lookup.py: with the defaults, under 120,000 codes of one case are
    examined in a year, of 32^8 codes."""
    defaults = Settings.model_fields
    free = defaults["lookup_max_failures"].default
    longest = timedelta(seconds=defaults["lookup_max_wait_seconds"].default)
    counted = lookup.counted_failures(free, longest)
    waits = [lookup.wait_after(n, free, longest) for n in range(counted + 5)]
    assert waits[:free] == [timedelta(0)] * free
    assert waits[free : free + 3] == [timedelta(seconds=1), timedelta(seconds=2), timedelta(seconds=4)]
    # The count reads as many wrong codes as it takes to reach the longest wait, no more.
    assert waits[counted - 1] < longest
    assert waits[counted:] == [longest] * 5
    ramp = len([w for w in waits if timedelta(0) < w < longest])
    year = timedelta(days=365)
    examined = year / longest + 365 * (free + ramp)
    space = len(service.QUERY_CODE_ALPHABET) ** service.QUERY_CODE_LENGTH
    assert examined < 120_000 and examined / space < 1.1e-7


# ---- a refusal tells nothing ----------------------------------------------------------------------


async def _answered(
    api: Api, case_number: str, code: str, address: str
) -> tuple[httpx.Response, list[str], list[str]]:
    """The answer, the statements run before it was sent, and those run after."""
    before: list[str] = []
    after: list[str] = []
    answered = False

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        (after if answered else before).append(statement)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        async def noting(message: Any) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = True
            await send(message)

        await api.app(scope, receive, noting)

    db = api.app.state.db
    engines = {db.engine.sync_engine, db.write_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", note)
    try:
        async with _from(app, address) as party:
            response = await party.post(
                "/v1/status-lookup", json={"case_number": case_number, "query_code": code}
            )
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", note)
    return response, before, after


@pytest.mark.parametrize("overrides", [{"lookup_max_failures": 2}], ids=["2-wrong"])
async def test_an_unknown_number_a_wrong_code_and_a_wait_answer_alike_after_the_same_work(
    api: Api, audit_time: _AuditTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same answer, and before it the same statements and one check of the code each: how long
    it takes does not tell which numbers name cases, nor which are being guessed at. The alert a
    wait asks for is asked after the answer is sent."""
    guessed, other = await api.intake(), await api.intake()
    for n in range(2):
        assert (await _lookup(api, guessed, "WRONGCD2", address=f"198.51.100.{n + 1}")).status_code == 404
    checks: list[str] = []
    verify = getattr(service, "verify_query_code", None)

    def counted(case_number: str, code: str, expected: str) -> bool:
        checks.append(case_number)
        assert verify is not None
        return verify(case_number, code, expected)

    monkeypatch.setattr(service, "verify_query_code", counted, raising=False)
    unknown = await _answered(api, "330681-2026-999999", guessed["query_code"], "203.0.113.7")
    wrong = await _answered(api, other["case_number"], "WRONGCD2", "203.0.113.8")
    waiting = await _answered(api, guessed["case_number"], guessed["query_code"], "203.0.113.9")

    answers = [response for response, _, _ in (unknown, wrong, waiting)]
    assert {r.status_code for r in answers} == {404}
    assert answers[0].json() == answers[1].json() == answers[2].json()
    for response in answers:
        assert "retry-after" not in response.headers
    shown = [{k: v for k, v in r.headers.items() if k not in ("x-request-id", "date")} for r in answers]
    assert shown[0] == shown[1] == shown[2]

    statements = [before for _, before, _ in (unknown, wrong, waiting)]
    assert statements[0] and statements[0] == statements[1] == statements[2]
    # The code is checked once on each path, against a hash no code has where there is no case or
    # the wait has not passed.
    assert checks == ["330681-2026-999999", other["case_number"], guessed["case_number"]]
    # Which tells a party sure of the code to try again in a while.
    assert "几分钟后再试" in answers[0].json()["detail"]
    # The wait's refusal asked for the alert, once its answer was out.
    assert waiting[2] and not unknown[2]
    assert len(await _query_code_alerts(api, guessed)) == 1


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
