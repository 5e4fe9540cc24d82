"""Changes made from what someone saw a while ago, over real HTTP on SQLite and PostgreSQL: a draft
agreement sent from a page opened before another version was drafted or signed into effect, the
mediator's signing methods offered by the agreement's form, and two supervisors acting on one alert
at once."""

from __future__ import annotations

import asyncio
import re
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mediation.agreements.schemas import MEDIATOR_SIGNING_METHODS
from mediation.alerts.models import Alert
from mediation.disputes.enums import AgreementForm
from tests.support import Api, at_beijing, person
from tests.test_agreements import _problem
from tests.test_sessions import _requests_waiting_on_a_lock
from tests.test_supervision_and_warning import _if_match, _wage_claim
from tests.test_web_forms import at_the_body, sign_rows


def draft_form(html: str) -> dict[str, str]:
    """The hidden fields of the case page's 起草调解协议 form, as the page sent them."""
    found = re.search(r'<form[^>]+id="draft-agreement"[^>]*>(.*?)</form>', html, re.S)
    assert found, "the page offers no draft form"
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', found.group(1)))


def typed_draft(hidden: dict[str, str], facts: str) -> dict[str, str]:
    return {
        **hidden,
        "facts": facts,
        "disputed_matters": "院墙滴水的损失。",
        "responsibility": "双方各负一半责任。",
        "terms": "双方和解。",
    }


async def _versions(api: Api, case: dict[str, Any]) -> list[tuple[int, str]]:
    listed = (await api.client.get(f"/v1/disputes/{case['id']}/agreements")).json()
    return [(a["number"], a["status"]) for a in listed]


def _draft_url(case: dict[str, Any]) -> str:
    return f"/v1/disputes/{case['id']}/agreements"


# ---- a draft sent from an out-of-date page ---------------------------------------------------------


async def test_a_draft_from_a_page_opened_before_the_agreement_took_effect_replaces_nothing(
    api: Api,
    web: httpx.AsyncClient,
) -> None:
    """人民调解法 Art. 29, 31: one mediator opens the case; meanwhile another drafts the agreement and
    every party, the mediator and the body sign it, so it binds the parties. The first one's form,
    which never saw it, is refused as out of date and the agreement stays in effect."""
    case = await api.drive("mediating")
    page = await at_the_body(web, api, case)
    opened = await page.get(f"/cases/{case['id']}")
    hidden = draft_form(opened.text)
    assert hidden["supersedes"] == ""  # the page showed no version

    effective = await api.signed_agreement(case)
    sent = await page.post(f"/cases/{case['id']}/agreements", typed_draft(hidden, "旧页面上起草的协议。"))

    assert sent.status_code == 412, sent.text[:3000]
    assert "已被他人更新" in sent.text and "您的操作未执行" in sent.text
    assert await _versions(api, case) == [(1, "effective")]
    # The page as it stands now: the version in effect, and no form to draft over it.
    assert 'id="agreement-in-effect"' in sent.text and 'id="draft-agreement"' not in sent.text
    agreed = await api.step(await api.get(case), "agree", {"agreement_id": effective["id"]})
    assert agreed["status"] == "agreement_signed"


async def test_a_draft_from_a_page_that_showed_an_older_version_is_refused_then_sent_again(
    api: Api,
    web: httpx.AsyncClient,
) -> None:
    case = await api.drive("mediating")
    await api.draft_agreement(case)
    page = await at_the_body(web, api, case)
    hidden = draft_form((await page.get(f"/cases/{case['id']}")).text)
    assert hidden["supersedes"] == "1"

    await api.draft_agreement(case, responsibility="被申请人负全部责任。")
    stale = await page.post(f"/cases/{case['id']}/agreements", typed_draft(hidden, "看到第一版时起草。"))
    assert stale.status_code == 412, stale.text[:3000]
    assert "调解协议已被他人更新" in stale.text
    assert await _versions(api, case) == [(1, "superseded"), (2, "draft")]

    # The page shown with the refusal names the version now newest: sent again from it, it is saved.
    again = draft_form(stale.text)
    assert again["supersedes"] == "2"
    saved = await page.post(f"/cases/{case['id']}/agreements", typed_draft(again, "看到第二版后起草。"))
    assert saved.status_code == 303, saved.text[:3000]
    assert await _versions(api, case) == [(1, "superseded"), (2, "superseded"), (3, "draft")]


