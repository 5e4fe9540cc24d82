"""The last day to apply for judicial confirmation, when it lies in a year whose holidays are not
published yet (民事诉讼法 Art. 205: thirty days from the agreement taking effect; Art. 85: a last day
on a holiday moves to the next working day). Counted on weekends and the statutory holidays only
(全国年节及纪念日放假办法 Art. 2), that day is provisional: the notice may add days off to them, so a
request after it is not refused on a day the law may still allow. It goes to the court with a
warning saying why, and the party looking up the case is told the day may move. Once the year is
loaded the day is known, and a request after it is refused as before."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from tests.support import Api
from tests.test_clock_starts import _refusals
from tests.test_handoff_deadlines import NEW_YEAR_2027, _load_2027
from tests.test_handoffs import _on
from tests.test_lookup_review import _known_code, _looked_up

pytestmark = pytest.mark.usefixtures("calendar_package_until_2026")


async def _effective_on_2_december(api: Api) -> dict[str, Any]:
    """Signed on Wednesday 2 December 2026: thirty days end on Friday 1 January 2027, New Year's Day;
    with the weekend after it, the period runs to Monday 4 January, as far as can be known before the
    2027 schedule is out."""
    _on(api, date(2026, 12, 2))
    dispute = await api.drive("agreement_signed")
    assert dispute["agreement_effective_on"] == "2026-12-02"
    return dispute


async def test_a_request_after_a_provisional_last_day_goes_to_the_court_with_a_warning(api: Api) -> None:
    dispute = await _effective_on_2_december(api)
    # Tuesday 5 January: past Monday 4 January as the weekends and New Year's Day put it; the
    # notice, not out yet, may still take that Monday off and carry the period to this very day.
    _on(api, date(2027, 1, 5))
    response = await api.act(await api.get(dispute), "request_confirmation")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "confirmation_pending"

    dossier = await api.handoff(response.json())
    [warning] = [w for w in dossier["handoff"]["warnings"] if w["code"] == "confirmation_window_uncertain"]
    assert "2027-01-04" in warning["message"] and "2027" in warning["message"]
    assert "第八十五条" in warning["message"]
    # In the reader's language, from the facts kept with it.
    english = await api.client.get(
        f"/v1/handoffs/{dossier['handoff']['id']}",
        headers={**api.auth("court", api.bodies["court"]), "Accept-Language": "en"},
    )
    assert english.status_code == 200, english.text
    [said] = [
        w for w in english.json()["handoff"]["warnings"] if w["code"] == "confirmation_window_uncertain"
    ]
    assert "the court judges whether the request is in time" in said["message"]


async def test_a_request_within_a_provisional_period_carries_no_warning(api: Api) -> None:
    dispute = await _effective_on_2_december(api)
    # Monday 4 January: after the nominal last day, New Year's Day, which the law itself gives off.
    _on(api, date(2027, 1, 4))
    response = await api.act(await api.get(dispute), "request_confirmation")
    assert response.status_code == 200, response.text
    assert (await api.handoff(response.json()))["handoff"]["warnings"] == []


async def test_once_the_year_is_loaded_a_request_after_the_real_last_day_is_refused(api: Api) -> None:
    dispute = await _effective_on_2_december(api)
    await _load_2027(api, NEW_YEAR_2027, "国办发明电〔2026〕7号")
    _on(api, date(2027, 1, 4))
    # 1-3 January off: Monday 4 January is the last day, for sure now.
    before = await api.act(await api.get(dispute), "request_confirmation", role="body_mediator")
    assert before.status_code == 200, before.text
    assert (await api.handoff(before.json()))["handoff"]["warnings"] == []


async def test_after_a_known_last_day_the_request_is_still_refused(api: Api) -> None:
    dispute = await _effective_on_2_december(api)
    await _load_2027(api, NEW_YEAR_2027, "国办发明电〔2026〕7号")
    _on(api, date(2027, 1, 5))
    refused = _refusals(await api.act(await api.get(dispute), "request_confirmation"))
    assert "2027-01-04" in refused["confirmation_window_closed"]["message"]


async def test_the_party_is_told_the_last_day_may_move(api: Api, web: httpx.AsyncClient, clock: Any) -> None:
    dispute = await _effective_on_2_december(api)
    code = await _known_code(api, dispute)
    _on(api, date(2026, 12, 20))
    told, page = await _looked_up(api, web, dispute, code)
    assert "暂计为 2027-01-04" in told and "顺延" in told
    assert "2027-01-04" in page
    _on(api, date(2027, 1, 5))
    told, _ = await _looked_up(api, web, dispute, code)
    assert "可能顺延" in told and "法院审查" in told
    # Loaded, the last day is known: Monday 4 January, for sure, so the period is over.
    await _load_2027(api, NEW_YEAR_2027, "国办发明电〔2026〕7号")
    told, _ = await _looked_up(api, web, dispute, code)
    assert told.startswith("协议已生效; 申请司法确认的期限已过")


async def test_past_any_day_a_holiday_could_reach_the_request_is_refused(
    api: Api, web: httpx.AsyncClient, clock: Any
) -> None:
    """No holiday run is longer than about nine days: eleven days after the last day as counted,
    the period has ended whatever the unpublished schedule brings, and the request is refused."""
    dispute = await _effective_on_2_december(api)
    code = await _known_code(api, dispute)
    _on(api, date(2027, 1, 14))  # ten days after 4 January: still possibly within
    told, _ = await _looked_up(api, web, dispute, code)
    assert "可能顺延" in told
    _on(api, date(2027, 1, 15))
    refused = _refusals(await api.act(await api.get(dispute), "request_confirmation"))
    assert "2027-01-04" in refused["confirmation_window_closed"]["message"]
    told, _ = await _looked_up(api, web, dispute, code)
    assert told.startswith("协议已生效; 申请司法确认的期限已过")


async def test_the_refusal_past_a_provisional_day_says_how_it_was_counted(api: Api) -> None:
    dispute = await _effective_on_2_december(api)
    _on(api, date(2027, 1, 15))
    refused = _refusals(await api.act(await api.get(dispute), "request_confirmation"))
    assert (
        "按周末及法定节假日推算于 2027-01-04 届满, 遇节假日顺延亦已届满"
        in refused["confirmation_window_closed"]["message"]
    )
