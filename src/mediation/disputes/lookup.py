"""What the parties' status lookup tells beyond the case's state, and what keeps its query codes
from being guessed.

Once the case has left for a court or a commission, the party is told where it went, its case
number there, the day by which it must decide, and after a judicial confirmation the ruling and the
last day to apply for enforcement: the handoff's facts, none of them personal data.

Wrong query codes are counted per case in the audit trail, which every process writes (the refused
lookup's record names the case its number names, through the index on `object_id`, `action`,
`occurred_at`), whichever addresses they came from. The first `lookup_max_failures` of them within
the window cost nothing; after them, each further code is examined only once a wait has passed
since the last wrong one: 1 s, doubling with every further wrong code, up to
`lookup_max_wait_seconds` (`wait_after`). A code given during the wait is refused unexamined, right
or wrong, and is recorded as such (`WAITED`): it does not count, so it lengthens no wait, and a
party who tries again during one is not kept out by trying. A right code once the wait has passed
starts the count again, as does a new code from the center.

No lock, then, that a stranger could set: anyone who knows a case number (they are sequential and
printed on papers) could lock the real party out for as long as a lock lasts, again and again. A
burst of wrong codes now keeps the right one out for at most the longest wait after the burst ends.
One who keeps guessing without end still takes each wait's turn, and the party with it, while they
go on: the party and the stranger cannot be told apart, and the alert to the center (kind
`query_code`, raised once the waits begin and left open until a new code is given) is what answers
that.

Why guessing stays hopeless: a code is 8 characters of 32 (`service.QUERY_CODE_ALPHABET`), 32^8 =
2^40, about 1.1 * 10^12 codes. With the defaults (10 free, waits of 1 s doubling up to 300 s) one
case's codes are examined at most once every 300 s once the waits reached their longest:
365 * 86,400 / 300 = 105,120 a year, plus the free ones and the shorter waits (19) after each window
(24 h) without a wrong code, at most 6,935 more: under 120,000 a year, a chance of about 1 in 9 million
(1.1 * 10^-7) a year to find one case's code. Codes sent at the very moment a wait ends are each
examined (each reads the count before the others' refusals are recorded): a guesser holding 1,000
addresses, each within the per-address limit, would come to about 1 in 10,000 a year; at the
shortest setting (a wait of 1 s), 3.2 * 10^7 a year, about 1 in 35,000.

What a refusal tells: nothing of why. A number that names no case, a wrong code and a code refused
during a wait answer the same 404 with the same words (`WRONG_CODE`, which tells a party sure of
the code to try again in a few minutes), and no Retry-After: a wait told only where the case exists
would tell a guesser which numbers name cases, and telling it for numbers naming none as well (a
wait keyed by the number asked) would keep a count for every number anyone types, to hide what the
same 404 hides already. The per-address limit (`anonymous_rate_limit_per_minute`, wrong answers
only) bounds what one address may ask, whatever it asks. The three refusals take the same steps before
answering (`DisputeService.lookup_status`): the case read by its number, the same count of its
wrong codes (for a number naming no case, of the all-zero id, which has none), the given code
hashed and compared once (against a dummy hash where there is no case, or where the wait has not
passed); the alert, which only some of them ask for, is asked after the answer is sent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.audit.models import AuditRecord
from mediation.bodies.models import Body
from mediation.core.i18n import Text
from mediation.disputes import lifecycle
from mediation.disputes.lifecycle import Status
from mediation.disputes.models import Dispute
from mediation.handoffs.ledger import open_step_due
from mediation.handoffs.models import Handoff

# The refusal, the same whether the number names no case, the code is wrong, or the case's wait has
# not passed: which of them it was is not told (the number's existence would leak). It says what to
# do in the cases a party holding the receipt meets it: try again in a few minutes (after someone
# else's wrong codes), or get a new code.
WRONG_CODE = Text(
    "案件编号或查询码不正确, 或该案件近期查询码输错次数较多。请核对受理回执, 确认无误的请几分钟后再试; "
    "查询码遗失或一直无法查询的, 请携带身份证件到受理窗口重新获取查询码",
    "Case number or query code is wrong, or the case had many wrong codes lately. Check the intake "
    "receipt; if both are right, try again in a few minutes. If the code is lost or still does not "
    "work, bring your identity document to the intake window for a new code",
)

# The audit actions of a lookup, the API's route and the page's: the audit record names a request by
# its route's name, so the routes take these names explicitly (`name=`), and renaming a route's
# function cannot silently stop the count of wrong codes.
API_LOOKUP = "status_lookup"
PAGE_LOOKUP = "lookup"
LOOKUP_ACTIONS = (API_LOOKUP, PAGE_LOOKUP)
# A lookup refused during its case's wait, its code unexamined, is recorded under a name of its own
# (`request.state.audit_action`): not counted among the wrong codes, it lengthens no wait.
WAITED = {API_LOOKUP: "status_lookup_waited", PAGE_LOOKUP: "lookup_waited"}
# The center giving a new code (the API's route and the case page's form, both named so): wrong
# codes before it no longer count.
REISSUE = "reissue_query_code"
REISSUE_ACTIONS = (REISSUE,)
# The first wait once the free wrong codes are used up; each further wrong code doubles it.
FIRST_WAIT = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Lookup:
    """A lookup's answer: the case when the code was right; otherwise, the case the number names
    (None when it names none), whether the code was refused unexamined because the case's wait had
    not passed (`waiting`), whether with this wrong code the free ones are used up and the next
    code waits (`slowed`), and the wrong codes counted, this one included."""

    dispute: Dispute | None
    case_id: uuid.UUID | None = None
    waiting: bool = False
    slowed: bool = False
    failures: int = 0


@dataclass(frozen=True, slots=True)
class Failures:
    """A case's wrong codes within the window since the last right one or new code: how many
    (counted up to a limit) and when the last was given."""

    count: int
    last_at: datetime | None


def counted_failures(free: int, longest: timedelta) -> int:
    """How many wrong codes the count reads at most: enough to know the wait reached its longest."""
    return free + int(longest / FIRST_WAIT).bit_length()


def wait_after(failures: int, free: int, longest: timedelta) -> timedelta:
    """How long after the last wrong code the next code is examined: none while free wrong codes
    remain, then `FIRST_WAIT` doubling with each further one, up to `longest`."""
    if failures < free:
        return timedelta(0)
    beyond = failures - free
    if beyond >= int(longest / FIRST_WAIT).bit_length():
        return longest
    return min(longest, FIRST_WAIT * (1 << beyond))


async def recent_failures(
    session: AsyncSession, case_id: uuid.UUID | None, now: datetime, window: timedelta, limit: int
) -> Failures:
    """Wrong codes given for the case within `window`, since the last right one and the last new
    code within it, counted up to `limit`, and the time of the last. Both read only the window's
    records of the case's lookups and new codes (the index on `object_id`, `action`, `occurred_at`),
    not the case's whole history nor every lookup; codes refused unexamined during a wait are
    recorded under other actions (`WAITED`) and not read. Run for a number that names no case too,
    as the all-zero id, so that every refusal runs the same statement; not in the same time: that id
    has no records, and a case guessed at has some, so the two may differ by the reading of those
    few index entries."""
    object_id = str(case_id or uuid.UUID(int=0))
    of_case = AuditRecord.object_id == object_id
    since = now - window
    reset = (
        select(func.max(AuditRecord.occurred_at))
        .where(
            of_case,
            AuditRecord.outcome == "success",
            AuditRecord.action.in_(LOOKUP_ACTIONS + REISSUE_ACTIONS),
            AuditRecord.occurred_at > since,
        )
        .scalar_subquery()
    )
    failed = (
        select(AuditRecord.occurred_at)
        .where(
            of_case,
            AuditRecord.action.in_(LOOKUP_ACTIONS),
            AuditRecord.outcome == "denied",
            AuditRecord.occurred_at > since,
            AuditRecord.occurred_at > func.coalesce(reset, since),
        )
        .order_by(AuditRecord.occurred_at.desc())
        .limit(limit)
        .subquery()
    )
    row = (
        await session.execute(select(func.count(), func.max(failed.c.occurred_at)).select_from(failed))
    ).one()
    return Failures(int(row[0] or 0), row[1])


# ---- the case at a court or commission --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandoffView:
    """What the lookup tells of the court or commission the case went to."""

    kind: str
    target_name: str
    status: str
    target_case_number: str | None
    due_on: date | None
    provisional: bool
    ruling_number: str | None
    ruled_on: date | None
    enforcement_deadline: date | None


# A handoff the party is told of; one withdrawn or lapsed is followed by the case's next step.
SHOWN = ("pending", "accepted", "not_accepted", "confirmed", "rejected", "concluded")


async def handoff_of(session: AsyncSession, dispute: Dispute) -> HandoffView | None:
    """The case's handoff as the case holds it (`Dispute.handoff`, which the service keeps in step),
    read from its record, with the target's name. None when there is none, when it ended without a
    decision (withdrawn, lapsed), or when the case is back with its mediation body for a new request
    (the request withdrawn or not accepted: the case's own next step applies)."""
    summary = dispute.handoff or {}
    if not summary.get("id") or dispute.status in (Status.agreement_signed, Status.mediating):
        return None
    row = (
        await session.execute(
            select(Handoff, Body.name)
            .join(Body, Body.id == Handoff.target_id)
            .where(Handoff.id == uuid.UUID(str(summary["id"])), Handoff.dispute_id == dispute.id)
        )
    ).first()
    if row is None:
        return None
    handoff, name = row
    if handoff.status not in SHOWN:
        return None
    decision = handoff.decision or {}
    ruled = handoff.kind == "judicial_confirmation" and handoff.status in ("confirmed", "rejected")
    return HandoffView(
        kind=handoff.kind,
        target_name=name,
        status=handoff.status,
        target_case_number=handoff.target_case_number,
        due_on=open_step_due(handoff),
        provisional=handoff.provisional,
        ruling_number=str(decision.get("ruling_number") or "") or None if ruled else None,
        ruled_on=handoff.decided_on if ruled else None,
        enforcement_deadline=handoff.enforcement_deadline if handoff.status == "confirmed" else None,
    )


COURT_KINDS = ("judicial_confirmation", "litigation")

PROVISIONAL = Text(
    " (暂计; {y} 年节假日安排公布后, 如遇节假日将顺延)",
    " (as counted now; a {y} public holiday, once published, may move it later)",
)
# 劳动争议调解仲裁法 Art. 29 (not accepted, or no decision on it within five days) and Art. 43 (no
# award within 45 days, extended by at most 15): the applicant may take the dispute to court.
LABOUR_MAY_SUE = Text(
    "您可以就该劳动争议事项向人民法院提起诉讼 ({a})",
    "you may take the labour dispute to the people's court ({a})",
)


def _day(day: date, provisional: bool) -> Text:
    said = Text(day.isoformat(), day.isoformat())
    if not provisional:
        return said
    later = PROVISIONAL.format(y=day.year)
    return Text(said.zh + later.zh, said.en + later.en)


def handoff_step(dispute: Dispute, view: HandoffView, today: date) -> Text | None:
    """What a party is told to do or wait for while the case is with a court or commission, or
    after it decided; None where the case's own next step says it (`next_step`)."""
    name = view.target_name
    number = view.target_case_number or ""
    if view.kind == "labour_arbitration":
        told = _labour_step(dispute, view, today)
        if told is not None:
            return told
    if view.status == "pending" and view.due_on is not None:
        if view.kind == "judicial_confirmation":
            text = Text(
                "司法确认申请已送{n}, 法院应于 {d} 前决定是否受理",
                "The request for judicial confirmation is with {n}, which decides whether to accept it by {d}",
            )
        elif view.kind == "litigation":
            text = Text(
                "已移送{n}, 法院应于 {d} 前决定是否立案",
                "Sent to {n}, which decides whether to register the case by {d}",
            )
        else:
            text = Text(
                "已移送{n}, 仲裁委员会应于 {d} 前决定是否受理",
                "Sent to {n}, which decides whether to accept the case by {d}",
            )
        return text.format(n=name, d=_day(view.due_on, view.provisional))
    if view.status == "accepted":
        if view.kind == "judicial_confirmation" and view.due_on is not None:
            text = Text(
                "{n}已受理司法确认申请 (案号 {c}), 应于 {d} 前作出裁定",
                "{n} accepted the request for judicial confirmation (case {c}) and rules on it by {d}",
            )
        elif view.kind in COURT_KINDS:
            return Text(
                "{n}已立案 (案号 {c}), 请留意法院的通知",
                "{n} registered the case (case {c}); watch for the court's notices",
            ).format(n=name, c=number)
        elif view.due_on is not None:
            text = Text(
                "{n}已受理 (案号 {c}), 应于 {d} 前作出仲裁裁决",
                "{n} accepted the case (case {c}) and makes its award by {d}",
            )
        else:
            return Text(
                "{n}已受理 (案号 {c}), 请留意仲裁委员会的通知",
                "{n} accepted the case (case {c}); watch for the commission's notices",
            ).format(n=name, c=number)
        return text.format(n=name, c=number, d=_day(view.due_on, view.provisional))
    if view.status == "confirmed" and view.enforcement_deadline is not None:
        return _enforcement_step(view, today)
    return None


def _labour_step(dispute: Dispute, view: HandoffView, today: date) -> Text | None:
    """A labour arbitration commission that did not accept the case, or let its period to accept or
    to award pass undecided, leaves the applicant free to sue (Art. 29, 43), as the service lets the
    case be referred to court then (`lifecycle.labour_route_to_court`); while its period runs, the
    party is told its last day and what follows if it passes."""
    name, number = view.target_name, view.target_case_number or ""
    article = lifecycle.labour_route_to_court(dispute, today)
    if article is not None:
        may_sue = LABOUR_MAY_SUE.format(a=article)
        if view.status == "not_accepted":
            said = Text("{n}不予受理", "{n} did not accept the case").format(n=name)
        elif view.status == "pending" and view.due_on is not None:
            said = Text(
                "{n}未在 {d} 前决定是否受理", "{n} did not decide whether to accept the case by {d}"
            ).format(n=name, d=view.due_on.isoformat())
        elif view.due_on is not None:
            said = Text(
                "{n}未在 {d} 前作出仲裁裁决 (案号 {c})", "{n} made no award by {d} (case {c})"
            ).format(n=name, d=view.due_on.isoformat(), c=number)
        else:
            return None
        return Text(f"{said.zh}; {may_sue.zh}", f"{said.en}; {may_sue.en}")
    if view.status not in ("pending", "accepted") or view.due_on is None:
        return None
    if view.status == "pending":
        text = Text(
            "已移送{n}, 仲裁委员会应于 {d} 前决定是否受理; 不予受理或逾期未作出决定的, ",
            "Sent to {n}, which decides whether to accept the case by {d}; if it does not accept it, or "
            "lets that day pass undecided, ",
        )
        article = lifecycle.LABOUR_NOT_ACCEPTED
    else:
        text = Text(
            "{n}已受理 (案号 {c}), 应于 {d} 前作出仲裁裁决; 逾期未作出裁决的, ",
            "{n} accepted the case (case {c}) and makes its award by {d}; if it makes none by then, ",
        )
        article = lifecycle.LABOUR_NO_AWARD
    said = text.format(n=name, c=number, d=_day(view.due_on, view.provisional))
    may_sue = LABOUR_MAY_SUE.format(a=article)
    return Text(said.zh + may_sue.zh, said.en + may_sue.en)


def _enforcement_step(view: HandoffView, today: date) -> Text:
    """After the ruling: a party the agreement is not performed for may apply for enforcement to the
    court that confirmed it (法释〔2011〕5号 Art. 9, with 民事诉讼法 Art. 206), within two years
    (民事诉讼法 Art. 250), to the last day the handoff counted
    (`Ledger.enforcement_end`: from the last day of performance, or from the ruling)."""
    assert view.enforcement_deadline is not None
    ruling = Text(
        "{n}已裁定调解协议有效 (民事裁定书 {r}, {o})",
        "{n} confirmed the agreement (ruling {r} of {o})",
    ).format(
        n=view.target_name, r=view.ruling_number or "", o=view.ruled_on.isoformat() if view.ruled_on else ""
    )
    if today > view.enforcement_deadline:
        then = Text(
            "; 申请强制执行的二年期间按计算已于 {d} 届满 (期间有中止、中断情形的, 由人民法院审查; 民事诉讼法 第二百五十条)",
            "; the two years to apply for enforcement, as counted, ended on {d} (whether they were "
            "suspended or interrupted is for the court; 民事诉讼法 Art. 250)",
        ).format(d=view.enforcement_deadline.isoformat())
    else:
        then = Text(
            "; 一方拒绝履行或未全部履行的, 对方可向该法院申请强制执行 (最高人民法院关于人民调解协议司法确认程序的若干规定 第九条, 民事诉讼法 第二百零六条), 最后一天为 {d} (民事诉讼法 第二百五十条)",
            "; if a party does not perform it in full, the other may apply to that court for "
            "enforcement (法释〔2011〕5号 Art. 9, 民事诉讼法 Art. 206), by {d} at the latest "
            "(民事诉讼法 Art. 250)",
        ).format(d=_day(view.enforcement_deadline, view.provisional))
    return Text(ruling.zh + then.zh, ruling.en + then.en)