async def test_an_api_draft_names_the_version_it_was_drafted_over(api: Api) -> None:
    case = await api.drive("mediating")
    headers = api.acting("body_mediator", case)
    first = await api.client.post(
        _draft_url(case), json={**api.agreement_content(case), "supersedes": 0}, headers=headers
    )
    assert first.status_code == 201, first.text

    stale = await api.client.post(
        _draft_url(case), json={**api.agreement_content(case), "supersedes": 0}, headers=headers
    )
    assert _problem(stale, 412, "/problems/stale-version")["newest_number"] == 1
    assert await _versions(api, case) == [(1, "draft")]

    second = await api.client.post(
        _draft_url(case), json={**api.agreement_content(case), "supersedes": 1}, headers=headers
    )
    assert second.status_code == 201, second.text
    # A client that does not name it drafts over whatever draft is newest, as before.
    third = await api.client.post(_draft_url(case), json=api.agreement_content(case), headers=headers)
    assert third.status_code == 201, third.text
    assert await _versions(api, case) == [(1, "superseded"), (2, "superseded"), (3, "draft")]
    # Only a new version names one: editing a draft does not.
    edit = await api.client.put(
        f"{_draft_url(case)}/{third.json()['id']}",
        json={**api.agreement_content(case), "supersedes": 3},
        headers={**headers, **_if_match(third.json())},
    )
    assert edit.status_code == 422, edit.text


async def test_an_agreement_in_effect_is_not_superseded_by_a_new_draft(api: Api) -> None:
    """人民调解法 Art. 29, 31: once in effect the agreement binds the parties; a new draft, even one
    that names it, does not set it aside."""
    case = await api.drive("mediating")
    effective = await api.signed_agreement(case)
    headers = api.acting("body_mediator", case)
    for named in ({"supersedes": 1}, {}):
        refused = await api.client.post(
            _draft_url(case), json={**api.agreement_content(case), **named}, headers=headers
        )
        assert _problem(refused, 409, "/problems/conflict")["code"] == "agreement_effective"
    assert await _versions(api, case) == [(1, "effective")]
    assert (await api.step(await api.get(case), "agree", {"agreement_id": effective["id"]}))[
        "status"
    ] == "agreement_signed"


async def test_an_oral_agreement_in_effect_may_be_put_in_writing(api: Api) -> None:
    """人民调解法 Art. 28 leaves the form to the parties, and a court confirms only a written
    agreement: parties who agreed orally may still write it down, and sign it again. The oral
    agreement binds them until they have (Art. 30): the draft does not supersede it."""
    case = await api.drive("mediating")
    oral = await api.draft_agreement(case, form="oral")
    assert (await api.sign(case, oral, signer="mediator", method="recorded")).status_code == 200
    headers = api.acting("body_mediator", case)
    content = api.agreement_content(case)
    refused = await api.client.post(
        _draft_url(case), json={**content, "form": "oral", "supersedes": 1}, headers=headers
    )
    assert _problem(refused, 409, "/problems/conflict")["code"] == "agreement_effective"
    written = await api.client.post(
        _draft_url(case), json={**content, "form": "written", "supersedes": 1}, headers=headers
    )
    assert written.status_code == 201, written.text
    assert await _versions(api, case) == [(1, "effective"), (2, "draft")]


