from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from mediation.core.db import Database
from mediation.core.errors import ALL_PROBLEMS, NotFound, ServiceUnavailable, problem_responses
from mediation.core.i18n import Text

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz", summary="Readiness: the database answers", responses=problem_responses(ServiceUnavailable)
)
async def readyz(request: Request) -> dict[str, str]:
    db: Database = request.app.state.db
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise ServiceUnavailable(
            Text("数据库不可用", "Database unreachable"), headers={"Retry-After": "1"}
        ) from exc
    return {"status": "ready"}


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
