"""The dispute lifecycle (domain.md §3): one transition table, pure guards, a `transitions` machine.

The table is data: for every action, the states it leaves from, the state it reaches, who may
trigger it and the guards it must pass. Guards are plain functions over already-loaded data (no
I/O, no side effects) that return the reasons they refuse, each citing its rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from transitions import Machine, MachineError

from mediation.agreements import rules as agreement_rules
from mediation.agreements.models import Agreement
from mediation.bodies.models import ARBITRATION_KINDS, MEDIATING_KINDS, Body, BodyKind, Mediator
from mediation.core.errors import GuardFailed, InvalidTransition
from mediation.core.i18n import Listing, Text
from mediation.core.legal_time import LONGEST_HOLIDAY_RUN, PeriodEnd, period_end
from mediation.core.principal import Principal, Role
from mediation.core.refusal import Refusal, summary
from mediation.disputes.enums import (
    AgreementForm,
    Category,
    Consent,
    NotAcceptedReason,
    SubjectMatter,
    TerminationReason,
    Tier,
)
from mediation.disputes.models import Dispute
from mediation.handoffs.answers import ARBITRATION_HANDOFF_KINDS, DECIDERS, outcome_refused, reason_refused
from mediation.handoffs.models import Handoff
from mediation.triage.engine import TIER_LABELS, Outcome, tier_index


class Status(StrEnum):
    registered = "registered"
    declined = "declined"
    accepted = "accepted"
    assigned = "assigned"
    mediating = "mediating"
    agreement_signed = "agreement_signed"
    performed = "performed"
    confirmation_pending = "confirmation_pending"
    confirmed = "confirmed"
    confirmation_rejected = "confirmation_rejected"
    mediation_failed = "mediation_failed"
    withdrawn = "withdrawn"
    referred_arbitration = "referred_arbitration"
    referred_litigation = "referred_litigation"
    closed = "closed"
    archived = "archived"


STATUS_LABELS: Mapping[Status, Text] = {
    Status.registered: Text("已登记", "Registered"),
    Status.declined: Text("不予受理", "Declined"),
    Status.accepted: Text("已受理(待分流)", "Accepted, awaiting triage"),
    Status.assigned: Text("已指派(待签收)", "Assigned, awaiting sign-for"),
    Status.mediating: Text("调解中", "Mediating"),
    Status.agreement_signed: Text("达成协议", "Agreement signed"),
    Status.performed: Text("已履行", "Performed"),
    Status.confirmation_pending: Text("司法确认中", "Judicial confirmation pending"),
    Status.confirmed: Text("已确认有效", "Confirmed by the court"),
    Status.confirmation_rejected: Text("确认被驳回", "Confirmation rejected"),
    Status.mediation_failed: Text("调解不成", "Mediation failed"),
    Status.withdrawn: Text("已撤回", "Withdrawn"),
    Status.referred_arbitration: Text("已导入仲裁", "Referred to arbitration"),
    Status.referred_litigation: Text("已导入诉讼", "Referred to litigation"),
    Status.closed: Text("已结案", "Closed"),
    Status.archived: Text("已归档", "Archived"),
}

TERMINAL = frozenset({Status.declined, Status.archived})


class Action(StrEnum):
    accept = "accept"
    decline = "decline"
    assign = "assign"
    sign_for = "sign_for"
    return_ = "return"
    transfer = "transfer"
    escalate = "escalate"
    withdraw = "withdraw"
    agree = "agree"
    fail = "fail"
    request_confirmation = "request_confirmation"
    withdraw_confirmation = "withdraw_confirmation"
    record_performance = "record_performance"
    confirm = "confirm"
    reject = "reject"
    not_accept = "not_accept"
    remediate = "remediate"
    refer_arbitration = "refer_arbitration"
    refer_litigation = "refer_litigation"
    record_outcome = "record_outcome"
    close = "close"
    archive = "archive"


# The actions that pass a case in mediation on to another body, by way of re-triage. A period that
# is not the body's own (the referring court's, the petition's) runs on across them
# (clocks.rules.OnTransfer).
HANDING_ON = frozenset({Action.transfer, Action.escalate})

# Actions that hand the case on to a court or commission (opening a handoff), and the target's
# decisions that settle it: their events name the handoff (events.catalogue: HANDOFF_FIELDS).
HANDOFF_OPENINGS = frozenset({Action.request_confirmation, Action.refer_arbitration, Action.refer_litigation})
HANDOFF_DECISIONS = frozenset(
    {Action.confirm, Action.reject, Action.not_accept, Action.withdraw_confirmation, Action.record_outcome}
)


# ---- guards -------------------------------------------------------------------------------------


@dataclass(slots=True)
class GuardContext:
    """Everything a guard may look at, loaded before the guards run."""

    dispute: Dispute
    payload: Any
    principal: Principal
    today: date
    confirmation_window_days: int = 30
    labour_mediation_days: int = 15
    target: Body | None = None  # the body/court/commission the action names, if any
    triage: Outcome | None = None  # the recommendation, for assign
    mediator: Mediator | None = None  # the mediator the action names, if any
    conflicts: list[str] = field(default_factory=list)  # that mediator's declared conflicts here
    agreement: Agreement | None = None  # the agreement the action concerns (agree, confirmation)
    handoff: Handoff | None = None  # the open confirmation request or referral
    competent_courts: dict[str, list[Body]] = field(default_factory=dict)  # by basis
    document_kinds: set[str] = field(default_factory=set)  # kinds of active documents on file
    unperformed_due: int = 0  # obligations of the agreement in force past their day, not performed
    visit_status: str | None = None  # the follow-up visit's status, for archive
    # The number of the case's agreement version in effect (signed by all) but not yet recorded on
    # the case with `agree`: looked up while the case is mediating, the only state one is made in.
    agreement_in_effect: int | None = None


GuardCheck = Callable[[GuardContext], list[Refusal]]

# A mediator related to a party or with an interest in the case steps aside (回避).
RECUSAL = "特邀调解规定 第十六条"


@dataclass(frozen=True, slots=True)
class Guard:
    name: str
    description: Text
    article: str | None
    check: GuardCheck
    needs_payload: bool = True
    # The categories of dispute the condition is about (None: any); a case of another category
    # meets it by definition, and a case's own list of conditions leaves it out.
    categories: frozenset[Category] | None = None

    def concerns(self, dispute: Dispute) -> bool:
        return self.categories is None or dispute.category in self.categories


def _parties_refusing(ctx: GuardContext) -> list[Refusal]:
    refusing = [p.name for p in ctx.dispute.parties if p.consent == Consent.refused]
    if not refusing:
        return []
    return [
        Refusal(
            "party_refused_mediation",
            Text("当事人明确拒绝调解, 不得继续调解: {n}", "A party clearly refuses mediation: {n}").format(
                n=Listing(refusing)
            ),
            "人民调解法 第十七条",
        )
    ]


def _court_delegated_consent(ctx: GuardContext) -> list[Refusal]:
    # Every case a court delegated, whatever channel it was registered by (Dispute.court_delegated).
    if not ctx.dispute.court_delegated:
        return []
    missing = [
        p.name
        for p in ctx.dispute.parties
        if p.role in ("applicant", "respondent") and p.consent != Consent.given
    ]
    if not missing:
        return []
    return [
        Refusal(
            "consent_missing",
            Text(
                "法院委派或委托的调解须经当事人同意, 尚未同意: {n}",
                "Court-delegated mediation needs consent from: {n}",
            ).format(n=Listing(missing)),
            "特邀调解规定 第十一条",
        )
    ]


def _target_is(kinds: frozenset[BodyKind], what: Text) -> GuardCheck:
    def check(ctx: GuardContext) -> list[Refusal]:
        target = ctx.target
        if target is None:
            return [
                Refusal(
                    "target_not_found", Text(f"指定的{what.zh}不存在", f"The named {what.en} does not exist")
                )
            ]
        if target.kind not in kinds:
            return [
                Refusal(
                    "target_wrong_kind",
                    Text(f"「{target.name}」不是{what.zh}", f"{target.name} is not a {what.en}"),
                )
            ]
        if not target.active:
            return [
                Refusal(
                    "target_inactive", Text(f"「{target.name}」已暂停工作", f"{target.name} is suspended")
                )
            ]
        return []

    return check


def _agreement_signed_by_all(ctx: GuardContext) -> list[Refusal]:
    """The agreement named is this case's latest version, complete, and signed by everyone."""
    agreement = ctx.agreement
    if agreement is None or agreement.dispute_id != ctx.dispute.id:
        return [Refusal("agreement_not_found", Text("本案没有这份协议", "No such agreement in this case"))]
    if agreement.status == "superseded":
        return [
            Refusal(
                "agreement_superseded",
                Text("这份协议已被新版本取代", "This agreement was superseded by a newer version"),
            )
        ]
    reasons = agreement_rules.missing_elements(agreement, ctx.dispute)
    waiting = agreement_rules.awaiting(agreement, ctx.dispute)
    if waiting:
        oral = agreement.form == AgreementForm.oral
        reasons.append(
            Refusal(
                "oral_agreement_unrecorded" if oral else "agreement_unsigned",
                Text("口头协议须由调解员记录并签名", "The mediator must record an oral agreement")
                if oral
                else Text(
                    "协议尚未经全部当事人签名、盖章或按指印, 调解员签名并加盖调解组织印章: {n}",
                    "Not yet signed by every party and the mediator, and sealed: {n}",
                ).format(n=Listing(s.name for s in waiting)),
                agreement_rules.ART_28 if oral else agreement_rules.ART_29,
            )
        )
    effective = agreement.effective_on
    if effective is not None and (effective > ctx.today or effective < ctx.dispute.applied_on):
        reasons.append(
            Refusal(
                "effective_date_implausible",
                Text(
                    "协议生效日期不能晚于今天或早于申请日",
                    "The effective date cannot be in the future or before the application",
                ),
            )
        )
    return reasons


def _no_refusal_at_agreement(ctx: GuardContext) -> list[Refusal]:
    return _parties_refusing(ctx)


def _joint_application(ctx: GuardContext) -> list[Refusal]:
    applying = set(ctx.payload.applicant_party_ids)
    required = [p for p in ctx.dispute.parties if p.role in ("applicant", "respondent")]
    missing = [p.name for p in required if p.id not in applying]
    if not missing:
        return []
    return [
        Refusal(
            "not_joint_application",
            Text(
                "司法确认须由双方当事人共同申请, 未申请: {n}", "Both sides must apply jointly; missing: {n}"
            ).format(n=Listing(missing)),
            "民事诉讼法 第二百零五条",
        )
    ]


