from __future__ import annotations

import hmac
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from mediation.core.db import Database
from mediation.core.errors import (
    ALL_PROBLEMS,
    NotFound,
    ServiceUnavailable,
    Unauthenticated,
    problem_responses,
)
from mediation.core.http import HeadServingRoute
from mediation.core.i18n import Text
from mediation.migrate import schema_problem
from mediation.ops.metrics import exposition

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"], route_class=HeadServingRoute)


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database answers, migrated for this release, and the keys open its data",
    responses=problem_responses(ServiceUnavailable),
)
async def readyz(request: Request) -> dict[str, str]:
    db: Database = request.app.state.db
    state = request.app.state
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            # A database this release's migrations have not reached answers, but every request
            # that reads a table missing there fails: not ready until `mediation migrate` ran.
            problem = await schema_problem(conn)
            # `mediation serve` checks the keys before it starts, but not against a database that
            # did not answer then: until they have been checked in this process, once the database
            # answers, it is not ready (the verdict is the process's: core.secrets.KeyVerdict).
            keys = await state.key_verdict.of(conn) if problem is None else None
    except Exception as exc:
        raise ServiceUnavailable(
            Text("数据库不可用", "Database unreachable"), headers={"Retry-After": "1"}
        ) from exc
    if problem is not None:
        raise ServiceUnavailable(
            Text(
                "数据库结构未迁移到本版本, 请运行 `mediation migrate`",
                "The database schema is not this release's: run `mediation migrate`",
            ),
            headers={"Retry-After": "30"},
        )
    if keys is not None:
        raise ServiceUnavailable(
            Text(
                "配置的个人信息密钥打不开数据库中已存的数据, 须以正确的密钥重启 (原因见服务日志)",
                "The personal-data keys configured do not open the data stored: restart with the right "
                "keys (the service log says which)",
            ),
            headers={"Retry-After": "60"},
        )
    return {"status": "ready"}


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format, for a scraper holding `MEDIATION_METRICS_TOKEN` (core.metrics)."""
    token = request.app.state.settings.metrics_token
    if token is None:
        raise NotFound()
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise Unauthenticated(Text("需要监控令牌", "The metrics token is required"))
    return Response(await exposition(request.app.state.db), media_type=CONTENT_TYPE_LATEST)


@router.get("/problems/{slug}", include_in_schema=False)
async def problem_type(slug: str) -> JSONResponse:
    for problem in ALL_PROBLEMS:
        if problem.slug == slug:
            body: dict[str, Any] = {
                "type": problem.type_uri(),
                "status": problem.status,
                "title": problem.title.zh,
                "title_en": problem.title.en,
            }
            return JSONResponse(body)
    raise NotFound()
