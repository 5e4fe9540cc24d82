"""The pages show times in the center's own time zone (MEDIATION_TIMEZONE), not in Beijing's
whatever the setting: a center in Xinjiang keeping Ürümqi time sees the hour its clerks lived."""

from __future__ import annotations

import httpx
import pytest

from mediation.core.clock import FrozenClock
from tests.conftest import DEFAULT_NOW
from tests.support import Api
from tests.test_web import signed_in


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(DEFAULT_NOW, "Asia/Urumqi")


@pytest.mark.parametrize("overrides", [{"timezone": "Asia/Urumqi"}], ids=["urumqi"])
async def test_the_queue_and_the_case_page_show_the_centers_own_hour(
    api: Api, web: httpx.AsyncClient
) -> None:
    dispute = await api.intake()
    page = signed_in(web, api)
    # Registered at 02:00 UTC: 08:00 in Ürümqi (UTC+6), where Beijing's hour would say 10:00.
    queue = await page.get("/queue")
    assert queue.status_code == 200
    assert "2026-06-01 08:00" in queue.text and "2026-06-01 10:00" not in queue.text
    case = await page.get(f"/cases/{dispute['id']}")
    assert case.status_code == 200
    assert "2026-06-01 08:00" in case.text and "2026-06-01 10:00" not in case.text
