"""An alert's title in the reader's language: the API answers it in English to a reader asking for
English (an integrator, a supervisor's own tools), in Chinese otherwise, on every read of alerts; the
pages stay Chinese. The Chinese title is the one written when the alert was raised."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from sqlalchemy import select

from mediation.alerts.models import Alert
from tests.support import Api, at_beijing, person
from tests.test_corrections_more import CALM, THREAT
from tests.test_risk_flags import flag, reported
from tests.test_supervision_and_warning import _wage_claim
from tests.test_web import signed_in

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
# Where an alert keeps what its title says (mediation.alerts.titles.TITLE_VALUES).
TITLE_VALUES = "title_values"


async def read_titles(
    api: Api, alert_id: str, dispute: dict[str, Any], role: str = "clerk"
) -> dict[str, set[str]]:
    """The alert's title as each read of alerts answers it (one alert, the list, the case's
    alerts), by language asked for: none, Chinese, English."""
    titles: dict[str, set[str]] = {}
    for language, asked in (("none", {}), ("zh", ZH), ("en", EN)):
        headers = {**api.auth(role), **asked}
        one = await api.client.get(f"/v1/alerts/{alert_id}", headers=headers)
        listed = await api.client.get("/v1/alerts", headers=headers)
        of_case = await api.client.get(f"/v1/disputes/{dispute['id']}/alerts", headers=headers)
        for response in (one, listed, of_case):
            assert response.status_code == 200, response.text
        found = [one.json()] + listed.json()["items"] + of_case.json()
        matched = [a for a in found if a["id"] == alert_id]
        assert len(matched) == 3, f"the alert is not in every read: {len(matched)} of 3"
        titles[language] = {a["title"] for a in matched}
        assert all(TITLE_VALUES not in a["details"] for a in found)  # what the title says stays inside
    return titles


def in_both(titles: dict[str, set[str]], zh: str, en: str) -> None:
    assert titles == {"none": {zh}, "zh": {zh}, "en": {en}}


async def only_alert(api: Api, dispute: dict[str, Any], kind: str) -> dict[str, Any]:
    alerts = (await api.client.get(f"/v1/disputes/{dispute['id']}/alerts", headers=api.auth("clerk"))).json()
    [alert] = [a for a in alerts if a["kind"] == kind]
    return dict(alert)


async def test_a_risk_alert_raised_at_intake_reads_in_the_readers_language(api: Api) -> None:
    dispute = await api.intake(is_risk=True, description=THREAT)
    alert = await only_alert(api, dispute, "risk")
    number = dispute["case_number"]
    in_both(
        await read_titles(api, alert["id"], dispute),
        f"风险预警: {number} 受理员登记时标记为涉稳或有激化危险; 含暴力威胁表述",
        f"Risk alert: {number} marked at intake as affecting social stability or at risk of escalation; "
        "words suggesting threat of violence",
    )


async def test_a_risk_alert_flagged_by_staff_reads_in_the_readers_language(api: Api) -> None:
    dispute = await api.drive("mediating", description=CALM)
    assert (await flag(api, dispute)).status_code == 200
    alert = await only_alert(api, dispute, "risk")
    number = dispute["case_number"]
    in_both(
        await read_titles(api, alert["id"], dispute),
        f"风险预警: {number} 调解员报告暴力威胁",
        f"Risk alert: {number} mediator reported: threat of violence",
    )


async def test_a_flag_of_a_criminal_turn_reads_as_a_sentence_in_english(api: Api) -> None:
    """人民调解法 Art. 25's danger named as what was reported, not as a bare predicate."""
    dispute = await api.drive("mediating", description=CALM)
    assert (await flag(api, dispute, reported(api, danger="criminal"))).status_code == 200
    alert = await only_alert(api, dispute, "risk")
    number = dispute["case_number"]
    in_both(
        await read_titles(api, alert["id"], dispute),
        f"风险预警: {number} 调解员报告可能激化为刑事或治安案件",
        f"Risk alert: {number} mediator reported: risk of turning into a criminal or public-security case",
    )


async def test_a_cluster_alert_reads_in_the_readers_language_and_keeps_its_count_as_cases_join(
    api: Api,
) -> None:
    cases = []
    for n in range(6):
        at_beijing(api, date(2026, 6, 1 + min(n, 4)))
        cases.append(await _wage_claim(api, n))
    alert = await only_alert(api, cases[0], "cluster")
    assert alert["case_count"] == 6
    # Raised by five, joined by the sixth: the title in either language counts the five.
    in_both(
        await read_titles(api, alert["id"], cases[5]),
        "群体性风险预警: 7 日内 5 起纠纷 (同一被申请人短期内多起纠纷 (如欠薪、延期交房)): 诸暨市某建筑劳务有限公司",
        "Group dispute risk alert: 5 disputes within 7 days (many disputes against one respondent in a "
        "short time (e.g. wage arrears, delayed housing delivery)): 诸暨市某建筑劳务有限公司",
    )


