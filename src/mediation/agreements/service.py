"""Sessions, agreements, signatures, performance and follow-ups. Services add and flush; the
request's unit of work commits."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from mediation.agreements import rules
from mediation.agreements.models import Agreement, FollowUp, MediationSession, Obligation, Signature
from mediation.agreements.schemas import (
    ENDING_OUTCOMES,
    MEDIATOR_SIGNING_METHODS,
    PARTY_SIGNING_METHODS,
    AgreementIn,
    FollowUpResultIn,
    PerformanceIn,
    SessionCancelIn,
    SessionIn,
    SessionOutcome,
    SessionRecordIn,
    SessionRescheduleIn,
    SignatureIn,
)
from mediation.bodies.models import Body
from mediation.clocks import counted
from mediation.core.db import keyset_rows
from mediation.core.errors import (
    Conflict,
    Forbidden,
    GuardFailed,
    InvalidTransition,
    NotFound,
    StaleVersion,
    ValidationFailed,
    field_errors,
)
from mediation.core.http import check_if_match, check_if_match_given, etag_for
from mediation.core.i18n import Listing, Text
from mediation.core.principal import BODY_ROLES, CENTER_ROLES, SYSTEM, Principal, Role
from mediation.core.refusal import summary
from mediation.disputes.enums import AgreementForm, Consent
from mediation.disputes.lifecycle import RECUSAL, STATUS_LABELS, Action, Status, allowed_actions
from mediation.disputes.models import Dispute
from mediation.disputes.schemas import FailPayload, RecordPerformancePayload
from mediation.disputes.service import DisputeService

# Sessions are held and agreements drafted and signed while the case is being mediated.
WORKING_STATES = frozenset({Status.mediating})
# Performance is followed up while the agreement binds the parties (人民调解法 Art. 31).
PERFORMANCE_STATES = frozenset(
    {
        Status.agreement_signed,
        Status.confirmation_pending,
        Status.confirmed,
        Status.performed,
        Status.referred_litigation,
    }
)
# An obligation falling due is chased only while the case is in the center's hands: once it is
# referred to a court (人民调解法 Art. 32: the court decides on the agreement's performance) or to
# arbitration, or closed (a court's enforcement, a judgment or an award has taken over) or
# archived, a missed date is no longer the center's to follow, and the scheduler leaves it alone.
# Performance may still be recorded on a case referred to court.
FOLLOWED_STATES = PERFORMANCE_STATES - {Status.referred_litigation}
AGREEMENT_GOVERNS = Dispute.status.in_([s.value for s in FOLLOWED_STATES])
FOLLOW_UP_WORKING_DAYS = 3
# The follow-ups whose date may still be counted again (clocks.counted); a visit's follows its clock.
OPEN_PERFORMANCE = (FollowUp.status == "open") & (FollowUp.kind == "performance")
OVERDUE_REASON = "第{i}项义务 ({what}) 应于 {due} 前履行, 已逾期未履行: 请回访督促履行 (人民调解法第三十一条)"
# How a performance follow-up ends when its agreement is set aside: closed (`done`), neither
# performed nor missed, with this outcome and reason in its result and on the case's timeline.
SET_ASIDE = "set_aside"
SET_ASIDE_REASON = (
    "人民法院未确认调解协议 (驳回申请或不予受理) 后重新调解, 第{n}版调解协议已被取代, 不再约束当事人: "
    "其履行督促随之终结, 不计逾期 (民事诉讼法第二百零六条、人民调解法第三十三条)"
)
# How a performance follow-up ends when the case leaves the center's hands with its agreement in
# force: referred to arbitration or to court, or closed (`hand_over`). The outcome names where the
# case went; the follow-up is closed (`done`) the way `set_aside` closes one, without counting as
# overdue: the body no longer follows the agreement's performance (人民调解法 Art. 31).
_FOLLOW_UP_ENDS = "调解组织对其履行的督促 (人民调解法第三十一条) 随之终结, 不计逾期"
HANDED_OVER: dict[str, tuple[str, str]] = {
    Status.referred_arbitration: (
        "referred_arbitration",
        "案件已导入仲裁, 第{n}版调解协议的履行争议由仲裁委员会依法处理 (劳动争议调解仲裁法第十五条): "
        + _FOLLOW_UP_ENDS,
    ),
    Status.referred_litigation: (
        "referred_litigation",
        "案件已导入诉讼, 第{n}版调解协议的履行争议由人民法院依法处理 (人民调解法第三十二条): "
        + _FOLLOW_UP_ENDS,
    ),
    Status.closed: (
        "case_closed",
        "案件已结案, 第{n}版调解协议此后的履行依生效的裁定、判决或裁决执行 (经司法确认的, "
        "一方拒绝履行时对方可申请人民法院强制执行, 民事诉讼法第二百零六条): " + _FOLLOW_UP_ENDS,
    ),
}


def _not_now(dispute: Dispute, principal: Principal, what: Text) -> InvalidTransition:
    return InvalidTransition(
        Text("案件处于「{s}」, 不能{w}", "The case is {se}; cannot {we} now").format(
            s=STATUS_LABELS[Status(dispute.status)].zh, se=dispute.status, w=what.zh, we=what.en
        ),
        status_now=dispute.status,
        allowed_actions=allowed_actions(dispute.status, principal.role),
    )


class AgreementService:
    def __init__(self, disputes: DisputeService) -> None:
        self.disputes = disputes
        self.session = disputes.session
        self.clock = disputes.clock

    async def _case(self, dispute_id: uuid.UUID, principal: Principal, *, write: bool) -> Dispute:
        dispute = await self.disputes.get(dispute_id, principal, for_update=write)
        if write and principal.role not in BODY_ROLES:
            raise Forbidden(
                Text(
                    "只有承办案件的调解组织可以办理", "Only the mediation body handling the case may do this"
                ),
                allowed_roles=sorted(r.value for r in BODY_ROLES),
            )
        return dispute

    def may_work_on(self, dispute: Dispute, principal: Principal) -> bool:
        """Whether `principal` may now hold sessions on the case and draft and sign its agreement
        (the same conditions `draft`, `sign` and `schedule` enforce)."""
        return principal.role in BODY_ROLES and dispute.status in WORKING_STATES

    # ---- sessions --------------------------------------------------------------------------------

    async def sessions(self, dispute_id: uuid.UUID, principal: Principal) -> list[MediationSession]:
        await self._case(dispute_id, principal, write=False)
        rows = await self.session.scalars(
            select(MediationSession)
            .where(MediationSession.dispute_id == dispute_id)
            .order_by(MediationSession.scheduled_at, MediationSession.id)
        )
        return list(rows.all())

    async def sitting(
        self, dispute_id: uuid.UUID, session_id: uuid.UUID, principal: Principal
    ) -> MediationSession:
        """One of the case's sittings, read with the case's own rights."""
        await self._case(dispute_id, principal, write=False)
        row = await self.session.get(MediationSession, session_id)
        if row is None or row.dispute_id != dispute_id:
            raise NotFound(Text("本案没有这次调解", "No such session in this case"))
        return row

    async def _refuse_before_mediation(self, dispute: Dispute, field: str, at: datetime) -> None:
        """A sitting is the proof of mediation the court reads in the dossier (民诉法解释 Art. 354):
        none falls before mediation at the body holding the case began, counted in the center's
        days. That is the later of the day mediation began (`mediation_started_on`: the first
        sign-for, or the day a case came back to mediation after the court did not confirm its
        agreement, 民事诉讼法 Art. 206) and the day this body signed for the case (a body that took
        it over from another held no sitting before it had it). From that day on, a day before
        today stays open: a sitting held on paper is recorded afterwards, scheduled and then
        recorded with the time it was held."""
        began = dispute.mediation_started_on or dispute.applied_on
        taken = await self.disputes.triage.open_assignment(dispute.id)
        if taken is not None and taken.body_id == dispute.body_id and taken.signed_for_at is not None:
            began = max(began, taken.signed_for_at.astimezone(self.clock.zone).date())
        if at.astimezone(self.clock.zone).date() < began:
            raise ValidationFailed.of_field(
                field,
                "before_mediation",
                Text(
                    "调解时间不能早于本组织开始调解之日 ({d})",
                    "A session cannot be before mediation at the body began ({d})",
                ).format(d=began.isoformat()),
            )

    async def schedule(
        self, dispute_id: uuid.UUID, data: SessionIn, principal: Principal, if_match: str | None = None
    ) -> MediationSession:
        """A sitting to be held, or held already and to be recorded (`record`). `if_match`: the
        case's ETag, when the caller names the version it scheduled against (not required: see
        `check_if_match_given`)."""
        dispute = await self._case(dispute_id, principal, write=True)
        check_if_match_given(if_match, dispute.version)
        if dispute.status not in WORKING_STATES:
            raise _not_now(dispute, principal, Text("安排调解", "schedule a session"))
        assert dispute.body_id is not None
        await self._refuse_before_mediation(dispute, "scheduled_at", data.scheduled_at)
        now = self.clock.now()
        row = MediationSession(
            id=uuid.uuid4(),
            dispute_id=dispute.id,
            body_id=dispute.body_id,
            scheduled_at=data.scheduled_at,
            place=data.place,
            online=data.online,
            status="scheduled",
            attendees=[],
            mediator_name=dispute.mediator_name,
            created_by=principal.id,
            created_at=now,
            updated_at=now,
            version=1,
        )
        self.session.add(row)
        await self.disputes.record_work(
            dispute,
            "schedule_session",
            principal,
            None,
            # The row's instant (held in UTC, core.db), as the session's answers and reads give it.
            {"session_id": str(row.id), "scheduled_at": row.scheduled_at.isoformat(), "online": data.online},
            "session_scheduled",
        )
        return row

    async def _sitting(
        self, dispute: Dispute, session_id: uuid.UUID, if_match: str | None
    ) -> MediationSession:
        """The case's sitting, still to be held, as the caller last read it."""
        row = await self.session.get(MediationSession, session_id)
        if row is None or row.dispute_id != dispute.id:
            raise NotFound(Text("本案没有这次调解", "No such session in this case"))
        check_if_match(if_match, row.version)
        if row.status == "cancelled":
            raise Conflict(
                Text("这次调解已取消", "This session was cancelled")
                if row.cancel_reason
                else Text(
                    "这次调解已取消: 案件已不在本组织调解中",
                    "This session was cancelled: the case is no longer in mediation here",
                ),
                code="session_cancelled",
            )
        if row.status != "scheduled":
            raise Conflict(
                Text("这次调解已经记录过", "This session is already recorded"), code="session_recorded"
            )
        return row

    async def cancel(
        self,
        dispute_id: uuid.UUID,
        session_id: uuid.UUID,
        data: SessionCancelIn,
        principal: Principal,
        if_match: str | None,
    ) -> MediationSession:
        """Call off a sitting still to be held, with the reason: the parties were summoned to it,
        and the body's list of sittings must not keep it (to hold it another day: `reschedule`)."""
        dispute = await self._case(dispute_id, principal, write=True)
        row = await self._sitting(dispute, session_id, if_match)
        if dispute.status not in WORKING_STATES:
            raise _not_now(dispute, principal, Text("取消调解", "cancel a session"))
        now = self.clock.now()
        row.status, row.cancelled_at, row.cancel_reason = "cancelled", now, data.reason
        row.updated_at = now
        row.version += 1
        await self.disputes.record_work(
            dispute,
            "cancel_session",
            principal,
            data.reason,
            {"session_id": str(row.id), "scheduled_at": row.scheduled_at.isoformat()},
            "session_cancelled",
        )
        return row

    async def reschedule(
        self,
        dispute_id: uuid.UUID,
        session_id: uuid.UUID,
        data: SessionRescheduleIn,
        principal: Principal,
        if_match: str | None,
    ) -> MediationSession:
        """Move (改期) a sitting still to be held to a new time, and perhaps another place, with the
        reason. The sitting keeps its id, so whoever follows it follows the move; its earlier time
        and place stay in its `reschedules`, and the body's list does not fill with sittings called
        off only to be held another day."""
        dispute = await self._case(dispute_id, principal, write=True)
        row = await self._sitting(dispute, session_id, if_match)
        if dispute.status not in WORKING_STATES:
            raise _not_now(dispute, principal, Text("调解改期", "reschedule a session"))
        try:
            plan = data.moved(row.place, row.online)
        except ValidationError as exc:  # an in-person sitting with no place, as scheduling refuses it
            errors = field_errors([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])
            names = ", ".join(e["field"] for e in errors)
            raise ValidationFailed(
                Text(f"以下字段有误: {names}", f"Invalid fields: {names}"), errors=errors
            ) from exc
        await self._refuse_before_mediation(dispute, "scheduled_at", plan.scheduled_at)
        previous = row.scheduled_at
        # A sitting scheduled with a blank place before blank was read as none has none.
        before = {"place": row.place or None, "online": row.online}
        after = {"place": plan.place, "online": plan.online}
        if (previous, before) == (plan.scheduled_at, after):
            raise ValidationFailed.of_field(
                "scheduled_at",
                "session_unchanged",
                Text("新的时间和地点与原定相同, 无需改期", "The new time and place are those already set"),
            )
        now = self.clock.now()
        row.reschedules = [
            *row.reschedules,
            {
                "from": {**before, "scheduled_at": previous.astimezone(UTC).isoformat()},
                "to": {**after, "scheduled_at": plan.scheduled_at.astimezone(UTC).isoformat()},
                "reason": data.reason,
                "at": now.isoformat(),
                "by": principal.id,
                "by_role": principal.role.value,
            },
        ]
        row.scheduled_at, row.place, row.online = plan.scheduled_at, plan.place, plan.online
        row.updated_at = now
        row.version += 1
        # The place is free text and may be a party's home: it stays on the sitting, read with the
        # case's own rights; neither it nor the reason goes into the event.
        await self.disputes.record_work(
            dispute,
            "reschedule_session",
            principal,
            data.reason,
            {
                "session_id": str(row.id),
                "scheduled_at": row.scheduled_at.isoformat(),
                "previous_scheduled_at": previous.isoformat(),
                "online": plan.online,
            },
            "session_rescheduled",
        )
        return row

    async def record(
        self,
        dispute_id: uuid.UUID,
        session_id: uuid.UUID,
        data: SessionRecordIn,
        principal: Principal,
        if_match: str | None,
    ) -> tuple[MediationSession, Dispute]:
        """The minutes (调解笔录) and outcome of a session. A party's refusal (人民调解法 Art. 17), a
        demand to stop (Art. 23) or positions too far apart end mediation with that reason."""
        dispute = await self._case(dispute_id, principal, write=True)
        row = await self._sitting(dispute, session_id, if_match)
        if dispute.status not in WORKING_STATES:
            raise _not_now(dispute, principal, Text("记录调解", "record a session"))
        party_ids = {p.id for p in dispute.parties}
        strangers = [a for a in data.attendees if a.party_id is not None and a.party_id not in party_ids]
        if strangers or (data.party_id is not None and data.party_id not in party_ids):
            raise ValidationFailed.of_field(
                "party_id", "unknown_party", Text("该案没有这个当事人", "No such party in this case")
            )
        if data.held_at > self.clock.now() + timedelta(minutes=5):
            raise ValidationFailed.of_field(
                "held_at", "in_future", Text("调解时间不能晚于现在", "held_at cannot be in the future")
            )
        await self._refuse_before_mediation(dispute, "held_at", data.held_at)
        row.status = "held"
        row.held_at = data.held_at
        row.attendees = [a.model_dump(mode="json") for a in data.attendees]
        row.minutes = data.minutes
        row.outcome = data.outcome
        row.party_id = data.party_id
        row.updated_at = self.clock.now()
        row.version += 1
        if data.outcome == SessionOutcome.party_refused:
            party = next(p for p in dispute.parties if p.id == data.party_id)
            party.consent = Consent.refused
        await self.disputes.record_work(
            dispute,
            "record_session",
            principal,
            None,
            {
                "session_id": str(row.id),
                "outcome": data.outcome.value,
                "party_id": str(data.party_id) if data.party_id else None,
            },
            "session_recorded",
        )
        # Words of violence, self-harm or gathering in the minutes flag the case at once (Art. 25).
        from mediation.alerts.service import AlertService  # it builds on the dispute service

        alerts = AlertService(self.disputes)
        hits = alerts.risk_hits(data.minutes)
        if hits:
            await alerts.flag_risk(dispute, hits, "session")
        reason = ENDING_OUTCOMES.get(data.outcome)
        if reason is not None:
            note = {
                SessionOutcome.party_refused: "当事人明确拒绝调解 (人民调解法第十七条)",
                SessionOutcome.termination_demanded: "当事人要求终止调解 (人民调解法第二十三条)",
                SessionOutcome.no_agreement: "分歧较大, 未能达成协议",
            }[data.outcome]
            payload = FailPayload.model_validate({"reason_code": reason, "note": note})
            dispute = await self.disputes.apply(
                dispute.id, Action.fail, payload, principal, etag_for(dispute.version)
            )
        return row, dispute

    # ---- agreements ------------------------------------------------------------------------------

    def _query(self) -> Any:
        return select(Agreement).options(
            selectinload(Agreement.obligations), selectinload(Agreement.signatures)
        )

    async def versions(self, dispute_id: uuid.UUID, principal: Principal) -> tuple[Dispute, list[Agreement]]:
        dispute = await self._case(dispute_id, principal, write=False)
        rows = await self.session.scalars(
            self._query().where(Agreement.dispute_id == dispute_id).order_by(Agreement.number)
        )
        return dispute, list(rows.all())

    async def get(
        self, dispute_id: uuid.UUID, agreement_id: uuid.UUID, principal: Principal, *, write: bool = False
    ) -> tuple[Dispute, Agreement]:
        dispute = await self._case(dispute_id, principal, write=write)
        query = self._query().where(Agreement.id == agreement_id, Agreement.dispute_id == dispute_id)
        agreement = await self.session.scalar(query.with_for_update() if write else query)
        if agreement is None:
            raise NotFound(Text("本案没有这份协议", "No such agreement in this case"))
        return dispute, agreement

    async def draft(
        self,
        dispute_id: uuid.UUID,
        data: AgreementIn,
        principal: Principal,
        *,
        supersedes: int | None = None,
        if_match: str | None = None,
    ) -> tuple[Dispute, Agreement]:
        """A new version. The draft before it, never in effect, is superseded and keeps its
        signatures on record; a version in effect is not (an oral one being written down stays in
        force until the written version takes effect: `sign`). `supersedes`: the number of the
        newest version the caller saw (0: none); another drafted since is refused as stale. None:
        not checked. `if_match`: the case's ETag, when the caller names the version it drafted
        against (not required: see `check_if_match_given`). On the case's timeline, with its event
        (`agreement_drafted`): the case's version moves."""
        dispute = await self._case(dispute_id, principal, write=True)
        check_if_match_given(if_match, dispute.version)
        if dispute.status not in WORKING_STATES:
            raise _not_now(dispute, principal, Text("起草调解协议", "draft an agreement"))
        self._check_obligations(dispute, data)
        previous = await self.session.scalar(
            select(Agreement)
            .where(Agreement.dispute_id == dispute.id)
            .order_by(Agreement.number.desc())
            .limit(1)
            .with_for_update()
        )
        newest = previous.number if previous else 0
        if supersedes is not None and supersedes != newest:
            raise StaleVersion(
                Text(
                    "调解协议已有新的版本 (第{n}版), 本次起草未保存; 请核对后重新起草",
                    "The agreement has a newer version ({n}) than the one drafted over; nothing was saved",
                ).format(n=newest),
                newest_number=newest,
            )
        self._refuse_replacing(await self._in_force(dispute.id), data)
        now = self.clock.now()
        body = await self.session.get(Body, dispute.body_id)
        assert body is not None
        agreement = Agreement(
            id=uuid.uuid4(),
            dispute_id=dispute.id,
            number=(previous.number + 1) if previous else 1,
            status="draft",
            body_id=body.id,
            body_name=body.name,
            mediator_id=dispute.mediator_id,
            mediator_name=dispute.mediator_name,
            supersedes_id=previous.id if previous else None,
            created_by=principal.id,
            created_at=now,
            updated_at=now,
            version=1,
            content_hash="",
            **self._content(data),
        )
        agreement.obligations = self._obligations(dispute, agreement, data)
        agreement.signatures = []
        agreement.content_hash = rules.content_hash(agreement, dispute)
        set_aside = previous.number if previous is not None and previous.status == "draft" else None
        if previous is not None and previous.status == "draft":
            previous.status = "superseded"
            previous.updated_at = now
            previous.version += 1
        self.session.add(agreement)
        try:
            await self.session.flush()
        except IntegrityError as exc:  # two drafts raced for the same number
            raise Conflict(
                Text("另一份协议刚刚起草, 请刷新", "Another version was just drafted; reload"),
                code="concurrent_draft",
            ) from exc
        # The draft set aside by this one is part of this entry (`supersedes`), not one of its own.
        # A version in effect, or one set aside by `remediate`, is not superseded by a draft: an oral
        # agreement stays in force until the written version takes effect (人民调解法 Art. 30), and
        # that signature's entry names it.
        await self.disputes.record_work(
            dispute,
            "draft_agreement",
            principal,
            None,
            {**self._which(agreement), "form": agreement.form, "supersedes": set_aside},
            "agreement_drafted",
        )
        return dispute, agreement

    async def replace(
        self,
        dispute_id: uuid.UUID,
        agreement_id: uuid.UUID,
        data: AgreementIn,
        principal: Principal,
        if_match: str | None,
    ) -> tuple[Dispute, Agreement]:
        """A draft edited in place, before anyone signed it. `if_match`: the version's ETag. On the
        case's timeline, with its event (`agreement_revised`): the case's version moves."""
        dispute, agreement = await self.get(dispute_id, agreement_id, principal, write=True)
        if principal.role not in BODY_ROLES:
            raise Forbidden(
                Text("只有承办案件的调解组织可以修改协议", "Only the body handling the case edits it")
            )
        check_if_match(if_match, agreement.version)
        if agreement.status == "superseded":
            raise Conflict(
                Text(
                    "这一版本已被取代 (由新版本取代, 或调解结束时作废), 不能再修改",
                    "This version was superseded (by a newer one, or void when mediation ended) and cannot change",
                ),
                code="agreement_superseded",
            )
        if agreement.status != "draft" or agreement.signatures:
            raise Conflict(
                Text(
                    "协议已有签名, 不能再修改; 如需变更, 请起草新版本并重新签署",
                    "The agreement has signatures and cannot change; draft a new version and sign it again",
                ),
                code="agreement_signed",
                article=rules.ART_29,
            )
        if dispute.status not in WORKING_STATES:
            raise _not_now(dispute, principal, Text("修改调解协议", "edit the agreement"))
        self._refuse_replacing(await self._in_force(dispute.id), data)
        self._check_obligations(dispute, data)
        before = agreement.content_hash
        for field, value in self._content(data).items():
            setattr(agreement, field, value)
        agreement.obligations = self._obligations(dispute, agreement, data)
        agreement.mediator_id = dispute.mediator_id
        agreement.mediator_name = dispute.mediator_name
        agreement.content_hash = rules.content_hash(agreement, dispute)
        if agreement.content_hash == before:
            # The hash covers every word of the text, the parties' names and the mediator's: an edit
            # that changes none of it is no work on the case, and would only make every other
            # client's ETag of the case stale. The request's unit of work rolls back the rewrite.
            raise Conflict(
                Text(
                    "协议内容没有变化, 未作修改", "The agreement's content is unchanged; nothing was edited"
                ),
                code="agreement_unchanged",
            )
        agreement.updated_at = self.clock.now()
        agreement.version += 1
        await self.session.flush()
        await self.disputes.record_work(
            dispute,
            "revise_agreement",
            principal,
            None,
            {**self._which(agreement), "form": agreement.form},
            "agreement_revised",
        )
        return dispute, agreement

    @staticmethod
    def _which(agreement: Agreement) -> dict[str, Any]:
        """The version a timeline entry and its event speak of: ids and numbers only, as events go
        to other systems and the agreement's text and the parties' names stay with the case."""
        return {"agreement_id": str(agreement.id), "number": agreement.number}

    async def _in_force(self, dispute_id: uuid.UUID) -> Agreement | None:
        """The version of the case's agreement in effect, locked; None when none is."""
        return await self.session.scalar(
            select(Agreement)
            .where(Agreement.dispute_id == dispute_id, Agreement.status == "effective")
            .order_by(Agreement.number.desc())
            .limit(1)
            .with_for_update()
        )

    @staticmethod
    def _refuse_replacing(in_force: Agreement | None, data: AgreementIn) -> None:
        """人民调解法 Art. 29: the agreement took effect when the last of the parties, the mediator and
        the body signed or sealed it (an oral one when reached, Art. 30), and Art. 31 binds the
        parties to perform it from then on. A new draft would take that away from them. It is set
        aside only when the case is mediated again after a court refused to confirm it (民事诉讼法
        Art. 206: `remediate`, which supersedes it), and then the parties change it or reach a new
        one here. One exception: parties who agreed orally may still put it in writing (Art. 28
        leaves the form to them), as a court confirms only a written agreement. The oral agreement
        binds them meanwhile: the written version replaces it only once it takes effect itself,
        signed by all of them again, the mediator and the seal (`sign`)."""
        if in_force is None:
            return
        if in_force.form == AgreementForm.oral and data.form == AgreementForm.written:
            return
        raise Conflict(
            Text(
                "第{n}版调解协议已经生效, 对双方当事人具有法律约束力, 不能以新版本取代 "
                "(人民调解法第二十九条、第三十一条); 请记录「达成协议」",
                "Version {n} has taken effect and binds the parties (人民调解法 Art. 29, 31); no new "
                "version replaces it: record the agreement on the case",
            ).format(n=in_force.number),
            code="agreement_effective",
            article=rules.ART_29,
        )

    @staticmethod
    def _content(data: AgreementIn) -> dict[str, Any]:
        return {
            "form": data.form.value,
            "facts": data.facts,
            "disputed_matters": data.disputed_matters,
            "responsibility": data.responsibility,
            "terms": list(data.terms),
        }

    @staticmethod
    def _obligations(dispute: Dispute, agreement: Agreement, data: AgreementIn) -> list[Obligation]:
        return [
            Obligation(
                id=uuid.uuid4(),
                dispute_id=dispute.id,
                agreement_id=agreement.id,
                position=i,
                status="pending",
                **o.model_dump(),
            )
            for i, o in enumerate(data.obligations)
        ]

    def _check_obligations(self, dispute: Dispute, data: AgreementIn) -> None:
        floors = self._earliest_due(dispute)
        bound = {p.id for p in rules.principals(dispute)}
        everyone = {p.id for p in dispute.parties}
        for i, o in enumerate(data.obligations):
            # Field paths as request validation writes them (`obligations[0].due_on`), so a form
            # puts every error beside its own input.
            stranger = (
                "obligor_party_id"
                if o.obligor_party_id not in bound
                else "obligee_party_id"
                if o.obligee_party_id is not None and o.obligee_party_id not in everyone
                else None
            )
            if stranger is not None:
                raise ValidationFailed.of_field(
                    f"obligations[{i}].{stranger}",
                    "unknown_party",
                    Text(
                        "义务人或权利人不是本案当事人", "The obligor or obligee is not a party to this case"
                    ),
                )
            for floor, code, message in floors:
                if o.due_on < floor:
                    raise ValidationFailed.of_field(f"obligations[{i}].due_on", code, message)

    def _earliest_due(self, dispute: Dispute) -> list[tuple[date, str, Text]]:
        """The days before which no obligation of a draft can fall due, and why: the application,
        the center's acceptance, and the start of mediation, as no signature is dated before it
        (`sign`) and the agreement takes effect only on its last signature (人民调解法 Art. 29;
        an oral one on the mediator's record, Art. 30). A due day before today is not refused here:
        an agreement signed on paper may be recorded afterwards with the days it was signed, so it
        may have taken effect before today; the signatures show that, and `sign` holds every due
        day to the day the agreement takes effect."""
        floors = [
            (
                dispute.applied_on,
                "before_application",
                Text("履行期限不能早于申请日", "The due date cannot be before the application"),
            )
        ]
        if dispute.accepted_at is not None:
            accepted = dispute.accepted_at.astimezone(self.clock.zone).date()
            floors.append(
                (
                    accepted,
                    "before_acceptance",
                    Text(
                        "履行期限不能早于案件受理日 ({d})",
                        "The due date cannot be before the case was accepted ({d})",
                    ).format(d=accepted.isoformat()),
                )
            )
        if dispute.mediation_started_on is not None:
            started = dispute.mediation_started_on
            floors.append(
                (
                    started,
                    "before_mediation",
                    Text(
                        "履行期限不能早于调解开始之日 ({d}): 协议在调解中签署后才生效",
                        "The due date cannot be before mediation began ({d}): the agreement takes "
                        "effect only once signed in mediation",
                    ).format(d=started.isoformat()),
                )
            )
        return floors

    def _refuse_due_before(self, agreement: Agreement, effective_on: date) -> None:
        """人民调解法 Art. 29, 31: the parties perform the agreement from the day it takes effect (an
        oral one on the mediator's record, Art. 30): an obligation due before that day could only
        be late from the start. `effective_on`: the earliest day the version can take effect, the
        day of its latest signature so far, which the last signature can only move later. Checked at
        each signature, so that the first one dated after a due day is refused while the draft can
        still be changed (no signature on it yet, or none since the due day)."""
        late = [o for o in agreement.obligations if o.due_on < effective_on]
        if not late:
            return
        message = Text(
            "履行期限早于协议生效日 ({e}): 协议自各方签名、盖章或按指印, 调解员签名并加盖调解组织印章之日起生效, "
            "义务不能在此之前到期 (人民调解法第二十九条、第三十一条); 请起草新版本, 或按实际签署日期记录签署",
            "An obligation falls due before the agreement takes effect ({e}): it takes effect on its last "
            "signature or seal (人民调解法 Art. 29, 31); draft a new version, or record each signature with "
            "the day it was made",
        ).format(e=effective_on.isoformat())
        raise ValidationFailed(
            message,
            errors=[
                {
                    "field": f"obligations[{o.position}].due_on",
                    "location": "agreement",
                    "code": "before_effective",
                    "message": message.get(),
                }
                for o in late
            ],
        )

    async def sign(
        self,
        dispute_id: uuid.UUID,
        agreement_id: uuid.UUID,
        data: SignatureIn,
        principal: Principal,
        if_match: str | None,
    ) -> tuple[Dispute, Agreement]:
        """One signature, fingerprint or seal. Refused while Art. 29's contents are incomplete; the
        last one makes the version effective (Art. 29), or for an oral agreement the mediator's record (Art. 30).
        `if_match`: the ETag of the version the signer was shown. Art. 29: a party is bound by the
        text it signed, so a signature is recorded only against the text as the signer saw it; a
        draft edited since (or signed since: the signer may reread it) is refused as stale (412).
        On the case's timeline, with its event (`agreement_signature_recorded`), which say whether
        this signature made the version effective: the case's version moves."""
        dispute, agreement = await self.get(dispute_id, agreement_id, principal, write=True)
        if principal.role not in BODY_ROLES:
            raise Forbidden(
                Text(
                    "只有承办案件的调解组织可以记录签署", "Only the body handling the case records signatures"
                )
            )
        check_if_match(if_match, agreement.version)
        if agreement.status != "draft":
            raise Conflict(
                Text(
                    "这一版本已生效或已被取代, 不能再签署", "This version is already effective or superseded"
                ),
                code="agreement_effective" if agreement.status == "effective" else "agreement_superseded",
            )
        if dispute.status not in WORKING_STATES:
            raise _not_now(dispute, principal, Text("签署调解协议", "sign the agreement"))
        if agreement.mediator_id != dispute.mediator_id:
            # Art. 29: the case's mediator signs. This version names the one the case has since
            # replaced (a withdrawal, 特邀调解规定 Art. 16, or the body's choice): it cannot take
            # effect under that name, nor the new mediator sign a text drafted under another's.
            raise Conflict(
                Text(
                    "调解员已更换, 请重新起草协议 (本版本署名调解员为「{old}」, 现调解员为「{new}」)",
                    "The mediator has changed; draft a new version (this one names {old}, the case's "
                    "mediator is now {new})",
                ).format(old=agreement.mediator_name or "-", new=dispute.mediator_name or "-"),
                code="mediator_changed",
                article=rules.ART_29,
            )
        if data.signer == "mediator":
            conflicts = await self.disputes.mediator_conflicts(dispute)
            if conflicts:
                # 特邀调解规定 Art. 16: a mediator who declared a conflict steps aside; the agreement
                # would otherwise take effect on the signature of one who must not mediate it.
                raise Conflict(
                    Text(
                        "调解员「{n}」已申报与本案当事人存在利害关系 ({r}), 应当回避, 不能签署协议",
                        "Mediator {n} declared a conflict with a party of this case ({r}), must step "
                        "aside and cannot sign the agreement",
                    ).format(n=dispute.mediator_name or "-", r=Listing(conflicts)),
                    code="mediator_conflict",
                    article=RECUSAL,
                )
        missing = rules.missing_elements(agreement, dispute)
        if missing:
            raise GuardFailed(summary(missing), reasons=[r.as_dict() for r in missing])
        required = {s.key: s for s in rules.required_signers(agreement, dispute)}
        key = str(data.party_id) if data.signer == "party" else data.signer
        if key not in required:
            raise ValidationFailed.of_field(
                "party_id" if data.signer == "party" else "signer",
                "not_a_signatory",
                Text("该签署人不是这份协议的签署人", "Not a signatory of this agreement"),
            )
        if data.signer == "party":
            self._check_party_method(dispute, data)
        elif data.signer == "mediator":
            self._check_mediator_method(agreement, data)
        if any(s.signer_key == key for s in agreement.signatures):
            raise Conflict(Text("该签署人已签署", "This signatory has already signed"), code="already_signed")
        if data.document_hash is not None and data.document_hash != agreement.content_hash:
            raise ValidationFailed.of_field(
                "document_hash",
                "document_hash_mismatch",
                Text(
                    "电子签名所签文本与协议当前内容不一致",
                    "The electronically signed text differs from the agreement",
                ),
            )
        now = self.clock.now()
        signed_at = data.signed_at or now
        started = dispute.mediation_started_on or dispute.applied_on
        if signed_at > now + timedelta(minutes=5) or signed_at.astimezone(self.clock.zone).date() < started:
            raise ValidationFailed.of_field(
                "signed_at",
                "implausible",
                Text(
                    "签署时间不能晚于现在或早于调解开始",
                    "signed_at cannot be in the future or before mediation began",
                ),
            )
        await self._refuse_before_oral(agreement, signed_at)
        latest = max([signed_at, *(s.signed_at for s in agreement.signatures)])
        self._refuse_due_before(agreement, latest.astimezone(self.clock.zone).date())
        agreement.signatures.append(
            Signature(
                id=uuid.uuid4(),
                agreement_id=agreement.id,
                signer=data.signer,
                signer_key=key,
                party_id=data.party_id,
                name=required[key].name,
                method=data.method,
                signed_at=signed_at,
                document_hash=data.document_hash,
                recorded_by=principal.id,
                recorded_at=now,
            )
        )
        work: dict[str, Any] = {
            **self._which(agreement),
            "signer": data.signer,
            "party_id": str(data.party_id) if data.party_id else None,
            "method": data.method,
            "signed_at": signed_at.astimezone(UTC).isoformat(),
            "effective": False,
        }
        if not rules.awaiting(agreement, dispute):
            last = max(s.signed_at for s in agreement.signatures)
            # The oral agreement this version puts in writing bound the parties until now (人民调解法
            # Art. 30); the written one replaces it as it takes effect (Art. 29), not before: a
            # written draft never signed by all leaves the oral agreement in force.
            replaced = await self._in_force(dispute.id)
            if replaced is not None and replaced.id != agreement.id:
                replaced.status = "superseded"
                replaced.updated_at = now
                replaced.version += 1
                work["supersedes"] = replaced.number
            agreement.status = "effective"
            agreement.effective_at = last
            agreement.effective_on = last.astimezone(self.clock.zone).date()
            # The signature that completes Art. 29's list is the moment the agreement binds the
            # parties (Art. 31) and the 30 days to apply for confirmation start (民诉法 Art. 205):
            # said on this entry and its event, one of each for the one signature recorded.
            work.update(
                effective=True,
                effective_at=last.isoformat(),
                effective_on=agreement.effective_on.isoformat(),
            )
        agreement.updated_at = now
        agreement.version += 1
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise Conflict(
                Text("该签署人已签署", "This signatory has already signed"), code="already_signed"
            ) from exc
        await self.disputes.record_work(
            dispute, "sign_agreement", principal, None, work, "agreement_signature_recorded"
        )
        return dispute, agreement

    async def _refuse_before_oral(self, agreement: Agreement, signed_at: datetime) -> None:
        """A written version of the oral agreement in effect replaces it as it takes effect, on its
        last signature (人民调解法 Art. 29), and the oral agreement bound the parties from when it was
        reached and recorded (Art. 30): the writing follows the agreement it puts down. A signature
        dated before that moment would let the written version take effect before the agreement it
        replaces, so it is refused (each one, as the last signature is the latest of them)."""
        if agreement.form != AgreementForm.written:
            return
        oral = await self._in_force(agreement.dispute_id)
        if oral is None or oral.form != AgreementForm.oral or oral.effective_at is None:
            return
        if signed_at >= oral.effective_at:
            return
        when = oral.effective_at.astimezone(self.clock.zone).strftime("%Y-%m-%d %H:%M")
        raise ValidationFailed.of_field(
            "signed_at",
            "before_oral_agreement",
            Text(
                "签署时间不能早于第{n}版口头调解协议生效之时 ({t}): 书面协议是对已生效口头协议的书面记载, "
                "自其生效时取代口头协议 (人民调解法第二十九条、第三十条)",
                "signed_at cannot be before oral agreement version {n} took effect ({t}): the written "
                "version puts it in writing and replaces it only once it takes effect itself "
                "(人民调解法 Art. 29, 30)",
            ).format(n=oral.number, t=when),
        )

    @staticmethod
    def _check_party_method(dispute: Dispute, data: SignatureIn) -> None:
        """人民调解法 Art. 29: each party signs (签名), seals (盖章) or puts a fingerprint (按指印) on the
        agreement; a fingerprint is a natural person's mark, which a legal person or other
        organisation cannot make (PARTY_SIGNING_METHODS)."""
        party = next(p for p in dispute.parties if p.id == data.party_id)
        if data.method in PARTY_SIGNING_METHODS[party.kind]:
            return
        message = Text(
            "当事人「{n}」是法人或非法人组织, 应加盖印章、由其代表签名或电子签名, 不能按指印",
            "Party {n} is an organisation: it seals, or its representative signs or signs "
            "electronically; it cannot fingerprint",
        )
        raise ValidationFailed.of_field("method", "method_not_for_party_kind", message.format(n=party.name))

    @staticmethod
    def _check_mediator_method(agreement: Agreement, data: SignatureIn) -> None:
        """人民调解法 Art. 29: a written agreement bears the mediator's signature; only an oral
        agreement is recorded by the mediator instead (Art. 28, 30; MEDIATOR_SIGNING_METHODS)."""
        if data.method in MEDIATOR_SIGNING_METHODS[agreement.form]:
            return
        message = Text(
            "书面调解协议须由调解员签名 (本人签名或电子签名); 「调解员记录」仅用于口头协议",
            "A written agreement is signed by the mediator (in person or electronically); "
            "recording is for oral agreements only",
        )
        raise ValidationFailed.of_field("method", "method_not_for_form", message)

    # ---- performance and follow-ups ---------------------------------------------------------------

    async def perform(
        self,
        dispute_id: uuid.UUID,
        obligation_id: uuid.UUID,
        data: PerformanceIn,
        principal: Principal,
        if_match: str | None,
    ) -> tuple[Obligation, Dispute]:
        """An obligation recorded as performed: on the case's timeline (its version moves on), and
        the case `performed` once the last one is (人民调解法 Art. 31). Held to the case's ETag, as
        every change of the case is."""
        dispute = await self._case(dispute_id, principal, write=True)
        check_if_match(if_match, dispute.version)
        obligation = await self.session.get(Obligation, obligation_id, with_for_update=True)
        current = (dispute.agreement or {}).get("id")
        if obligation is None or obligation.dispute_id != dispute.id:
            raise NotFound(Text("本案没有这项义务", "No such obligation in this case"))
        if str(obligation.agreement_id) != current or dispute.status not in PERFORMANCE_STATES:
            raise _not_now(
                dispute, principal, Text("登记这项义务的履行", "record performance of this obligation")
            )
        if obligation.status == "performed":
            raise Conflict(
                Text("这项义务已登记履行", "This obligation is already recorded as performed"),
                code="already_performed",
            )
        today = self.clock.today()
        effective = dispute.agreement_effective_on
        if data.performed_on > today or (effective is not None and data.performed_on < effective):
            raise ValidationFailed.of_field(
                "performed_on",
                "implausible",
                Text(
                    "履行日期不能晚于今天或早于协议生效日",
                    "performed_on must lie between the agreement and today",
                ),
            )
        obligation.status = "performed"
        obligation.performed_on = data.performed_on
        obligation.performance_note = data.note
        obligation.performance_recorded_by = principal.id
        now = self.clock.now()
        open_tasks = await self.session.scalars(
            select(FollowUp).where(FollowUp.obligation_id == obligation.id, FollowUp.status == "open")
        )
        for task in open_tasks.all():
            task.status = "done"
            task.done_at = now
            task.done_by = principal.id
            task.result = {"outcome": "performed", "performed_on": data.performed_on.isoformat()}
        await self.disputes.record_work(
            dispute,
            "record_obligation_performance",
            principal,
            data.note,
            {"obligation_id": str(obligation.id), "performed_on": data.performed_on.isoformat()},
            "obligation_performed",
        )
        left = await self.session.scalar(
            select(func.count())
            .select_from(Obligation)
            .where(Obligation.agreement_id == obligation.agreement_id, Obligation.status != "performed")
        )
        if not left and dispute.status == Status.agreement_signed:
            last = await self.session.scalar(
                select(func.max(Obligation.performed_on)).where(
                    Obligation.agreement_id == obligation.agreement_id
                )
            )
            payload = RecordPerformancePayload(performed_on=last or data.performed_on, note="全部义务已履行")
            dispute = await self.disputes.apply(
                dispute.id, Action.record_performance, payload, principal, etag_for(dispute.version)
            )
        return obligation, dispute

    async def set_aside(self, dispute: Dispute, principal: Principal) -> list[FollowUp]:
        """Re-mediation after a court refused to confirm the agreement (`remediate`): the parties
        change it or reach a new one (民事诉讼法 Art. 206; 人民调解法 Art. 33), so the agreement in
        force is superseded and binds no one any more. Following up its performance (Art. 31) ends
        with it, in the same transaction: each open follow-up of its obligations is closed as set
        aside (`_end_follow_ups`), and the clock raises none for those obligations again
        (`raise_overdue`). The obligations stay on record as they stood; a new agreement gets
        follow-ups of its own. The case is locked."""
        superseded = await self._supersede(dispute, "effective")
        if not superseded:
            return []
        return await self._end_follow_ups(
            dispute, principal, SET_ASIDE, SET_ASIDE_REASON, Obligation.agreement_id.in_(superseded)
        )

    async def close_drafts(self, dispute: Dispute) -> list[uuid.UUID]:
        """`agree` has just recorded the agreement in effect and ended mediation. A draft left then
        (the written version of an oral agreement in effect, 人民调解法 Art. 28, 30) can never take
        effect: drafts are signed only while the case is mediated, and the center's rule puts an
        agreement in writing for judicial confirmation while mediating (民诉法解释 Art. 354;
        `lifecycle._written_agreement`). It is superseded in the same transaction, as a newer draft
        supersedes an older one (`draft`), with its signatures kept on record. The case is locked."""
        return await self._supersede(dispute, "draft")

    async def _supersede(self, dispute: Dispute, status: str) -> list[uuid.UUID]:
        """Every version of the case in `status` superseded now (its version moves on, so a form
        or an ETag read before refuses to change it); their ids. The rows are locked."""
        now = self.clock.now()
        rows = await self.session.scalars(
            select(Agreement)
            .where(Agreement.dispute_id == dispute.id, Agreement.status == status)
            .with_for_update()
        )
        superseded: list[uuid.UUID] = []
        for agreement in rows.all():
            agreement.status = "superseded"
            agreement.updated_at = now
            agreement.version += 1
            superseded.append(agreement.id)
        if superseded:
            await self.session.flush()
        return superseded

    async def hand_over(self, dispute: Dispute, principal: Principal) -> list[FollowUp]:
        """The case has just left the center's hands with its agreement's performance still followed
        up: referred to arbitration (劳动争议调解仲裁法 Art. 15) or to court (人民调解法 Art. 32), or
        closed. The body follows the performance no longer (Art. 31): each open performance
        follow-up is closed in the same transaction, naming where the case went (`HANDED_OVER`),
        and the clock chases the obligations no more (`FOLLOWED_STATES`). The follow-up visit
        (回访) is another kind of task, which archiving waits for (人民调解法 Art. 27): it stays
        open. The case is locked, in its new state."""
        ending = HANDED_OVER.get(dispute.status)
        if ending is None:
            return []
        outcome, reason = ending
        return await self._end_follow_ups(dispute, principal, outcome, reason)

    async def set_aside_left_open(self, limit: int) -> list[uuid.UUID]:
        """Cases with an open performance follow-up of an agreement superseded: left by `remediate`
        before it closed them (`set_aside`), as nothing else supersedes an agreement in force."""
        rows = await self.session.scalars(
            select(FollowUp.dispute_id)
            .join(Obligation, Obligation.id == FollowUp.obligation_id)
            .join(Agreement, Agreement.id == Obligation.agreement_id)
            .where(OPEN_PERFORMANCE, Agreement.status == "superseded")
            .distinct()
            .order_by(FollowUp.dispute_id)
            .limit(limit)
        )
        return list(rows.all())

    async def close_set_aside(self, dispute_id: uuid.UUID) -> bool:
        """The scheduler's repair of one case found by `set_aside_left_open`: its follow-ups of the
        agreements set aside are closed as `set_aside` closes them, by the system."""
        dispute = await self.disputes.get(dispute_id, SYSTEM, for_update=True)
        closed = await self._end_follow_ups(
            dispute, SYSTEM, SET_ASIDE, SET_ASIDE_REASON, Agreement.status == "superseded"
        )
        return bool(closed)

    async def _end_follow_ups(
        self, dispute: Dispute, principal: Principal, outcome: str, reason: str, *which: Any
    ) -> list[FollowUp]:
        """Close the case's open performance follow-ups (those of the agreements `which` selects,
        else all): neither performed nor missed, each `done` with `outcome`, the agreement and the
        reason (`reason` names it by its number: `{n}`) in its result, and one entry each on the
        case's timeline, after whatever the caller recorded, with its event. The case is locked:
        every change to a task takes the case first."""
        now = self.clock.now()
        open_tasks = await self.session.execute(
            select(FollowUp, Agreement.id, Agreement.number)
            .join(Obligation, Obligation.id == FollowUp.obligation_id)
            .join(Agreement, Agreement.id == Obligation.agreement_id)
            .where(FollowUp.dispute_id == dispute.id, OPEN_PERFORMANCE, *which)
            .order_by(FollowUp.raised_at, FollowUp.id)
            .execution_options(populate_existing=True)
        )
        closed: list[FollowUp] = []
        for task, agreement_id, number in open_tasks.all():
            why = reason.format(n=number)
            task.status = "done"
            task.done_at = now
            task.done_by = principal.id
            task.result = {"outcome": outcome, "agreement_id": str(agreement_id), "reason": why}
            await self.disputes.record_work(
                dispute,
                "complete_follow_up",
                principal,
                why,
                {"follow_up_id": str(task.id), "outcome": outcome},
                "follow_up_completed",
            )
            closed.append(task)
        return closed

    async def follow_ups(
        self,
        body_id: uuid.UUID,
        principal: Principal,
        status: str | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[tuple[FollowUp, str]], str | None]:
        own_body = principal.role in BODY_ROLES and principal.organisation_id == body_id
        if not own_body and principal.role not in CENTER_ROLES | {Role.system}:
            raise NotFound(Text("调解组织不存在", "No such body"))
        query = (
            select(FollowUp, Dispute.case_number)
            .join(Dispute, Dispute.id == FollowUp.dispute_id)
            .where(FollowUp.body_id == body_id)
        )
        if principal.role in CENTER_ROLES and principal.region:
            query = query.where(Dispute.region_code.startswith(principal.region))
        if status is not None:
            query = query.where(FollowUp.status == status)
        rows, next_cursor = await keyset_rows(
            self.session, query, FollowUp.raised_at, FollowUp.id, limit, cursor
        )
        return [(f, n) for f, n in rows], next_cursor

    async def complete(
        self, follow_up_id: uuid.UUID, data: FollowUpResultIn, principal: Principal, if_match: str | None
    ) -> tuple[FollowUp, Dispute]:
        """The result of following up an overdue obligation (人民调解法 Art. 31), on the case's
        timeline (its version moves on, and its state too when the obligation turns out performed):
        held to the case's ETag, as every change of the case is. Answers the case as it left it."""
        # A visit (回访) has its own rules (a satisfaction rating, a number of tries: `VisitService`);
        # this records the follow-up of an overdue obligation only.
        missing = NotFound(Text("没有这项履行督促任务", "No such performance follow-up task"))
        if principal.role not in BODY_ROLES:
            raise missing
        dispute_id = await self.session.scalar(
            select(FollowUp.dispute_id).where(
                FollowUp.id == follow_up_id,
                FollowUp.kind == "performance",
                FollowUp.body_id == principal.organisation_id,
            )
        )
        if dispute_id is None:
            raise missing
        # The case first, then the task: the order `perform` (which closes the obligation's tasks)
        # and every change to a case take them, so the two wait for each other and never deadlock.
        dispute = await self.disputes.get(dispute_id, principal, for_update=True)
        # The version the caller saw, before anything of the case is looked at or changed.
        check_if_match(if_match, dispute.version)
        task = await self.session.get(FollowUp, follow_up_id, with_for_update=True, populate_existing=True)
        assert task is not None  # tasks are never deleted
        if task.status != "open":
            raise Conflict(
                Text("这项履行督促已办结", "This follow-up is already closed"), code="follow_up_closed"
            )
        if data.contacted_on > self.clock.today():
            raise ValidationFailed.of_field(
                "contacted_on",
                "in_future",
                Text("回访日期不能晚于今天", "contacted_on cannot be in the future"),
            )
        effective = dispute.agreement_effective_on
        if effective is not None and data.contacted_on < effective:
            # 人民调解法 Art. 31: the body follows up the performance of the agreement in effect,
            # which begins on the day it took effect; no contact about it comes before.
            raise ValidationFailed.of_field(
                "contacted_on",
                "before_effective",
                Text(
                    "回访日期不能早于调解协议生效日 ({d})",
                    "contacted_on cannot be before the agreement took effect ({d})",
                ).format(d=effective.isoformat()),
            )
        task.status = "done"
        task.done_at = self.clock.now()
        task.done_by = principal.id
        task.result = data.model_dump(mode="json")
        await self.disputes.record_work(
            dispute,
            "complete_follow_up",
            principal,
            data.note,
            {"follow_up_id": str(task.id), "outcome": data.outcome},
            "follow_up_completed",
        )
        if data.outcome == "performed" and task.obligation_id is not None:
            # What the follow-up found is the record of performance (人民调解法 Art. 31): the
            # obligation is performed as of the day the body learnt it, as `perform` records it
            # (and the case too once it was the last), not left overdue for the statistics and
            # the labour guard to count.
            obligation = await self.session.get(Obligation, task.obligation_id)
            current = (dispute.agreement or {}).get("id")
            if (
                obligation is not None
                and obligation.status != "performed"
                and str(obligation.agreement_id) == current
                and dispute.status in PERFORMANCE_STATES
            ):
                _, dispute = await self.perform(
                    dispute.id,
                    obligation.id,
                    PerformanceIn(performed_on=data.contacted_on, note=data.note),
                    principal,
                    etag_for(dispute.version),  # the case as this follow-up just left it, locked
                )
        return task, dispute

    async def raise_overdue(self, obligation_id: uuid.UUID, principal: Principal) -> bool:
        """The clock's step for one obligation past its due date: mark it overdue and put a
        follow-up in the body's inbox (人民调解法 Art. 31). False when nothing was left to do."""
        # The case first, then the obligation: the order `perform` takes them in.
        dispute_id = await self.session.scalar(
            select(Obligation.dispute_id).where(Obligation.id == obligation_id)
        )
        if dispute_id is None:
            return False
        dispute = await self.disputes.get(dispute_id, principal, for_update=True)
        obligation = await self.session.get(
            Obligation, obligation_id, with_for_update=True, populate_existing=True
        )
        if obligation is None or obligation.status != "pending":
            return False
        today = self.clock.today()
        if not rules.past_its_day(obligation.due_on, today) or dispute.status not in FOLLOWED_STATES:
            return False
        if str(obligation.agreement_id) != (dispute.agreement or {}).get("id"):
            # Listed while its agreement bound the parties, and set aside since (`set_aside`): the
            # case may be following a new agreement by now, whose obligations are not this one.
            return False
        agreement = await self.session.get(Agreement, obligation.agreement_id)
        assert agreement is not None
        # 人民调解法 Art. 31: the body that holds the case follows up performance, which may not be
        # the one that drafted the agreement (a case handed on before the agreement was recorded):
        # only the body holding the case sees it and can work the task.
        body_id = dispute.body_id or agreement.body_id
        obligation.status = "overdue"
        obligation.overdue_since = today
        what = f"{obligation.amount:.2f} 元" if obligation.amount is not None else obligation.description[:40]
        task = FollowUp(
            id=uuid.uuid4(),
            dispute_id=dispute.id,
            body_id=body_id,
            kind="performance",
            obligation_id=obligation.id,
            reason=OVERDUE_REASON.format(
                i=obligation.position + 1, what=what, due=obligation.due_on.isoformat()
            ),
            status="open",
            raised_at=self.clock.now(),
        )
        task.count_due(today, FOLLOW_UP_WORKING_DAYS)
        self.session.add(task)
        await self.disputes.record_work(
            dispute,
            "obligation_overdue",
            principal,
            task.reason,
            {
                "obligation_id": str(obligation.id),
                "follow_up_id": str(task.id),
                "body_id": str(body_id),
                "due_on": obligation.due_on.isoformat(),
            },
            "obligation_overdue",
        )
        return True

    async def recount_follow_up(self, follow_up_id: uuid.UUID) -> bool:
        """An open performance follow-up counted before its year's holidays were loaded, counted
        again (clocks.counted: only ever later), on the case's timeline."""
        # The case first, then the task, as every change to a case takes them.
        dispute_id = await self.session.scalar(select(FollowUp.dispute_id).where(FollowUp.id == follow_up_id))
        if dispute_id is None:
            return False
        dispute = await self.disputes.get(dispute_id, SYSTEM, for_update=True)
        task = await self.session.get(FollowUp, follow_up_id, with_for_update=True, populate_existing=True)
        if task is None or task.status != "open":
            return False
        before = task.recount()
        if before is None:
            return False
        await self.disputes.record_work(
            dispute,
            "clock_recounted",
            SYSTEM,
            await counted.recount_reason("履行督促期限", before, task.due_on, self.session),
            {
                "clock": "performance_follow_up",
                "due_on": task.due_on.isoformat(),
                "previous_due_on": before.isoformat(),
                "provisional": task.provisional,
                "source": f"人民调解法 第三十一条: 逾期未履行, {FOLLOW_UP_WORKING_DAYS} 个工作日内督促",
                "follow_up_id": str(task.id),
            },
            "clock_recounted",
        )
        return True

    async def provisional_follow_ups(self, recent_years: list[int]) -> list[uuid.UUID]:
        """Open performance follow-ups whose date a count on today's calendar changes."""
        return await counted.due_for_recount(self.session, FollowUp, OPEN_PERFORMANCE, recent_years)

    async def overdue_obligations(self) -> list[uuid.UUID]:
        rows = await self.session.scalars(
            select(Obligation.id)
            .join(Agreement, Agreement.id == Obligation.agreement_id)
            .join(Dispute, Dispute.id == Obligation.dispute_id)
            .where(
                Obligation.status == "pending",
                Obligation.due_on < self.clock.today(),
                Agreement.status == "effective",
                AGREEMENT_GOVERNS,
            )
        )
        return list(rows.all())
