"""报告风险: staff on a case flag a danger they saw that no risk word names (人民调解法 Art. 25: a
dispute that may turn into a criminal or public-security case is reported to the police at once).
The flag does what risk words in the facts do: the case is marked at risk and waits for a
supervisor, its risk alert is raised or joined, and a case still at the center takes the tier for
risk cases. The body holding the case and the center's clerks and supervisors flag it; nobody else."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from mediation.alerts import detect
from tests.support import Api
from tests.test_corrections import correct, events_of
from tests.test_corrections_more import CALM, THREAT, alerts_of, facts, resolve
from tests.test_web import signed_in

# Danger in what the mediator saw, in words early warning does not read as a risk.
SEEN = "被申请人在调解现场情绪激动, 手持木棍称今晚去对方家里讨个说法, 联系电话13800001234"


def flags_url(dispute: dict[str, Any]) -> str:
    return f"/v1/disputes/{dispute['id']}/risk-flags"


def reported(api: Api, **overrides: Any) -> dict[str, Any]:
    """A flag of violence reported to the police an hour ago."""
    at = api.app.state.clock.now() - timedelta(hours=1)
    return {
        "danger": "violence",
        "observation": SEEN,
        "reported_to": "police",
        "reported_at": at.isoformat(),
        "report_department": "城关派出所",
        "report_reference": "JJ2026-0301",
        **overrides,
    }


async def flag(
    api: Api,
    dispute: dict[str, Any],
    body: dict[str, Any] | None = None,
    role: str = "body_mediator",
    *,
    version: int | None = None,
    headers: dict[str, str] | None = None,
    **extra: str,
) -> httpx.Response:
    return await api.client.post(
        flags_url(dispute),
        json=body if body is not None else reported(api),
        headers={
            **(headers if headers is not None else api.acting(role, dispute)),
            "If-Match": f'"{dispute["version"] if version is None else version}"',
            **extra,
        },
    )


async def unchanged_after(api: Api, dispute: dict[str, Any], response: httpx.Response, status: int) -> None:
    """Refused: the case, its timeline, its events and its alerts as they were."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    after = await api.get(dispute)
    assert after == {k: dispute[k] for k in after}
    assert not await events_of(api, dispute, "risk_flagged")
    assert not [e for e in await api.timeline(dispute) if e["action"] == "flag_risk"]
    assert not await alerts_of(api, dispute)


def test_what_the_mediator_saw_names_no_risk_word() -> None:
    assert not detect.risk_words(SEEN, detect.load())


# ---- who may flag ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["body_mediator", "body_admin", "clerk", "supervisor"])
async def test_staff_on_a_case_at_a_body_flag_it(api: Api, role: str) -> None:
    dispute = await api.drive("mediating", description=CALM)
    response = await flag(api, dispute, role=role)
    assert response.status_code == 200, response.text
    flagged = response.json()
    assert flagged["is_risk"] is True
    assert flagged["attention"] == "risk"
    assert response.headers["ETag"] == f'"{flagged["version"]}"'


@pytest.mark.parametrize("role", ["court", "arbitration", "auditor", "admin"])
async def test_roles_not_working_on_the_case_are_refused(api: Api, role: str) -> None:
    # Handed to a court: the court sees the case, and still flags nothing here.
    dispute = await api.drive("confirmation_pending", description=CALM)
    await unchanged_after(api, dispute, await flag(api, dispute, role=role), 403)


async def test_a_commission_that_has_the_case_is_refused(api: Api) -> None:
    dispute = await api.drive("referred_arbitration", description=CALM)
    response = await flag(api, dispute, role="arbitration")
    await unchanged_after(api, dispute, response, 403)


async def test_a_caller_without_credentials_is_refused(api: Api) -> None:
    dispute = await api.drive("mediating", description=CALM)
    response = await flag(api, dispute, headers={"Authorization": ""})
    assert response.status_code == 401, response.text
    assert not await events_of(api, dispute, "risk_flagged")


async def test_a_body_not_holding_the_case_and_another_center_do_not_see_it(api: Api) -> None:
    dispute = await api.drive("mediating", description=CALM)
    for headers in (api.auth("body_mediator", "town"), api.auth("clerk", "other_center")):
        await unchanged_after(api, dispute, await flag(api, dispute, headers=headers), 404)
    # A case still at the center is no body's.
    at_center = await api.intake(description=CALM)
    await unchanged_after(api, at_center, await flag(api, at_center, role="body_mediator"), 404)