def confirmation_period(dispute: Dispute, window_days: int) -> PeriodEnd | None:
    """The last day to apply for confirmation: `window_days` from the agreement's taking effect
    (民事诉讼法 Art. 205), carried past rest days and holidays (Art. 85)."""
    effective = dispute.agreement_effective_on
    if effective is None:
        return None
    return period_end(effective, window_days)


def confirmation_uncertain(dispute: Dispute, window_days: int, today: date) -> PeriodEnd | None:
    """The period, when today is past its last day as counted on weekends and the statutory holidays
    only, in a year whose holiday schedule is not published yet, but not past any day a holiday could
    carry it to: a day the schedule adds may still carry the last day past today."""
    end = confirmation_period(dispute, window_days)
    if end is None or end.calendar_known or today <= end.last_day:
        return None
    if today > end.last_day + LONGEST_HOLIDAY_RUN:
        return None  # ended, whatever holidays the schedule brings
    return end


def _within_confirmation_window(ctx: GuardContext) -> list[Refusal]:
    end = confirmation_period(ctx.dispute, ctx.confirmation_window_days)
    if end is None or ctx.today <= end.last_day:
        return []
    if not end.calendar_known and ctx.today <= end.last_day + LONGEST_HOLIDAY_RUN:
        # Past the last day as weekends and the statutory holidays alone put it, in a year whose
        # schedule is not known:
        # not refused on a day the law may still allow. The court judges whether the request is in
        # time; the handoff carries a warning saying so (handoffs.ledger). Past any day a holiday
        # could carry it to, the period has ended whatever the schedule.
        return []
    deadline = end.last_day
    ended = (
        Text(
            "须自调解协议生效之日起 {n} 日内申请司法确认, 期限已于 {d} 届满",
            "Confirmation must be applied for within {n} days of the agreement taking effect; the period ended on {d}",
        )
        if end.calendar_known
        else Text(
            "须自调解协议生效之日起 {n} 日内申请司法确认, 期限按周末及法定节假日推算于 {d} 届满, 遇节假日顺延亦已届满",
            "Confirmation must be applied for within {n} days of the agreement taking effect; counted with "
            "weekends and the statutory holidays only the period ended on {d}, and no holiday could carry it to today",
        )
    )
    return [
        Refusal(
            "confirmation_window_closed",
            ended.format(n=ctx.confirmation_window_days, d=deadline.isoformat()),
            "民事诉讼法 第二百零五条; 人民调解法 第三十三条",
        )
    ]


NON_CONFIRMABLE = {
    SubjectMatter.personal_status: Text(
        "婚姻、亲子、收养等身份关系", "personal status (marriage, parentage, adoption)"
    ),
    SubjectMatter.property_ownership: Text("物权确权", "ownership of property"),
    SubjectMatter.ip_ownership: Text("知识产权确权", "ownership of intellectual property"),
    SubjectMatter.special_procedure: Text(
        "适用特别程序、公示催告程序或破产程序的事项",
        "matters under special, public-notice or bankruptcy procedure",
    ),
    SubjectMatter.outside_court_scope: Text(
        "不属于人民法院受理范围的事项", "matters outside the courts' scope"
    ),
}


def _confirmable_matter(ctx: GuardContext) -> list[Refusal]:
    return [
        Refusal(
            "not_confirmable",
            Text(
                f"涉及{NON_CONFIRMABLE[SubjectMatter(m)].zh}, 不能申请司法确认",
                f"Not confirmable: {NON_CONFIRMABLE[SubjectMatter(m)].en}",
            ),
            "民诉法解释 第三百五十五条",
        )
        for m in ctx.dispute.subject_matters
        if m in NON_CONFIRMABLE
    ]


NON_ARBITRABLE = {
    SubjectMatter.marriage: Text("婚姻", "marriage"),
    SubjectMatter.adoption: Text("收养", "adoption"),
    SubjectMatter.guardianship: Text("监护", "guardianship"),
    SubjectMatter.support: Text("扶养", "support"),
    SubjectMatter.inheritance: Text("继承", "inheritance"),
    SubjectMatter.administrative: Text("行政争议", "administrative disputes"),
}


def _arbitrable_matter(ctx: GuardContext) -> list[Refusal]:
    reasons: list[Refusal] = []
    if ctx.dispute.category == Category.marriage_family:
        reasons.append(
            Refusal(
                "not_arbitrable",
                Text("婚姻家庭纠纷不能仲裁", "Marriage and family disputes cannot be arbitrated"),
                "仲裁法 第三条",
            )
        )
    reasons += [
        Refusal(
            "not_arbitrable",
            Text(
                f"{NON_ARBITRABLE[SubjectMatter(m)].zh}纠纷不能仲裁",
                f"{NON_ARBITRABLE[SubjectMatter(m)].en} disputes cannot be arbitrated",
            ),
            "仲裁法 第三条",
        )
        for m in ctx.dispute.subject_matters
        if m in NON_ARBITRABLE
    ]
    return reasons


def _commission_fits(ctx: GuardContext) -> list[Refusal]:
    target, category = ctx.target, ctx.dispute.category
    if target is None:
        return []
    if target.kind == BodyKind.labour_arbitration_commission and category != Category.labour:
        return [
            Refusal(
                "wrong_commission",
                Text(
                    "劳动人事争议仲裁委员会只受理劳动争议",
                    "A labour arbitration commission hears labour disputes only",
                ),
                "劳动争议调解仲裁法 第二条",
            )
        ]
    if target.kind == BodyKind.rural_land_arbitration_commission and category != Category.land_forest:
        return [
            Refusal(
                "wrong_commission",
                Text(
                    "农村土地承包仲裁委员会只受理土地承包经营纠纷",
                    "A rural land commission hears land-contract disputes only",
                ),
                "农村土地承包经营纠纷调解仲裁法 第二条",
            )
        ]
    if target.kind == BodyKind.commercial_arbitration_commission:
        if category == Category.labour:
            return [
                Refusal(
                    "wrong_commission",
                    Text(
                        "劳动争议由劳动人事争议仲裁委员会仲裁",
                        "Labour disputes go to a labour arbitration commission",
                    ),
                    "仲裁法 第七十七条",
                )
            ]
        if not ctx.payload.arbitration_agreement:
            return [
                Refusal(
                    "no_arbitration_agreement",
                    Text(
                        "商事仲裁须有书面仲裁协议",
                        "Commercial arbitration needs a written arbitration agreement",
                    ),
                    "仲裁法 第四条、第十六条",
                )
            ]
    return []


def _labour_window_passed(ctx: GuardContext) -> list[Refusal]:
    """While mediating, only a labour dispute may leave for arbitration, once 15 days passed without agreement."""
    if ctx.dispute.status != Status.mediating:
        return []
    if ctx.dispute.category != Category.labour:
        return [
            Refusal(
                "mediation_ongoing", Text("调解进行中, 须先终止调解", "Mediation is ongoing; end it first")
            )
        ]
    # Art. 14 counts from the day the mediation body received the application (its sign-for), and
    # the application for arbitration lies once the fifteen days have passed without agreement:
    # from the day after the last one. The period runs from the next day (民法典 Art. 201), and a
    # last day off moves to the next working day (Art. 203), as the case's mediation clock counts
    # it. Nothing suspends it: mediation never holds a labour dispute back from arbitration.
    started = ctx.dispute.mediation_started_on or ctx.dispute.applied_on
    last_day = period_end(started, ctx.labour_mediation_days).last_day
    if ctx.today > last_day:
        return []
    return [
        Refusal(
            "labour_window_open",
            Text(
                "劳动争议调解组织收到申请之日起十五日内未达成协议的, 方可申请仲裁; 期间至 {d} 届满",
                "Labour arbitration is open once 15 days pass without agreement; they end on {d}",
            ).format(d=last_day.isoformat()),
            "劳动争议调解仲裁法 第十四条",
        )
    ]


def _target_takes_category(ctx: GuardContext) -> list[Refusal]:
    """A body that takes only some categories (a labour or a medical mediation organisation, as the
    registry has it) is not sent a case of another: no override reason makes it able to mediate
    it. (A body of another region may be chosen with a reason, as the parties may agree to it.)"""
    target, dispute = ctx.target, ctx.dispute
    if target is None or target.kind not in MEDIATING_KINDS or not target.categories:
        return []
    if dispute.category in target.categories:
        return []
    return [
        Refusal(
            "target_wrong_category",
            Text(
                f"「{target.name}」不受理此类纠纷",
                f"{target.name} does not take disputes of this category ({dispute.category})",
            ),
        )
    ]


def _escalated_tier_kept(ctx: GuardContext) -> list[Refusal]:
    """A case escalated (a supervisor's or a body's decision that it needs a higher tier) goes to a
    body of that tier or above; only a supervisor sends it lower again."""
    target, floor = ctx.target, ctx.dispute.escalated_tier
    if target is None or floor is None or ctx.principal.role == Role.supervisor:
        return []
    if tier_index(target.tier) >= tier_index(floor):
        return []
    return [
        Refusal(
            "below_escalated_tier",
            Text(
                f"本案已上移至{TIER_LABELS[Tier(floor)]}层级, 「{target.name}」层级较低; 如确需下派, 须由督办人员指派",
                f"The case was escalated to the {floor} tier and {target.name} is below it; only a "
                "supervisor may send it lower",
            ),
        )
    ]


def _signed_for_in_time(ctx: GuardContext) -> list[Refusal]:
    """The body signs for a case within its working days (在线调解规则 Art. 12: one that does not
    answer in time is taken to have declined); after them the case goes back to the center, even
    if the scheduler has not yet returned it."""
    due = ctx.dispute.sign_for_due_on
    if due is None or ctx.today <= due:
        return []
    return [
        Refusal(
            "sign_for_lapsed",
            Text(
                f"签收期限已于 {due.isoformat()} 届满, 视为不接受; 案件将退回中心重新分流",
                f"The period to sign for the case ended on {due.isoformat()}; it counts as declined, "
                "and the case goes back to the center",
            ),
        )
    ]


def _recommended_or_reasoned(ctx: GuardContext) -> list[Refusal]:
    """An assignment follows the triage recommendation, or the clerk says why it does not."""
    outcome, target = ctx.triage, ctx.target
    if outcome is None or target is None or getattr(ctx.payload, "override_reason", None):
        return []
    if outcome.decision == "decline":
        return [
            Refusal(
                "override_reason_required",
                Text(
                    "分流规则建议不予受理并引导至其他途径; 如仍要指派, 须填写理由 (override_reason)",
                    "Triage advises declining this matter; assigning it anyway needs an override_reason",
                ),
            )
        ]
    if outcome.rank_of(target.id) is None:
        return [
            Refusal(
                "override_reason_required",
                Text(
                    "「{n}」不在分流推荐之列; 改派须填写理由 (override_reason)",
                    "{n} is not among the recommendations; overriding them needs an override_reason",
                ).format(n=target.name),
            )
        ]
    return []


