"""What a court or a commission may answer a handoff with, by the kind of handoff: the outcomes it
decides a referral with, and the reasons it does not accept one for. The lifecycle's guards
(`outcome_of_this_body`, `reason_of_this_body`) and the contract read them from here.

An arbitration commission ends an arbitration with an award (裁决), a settlement before it
(调解书, or the parties' own 和解 then withdrawn), a withdrawal or a dismissal; it never gives a
judgment. A court ends a suit with a judgment (判决), a ruling dismissing it (裁定驳回起诉), a
民事调解书, or the plaintiff's withdrawal (撤诉); it never makes an award.
"""

from __future__ import annotations

from dataclasses import dataclass

from mediation.core.i18n import Text
from mediation.disputes.enums import NotAcceptedReason, ReferralNotAcceptedReason, ReferralOutcome

Out = ReferralOutcome
R = ReferralNotAcceptedReason
ARBITRATION_OUTCOMES = (Out.award, Out.settlement, Out.withdrawal, Out.dismissed)
ARBITRATION_HANDOFF_KINDS = ("labour_arbitration", "commercial_arbitration", "rural_land_arbitration")

# What each kind of handoff is called on pages, papers and in the contract.
KIND_LABELS = {
    "judicial_confirmation": Text("司法确认申请", "Judicial confirmation request"),
    "labour_arbitration": Text("移送劳动人事争议仲裁", "Referral to labour arbitration"),
    "commercial_arbitration": Text("移送商事仲裁", "Referral to commercial arbitration"),
    "rural_land_arbitration": Text("移送农村土地承包仲裁", "Referral to rural land arbitration"),
    "litigation": Text("移送诉讼", "Referral to litigation"),
}


@dataclass(frozen=True, slots=True)
class Decider:
    """Who decides handoffs of one kind, and what it answers them with."""

    body: Text
    outcomes: tuple[ReferralOutcome, ...]
    outcomes_article: str | None
    not_accepted: tuple[str, ...]
    not_accepted_article: str


DECIDERS: dict[str, Decider] = {
    "labour_arbitration": Decider(
        Text("劳动人事争议仲裁委员会", "A labour arbitration commission"),
        ARBITRATION_OUTCOMES,
        # Art. 36: an applicant who does not appear is taken to withdraw; Art. 41: settled between
        # themselves, the parties may withdraw; Art. 42: a 仲裁调解书; Art. 46: the award.
        "劳动争议调解仲裁法 第三十六条、第四十一条、第四十二条、第四十六条",
        # Art. 29: the commission does not accept, in writing and with reasons; the applicant may
        # then sue. Not a labour dispute or outside the commission's scope (Art. 2), the one-year
        # limitation passed (Art. 27), another commission competent (Art. 21), the application
        # incomplete (Art. 28).
        (R.outside_scope, R.time_limit_passed, R.not_competent, R.materials_incomplete, R.other),
        "劳动争议调解仲裁法 第二条、第二十一条、第二十七条、第二十八条、第二十九条",
    ),
    "commercial_arbitration": Decider(
        Text("仲裁委员会", "An arbitration commission"),
        ARBITRATION_OUTCOMES,
        # Art. 42: an applicant who does not appear is taken to withdraw; Art. 49: settled, the
        # parties withdraw or have it made an award; Art. 51-52: 调解书; Art. 54: the award.
        "仲裁法 第四十二条、第四十九条、第五十一条、第五十二条、第五十四条",
        # Art. 24 with Art. 21: no valid arbitration agreement naming it (Art. 4, 16), not an
        # arbitrable matter (Art. 2, 3), already awarded (Art. 9), the application incomplete.
        (R.no_arbitration_agreement, R.outside_scope, R.already_decided, R.materials_incomplete, R.other),
        "仲裁法 第四条、第九条、第十六条、第二十一条、第二十四条",
    ),
    "rural_land_arbitration": Decider(
        Text("农村土地承包仲裁委员会", "A rural land contract arbitration commission"),
        ARBITRATION_OUTCOMES,
        # Chapter 3, section 4 (开庭和裁决): the tribunal mediates first (调解书), else awards; the
        # applicant may withdraw.
        "农村土地承包经营纠纷调解仲裁法 第三章第四节",
        # Art. 22-23: not accepted, in writing within five working days, when the application
        # does not qualify or is outside its scope (Art. 2), a court or another body has it, or it
        # was already decided; Art. 18: the two-year limitation.
        (
            R.outside_scope,
            R.time_limit_passed,
            R.not_competent,
            R.already_decided,
            R.materials_incomplete,
            R.other,
        ),
        "农村土地承包经营纠纷调解仲裁法 第二条、第十八条、第二十二条、第二十三条",
    ),
    "litigation": Decider(
        Text("人民法院", "A court"),
        # Art. 100: 民事调解书; Art. 148: withdrawal (撤诉); Art. 155: the judgment; Art. 157:
        # a ruling dismissing the suit (驳回起诉).
        (Out.judgment, Out.settlement, Out.withdrawal, Out.dismissed),
        "民事诉讼法 第一百条、第一百四十八条、第一百五十五条、第一百五十七条",
        # Art. 126: a suit that does not qualify is not accepted by a ruling within 7 days. Art. 122:
        # the conditions (a plaintiff with a direct interest, a defendant, concrete claims, a civil
        # matter for this court); Art. 127: an administrative or other body's matter, a written
        # arbitration agreement, another court competent, a matter already decided.
        (
            R.conditions_not_met,
            R.outside_court_scope,
            R.not_competent_court,
            R.arbitration_agreement,
            R.already_decided,
            R.other,
        ),
        "民事诉讼法 第一百二十二条、第一百二十六条、第一百二十七条",
    ),
    "judicial_confirmation": Decider(
        Text("人民法院", "A court"),
        (),  # a confirmation request is ruled on (/decision), not concluded with an outcome
        None,
        tuple(NotAcceptedReason),
        "民诉法解释 第三百五十五条、第三百五十七条",
    ),
}


def outcome_refused(kind: str, outcome: object) -> Text | None:
    """Why `outcome` is not one the body deciding this kind of handoff gives, or None if it is."""
    decider = DECIDERS.get(kind)
    if decider is None or outcome in decider.outcomes:
        return None
    allowed = ", ".join(decider.outcomes) or "—"
    return Text(
        "{b}不作出此结果 ({o}); 可登记的结果: {a} ({art})",
        "{b_en} does not decide with {o}; it decides with: {a} ({art})",
    ).format(b=decider.body.zh, b_en=decider.body.en, o=str(outcome), a=allowed, art=decider.outcomes_article)


def reason_refused(kind: str, reason_code: object) -> Text | None:
    """Why `reason_code` is not one the body deciding this kind of handoff does not accept for,
    or None if it is."""
    decider = DECIDERS.get(kind)
    if decider is None or reason_code in decider.not_accepted:
        return None
    allowed = ", ".join(decider.not_accepted)
    return Text(
        "{b}不以此理由不予受理 ({r}); 可选的理由代码: {a} ({art})",
        "{b_en} does not refuse for {r}; its reason codes are: {a} ({art})",
    ).format(
        b=decider.body.zh,
        b_en=decider.body.en,
        r=str(reason_code),
        a=allowed,
        art=decider.not_accepted_article,
    )
