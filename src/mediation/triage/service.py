"""Loading what triage needs, and keeping the rules. Services add and flush; the request commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, and_, case, cast, func, inspect, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.bodies.models import Body, BodyJurisdiction, Mediator, MediatorConflict
from mediation.core.errors import StaleVersion
from mediation.core.http import check_if_match, etag_for
from mediation.core.i18n import Text
from mediation.core.principal import Principal
from mediation.disputes.enums import Tier
from mediation.disputes.models import Assignment, Dispute, Party
from mediation.triage.engine import BodyStats, Facts, Outcome, Reason, rank, region_prefixes
from mediation.triage.models import TriageRuleSet
from mediation.triage.rules import TriageRules, default_rules, parse_rules

# A body's load: the cases it holds and has not finished mediating.
ACTIVE_STATUSES = ("assigned", "mediating")
ACTIVE_PREDICATE = "disputes.status IN ('assigned', 'mediating')"
# Assignment outcomes after which re-triage never offers that body again for the case.
EXCLUDING_OUTCOMES = {
    "returned": Text("该组织已退回本案", "This body returned the case"),
    "lapsed": Text("该组织逾期未签收本案", "This body let the sign-for period lapse"),
    "transferred": Text("该组织已将本案转出", "This body transferred the case away"),
}


# Built once: every intake and every assignment reads the rules in force.
_LATEST_RULES = select(TriageRuleSet).order_by(TriageRuleSet.version.desc()).limit(1)


@dataclass(frozen=True, slots=True)
class RuleSetInForce:
    rules: TriageRules
    version: int  # 0: the package default, never replaced
    source: str  # default | database
    updated_by: str | None
    updated_at: datetime | None


def _stepping_aside(dispute_id: uuid.UUID) -> Select[uuid.UUID]:
    """Mediators who declared a conflict with this case or with one of its parties: they step aside
    (特邀调解规定 Art. 16), so their experience is no reason to send the case to their body. The
    same conflicts the lifecycle checks when a mediator is named (`DisputeService._mediator`)."""
    parties = select(Party.id_number_index).where(
        Party.dispute_id == dispute_id, Party.id_number_index.is_not(None)
    )
    return select(MediatorConflict.mediator_id).where(
        or_(MediatorConflict.dispute_id == dispute_id, MediatorConflict.id_number_index.in_(parties))
    )


def facts_of(dispute: Dispute, rules: TriageRules | None = None) -> Facts:
    """The case's facts for triage; with `rules`, and the case's parties loaded, what the group
    threshold counts for a group dispute, as those rules count it."""
    group = None
    if dispute.is_group and rules is not None and "parties" not in inspect(dispute).unloaded:
        decision = rules.group_decision(dispute.category, dispute.people_involved, dispute.parties)
        # A flag decided under earlier rules stands as decided; it is not explained by a count the
        # rules in force would not make a group.
        group = decision if decision.is_group else None
    return Facts(
        category=dispute.category,
        severity=dispute.severity,
        is_group=dispute.is_group,
        is_risk=dispute.is_risk,
        subject_matters=tuple(dispute.subject_matters),
        region_code=dispute.region_code,
        tier=dispute.escalated_tier or Tier.village,
        group=group,
    )


class TriageService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ---- rules ----------------------------------------------------------------------------------

    async def rules(self) -> RuleSetInForce:
        row = await self.session.scalar(_LATEST_RULES)
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
        try:
            await self.session.flush()
        except IntegrityError as exc:
            # Another administrator's version with the same number committed first (the number is
            # unique): this edit started from a version no longer in force.
            raise StaleVersion(
                Text("规则已被他人修改, 请刷新后重试", "The rules have changed; reload and retry"),
                current_etag=etag_for(current.version + 1),
            ) from exc
        return await self.rules()

    # ---- triage ---------------------------------------------------------------------------------

    async def evaluate(self, dispute: Dispute, rules: RuleSetInForce | None = None) -> Outcome:
        rules = rules or await self.rules()
        facts = facts_of(dispute, rules.rules)
        rule = rules.rules.category(facts.category)
        kinds = [k.value for k in rule.body_kinds]
        alternative_kinds = [k.value for k in rule.alternatives]
        stats = await self._candidates(facts, kinds, dispute.id)
        alternatives = (
            await self._candidates(facts, alternative_kinds, dispute.id) if alternative_kinds else []
        )
        excluded = await self._exclusions(dispute.id)
        outcome = rank(facts, rules.rules, stats, excluded, alternatives)
        # The version this answer was computed under: an assignment records it, and new rules
        # committed before that record is written must not be named for a ranking they never made.
        outcome.rules_version = rules.version
        return outcome

    async def _candidates(self, facts: Facts, kinds: list[str], dispute_id: uuid.UUID) -> list[BodyStats]:
        """Active bodies of these kinds whose jurisdiction covers the dispute's region, with their
        load, and their registered mediators: how many, how many may take this case, and how many
        of those are experienced in its category. One query, plain columns (a county can register
        thousands of bodies; triage answers within 50 ms)."""
        covering = select(BodyJurisdiction.body_id).where(
            BodyJurisdiction.region_prefix.in_(region_prefixes(facts.region_code))
        )
        load = (
            select(Dispute.body_id.label("body_id"), func.count().label("n"))
            # Spelled as the partial index ix_disputes_active_body spells it, with literal values: a
            # bound parameter would keep a generic plan from proving the index applies.
            .where(text(ACTIVE_PREDICATE), Dispute.body_id.is_not(None))
            .group_by(Dispute.body_id)
            .subquery()
        )
        # Categories are plain identifiers, serialised in JSON as "name" on both databases, so a
        # match on the quoted text is exact (no category's name contains another's in quotes).
        may_take = and_(Mediator.active.is_(True), Mediator.id.not_in(_stepping_aside(dispute_id)))
        experienced = cast(Mediator.specialties, String).contains(f'"{facts.category}"', autoescape=True)
        mediators = (
            select(
                Mediator.body_id.label("body_id"),
                func.count().label("registered"),
                func.sum(case((may_take, 1), else_=0)).label("available"),
                func.sum(case((and_(may_take, experienced), 1), else_=0)).label("specialists"),
            )
            .group_by(Mediator.body_id)
            .subquery()
        )
        rows = await self.session.execute(
            select(
                Body.id,
                Body.name,
                Body.kind,
                Body.tier,
                Body.region_code,
                Body.categories,
                Body.capacity,
                func.coalesce(load.c.n, 0),
                func.coalesce(mediators.c.specialists, 0),
                func.coalesce(mediators.c.registered, 0),
                func.coalesce(mediators.c.available, 0),
            )
            .outerjoin(load, load.c.body_id == Body.id)
            .outerjoin(mediators, mediators.c.body_id == Body.id)
            .where(Body.active.is_(True), Body.kind.in_(kinds), Body.id.in_(covering))
        )
        return [
            BodyStats(
                id=row[0],
                name=row[1],
                kind=row[2],
                tier=row[3],
                region_code=row[4],
                categories=tuple(row[5] or ()),
                capacity=row[6],
                active_cases=int(row[7]),
                specialist_mediators=int(row[8]),
                registered_mediators=int(row[9]),
                available_mediators=int(row[10]),
            )
            for row in rows.all()
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


def snapshot(outcome: Outcome, rules: RuleSetInForce, body_id: uuid.UUID) -> dict[str, Any]:
    """What an assignment records of the recommendation it followed or overrode."""
    taken = outcome.rank_of(body_id)
    return {
        "rules_version": outcome.rules_version if outcome.rules_version is not None else rules.version,
        "decision": outcome.decision,
        "tier": outcome.tier.value,
        "rank": taken.rank if taken else None,
        "score": taken.score if taken else None,
        "reasons": [r.as_dict("zh") for r in taken.reasons] if taken else [],
        "top": [
            {"rank": c.rank, "body_id": str(c.body.id), "score": c.score} for c in outcome.candidates[:5]
        ],
    }