def _mediator_fits(ctx: GuardContext) -> list[Refusal]:
    mediator = ctx.mediator
    if mediator is None:
        if getattr(ctx.payload, "mediator_id", None):
            return [Refusal("mediator_not_found", Text("调解员不存在", "No such mediator"))]
        return []
    if mediator.body_id != ctx.dispute.body_id:
        # Another body's roster is not this body's to read: not its mediator's name, nor what that
        # mediator declared (the service loads no conflicts for one).
        return [
            Refusal("mediator_not_in_body", Text("本组织没有这名调解员", "No such mediator of this body"))
        ]
    reasons: list[Refusal] = []
    if not mediator.active:
        reasons.append(
            Refusal(
                "mediator_not_in_body",
                Text("「{n}」不是承办组织在岗的调解员", "{n} is not an active mediator of the body").format(
                    n=mediator.name
                ),
            )
        )
    return reasons + _declared_conflict(ctx)


def _declared_conflict(ctx: GuardContext) -> list[Refusal]:
    """特邀调解规定 Art. 16: a mediator related to a party, or with an interest in the case, steps
    aside; the conflicts are those the mediator declared (loaded for the action)."""
    mediator = ctx.mediator
    if mediator is None or not ctx.conflicts:
        return []
    return [
        Refusal(
            "mediator_conflict",
            Text(
                "调解员「{n}」已申报与本案当事人存在利害关系 ({r}), 应当回避",
                "Mediator {n} declared a conflict with a party of this case ({r}) and must step aside",
            ).format(n=mediator.name, r=Listing(ctx.conflicts)),
            RECUSAL,
        )
    ]


def escalation_tier(ctx: GuardContext) -> Tier | None:
    """One tier above the case's tier or the tier of the body handling it, whichever is higher."""
    tier = Tier(ctx.dispute.tier)
    if ctx.target is not None and list(Tier).index(Tier(ctx.target.tier)) > list(Tier).index(tier):
        tier = Tier(ctx.target.tier)
    return tier.next()


def _has_next_tier(ctx: GuardContext) -> list[Refusal]:
    if escalation_tier(ctx) is not None:
        return []
    return [Refusal("top_tier", Text("已在最高层级, 无法上移", "Already at the highest tier"))]


def _agreement_exists(ctx: GuardContext) -> list[Refusal]:
    if ctx.dispute.agreement is not None:
        return []
    return [Refusal("no_agreement", Text("尚无调解协议", "There is no agreement"))]


def _written_agreement(ctx: GuardContext) -> list[Refusal]:
    """The court confirms a document: the application hands in the mediation agreement (民诉法解释
    Art. 354; 法释〔2011〕5号 Art. 3), which an oral agreement (人民调解法 Art. 28) does not have.
    A center rule on those articles: parties who want an agreement confirmed make it in writing
    while mediating; an oral one binds them without the court. (The application itself may be
    made orally, Art. 353: that is another matter.)"""
    if (ctx.dispute.agreement or {}).get("form", "written") == "written":
        return []
    return [
        Refusal(
            "oral_agreement",
            Text(
                "口头调解协议不能申请司法确认; 需要司法确认的, 应在调解中制作书面调解协议",
                "An oral agreement cannot be judicially confirmed; that needs a written agreement made in mediation",
            ),
            "民诉法解释 第三百五十四条",
        )
    ]


def _no_agreement_in_effect(ctx: GuardContext) -> list[Refusal]:
    """人民调解法 Art. 29-31: an agreement signed by every party and the mediator and sealed by
    the body (an oral one recorded by the mediator, Art. 30) took effect and binds the parties, who
    must perform it; the body follows its performance up (Art. 31), and the parties may apply for
    its confirmation within 30 days (Art. 33). Mediation ended in that agreement. Ending the case as
    failed or withdrawn, or handing it to another body or tier, or to arbitration, would drop it
    with all of that: it is recorded on the case first (`agree`). A party's demand to end
    mediation (Art. 23) comes too late once the agreement binds: withdrawing is refused as well,
    and a party disputing the agreement or its performance goes to court (Art. 32), which
    `refer_litigation` from `agreement_signed` leaves open."""
    if ctx.agreement_in_effect is None:
        return []
    return [
        Refusal(
            "agreement_in_effect",
            Text(
                "第{n}版调解协议已经生效, 对双方当事人具有法律约束力 (人民调解法第二十九条、第三十一条); "
                "请先记录「达成协议」",
                "Version {n} of the agreement has taken effect and binds the parties (人民调解法 Art. 29, "
                "31): record the agreement (agree) first",
            ).format(n=ctx.agreement_in_effect),
            AGREEMENT_BINDS,
        )
    ]


AGREEMENT_BINDS = "人民调解法 第二十九条、第三十条、第三十一条"


G_CONSENT = Guard(
    "no_party_refuses",
    Text("没有当事人明确拒绝调解", "No party clearly refuses mediation"),
    "人民调解法 第十七条",
    _parties_refusing,
    needs_payload=False,
)


def _refusal_recorded(ctx: GuardContext) -> list[Refusal]:
    """Before a body mediates, the center ends a case only for a party's refusal, recorded on the
    case (人民调解法 Art. 17): any other reason to stop is a body's to find while mediating."""
    if any(p.consent == Consent.refused for p in ctx.dispute.parties):
        return []
    return [
        Refusal(
            "no_refusal_recorded",
            Text(
                "调解开始前, 只有当事人明确拒绝调解 (已记录其拒绝) 时才能终止",
                "Before mediation begins, a case is ended only when a party's clear refusal is recorded",
            ),
            "人民调解法 第十七条",
        )
    ]


def _ended_for_refusal(ctx: GuardContext) -> list[Refusal]:
    if getattr(ctx.payload, "reason_code", None) == TerminationReason.party_refused:
        return []
    return [
        Refusal(
            "ended_for_refusal",
            Text(
                "调解开始前终止的, 终止原因为当事人拒绝调解 (party_refused)",
                "Ended before mediation begins, the reason is the party's refusal (party_refused)",
            ),
            "特邀调解规定 第二十六条",
        )
    ]


G_REFUSAL_RECORDED = Guard(
    "party_refusal_recorded",
    Text("已记录当事人明确拒绝调解", "A party's clear refusal of mediation is recorded"),
    "人民调解法 第十七条",
    _refusal_recorded,
    needs_payload=False,
)
G_REFUSAL_REASON = Guard(
    "ended_for_refusal",
    Text("终止原因为当事人拒绝调解", "The reason given is the party's refusal"),
    "特邀调解规定 第二十六条",
    _ended_for_refusal,
)
G_COURT_CONSENT = Guard(
    "court_delegated_consent",
    Text("法院委派调解须经当事人同意", "Court-delegated mediation has the parties' consent"),
    "特邀调解规定 第十一条",
    _court_delegated_consent,
    needs_payload=False,
)
G_BODY = Guard(
    "target_is_mediation_body",
    Text("指派对象是在岗的调解组织", "The target is an active mediation body"),
    None,
    _target_is(MEDIATING_KINDS, Text("调解组织", "mediation body")),
)
G_COURT = Guard(
    "target_is_court",
    Text("对象是人民法院", "The target is a court"),
    None,
    _target_is(frozenset({BodyKind.court}), Text("人民法院", "court")),
)
G_COMMISSION = Guard(
    "target_is_commission",
    Text("对象是仲裁委员会", "The target is an arbitration commission"),
    None,
    _target_is(ARBITRATION_KINDS, Text("仲裁委员会", "arbitration commission")),
)
G_SIGNED = Guard(
    "agreement_signed_by_all",
    Text(
        "协议经全部当事人、调解员签名并加盖调解组织印章",
        "Agreement signed by every party and the mediator, and sealed",
    ),
    "人民调解法 第二十八条、第二十九条、第三十条",
    _agreement_signed_by_all,
)
G_JOINT = Guard(
    "joint_application",
    Text("双方当事人共同申请", "Both sides apply jointly"),
    "民事诉讼法 第二百零五条",
    _joint_application,
)
G_WINDOW = Guard(
    "within_confirmation_window",
    Text(
        "在协议生效后的法定期间内申请 (默认三十日)",
        "Within the period after the agreement takes effect (30 days by default)",
    ),
    "民事诉讼法 第二百零五条、第八十五条; 人民调解法 第三十三条",
    _within_confirmation_window,
    needs_payload=False,
)
G_CONFIRMABLE = Guard(
    "confirmable_matter",
    Text("属于可以司法确认的事项", "The matter can be judicially confirmed"),
    "民诉法解释 第三百五十五条",
    _confirmable_matter,
    needs_payload=False,
)
G_ARBITRABLE = Guard(
    "arbitrable_matter",
    Text("属于可以仲裁的事项", "The matter can be arbitrated"),
    "仲裁法 第三条",
    _arbitrable_matter,
    needs_payload=False,
)
G_COMMISSION_FITS = Guard(
    "commission_fits",
    Text(
        "仲裁委员会与纠纷类型相符; 商事仲裁有仲裁协议",
        "The commission fits the dispute; commercial arbitration has an agreement",
    ),
    "仲裁法 第四条、第十六条、第七十七条; 劳动争议调解仲裁法 第二条; 农村土地承包经营纠纷调解仲裁法 第二条",
    _commission_fits,
)


def _arbitration_after_agreement(ctx: GuardContext) -> list[Refusal]:
    """Once an agreement is signed, or its confirmation refused, arbitration is a labour dispute's
    road (劳动争议调解仲裁法 Art. 15); any other dispute's agreement is taken to court when it is
    not performed or not confirmed (人民调解法 Art. 32, 33)."""
    if ctx.dispute.status not in (Status.agreement_signed, Status.confirmation_rejected):
        return []
    if ctx.dispute.category == Category.labour:
        return []
    return [
        Refusal(
            "agreement_goes_to_court",
            Text(
                "已达成调解协议: 不履行或确认被驳回的, 当事人可以向人民法院起诉",
                "An agreement was reached: when it is not performed or not confirmed, the parties sue in court",
            ),
            "人民调解法 第三十二条",
        )
    ]


