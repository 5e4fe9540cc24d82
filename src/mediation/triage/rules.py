"""Triage rules as data (分流规则): which body types take which category, at which tier.

The package ships a default rule file (`default_rules.json`); a center replaces it through the API
(`PUT /v1/triage/rules`), which stores a new version in the database. Rules are validated here, so
a rule set that names an unknown category, body type or tier never reaches the engine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails

from mediation.bodies.models import MEDIATING_KINDS, BodyKind
from mediation.core.i18n import Text
from mediation.core.schemas import DomainValueError
from mediation.disputes.enums import Category, DeclineAdvice, Severity, SubjectMatter, Tier
from mediation.disputes.schemas import CountedParty, workers_side

Flag = Annotated[str, Field(pattern=r"^(group|risk)$")]
Message = Annotated[str, Field(min_length=1, max_length=500)]


class GroupCount(StrEnum):
    """What a category's group threshold counts."""

    everyone = "everyone"  # every person the dispute involves (涉及人数)
    workers = "workers"  # 劳动者一方 (劳动争议调解仲裁法 Art. 7): labour only


# 劳动争议调解仲裁法 Art. 7 counts the workers' side of a labour dispute ("劳动者一方在十人以上"),
# whatever a center's rules say of the threshold; a category whose rule leaves `group_counts` out
# counts as this says, so rules stored before the setting existed count labour disputes that way too.
DEFAULT_GROUP_COUNT: Mapping[Category, GroupCount] = {Category.labour: GroupCount.workers}


@dataclass(frozen=True, slots=True)
class GroupDecision:
    """Whether a dispute is a group dispute (群体性), with what was counted: the timeline and the
    triage explanation say it (劳动者一方 10 人, 达到群体性纠纷标准 10 人)."""

    counts: GroupCount
    counted: int
    threshold: int

    @property
    def is_group(self) -> bool:
        return self.counted >= self.threshold

    @property
    def counted_text(self) -> Text:
        if self.counts == GroupCount.workers:
            return Text(f"劳动者一方{self.counted}人", f"{self.counted} on the workers' side")
        return Text(f"涉及{self.counted}人", f"{self.counted} people involved")

    @property
    def text(self) -> Text:
        counted, threshold = self.counted_text, self.threshold
        if self.is_group:
            return Text(
                f"{counted.zh}, 达到群体性纠纷标准{threshold}人",
                f"{counted.en}, at or above the group threshold of {threshold}",
            )
        return Text(
            f"{counted.zh}, 未达群体性纠纷标准{threshold}人",
            f"{counted.en}, below the group threshold of {threshold}",
        )

    def record(self) -> dict[str, Any]:
        """As the timeline and the events keep it."""
        return {
            "counts": self.counts.value,
            "counted": self.counted,
            "threshold": self.threshold,
            "is_group": self.is_group,
        }

    @classmethod
    def of_record(cls, record: Mapping[str, Any]) -> GroupDecision | None:
        try:
            return cls(GroupCount(record["counts"]), int(record["counted"]), int(record["threshold"]))
        except (KeyError, TypeError, ValueError):
            return None


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
    group_counts: GroupCount | None = Field(
        default=None,
        description="What the group threshold counts: `everyone` the dispute involves (涉及人数), or "
        "the `workers` of a labour dispute (劳动者一方, 劳动争议调解仲裁法 Art. 7): the people involved "
        "but the parties on the employer's side (the side, applicant or respondent, holding the "
        "organisation party; the respondent side when neither or both do), any other organisation and "
        "any third party; agents are never counted. `workers` is for the labour category only (422 "
        "`group_counts_labour_only`). Omitted: `workers` for labour, `everyone` otherwise.",
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

    @model_validator(mode="after")
    def _workers_in_labour_only(self) -> TriageRules:
        # Only a labour dispute has a workers' side (劳动争议调解仲裁法 Art. 7); another category
        # counting it would count the people involved but the respondents, which is no rule.
        wrong = [
            InitErrorDetails(
                type="value_error",
                loc=("categories", category.value, "group_counts"),
                input=rule.group_counts,
                ctx={
                    "error": DomainValueError(
                        "group_counts_labour_only",
                        Text(
                            "只有劳动争议按劳动者一方人数认定群体性纠纷 (劳动争议调解仲裁法第七条); "
                            "其他类型请填 everyone (按涉及人数) 或不填",
                            "Only labour disputes count the workers' side (劳动争议调解仲裁法 Art. 7); "
                            "give everyone (the people involved) or leave it out for other categories",
                        ),
                    )
                },
            )
            for category, rule in self.categories.items()
            if rule.group_counts == GroupCount.workers and category != Category.labour
        ]
        if wrong:
            raise ValidationError.from_exception_data("rules", wrong)
        return self

    def category(self, category: str) -> CategoryRule:
        try:
            return self.categories[Category(category)]
        except (KeyError, ValueError):
            return self.categories[Category.other]

    def group_threshold_for(self, category: str) -> int:
        rule = self.category(category)
        return rule.group_threshold or self.group_threshold

    def group_count_for(self, category: str) -> GroupCount:
        rule = self.category(category)
        if rule.group_counts is not None:
            return rule.group_counts
        try:
            return DEFAULT_GROUP_COUNT.get(Category(category), GroupCount.everyone)
        except ValueError:  # a category no longer on the list falls back to `other`'s rule
            return GroupCount.everyone

    def group_decision(self, category: str, people: int, parties: Sequence[CountedParty]) -> GroupDecision:
        """Whether a dispute of `category` involving `people`, with these parties (agents among them
        or not), is a group dispute: the one decision intake and corrections make."""
        counts = self.group_count_for(category)
        counted = workers_side(people, parties) if counts == GroupCount.workers else people
        return GroupDecision(counts, counted, self.group_threshold_for(category))


def parse_rules(data: Any) -> TriageRules:
    return TriageRules.model_validate(data)


@lru_cache(maxsize=1)
def default_rules() -> TriageRules:
    text = resources.files("mediation.triage").joinpath("default_rules.json").read_text("utf-8")
    return parse_rules(json.loads(text))
