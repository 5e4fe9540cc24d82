"""The online application tells the resident how the personal data they give (theirs and the other
side's, ID numbers being sensitive) will be handled, before it is sent (个人信息保护法 Art. 17, 30,
35): the form shows the notice, refuses an application whose box is not ticked without saving
anything, and the audit record of an application names the notice read."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from mediation.audit.models import AuditRecord
from mediation.disputes.models import Dispute
from tests.support import Api, intake_body
from tests.test_web import Page, intake_form


def _online_body() -> dict[str, object]:
    return {k: v for k, v in intake_body().items() if k != "channel"}


async def _cases(api: Api) -> int:
    async with api.app.state.db.reader() as session:
        return int(await session.scalar(select(func.count()).select_from(Dispute)) or 0)


async def test_the_form_shows_the_notice_and_its_box(api: Api, web: httpx.AsyncClient) -> None:
    page = await Page(web).get("/apply")
    assert page.status_code == 200
    assert 'id="pi-notice"' in page.text and "敏感个人信息" in page.text
    assert 'name="pi_notice_read"' in page.text


async def test_an_application_without_the_box_ticked_saves_nothing(api: Api, web: httpx.AsyncClient) -> None:
    before = await _cases(api)
    form = [(k, v) for k, v in intake_form(_online_body()) if k != "pi_notice_read"]
    refused = await Page(web).post("/apply", form)
    assert refused.status_code == 422, refused.text[:2000]
    assert "请阅读个人信息处理告知" in refused.text and 'id="pi_notice_read-error"' in refused.text
    # What was typed is kept for the resident to tick and send again.
    assert "浙江省诸暨市枫桥镇" in refused.text
    assert await _cases(api) == before


async def test_an_application_records_the_notice_read(api: Api, web: httpx.AsyncClient) -> None:
    applied = await Page(web).post("/apply", intake_form(_online_body()))
    assert applied.status_code == 200, applied.text[:2000]
    assert "网上申请回执" in applied.text
    async with api.app.state.db.reader() as session:
        details = await session.scalar(
            select(AuditRecord.details)
            .where(AuditRecord.actor_id == "online-application", AuditRecord.outcome == "success")
            .order_by(AuditRecord.seq.desc())
            .limit(1)
        )
    assert details is not None and details["path"] == "/apply"
    assert (details["pi_notice"], details["pi_notice_read"]) == ("2026-12", True)


async def test_a_ticked_box_stays_ticked_when_another_field_is_refused(
    api: Api, web: httpx.AsyncClient
) -> None:
    body = _online_body()
    body["description"] = "短"
    refused = await Page(web).post("/apply", intake_form(body))
    assert refused.status_code == 422
    assert 'name="pi_notice_read" value="yes" required checked' in refused.text
    assert "名称见提交后的回执" in refused.text