async def test_the_case_page_offers_to_put_an_oral_agreement_in_effect_in_writing(
    api: Api, web: httpx.AsyncClient
) -> None:
    """人民调解法 Art. 28, 30: the oral agreement in effect stays in effect while its written version
    waits for signatures, so the page names it as the one in effect (not the newest draft) and keeps
    offering the form to draft the written version, with no claim that nothing may be drafted."""
    case = await api.drive("mediating")
    oral = await api.draft_agreement(case, form="oral")
    assert (await api.sign(case, oral, signer="mediator", method="recorded")).status_code == 200
    page = await at_the_body(web, api, case)

    shown = await page.get(f"/cases/{case['id']}")
    assert 'id="oral-agreement-in-effect"' in shown.text and "第1版口头调解协议已经生效" in shown.text
    assert 'id="draft-agreement"' in shown.text and 'id="agreement-in-effect"' not in shown.text
    written = await page.post(
        f"/cases/{case['id']}/agreements",
        {**typed_draft(draft_form(shown.text), "口头协议的书面版本。"), "form": "written"},
    )
    assert written.status_code in (200, 303), written.text[:3000]
    assert await _versions(api, case) == [(1, "effective"), (2, "draft")]

    again = await page.get(f"/cases/{case['id']}")
    assert "第1版口头调解协议已经生效" in again.text and 'id="draft-agreement"' in again.text
    assert 'id="agreement-in-effect"' not in again.text


async def test_after_a_courts_refusal_the_case_mediated_again_drafts_a_new_version(api: Api) -> None:
    """民事诉讼法 Art. 206: the agreement a court refused to confirm is set aside when the case is
    mediated again, and the parties change it or reach a new one."""
    case = await api.drive("confirmation_rejected")
    case = await api.step(await api.get(case), "remediate")
    assert await _versions(api, case) == [(1, "superseded")]
    drafted = await api.client.post(
        _draft_url(case),
        json={**api.agreement_content(case), "supersedes": 1},
        headers=api.acting("body_mediator", case),
    )
    assert drafted.status_code == 201, drafted.text
    assert await _versions(api, case) == [(1, "superseded"), (2, "draft")]


# ---- the mediator's signing methods -----------------------------------------------------------------


@pytest.mark.parametrize("form", [AgreementForm.written, AgreementForm.oral])
async def test_the_mediator_is_offered_the_signing_methods_of_the_agreements_form(
    api: Api,
    web: httpx.AsyncClient,
    form: AgreementForm,
) -> None:
    """人民调解法 Art. 29: the mediator signs a written agreement; only an oral one is recorded by the
    mediator instead (Art. 28, 30). The page offers no method the service refuses."""
    case = await api.drive("mediating")
    agreement = await api.draft_agreement(case, form=form.value)
    page = await at_the_body(web, api, case)
    rows = sign_rows((await page.get(f"/cases/{case['id']}")).text)
    [mediator] = [r for r in rows if r["signer"] == "mediator"]
    assert mediator["methods"] == MEDIATOR_SIGNING_METHODS[form]
    assert ("recorded" in mediator["methods"]) == (form == AgreementForm.oral)
    # What the row offers first is taken.
    signed = await page.post(
        f"/cases/{case['id']}/agreements/{agreement['id']}/signatures",
        {**mediator["hidden"], "method": mediator["chosen"][0]},
    )
    assert signed.status_code == 303, signed.text[:3000]
    [signature] = (await api.client.get(_draft_url(case))).json()[-1]["signatures"]
    assert (signature["signer"], signature["method"]) == ("mediator", mediator["chosen"][0])


# ---- two supervisors on one alert ------------------------------------------------------------------


async def _cluster_alert(api: Api) -> dict[str, Any]:
    for n in range(6):
        at_beijing(api, date(2026, 6, 1 + min(n, 4)))
        await _wage_claim(api, n)
    listed = await api.client.get("/v1/alerts", params={"kind": "cluster"}, headers=api.auth("supervisor"))
    [alert] = listed.json()["items"]
    return alert


