"""Triage rules as data (分流规则): which body types take which category, at which tier.

The package ships a default rule file (`default_rules.json`); a center replaces it through the API
(`PUT /v1/triage/rules`), which stores a new version in the database. Rules are validated here, so
a rule set that names an unknown category, body type or tier never reaches the engine.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mediation.bodies.models import MEDIATING_KINDS, BodyKind
from mediation.disputes.enums import Category, DeclineAdvice, Severity, SubjectMatter, Tier

Flag = Annotated[str, Field(pattern=r"^(group|risk)$")]
Message = Annotated[str, Field(min_length=1, max_length=500)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TierRules(_Strict):
    severity: dict[Severity, Tier] = Field(description="The lowest tier for each severity.")
    group: Tier = Field(description="The lowest tier for a group dispute (群体性).")
    risk: Tier = Field(description="The lowest tier for a dispute flagged as a risk (涉稳/危险).")

    @model_validator(mode="after")
    def _every_severity(self) -> TierRules:
        missing = set(Severity) - set(self.severity)
        if missing:
            raise ValueError(f"tiers.severity needs every severity; missing {sorted(missing)}")
        return self


class CategoryRule(_Strict):
    body_kinds: Annotated[list[BodyKind], Field(min_length=1, max_length=5)] = Field(
        description="Body types that take the category, most fitting first."
    )
    min_tier: Tier = Tier.village
    group_min_tier: Tier | None = Field(
        default=None,
        description="The lowest tier when the dispute is a group dispute (overrides tiers.group).",
    )
    group_threshold: Annotated[int | None, Field(ge=2, le=10_000)] = Field(
        default=None, description="People on one side from which the dispute counts as a group dispute."
    )
    alternatives: Annotated[list[BodyKind], Field(max_length=3)] = Field(
        default=[], description="Handoff routes open besides mediation (e.g. labour arbitration)."
    )

    @model_validator(mode="after")
    def _kinds_fit(self) -> CategoryRule:
        wrong = [k for k in self.body_kinds if k not in MEDIATING_KINDS]
        if wrong:
            raise ValueError(f"body_kinds must be mediation bodies, not {wrong}")
        if len(set(self.body_kinds)) != len(self.body_kinds):
            raise ValueError("body_kinds lists a type twice")
        wrong = [k for k in self.alternatives if k in MEDIATING_KINDS or k == BodyKind.mediation_center]
        if wrong:
            raise ValueError(f"alternatives must be courts or arbitration commissions, not {wrong}")
        return self


class DeclineRule(_Strict):
    """A matter mediation cannot handle: triage advises declining, and where to send the party."""

    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
    subject_matters: list[SubjectMatter] = []
    categories: list[Category] = []
    advice: DeclineAdvice
    message: Message
    message_en: Message
    article: Annotated[str | None, Field(max_length=200)] = None

    @model_validator(mode="after")
    def _has_condition(self) -> DeclineRule:
        if not self.subject_matters and not self.categories:
            raise ValueError(f"decline rule {self.code} needs subject_matters or categories")
        return self


class Advisory(_Strict):
    """A note shown with the recommendations (report to the police, arbitration is open ...)."""

    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
    flags: list[Flag] = []
    categories: list[Category] = []
    message: Message
    message_en: Message
    article: Annotated[str | None, Field(max_length=200)] = None


class Weights(_Strict):
    kind: Annotated[list[Annotated[int, Field(ge=0, le=1000)]], Field(min_length=1, max_length=5)] = Field(
        description="Points for the first, second ... body type of the category's list."
    )
    body_specialty: Annotated[int, Field(ge=0, le=1000)]
    mediator_specialty: Annotated[int, Field(ge=0, le=1000)]
    tier_exact: Annotated[int, Field(ge=0, le=1000)]
    tier_step_penalty: Annotated[int, Field(ge=0, le=1000)]
    load: Annotated[int, Field(ge=0, le=1000)]

    def for_kind(self, position: int) -> int:
        return self.kind[min(position, len(self.kind) - 1)]


class TriageRules(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    tiers: TierRules
    group_threshold: Annotated[int, Field(ge=2, le=10_000)] = Field(
        description="People on one side from which a dispute counts as a group dispute."
    )
    categories: dict[Category, CategoryRule]
    decline: Annotated[list[DeclineRule], Field(max_length=100)] = []
    advisories: Annotated[list[Advisory], Field(max_length=100)] = []
    weights: Weights

    @model_validator(mode="after")
    def _complete(self) -> TriageRules:
        if Category.other not in self.categories:
            raise ValueError("categories needs an entry for 'other' (the fallback)")
        return self

    def category(self, category: str) -> CategoryRule:
        try:
            return self.categories[Category(category)]
        except (KeyError, ValueError):
            return self.categories[Category.other]

    def group_threshold_for(self, category: str) -> int:
        rule = self.category(category)
        return rule.group_threshold or self.group_threshold


def parse_rules(data: Any) -> TriageRules:
    return TriageRules.model_validate(data)


@lru_cache(maxsize=1)
def default_rules() -> TriageRules:
    text = resources.files("mediation.triage").joinpath("default_rules.json").read_text("utf-8")
    return parse_rules(json.loads(text))
