"""Deadline rules as data (时限规则): which clock runs in which state, for how long, counted how.

Each rule names a clock (the stage it times), the cases it applies to (dispute category, body
type, channel, procedure, complexity; empty means any), a length and a unit, the day it counts
from (the day the case enters the state, or an earlier day the law names), whether the clock may
be paused while waiting on a party, whether and how it may be extended, whether it runs on or
starts again when the case passes to another body, and whether it is the parties' window to act
rather than a deadline on the center. When several rules
fit a case, the most specific one (the most conditions) wins; rules of equal weight keep file
order. The shipped defaults (`default_rules.json`) encode domain.md §4 with their sources; a
center points `MEDIATION_CLOCK_RULES_FILE` at its own file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mediation.bodies.models import BodyKind
from mediation.core.principal import BODY_ROLES, CENTER_ROLES, Role
from mediation.disputes.enums import Category, Channel, Complexity, CourtStage
from mediation.disputes.lifecycle import Status


class ClockName(StrEnum):
    acceptance = "acceptance"  # registered: accept or decline
    sign_for = "sign_for"  # assigned: the body signs for the case or returns it
    handling = "handling"  # accepted until mediation ends: the center's complexity deadline
    mediation = "mediation"  # mediating: the legal mediation period
    confirmation_window = "confirmation_window"  # agreement signed: apply for judicial confirmation
    follow_up_visit = "follow_up_visit"  # closed: the follow-up visit (回访) before archiving
    # The court's or commission's steps on a handoff, kept on the handoff record (handoffs.ledger).
    handoff_accept = "handoff_accept"  # decide whether to accept
    handoff_decide = "handoff_decide"  # decide the matter, once accepted


# What a clerk reads on the case's timeline and page for each clock.
CLOCK_LABELS: dict[str, str] = {
    ClockName.acceptance: "受理期限",
    ClockName.sign_for: "签收期限",
    ClockName.handling: "办理期限",
    ClockName.mediation: "调解期限",
    ClockName.confirmation_window: "司法确认申请期限",
    ClockName.follow_up_visit: "回访期限",
    ClockName.handoff_accept: "受理审查期限",
    ClockName.handoff_decide: "作出决定期限",
}


class HandoffKind(StrEnum):
    judicial_confirmation = "judicial_confirmation"
    labour_arbitration = "labour_arbitration"
    commercial_arbitration = "commercial_arbitration"
    rural_land_arbitration = "rural_land_arbitration"
    litigation = "litigation"


# The states in which each clock runs; leaving them stops it.
CLOCK_STATES: dict[ClockName, frozenset[Status]] = {
    ClockName.acceptance: frozenset({Status.registered}),
    ClockName.sign_for: frozenset({Status.assigned}),
    ClockName.handling: frozenset({Status.accepted, Status.assigned, Status.mediating}),
    ClockName.mediation: frozenset({Status.mediating}),
    ClockName.confirmation_window: frozenset({Status.agreement_signed}),
    ClockName.follow_up_visit: frozenset({Status.closed}),
}


# Who may pause, resume or extend each clock of a case. The center's window staff and supervisors
# keep the center's own deadlines: accepting, the body's sign-for, handling, and the follow-up
# visit after closing (domain.md §4.4). The body that has the case keeps its mediation period,
# which it agrees with the parties (人民调解工作若干规定 Art. 33; 特邀调解规定 Art. 27), and, while
# the case is still with it, the parties' confirmation window (no rule lets that window be paused
# or extended: 民事诉讼法 Art. 205). A court's or commission's periods are kept on its handoff
# (handoffs.ledger); it changes none of the case's clocks.
CLOCK_KEEPERS: dict[ClockName, frozenset[Role]] = {
    ClockName.acceptance: CENTER_ROLES,
    ClockName.sign_for: CENTER_ROLES,
    ClockName.handling: CENTER_ROLES,
    ClockName.mediation: BODY_ROLES,
    ClockName.confirmation_window: BODY_ROLES,
    ClockName.follow_up_visit: CENTER_ROLES,
}


class Unit(StrEnum):
    days = "days"  # calendar days; the last day moves off a rest day (民事诉讼法 Art. 85)
    working_days = "working_days"  # on the State Council's calendar, make-up working days included
    months = "months"  # the same day of the month that many months later, then as for days


UNIT_NAMES = {Unit.days: "日", Unit.working_days: "个工作日", Unit.months: "个月"}


class CountsFrom(StrEnum):
    """The day a clock's period is counted from (the triggering day, not itself counted)."""

    # The day the case enters the clock's state, each time it does.
    entry = "entry"
    # The day the agreement took effect: the judicial confirmation window runs from it
    # (民事诉讼法 Art. 205; 人民调解法 Art. 33), however late `agree` is recorded and whatever
    # confirmation request is withdrawn meanwhile.
    agreement_effective = "agreement_effective"
    # The day a mediation body first received the case (its first sign-for): the labour mediation
    # period runs from it (劳动争议调解仲裁法 Art. 14), and a transfer to another body does not
    # put it back.
    first_receipt = "first_receipt"


