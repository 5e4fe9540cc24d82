from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from mediation.bodies.models import Body, BodyKind
from mediation.core.db import UnitOfWorkRoute, session_of
from mediation.core.errors import NotFound, problem_responses
from mediation.core.i18n import Text
from mediation.disputes.identity import region_prefix
from mediation.identity.auth import authenticate

# The directory of bodies, courts and commissions is reference data every signed-in caller needs
# (to pick an assignee or a court); it holds no case and no personal data.
router = APIRouter(
    prefix="/v1", route_class=UnitOfWorkRoute, tags=["bodies"], dependencies=[Depends(authenticate)]
)


class BodyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    kind: BodyKind
    tier: str
    region_code: str
    active: bool
    created_at: datetime


@router.get(
    "/bodies",
    response_model=list[BodyOut],
    summary="调解组织、法院与仲裁委员会 Bodies",
    responses=problem_responses(),
)
async def list_bodies(
    request: Request,
    kind: BodyKind | None = None,
    region: Annotated[str | None, Query(pattern=r"^\d{6}(\d{6})?$")] = None,
) -> list[BodyOut]:
    stmt = select(Body).order_by(Body.region_code, Body.name)
    if kind:
        stmt = stmt.where(Body.kind == kind)
    if region:
        stmt = stmt.where(Body.region_code.startswith(region_prefix(region)))
    rows = await session_of(request).scalars(stmt)
    return [BodyOut.model_validate(b) for b in rows]


@router.get(
    "/bodies/{body_id}", response_model=BodyOut, summary="Body", responses=problem_responses(NotFound)
)
async def get_body(request: Request, body_id: uuid.UUID) -> BodyOut:
    body = await session_of(request).get(Body, body_id)
    if body is None:
        raise NotFound(Text("调解组织不存在", "No such body"))
    return BodyOut.model_validate(body)
