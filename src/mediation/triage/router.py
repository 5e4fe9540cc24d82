"""HTTP API for triage: the recommendation for one case, the assignment history, and the rules."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from mediation.core.db import UnitOfWorkRoute, session_of
from mediation.core.errors import (
    Forbidden,
    NotFound,
    PreconditionRequired,
    StaleVersion,
    problem_responses,
)
from mediation.core.http import etag_for, sends
from mediation.core.i18n import Text, current_language
from mediation.core.principal import Permission, Principal
from mediation.core.schemas import WriteModel
from mediation.disputes import lifecycle
from mediation.disputes.router import Service, View
from mediation.identity.auth import authenticate, permission
from mediation.triage.engine import BodyStats, Outcome, Reason
from mediation.triage.rules import TriageRules
from mediation.triage.service import RuleSetInForce, TriageService

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["triage"])

RulesIfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description="The rules' current ETag (their version; 428 without it)."),
]

DECISION_TEXT = {
    "route": Text("按推荐顺序指派", "Assign in the order recommended"),
    "decline": Text(
        "分流规则建议不予受理, 并告知当事人其他途径",
        "The rules advise declining and pointing the party elsewhere",
    ),
    "exhausted": Text(
        "所有候选组织均已退回或转出, 须由督办人员决定",
        "Every candidate body returned or passed on the case: a supervisor must decide",
    ),
    "no_candidate": Text(
        "辖区内没有可以调处本类纠纷的在岗组织, 须由督办人员决定",
        "No active body covers this region and category: a supervisor must decide",
    ),
}


class ReasonOut(BaseModel):
    code: str = Field(description="Stable identifier, e.g. body_type, body_specialty, tier_fit, load.")
    text: str = Field(description="The reason in plain language (Chinese unless Accept-Language: en).")
    points: int = Field(description="Points it adds to the score (0 for explanations).")
    data: dict[str, Any] = Field(description="The same reason in machine-readable form.")


class BodyRef(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    tier: str
    region_code: str


class RecommendationOut(BaseModel):
    rank: int
    body: BodyRef
    score: int
    at_capacity: bool
    active_cases: int
    capacity: int
    mediator_available: bool | None = Field(
        description=(
            "Whether one of the body's registered mediators may take this case (active, not bound to "
            "step aside); null when the body registers none. A body with none available is ranked "
            "after every body with one."
        )
    )
    reasons: list[ReasonOut]


class ExcludedOut(BaseModel):
    body: BodyRef
    reason: ReasonOut


class AdviceOut(BaseModel):
    code: str
    advice: str | None = Field(default=None, description="Where to send the party (decline advice only).")
    text: str
    article: str | None


class AlternativeOut(BaseModel):
    body: BodyRef
    text: str


class TriageOut(BaseModel):
    dispute_id: uuid.UUID
    case_version: int
    rules_version: int
    decision: str = Field(description="route | decline | exhausted | no_candidate")
    decision_text: str
    tier: str = Field(description="The lowest tier that may handle the dispute.")
    tier_reasons: list[ReasonOut]
    recommendations: list[RecommendationOut] = Field(
        description="Best first. Assigning one of these needs no override_reason (unless triage "
        "advises declining); any other body needs one."
    )
    total_candidates: int
    excluded: list[ExcludedOut] = Field(description="Bodies re-triage leaves out, and why.")
    decline_advice: list[AdviceOut]
    advisories: list[AdviceOut]
    alternatives: list[AlternativeOut] = Field(
        description="Courts or commissions open besides mediation (e.g. labour arbitration)."
    )


def _ref(body: BodyStats) -> BodyRef:
    return BodyRef(id=body.id, name=body.name, kind=body.kind, tier=body.tier, region_code=body.region_code)


def _reason(reason: Reason, language: str) -> ReasonOut:
    return ReasonOut(**reason.as_dict(language))


def triage_out(
    dispute_id: uuid.UUID, version: int, outcome: Outcome, rules_version: int, limit: int, language: str
) -> TriageOut:
    return TriageOut(
        dispute_id=dispute_id,
        case_version=version,
        rules_version=rules_version,
        decision=outcome.decision,
        decision_text=DECISION_TEXT[outcome.decision].get(language),
        tier=outcome.tier.value,
        tier_reasons=[_reason(r, language) for r in outcome.tier_reasons],
        recommendations=[
            RecommendationOut(
                rank=c.rank,
                body=_ref(c.body),
                score=c.score,
                at_capacity=c.at_capacity,
                active_cases=c.body.active_cases,
                capacity=c.body.capacity,
                mediator_available=(c.body.available_mediators > 0) if c.body.registered_mediators else None,
                reasons=[_reason(r, language) for r in c.reasons],
            )
            for c in outcome.candidates[:limit]
        ],
        total_candidates=len(outcome.candidates),
        excluded=[ExcludedOut(body=_ref(b), reason=_reason(r, language)) for b, r in outcome.excluded],
        decline_advice=[
            AdviceOut(code=a["code"], advice=a["advice"], text=a["text"].get(language), article=a["article"])
            for a in outcome.advice
        ],
        advisories=[
            AdviceOut(code=a["code"], text=a["text"].get(language), article=a["article"])
            for a in outcome.advisories
        ],
        alternatives=[
            AlternativeOut(
                body=_ref(b),
                text=Text("当事人也可直接向其申请仲裁", "The party may also apply to it directly").get(
                    language
                ),
            )
            for b in outcome.alternatives
        ],
    )


@router.get(
    "/disputes/{dispute_id}/triage",
    response_model=TriageOut,
    summary="分流推荐 Triage: the bodies to assign, ranked, with reasons",
    description=(
        "Computed now from the rules in force, the body registry (jurisdiction, categories, "
        "working status), each body's load against its capacity, and the case's history: bodies "
        "that returned the case, let it lapse or passed it on are left out. A body at capacity is "
        "never first; a suspended body never appears. For the center's clerks and supervisors."
    ),
    responses=problem_responses(NotFound) | sends(200, "ETag"),
)
async def triage_dispute(
    request: Request,
    dispute_id: uuid.UUID,
    principal: Annotated[Principal, permission(Permission.cases_read)],
    svc: Service,
    limit: Annotated[int, Query(ge=1, le=100, description="How many recommendations to list.")] = 10,
) -> Response:
    if principal.role not in lifecycle.CENTER:
        raise Forbidden(Text("分流由中心窗口进行", "Triage is the center's work"))
    dispute = await svc.get(dispute_id, principal)
    rules = await svc.triage.rules()
    outcome = await svc.triage.evaluate(dispute, rules)
    body = triage_out(dispute.id, dispute.version, outcome, rules.version, limit, current_language())
    return JSONResponse(jsonable_encoder(body), headers={"ETag": etag_for(dispute.version)})


class AssignmentOut(BaseModel):
    id: uuid.UUID
    body_id: uuid.UUID
    assigned_at: datetime
    assigned_by: str
    sign_by: date = Field(description="The last day to sign for the case or return it.")
    signed_for_at: datetime | None
    rank: int | None = Field(description="The recommendation taken (1 = first); null for an override.")
    override_reason: str | None
    recommendation: dict[str, Any] = Field(description="The triage answer the assignment was made under.")
    ended_at: datetime | None
    outcome: str | None = Field(
        description="returned | lapsed | transferred | escalated | withdrawn | party_refused"
    )
    outcome_reason: str | None


@router.get(
    "/disputes/{dispute_id}/assignments",
    response_model=list[AssignmentOut],
    summary="指派记录 Assignments of the case, oldest first",
    responses=problem_responses(NotFound),
)
async def list_assignments(
    dispute_id: uuid.UUID,
    principal: Annotated[Principal, permission(Permission.cases_read)],
    svc: Service,
    view: View,
) -> list[AssignmentOut]:
    await svc.get(dispute_id, principal)
    history = await svc.triage.history(dispute_id)
    # A body sees only its own part of the history: another body's reasons for returning are not its business.
    if principal.role in lifecycle.BODY:
        history = [a for a in history if a.body_id == principal.organisation_id]
    # The reasons are typed by clerks and mediators, who may quote a party's number in them.
    return [
        AssignmentOut.model_validate(a, from_attributes=True).model_copy(
            update={
                "override_reason": view.text(dispute_id, a.override_reason),
                "outcome_reason": view.text(dispute_id, a.outcome_reason),
            }
        )
        for a in history
    ]


# ---- the rules ----------------------------------------------------------------------------------


class RulesOut(BaseModel):
    version: int = Field(description="0 for the default shipped with the package; +1 per change.")
    source: str = Field(description="default | database")
    updated_by: str | None
    updated_at: datetime | None
    rules: TriageRules


class RulesIn(WriteModel):
    # Read as before (unknown fields ignored, text as sent), with WriteModel's checks of its text.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    rules: TriageRules
    note: Annotated[str | None, Field(max_length=2000)] = None


def _rules_response(current: RuleSetInForce) -> JSONResponse:
    body = RulesOut(
        version=current.version,
        source=current.source,
        updated_by=current.updated_by,
        updated_at=current.updated_at,
        rules=current.rules,
    )
    return JSONResponse(jsonable_encoder(body), headers={"ETag": etag_for(current.version)})


@router.get(
    "/triage/rules",
    response_model=RulesOut,
    summary="分流规则 The triage rules in force",
    responses=problem_responses() | sends(200, "ETag"),
    dependencies=[Depends(authenticate)],
)
async def get_rules(request: Request) -> Response:
    return _rules_response(await TriageService(session_of(request)).rules())


@router.put(
    "/triage/rules",
    response_model=RulesOut,
    summary="替换分流规则 Replace the triage rules",
    description="Stores a new version; every later triage uses it. If-Match with the current ETag.",
    responses=problem_responses(StaleVersion, PreconditionRequired) | sends(200, "ETag"),
)
async def put_rules(
    request: Request,
    data: RulesIn,
    principal: Annotated[Principal, permission(Permission.registry_manage)],
    if_match: RulesIfMatch = None,
) -> Response:
    current = await TriageService(session_of(request)).replace_rules(
        data.rules, data.note, principal, if_match, request.app.state.clock.now()
    )
    return _rules_response(current)


@router.delete(
    "/triage/rules",
    response_model=RulesOut,
    summary="恢复默认分流规则 Back to the default rules",
    description="Stores a new version that points back to the rules shipped with the package.",
    responses=problem_responses(StaleVersion, PreconditionRequired) | sends(200, "ETag"),
)
async def reset_rules(
    request: Request,
    principal: Annotated[Principal, permission(Permission.registry_manage)],
    if_match: RulesIfMatch = None,
) -> Response:
    current = await TriageService(session_of(request)).replace_rules(
        None, None, principal, if_match, request.app.state.clock.now()
    )
    return _rules_response(current)