# Which clocks each starting day other than entry may be used for.
COUNTS_FROM_CLOCKS: dict[CountsFrom, frozenset[ClockName]] = {
    CountsFrom.agreement_effective: frozenset({ClockName.confirmation_window}),
    CountsFrom.first_receipt: frozenset({ClockName.mediation}),
}


class OnTransfer(StrEnum):
    """What becomes of a period when the case passes from one body to another (a transfer or an
    escalation) and the next body signs for it. Only a mediation period is stopped by that and
    started again by the next sign-for; every other clock either runs on through it (handling: the
    center's, in every state from acceptance to the end of mediation), times the step of one body
    alone (sign_for: each body its own working days to sign for or return the case), or runs in a
    stage a transfer never leaves (acceptance, the confirmation window, the follow-up visit, the
    handoff steps)."""

    # The period is the body's own: the next body mediates anew and has its own period
    # (人民调解工作若干规定 Art. 33: 一般在一个月内调结).
    restarts = "restarts"
    # The period is not the body's: it belongs to the referring court (特邀调解规定 Art. 27), the
    # petition rules (信访工作条例) or the law (劳动争议调解仲裁法 Art. 14), and runs on from where
    # it stood, counted from its first start, with its pauses and the extensions already used.
    runs_on = "runs_on"


# The clocks a transfer stops and the next body's sign-for starts again.
TRANSFER_STOPPED: frozenset[ClockName] = frozenset({ClockName.mediation})


class Procedure(StrEnum):
    """The court procedure a case is mediated in (特邀调解规定 Art. 27). A case a court delegated
    (Dispute.court_delegated) has `court_delegated` and the procedure of its stage (CourtStage), so a
    rule may name every court-delegated case or one stage."""

    court_delegated = "court_delegated"  # 委派或委托调解: any case a court delegated
    court_pre_filing = "court_pre_filing"  # 立案前委派调解
    court_after_filing_ordinary = "court_after_filing_ordinary"  # 立案后委托调解, 普通程序
    court_after_filing_simple = "court_after_filing_simple"  # 立案后委托调解, 简易程序


STAGE_PROCEDURES: dict[CourtStage, Procedure] = {
    CourtStage.pre_filing: Procedure.court_pre_filing,
    CourtStage.after_filing_ordinary: Procedure.court_after_filing_ordinary,
    CourtStage.after_filing_simple: Procedure.court_after_filing_simple,
}


def procedures_of(court_delegated: bool, court_stage: str | None) -> frozenset[Procedure]:
    """The procedures a case's rules may match on. A court-delegated case with no stage recorded was
    delegated before filing (the default at intake)."""
    if not court_delegated:
        return frozenset()
    stage = CourtStage(court_stage) if court_stage else CourtStage.pre_filing
    return frozenset({Procedure.court_delegated, STAGE_PROCEDURES[stage]})