async def test_a_category_alert_names_the_category_in_the_readers_language(api: Api) -> None:
    town = []
    for n in range(15):
        at_beijing(api, date(2026, 6, 1 + n % 3))
        town.append(
            await api.intake(
                category="consumer",
                region_code="330681105201",
                parties=[person("applicant", "顾客", 300 + n), person("respondent", "商户", 600 + n)],
            )
        )
    alert = await only_alert(api, town[-1], "cluster")
    in_both(
        await read_titles(api, alert["id"], town[-1]),
        "群体性风险预警: 3 日内 15 起纠纷 (同一乡镇同类纠纷短期内集中发生): 消费类, 乡镇代码 330681105",
        "Group dispute risk alert: 15 disputes within 3 days (disputes of one category concentrated in "
        "one town in a short time): Consumer, town code 330681105",
    )


async def test_a_place_alerts_english_title_is_masked_as_its_chinese_one(api: Api) -> None:
    """The place is the address of the case that raised the wave, free text that may hold a phone
    number: a reader without pii:read (a supervisor) reads it masked in either language."""
    phone = "13812345678"
    project = []
    for n in range(5):
        at_beijing(api, date(2026, 6, 1 + n))
        address = f"诸暨市枫桥镇幸福小区{n + 1}栋" if n < 4 else f"诸暨市枫桥镇幸福小区8栋 联系{phone}"
        project.append(
            await api.intake(
                category="property_management",
                address=address,
                parties=[person("applicant", f"业主{n}", 400 + n), person("respondent", f"邻居{n}", 500 + n)],
            )
        )
    alert = await only_alert(api, project[-1], "cluster")
    full = await read_titles(api, alert["id"], project[-1])
    assert {len(t) for t in full.values()} == {1}
    assert all(phone in title for titles in full.values() for title in titles)
    assert next(iter(full["en"])).startswith(
        "Group dispute risk alert: 5 disputes within 7 days (many disputes at one"
    )
    masked = await read_titles(api, alert["id"], project[-1], role="supervisor")
    for language, titles in masked.items():
        [title] = titles
        assert phone not in title and "幸福小区" in title, (language, title)
    assert next(iter(masked["en"])).startswith("Group dispute risk alert:")


async def test_a_repeat_alert_reads_in_the_readers_language(api: Api) -> None:
    parties = [person("applicant", "孙八", 41), person("respondent", "周九", 42)]
    await api.drive("closed", parties=parties)
    second = await api.intake(parties=parties, description="双方再次因排水问题发生争执。")
    alert = await only_alert(api, second, "repeat")
    in_both(
        await read_titles(api, alert["id"], second),
        "重复纠纷预警: 同一当事人之间第 2 起纠纷",
        "Repeat dispute alert: 2nd dispute between the same parties",
    )


async def test_an_alert_written_without_what_its_title_says_reads_its_chinese_title(api: Api) -> None:
    """Risk and cluster alerts raised before their titles' values were kept read the Chinese title
    in English too; a repeat's title counts the cases the alert lists, so it reads in English."""
    dispute = await api.intake(description=THREAT)
    parties = [person("applicant", "郑一", 51), person("respondent", "王二", 52)]
    await api.drive("closed", parties=parties)
    again = await api.intake(parties=parties)
    async with api.app.state.db.writer() as session, session.begin():
        for alert in (await session.scalars(select(Alert))).all():
            assert (TITLE_VALUES in alert.details) == (alert.kind != "repeat")
            alert.details = {k: v for k, v in alert.details.items() if k != TITLE_VALUES}
    risk = await only_alert(api, dispute, "risk")
    zh = f"风险预警: {dispute['case_number']} 含暴力威胁表述"
    in_both(await read_titles(api, risk["id"], dispute), zh, zh)
    repeat = await only_alert(api, again, "repeat")
    in_both(
        await read_titles(api, repeat["id"], again),
        "重复纠纷预警: 同一当事人之间第 2 起纠纷",
        "Repeat dispute alert: 2nd dispute between the same parties",
    )


async def test_the_pages_show_the_chinese_title_to_a_browser_asking_for_english(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.intake(description=THREAT)
    # The page names the kind by its label, then the title without its own "风险预警: ".
    zh = f"风险预警</strong> · {dispute['case_number']} 含暴力威胁表述"
    page = signed_in(web, api, "supervisor")
    for path in ("/dashboard", f"/cases/{dispute['id']}"):
        shown = await page.get(path, headers=EN)
        assert shown.status_code == 200
        assert (zh if path != "/dashboard" else zh.replace("</strong>", "")) in shown.text, path
        assert "Risk alert" not in shown.text, path