@pytest.mark.parametrize("state", ["declined", "archived"])
async def test_a_case_declined_or_archived_is_not_flagged(api: Api, state: str) -> None:
    dispute = await api.drive(state, description=CALM)
    response = await flag(api, dispute, role="clerk")
    await unchanged_after(api, dispute, response, 409)
    assert response.json()["code"] == "case_closed"


# ---- what the flag does ---------------------------------------------------------------------------


async def test_a_flag_raises_the_case_risk_alert_with_the_report(api: Api) -> None:
    dispute = await api.drive("mediating", description=CALM)
    response = await flag(api, dispute)
    assert response.status_code == 200, response.text
    [alert] = await alerts_of(api, dispute)
    assert (alert["kind"], alert["level"], alert["status"]) == ("risk", "immediate", "open")
    details = alert["details"]
    assert details["source"] == "staff"
    assert details["kinds"] == ["violence"]
    assert details["words"] == []
    assert details["report"]["to"] == "police"
    assert details["report"]["department"] == "城关派出所"
    assert "第二十五条" in details["advice"]
    assert "调解员报告暴力威胁" in alert["title"]
    # The alert is on the timeline and in the feed, as one raised by risk words is.
    assert len(await events_of(api, dispute, "alert_raised")) == 1


async def test_a_flag_joins_the_case_open_risk_alert(api: Api) -> None:
    dispute = await api.intake(description=THREAT)
    [before] = await alerts_of(api, dispute)
    response = await flag(api, dispute, {"danger": "criminal", "observation": SEEN}, role="clerk")
    assert response.status_code == 200, response.text
    [after] = await alerts_of(api, dispute)
    assert after["id"] == before["id"]
    assert after["case_count"] == 1
    assert after["details"]["kinds"] == ["criminal", "violence"]
    assert after["details"]["source"] == "staff"
    # Not reported yet: the alert keeps no report, and still tells the mediator to make one.
    assert "report" not in after["details"]
    assert len(await events_of(api, dispute, "alert_raised")) == 1  # the one intake raised


async def test_a_later_flag_without_a_report_keeps_the_report_made(api: Api) -> None:
    dispute = await api.drive("mediating", description=CALM)
    first = await flag(api, dispute)
    assert first.status_code == 200, first.text
    second = await flag(api, first.json(), {"danger": "self_harm", "observation": "申请人称不想活了"})
    assert second.status_code == 200, second.text
    [alert] = await alerts_of(api, dispute)
    assert alert["details"]["report"]["reference"] == "JJ2026-0301"
    assert alert["details"]["kinds"] == ["self_harm", "violence"]


async def test_after_a_resolved_risk_a_flag_raises_a_new_alert(api: Api) -> None:
    dispute = await api.intake(description=THREAT)
    [old] = await alerts_of(api, dispute)
    await resolve(api, old)
    assert (await api.get(dispute))["attention"] is None
    response = await flag(api, await api.get(dispute), role="clerk")
    assert response.status_code == 200, response.text
    assert response.json()["attention"] == "risk"
    alerts = await alerts_of(api, dispute)
    assert len(alerts) == 2
    assert sorted(a["status"] for a in alerts) == ["open", "resolved"]


@pytest.mark.parametrize("state", ["registered", "accepted"])
async def test_a_case_at_the_center_takes_the_tier_for_risk_cases(api: Api, state: str) -> None:
    risk_tier = (await api.intake(description=CALM, is_risk=True))["tier"]
    dispute = await api.drive(state, description=CALM)
    assert dispute["tier"] != risk_tier
    response = await flag(api, dispute, role="clerk")
    assert response.status_code == 200, response.text
    assert response.json()["tier"] == risk_tier
    moved = {"from": dispute["tier"], "to": risk_tier}
    [event] = await events_of(api, dispute, "risk_flagged")
    assert event.data["tier"] == moved
    [entry] = [e for e in await api.timeline(dispute) if e["action"] == "flag_risk"]
    assert entry["payload"]["tier"] == moved