class ExtensionConsent(StrEnum):
    none = "none"
    all_parties = "all_parties"  # every party agrees (人民调解工作若干规定 Art. 33; 特邀调解规定 Art. 27)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class When(_Strict):
    categories: list[Category] = []
    body_kinds: list[BodyKind] = []
    channels: list[Channel] = []
    procedures: list[Procedure] = Field(
        default=[],
        description="Court-delegated mediation (特邀调解规定 Art. 27): court_delegated (any case a court "
        "delegated), court_pre_filing (立案前委派), court_after_filing_ordinary or court_after_filing_simple "
        "(立案后委托, ordinary or simple procedure). The case fits when it has any of them.",
    )
    complexities: list[Complexity] = []
    handoffs: list[HandoffKind] = Field(default=[], description="Handoff clocks only: the kind of handoff.")

    @property
    def weight(self) -> int:
        return sum(
            1
            for values in (
                self.categories,
                self.body_kinds,
                self.channels,
                self.procedures,
                self.complexities,
            )
            if values
        )


class Extension(_Strict):
    max: Annotated[int, Field(ge=1, le=365)] = Field(
        description="Most units the clock may be extended by in all."
    )
    consent: ExtensionConsent = ExtensionConsent.all_parties


class ClockRule(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z_]+(\.[a-z_]+)*$", max_length=60)]
    clock: ClockName
    when: When = When()
    length: Annotated[int, Field(ge=1, le=3650)]
    unit: Unit
    pausable: bool = Field(default=False, description="May pause while waiting on a party.")
    extension: Extension | None = None
    counts_from: CountsFrom | None = Field(
        default=None,
        description="The day the period is counted from: the day the case enters the clock's state "
        "(entry), the day the agreement took effect (agreement_effective, confirmation_window only) or "
        "the day a mediation body first received the case (first_receipt, mediation only). By default "
        "agreement_effective for confirmation_window and entry for the others.",
    )
    on_transfer: OnTransfer = Field(
        default=OnTransfer.restarts,
        description="What a transfer (or an escalation) to another body does to a mediation period: "
        "restarts (the body's own period: the next body has its own) or runs_on (the period is the referring "
        "court's, the petition rules' or the law's: it runs on from its first start, with its pauses and "
        "extensions). Only a mediation clock may run on.",
    )
    warn_share: Annotated[float | None, Field(gt=0, lt=1)] = Field(
        default=None,
        description="Share of the period after which the case is at risk (overrides the default).",
    )
    party_window: bool | None = Field(
        default=None,
        description="The period is the parties' window to act, not a deadline on the center: the parties "
        "may apply for judicial confirmation within it and need not (人民调解法 Art. 33; 民事诉讼法 Art. 205). "
        "Its end is recorded as the window closing, never as at risk or overdue, and the case does not count "
        "as overdue for it. Such a clock is neither paused nor extended. By default true for "
        "confirmation_window and false for the others.",
    )
    source: Annotated[str, Field(min_length=1, max_length=300)] = Field(
        description="The article or practice."
    )

    @property
    def is_party_window(self) -> bool:
        if self.party_window is not None:
            return self.party_window
        return self.clock == ClockName.confirmation_window

    @property
    def starts(self) -> CountsFrom:
        if self.counts_from is not None:
            return self.counts_from
        # 民事诉讼法 Art. 205: the window runs from the agreement taking effect; a rule file need
        # not say so.
        if self.clock == ClockName.confirmation_window:
            return CountsFrom.agreement_effective
        return CountsFrom.entry


