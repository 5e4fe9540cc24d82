"""What the service measures of itself for the people who run it (Prometheus, `GET /metrics`).

Two kinds of figure:

- Per process, counted as things happen: requests by route and status and their latency, pooled
  connections in use, scheduler passes. With several uvicorn workers each counts its own, and the
  figures are added up across them through files in `PROMETHEUS_MULTIPROC_DIR`, which
  `mediation serve --workers N` sets up (prometheus_client's multiprocess mode); otherwise the
  scrape would see only the one worker that answered it.
- Of the deployment, read from the database at each scrape (`ops.metrics`): cases waiting for a
  supervisor, deadlines at risk or overdue, open alerts, webhook deliveries waiting, the audit
  chain. They are the same whichever worker answers.

A route is labelled by its template (`/v1/disputes/{dispute_id}`), never by the path asked for, so
that a scan of random addresses cannot grow the label set without bound; what matched no route is
`unmatched`; likewise a method the service does not serve is `other`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess() -> bool:
    """Whether this process counts into shared files (prometheus_client reads the same variable
    when it is imported, which is when it decides)."""
    return bool(os.environ.get(MULTIPROCESS_DIR))


REQUESTS = Counter(
    "mediation_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "mediation_http_request_duration_seconds",
    "Time from a request's arrival to its response's status line, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
POOL_IN_USE = Gauge(
    "mediation_db_connections_in_use",
    "Database connections checked out of the pool, across the service's processes.",
    multiprocess_mode="livesum",
)
SCHEDULER_PASSES = Counter(
    "mediation_scheduler_passes",
    "Scheduler passes by outcome: ok, partial (some cases failed and wait for the next pass) or failed.",
    ["outcome"],
)
SCHEDULER_LAST_OK = Gauge(
    "mediation_scheduler_last_ok_timestamp_seconds",
    "When a scheduler pass last completed without a failure (Unix time).",
    multiprocess_mode="max",
)
SCHEDULER_DURATION = Histogram(
    "mediation_scheduler_pass_duration_seconds",
    "How long a scheduler pass took.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)


def route_of(scope: Mapping[str, Any]) -> str:
    """The template of the route that answered, or `unmatched`."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) and template else "unmatched"


# HTTP lets a client send any token as its method (RFC 9110 §9.1): each one a label value of its
# own would let a client grow the series without bound, as a path would. The methods the service
# serves are named; any other is `other`.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _method(scope: Mapping[str, Any]) -> str:
    method = scope["method"]
    return method if method in _METHODS else "other"


def observe_request(scope: Mapping[str, Any], status: int, seconds: float) -> None:
    route = route_of(scope)
    method = _method(scope)
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)
