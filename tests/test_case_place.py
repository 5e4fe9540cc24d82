"""The case page names the place a case arose in, not only its twelve-digit region code: the
village of the committee there, else the town or the county it lies in, as the registry knows them."""

from __future__ import annotations

import re
from html import unescape

import httpx
import pytest
from sqlalchemy import update

from mediation.bodies.models import Body
from tests.support import Api
from tests.test_web import Page


def _place(html: str) -> str:
    found = re.search(r'<td class="place">(.*?)</td>', html, re.S)
    assert found, html[:2000]
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1)))).strip()


@pytest.mark.parametrize(
    ("center", "region", "shown"),
    [
        ("center", "330681105201", "枫源村 (330681105201)"),  # the village's own committee
        ("center", "330681105299", "枫桥镇 (330681105299)"),  # a village with none: its town
        ("center", "330681103000", "诸暨市 (330681103000)"),  # a town with none: the county's center
        ("other_center", "330604100201", "上虞区某村 (330604100201)"),
        ("other_center", "330604100299", "上虞区 (330604100299)"),
    ],
)
async def test_the_case_page_names_the_place(
    api: Api, web: httpx.AsyncClient, center: str, region: str, shown: str
) -> None:
    case = await api.intake(center, region_code=region, address="某路1号")
    web.cookies.set("mediation_session", api.tokens[("clerk", api.bodies[center])])
    page = await Page(web).get(f"/cases/{case['id']}")
    assert page.status_code == 200, page.text[:2000]
    assert _place(page.text) == f"{shown} 某路1号"


async def test_a_place_the_registry_does_not_know_is_shown_by_its_code(
    api: Api, web: httpx.AsyncClient
) -> None:
    # A county whose center and committees are not named after their places.
    async with api.app.state.db.writer() as session, session.begin():
        await session.execute(
            update(Body).where(Body.region_code.startswith("330604")).values(name=Body.name + "(试点)")
        )
    case = await api.intake("other_center", region_code="330604100299", address=None)
    web.cookies.set("mediation_session", api.tokens[("clerk", api.bodies["other_center"])])
    page = await Page(web).get(f"/cases/{case['id']}")
    assert page.status_code == 200
    assert _place(page.text) == "330604100299"