def _agreement_not_performed(ctx: GuardContext) -> list[Refusal]:
    """劳动争议调解仲裁法 Art. 15: after an agreement, arbitration lies when a party does not perform
    it within the period it set: an obligation past its day and not performed. (Loaded for the
    action itself only; the case's offered actions show it as a requirement.)"""
    if ctx.dispute.status != Status.agreement_signed or ctx.unperformed_due > 0:
        return []
    return [
        Refusal(
            "agreement_not_breached",
            Text(
                "调解协议约定的履行期限届满而一方未履行的, 方可申请仲裁",
                "Arbitration lies once a party has not performed the agreement within its period",
            ),
            "劳动争议调解仲裁法 第十五条",
        )
    ]


def _labour_arbitration_first(ctx: GuardContext) -> list[Refusal]:
    """劳动争议调解仲裁法 Art. 5: a labour dispute that mediation did not settle goes to arbitration,
    and only an award a party does not accept goes to court. An agreement not performed may go to
    court for a payment order (Art. 16): from `agreement_signed`, `labour_payment_order` decides."""
    if ctx.dispute.category != Category.labour or ctx.dispute.status == Status.agreement_signed:
        return []
    if ctx.dispute.status == Status.referred_arbitration or labour_route_to_court(ctx.dispute, ctx.today):
        return []  # with the commission: `arbitration_unanswered` decides (Art. 29, 43)
    return [
        Refusal(
            "labour_arbitration_first",
            Text(
                "劳动争议须先申请劳动争议仲裁, 对仲裁裁决不服的, 方可向人民法院起诉",
                "A labour dispute goes to labour arbitration first; only an award may be taken to court",
            ),
            "劳动争议调解仲裁法 第五条",
        )
    ]


def _labour_agreement_breached(ctx: GuardContext) -> list[Refusal]:
    """劳动争议调解仲裁法 Art. 16: from a signed agreement, a labour dispute goes to court only for a
    payment order, once the agreement was not performed within the period it set; otherwise it is
    arbitrated first (Art. 5). (Loaded for the action itself only, like `agreement_not_performed`.)"""
    if ctx.dispute.category != Category.labour or ctx.dispute.status != Status.agreement_signed:
        return []
    if ctx.unperformed_due > 0:
        return []
    return [
        Refusal(
            "agreement_not_breached",
            Text(
                "劳动争议调解协议约定的履行期限届满而未履行的, 方可持调解协议书向人民法院申请支付令",
                "A labour agreement goes to court (for a payment order) only once it was not performed within its period",
            ),
            "劳动争议调解仲裁法 第十六条",
        )
    ]


# 劳动争议调解仲裁法 Art. 29: a commission that does not accept the application, or does not decide on
# it within five days, leaves the applicant free to sue; Art. 43: so does a tribunal that makes no
# award within its period (45 days, extended by at most 15).
LABOUR_NOT_ACCEPTED = "劳动争议调解仲裁法 第二十九条"
LABOUR_NO_AWARD = "劳动争议调解仲裁法 第四十三条"


def labour_route_to_court(dispute: Dispute, today: date) -> str | None:
    """The article that opens the court to a labour dispute the arbitration commission did not
    take up (its referral, as the case holds it, not accepted, or past the day to accept it or to
    award undecided), else None."""
    handoff = dispute.handoff or {}
    if handoff.get("kind") != "labour_arbitration":
        return None
    status = handoff.get("status")
    if status == "not_accepted":
        return LABOUR_NOT_ACCEPTED
    due = handoff.get("accept_due_on") if status == "pending" else handoff.get("decide_due_on")
    if status not in ("pending", "accepted") or not due or today <= date.fromisoformat(str(due)):
        return None
    return LABOUR_NOT_ACCEPTED if status == "pending" else LABOUR_NO_AWARD


def _arbitration_unanswered(ctx: GuardContext) -> list[Refusal]:
    """From a referral to arbitration, a case goes to court only as Art. 29 and 43 allow: a labour
    commission that let its period to accept, or its tribunal's period to award, pass undecided.
    Otherwise the commission's outcome is awaited (`record_outcome`)."""
    dispute = ctx.dispute
    if dispute.status != Status.referred_arbitration or labour_route_to_court(dispute, ctx.today):
        return []
    handoff = dispute.handoff or {}
    if handoff.get("kind") != "labour_arbitration":
        return [
            Refusal(
                "arbitration_under_way",
                Text(
                    "案件已导入仲裁, 由仲裁委员会依法处理, 登记其结果后结案",
                    "The case is with the arbitration commission; its outcome closes the case",
                ),
            )
        ]
    pending = handoff.get("status") == "pending"
    due = handoff.get("accept_due_on") if pending else handoff.get("decide_due_on")
    return [
        Refusal(
            "arbitration_period_running",
            Text(
                "劳动争议仲裁委员会{s}的期限至 {d} 届满; 不予受理或逾期未作出决定的, 申请人方可向人民法院起诉",
                "The labour arbitration commission has until {d} to {s_en}; only once it does not "
                "accept, or lets that day pass undecided, may the applicant sue",
            ).format(
                s="决定是否受理" if pending else "作出仲裁裁决",
                s_en="decide on acceptance" if pending else "make its award",
                d=str(due),
            ),
            LABOUR_NOT_ACCEPTED if pending else LABOUR_NO_AWARD,
        )
    ]


def _reason_given(ctx: GuardContext) -> list[Refusal]:
    if (getattr(ctx.payload, "reason", None) or "").strip():
        return []
    return [
        Refusal(
            "reason_required",
            Text(
                "确认被驳回或不予受理后当事人未再采取行动的, 结案须写明理由 (reason)",
                "Closing a case whose confirmation was refused needs a reason",
            ),
            "人民调解法 第二十七条",
        )
    ]


G_ARBITRATION_AFTER_AGREEMENT = Guard(
    "labour_arbitration_after_agreement",
    Text("达成协议后只有劳动争议可申请仲裁", "After an agreement, only a labour dispute goes to arbitration"),
    "劳动争议调解仲裁法 第十五条",
    _arbitration_after_agreement,
    needs_payload=False,
)
G_NOT_PERFORMED = Guard(
    "agreement_not_performed",
    Text("调解协议约定的履行期限届满而未履行", "The agreement was not performed within its period"),
    "劳动争议调解仲裁法 第十五条",
    _agreement_not_performed,
)
G_LABOUR_ARBITRATION_FIRST = Guard(
    "labour_arbitration_first",
    Text("劳动争议仲裁前置", "Labour disputes are arbitrated before any suit"),
    "劳动争议调解仲裁法 第五条",
    _labour_arbitration_first,
    needs_payload=False,
    categories=frozenset({Category.labour}),
)
G_LABOUR_PAYMENT_ORDER = Guard(
    "labour_payment_order",
    Text(
        "劳动争议调解协议约定的履行期限届满而未履行 (申请支付令)",
        "A labour agreement was not performed within its period (payment order)",
    ),
    "劳动争议调解仲裁法 第十六条",
    _labour_agreement_breached,
    categories=frozenset({Category.labour}),
)
G_LABOUR_WINDOW = Guard(
    "labour_window_passed",
    Text("劳动争议调解满十五日未达成协议", "Labour mediation ran 15 days without agreement"),
    "劳动争议调解仲裁法 第十四条",
    _labour_window_passed,
    needs_payload=False,
)
G_ARBITRATION_UNANSWERED = Guard(
    "arbitration_unanswered",
    Text(
        "仲裁中的案件, 仅在劳动争议仲裁委员会逾期未决定受理或逾期未作出裁决时起诉",
        "From arbitration, to court only once a labour commission let its period to accept or to award pass",
    ),
    "劳动争议调解仲裁法 第二十九条、第四十三条",
    _arbitration_unanswered,
    needs_payload=False,
)
G_REASON = Guard(
    "reason_given",
    Text("写明结案理由", "A reason for closing is given"),
    "人民调解法 第二十七条",
    _reason_given,
)
G_CATEGORY = Guard(
    "target_takes_category",
    Text("指派对象受理此类纠纷", "The body takes disputes of the case's category"),
    None,
    _target_takes_category,
)
G_TIER_KEPT = Guard(
    "escalated_tier_kept",
    Text(
        "已上移层级的案件指派给该层级或更高层级的组织 (督办人员除外)",
        "An escalated case goes to a body of its tier or above (but by a supervisor)",
    ),
    None,
    _escalated_tier_kept,
)
G_SIGN_FOR_IN_TIME = Guard(
    "signed_for_in_time",
    Text("在签收期限内签收", "Signed for within the period to sign for it"),
    "人民法院在线调解规则 第十二条 (参照)",
    _signed_for_in_time,
    needs_payload=False,
)
G_RECOMMENDED = Guard(
    "recommended_or_reasoned",
    Text(
        "指派分流推荐的组织, 或写明改派理由", "Assign a recommended body, or give the reason for overriding"
    ),
    None,
    _recommended_or_reasoned,
)
G_MEDIATOR = Guard(
    "mediator_without_conflict",
    Text(
        "调解员属于承办组织且未申报与当事人的利害关系",
        "The mediator belongs to the body and declared no conflict with a party",
    ),
    RECUSAL,
    _mediator_fits,
)
# A conflict declared after the mediator was named: the one who must step aside does not conclude
# the case. (Loaded for the action itself: the case's mediator and what it declared.)
G_CASE_MEDIATOR = Guard(
    "case_mediator_without_conflict",
    Text(
        "承办调解员未申报与本案当事人的利害关系",
        "The case's mediator declared no conflict with a party or with the case",
    ),
    RECUSAL,
    _declared_conflict,
)
G_NEXT_TIER = Guard(
    "has_next_tier", Text("存在更高层级", "There is a higher tier"), None, _has_next_tier, needs_payload=False
)
G_NO_AGREEMENT_IN_EFFECT = Guard(
    "no_agreement_in_effect",
    Text(
        "没有已经生效而尚未记录「达成协议」的调解协议",
        "No agreement in effect is left unrecorded on the case",
    ),
    AGREEMENT_BINDS,
    _no_agreement_in_effect,
    needs_payload=False,
)
G_AGREEMENT = Guard(
    "agreement_exists",
    Text("已有调解协议", "An agreement exists"),
    # Performance follows an agreement (Art. 31), and so does its confirmation (Art. 33).
    "人民调解法 第三十一条、第三十三条",
    _agreement_exists,
    needs_payload=False,
)


# The bases of 民事诉讼法 Art. 205, named in a refusal.
COURT_BASIS_NAMES = {
    "inviting_court": Text("委派或委托调解的人民法院", "the court that delegated the mediation"),
    "party_domicile": Text("当事人住所地的基层人民法院", "the basic court where a party lives"),
    "subject_matter_location": Text(
        "标的物所在地的基层人民法院", "the basic court where the subject matter is"
    ),
    "body_location": Text("调解组织所在地的基层人民法院", "the basic court where the mediation body is"),
}