class RuleFile(_Strict):
    warn_share: Annotated[float, Field(gt=0, lt=1)] = 0.75
    rules: list[ClockRule]

    @model_validator(mode="after")
    def _complete(self) -> RuleFile:
        ids = [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError("clock rule ids must be unique")
        for rule in self.rules:
            on_handoff = rule.clock in (ClockName.handoff_accept, ClockName.handoff_decide)
            # A handoff step counts days, or working days where its law says so (e.g. 农村土地承包
            # 经营纠纷调解仲裁法 Art. 23: 五个工作日); the handoff record keeps no pauses or months.
            if on_handoff and (
                len(rule.when.handoffs) != 1 or rule.unit not in (Unit.days, Unit.working_days)
            ):
                raise ValueError(
                    f"{rule.id}: a handoff clock names one handoff kind and counts days or working days"
                )
            if not on_handoff and rule.when.handoffs:
                raise ValueError(f"{rule.id}: only handoff clocks match on handoffs")
            if rule.starts != CountsFrom.entry and rule.clock not in COUNTS_FROM_CLOCKS[rule.starts]:
                raise ValueError(
                    f"{rule.id}: a {rule.clock.value} clock cannot count from {rule.starts.value}"
                )
            if rule.on_transfer == OnTransfer.runs_on and rule.clock not in TRANSFER_STOPPED:
                raise ValueError(
                    f"{rule.id}: only a mediation period runs on across a transfer (no other clock is stopped by one)"
                )
            if rule.clock == ClockName.confirmation_window and rule.starts != CountsFrom.agreement_effective:
                raise ValueError(
                    f"{rule.id}: the confirmation window counts from the agreement taking effect"
                )
            # 人民调解法 Art. 33; 民事诉讼法 Art. 205: the parties may apply within the window; the
            # center has nothing to do by its end, so it is never the center's deadline.
            if rule.clock == ClockName.confirmation_window and not rule.is_party_window:
                raise ValueError(f"{rule.id}: the confirmation window is the parties' window")
            if rule.is_party_window and (on_handoff or rule.pausable or rule.extension is not None):
                raise ValueError(
                    f"{rule.id}: a party window is a case clock the law sets; it is neither paused nor extended"
                )
        for kind in HandoffKind:
            if not any(r.clock == ClockName.handoff_accept and kind in r.when.handoffs for r in self.rules):
                raise ValueError(f"no handoff_accept rule for {kind.value}")
        return self


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What rules match on, read off the case (and the body it is with)."""

    category: str
    channel: str
    complexity: str | None
    body_kind: str | None
    procedures: frozenset[Procedure]


def _fits(when: When, facts: CaseFacts) -> bool:
    return (
        (not when.categories or facts.category in when.categories)
        and (not when.body_kinds or facts.body_kind in when.body_kinds)
        and (not when.channels or facts.channel in when.channels)
        and (not when.procedures or any(p in facts.procedures for p in when.procedures))
        and (not when.complexities or facts.complexity in when.complexities)
    )


@dataclass(frozen=True, slots=True)
class ClockRules:
    warn_share: float
    rules: tuple[ClockRule, ...]

    def for_(self, clock: ClockName, facts: CaseFacts) -> ClockRule | None:
        """The most specific rule for this clock that fits the case, or None (no such clock)."""
        fitting = [r for r in self.rules if r.clock == clock and _fits(r.when, facts)]
        if not fitting:
            return None
        return max(fitting, key=lambda r: r.when.weight)  # max keeps the first of equal weight

    def for_handoff(self, clock: ClockName, kind: str) -> ClockRule | None:
        return next((r for r in self.rules if r.clock == clock and kind in r.when.handoffs), None)

    def party_window(self, rule_id: str, clock: str) -> bool:
        """Whether the clock started under `rule_id` is the parties' window; one whose rule has left
        the file since keeps its clock's default."""
        rule = next((r for r in self.rules if r.id == rule_id), None)
        if rule is not None:
            return rule.is_party_window
        return clock == ClockName.confirmation_window

    def share(self, rule: ClockRule) -> float:
        return rule.warn_share if rule.warn_share is not None else self.warn_share


def parse(text: str) -> ClockRules:
    data = RuleFile.model_validate(json.loads(text))
    return ClockRules(warn_share=data.warn_share, rules=tuple(data.rules))


@lru_cache(maxsize=4)
def load(path: Path | None = None) -> ClockRules:
    if path is not None:
        return parse(path.read_text(encoding="utf-8"))
    return parse(resources.files("mediation.clocks").joinpath("default_rules.json").read_text("utf-8"))