@pytest.mark.postgres_only
@pytest.mark.parametrize("second", ["acknowledgement", "resolution"])
async def test_two_supervisors_acting_on_an_alert_at_once_the_second_is_told_it_changed(
    api: Api, app: Any, second: str
) -> None:
    """Both send the ETag they read. The alert is compared under its lock: one acts, the other is told
    the alert changed (412, with the alert's current ETag), and never fails on the write."""
    alert = await _cluster_alert(api)
    url = f"/v1/alerts/{alert['id']}"
    headers = {**api.auth("supervisor"), **_if_match(alert)}
    bodies = {"acknowledgement": {"note": "已通知人社所"}, "resolution": {"resolution": "约谈企业"}}
    async with app.state.db.engine.connect() as holder:
        # Another transaction holds the alert, so both requests have read it before either writes.
        await holder.execute(select(Alert.id).where(Alert.id == alert["id"]).with_for_update())
        racing = asyncio.gather(
            api.client.post(f"{url}/acknowledgement", json=bodies["acknowledgement"], headers=headers),
            api.client.post(f"{url}/{second}", json=bodies[second], headers=headers),
        )
        await _requests_waiting_on_a_lock(app, 2)
        await holder.rollback()
    responses = await racing
    assert sorted(r.status_code for r in responses) == [200, 412], [r.text for r in responses]
    [done] = [r for r in responses if r.status_code == 200]
    [refused] = [r for r in responses if r.status_code == 412]
    assert _problem(refused, 412, "/problems/stale-version")["current_etag"] == done.headers["ETag"]
    now = (await api.client.get(url, headers=api.auth("supervisor"))).json()
    assert now["version"] == alert["version"] + 1


@pytest.mark.postgres_only
async def test_an_acknowledgement_sent_while_a_case_joins_the_wave_is_told_the_alert_changed(
    api: Api, app: Any
) -> None:
    """The seventh claim joins the open alert (a new case on it, a new version) while a supervisor
    acknowledges the six it showed: the acknowledgement waits, then is told the alert changed."""
    alert = await _cluster_alert(api)
    url = f"/v1/alerts/{alert['id']}"
    async with app.state.db.engine.connect() as holder:
        await holder.execute(select(Alert.id).where(Alert.id == alert["id"]).with_for_update())
        joining = asyncio.ensure_future(_wage_claim(api, 6))
        await _requests_waiting_on_a_lock(app, 1)
        acknowledging = asyncio.ensure_future(
            api.client.post(
                f"{url}/acknowledgement",
                json={"note": "已通知人社所"},
                headers={**api.auth("supervisor"), **_if_match(alert)},
            )
        )
        await _requests_waiting_on_a_lock(app, 2)
        await holder.rollback()
    await joining
    refused = await acknowledging
    now = (await api.client.get(url, headers=api.auth("supervisor"))).json()
    assert (now["case_count"], now["status"]) == (7, "open")
    assert _problem(refused, 412, "/problems/stale-version")["current_etag"] == f'"{now["version"]}"'


async def test_an_alert_shows_a_reader_without_pii_read_the_numbers_masked_as_its_cases_do(api: Api) -> None:
    """A place cluster is named after the address the cases share: a phone number in it is masked
    for the supervisor, as in the case itself; the clerk (pii:read) reads it whole."""
    address = "枫桥镇幸福小区(物业电话13912345678)3栋"
    for i in range(5):
        case = await api.intake(
            address=address,
            parties=[person("applicant", f"业主{i}", 100 + i), person("respondent", f"开发商{i}", 200 + i)],
        )
    for role, shown in (("supervisor", "139****5678"), ("clerk", "13912345678")):
        headers = api.auth(role)
        assert (
            shown in (await api.client.get(f"/v1/disputes/{case['id']}", headers=headers)).json()["address"]
        )
        listed = (await api.client.get("/v1/alerts", headers=headers)).json()["items"]
        place = [a for a in listed if "幸福小区" in a["title"]]
        assert place, listed
        one = (await api.client.get(f"/v1/alerts/{place[0]['id']}", headers=headers)).json()
        of_case = (await api.client.get(f"/v1/disputes/{case['id']}/alerts", headers=headers)).json()
        for alert in (place[0], one, *[a for a in of_case if a["id"] == place[0]["id"]]):
            assert shown in alert["title"] + str(alert["details"]), (role, alert)
            if role == "supervisor":
                assert "13912345678" not in str(alert), alert
