"""Early warning: raising alerts at intake and from session notes, and their life afterwards.

An alert is raised once per thing it is about (`open_key`): the sixth wage-arrears dispute against
the same employer joins the open cluster alert instead of raising a sixth. A risk alert flags the
case itself (`is_risk`, attention) and tells the mediator to report to the police when there is a
danger of violence (人民调解法 Art. 25). Raising, acknowledging and resolving land on the timeline
of each case concerned. Services add and flush; the request's unit of work commits.
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from mediation.alerts import detect, titles
from mediation.alerts.detect import AlertRules, ClusterBy, ClusterRule, Danger, RiskHit
from mediation.alerts.models import Alert, AlertCase
from mediation.alerts.schemas import RiskFlagIn
from mediation.core.db import keyset_page, one_of
from mediation.core.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from mediation.core.http import check_if_match
from mediation.core.i18n import Text
from mediation.core.principal import BODY_ROLES, CENTER_ROLES, SYSTEM, Principal
from mediation.disputes import attention, lifecycle
from mediation.disputes.attention import Attention
from mediation.disputes.enums import PartyKind, PartyRole
from mediation.disputes.models import TOWN_DIGITS, CaseNumberCounter, Dispute, Party, town_of_case
from mediation.disputes.scope import visible_to
from mediation.disputes.service import DisputeService, counter_years

log = logging.getLogger(__name__)

# How far another host's clock may run ahead of this one's: a wave read under the county's counter
# takes in the cases registered until now and this much after.
CLOCK_MARGIN = timedelta(minutes=1)

POLICE_ADVICE = "对有可能引起治安案件、刑事案件的纠纷, 调解员应当及时向当地公安机关或者其他有关部门报告 (人民调解法 第二十五条)"

# Who flags a case at risk by hand: the staff who work on it, the center's and the body's that
# holds it (the case's scope decides which case each of them sees). A court or commission reads
# what was handed to it, and auditors and administrators do not work on cases.
FLAGGING_ROLES = CENTER_ROLES | BODY_ROLES
# How far ahead of this host's clock a report's time may be (another device's clock).
REPORT_CLOCK_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class StaffFlag:
    """A danger that staff on the case saw and flagged by hand, and their report of it."""

    danger: Danger
    by: Principal
    report: dict[str, Any] | None


class _Recognisable(Protocol):
    id_number_index: str | None
    kind: str
    name_key: str | None
    phone_index: str | None


def _identity_key() -> ColumnElement[str | None]:
    """`_identity` in SQL: the same person or company, as one text (NULL when nothing recognises
    them)."""

    def given(column: Any) -> ColumnElement[bool]:
        return and_(column.is_not(None), column != "")

    return case(
        (given(Party.id_number_index), literal("id:") + Party.id_number_index),
        (
            and_(Party.kind == PartyKind.organisation, given(Party.name_key)),
            literal("name:") + Party.name_key,
        ),
        (given(Party.phone_index), literal("phone:") + Party.phone_index),
        else_=null(),
    )


def _claimants_among(among: ColumnElement[bool]) -> Select[int]:
    """How many claimants the cases have, counted up to `:enough`: each case stands for its first
    applicant the parties recognise (or for itself). Counted in the database: a wave can hold
    hundreds of cases, and the rule only asks whether it reaches its threshold."""
    key = _identity_key()
    first_applicant = (
        select(key)
        .where(Party.dispute_id == Dispute.id, Party.role == PartyRole.applicant, key.is_not(None))
        .order_by(Party.position)
        .limit(1)
        .scalar_subquery()
    )
    claimant = func.coalesce(first_applicant, cast(Dispute.id, String)).label("claimant")
    claimants = select(claimant).where(among).distinct().limit(bindparam("enough")).subquery()
    return select(func.count()).select_from(claimants)


# By dialect (core.db.one_of): a wave's case list grows by one with each intake.
_CLAIMANTS_OF = {dialect: _claimants_among(among) for dialect, among in one_of(Dispute.id, "ids").items()}
_KNOWN_CASES = {
    dialect: select(AlertCase.dispute_id).where(AlertCase.alert_id == bindparam("alert_id"), among)
    for dialect, among in one_of(AlertCase.dispute_id, "ids").items()
}


def _identity(party: _Recognisable) -> tuple[str, str] | None:
    """How the same person or company is recognised across cases without decrypting anything."""
    if party.id_number_index:
        return ("id", party.id_number_index)
    if party.kind == PartyKind.organisation and party.name_key:
        return ("name", party.name_key)
    if party.phone_index:
        return ("phone", party.phone_index)
    return None


# Made once and reused: SQLAlchemy adapts an alias's columns the first time each is used, so a new
# alias per query costs more CPU than running the query.
_FIRST, _SECOND = aliased(Party), aliased(Party)


def _same(party: type[Party], identity: tuple[str, Any]) -> Any:
    kind, value = identity
    if kind == "id":
        return party.id_number_index == value
    if kind == "name":
        return and_(party.name_key == value, party.kind == PartyKind.organisation)
    return party.phone_index == value


# The cluster queries, built once with the case's values as parameters: the county and the
# window (`near`), then what the wave shares.
_NEAR = and_(
    Dispute.region_code.startswith(bindparam("county", type_=Dispute.region_code.type)),
    Dispute.created_at >= bindparam("since"),
    Dispute.created_at <= bindparam("until"),
    # A case an alert of the same wave already brought to a supervisor, who resolved it, is
    # handled: it does not count towards the next wave, which is raised by new cases alone.
    ~exists().where(
        AlertCase.dispute_id == Dispute.id,
        Alert.id == AlertCase.alert_id,
        Alert.key == bindparam("key"),
        Alert.status == "resolved",
    ),
)
# The place each case was given at intake, read off its index (disputes.place_key).
_PLACE_WAVE = select(Dispute.id).where(_NEAR, Dispute.place_key == bindparam("place"))
_CATEGORY_WAVE = select(Dispute.id).where(
    _NEAR,
    Dispute.region_code.startswith(bindparam("town", type_=Dispute.region_code.type)),
    Dispute.category == bindparam("category"),
)
# A case with a village code (12 digits) waves with its town's: the town read off the index
# on (town, category, created_at), not every case of the category and window filtered (a wave of
# hundreds of cases in three days cost PostgreSQL 4 ms per intake that way). A county-level code
# keeps the prefix query above, whose "town" is the county.
_CATEGORY_WAVE_IN_TOWN = select(Dispute.id).where(
    _NEAR, town_of_case == bindparam("town"), Dispute.category == bindparam("category")
)


@functools.cache
def _respondent_wave(kind: str) -> Select[uuid.UUID]:
    """Cases near this one with the same respondent, recognised by `kind` of identity (`who`)."""
    return select(Dispute.id).where(
        _NEAR,
        exists().where(
            _FIRST.dispute_id == Dispute.id,
            _FIRST.role == PartyRole.respondent,
            _same(_FIRST, (kind, bindparam("who"))),
        ),
    )


@functools.lru_cache(maxsize=256)  # bounded: the kinds come from what intake was sent
def _repeat_query(applicant_kinds: tuple[str, ...], respondent_kinds: tuple[str, ...]) -> Select[uuid.UUID]:
    """Concluded cases with one of the applicants (bound as `a0`, `a1`, ...) and one of the
    respondents (`r0`, ...) among their parties; one statement per combination of identity kinds."""
    return select(Dispute.id).where(
        Dispute.id != bindparam("case"),
        Dispute.created_at >= bindparam("since"),
        Dispute.status.in_(("closed", "archived")),
        exists().where(
            _FIRST.dispute_id == Dispute.id,
            or_(*(_same(_FIRST, (kind, bindparam(f"a{n}"))) for n, kind in enumerate(applicant_kinds))),
        ),
        exists().where(
            _SECOND.dispute_id == Dispute.id,
            or_(*(_same(_SECOND, (kind, bindparam(f"r{n}"))) for n, kind in enumerate(respondent_kinds))),
        ),
    )


# Which of a case's waves have an open alert, without loading them, and where the county's
# case-number counters the intake will take stand (one, or two at the turn of the year): intake asks
# both in one statement, before it reads any wave.
_LOOK: dict[str, CompoundSelect[Any]] = {
    dialect: union_all(
        select(Alert.open_key, cast(null(), Integer).label("counted")).where(among),
        select(cast(null(), String), CaseNumberCounter.last_value).where(
            CaseNumberCounter.region == bindparam("county"),
            CaseNumberCounter.year.between(bindparam("first_year"), bindparam("last_year")),
        ),
    )
    for dialect, among in one_of(Alert.open_key, "keys").items()
}
# The open alerts an intake raises or joins, locked and read afresh in one statement under the
# county's counter, in the order of their keys (so two intakes sharing several lock them alike).
_OPEN_ALERTS_LOCKED = {
    dialect: select(Alert)
    .where(among)
    .order_by(Alert.open_key)
    .with_for_update()
    .execution_options(populate_existing=True)
    for dialect, among in one_of(Alert.open_key, "keys").items()
}


# One open alert, locked and read afresh: a risk raised from a session note, or an intake's raising
# that lost the race to insert the alert.
_OPEN_ALERT_LOCKED = (
    select(Alert)
    .where(Alert.open_key == bindparam("key"))
    .with_for_update()
    .execution_options(populate_existing=True)
)


@dataclass(frozen=True, slots=True)
class Wave:
    """The cases near a new one that a cluster rule groups with it: what the alert's key names
    (`subject`) and its title says (`about`), and the statement that reads them."""

    rule: ClusterRule
    subject: str
    about: str
    query: Select[uuid.UUID]
    params: dict[str, Any]
    # A category wave's category and town (None for a county-level case), which its title names.
    category: str | None = None
    town: str | None = None


@dataclass(slots=True)
class Finding:
    """An alert to raise or join, found by reading alone: intake looks for them before it takes the
    county's case-number counter and writes them after, so the counter's lock is held briefly."""

    kind: str
    key: str
    level: str
    region: str
    # What the title says (titles.TITLE_VALUES), without the case number, which intake may give last.
    title_values: dict[str, Any]
    details: dict[str, Any]
    case_ids: list[uuid.UUID]
    matched: dict[str, Any]
    # Joins the wave's alert if it is open when the case's number is taken, and raises none.
    join_only: bool = False
    # A cluster's wave: a finding that raises reads it again under the county's counter.
    wave: Wave | None = None
    # A wave read when the case looked: how many cases it saw in it (itself included), and the
    # county's case-number counters it takes as committed then (their sum: two at the turn of the
    # year, disputes.service.counter_years). Intakes numbered after that and before this case were
    # not in its reading; if they may have brought the wave to its threshold, it is read again
    # under the counter.
    seen: int = 0
    counted: int = 0
    # Its cases were read under the counter: raising it needs no second reading.
    current: bool = False


class AlertService:
    def __init__(self, disputes: DisputeService, rules: AlertRules | None = None) -> None:
        self.disputes = disputes
        self.session = disputes.session
        self.clock = disputes.clock
        self.rules = rules or detect.load()

    # ---- raising --------------------------------------------------------------------------------

    def risk_hits(self, text: str) -> list[RiskHit]:
        return detect.risk_words(text, self.rules)

    async def detect(self, dispute: Dispute, hits: list[RiskHit], *, marked: bool = False) -> list[Finding]:
        """Every check on a newly registered case, reading only. A risk hit, or the registering
        clerk's marking the case as dangerous (`marked`), flags the case itself at once (`is_risk`,
        attention) with one risk alert."""
        found = []
        if hits or marked:
            found.append(self._risk(dispute, hits, "description" if hits else "intake", marked=marked))
        found.extend(await self._clusters(dispute))
        repeat = await self._repeat(dispute)
        if repeat is not None:
            found.append(repeat)
        return found

    async def apply(self, dispute: Dispute, found: list[Finding], counted: int) -> list[Alert]:
        """Write the findings of a case being registered, under the county's counters, which stand
        at `counted` (their sum) now that it has its number: the open alerts they name are locked
        and read afresh in one statement, then each is raised or joined. A wave that the intakes
        numbered since the case looked may have brought to its threshold is read again, and raised
        if it has reached it."""
        if not found:
            return []
        statement = _OPEN_ALERTS_LOCKED[self.session.get_bind().dialect.name]
        keys = sorted({finding.key for finding in found})
        open_now = {a.open_key: a for a in (await self.session.scalars(statement, {"keys": keys})).all()}
        raised = []
        for finding in found:
            alert = open_now.get(finding.key)
            wave = finding.wave
            if alert is None and finding.join_only and finding.seen and wave is not None:
                since = counted - 1 - finding.counted  # numbered after the case looked, before it
                if since > 0 and finding.seen + since >= wave.rule.min_cases:
                    finding = await self._read_again(dispute, finding, wave)
            alert = await self._raise(dispute, finding, alert, registering=True)
            if alert is not None:
                raised.append(alert)
        return raised

    async def _read_again(self, dispute: Dispute, finding: Finding, wave: Wave) -> Finding:
        """The wave read under the counter: the finding that raises it if it has reached its
        threshold now (intakes of the wave running at once each saw it short), else as it was."""
        ids = await self._cases_now(wave)
        if not await self._claimants_reach(ids, wave.rule.min_cases):
            return finding
        raising = self._cluster_finding(dispute, wave, finding.key, ids, join_only=False)
        raising.current = True
        return raising

    async def new_risk_hits(self, dispute: Dispute, text: str) -> list[RiskHit]:
        """The risk words `text` says, all of them, when one is a word no risk alert of the case has
        named yet (at intake, in a session's minutes, in an earlier correction; open or resolved);
        none otherwise, so facts told again with the same words raise no second alert."""
        hits = self.risk_hits(text)
        if not hits:
            return []
        # Through the case's alerts (indexed by case): a risk alert is about its one case.
        named = await self.session.scalars(
            select(Alert.details)
            .join(AlertCase, AlertCase.alert_id == Alert.id)
            .where(
                AlertCase.dispute_id == dispute.id, Alert.kind == "risk", Alert.key == f"risk:{dispute.id}"
            )
        )
        known = {word for details in named.all() for word in (details or {}).get("words", [])}
        return hits if any(hit.word not in known for hit in hits) else []

    async def flag_risk(self, dispute: Dispute, hits: list[RiskHit], source: str) -> Alert:
        finding = self._risk(dispute, hits, source)
        alert = await self._raise(dispute, finding, await self._open(finding.key))
        assert alert is not None  # a risk finding always raises
        return alert

    def may_flag(self, dispute: Dispute, principal: Principal) -> bool:
        """Whether `principal` may flag this case (which it sees) at risk now, as `flag` enforces."""
        return principal.role in FLAGGING_ROLES and dispute.status not in lifecycle.TERMINAL

    async def flag(
        self, dispute_id: uuid.UUID, data: RiskFlagIn, principal: Principal, if_match: str | None
    ) -> tuple[Dispute, Alert, dict[str, Any]]:
        """Staff on the case flag it at risk by hand: a danger they saw that no risk word names
        (人民调解法 Art. 25: a dispute that may turn into a criminal or public-security case is reported
        to the police at once). It does what risk words in the facts do: the case is marked at risk
        and waits for a supervisor, its open risk alert is raised or joined (`source` staff), and a
        case still at the center takes the tier for risk cases. The flag lands on the timeline (what
        was seen as its reason) and in the feed (`risk_flagged`) before the alert, which follows
        from it. Answers the case, its risk alert, and what the event says."""
        if principal.role not in FLAGGING_ROLES:
            raise Forbidden(
                Text(
                    "只有办理本案的调解组织和调解中心工作人员可以报告风险",
                    "Only staff working on the case (the body holding it, the center) flag it at risk",
                )
            )
        dispute = await self.disputes.get(dispute_id, principal, for_update=True)
        check_if_match(if_match, dispute.version)
        status = lifecycle.Status(dispute.status)
        if status in lifecycle.TERMINAL:
            raise InvalidTransition(
                Text(
                    "案件处于「{s}」, 已不再办理; 发现的危险请直接向公安机关报告",
                    "The case is {se} and no longer worked on; report a danger to the police directly",
                ).format(s=lifecycle.STATUS_LABELS[status].zh, se=status.value),
                code="case_closed",
                status_now=status.value,
                allowed_actions=lifecycle.allowed_actions(status, principal.role),
            )
        if data.reported_at is not None and data.reported_at > self.clock.now() + REPORT_CLOCK_MARGIN:
            raise ValidationFailed.of_field(
                "reported_at",
                "in_future",
                Text("报告时间不能晚于现在", "reported_at cannot be in the future"),
            )
        report: dict[str, Any] | None = None
        if data.reported_to is not None:
            assert data.reported_at is not None  # RiskFlagIn asks for it with a report
            report = {
                "to": data.reported_to.value,
                "at": data.reported_at.isoformat(),
                "department": data.report_department or None,
                "reference": data.report_reference or None,
            }
        finding = self._risk(dispute, [], "staff", flagged=StaffFlag(data.danger, principal, report))
        # The event carries codes and times; the department's name and the reference number stay
        # with the case, read with its rights (free text, masked like other notes).
        payload: dict[str, Any] = {
            "danger": data.danger.value,
            "reported_to": report["to"] if report else None,
            "reported_at": report["at"] if report else None,
        }
        moved = await self.disputes.raise_tier_for_risk(dispute)
        if moved is not None:
            payload["tier"] = moved
        kept = {k: report[k] for k in ("department", "reference") if report and report[k]}
        await self.disputes.record_work(
            dispute,
            "flag_risk",
            principal,
            data.observation,
            payload,
            "risk_flagged",
            timeline_only={f"report_{k}": v for k, v in kept.items()},
        )
        alert = await self._raise(dispute, finding, await self._open(finding.key))
        assert alert is not None  # a risk finding always raises
        return dispute, alert, payload

    def _risk(
        self,
        dispute: Dispute,
        hits: list[RiskHit],
        source: str,
        *,
        marked: bool = False,
        flagged: StaffFlag | None = None,
    ) -> Finding:
        """A risk alert on the case: for the words that signal danger (`hits`), or because the clerk
        registering it marked it as dangerous (`marked`), or because staff on the case flagged it
        (`flagged`). Either way the mediator is told to report a danger of violence to the police
        (人民调解法 Art. 25), and the case waits for a supervisor at once."""
        kinds = sorted({h.kind for h in hits} | ({flagged.danger.value} if flagged else set()))
        words = sorted({h.word for h in hits})
        dispute.is_risk = True
        attention.flag(dispute, Attention.risk)
        details: dict[str, Any] = {"kinds": kinds, "words": words, "source": source, "advice": POLICE_ADVICE}
        reasons = []
        if marked:
            details["marked_by"] = dispute.created_by
            reasons.append(titles.marked())
        if flagged is not None:
            details["flagged_by"] = flagged.by.id
            if flagged.report is not None:
                # Not reported yet, an earlier flag's report the alert holds stays.
                details["report"] = flagged.report
            reasons.append(titles.flagged(flagged.by.role, flagged.danger))
        if hits:
            reasons.append(titles.said(sorted({h.kind for h in hits})))
        return Finding(
            kind="risk",
            key=f"risk:{dispute.id}",
            level="immediate",
            region=dispute.region_code,
            # The title names the case when it is written (the case number may come last at intake).
            title_values={"reasons": reasons},
            details=details,
            case_ids=[dispute.id],
            matched=details,
        )

    async def _clusters(self, dispute: Dispute) -> list[Finding]:
        """The waves this case belongs to: one per cluster rule that recognises it, and under the
        respondent rule one per respondent.

        A wave whose alert is open is joined as it is: the case is added to it, and its cases are
        neither read nor counted, so a joining intake costs the same at the wave's hundredth case as
        at its sixth. Whether each wave is open is asked in one statement for all of them.

        A wave without an open alert is read, and its claimants counted: reaching the rule's
        threshold, the case raises the alert. Otherwise it may still join it: intakes of one county
        take its case-number counter in turn, and `apply` runs under it, so an alert that another
        intake raised after this one looked is found there and joined. That holds for a case alone
        in its window too, whose wave is raised by intakes that began after it and took the counter
        first: they could not see it, uncommitted, so it joins them. A wave being raised is read
        again under the counter, so it holds every case of the wave committed by then, those
        registered after it included. And a wave that several intakes running at once each saw
        short of its threshold is read again by the last of them to take the counter, when the ones
        numbered since it looked could have made up the difference: it raises the alert then, not
        the wave's next case. Counters are per county and year: at the turn of the year an intake
        holds both years' counters (disputes.service.counter_years), so an intake dated 31 December
        and one dated 1 January take them in turn as well, and the intakes numbered since a case
        looked are counted on both.
        """
        waves = [wave for rule in self.rules.clusters for wave in self._waves(dispute, rule)]
        if not waves:
            return []
        county = dispute.region_code[:6]
        keys = [detect.bounded(f"cluster:{wave.rule.id}:{county}:{wave.subject}") for wave in waves]
        for wave, key in zip(waves, keys, strict=True):
            wave.params["key"] = key
        statement = _LOOK[self.session.get_bind().dialect.name]
        # The counters intake takes: of the day the case is registered on (its number's year), not
        # of the application's date.
        years = counter_years(dispute.created_at.astimezone(self.clock.zone).date())
        params = {"keys": keys, "county": county, "first_year": years[0], "last_year": years[-1]}
        rows = (await self.session.execute(statement, params)).all()
        open_keys = {row[0] for row in rows if row[0] is not None}
        counted = sum(int(row[1]) for row in rows if row[1] is not None)
        found = []
        for wave, key in zip(waves, keys, strict=True):
            joining = self._cluster_finding(dispute, wave, key, [dispute.id], join_only=True)
            if key not in open_keys:
                ids = await self._cases_of(wave)
                if await self._claimants_reach(ids, wave.rule.min_cases):
                    found.append(self._cluster_finding(dispute, wave, key, ids, join_only=False))
                    continue
                joining.seen, joining.counted = len(ids), counted
            found.append(joining)
        return found

    def _waves(self, dispute: Dispute, rule: ClusterRule) -> list[Wave]:
        """The case's waves under `rule`, in the window ending with the case; none when nothing
        recognises it (no respondent known, no address). Every respondent has its wave: a worker
        names the labour company, the foreman who hired him or the main contractor, in any order,
        and a claim against the employer counts against it wherever it stands in the list."""
        county = dispute.region_code[:6]
        since = dispute.created_at - timedelta(days=rule.window_days)
        near = {"county": county, "since": since, "until": dispute.created_at}
        if rule.by == ClusterBy.respondent:
            respondents: dict[tuple[str, str], str] = {}
            for p in dispute.parties:
                if p.role == PartyRole.respondent and (i := _identity(p)) is not None:
                    respondents.setdefault(i, p.name)  # one wave per respondent, named once
            return [
                Wave(rule, f"{kind}:{who}", name, _respondent_wave(kind), {**near, "who": who})
                for (kind, who), name in respondents.items()
            ]
        if rule.by == ClusterBy.place:
            place = dispute.place_key
            if place is None:
                return []
            return [
                Wave(rule, f"place:{place}", dispute.address or place, _PLACE_WAVE, {**near, "place": place})
            ]
        town = dispute.region_code[:TOWN_DIGITS]
        in_town = len(town) == TOWN_DIGITS
        query = _CATEGORY_WAVE_IN_TOWN if in_town else _CATEGORY_WAVE
        params = {**near, "town": town, "category": dispute.category}
        # The supervisor reads the title: the category by its name, and where.
        named = town if in_town else None
        about = titles.category_about(dispute.category, named).zh
        subject = f"category:{town}:{dispute.category}"
        return [Wave(rule, subject, about, query, params, category=dispute.category, town=named)]

    async def _cases_of(self, wave: Wave) -> list[uuid.UUID]:
        """The wave's cases (the case itself included)."""
        return list((await self.session.scalars(wave.query, wave.params)).all())

    async def _cases_now(self, wave: Wave) -> list[uuid.UUID]:
        """The wave's cases as they stand under the county's counter: its window runs on to the
        present, because an intake that began after this case, and so was registered later, may
        have taken the counter first and committed. (A minute's margin for other hosts' clocks.)"""
        until = max(wave.params["until"], self.clock.now() + CLOCK_MARGIN)
        return list((await self.session.scalars(wave.query, {**wave.params, "until": until})).all())

    def _cluster_finding(
        self, dispute: Dispute, wave: Wave, key: str, ids: list[uuid.UUID], *, join_only: bool
    ) -> Finding:
        rule = wave.rule
        details = {
            "rule": rule.id,
            "by": rule.by.value,
            "about": wave.about,
            "window_days": rule.window_days,
            "min_cases": rule.min_cases,
        }
        said = {
            "rule": rule.id,
            "window_days": rule.window_days,
            "cases": len(ids),
            "about": wave.about,
            "category": wave.category,
            "town": wave.town,
        }
        county = dispute.region_code[:6]
        return Finding("cluster", key, "high", county, said, details, ids, {"rule": rule.id}, join_only, wave)

    async def _claimants_reach(self, ids: list[uuid.UUID], enough: int) -> bool:
        """Whether the cases have at least `enough` distinct applicants: one resident filing five
        times (or the same dispute arriving by window, hotline and grid) is one claimant, not a
        crowd. Nothing is decrypted: parties are recognised by their keyed indexes."""
        if len(ids) < enough:
            return False  # never more claimants than cases
        statement = _CLAIMANTS_OF[self.session.get_bind().dialect.name]
        return int(await self.session.scalar(statement, {"ids": ids, "enough": enough}) or 0) >= enough

    async def _repeat(self, dispute: Dispute) -> Finding | None:
        """Repeated disputes between the same parties: an earlier, concluded case with both an
        applicant and a respondent of this one among its parties, i.e. the conflict came back. (An
        open case with the same parties is the same dispute arriving twice: the intake's related-case
        hint shows it, and the clerk links the two.)"""
        applicants = [i for p in dispute.parties if p.role == PartyRole.applicant and (i := _identity(p))]
        respondents = [i for p in dispute.parties if p.role == PartyRole.respondent and (i := _identity(p))]
        if not applicants or not respondents:
            return None
        since = dispute.created_at - timedelta(days=self.rules.repeat_within_days)
        query = _repeat_query(tuple(k for k, _ in applicants), tuple(k for k, _ in respondents))
        params: dict[str, Any] = {"case": dispute.id, "since": since}
        params.update({f"a{n}": value for n, (_, value) in enumerate(applicants)})
        params.update({f"r{n}": value for n, (_, value) in enumerate(respondents)})
        earlier = list((await self.session.scalars(query, params)).all())
        if not earlier:
            return None
        pair = sorted([f"{applicants[0][0]}:{applicants[0][1]}", f"{respondents[0][0]}:{respondents[0][1]}"])
        details = {"earlier_cases": len(earlier), "within_days": self.rules.repeat_within_days}
        return Finding(
            "repeat",
            "repeat:" + "|".join(pair)[:180],
            "normal",
            dispute.region_code[:6],
            {"cases": len(earlier) + 1},
            details,
            [*earlier, dispute.id],
            {"earlier": len(earlier)},
        )

    async def _raise(
        self, dispute: Dispute, finding: Finding, alert: Alert | None, *, registering: bool = False
    ) -> Alert | None:
        """Join the open alert with this key (`alert`, locked and read afresh by the caller: two
        intakes joining the same wave at once each add their case), or raise it. Two intakes raising
        the same alert at once: the second's insert fails on `open_key` inside a savepoint and it
        joins instead. A finding that only joins raises nothing when no alert is open: its wave
        has not reached the threshold, or has been resolved meanwhile. `registering`: `dispute` is
        being registered, so no alert lists it yet."""
        kind, key, level, region = finding.kind, finding.key, finding.level, finding.region
        details, case_ids, matched = finding.details, finding.case_ids, finding.matched
        said = finding.title_values
        if kind == "risk":
            said = {"case_number": dispute.case_number, **said}
        now = self.clock.now()
        if alert is None and finding.join_only:
            return None
        # Whether the alert may list some of the cases already: not when this raises it, nor when
        # the only case is the one being registered.
        may_know = alert is not None and not (registering and case_ids == [dispute.id])
        if alert is None and finding.wave is not None and not finding.current:
            # Raising a wave: its cases read again under the county's counter, so an intake of the
            # wave that committed since the finding was made is part of it from the start.
            case_ids = await self._cases_now(finding.wave)
            said = {**said, "cases": len(case_ids)}
        title = self._title(finding, said).zh
        # A repeat's title counts the cases the alert lists, which it always holds: no values kept.
        kept = {titles.TITLE_VALUES: said} if kind != "repeat" else {}
        if alert is None:
            try:
                async with self.session.begin_nested():
                    alert = Alert(
                        id=uuid.uuid4(),
                        kind=kind,
                        key=key,
                        open_key=key,
                        level=level,
                        region_code=region,
                        title=title,
                        details={**details, **kept},
                        status="open",
                        case_count=0,
                        raised_at=now,
                        last_seen_at=now,
                        version=1,
                    )
                    self.session.add(alert)
                    await self.session.flush()
            except IntegrityError:
                alert = await self._open(key)
                assert alert is not None
                may_know = True
        else:
            alert.details = {
                **alert.details,
                **{k: v for k, v in details.items() if k not in ("words", "kinds")},
            }
            if kind == "risk":
                alert.details = {
                    **alert.details,
                    "words": sorted({*alert.details.get("words", []), *details["words"]}),
                    "kinds": sorted({*alert.details.get("kinds", []), *details["kinds"]}),
                }
            if finding.wave is None:
                # A repeat's title counts the disputes so far, and a risk's names the case. A wave's
                # keeps the title it was raised with, which counts the cases that raised it, also
                # when this case found it raised meanwhile by intakes that saw a different window.
                alert.title = title
                alert.details = {**alert.details, **kept}
        known: set[uuid.UUID] = set()
        if may_know:
            statement = _KNOWN_CASES[self.session.get_bind().dialect.name]
            known = set(
                (await self.session.scalars(statement, {"alert_id": alert.id, "ids": case_ids})).all()
            )
        added = [case_id for case_id in case_ids if case_id not in known]
        for case_id in added:
            self.session.add(AlertCase(alert_id=alert.id, dispute_id=case_id, matched=matched, added_at=now))
        # The alert's every change before the note's flush, so it is written once (intake holds the
        # county's counter while it does this).
        alert.case_count += len(added)
        if kind == "repeat":
            # The count the supervisor reads is the alert's own: the disputes between these
            # parties it lists, not those one intake's look-back window happened to see.
            alert.title = titles.repeat(alert.case_count).zh
        alert.last_seen_at = now
        alert.version += 1
        for case_id in added:
            # The alert's title, which a case joining a wave leaves as the wave was raised.
            await self._note(case_id, dispute, "alert_raised", alert, alert.title)
        await self.session.flush()
        return alert

    def _title(self, finding: Finding, said: dict[str, Any]) -> Text:
        if finding.kind == "risk":
            return titles.risk(said, self.rules)
        if finding.kind == titles.QUERY_CODE:
            return titles.query_code(said)
        if finding.wave is not None:
            return titles.cluster(said, finding.wave.rule)
        return titles.repeat(said["cases"])

    async def _open(self, key: str) -> Alert | None:
        """The open alert with this key, locked and read afresh."""
        return await self.session.scalar(_OPEN_ALERT_LOCKED, {"key": key})

    async def _note(
        self, case_id: uuid.UUID, current: Dispute, action: str, alert: Alert, reason: str
    ) -> None:
        """The alert on the timeline (and in the outbox) of the case that raised or joined it. The
        earlier cases of a cluster are listed on the alert (and `GET /v1/disputes/{id}/alerts`) but
        their timelines are left alone: an intake must never fail, or make a clerk's open copy of
        another case stale, because that case happens to belong to the same cluster."""
        if case_id != current.id:
            return
        payload = {"alert_id": str(alert.id), "kind": alert.kind, "level": alert.level}
        await self.disputes.record_work(current, action, SYSTEM, reason, payload, action)

    # ---- a party's query code -------------------------------------------------------------------

    async def query_codes_guessed(self, dispute: Dispute, failures: int, hours: int) -> Alert | None:
        """Ask the center for a new query code: `failures` wrong codes within `hours` were given for
        the case, and its status lookup now examines a code only after a wait (disputes.lookup), which
        keeps a party trying meanwhile out as well as a stranger guessing. The waits end by themselves
        (a stranger guessing can slow anyone's lookup, so they must), or at once when the center
        gives a new code at the window to a party who shows who they are. One alert per case while
        it is open, raised by the wrong code that began the waits or by any refusal after it, and
        left as it is by those after; it lands on the case's timeline as every alert does. Only the
        new code resolves it (`query_code_reissued`): it may stay open after the party has got in,
        for the code may be known to the guesser. Nothing of the codes tried, nor of the addresses
        they came from, which the audit trail keeps."""
        key = f"{titles.QUERY_CODE}:{dispute.id}"
        alert = await self._open(key)
        if alert is not None:
            # Asked already: every refusal once the waits have begun asks, and changes nothing here.
            return alert
        finding = Finding(
            titles.QUERY_CODE,
            key,
            "high",
            dispute.region_code,
            {"case_number": dispute.case_number, "failures": failures, "hours": hours},
            {"failures": failures, "within_hours": hours},
            [dispute.id],
            {"failures": failures},
        )
        return await self._raise(dispute, finding, None)

    async def query_code_reissued(self, dispute: Dispute, principal: Principal) -> None:
        """The center gave the case a new query code: the alert asking for one is resolved."""
        alert = await self._open(f"{titles.QUERY_CODE}:{dispute.id}")
        if alert is None:
            return
        now = self.clock.now()
        alert.status, alert.open_key = "resolved", None
        alert.resolved_at, alert.resolved_by = now, principal.id
        alert.resolution = "已重新生成查询码"
        if alert.acknowledged_at is None:
            alert.acknowledged_at, alert.acknowledged_by = now, principal.id
        alert.version += 1
        await self._note_all(alert, "alert_resolved", alert.resolution, principal)

    # ---- reading --------------------------------------------------------------------------------

    def _visible(self, principal: Principal) -> Select[Alert]:
        """An alert is visible to whoever can see one of its cases."""
        mine = (
            select(AlertCase.alert_id)
            .join(Dispute, Dispute.id == AlertCase.dispute_id)
            .where(visible_to(principal))
        )
        return select(Alert).where(Alert.id.in_(mine))

    async def get(self, alert_id: uuid.UUID, principal: Principal) -> Alert:
        alert = await self.session.scalar(self._visible(principal).where(Alert.id == alert_id))
        if alert is None:
            raise NotFound(Text("没有这条预警", "No such alert"))
        return alert

    async def cases(self, alert: Alert, principal: Principal) -> list[tuple[AlertCase, Dispute]]:
        rows = await self.session.execute(
            select(AlertCase, Dispute)
            .join(Dispute, Dispute.id == AlertCase.dispute_id)
            .where(AlertCase.alert_id == alert.id, visible_to(principal))
            .order_by(AlertCase.added_at, Dispute.created_at)
        )
        return [(a, d) for a, d in rows.all()]

    async def of_case(self, dispute_id: uuid.UUID, principal: Principal) -> list[Alert]:
        await self.disputes.get(dispute_id, principal)
        rows = await self.session.scalars(
            select(Alert)
            .join(AlertCase, AlertCase.alert_id == Alert.id)
            .where(AlertCase.dispute_id == dispute_id)
            .order_by(Alert.raised_at.desc())
        )
        return list(rows.all())

    async def search(
        self,
        principal: Principal,
        *,
        status: str | None,
        kind: str | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[Alert], str | None]:
        query = self._visible(principal)
        if status is not None:
            query = query.where(Alert.status == status)
        if kind is not None:
            query = query.where(Alert.kind == kind)
        return await keyset_page(
            self.session, query, Alert.raised_at, Alert.id, limit, cursor, newest_first=True
        )

    # ---- handling -------------------------------------------------------------------------------

    async def acknowledge(
        self, alert_id: uuid.UUID, note: str | None, principal: Principal, if_match: str | None
    ) -> Alert:
        alert = await self._locked(alert_id, principal)
        check_if_match(if_match, alert.version)
        if alert.status != "open":
            raise Conflict(
                Text("该预警已签收或已处置", "The alert is already acknowledged or resolved"),
                code="alert_not_open",
            )
        alert.status = "acknowledged"
        alert.acknowledged_at = self.clock.now()
        alert.acknowledged_by = principal.id
        alert.version += 1
        await self._note_all(alert, "alert_acknowledged", note or alert.title, principal)
        return alert

    async def resolve(
        self, alert_id: uuid.UUID, resolution: str, principal: Principal, if_match: str | None
    ) -> Alert:
        alert = await self._locked(alert_id, principal)
        check_if_match(if_match, alert.version)
        if alert.status == "resolved":
            raise Conflict(Text("该预警已处置", "The alert is already resolved"), code="alert_resolved")
        now = self.clock.now()
        alert.status = "resolved"
        alert.open_key = None  # a later wave raises a new alert
        alert.resolved_at = now
        alert.resolved_by = principal.id
        alert.resolution = resolution
        if alert.acknowledged_at is None:
            alert.acknowledged_at, alert.acknowledged_by = now, principal.id
        alert.version += 1
        await self._note_all(alert, "alert_resolved", resolution, principal)
        return alert

    async def _locked(self, alert_id: uuid.UUID, principal: Principal) -> Alert:
        """The alert a supervisor changes, locked and read afresh with its cases, so If-Match is
        compared with the version the change will write over: of two supervisors at once, the
        second is told the first's change (412), as is one whose alert a new case joined meanwhile
        (intake bumps its version), instead of the write failing on a version read unlocked."""
        await self.get(alert_id, principal)  # whether the caller may see it at all
        # The cases first, then the alert: the order a risk flagged in a session's minutes takes
        # them (its case, then the case's alert), so the two never wait on each other in a circle.
        # Intake locks the alert it joins but no earlier case. By id, so that two changes to alerts
        # sharing cases lock them alike.
        await self.session.execute(
            select(Dispute.id)
            .where(Dispute.id.in_(select(AlertCase.dispute_id).where(AlertCase.alert_id == alert_id)))
            .order_by(Dispute.id)
            .with_for_update()
        )
        alert = await self.session.get(Alert, alert_id, with_for_update=True, populate_existing=True)
        assert alert is not None  # alerts are never deleted
        return alert

    async def _note_all(self, alert: Alert, action: str, reason: str, principal: Principal) -> None:
        await self.session.flush()
        ids = (
            await self.session.scalars(select(AlertCase.dispute_id).where(AlertCase.alert_id == alert.id))
        ).all()
        payload = {"alert_id": str(alert.id), "kind": alert.kind, "level": alert.level}
        for case_id in ids:
            dispute = await self.session.get(Dispute, case_id, with_for_update=True, populate_existing=True)
            if dispute is None:
                continue
            if action == "alert_resolved" and alert.kind == "risk":
                # Another reason the case still waits for a supervisor now shows (disputes.attention).
                await attention.clear(self.disputes, dispute, Attention.risk)
            await self.disputes.record_work(dispute, action, principal, reason, payload, action)
