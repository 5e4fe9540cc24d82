"""The triage engine (分流): from a dispute's facts and the body registry to ranked recommendations.

Pure and synchronous: the service loads the facts, the candidate bodies with their load and the
exclusions; this module decides. Every number that moves a body up or down comes with a reason a
clerk can read aloud and a code another system can act on.

Order of the ranking (domain.md §4.4, "小事不出村、大事不出镇、矛盾不上交"):
1. The tier: the highest of what the severity, the category and the flags (group, risk) require,
   and of the tier the case has already reached by escalation. Bodies below it never appear;
   bodies above it do, with fewer points, so a case is not stuck when the tier has no body.
2. Among the bodies covering the dispute's region and taking its category: a body none of whose
   registered mediators may take the case never comes before one with a mediator who may, nor a
   body at capacity before one with room; then by points (body type as the rules order them,
   specialty of the body and its mediators, tier fit, spare capacity); ties go to the less loaded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from mediation.bodies.models import BodyKind
from mediation.core.i18n import Text
from mediation.disputes.enums import CATEGORY_LABELS, Category, Severity, Tier
from mediation.triage.rules import GroupDecision, TriageRules

TIER_ORDER = list(Tier)
TIER_LABELS = {Tier.village: "村(社区)", Tier.town: "乡镇(街道)", Tier.county: "县(区)", Tier.city: "市"}
SEVERITY_LABELS = {Severity.ordinary: "一般", Severity.major: "较大", Severity.serious: "重大"}
KIND_LABELS = {
    BodyKind.people_mediation_committee: "人民调解委员会",
    BodyKind.industry_mediation: "行业性专业性调解组织",
    BodyKind.administrative_mediation: "行政调解组织",
    BodyKind.lawyer_mediation: "律师调解组织",
    BodyKind.court_invited_mediation: "法院特邀调解组织",
    BodyKind.court: "人民法院",
    BodyKind.labour_arbitration_commission: "劳动人事争议仲裁委员会",
    BodyKind.commercial_arbitration_commission: "仲裁委员会",
    BodyKind.rural_land_arbitration_commission: "农村土地承包仲裁委员会",
    BodyKind.mediation_center: "矛盾纠纷调处中心",
}


def tier_index(tier: str) -> int:
    return TIER_ORDER.index(Tier(tier))


def higher_tier(a: Tier, b: Tier) -> Tier:
    return a if tier_index(a) >= tier_index(b) else b


@dataclass(frozen=True, slots=True)
class Facts:
    category: str
    severity: str
    is_group: bool
    is_risk: bool
    subject_matters: tuple[str, ...]
    region_code: str
    tier: str  # the tier escalation raised the case to (village when never escalated)
    # What the group threshold counted, for the reason to say (劳动者一方 12 人); None when not known.
    group: GroupDecision | None = None


@dataclass(frozen=True, slots=True)
class BodyStats:
    id: uuid.UUID
    name: str
    kind: str
    tier: str
    region_code: str
    categories: tuple[str, ...]
    capacity: int
    active_cases: int
    specialist_mediators: int  # active mediators with the dispute's category as a specialty
    # The body's mediators on the register, and those of them who may take this case: active and
    # not bound to step aside from it. A body that registers none is not judged by them (the
    # register is kept by the bodies that choose to); one whose registered mediators are all
    # unable is, since it cannot name one (人民调解法 Art. 19; 特邀调解规定 Art. 16).
    registered_mediators: int = 0
    available_mediators: int = 0


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    text: Text
    points: int = 0
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, language: str | None) -> dict[str, Any]:
        return {"code": self.code, "text": self.text.get(language), "points": self.points, "data": self.data}


@dataclass(slots=True)
class Candidate:
    """A body that may take the case, with the points of its score. The reasons are written out
    only for the candidates someone reads (the first page, the one assigned): a county registry
    can put a thousand bodies in the running."""

    body: BodyStats
    label: str  # the category's Chinese name
    category: str
    kind_position: int
    kind_points: int
    body_specialty_points: int
    mediator_specialty_points: int
    steps_up: int
    tier_points: int
    load_points: int
    score: int = 0
    rank: int = 0

    @property
    def at_capacity(self) -> bool:
        return self.body.active_cases >= self.body.capacity

    @property
    def no_mediator_available(self) -> bool:
        return self.body.registered_mediators > 0 and self.body.available_mediators == 0

    @property
    def load_ratio(self) -> float:
        return self.body.active_cases / self.body.capacity if self.body.capacity else 1.0

    @property
    def reasons(self) -> list[Reason]:
        body, label, category = self.body, self.label, self.category
        reasons = [
            Reason(
                "body_type",
                Text(
                    f"「{label}」纠纷归口{KIND_LABELS[BodyKind(body.kind)]} (规则第 {self.kind_position + 1} 选择)",
                    f"{category} disputes go to a {body.kind} (choice {self.kind_position + 1} of the rules)",
                ),
                self.kind_points,
                {"kind": body.kind, "choice": self.kind_position + 1},
            )
        ]
        if category in body.categories:
            reasons.append(
                Reason(
                    "body_specialty",
                    Text(f"专门调处「{label}」纠纷", f"Specialises in {category} disputes"),
                    self.body_specialty_points,
                    {"category": category},
                )
            )
        if body.specialist_mediators:
            reasons.append(
                Reason(
                    "mediator_specialty",
                    Text(
                        f"有 {body.specialist_mediators} 名擅长「{label}」纠纷的调解员",
                        f"{body.specialist_mediators} mediator(s) experienced in {category} disputes",
                    ),
                    self.mediator_specialty_points,
                    {"mediators": body.specialist_mediators},
                )
            )
        tier_label = TIER_LABELS[Tier(body.tier)]
        if self.steps_up == 0:
            tier_text = Text(f"层级相符: {tier_label}一级", f"Tier fits: {body.tier} level")
        else:
            tier_text = Text(
                f"层级高于所需 {self.steps_up} 级 ({tier_label}), 本级无合适组织时可由其调处",
                f"{self.steps_up} tier(s) above what is needed ({body.tier})",
            )
        reasons.append(
            Reason("tier_fit", tier_text, self.tier_points, {"tier": body.tier, "steps_above": self.steps_up})
        )
        if self.no_mediator_available:
            reasons.append(
                Reason(
                    "no_mediator_available",
                    Text(
                        f"登记的 {body.registered_mediators} 名调解员均已停用或须回避, 无人可承办本案,"
                        " 排在有调解员可承办的组织之后",
                        f"None of its {body.registered_mediators} registered mediator(s) may take this case"
                        " (inactive, or bound to step aside); ranked after bodies with one who may",
                    ),
                    0,
                    {"registered": body.registered_mediators, "available": 0},
                )
            )
        if self.at_capacity:
            load_text = Text(
                f"已满负荷 (在办 {body.active_cases}/{body.capacity}), 排在未满负荷的组织之后",
                f"At capacity ({body.active_cases}/{body.capacity}); ranked after bodies with room",
            )
        else:
            load_text = Text(
                f"在办 {body.active_cases} 件, 容量 {body.capacity} 件",
                f"{body.active_cases} active case(s) of a capacity of {body.capacity}",
            )
        reasons.append(
            Reason(
                "load",
                load_text,
                self.load_points,
                {
                    "active_cases": body.active_cases,
                    "capacity": body.capacity,
                    "at_capacity": self.at_capacity,
                },
            )
        )
        return reasons


@dataclass(slots=True)
class Outcome:
    decision: str  # route | decline | exhausted | no_candidate
    tier: Tier
    tier_reasons: list[Reason]
    candidates: list[Candidate]
    excluded: list[tuple[BodyStats, Reason]]
    advice: list[dict[str, Any]]  # decline rules that matched
    advisories: list[dict[str, Any]]
    alternative_kinds: list[str]
    alternatives: list[BodyStats]  # courts or commissions open besides mediation
    rules_version: int | None = None  # set by the service that loaded the rules

    def rank_of(self, body_id: uuid.UUID) -> Candidate | None:
        return next((c for c in self.candidates if c.body.id == body_id), None)


def required_tier(facts: Facts, rules: TriageRules) -> tuple[Tier, list[Reason]]:
    """The lowest tier that may handle the dispute, with why."""
    rule = rules.category(facts.category)
    label = CATEGORY_LABELS.get(Category(facts.category), facts.category)
    steps: list[tuple[Tier, Reason]] = []
    by_severity = rules.tiers.severity[Severity(facts.severity)]
    steps.append(
        (
            by_severity,
            Reason(
                "tier_by_severity",
                Text(
                    f"{SEVERITY_LABELS[Severity(facts.severity)]}纠纷至少由{TIER_LABELS[by_severity]}一级调处",
                    f"A {facts.severity} dispute is handled at {by_severity.value} level or above",
                ),
                data={"severity": facts.severity, "tier": by_severity.value},
            ),
        )
    )
    steps.append(
        (
            rule.min_tier,
            Reason(
                "tier_by_category",
                Text(
                    f"「{label}」纠纷至少由{TIER_LABELS[rule.min_tier]}一级调处",
                    f"{facts.category} disputes are handled at {rule.min_tier.value} level or above",
                ),
                data={"category": facts.category, "tier": rule.min_tier.value},
            ),
        )
    )
    if facts.is_group:
        group_tier = rule.group_min_tier or rules.tiers.group
        text = Text(
            f"群体性纠纷至少由{TIER_LABELS[group_tier]}一级调处",
            f"Group disputes are handled at {group_tier.value} level or above",
        )
        data: dict[str, Any] = {"flag": "group", "tier": group_tier.value}
        if facts.group is not None:
            # What was counted, so the clerk can say why it is a group dispute (劳动争议调解仲裁法
            # Art. 7 counts the workers' side of a labour dispute, not its employer).
            counted = facts.group.text
            text = Text(f"{text.zh} ({counted.zh})", f"{text.en} ({counted.en})")
            data |= facts.group.record()
        steps.append((group_tier, Reason("tier_by_group", text, data=data)))
    if facts.is_risk:
        steps.append(
            (
                rules.tiers.risk,
                Reason(
                    "tier_by_risk",
                    Text(
                        f"有激化风险的纠纷至少由{TIER_LABELS[rules.tiers.risk]}一级调处",
                        f"Disputes at risk of escalating are handled at {rules.tiers.risk.value} level or above",
                    ),
                    data={"flag": "risk", "tier": rules.tiers.risk.value},
                ),
            )
        )
    escalated = Tier(facts.tier)
    if escalated != Tier.village:
        steps.append(
            (
                escalated,
                Reason(
                    "tier_by_escalation",
                    Text(
                        f"案件已上移至{TIER_LABELS[escalated]}一级调处",
                        f"The case was escalated to {escalated.value} level",
                    ),
                    data={"tier": escalated.value},
                ),
            )
        )
    tier = Tier.village
    for step, _ in steps:
        tier = higher_tier(tier, step)
    # Only the steps that set the tier explain it.
    return tier, [reason for step, reason in steps if step == tier]


def region_prefixes(region_code: str) -> list[str]:
    """Every prefix of a 12-digit code a jurisdiction can be written as: province, city, county,
    town, village (GB/T 2260 and the statistical extension)."""
    code = region_code.ljust(12, "0")
    return [code[:cut] for cut in (2, 4, 6, 9, 12)]


def rank(
    facts: Facts,
    rules: TriageRules,
    bodies: list[BodyStats],
    excluded: dict[uuid.UUID, Reason],
    alternatives: list[BodyStats] | None = None,
) -> Outcome:
    """`bodies` are the active bodies covering the region (any type); the rules pick among them."""
    tier, tier_reasons = required_tier(facts, rules)
    rule = rules.category(facts.category)
    weights = rules.weights
    advice = [
        {
            "code": d.code,
            "advice": d.advice.value,
            "text": Text(d.message, d.message_en),
            "article": d.article,
        }
        for d in rules.decline
        if set(d.subject_matters) & set(facts.subject_matters) or facts.category in d.categories
    ]
    flags = {name for name, on in (("group", facts.is_group), ("risk", facts.is_risk)) if on}
    advisories = [
        {"code": a.code, "text": Text(a.message, a.message_en), "article": a.article}
        for a in rules.advisories
        if set(a.flags) & flags or facts.category in a.categories
    ]
    kinds = [k.value for k in rule.body_kinds]
    label = CATEGORY_LABELS.get(Category(facts.category), facts.category)
    floor = tier_index(tier)

    candidates: list[Candidate] = []
    shut_out: list[tuple[BodyStats, Reason]] = []
    for body in bodies:
        if body.kind not in kinds:
            continue
        if body.categories and facts.category not in body.categories:
            continue
        steps_up = tier_index(body.tier) - floor
        if steps_up < 0:
            continue
        if body.id in excluded:
            shut_out.append((body, excluded[body.id]))
            continue
        position = kinds.index(body.kind)
        spare = max(body.capacity - body.active_cases, 0)
        candidate = Candidate(
            body=body,
            label=label,
            category=facts.category,
            kind_position=position,
            kind_points=weights.for_kind(position),
            body_specialty_points=weights.body_specialty if facts.category in body.categories else 0,
            mediator_specialty_points=weights.mediator_specialty if body.specialist_mediators else 0,
            steps_up=steps_up,
            tier_points=max(weights.tier_exact - steps_up * weights.tier_step_penalty, 0),
            load_points=round(weights.load * spare / body.capacity) if body.capacity else 0,
        )
        candidate.score = (
            candidate.kind_points
            + candidate.body_specialty_points
            + candidate.mediator_specialty_points
            + candidate.tier_points
            + candidate.load_points
        )
        candidates.append(candidate)

    # A body that cannot name a mediator for the case, then one at capacity, never comes first.
    candidates.sort(
        key=lambda c: (
            c.no_mediator_available,
            c.at_capacity,
            -c.score,
            c.load_ratio,
            c.body.active_cases,
            c.body.name,
            c.body.id,
        )
    )
    for i, c in enumerate(candidates, start=1):
        c.rank = i

    if advice:
        decision = "decline"
    elif candidates:
        decision = "route"
    elif shut_out:
        decision = "exhausted"
    else:
        decision = "no_candidate"
    return Outcome(
        decision=decision,
        tier=tier,
        tier_reasons=tier_reasons,
        candidates=candidates,
        excluded=shut_out,
        advice=advice,
        advisories=advisories,
        alternative_kinds=[k.value for k in rule.alternatives],
        alternatives=alternatives or [],
    )
