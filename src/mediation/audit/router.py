"""The audit trail, for auditors."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from mediation.audit.models import AuditRecord
from mediation.audit.seal import overdue_after, verify_snapshot
from mediation.core.db import UnitOfWorkRoute, session_of, utcnow
from mediation.core.errors import Forbidden, problem_responses
from mediation.core.principal import Permission, Principal
from mediation.disputes.schemas import IsoDateTime
from mediation.identity.auth import permission

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["audit"])
Auditor = Annotated[Principal, permission(Permission.audit_read)]
# A record number is a signed 64-bit integer on both databases: a larger `after` is a bad request
# (422), not a failed query.
MAX_SEQ = 2**63 - 1


class AuditRecordOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    occurred_at: datetime
    actor_kind: str
    actor_role: str
    actor_id: str
    organisation_id: str | None
    action: str
    object_type: str | None
    object_id: str | None
    outcome: str
    status_code: int | None
    request_id: str | None
    client_address: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditRecordOut]
    next_after: int | None


class VerificationOut(BaseModel):
    ok: bool
    checked: int
    first_seq: int | None
    last_seq: int | None
    broken_seq: int | None
    problem: str | None
    seals_checked: int = Field(
        description="Keyed seals of the chain's head checked (their MAC and their record)."
    )
    sealed_through: int | None = Field(
        description="The last record a seal covers; those after it are not sealed yet."
    )
    last_sealed_at: datetime | None = Field(
        description="When that seal was made: a long gap means the sealing stopped."
    )
    unsealed_since: datetime | None = Field(
        description=(
            "When the oldest record no seal covers was made. The scheduler seals every "
            "MEDIATION_AUDIT_SEAL_SECONDS; a record unsealed for more than twice that (and a pass of the "
            "scheduler) fails the verification: seals were deleted, or the sealing stopped."
        ),
    )


@router.get(
    "/audit-records",
    response_model=AuditPage,
    summary="审计记录 Audit records",
    description="In chain order; page with `after` = the previous page's `next_after`.",
    responses=problem_responses(Forbidden),
)
async def list_audit_records(
    request: Request,
    principal: Auditor,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    actor_id: Annotated[str | None, Query(max_length=120)] = None,
    action: Annotated[str | None, Query(max_length=80)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(max_length=16)] = None,
    occurred_from: IsoDateTime | None = None,
    occurred_to: IsoDateTime | None = None,
) -> AuditPage:
    stmt = select(AuditRecord).where(AuditRecord.seq > after)
    if actor_id:
        stmt = stmt.where(AuditRecord.actor_id == actor_id)
    if action:
        stmt = stmt.where(AuditRecord.action == action)
    if object_id:
        stmt = stmt.where(AuditRecord.object_id == object_id)
    if outcome:
        stmt = stmt.where(AuditRecord.outcome == outcome)
    if occurred_from:
        stmt = stmt.where(AuditRecord.occurred_at >= occurred_from)
    if occurred_to:
        stmt = stmt.where(AuditRecord.occurred_at < occurred_to)
    rows = list((await session_of(request).scalars(stmt.order_by(AuditRecord.seq).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(
        items=[AuditRecordOut.model_validate(r) for r in rows], next_after=rows[-1].seq if more else None
    )


@router.get(
    "/audit-records/verification",
    response_model=VerificationOut,
    summary="校验审计链 Verify the audit chain",
    description=(
        "Walks the whole chain, then checks its keyed seals; reports the first record that was edited, "
        "removed or moved, or rewritten with its hashes recomputed up to a sealed record."
    ),
    responses=problem_responses(Forbidden),
)
async def verify_audit_chain(request: Request, principal: Auditor) -> VerificationOut:
    app = request.app
    # The records' times are the host's wall clock (utcnow), not the service's case clock.
    result = await verify_snapshot(
        app.state.db, app.state.seal_keys, utcnow(), overdue_after(app.state.settings)
    )
    return VerificationOut(**result.as_dict())
