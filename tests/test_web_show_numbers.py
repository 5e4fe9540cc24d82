"""The case page shows the parties' ID and phone numbers masked, to staff who may read them too,
until they ask for them (个人信息保护法 Art. 6, minimum necessary; Art. 51): the page opened
discloses nothing and records nothing; asked for, the numbers are shown and that view is recorded
as a disclosure (Art. 55). A role without `pii:read` gets nothing more for asking. Over real HTTP
through the app, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from mediation.audit.models import AuditRecord
from tests.support import Api, intake_body
from tests.test_web import signed_in

SHOW = 'id="show-numbers"'


async def disclosures(app: Any, case_id: str) -> list[AuditRecord]:
    """The `pii.read` records naming the case, alone or among others, the oldest first (the API's
    answer to the intake, which shows the numbers to the clerk who typed them, is the first)."""
    async with app.state.db.reader() as session:
        records = (
            await session.scalars(
                select(AuditRecord).where(AuditRecord.action == "pii.read").order_by(AuditRecord.seq)
            )
        ).all()
    return [r for r in records if r.object_id == case_id or case_id in (r.details or {}).get("disputes", [])]


async def registered(api: Api, app: Any) -> tuple[dict[str, Any], int]:
    """A case registered through the API, and how many disclosures of it that recorded."""
    case = await api.intake()
    return case, len(await disclosures(app, case["id"]))


def numbers() -> tuple[str, str]:
    applicant = intake_body()["parties"][0]
    return applicant["id_number"], applicant["phone"]


async def test_the_clerk_opens_the_case_page_with_numbers_masked_and_no_disclosure_recorded(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    case, before = await registered(api, app)
    id_number, phone = numbers()
    page = await signed_in(web, api, "clerk").get(f"/cases/{case['id']}")
    assert page.status_code == 200
    assert id_number not in page.text and phone not in page.text
    assert "最小必要" in page.text
    assert SHOW in page.text and f'href="/cases/{case["id"]}?show=numbers#parties"' in page.text
    assert "显示完整号码" in page.text
    assert len(await disclosures(app, case["id"])) == before


async def test_asking_for_the_numbers_shows_them_and_records_one_disclosure(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    case, before = await registered(api, app)
    id_number, phone = numbers()
    page = await signed_in(web, api, "clerk").get(f"/cases/{case['id']}?show=numbers")
    assert page.status_code == 200
    assert id_number in page.text and phone in page.text
    assert SHOW not in page.text and 'id="hide-numbers"' in page.text
    [record] = (await disclosures(app, case["id"]))[before:]
    assert (record.actor_role, record.outcome, record.object_id) == ("clerk", "success", case["id"])
    assert record.details["fields"] == ["id_number", "phone"]


async def test_a_role_without_pii_read_is_offered_nothing_and_gets_nothing_for_asking(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    case, before = await registered(api, app)
    id_number, phone = numbers()
    page = await signed_in(web, api, "supervisor").get(f"/cases/{case['id']}?show=numbers")
    assert page.status_code == 200
    assert id_number not in page.text and phone not in page.text
    assert SHOW not in page.text and 'id="hide-numbers"' not in page.text
    assert "显示完整号码" not in page.text
    assert len(await disclosures(app, case["id"])) == before


async def test_the_api_still_shows_the_clerk_the_numbers_and_records_the_read(api: Api, app: Any) -> None:
    """The page's default is the page's: the API answers as it did."""
    case, before = await registered(api, app)
    id_number, _ = numbers()
    shown = await api.get(case)
    assert any(p["id_number"] == id_number for p in shown["parties"])
    assert len(await disclosures(app, case["id"])) == before + 1


async def test_the_queue_lists_cases_without_recording_a_disclosure(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    """The queue names the parties and shows no number: nothing was disclosed to record."""
    case, before = await registered(api, app)
    queue = await signed_in(web, api, "clerk").get("/queue?tab=all")
    assert queue.status_code == 200 and case["case_number"] in queue.text
    assert len(await disclosures(app, case["id"])) == before


async def test_the_dashboard_lists_cases_without_recording_a_disclosure(
    api: Api, web: httpx.AsyncClient, app: Any
) -> None:
    """The dashboard's lists show case numbers and names, no ID or phone number: nothing to record."""
    case, before = await registered(api, app)
    dashboard = await signed_in(web, api, "clerk").get("/dashboard")
    assert dashboard.status_code == 200 and case["case_number"] in dashboard.text
    assert len(await disclosures(app, case["id"])) == before