def _competent_court(ctx: GuardContext) -> list[Refusal]:
    """民事诉讼法 Art. 205: the inviting court for court-invited mediation; otherwise the basic
    court where a party lives, where the subject matter is, or where the mediation body is."""
    target, basis = ctx.target, getattr(ctx.payload, "basis", None)
    if target is None or basis is None:
        return []
    courts = ctx.competent_courts.get(str(basis), [])
    if any(c.id == target.id for c in courts):
        return []
    inviting = ctx.competent_courts.get("inviting_court", [])
    if ctx.dispute.court_delegated and str(basis) != "inviting_court":
        # Item 1: mediation a court invited is confirmed by that court, on no other basis.
        return [
            Refusal(
                "court_not_competent",
                Text(
                    "法院委派调解的案件, 须向委派调解的人民法院申请司法确认: {c}",
                    "Mediation a court delegated is confirmed by that court: {c}",
                ).format(c=Listing(c.name for c in inviting)),
                "民事诉讼法 第二百零五条",
            )
        ]
    return [
        Refusal(
            "court_not_competent",
            Text(
                "「{n}」不是{b}, 依所选依据无权确认; 可选: {c}",
                "{n} is not {b}; competent on that basis: {c}",
            ).format(
                n=target.name,
                b=COURT_BASIS_NAMES.get(str(basis), Text(str(basis), str(basis))),
                c=Listing(c.name for c in courts),
            ),
            "民事诉讼法 第二百零五条",
        )
    ]


def _confirmation_materials(ctx: GuardContext) -> list[Refusal]:
    """民诉法解释 Art. 353-354: the court needs each party's identity, address and contact, and a
    power of attorney for any agent."""
    reasons: list[Refusal] = []
    for party in ctx.dispute.parties:
        if party.role == "agent":
            continue
        if not party.id_number_enc:
            reasons.append(
                Refusal(
                    "party_identity_missing",
                    Text("当事人「{n}」缺少身份证明", "Party {n} has no identity document on file").format(
                        n=party.name
                    ),
                    "民诉法解释 第三百五十四条",
                )
            )
        if not party.address or not party.phone_enc:
            reasons.append(
                Refusal(
                    "party_service_address_missing",
                    Text(
                        "当事人「{n}」缺少住所或联系方式",
                        "Party {n} lacks an address or a contact number",
                    ).format(n=party.name),
                    "民诉法解释 第三百五十四条",
                )
            )
    if any(p.role == "agent" for p in ctx.dispute.parties) and "power_of_attorney" not in ctx.document_kinds:
        reasons.append(
            Refusal(
                "power_of_attorney_missing",
                Text("有委托代理人的, 须提交授权委托书", "An agent needs a power of attorney on file"),
                "法释〔2011〕5号 第三条; 民诉法解释 第三百五十一条",
            )
        )
    return reasons


# Each body decides on acceptance first, by its own law: a court on a confirmation request within 3
# days (法释〔2011〕5号 Art. 4) and on a suit within 7 (民事诉讼法 Art. 126), a commission on an
# arbitration within 5 (working) days. Only then does it rule or conclude the matter.
ACCEPTANCE_ARTICLES: dict[str, str] = {
    "judicial_confirmation": "法释〔2011〕5号 第四条",
    "litigation": "民事诉讼法 第一百二十六条",
    "labour_arbitration": "劳动争议调解仲裁法 第二十九条",
    "commercial_arbitration": "仲裁法 第二十四条",
    "rural_land_arbitration": "农村土地承包经营纠纷调解仲裁法 第二十三条",
}
ARBITRATION_ACCEPTANCE = "; ".join(ACCEPTANCE_ARTICLES[k] for k in ARBITRATION_HANDOFF_KINDS)


def _accept_first(kind: str | None) -> Refusal:
    """A ruling or outcome posted before the target recorded its acceptance, in the words of the
    kind of handoff: a confirmation application is ruled on (裁定), a suit or an arbitration
    concluded, each after acceptance under its own law."""
    if kind in ARBITRATION_HANDOFF_KINDS:
        message = Text(
            "仲裁委员会须先登记受理并登记本委案号, 才能登记仲裁结果",
            "The arbitration commission must first record its acceptance with its own case number "
            "before posting the outcome",
        )
    elif kind == "litigation":
        message = Text(
            "人民法院须先登记受理 (立案) 并登记本院案号, 才能登记诉讼结果",
            "The court must first record its acceptance of the suit (立案) with its own case number "
            "before posting the outcome",
        )
    else:
        message = Text(
            "须先确认受理并登记本院案号, 才能作出裁定",
            "Acknowledge acceptance with the court's own case number before ruling",
        )
    return Refusal("not_yet_accepted", message, ACCEPTANCE_ARTICLES.get(kind or "judicial_confirmation"))


def _accepted_by_target(ctx: GuardContext) -> list[Refusal]:
    handoff = ctx.handoff
    outcome = getattr(ctx.payload, "outcome", None)
    if handoff is not None and handoff.status == "accepted":
        return []
    if handoff is not None and handoff.status == "pending" and str(outcome) == "dismissed":
        # Refusing to take the referral at all is not accepting it (不予受理), not an outcome: it
        # does not end the dispute, and the case goes back for the road the refusal leaves open.
        if handoff.kind == "labour_arbitration":
            # 劳动争议调解仲裁法 Art. 29: the applicant then goes to court.
            return [
                Refusal(
                    "labour_not_accepted",
                    Text(
                        "劳动人事争议仲裁委员会不予受理的, 请登记不予受理 (not_accept): 申请人可以向人民法院起诉",
                        "A labour commission that does not accept posts not_accept: the applicant may then sue",
                    ),
                    LABOUR_NOT_ACCEPTED,
                )
            ]
        if handoff.kind in DECIDERS:
            return [
                Refusal(
                    "not_accepted_is_no_outcome",
                    Text(
                        "尚未受理而不予受理的, 请登记不予受理 (not_accept, 或 acceptance 的 not_accepted), 写明理由代码和通知书(裁定书)编号",
                        "A referral not accepted at all is posted as not_accept (acceptance: not_accepted) with "
                        "its reason code and notice number, not as an outcome",
                    ),
                    DECIDERS[handoff.kind].not_accepted_article,
                )
            ]
    return [_accept_first(handoff.kind if handoff is not None else None)]


# 民诉法解释 Art. 355: a request that should not have been accepted is not accepted (不予受理);
# once accepted, it is rejected (驳回, the second paragraph). The court decides on acceptance first
# (法释〔2011〕5号 Art. 4).
NOT_ACCEPTED_AFTER_ACCEPTANCE = "民诉法解释 第三百五十五条; 法释〔2011〕5号 第四条"


def _not_yet_accepted(ctx: GuardContext) -> list[Refusal]:
    if ctx.handoff is None or ctx.handoff.status == "pending":
        return []
    if ctx.handoff.kind != "judicial_confirmation":
        # An arbitration or a suit once accepted ends with its outcome: a dismissal (驳回) then.
        return [
            Refusal(
                "already_accepted",
                Text(
                    "已受理, 应登记结果 (outcome, 如驳回 dismissed), 不能再不予受理",
                    "The referral was accepted; post its outcome (e.g. dismissed) instead",
                ),
                DECIDERS[ctx.handoff.kind].not_accepted_article if ctx.handoff.kind in DECIDERS else None,
            )
        ]
    return [
        Refusal(
            "already_accepted",
            Text(
                "申请已受理, 应裁定确认或驳回, 不能再不予受理",
                "The application was accepted; confirm or reject it instead",
            ),
            NOT_ACCEPTED_AFTER_ACCEPTANCE,
        )
    ]


def _ruling_date_plausible(ctx: GuardContext) -> list[Refusal]:
    """A ruling or outcome is dated between the target's acceptance and today (no earlier than
    the request while none is recorded, as an acceptance is: HandoffService.acknowledge)."""
    ruled_on = getattr(ctx.payload, "ruled_on", None) or getattr(ctx.payload, "decided_on", None)
    if ruled_on is None:
        return []
    earliest = None
    if ctx.handoff is not None:
        earliest = ctx.handoff.accepted_on or ctx.handoff.requested_on
    if ruled_on > ctx.today or (earliest is not None and ruled_on < earliest):
        dated = _DECISION_NAMES.get(ctx.handoff.kind if ctx.handoff is not None else "", "裁定日期")
        return [
            Refusal(
                "decision_date_implausible",
                Text(
                    f"{dated}不能晚于今天或早于受理日 (尚未受理的, 不能早于申请日)",
                    "The decision date cannot be in the future or before acceptance "
                    "(before the request, while not accepted)",
                ),
            )
        ]
    return []


WITHDRAWAL_RULING = "民诉法解释 第三百五十七条"


def _withdrawal_ruled(ctx: GuardContext) -> list[Refusal]:
    """民诉法解释 Art. 357: before the ruling on the application, the parties may withdraw it, and
    the court 可以裁定准许; it may also treat as withdrawn an application whose materials are not
    supplied. Before the court accepted there is no case and nothing to rule: the application is
    taken back as it was made. Once it has accepted (its case number registered), the withdrawal is
    the court's ruling, posted with the ruling's number and date (the mediation side's withdrawal
    is then a request, kept on the handoff for the court: `HandoffService.request_withdrawal`)."""
    handoff = ctx.handoff
    number, ruled_on = getattr(ctx.payload, "ruling_number", None), getattr(ctx.payload, "ruled_on", None)
    if handoff is None:
        return []
    if handoff.status == "pending" and (number or ruled_on):
        return [
            Refusal(
                "not_yet_accepted",
                Text(
                    "申请尚未受理, 没有可作出的准许撤回裁定: 撤回不写裁定书编号和日期",
                    "The application is not accepted yet, so there is no ruling on its withdrawal: "
                    "leave out the ruling's number and date",
                ),
                ACCEPTANCE_ARTICLES["judicial_confirmation"],
            )
        ]
    if handoff.status == "accepted" and not (number and ruled_on):
        return [
            Refusal(
                "withdrawal_ruling_missing",
                Text(
                    "申请已受理, 撤回须由人民法院裁定准许: 请写明裁定书编号 (ruling_number) 和裁定日期 (ruled_on)",
                    "The application was accepted: its withdrawal is the court's ruling; give the ruling's "
                    "number (ruling_number) and date (ruled_on)",
                ),
                WITHDRAWAL_RULING,
            )
        ]
    return []