async def test_a_case_with_a_body_keeps_its_tier(api: Api) -> None:
    dispute = await api.drive("mediating", description=CALM)
    response = await flag(api, dispute)
    assert response.status_code == 200, response.text
    assert response.json()["tier"] == dispute["tier"]
    [event] = await events_of(api, dispute, "risk_flagged")
    assert "tier" not in event.data


async def test_one_timeline_entry_and_one_event_with_codes_only(api: Api) -> None:
    dispute = await api.drive("mediating", description=CALM)
    response = await flag(api, dispute)
    assert response.status_code == 200, response.text
    [entry] = [e for e in await api.timeline(dispute) if e["action"] == "flag_risk"]
    assert entry["reason"] == SEEN  # the clerk reads numbers in full
    assert entry["actor_role"] == "body_mediator"
    assert entry["payload"]["danger"] == "violence"
    assert entry["payload"]["report_department"] == "城关派出所"
    assert entry["payload"]["report_reference"] == "JJ2026-0301"
    [event] = await events_of(api, dispute, "risk_flagged")
    assert event.data["danger"] == "violence"
    assert event.data["reported_to"] == "police"
    assert event.data["action"] == "flag_risk"
    # What was seen and the report's department and number stay with the case.
    assert "城关派出所" not in str(event.data) and "13800001234" not in str(event.data)
    assert "JJ2026-0301" not in str(event.data)


async def test_what_was_seen_is_masked_for_a_reader_without_pii_read(api: Api) -> None:
    dispute = await api.drive("mediating", description=CALM)
    assert (await flag(api, dispute)).status_code == 200
    response = await api.client.get(f"/v1/disputes/{dispute['id']}/timeline", headers=api.auth("supervisor"))
    [entry] = [e for e in response.json() if e["action"] == "flag_risk"]
    assert "13800001234" not in entry["reason"]
    assert "手持木棍" in entry["reason"]


async def test_the_audit_record_names_the_flag(api: Api) -> None:
    from sqlalchemy import select

    from mediation.audit.models import AuditRecord

    dispute = await api.drive("mediating", description=CALM)
    response = await flag(api, dispute)
    assert response.status_code == 200, response.text
    async with api.app.state.db.reader() as session:
        rows = (
            await session.scalars(select(AuditRecord).where(AuditRecord.object_id == dispute["id"]))
        ).all()
    [record] = [r for r in rows if "risk_flag" in (r.details or {})]
    assert record.details["risk_flag"]["danger"] == "violence"
    assert "13800001234" not in str(record.details) and "城关派出所" not in str(record.details)


# ---- the case's version and retries ---------------------------------------------------------------


async def test_without_if_match_it_is_428(api: Api) -> None:
    dispute = await api.drive("mediating", description=CALM)
    response = await api.client.post(
        flags_url(dispute), json=reported(api), headers=api.acting("body_mediator", dispute)
    )
    await unchanged_after(api, dispute, response, 428)


async def test_a_stale_version_is_412(api: Api) -> None:
    dispute = await api.drive("mediating", description=CALM)
    await unchanged_after(api, dispute, await flag(api, dispute, version=dispute["version"] - 1), 412)


async def test_a_retry_with_the_same_key_replays_and_flags_once(api: Api) -> None:
    dispute = await api.drive("mediating", description=CALM)
    first = await flag(api, dispute, **{"Idempotency-Key": "flag-1"})
    again = await flag(api, dispute, **{"Idempotency-Key": "flag-1"})
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    assert len(await events_of(api, dispute, "risk_flagged")) == 1
    assert len([e for e in await api.timeline(dispute) if e["action"] == "flag_risk"]) == 1
    other = await flag(api, dispute, reported(api, danger="criminal"), **{"Idempotency-Key": "flag-1"})
    assert other.status_code == 422, other.text


# ---- what the body says ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"reported_at": None}, "reported_at", "report_time_missing"),
        ({"reported_to": "other_department", "report_department": None}, "report_department", None),
        ({"reported_to": None}, "reported_to", "report_target_missing"),
    ],
)
async def test_a_report_is_told_whole(api: Api, change: dict[str, Any], field: str, code: str | None) -> None:
    dispute = await api.drive("mediating", description=CALM)
    response = await flag(api, dispute, reported(api, **change))
    await unchanged_after(api, dispute, response, 422)
    [error] = response.json()["errors"]
    assert error["field"] == field
    if code:
        assert error["code"] == code


