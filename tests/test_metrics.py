"""`GET /metrics`: Prometheus figures for the people who run the service, behind a token."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mediation.clocks.scheduler import tick
from mediation.core.settings import Settings
from tests.support import Api
from tests.test_faults import serve

TOKEN = "metrics-scraper-token-0123456789abcdef"
WITH_TOKEN = pytest.mark.parametrize("overrides", [{"metrics_token": TOKEN}], ids=["token"])
VIOLENT = "因宅基地边界争执, 被申请人扬言要拿刀砍死对方, 情绪激动。"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def _scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_without_a_token_configured_there_are_no_metrics(api: Api) -> None:
    response = await api.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404


@WITH_TOKEN
async def test_a_scraper_without_the_token_is_refused(api: Api) -> None:
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
    ):
        response = await api.client.get("/metrics", headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    # Staff credentials are no metrics token.
    assert (await api.client.get("/metrics", headers=api.auth("admin"))).status_code == 401


@WITH_TOKEN
async def test_requests_are_counted_by_route_template_and_status(api: Api) -> None:
    before = await _scrape(api.client)
    dispute = await api.intake()
    assert (await api.client.get(f"/v1/disputes/{dispute['id']}")).status_code == 200
    assert (await api.client.get(f"/v1/disputes/{uuid.uuid4()}")).status_code == 404
    assert (await api.client.get(f"/no/such/page/{uuid.uuid4()}")).status_code == 404
    after = await _scrape(api.client)

    def delta(**labels: str) -> float:
        name = "mediation_http_requests_total"
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta(method="POST", route="/v1/disputes", status="201") == 1
    assert delta(method="GET", route="/v1/disputes/{dispute_id}", status="200") == 1
    assert delta(method="GET", route="/v1/disputes/{dispute_id}", status="404") == 1
    assert delta(method="GET", route="unmatched", status="404") == 1
    # A path asked for never becomes a label: a scan of random addresses adds no series.
    assert not any(dispute["id"] in str(labels) for _, labels in after)
    latency = "mediation_http_request_duration_seconds_count"
    assert _value(after, latency, method="POST", route="/v1/disputes") >= 1
    assert _value(after, "mediation_db_connections_in_use") >= 0


@WITH_TOKEN
async def test_the_deployments_figures_are_read_from_the_database(api: Api) -> None:
    quiet = await _scrape(api.client)
    assert _value(quiet, "mediation_cases_needing_attention", reason="risk") == 0
    dispute = await api.intake(description=VIOLENT)
    assert dispute["attention"] == "risk"
    figures = await _scrape(api.client)
    assert _value(figures, "mediation_cases_needing_attention", reason="risk") == 1
    assert _value(figures, "mediation_alerts_open", kind="risk", level="immediate") == 1
    assert _value(figures, "mediation_audit_records") > _value(quiet, "mediation_audit_records")
    assert _value(figures, "mediation_info", version="0.1.0") == 1
    assert _value(figures, "mediation_webhook_deliveries_pending") == 0


@WITH_TOKEN
async def test_a_scheduler_pass_is_counted(api: Api) -> None:
    before = await _scrape(api.client)
    app: Any = api.app
    await tick(app.state.db, app.state.clock, app.state.settings, app.state.identity.cipher)
    after = await _scrape(api.client)
    passes = "mediation_scheduler_passes_total"
    assert _value(after, passes, outcome="ok") == _value(before, passes, outcome="ok") + 1
    assert _value(after, "mediation_scheduler_last_ok_timestamp_seconds") > 0


@pytest.mark.postgres_only
async def test_two_workers_report_their_requests_added_up(settings: Settings, tmp_path: Path) -> None:
    """`mediation serve --workers 2`: whichever worker answers the scrape reports both workers'
    requests, not its own share."""
    async with serve(settings, tmp_path, workers=2, metrics_token=TOKEN) as served:
        for _ in range(30):
            # A connection each, so the requests spread over the workers.
            async with httpx.AsyncClient(base_url=served.url, timeout=10) as once:
                assert (await once.get("/readyz")).status_code == 200
        for _ in range(4):
            async with httpx.AsyncClient(base_url=served.url, timeout=10) as scraper:
                samples = await _scrape(scraper)
            ready = _value(
                samples, "mediation_http_requests_total", method="GET", route="/readyz", status="200"
            )
            assert ready == 30, served.output()