# What the decision's date is called: a court rules on a confirmation (裁定) and decides a suit by
# judgment or ruling (裁判); a commission's is an award (裁决).
_DECISION_NAMES: dict[str, str] = {
    "judicial_confirmation": "裁定日期",
    "litigation": "裁判日期",
    **dict.fromkeys(ARBITRATION_HANDOFF_KINDS, "裁决日期"),
}


def _date_guard(name: str) -> Text:
    return Text(
        f"{name}不早于受理日 (尚未受理的, 不早于申请日) 且不晚于今天",
        "The decision date lies between acceptance (the request, while not accepted) and today",
    )


def _outcome_of_this_body(ctx: GuardContext) -> list[Refusal]:
    """A referral's outcome is one the body it went to gives: an arbitration commission awards,
    a court gives judgment (`handoffs.answers.DECIDERS`, with the articles)."""
    outcome = getattr(ctx.payload, "outcome", None)
    if ctx.handoff is None or outcome is None:
        return []
    why = outcome_refused(ctx.handoff.kind, outcome)
    if why is None:
        return []
    return [Refusal("outcome_not_of_this_body", why, DECIDERS[ctx.handoff.kind].outcomes_article)]


def _reason_of_this_body(ctx: GuardContext) -> list[Refusal]:
    """A court or commission does not accept for the reasons its own law gives: a labour
    commission is not asked about a confirmation's personal-status matters, nor a court about a
    time limit for arbitration (`handoffs.answers.DECIDERS`)."""
    reason_code = getattr(ctx.payload, "reason_code", None)
    if ctx.handoff is None or reason_code is None:
        return []
    why = reason_refused(ctx.handoff.kind, reason_code)
    if why is None:
        return []
    return [Refusal("reason_not_of_this_body", why, DECIDERS[ctx.handoff.kind].not_accepted_article)]


def _performance_date_plausible(ctx: GuardContext) -> list[Refusal]:
    performed = getattr(ctx.payload, "performed_on", None)
    effective = ctx.dispute.agreement_effective_on
    if performed is None:
        return []
    if performed > ctx.today or (effective is not None and performed < effective):
        return [
            Refusal(
                "performance_date_implausible",
                Text(
                    "履行日期不能晚于今天或早于协议生效日",
                    "The performance date cannot be in the future or before the agreement took effect",
                ),
            )
        ]
    return []


G_COMPETENT_COURT = Guard(
    "competent_court",
    Text(
        "受理法院依所选依据有管辖权 (邀请法院, 或当事人住所地、标的物所在地、调解组织所在地基层法院)",
        "The court is competent on the basis given (inviting court; or where a party lives, the subject matter is, or the body is)",
    ),
    "民事诉讼法 第二百零五条",
    _competent_court,
)
G_WRITTEN = Guard(
    "written_agreement",
    Text("调解协议为书面协议", "The agreement is in writing"),
    "民诉法解释 第三百五十四条",
    _written_agreement,
    needs_payload=False,
)
G_MATERIALS = Guard(
    "confirmation_materials",
    Text(
        "申请材料齐全: 当事人身份、住所、联系方式, 代理人的授权委托书",
        "Materials complete: each party's identity, address and contact; an agent's power of attorney",
    ),
    "民诉法解释 第三百五十一条、第三百五十四条",
    _confirmation_materials,
    needs_payload=False,
)
G_ACCEPTED = Guard(
    "accepted_by_target",
    Text("已确认受理并登记案号", "Acceptance acknowledged with the target's case number"),
    ACCEPTANCE_ARTICLES["judicial_confirmation"],
    _accepted_by_target,
)
G_ARBITRATION_ACCEPTED = Guard(
    "accepted_by_target",
    Text("仲裁委员会已登记受理及本委案号", "The commission recorded its acceptance with its case number"),
    ARBITRATION_ACCEPTANCE,
    _accepted_by_target,
)
G_SUIT_ACCEPTED = Guard(
    "accepted_by_target",
    Text(
        "人民法院已登记受理 (立案) 及本院案号",
        "The court recorded its acceptance of the suit with its case number",
    ),
    ACCEPTANCE_ARTICLES["litigation"],
    _accepted_by_target,
)
G_NOT_ACCEPTED_YET = Guard(
    "not_yet_accepted",
    Text("尚未受理", "Not yet accepted"),
    NOT_ACCEPTED_AFTER_ACCEPTANCE,
    _not_yet_accepted,
    needs_payload=False,
)
# A commission decides on acceptance, once (劳动争议调解仲裁法 Art. 29; 仲裁法 Art. 24; 农村土地
# 承包经营纠纷调解仲裁法 Art. 23), as a court does on a suit (民事诉讼法 Art. 126): once it has
# accepted, it ends the matter with its outcome.
G_ARBITRATION_NOT_ACCEPTED_YET = Guard(
    "not_yet_accepted",
    Text("尚未受理", "Not yet accepted"),
    ARBITRATION_ACCEPTANCE,
    _not_yet_accepted,
    needs_payload=False,
)
G_SUIT_NOT_ACCEPTED_YET = Guard(
    "not_yet_accepted",
    Text("尚未受理", "Not yet accepted"),
    ACCEPTANCE_ARTICLES["litigation"],
    _not_yet_accepted,
    needs_payload=False,
)
G_RULING_DATE = Guard(
    "decision_date_plausible",
    _date_guard(_DECISION_NAMES["judicial_confirmation"]),
    None,
    _ruling_date_plausible,
)
G_WITHDRAWAL_RULED = Guard(
    "withdrawal_ruled",
    Text(
        "受理后的撤回由人民法院裁定准许 (写明裁定书编号和日期); 受理前撤回不作裁定",
        "Once accepted, the withdrawal is the court's ruling (its number and date); before, none is made",
    ),
    WITHDRAWAL_RULING,
    _withdrawal_ruled,
)
G_JUDGMENT_DATE = Guard(
    "decision_date_plausible", _date_guard(_DECISION_NAMES["litigation"]), None, _ruling_date_plausible
)
G_AWARD_DATE = Guard(
    "decision_date_plausible",
    _date_guard(_DECISION_NAMES["labour_arbitration"]),
    None,
    _ruling_date_plausible,
)
G_OUTCOME_OF_ARBITRATION = Guard(
    "outcome_of_this_body",
    Text(
        "仲裁委员会的结果为仲裁裁决 (award)、仲裁调解书或和解 (settlement)、撤回 (withdrawal) 或驳回 (dismissed), 不作判决",
        "An arbitration commission ends with an award, a settlement, a withdrawal or a dismissal, never a judgment",
    ),
    "; ".join(DECIDERS[k].outcomes_article or "" for k in ARBITRATION_HANDOFF_KINDS),
    _outcome_of_this_body,
)
G_OUTCOME_OF_LITIGATION = Guard(
    "outcome_of_this_body",
    Text(
        "人民法院的结果为判决 (judgment)、民事调解书 (settlement)、撤诉 (withdrawal) 或裁定驳回起诉 (dismissed), 不作仲裁裁决",
        "A court ends a suit with a judgment, a settlement, a withdrawal or a ruling dismissing it, never an award",
    ),
    DECIDERS["litigation"].outcomes_article,
    _outcome_of_this_body,
)
G_REASON_OF_CONFIRMATION = Guard(
    "reason_of_this_body",
    Text(
        "不予受理的理由代码为司法确认的理由 ({r})",
        "The reason code is one for a confirmation request ({r})",
    ).format(r=", ".join(DECIDERS["judicial_confirmation"].not_accepted)),
    DECIDERS["judicial_confirmation"].not_accepted_article,
    _reason_of_this_body,
)
G_REASON_OF_ARBITRATION = Guard(
    "reason_of_this_body",
    Text(
        "不予受理的理由代码为该仲裁委员会的理由 (劳动争议: {l}; 商事仲裁: {c}; 农村土地承包: {r})",
        "The reason code is one of that commission's (labour: {l}; commercial: {c}; rural land: {r})",
    ).format(
        l=", ".join(DECIDERS["labour_arbitration"].not_accepted),
        c=", ".join(DECIDERS["commercial_arbitration"].not_accepted),
        r=", ".join(DECIDERS["rural_land_arbitration"].not_accepted),
    ),
    "; ".join(DECIDERS[k].not_accepted_article for k in ARBITRATION_HANDOFF_KINDS),
    _reason_of_this_body,
)
G_REASON_OF_LITIGATION = Guard(
    "reason_of_this_body",
    Text(
        "不予受理的理由代码为起诉的理由 ({r})",
        "The reason code is one for a suit ({r})",
    ).format(r=", ".join(DECIDERS["litigation"].not_accepted)),
    DECIDERS["litigation"].not_accepted_article,
    _reason_of_this_body,
)
G_PERFORMANCE_DATE = Guard(
    "performance_date_plausible",
    Text("履行日期不早于协议生效日且不晚于今天", "The performance date lies between the agreement and today"),
    "人民调解法 第三十一条",
    _performance_date_plausible,
)


def _visit_recorded(ctx: GuardContext) -> list[Refusal]:
    """Close the loop before the file is archived (人民调解法 Art. 27; domain.md §4.4): the
    follow-up visit is done, or recorded as impossible (parties unreachable after the set number of
    tries, or a stated reason), or its result comes with this request."""
    if getattr(ctx.payload, "follow_up", None) is not None:
        return []
    if getattr(ctx.payload, "visit_impossible_reason", None) is not None:
        return []
    if ctx.visit_status in ("done", "impossible"):
        return []
    return [
        Refusal(
            "follow_up_visit_missing",
            Text(
                "归档前须完成回访, 或记录无法回访 (多次联系不上或其他原因)",
                "Record the follow-up visit, or that no visit was possible, before archiving",
            ),
            "人民调解法 第二十七条",
        )
    ]


G_VISIT = Guard(
    "follow_up_visit_recorded",
    Text("已完成回访或已记录无法回访", "The follow-up visit is done or recorded as impossible"),
    "人民调解法 第二十七条",
    _visit_recorded,
)


# ---- the table ----------------------------------------------------------------------------------

CENTER = frozenset({Role.clerk, Role.supervisor})
BODY = frozenset({Role.body_mediator, Role.body_admin})


@dataclass(frozen=True, slots=True)
class Answer:
    """The answers that lead one action to another state than its usual one (a court's reason for
    not accepting, say): the transition taking them is chosen by what is posted, before any guard.
    `explain` is what the timeline says of it, with the rule."""

    name: str
    description: Text
    article: str
    takes: Callable[[Any], bool]
    explain: Callable[[Any], str]