async def test_a_report_in_the_future_is_refused_in_english_too(api: Api) -> None:
    dispute = await api.drive("mediating", description=CALM)
    later = (api.app.state.clock.now() + timedelta(hours=2)).isoformat()
    response = await flag(api, dispute, reported(api, reported_at=later), **{"Accept-Language": "en"})
    await unchanged_after(api, dispute, response, 422)
    [error] = response.json()["errors"]
    assert (error["field"], error["code"]) == ("reported_at", "in_future")
    assert "future" in error["message"]


async def test_what_was_seen_is_required(api: Api) -> None:
    dispute = await api.drive("mediating", description=CALM)
    body = {"danger": "violence", "observation": "  "}
    await unchanged_after(api, dispute, await flag(api, dispute, body), 422)


async def test_a_refusal_is_in_chinese_by_default(api: Api) -> None:
    dispute = await api.drive("confirmation_pending", description=CALM)
    response = await flag(api, dispute, role="court")
    assert response.status_code == 403
    assert "调解组织" in response.json()["detail"]


# ---- the page ------------------------------------------------------------------------------------


def flag_form(api: Api, page_etag: str, **overrides: str) -> dict[str, str]:
    at = api.app.state.clock.now().astimezone(api.app.state.clock.zone) - timedelta(hours=1)
    return {
        "version": page_etag,
        "idempotency_key": "risk-form-1",
        "danger": "gathering",
        "observation": "申请人称明天带三十多名工友到对方公司门口讨薪",
        "reported_to": "police",
        "reported_at": at.strftime("%Y-%m-%dT%H:%M"),
        "report_department": "",
        "report_reference": "",
        **overrides,
    }


async def test_the_page_flags_the_case_at_the_center(api: Api, web: httpx.AsyncClient) -> None:
    risk_tier = (await api.intake(description=CALM, is_risk=True))["tier"]
    dispute = await api.intake(description=CALM)
    page = signed_in(web, api, "clerk")
    shown = await page.get(f"/cases/{dispute['id']}")
    assert 'action="/cases/{}/risk-flags"'.format(dispute["id"]) in shown.text
    done = await page.post(
        f"/cases/{dispute['id']}/risk-flags", flag_form(api, f'"{dispute["version"]}"'), follow_redirects=True
    )
    assert done.status_code == 200, done.text
    assert "已报告风险" in done.text
    assert "聚集滋事" in done.text and "向公安机关" in done.text
    after = await api.get(dispute)
    assert (after["is_risk"], after["attention"], after["tier"]) == (True, "risk", risk_tier)
    [alert] = await alerts_of(api, dispute)
    assert alert["details"]["kinds"] == ["gathering"]
    assert len(await events_of(api, dispute, "risk_flagged")) == 1
    # The same form sent again (a double click) flags nothing more.
    again = await page.post(f"/cases/{dispute['id']}/risk-flags", flag_form(api, f'"{dispute["version"]}"'))
    assert again.status_code == 303, again.text
    assert len(await events_of(api, dispute, "risk_flagged")) == 1


async def test_the_page_shows_a_refused_flag_at_its_field(api: Api, web: httpx.AsyncClient) -> None:
    dispute = await api.intake(description=CALM)
    page = signed_in(web, api, "clerk")
    form = flag_form(api, f'"{dispute["version"]}"', reported_to="other_department")
    refused = await page.post(f"/cases/{dispute['id']}/risk-flags", form)
    assert refused.status_code == 422, refused.text
    assert "请写明部门名称" in refused.text
    assert not await events_of(api, dispute, "risk_flagged")


async def test_the_page_offers_no_flag_on_an_archived_case(api: Api, web: httpx.AsyncClient) -> None:
    dispute = await api.drive("archived", description=CALM)
    shown = await signed_in(web, api, "clerk").get(f"/cases/{dispute['id']}")
    assert shown.status_code == 200
    assert "/risk-flags" not in shown.text


async def test_a_correction_still_raises_the_tier_as_before(api: Api) -> None:
    """The tier for risk cases is one rule, shared with a correction's risk words."""
    as_registered = await api.intake(description=THREAT)
    dispute = await api.intake(description=CALM)
    response = await correct(api, dispute, facts(dispute, THREAT))
    assert response.status_code == 200, response.text
    assert response.json()["tier"] == as_registered["tier"]
