"""Loading what triage needs, and keeping the rules. Services add and flush; the request commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.bodies.models import Body, BodyJurisdiction, Mediator
from mediation.core.http import check_if_match
from mediation.core.i18n import Text
from mediation.core.principal import Principal
from mediation.disputes.models import Assignment, Dispute
from mediation.triage.engine import BodyStats, Facts, Outcome, Reason, rank, region_prefixes
from mediation.triage.models import TriageRuleSet
from mediation.triage.rules import TriageRules, default_rules, parse_rules

# A body's load: the cases it holds and has not finished mediating.
ACTIVE_STATUSES = ("assigned", "mediating")
# Assignment outcomes after which re-triage never offers that body again for the case.
EXCLUDING_OUTCOMES = {
    "returned": Text("该组织已退回本案", "This body returned the case"),
    "lapsed": Text("该组织逾期未签收本案", "This body let the sign-for period lapse"),
    "transferred": Text("该组织已将本案转出", "This body transferred the case away"),
}


@dataclass(frozen=True, slots=True)
class RuleSetInForce:
    rules: TriageRules
    version: int  # 0: the package default, never replaced
    source: str  # default | database
    updated_by: str | None
    updated_at: datetime | None


def facts_of(dispute: Dispute) -> Facts:
    return Facts(
        category=dispute.category,
        severity=dispute.severity,
        is_group=dispute.is_group,
        is_risk=dispute.is_risk,
        subject_matters=tuple(dispute.subject_matters),
        region_code=dispute.region_code,
        tier=dispute.tier,
    )


class TriageService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ---- rules ----------------------------------------------------------------------------------

    async def rules(self) -> RuleSetInForce:
        row = await self.session.scalar(select(TriageRuleSet).order_by(TriageRuleSet.version.desc()).limit(1))
        if row is None:
            return RuleSetInForce(default_rules(), 0, "default", None, None)
        if row.rules is None:
            return RuleSetInForce(default_rules(), row.version, "default", row.created_by, row.created_at)
        return RuleSetInForce(parse_rules(row.rules), row.version, "database", row.created_by, row.created_at)

    async def replace_rules(
        self,
        rules: TriageRules | None,
        note: str | None,
        principal: Principal,
        if_match: str | None,
        now: datetime,
    ) -> RuleSetInForce:
        """A new version of the rules (None: back to the default). If-Match names the version in force,
        so two administrators editing at once don't overwrite each other."""
        current = await self.rules()
        check_if_match(if_match, current.version)
        row = TriageRuleSet(
            version=current.version + 1,
            rules=rules.model_dump(mode="json") if rules is not None else None,
            note=note,
            created_by=principal.id,
            created_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return await self.rules()

    # ---- triage ---------------------------------------------------------------------------------

    async def evaluate(self, dispute: Dispute, rules: RuleSetInForce | None = None) -> Outcome:
        rules = rules or await self.rules()
        facts = facts_of(dispute)
        kinds = [k.value for k in rules.rules.category(facts.category).body_kinds]
        alternative_kinds = [k.value for k in rules.rules.category(facts.category).alternatives]
        bodies = await self._covering(facts, [*kinds, *alternative_kinds])
        mediating = [b for b in bodies if b.kind in kinds]
        stats = await self._stats(mediating, facts.category)
        excluded = await self._exclusions(dispute.id)
        alternatives = [_plain(b) for b in bodies if b.kind in alternative_kinds]
        return rank(facts, rules.rules, stats, excluded, alternatives)

    async def _covering(self, facts: Facts, kinds: list[str]) -> list[Body]:
        """Active bodies of these kinds whose jurisdiction covers the dispute's region."""
        covering = select(BodyJurisdiction.body_id).where(
            BodyJurisdiction.region_prefix.in_(region_prefixes(facts.region_code))
        )
        rows = await self.session.scalars(
            select(Body).where(Body.active.is_(True), Body.kind.in_(kinds), Body.id.in_(covering))
        )
        return list(rows.all())

    async def _stats(self, bodies: list[Body], category: str) -> list[BodyStats]:
        if not bodies:
            return []
        ids = [b.id for b in bodies]
        loads: dict[uuid.UUID, int] = {}
        for chunk in _chunks(ids):
            rows = await self.session.execute(
                select(Dispute.body_id, func.count())
                .where(Dispute.body_id.in_(chunk), Dispute.status.in_(ACTIVE_STATUSES))
                .group_by(Dispute.body_id)
            )
            loads.update({body_id: int(n) for body_id, n in rows.all() if body_id is not None})
        specialists: dict[uuid.UUID, int] = {}
        for chunk in _chunks(ids):
            roster = await self.session.execute(
                select(Mediator.body_id, Mediator.specialties).where(
                    Mediator.body_id.in_(chunk), Mediator.active.is_(True)
                )
            )
            for owner, specialties in roster.all():
                if category in (specialties or []):
                    specialists[owner] = specialists.get(owner, 0) + 1
        return [
            BodyStats(
                id=b.id,
                name=b.name,
                kind=b.kind,
                tier=b.tier,
                region_code=b.region_code,
                categories=tuple(b.categories or ()),
                capacity=b.capacity,
                active_cases=loads.get(b.id, 0),
                specialist_mediators=specialists.get(b.id, 0),
            )
            for b in bodies
        ]

    async def _exclusions(self, dispute_id: uuid.UUID) -> dict[uuid.UUID, Reason]:
        rows = await self.session.execute(
            select(Assignment.body_id, Assignment.outcome, Assignment.outcome_reason)
            .where(Assignment.dispute_id == dispute_id, Assignment.outcome.in_(EXCLUDING_OUTCOMES))
            .order_by(Assignment.assigned_at)
        )
        excluded: dict[uuid.UUID, Reason] = {}
        for body_id, outcome, why in rows.all():
            ending = str(outcome)
            excluded[body_id] = Reason(
                f"excluded_{ending}", EXCLUDING_OUTCOMES[ending], 0, {"outcome": ending, "reason": why}
            )
        return excluded

    async def open_assignment(self, dispute_id: uuid.UUID) -> Assignment | None:
        return await self.session.scalar(
            select(Assignment)
            .where(Assignment.dispute_id == dispute_id, Assignment.ended_at.is_(None))
            .order_by(Assignment.assigned_at.desc())
            .limit(1)
        )

    async def history(self, dispute_id: uuid.UUID) -> list[Assignment]:
        rows = await self.session.scalars(
            select(Assignment).where(Assignment.dispute_id == dispute_id).order_by(Assignment.assigned_at)
        )
        return list(rows.all())


def _chunks(ids: list[uuid.UUID], size: int = 500) -> list[list[uuid.UUID]]:
    # SQLite caps bound parameters per statement; a county can have thousands of bodies.
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def snapshot(outcome: Outcome, rules: RuleSetInForce, body_id: uuid.UUID) -> dict[str, Any]:
    """What an assignment records of the recommendation it followed or overrode."""
    taken = outcome.rank_of(body_id)
    return {
        "rules_version": rules.version,
        "decision": outcome.decision,
        "tier": outcome.tier.value,
        "rank": taken.rank if taken else None,
        "score": taken.score if taken else None,
        "reasons": [r.as_dict("zh") for r in taken.reasons] if taken else [],
        "top": [
            {"rank": c.rank, "body_id": str(c.body.id), "score": c.score} for c in outcome.candidates[:5]
        ],
    }


def _plain(body: Body) -> BodyStats:
    return BodyStats(
        id=body.id,
        name=body.name,
        kind=body.kind,
        tier=body.tier,
        region_code=body.region_code,
        categories=tuple(body.categories or ()),
        capacity=body.capacity,
        active_cases=0,
        specialist_mediators=0,
    )