@dataclass(frozen=True, slots=True)
class Transition:
    action: Action
    sources: tuple[Status, ...]
    target: Status
    roles: frozenset[Role]
    label: Text
    event: str  # CloudEvents type suffix, past tense
    guards: tuple[Guard, ...] = ()
    notes: Text | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    when: Answer | None = None  # taken for these answers only; the action's other row for the rest

    @property
    def trigger(self) -> str:
        """The machine's name for it: the action's, or the action's with the answers it takes."""
        return self.action.value if self.when is None else f"{self.action.value}__{self.when.name}"


# 民诉法解释 Art. 357: an application whose materials are not supplied is treated as withdrawn; and
# a court that is not the competent one (民事诉讼法 Art. 205) rules nothing on the agreement. Either
# way the agreement binds as before (人民调解法 Art. 31), and the parties may apply again, to the
# competent court, within the 30 days (Art. 33): the case is back where a withdrawal leaves it.
NOT_ACCEPTED_AS_WITHDRAWN: Mapping[str, Text] = {
    NotAcceptedReason.materials_missing: Text(
        "人民法院不予受理: 未按要求补交材料, 按撤回申请处理 (民诉法解释 第三百五十七条); 调解协议仍然有效, "
        "当事人可在期间内补齐材料再次申请 (人民调解法 第三十三条)",
        "Not accepted: materials not supplied, treated as withdrawn (民诉法解释 Art. 357); the agreement "
        "still binds and the parties may apply again within the period (人民调解法 Art. 33)",
    ),
    NotAcceptedReason.not_competent_court: Text(
        "人民法院不予受理: 本院不是有管辖权的法院 (民事诉讼法 第二百零五条), 未对调解协议作出裁定; 调解协议仍然有效, "
        "当事人可在期间内向有管辖权的法院申请 (人民调解法 第三十三条)",
        "Not accepted: not the competent court (民事诉讼法 Art. 205), nothing ruled on the agreement; it "
        "still binds and the parties may apply to the competent court within the period (人民调解法 Art. 33)",
    ),
}


def _not_accepted_as_withdrawn(payload: Any) -> bool:
    return getattr(payload, "reason_code", None) in NOT_ACCEPTED_AS_WITHDRAWN


def _why_not_accepted_as_withdrawn(payload: Any) -> str:
    why = NOT_ACCEPTED_AS_WITHDRAWN[payload.reason_code].zh
    note = getattr(payload, "note", None)
    return f"{why}。{note}" if note else why


AS_WITHDRAWN = Answer(
    "as_withdrawn",
    Text(
        "不予受理理由为未补交材料 (materials_missing) 或非管辖法院 (not_competent_court)",
        "Not accepted for missing materials (materials_missing) or as not the competent court (not_competent_court)",
    ),
    "民诉法解释 第三百五十七条; 民事诉讼法 第二百零五条",
    _not_accepted_as_withdrawn,
    _why_not_accepted_as_withdrawn,
)


S = Status
A = Action

TRANSITIONS: tuple[Transition, ...] = (
    Transition(A.accept, (S.registered,), S.accepted, CENTER, Text("受理", "Accept"), "accepted"),
    Transition(
        A.decline,
        (S.registered,),
        S.declined,
        CENTER,
        Text("不予受理", "Decline"),
        "declined",
        notes=Text(
            "须告知当事人可通过的其他途径; 不予受理告知书 (decline_notice) 载明理由和途径, 随案存档",
            "The party is told which channel to use instead; a notice of non-acceptance (decline_notice) "
            "stating the reason and the channel is stored with the case",
        ),
    ),
    Transition(
        A.assign,
        (S.accepted,),
        S.assigned,
        CENTER,
        Text("指派", "Assign"),
        "assigned",
        # A party who clearly refuses is not mediated (人民调解法 Art. 17): no body is sent the case.
        (G_CONSENT, G_BODY, G_CATEGORY, G_TIER_KEPT, G_RECOMMENDED),
        notes=Text(
            "受指派的组织须在规定的工作日内签收或退回 (默认三个工作日)",
            "The body signs for the case or returns it within the set working days (3 by default)",
        ),
    ),
    Transition(
        A.sign_for,
        (S.assigned,),
        S.mediating,
        BODY,
        Text("签收", "Sign for"),
        "signed_for",
        (G_SIGN_FOR_IN_TIME, G_CONSENT, G_COURT_CONSENT, G_MEDIATOR),
    ),
    Transition(
        A.return_,
        (S.assigned,),
        S.accepted,
        BODY | {Role.system},
        Text("退回", "Return"),
        "returned",
        notes=Text(
            "退回后重新分流, 不再推荐退回的组织; 逾期未签收的由系统退回",
            "Re-triage never offers the returning body again; the system returns a case not signed for in time",
        ),
    ),
    Transition(
        A.transfer,
        (S.mediating,),
        S.accepted,
        BODY | CENTER,
        Text("转办", "Transfer"),
        "transferred",
        (G_NO_AGREEMENT_IN_EFFECT,),
    ),
    Transition(
        A.escalate,
        (S.mediating,),
        S.accepted,
        frozenset({Role.body_admin, Role.supervisor}),
        Text("上移层级", "Escalate"),
        "escalated",
        (G_NEXT_TIER, G_NO_AGREEMENT_IN_EFFECT),
    ),
    Transition(
        A.withdraw,
        (S.registered, S.accepted, S.assigned, S.mediating),
        S.withdrawn,
        CENTER | BODY,
        Text("撤回", "Withdraw"),
        "withdrawn",
        (G_NO_AGREEMENT_IN_EFFECT,),
        notes=Text(
            "当事人可随时要求终止调解; 调解协议一经生效即约束双方, 不再撤回, 对协议有争议的可以起诉",
            "Any party may end mediation at any time (人民调解法 Art. 23); once an agreement has taken "
            "effect it binds the parties and is not withdrawn from: a party disputing it may sue (Art. 32)",
        ),
    ),
    Transition(
        A.agree,
        (S.mediating,),
        S.agreement_signed,
        BODY,
        Text("达成协议", "Record agreement"),
        "agreement_signed",
        (G_CONSENT, G_SIGNED, G_CASE_MEDIATOR),
    ),
    Transition(
        A.fail,
        (S.mediating,),
        S.mediation_failed,
        BODY,
        Text("调解终止(未达成协议)", "End without agreement"),
        "mediation_failed",
        (G_NO_AGREEMENT_IN_EFFECT,),
        notes=Text(
            "告知当事人可依法申请仲裁、行政处理或提起诉讼",
            "Parties are told they may go to arbitration, an administrative body or court (人民调解法 Art. 26)",
        ),
    ),
    Transition(
        A.fail,
        (S.accepted, S.assigned),
        S.mediation_failed,
        CENTER,
        Text("终止(当事人拒绝调解)", "End: a party refuses mediation"),
        "mediation_failed",
        (G_REFUSAL_RECORDED, G_REFUSAL_REASON),
        notes=Text(
            "当事人明确拒绝调解的, 不得调解; 中心终止案件, 并告知当事人可依法申请仲裁、行政处理或提起诉讼",
            "A party who clearly refuses is not mediated: the center ends the case and tells the parties "
            "the other routes (人民调解法 Art. 17, 26; 特邀调解规定 Art. 26)",
        ),
    ),
    Transition(
        A.request_confirmation,
        (S.agreement_signed,),
        S.confirmation_pending,
        BODY | CENTER,
        Text("申请司法确认", "Apply for judicial confirmation"),
        "confirmation_requested",
        (G_AGREEMENT, G_WRITTEN, G_JOINT, G_WINDOW, G_CONFIRMABLE, G_COURT, G_COMPETENT_COURT, G_MATERIALS),
        notes=Text(
            "法院应在三日内决定是否受理, 受理后十五日内作出决定 (可延长十日)",
            "The court decides on acceptance within 3 days and on the merits within 15 (+10) days",
        ),
    ),
    Transition(
        A.withdraw_confirmation,
        (S.confirmation_pending,),
        S.agreement_signed,
        BODY | CENTER | {Role.court},
        Text("撤回司法确认申请", "Withdraw the confirmation application"),
        "confirmation_withdrawn",
        (G_WITHDRAWAL_RULED, G_RULING_DATE),
        notes=Text(
            "法院受理前当事人可撤回申请; 受理后撤回须由法院裁定准许, 调解组织或中心代为提出的撤回只登记为撤回申请, "
            "案件仍在司法确认中, 由法院裁定; 无正当理由未补交材料的, 法院按撤回处理",
            "Before the court accepts, the parties may take the application back; once it has accepted, the "
            "withdrawal is the court's ruling: the body's or center's withdrawal is recorded as a request "
            "for the court, the case stays pending, and the court rules (its ruling's number and date); "
            "missing materials count as withdrawal (民诉法解释 Art. 357)",
        ),
    ),
    Transition(
        A.record_performance,
        (S.agreement_signed,),
        S.performed,
        BODY,
        Text("登记履行完毕", "Record performance"),
        "performed",
        (G_AGREEMENT, G_PERFORMANCE_DATE),
        notes=Text(
            "登记全部义务已履行; 逐项登记最后一项义务履行时自动进入已履行",
            "Records every obligation as performed; recording the last one moves the case here by itself",
        ),
    ),
    Transition(
        A.confirm,
        (S.confirmation_pending,),
        S.confirmed,
        frozenset({Role.court}),
        Text("裁定协议有效", "Confirm"),
        "confirmed",
        (G_ACCEPTED, G_RULING_DATE),
        notes=Text(
            "裁定有效的协议可申请强制执行, 期间二年 (民事诉讼法 第二百五十条)",
            "A confirmed agreement is enforceable; enforcement is applied for within 2 years (民事诉讼法 Art. 250)",
        ),
    ),
    Transition(
        A.reject,
        (S.confirmation_pending,),
        S.confirmation_rejected,
        frozenset({Role.court}),
        Text("裁定驳回申请", "Reject"),
        "confirmation_rejected",
        (G_ACCEPTED, G_RULING_DATE),
    ),
    Transition(
        A.not_accept,
        (S.confirmation_pending,),
        S.confirmation_rejected,
        frozenset({Role.court}),
        Text("不予受理确认申请", "Not accept"),
        "confirmation_not_accepted",
        (G_NOT_ACCEPTED_YET, G_REASON_OF_CONFIRMATION),
    ),
    Transition(
        A.not_accept,
        (S.confirmation_pending,),
        S.agreement_signed,
        frozenset({Role.court}),
        Text("不予受理确认申请", "Not accept"),
        "confirmation_not_accepted",
        (G_NOT_ACCEPTED_YET, G_REASON_OF_CONFIRMATION),
        notes=Text(
            "未补交材料的按撤回申请处理, 非管辖法院未对协议作出裁定: 协议仍然有效, 当事人可在期间内再次申请",
            "Missing materials count as withdrawal (民诉法解释 Art. 357), and a court not competent rules "
            "nothing (民事诉讼法 Art. 205): the agreement binds, and the parties may apply again in time",
        ),
        when=AS_WITHDRAWN,
    ),
    Transition(
        A.not_accept,
        (S.referred_arbitration,),
        S.mediation_failed,
        frozenset({Role.arbitration}),
        Text("仲裁不予受理", "Arbitration not accepted"),
        "referral_not_accepted",
        (G_ARBITRATION_NOT_ACCEPTED_YET, G_REASON_OF_ARBITRATION),
        notes=Text(
            "仲裁委员会不予受理的, 案件回到中心: 劳动争议的申请人可以向人民法院起诉 (劳动争议调解仲裁法 第二十九条); "
            "没有有效仲裁协议的, 当事人可以起诉",
            "When the commission does not accept, the case goes back to the center: the labour applicant "
            "may sue (劳动争议调解仲裁法 Art. 29), as may parties without a valid arbitration agreement",
        ),
    ),
    Transition(
        A.not_accept,
        (S.referred_litigation,),
        S.mediation_failed,
        frozenset({Role.court}),
        Text("起诉不予受理", "Suit not accepted"),
        "referral_not_accepted",
        (G_SUIT_NOT_ACCEPTED_YET, G_REASON_OF_LITIGATION),
        notes=Text(
            "人民法院裁定不予受理的, 案件回到中心: 当事人可以上诉, 或依裁定所示途径申请仲裁、向有管辖权的法院起诉 "
            "(民事诉讼法 第一百二十七条、第一百五十七条)",
            "When the court does not accept the suit, the case goes back to the center: the plaintiff may "
            "appeal, or go where the ruling points: arbitration, the competent court (民事诉讼法 Art. 127, 157)",
        ),
    ),
    Transition(
        A.remediate,
        (S.confirmation_rejected,),
        S.mediating,
        BODY | CENTER,
        Text("重新调解", "Re-mediate"),
        "remediation_started",
        (G_CONSENT,),
        notes=Text(
            "驳回后当事人可通过调解变更原协议或达成新协议",
            "After rejection the parties may re-mediate (民诉法 Art. 206)",
        ),
    ),
    Transition(
        A.refer_arbitration,
        (S.mediation_failed, S.mediating, S.agreement_signed, S.confirmation_rejected),
        S.referred_arbitration,
        BODY | CENTER,
        Text("导入仲裁", "Refer to arbitration"),
        "referred_arbitration",
        (
            G_LABOUR_WINDOW,
            G_NO_AGREEMENT_IN_EFFECT,
            G_ARBITRATION_AFTER_AGREEMENT,
            G_NOT_PERFORMED,
            G_COMMISSION,
            G_ARBITRABLE,
            G_COMMISSION_FITS,
        ),
    ),
    Transition(
        A.refer_litigation,
        (S.mediation_failed, S.agreement_signed, S.confirmation_rejected, S.referred_arbitration),
        S.referred_litigation,
        BODY | CENTER,
        Text("导入诉讼", "Refer to litigation"),
        "referred_litigation",
        (G_LABOUR_ARBITRATION_FIRST, G_LABOUR_PAYMENT_ORDER, G_ARBITRATION_UNANSWERED, G_COURT),
        notes=Text(
            "调解不成、协议未履行或确认被驳回时, 当事人可以起诉; 劳动争议仲裁委员会不予受理或逾期未作出决定的, 亦可起诉",
            "After failure, non-performance or rejection the parties may sue; so may the applicant whose "
            "labour arbitration was not accepted or not decided in time (劳动争议调解仲裁法 Art. 29, 43)",
        ),
    ),
    Transition(
        A.record_outcome,
        (S.referred_arbitration,),
        S.closed,
        frozenset({Role.arbitration}),
        Text("登记仲裁结果", "Record arbitration outcome"),
        "referral_concluded",
        (G_ARBITRATION_ACCEPTED, G_AWARD_DATE, G_OUTCOME_OF_ARBITRATION),
    ),
    Transition(
        A.record_outcome,
        (S.referred_litigation,),
        S.closed,
        frozenset({Role.court}),
        Text("登记诉讼结果", "Record litigation outcome"),
        "referral_concluded",
        (G_SUIT_ACCEPTED, G_JUDGMENT_DATE, G_OUTCOME_OF_LITIGATION),
    ),
    Transition(
        A.close,
        (S.performed, S.confirmed, S.mediation_failed, S.withdrawn),
        S.closed,
        CENTER | BODY | {Role.system},
        Text("结案", "Close"),
        "closed",
    ),
    Transition(
        A.close,
        (S.confirmation_rejected,),
        S.closed,
        CENTER | BODY,
        Text("结案", "Close"),
        "closed",
        (G_REASON,),
        notes=Text(
            "确认被驳回或不予受理后当事人不再重新调解、仲裁或起诉的, 写明理由结案, 回访后归档",
            "When the parties take the refused agreement no further, the case is closed with the reason, "
            "then followed up and archived (人民调解法 Art. 27)",
        ),
    ),
    Transition(
        A.archive,
        (S.closed,),
        S.archived,
        CENTER | {Role.body_admin},
        Text("回访并归档", "Follow up and archive"),
        "archived",
        (G_VISIT,),
        notes=Text(
            "归档前须完成回访, 或记录无法回访的原因",
            "A follow-up visit, or why none was possible, is recorded first (人民调解法 Art. 27)",
        ),
    ),
)


def transitions_from(status: str) -> list[Transition]:
    return [t for t in TRANSITIONS if status in t.sources]


def allowed_actions(status: str, role: Role) -> list[str]:
    """The lifecycle actions `role` could take from `status`: its role's rows, each action once (an
    action another role takes is no answer for it; `GET .../actions` says which of these pass their
    conditions now). What a 409 `invalid-transition` offers the caller instead."""
    return list(dict.fromkeys(t.action.value for t in transitions_from(status) if role in t.roles))


def find_transition(status: str, action: Action, payload: Any = None) -> Transition | None:
    """The transition the action takes from this state: the one for the answer posted (`payload`)
    if a row takes it, else the action's usual row."""
    rows = [t for t in TRANSITIONS if t.action == action and status in t.sources]
    if payload is not None:
        for t in rows:
            if t.when is not None and t.when.takes(payload):
                return t
    return next((t for t in rows if t.when is None), None)


def evaluate(transition: Transition, ctx: GuardContext, *, with_payload: bool = True) -> list[Refusal]:
    reasons: list[Refusal] = []
    for guard in transition.guards:
        if guard.needs_payload and not with_payload:
            continue
        reasons += guard.check(ctx)
    return reasons


# ---- the machine --------------------------------------------------------------------------------


class _CaseSubject:
    """What the machine drives: a light wrapper whose `status` is the ORM row's column."""

    def __init__(self, dispute: Dispute) -> None:
        self._dispute = dispute
        self.refusals: list[Refusal] = []

    @property
    def status(self) -> str:
        return self._dispute.status

    @status.setter
    def status(self, value: Any) -> None:
        self._dispute.status = str(value.value if isinstance(value, StrEnum) else value)


def _machine_transitions() -> list[dict[str, Any]]:
    specs = []
    for t in TRANSITIONS:
        specs.append(
            {
                "trigger": t.trigger,
                "source": [s.value for s in t.sources],
                "dest": t.target.value,
                "conditions": [_GuardsPass(t)],
            }
        )
    return specs


class _GuardsPass:
    def __init__(self, transition: Transition) -> None:
        self.transition = transition

    def __call__(self, event: Any) -> bool:
        ctx: GuardContext = event.kwargs["ctx"]
        subject: _CaseSubject = event.model
        subject.refusals = evaluate(self.transition, ctx)
        return not subject.refusals


# One machine for the process, built once. It holds no case: each transition is triggered on
# its event with the case as the argument, and the machine reads and sets the state through
# `_CaseSubject.status`. Firing is synchronous, so two requests never share it mid-transition.
_MACHINE = Machine(
    model=None,
    states=[s.value for s in Status],
    transitions=_machine_transitions(),
    initial=Status.registered.value,
    auto_transitions=False,
    send_event=True,
    model_attribute="status",
)


def fire(dispute: Dispute, transition: Transition, ctx: GuardContext) -> None:
    """Run one transition through the state machine; raise typed errors when it cannot happen."""
    subject = _CaseSubject(dispute)
    try:
        moved = _MACHINE.events[transition.trigger].trigger(subject, ctx=ctx)
    except MachineError as exc:
        raise InvalidTransition(
            str(exc),
            status_now=dispute.status,
            allowed_actions=allowed_actions(dispute.status, ctx.principal.role),
        ) from exc
    if not moved:
        raise GuardFailed(summary(subject.refusals), reasons=[r.as_dict() for r in subject.refusals])


# ---- the machine as data, for other systems and for the docs ------------------------------------


def describe(language: str | None = None) -> dict[str, Any]:
    return {
        "states": [
            {
                "name": s.value,
                "label": STATUS_LABELS[s].zh,
                "label_en": STATUS_LABELS[s].en,
                "terminal": s in TERMINAL,
            }
            for s in Status
        ],
        "initial": Status.registered.value,
        "transitions": [
            {
                "action": t.action.value,
                "from": [s.value for s in t.sources],
                "to": t.target.value,
                "label": t.label.zh,
                "label_en": t.label.en,
                "roles": sorted(r.value for r in t.roles),
                "event_type": "cn.mediation.dispute." + t.event,
                "guards": [
                    {"name": g.name, "description": g.description.get(language), "article": g.article}
                    for g in t.guards
                ],
                "notes": t.notes.get(language) if t.notes else None,
                "when": (
                    {
                        "name": t.when.name,
                        "description": t.when.description.get(language),
                        "article": t.when.article,
                    }
                    if t.when
                    else None
                ),
            }
            for t in TRANSITIONS
        ],
    }


def mermaid() -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {Status.registered.value}"]
    for t in TRANSITIONS:
        for s in t.sources:
            lines.append(f"    {s.value} --> {t.target.value}: {t.action.value}")
    lines.append(f"    {Status.archived.value} --> [*]")
    lines.append(f"    {Status.declined.value} --> [*]")
    return "\n".join(lines) + "\n"


# What each action is called, for messages that name it (the first transition's label: an action
# taken from several states is one thing).
ACTION_LABELS: dict[Action, Text] = {t.action: t.label for t in reversed(TRANSITIONS)}
