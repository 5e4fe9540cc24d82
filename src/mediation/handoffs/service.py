"""The court- and commission-facing side: list, read the dossier, accept, extend, decide.

Every decision that moves the case goes through `DisputeService.apply`, the same lifecycle the
action endpoints use; this service adds the target's own view (only what is addressed to it) and
the handoff's version for If-Match.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import selectinload

from mediation.agreements.models import Agreement, MediationSession
from mediation.audit.chain import AuditEntry, append
from mediation.bodies.models import Body
from mediation.clocks.counted import notice_of, recount_reason
from mediation.core.db import utcnow
from mediation.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    OutsideScope,
    StaleVersion,
    ValidationFailed,
)
from mediation.core.http import check_if_match, decode_cursor, encode_cursor, etag_for
from mediation.core.i18n import Text
from mediation.core.legal_time import period_end
from mediation.core.pii import redact_text, redact_value
from mediation.core.principal import BODY_ROLES, CENTER_ROLES, SYSTEM, Permission, Principal, Role
from mediation.disputes.lifecycle import TRANSITIONS, Action, Status
from mediation.disputes.models import Dispute, TimelineEntry
from mediation.disputes.schemas import (
    ConfirmPayload,
    NotAcceptPayload,
    RecordOutcomePayload,
    RejectPayload,
    WithdrawConfirmationPayload,
)
from mediation.disputes.scope import sees
from mediation.disputes.service import OVERDUE_WITHDRAWN, DisputeService
from mediation.documents.models import Document, Dossier
from mediation.handoffs.answers import ARBITRATION_HANDOFF_KINDS
from mediation.handoffs.ledger import (
    MATERIALS_LATE_ARTICLE,
    MATERIALS_LONGEST_DAYS,
    OPEN,
    WITHDRAWAL_REQUESTED,
    StepCount,
    materials_overdue,
    open_materials_request,
    overdue_step,
    summary,
    withdrawal_request,
)
from mediation.handoffs.materials import checklist, limitation_note, mediation_on_record
from mediation.handoffs.models import Handoff
from mediation.handoffs.schemas import (
    AcceptanceIn,
    DecisionIn,
    HandoffExtensionIn,
    MaterialsRequestIn,
    MaterialsSuppliedIn,
    OutcomeIn,
    WithdrawalIn,
)

TARGET_ROLES = frozenset({Role.court, Role.arbitration})
# Who may withdraw a confirmation request on the case (lifecycle: withdraw_confirmation).
WITHDRAWING_ROLES = frozenset(
    role for t in TRANSITIONS if t.action == Action.withdraw_confirmation for role in t.roles
)
NOT_FOUND = Text("没有这件移交", "No such handoff")
# The dossier's contents withheld from a court or commission the case has left (dossier_parts).
CASE_LEFT_TARGET = "case_left_target"


def visible_handoffs(principal: Principal) -> ColumnElement[bool]:
    """A court or commission sees what is addressed to it, for good; a body what came from its
    cases; a center's staff their region's."""
    org = principal.organisation_id
    if principal.role == Role.system:
        return true()
    if principal.role in TARGET_ROLES and org is not None:
        return Handoff.target_id == org
    if principal.role in BODY_ROLES and org is not None:
        return Dispute.body_id == org
    if principal.role in CENTER_ROLES and principal.region:
        return Dispute.region_code.startswith(principal.region)
    return false()


# A settled handoff's state, named in the refusal of a further answer.
SETTLED_NAMES = {
    "not_accepted": "不予受理",
    "confirmed": "已裁定确认有效",
    "rejected": "已裁定驳回申请",
    "withdrawn": "已撤回",
    "concluded": "已审结",
    "lapsed": "逾期未作出决定, 已另行起诉",
}


def recorded_answer(handoff: Handoff, principal: Principal) -> dict[str, Any]:
    """What the handoff holds as answered, for a refusal of another answer (problem extension
    members): a client whose earlier attempt's answer was lost sees whether its answer, or
    someone else's, was recorded. Free text masked for a caller without `pii:read`, as the
    handoff itself is."""
    decision = handoff.decision
    if decision is not None and not principal.can(Permission.pii_read):
        decision = redact_value(decision)
    return {
        "status_now": handoff.status,
        "accepted_on": handoff.accepted_on.isoformat() if handoff.accepted_on else None,
        "target_case_number": handoff.target_case_number,
        "decided_on": handoff.decided_on.isoformat() if handoff.decided_on else None,
        "decision": decision,
        "current_etag": etag_for(handoff.version),
    }


def recorded_extension(handoff: Handoff, principal: Principal) -> dict[str, Any]:
    """`recorded_answer`, with the extension recorded (its days and reason), for the refusal of
    another extension."""
    reason = handoff.extension_reason
    if reason and not principal.can(Permission.pii_read):
        reason = redact_text(reason)
    return {
        **recorded_answer(handoff, principal),
        "extended_days": handoff.extended_days,
        "extension_reason": reason,
    }


def withdrawal_asked(handoff: Handoff) -> dict[str, Any] | None:
    """The parties' withdrawal request waiting on the handoff for the target's ruling, if any."""
    return next((w for w in handoff.warnings if w.get("code") == WITHDRAWAL_REQUESTED), None)


def same_record(recorded: dict[str, Any] | None, payload: BaseModel) -> bool:
    """Whether the answer recorded (`Handoff.decision`, the payload of the action that settled
    it, as JSON) says what `payload` says, field by field: equal after the request's own
    normalisation (text trimmed, dates as days), a field left out equal to one recorded empty."""
    if recorded is None:
        return False
    return all(recorded.get(name) == value for name, value in payload.model_dump(mode="json").items())


# 最高人民法院关于人民法院特邀调解的规定 Art. 22: 调解过程中当事人为达成调解协议作出妥协而认可的事实,
# 不得在诉讼中作为对其不利的根据, 但是当事人均同意的除外. A mediation that failed and is referred to
# litigation or arbitration goes there without the sittings' minutes (and the sittings' other free
# text) nor the free-text reasons and notes of the case's timeline and outcome, which record what a
# party conceded to reach an agreement; the filing pack keeps the parties, the claims, the
# mediation's dates and how it ended (the termination's reason code). The exception, every party's
# consent to their use, has no record here (the consent a party gives is to being mediated, 人民调解法
# Art. 17, or to a clock's extension), so the record is always left out of a referral's dossier.
MEDIATION_RECORD_WITHHELD = "最高人民法院关于人民法院特邀调解的规定 第二十二条"
# The free text of a timeline entry's payload and of the case's outcome.
FREE_TEXT_KEYS = ("reason", "note", "notes", "override_reason", "visit_impossible_reason", "minutes")


def _termination_code(fail: dict[str, Any] | None) -> dict[str, Any] | None:
    return {"reason_code": fail.get("reason_code")} if fail else None


class HandoffService:
    def __init__(self, disputes: DisputeService) -> None:
        self.disputes = disputes
        self.session = disputes.session
        self.clock = disputes.clock
        self.ledger = disputes.ledger
        # Set when a step found its answer recorded already, identical: nothing was written.
        self.unchanged = False

    async def search(
        self,
        principal: Principal,
        *,
        status: list[str] | None,
        kind: str | None,
        overdue: bool | None,
        cursor: str | None,
        limit: int,
        materials_overdue: bool | None = None,
    ) -> tuple[list[tuple[Handoff, str, str]], str | None]:
        today = self.clock.today()
        query = (
            select(Handoff, Dispute.case_number, Body.name)
            .join(Dispute, Dispute.id == Handoff.dispute_id)
            .join(Body, Body.id == Handoff.target_id)
            .where(visible_handoffs(principal))
        )
        if status:
            query = query.where(Handoff.status.in_(status))
        if kind:
            query = query.where(Handoff.kind == kind)
        if overdue is not None:
            # A referral accepted with no deadline to decide (a suit once registered) is never late:
            # spelled so, not left to a comparison with NULL, which `NOT` leaves NULL and drops from
            # `overdue=false` too.
            late = or_(
                and_(Handoff.status == "pending", Handoff.accept_due_on < today),
                and_(
                    Handoff.status == "accepted",
                    Handoff.decide_due_on.is_not(None),
                    Handoff.decide_due_on < today,
                ),
            )
            query = query.where(late if overdue else ~late)
        if materials_overdue is not None:
            # The parties' lateness, not the target's: a request for materials past its day.
            unsupplied = and_(
                Handoff.status.in_(OPEN),
                Handoff.materials_due_on.is_not(None),
                Handoff.materials_due_on < today,
            )
            query = query.where(unsupplied if materials_overdue else ~unsupplied)
        if cursor is not None:
            query = query.where(Handoff.seq > self._after(cursor))
        rows = (await self.session.execute(query.order_by(Handoff.seq).limit(limit + 1))).all()
        items = [(h, n, t) for h, n, t in rows[:limit]]
        next_cursor = None
        if len(rows) > limit and items:
            next_cursor = encode_cursor({"seq": items[-1][0].seq})
        return items, next_cursor

    @staticmethod
    def _after(cursor: str) -> int:
        """The place in the list a cursor names: the number of the last handoff of its page. A
        cursor of the list as it was ordered before (by the day requested, then id: `d` and `id`)
        is refused like any other it did not hand out, not read as a place in this order, where
        it would skip or repeat handoffs: the walk starts again from the first page."""
        position = decode_cursor(cursor)
        seq = position.get("seq")
        if set(position) != {"seq"} or not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValidationFailed.of_field(
                "cursor",
                "invalid_cursor",
                Text(
                    "分页游标无效 (或为旧版排序的游标), 请从第一页重新读取",
                    "Invalid pagination cursor (or one of the list's former order): start again from the first page",
                ),
                location="query",
            )
        return seq

    async def of_case(self, dispute_id: uuid.UUID, principal: Principal) -> list[tuple[Handoff, str, str]]:
        dispute = await self.disputes.get(dispute_id, principal)
        rows = await self.session.execute(
            select(Handoff, Body.name)
            .join(Body, Body.id == Handoff.target_id)
            .where(Handoff.dispute_id == dispute.id)
            .order_by(Handoff.created_at, Handoff.id)
        )
        return [(h, dispute.case_number, name) for h, name in rows.all()]

    async def get(self, handoff_id: uuid.UUID, principal: Principal, *, for_update: bool = False) -> Handoff:
        query = (
            select(Handoff)
            .join(Dispute, Dispute.id == Handoff.dispute_id)
            .where(Handoff.id == handoff_id, visible_handoffs(principal))
        )
        if for_update:
            # Read again under the lock: a version read before it may be stale.
            query = query.with_for_update(of=Handoff).execution_options(populate_existing=True)
        handoff = await self.session.scalar(query)
        if handoff is None:
            if await self.session.scalar(select(Handoff.id).where(Handoff.id == handoff_id)):
                raise OutsideScope(NOT_FOUND)
            raise NotFound(NOT_FOUND)
        return handoff

    async def names(self, handoff: Handoff) -> tuple[str, str]:
        dispute = await self.session.get(Dispute, handoff.dispute_id)
        target = await self.session.get(Body, handoff.target_id)
        assert dispute is not None and target is not None
        return dispute.case_number, target.name

    async def dossier_parts(self, handoff: Handoff, principal: Principal) -> dict[str, Any]:
        """The dossier: the case as it stands, with its parties' identity, its agreement, sessions
        and timeline. A court or commission keeps its handoffs for good, and reads the case only
        while it is addressed to it, as for the case's own endpoints: once it is mediated again
        after a rejected confirmation, its confirmation request is withdrawn, or it is handed to
        another court or commission, what happens to it next is none of the former target's
        business. Its own handoff's record (status, answers, dates, version) it still reads, so it
        learns how the request ended; the case's contents are withheld (`withheld`). (A court
        learns of a withdrawal by its event too; applied for again, the case is addressed to the
        court then chosen.)"""
        dispute = await self.session.scalar(
            select(Dispute).where(Dispute.id == handoff.dispute_id).options(selectinload(Dispute.parties))
        )
        assert dispute is not None
        if principal.role in TARGET_ROLES and not sees(principal, dispute):
            return {"dispute": dispute, "withheld": CASE_LEFT_TARGET}
        agreement = None
        if handoff.agreement_id is not None:
            agreement = await self.session.scalar(
                select(Agreement)
                .where(Agreement.id == handoff.agreement_id)
                .options(selectinload(Agreement.obligations), selectinload(Agreement.signatures))
            )
        sessions = (
            await self.session.scalars(
                select(MediationSession)
                .where(MediationSession.dispute_id == dispute.id)
                .order_by(MediationSession.scheduled_at)
            )
        ).all()
        timeline = (
            await self.session.scalars(
                select(TimelineEntry)
                .where(TimelineEntry.dispute_id == dispute.id)
                .order_by(TimelineEntry.seq)
            )
        ).all()
        frozen = await self.frozen_dossier(handoff)
        manifest = list(frozen.manifest) if frozen else []
        listed = {item["document_id"] for item in manifest}
        late = (
            await self.session.scalars(
                select(Document.id).where(
                    Document.dispute_id == dispute.id, Document.late.is_(True), Document.status == "active"
                )
            )
        ).all()
        kinds = {item["kind"] for item in manifest}
        materials = checklist(
            handoff,
            dispute,
            kinds,
            has_agreement=agreement is not None,
            mediated=mediation_on_record(sessions, agreement, kinds),
        )
        filing_pack: dict[str, Any] | None = None
        if handoff.kind != "judicial_confirmation":
            body = await self.session.get(Body, dispute.body_id) if dispute.body_id else None
            filing_pack = {
                "claimants": [p.name for p in dispute.parties if p.role == "applicant"],
                "respondents": [p.name for p in dispute.parties if p.role == "respondent"],
                "claims": handoff.claims,
                "facts": dispute.description,
                "amount_in_dispute": str(dispute.amount_in_dispute) if dispute.amount_in_dispute else None,
                "applied_on": dispute.applied_on.isoformat(),
                "mediation_body": body.name if body else None,
                "mediator": dispute.mediator_name,
                "mediation_started_on": (
                    dispute.mediation_started_on.isoformat() if dispute.mediation_started_on else None
                ),
                # The reason code only: the mediator's note on why mediation ended may record what
                # a party conceded (特邀调解规定 Art. 22: `MEDIATION_RECORD_WITHHELD`).
                "termination": _termination_code((dispute.outcome or {}).get("fail")),
                "arbitration_agreement": handoff.arbitration_agreement,
                "limitation_note": limitation_note(handoff.kind),
            }
            if handoff.kind == "litigation":
                filing_pack["prior_arbitration"] = await self._prior_arbitration(handoff)
        return {
            "dispute": dispute,
            "withheld": None,
            "agreement": agreement,
            "sessions": list(sessions),
            "timeline": list(timeline),
            # What the parties said and conceded in mediation stays out of a referral's dossier:
            # `MEDIATION_RECORD_WITHHELD`. A confirmation is of the agreement they reached, and the
            # court reviews how it was reached (民诉法解释 Art. 356-358): its dossier keeps it.
            "record_withheld": handoff.kind != "judicial_confirmation",
            "manifest": manifest,
            "late_documents": [d for d in late if str(d) not in listed],
            "materials": materials,
            "filing_pack": filing_pack,
        }

    async def frozen_dossier(self, handoff: Handoff) -> Dossier | None:
        """The dossier this handoff carries: the one frozen again with the materials the court asked
        for, if any (`supply_materials`), else the latest frozen by the time the handoff was made
        (its own; a later handoff of the case freezes its own after it)."""
        return await self.session.scalar(
            select(Dossier)
            .where(Dossier.dispute_id == handoff.dispute_id, Dossier.target_id == handoff.target_id)
            .where(
                or_(
                    Dossier.handoff_id == handoff.id,
                    and_(Dossier.handoff_id.is_(None), Dossier.frozen_at <= handoff.created_at),
                )
            )
            .order_by(Dossier.frozen_at.desc(), Dossier.id.desc())
            .limit(1)
        )

    async def _prior_arbitration(self, handoff: Handoff) -> list[dict[str, Any]]:
        """The case's referrals to arbitration before this suit, with how each ended: a labour
        dispute comes to court with the commission's notice of non-acceptance (its number), or
        once the commission let its period pass (劳动争议调解仲裁法 Art. 29, 43), or with the award
        a party does not accept (Art. 48, 50)."""
        rows = await self.session.execute(
            select(Handoff, Body.name)
            .join(Body, Body.id == Handoff.target_id)
            .where(
                Handoff.dispute_id == handoff.dispute_id,
                Handoff.kind.in_(ARBITRATION_HANDOFF_KINDS),
                Handoff.created_at <= handoff.created_at,
                Handoff.id != handoff.id,
            )
            .order_by(Handoff.created_at, Handoff.id)
        )
        return [
            {
                "handoff_id": str(earlier.id),
                "kind": earlier.kind,
                "commission": name,
                "status": earlier.status,
                "target_case_number": earlier.target_case_number,
                "decided_on": earlier.decided_on.isoformat() if earlier.decided_on else None,
                "decision": earlier.decision,
            }
            for earlier, name in rows.all()
        ]

    async def _for_target(
        self, handoff_id: uuid.UUID, principal: Principal, if_match: str | None
    ) -> tuple[Handoff, Dispute]:
        """The handoff and its case, locked, for the court or commission it is addressed to, at
        the version it saw."""
        handoff, dispute = await self._locked(handoff_id, principal)
        self._as_target(handoff, principal)
        check_if_match(if_match, handoff.version)
        return handoff, dispute

    async def _answerable(
        self, handoff_id: uuid.UUID, principal: Principal, if_match: str | None
    ) -> tuple[Handoff, Dispute]:
        """As `_for_target`, for a step that settles the handoff, whose If-Match is only checked
        against the current version once the handoff is found not to hold that answer already."""
        handoff, dispute = await self._locked(handoff_id, principal)
        self._as_target(handoff, principal)
        self._if_match_formed(if_match, handoff.version)
        return handoff, dispute

    async def _locked(self, handoff_id: uuid.UUID, principal: Principal) -> tuple[Handoff, Dispute]:
        """The handoff the caller may see and its case, both locked: the case first, then the
        handoff, the order every action on the case takes them in (DisputeService.apply locks the
        case, then settles its handoff). Taken the other way round, a court's answer and a clerk's
        action on the same case each hold the row the other waits for."""
        seen = await self.get(handoff_id, principal)
        dispute = await self._lock_case(seen.dispute_id)
        return await self.get(handoff_id, principal, for_update=True), dispute

    async def _lock_case(self, dispute_id: uuid.UUID) -> Dispute:
        """The case, locked and read as it now stands: the version the answer's action checks is
        this one, not one read before a change another request committed meanwhile."""
        dispute = await self.session.get(Dispute, dispute_id, with_for_update=True, populate_existing=True)
        assert dispute is not None  # a handoff's case is never deleted
        return dispute

    def _as_target(self, handoff: Handoff, principal: Principal) -> None:
        if principal.role not in TARGET_ROLES or principal.organisation_id != handoff.target_id:
            raise Forbidden(
                Text(
                    "只有受理该移交的法院或仲裁委员会可以办理",
                    "Only the court or commission addressed may do this",
                ),
                allowed_roles=sorted(r.value for r in TARGET_ROLES),
            )

    @staticmethod
    def _still_open(handoff: Handoff, principal: Principal) -> None:
        """A ruling, an outcome or a withdrawal answers this handoff and no other. A case has at
        most one open handoff, and the case's action settles that one: posted to a handoff already
        settled (a request not accepted and then made again), it would settle the new one."""
        if handoff.status not in OPEN:
            raise Conflict(
                Text(
                    "这项移交已经办结 ({status}), 不能再作答复",
                    "This handoff is already settled ({status_en}); it takes no further answer",
                ).format(status=SETTLED_NAMES.get(handoff.status, handoff.status), status_en=handoff.status),
                code="handoff_settled",
                **recorded_answer(handoff, principal),
            )

    @staticmethod
    def _if_match_formed(if_match: str | None, version: int) -> None:
        """If-Match as every change needs it (428 when missing or malformed, 412 when weak), a
        stale version let through: it is refused (`check_if_match`) only once the handoff is
        found to take the answer, since an answer it holds already is told apart by what was
        answered, not by the version the client had read before sending it."""
        try:
            check_if_match(if_match, version)
        except StaleVersion as stale:
            if stale.extensions.get("code") == "weak_etag":
                raise

    def _repeated(self, handoff: Handoff) -> Handoff:
        """The answer sent is the one recorded (a retry whose first attempt's answer was lost):
        the handoff as it stands, nothing written again."""
        self.unchanged = True
        return handoff

    async def _noted(self, handoff: Handoff, action: str) -> str | None:
        """The reason or note this handoff's step `action` (the target's acceptance, the parties'
        withdrawal request) was recorded with, on the case's timeline: the handoff keeps no copy."""
        entries = await self.session.scalars(
            select(TimelineEntry)
            .where(TimelineEntry.dispute_id == handoff.dispute_id, TimelineEntry.action == action)
            .order_by(TimelineEntry.seq.desc())
        )
        for entry in entries.all():
            if entry.payload.get("handoff_id") == str(handoff.id):
                return entry.reason
        return None

    async def _same_acceptance(self, handoff: Handoff, data: AcceptanceIn) -> bool:
        """Whether `data` is the acceptance answer recorded: the same decision, and every field it
        sends equal to the one recorded, its note too. `accepted_on` left out means the day the
        answer was first recorded (it defaulted to that day), whichever day it is sent again."""
        if data.decision == "not_accepted":
            payload = NotAcceptPayload(
                reason_code=data.reason_code, notice_number=data.notice_number, note=data.note
            )
            return handoff.status == "not_accepted" and same_record(handoff.decision, payload)
        return (
            handoff.accepted_on is not None
            and handoff.target_case_number == data.case_number
            and data.accepted_on in (None, handoff.accepted_on)
            and await self._noted(handoff, "acknowledge_handoff") == data.note
        )

    async def acknowledge(
        self, handoff_id: uuid.UUID, data: AcceptanceIn, principal: Principal, if_match: str | None
    ) -> Handoff:
        handoff, dispute = await self._answerable(handoff_id, principal, if_match)
        if handoff.status != "pending":
            # A request withdrawn before the target answered was not answered by it: refused as
            # settled, naming how it ended. Otherwise the target did answer (and may have ruled
            # since): the same answer again is its retry, whatever version it was sent at.
            if handoff.accepted_on is None and handoff.status != "not_accepted":
                self._still_open(handoff, principal)
            if await self._same_acceptance(handoff, data):
                return self._repeated(handoff)
            raise Conflict(
                Text("已经答复过是否受理", "Acceptance was already answered"),
                code="already_answered",
                **recorded_answer(handoff, principal),
            )
        check_if_match(if_match, handoff.version)
        today = self.clock.today()
        etag = etag_for(dispute.version)
        if data.decision == "not_accepted":
            assert data.reason_code is not None
            # A court does not accept a confirmation request, a commission a referral to
            # arbitration, a court a suit: each for a reason its own law gives (guard
            # `reason_of_this_body`), by a notice or ruling whose number the parties go on with
            # (劳动争议调解仲裁法 Art. 29: the applicant sues; 民事诉讼法 Art. 157: an appeal).
            payload = NotAcceptPayload(
                reason_code=data.reason_code, notice_number=data.notice_number, note=data.note
            )
            await self.disputes.apply(handoff.dispute_id, Action.not_accept, payload, principal, etag)
            return handoff
        accepted_on = data.accepted_on or today
        if accepted_on > today or accepted_on < handoff.requested_on:
            raise ValidationFailed.of_field(
                "accepted_on",
                "implausible",
                Text(
                    "受理日期不能晚于今天或早于申请日", "accepted_on must lie between the request and today"
                ),
            )
        assert data.case_number is not None
        self.ledger.accept(handoff, data.case_number, accepted_on, self.clock.now())
        dispute = await self.disputes.get(handoff.dispute_id, principal, for_update=True)
        dispute.handoff = summary(handoff, today)
        await self.disputes.record_work(
            dispute,
            "acknowledge_handoff",
            principal,
            data.note,
            {
                "handoff_id": str(handoff.id),
                "target_case_number": data.case_number,
                "accepted_on": accepted_on.isoformat(),
                "decide_due_on": handoff.decide_due_on.isoformat() if handoff.decide_due_on else None,
            },
            "handoff_accepted",
        )
        return handoff

    async def extend(
        self, handoff_id: uuid.UUID, data: HandoffExtensionIn, principal: Principal, if_match: str | None
    ) -> Handoff:
        handoff, _ = await self._answerable(handoff_id, principal, if_match)
        clock = self.ledger.periods(handoff.kind)
        if handoff.extended_days:
            # Extended once (法释〔2011〕5号 Art. 5; 劳动争议调解仲裁法 Art. 43): the same extension
            # again is its retry, whatever version it was sent at; another is refused with the one
            # recorded, whatever version it names.
            if (handoff.extended_days, handoff.extension_reason) == (data.days, data.reason):
                return self._repeated(handoff)
            raise Conflict(
                Text(
                    "审查期限只能延长一次, 已于此前延长 {n} 日",
                    "The period can be extended once; it was extended by {n} days",
                ).format(n=handoff.extended_days),
                code="already_extended",
                article=clock.decide_article,
                **recorded_extension(handoff, principal),
            )
        check_if_match(if_match, handoff.version)
        if handoff.status != "accepted" or clock.extension_days is None:
            raise Conflict(
                Text(
                    "只有已受理且法定可延长的审查期限才能延长",
                    "Only an accepted handoff with a legal extension can be extended",
                ),
                code="not_extendable",
            )
        today = self.clock.today()
        if handoff.decide_due_on is not None and today > handoff.decide_due_on:
            # 法释〔2011〕5号 Art. 5, 劳动争议调解仲裁法 Art. 43, 农村土地承包经营纠纷调解仲裁法
            # Art. 47: the period is extended while it runs; one that has run out is not revived,
            # and its overdue record stays.
            raise Conflict(
                Text(
                    "审查期限已于 {d} 届满, 届满后不能再延长",
                    "The period to decide ended on {d}; a period that has run out cannot be extended",
                ).format(d=handoff.decide_due_on.isoformat()),
                code="period_expired",
                article=clock.decide_article,
                due_on=handoff.decide_due_on.isoformat(),
            )
        if data.days > clock.extension_days:
            raise ValidationFailed.of_field(
                "days",
                "too_long",
                Text("最多可延长 {n} 日 ({a})", "At most {n} days ({a})").format(
                    n=clock.extension_days, a=clock.decide_article
                ),
            )
        self.ledger.extend(handoff, data.days, data.reason, self.clock.now())
        dispute = await self.disputes.get(handoff.dispute_id, principal, for_update=True)
        dispute.handoff = summary(handoff, today)
        await self.disputes.record_work(
            dispute,
            "extend_handoff",
            principal,
            data.reason,
            {
                "handoff_id": str(handoff.id),
                "days": data.days,
                "decide_due_on": handoff.decide_due_on.isoformat() if handoff.decide_due_on else None,
            },
            "handoff_extended",
        )
        return handoff

    async def decide(
        self, handoff_id: uuid.UUID, data: DecisionIn, principal: Principal, if_match: str | None
    ) -> Handoff:
        handoff, dispute = await self._answerable(handoff_id, principal, if_match)
        payload: Any
        if data.decision == "confirmed":
            payload = ConfirmPayload(ruling_number=data.ruling_number, ruled_on=data.ruled_on, note=data.note)
        elif data.decision == "withdrawn":
            payload = None  # the court's ruling on a withdrawal: the case's own step records it
        else:
            assert data.ground is not None
            payload = RejectPayload(
                ground=data.ground, ruling_number=data.ruling_number, ruled_on=data.ruled_on, note=data.note
            )
        if payload is not None and handoff.status == data.decision and same_record(handoff.decision, payload):
            return self._repeated(handoff)
        self._still_open(handoff, principal)
        check_if_match(if_match, handoff.version)
        if handoff.kind != "judicial_confirmation":
            raise Conflict(
                Text("移送仲裁或诉讼的结果请登记在 outcome", "Post a referral's result to /outcome"),
                code="wrong_kind",
            )
        etag = etag_for(dispute.version)
        if payload is None:
            await self._withdrawal_allowed(handoff, data, principal, etag)
        else:
            action = Action.confirm if data.decision == "confirmed" else Action.reject
            await self.disputes.apply(handoff.dispute_id, action, payload, principal, etag)
        return handoff

    async def conclude(
        self, handoff_id: uuid.UUID, data: OutcomeIn, principal: Principal, if_match: str | None
    ) -> Handoff:
        handoff, dispute = await self._answerable(handoff_id, principal, if_match)
        payload = RecordOutcomePayload.model_validate(data.model_dump())
        if handoff.status == "concluded" and same_record(handoff.decision, payload):
            return self._repeated(handoff)
        self._still_open(handoff, principal)
        check_if_match(if_match, handoff.version)
        if handoff.kind == "judicial_confirmation":
            raise Conflict(
                Text("司法确认的裁定请登记在 decision", "Post a confirmation ruling to /decision"),
                code="wrong_kind",
            )
        await self.disputes.apply(
            handoff.dispute_id, Action.record_outcome, payload, principal, etag_for(dispute.version)
        )
        return handoff

    async def withdraw(
        self, handoff_id: uuid.UUID, data: WithdrawalIn, principal: Principal, if_match: str | None
    ) -> Handoff:
        handoff, dispute = await self._locked(handoff_id, principal)
        self._if_match_formed(if_match, handoff.version)
        payload = WithdrawConfirmationPayload.model_validate(data.model_dump())
        if await self._same_withdrawal(handoff, payload, principal):
            return self._repeated(handoff)
        self._withdrawal_answered(handoff, principal)
        check_if_match(if_match, handoff.version)
        if handoff.kind != "judicial_confirmation":
            if handoff.status == "accepted" and principal.role not in TARGET_ROLES:
                # An arbitration or a suit once accepted is the commission's or the court's: the
                # applicant's withdrawal is for it to decide (民事诉讼法 Art. 148: 是否准许, 由人民法院
                # 裁定; 劳动争议调解仲裁法 Art. 41, 仲裁法 Art. 49), and it posts the outcome
                # `withdrawal`. The mediation side records the request, as for a confirmation.
                if principal.role not in BODY_ROLES | CENTER_ROLES:
                    raise Forbidden(
                        Text("该角色不能提出撤回", "This role may not ask for a withdrawal"),
                        allowed_roles=sorted(r.value for r in BODY_ROLES | CENTER_ROLES),
                    )
                self._still_open(handoff, principal)
                await self.request_withdrawal(dispute, handoff, payload, principal)
                return handoff
            raise Conflict(
                Text(
                    "移送仲裁或诉讼的撤回由受理机构登记为结果 (withdrawal); 受理后调解组织或中心可代当事人提出撤回申请",
                    "A referral's withdrawal is posted as its outcome by the commission or court; once it "
                    "has accepted, the body or center may record the parties' request for it",
                ),
                code="wrong_kind",
            )
        if principal.role in TARGET_ROLES:
            self._as_target(handoff, principal)
        self._still_open(handoff, principal)
        await self.disputes.apply(
            handoff.dispute_id, Action.withdraw_confirmation, payload, principal, etag_for(dispute.version)
        )
        return handoff

    async def request_withdrawal(
        self, dispute: Dispute, handoff: Handoff, payload: WithdrawConfirmationPayload, principal: Principal
    ) -> None:
        """The parties' withdrawal, brought by the body or the center once the court or commission
        has accepted: theirs to ask, the target's to allow (民诉法解释 Art. 357: 人民法院可以裁定准许;
        民事诉讼法 Art. 148). Kept on the handoff (`withdrawal_requested`, with the day and the party)
        and on the case's timeline, with its event to the target; the case stays where it is, before
        the target, which keeps reading it and closes it by its ruling or decision
        (`/decision` `withdrawn`, `/outcome` `withdrawal`). The case is locked by the caller, which
        has refused a second request while one waits already (`_withdrawal_answered`, or for the
        case's own action `withdrawal_sent_again`), before it looked at the version sent."""
        if payload.ruling_number is not None or payload.ruled_on is not None:
            raise ValidationFailed.of_field(
                "ruling_number",
                "ruling_by_target_only",
                Text(
                    "准许撤回的裁定由受理的法院作出, 调解组织或中心只提出撤回申请",
                    "The ruling allowing a withdrawal is the court's; the body or center only asks for it",
                ),
            )
        today = self.clock.today()
        handoff.warnings = [*handoff.warnings, withdrawal_request(handoff, today, payload.party_id)]
        self.ledger.touch(handoff, self.clock.now())
        dispute.handoff = summary(handoff, today)
        await self.disputes.record_work(
            dispute,
            "request_withdrawal",
            principal,
            payload.reason,
            {
                "handoff_id": str(handoff.id),
                "handoff_kind": handoff.kind,
                "target_id": str(handoff.target_id),
                "requested_on": today.isoformat(),
                "party_id": str(payload.party_id) if payload.party_id else None,
            },
            "handoff_withdrawal_requested",
        )

    async def _same_withdrawal(
        self, handoff: Handoff, payload: WithdrawConfirmationPayload, principal: Principal
    ) -> bool:
        """Whether `payload` is the withdrawal this handoff holds already (a retry whose first
        answer was lost): the withdrawal that settled it, as recorded (`same_record`); or, while
        the parties' request waits for the target's ruling, that request sent again by the body or
        center (who alone ask for it): the same party, and the same reason as the case's timeline
        keeps for it. A ruling number is the target's own answer, never such a request."""
        if handoff.status == "withdrawn":
            return same_record(handoff.decision, payload)
        asked = withdrawal_asked(handoff)
        if asked is None or principal.role not in BODY_ROLES | CENTER_ROLES:
            return False
        party = str(payload.party_id) if payload.party_id else None
        return (
            payload.ruling_number is None
            and payload.ruled_on is None
            and asked.get("party_id") == party
            and await self._noted(handoff, "request_withdrawal") == payload.reason
        )

    async def withdrawal_sent_again(
        self,
        dispute: Dispute,
        payload: WithdrawConfirmationPayload,
        principal: Principal,
        if_match: str | None,
    ) -> bool:
        """The case's own action `withdraw_confirmation` taken as `/withdrawal` takes it: sent again
        as the case's confirmation request holds it (a retry whose first answer was lost: the
        parties' request waiting for the court's ruling, or the withdrawal that ended the request),
        it is that one, whatever version it names: True, and nothing is to be written. Another
        request while one waits is refused with the one waiting (`_withdrawal_answered`), whatever
        version it names too. If-Match is still needed, and a weak one refused. The case is locked
        by the caller (`DisputeService.act`)."""
        self._if_match_formed(if_match, dispute.version)
        if principal.role not in WITHDRAWING_ROLES or dispute.handoff is None:
            return False
        # The case's last confirmation request or referral, as the case shows it: open, or how it ended.
        handoff = await self.session.get(Handoff, uuid.UUID(str(dispute.handoff["id"])))
        if handoff is None or handoff.kind != "judicial_confirmation":
            return False
        if await self._same_withdrawal(handoff, payload, principal):
            self.unchanged = True
            return True
        if handoff.status in OPEN:
            # Settled otherwise, another withdrawal is the case's to refuse (its state no longer
            # takes one); open, one waiting answers it.
            self._withdrawal_answered(handoff, principal)
        return False

    def _withdrawal_answered(self, handoff: Handoff, principal: Principal) -> None:
        """Another withdrawal than the one this handoff holds is refused with what it holds,
        whatever version it names (as another answer is): a confirmation request already settled
        (`handoff_settled`), or the parties' request already waiting, asked again by the body or
        center (`withdrawal_already_requested`)."""
        if handoff.kind == "judicial_confirmation" and handoff.status not in OPEN:
            if principal.role in TARGET_ROLES:
                self._as_target(handoff, principal)
            self._still_open(handoff, principal)
        if handoff.status == "accepted" and principal.role in BODY_ROLES | CENTER_ROLES:
            self._not_yet_requested(handoff, principal)

    @staticmethod
    def _not_yet_requested(handoff: Handoff, principal: Principal) -> None:
        """One request for a withdrawal waits for the target at a time."""
        asked = withdrawal_asked(handoff)
        if asked is not None:
            raise Conflict(
                Text(
                    "当事人已于 {day} 申请撤回, 正待受理机构裁定或决定",
                    "A withdrawal was already asked for on {day}; it awaits the target's ruling or decision",
                ).format(day=asked.get("requested_on")),
                code="withdrawal_already_requested",
                article=asked.get("article"),
                requested_on=asked.get("requested_on"),
                **recorded_answer(handoff, principal),
            )

    # ---- the court's requests for more materials (民诉法解释 Art. 354, 356) ----------------------

    async def request_materials(
        self, handoff_id: uuid.UUID, data: MaterialsRequestIn, principal: Principal, if_match: str | None
    ) -> Handoff:
        """The court asks for more materials by a day it sets: before acceptance those the
        application lacks (民诉法解释 Art. 354: 限期补交), after it statements or proofs insufficient,
        incomplete or doubtful (Art. 356: 限期补充). Kept on the handoff and on the case's timeline,
        with its event to the mediation side; the court's own periods are left as they are. The same
        request sent again (its first answer lost) is answered as it stands, nothing written."""
        handoff, dispute = await self._answerable(handoff_id, principal, if_match)
        latest = handoff.materials_requests[-1] if handoff.materials_requests else None
        # Only the request still waiting is retried: the same items asked again after an answer
        # that did not satisfy the court is a new request.
        if latest is not None and latest.get("status") == "open" and _same_request(latest, data):
            return self._repeated(handoff)
        self._still_open(handoff, principal)
        check_if_match(if_match, handoff.version)
        if handoff.kind != "judicial_confirmation":
            raise Conflict(
                Text(
                    "补充材料的要求只适用于司法确认申请 (民诉法解释 第三百五十四条、第三百五十六条)",
                    "Requests for more materials are for judicial confirmation requests "
                    "(民诉法解释 Art. 354, 356)",
                ),
                code="wrong_kind",
            )
        asked = open_materials_request(handoff)
        if asked is not None:
            raise Conflict(
                Text(
                    "已于 {day} 要求补充材料, 期限至 {due}, 尚未补交; 补交后可再提出要求",
                    "More materials were asked for on {day}, due on {due}, and not supplied yet; ask again "
                    "once they are",
                ).format(day=asked["requested_on"], due=asked["due_on"]),
                code="materials_already_requested",
                request_id=asked["id"],
                due_on=asked["due_on"],
            )
        today = self.clock.today()
        latest_day = today + timedelta(days=MATERIALS_LONGEST_DAYS)
        if not today < data.due_on <= latest_day:
            raise ValidationFailed.of_field(
                "due_on",
                "implausible",
                Text(
                    "补交期限须晚于今天, 且不晚于 {last} ({n} 日内)",
                    "due_on must lie after today and no later than {last} (within {n} days)",
                ).format(last=latest_day.isoformat(), n=MATERIALS_LONGEST_DAYS),
            )
        request = self.ledger.request_materials(
            handoff,
            list(data.items),
            list(data.codes),
            data.due_on,
            data.note,
            principal.id,
            today,
            self.clock.now(),
        )
        dispute.handoff = summary(handoff, today)
        # The items are the court's own words, which may name people: the timeline keeps them, read
        # with the case's rights; the event says which checklist items and by when.
        await self.disputes.record_work(
            dispute,
            "request_materials",
            principal,
            data.note,
            {
                "handoff_id": str(handoff.id),
                "target_id": str(handoff.target_id),
                "request_id": request["id"],
                "article": request["article"],
                "codes": request["codes"],
                "due_on": request["due_on"],
            },
            "handoff_materials_requested",
            timeline_only={"items": request["items"]},
        )
        return handoff

    async def supply_materials(
        self, handoff_id: uuid.UUID, data: MaterialsSuppliedIn, principal: Principal, if_match: str | None
    ) -> Handoff:
        """The mediation side answers the open request with documents of the case (uploaded first):
        they are frozen into the handoff's dossier as the first ones were, and the court is told. A
        request past its day still takes them: whether the delay had good reason is the court's to
        judge (民诉法解释 Art. 357)."""
        handoff, dispute = await self._locked(handoff_id, principal)
        if principal.role not in BODY_ROLES | CENTER_ROLES:
            raise Forbidden(
                Text(
                    "补充材料由调解组织或调解中心提交",
                    "The materials are supplied by the mediation body or the center",
                ),
                allowed_roles=sorted(r.value for r in BODY_ROLES | CENTER_ROLES),
            )
        self._if_match_formed(if_match, handoff.version)
        latest = handoff.materials_requests[-1] if handoff.materials_requests else None
        if (
            latest is not None
            and latest.get("status") == "supplied"
            and latest.get("document_ids") == [str(i) for i in data.document_ids]
            and latest.get("supplied_note") == data.note
        ):
            return self._repeated(handoff)
        self._still_open(handoff, principal)
        check_if_match(if_match, handoff.version)
        asked = open_materials_request(handoff)
        if asked is None:
            raise Conflict(
                Text("法院没有待补交的材料要求", "The court has no request for materials waiting"),
                code="no_materials_request",
            )
        documents = await self._supplied_documents(dispute, data.document_ids)
        assert self.disputes.documents is not None  # a request's service has its documents
        today, now = self.clock.today(), self.clock.now()
        carried = await self.frozen_dossier(handoff)
        due_on = date.fromisoformat(asked["due_on"])
        self.ledger.supply_materials(handoff, data.document_ids, data.note, principal.id, today, now)
        dispute.handoff = summary(handoff, today)
        await self.disputes.record_work(
            dispute,
            "supply_materials",
            principal,
            data.note,
            {
                "handoff_id": str(handoff.id),
                "target_id": str(handoff.target_id),
                "request_id": asked["id"],
                "document_ids": [str(d.id) for d in documents],
                "due_on": asked["due_on"],
                "late": today > due_on,
            },
            "handoff_materials_supplied",
        )
        await self.disputes.documents.freeze_supplement(
            carried,
            dispute.id,
            handoff.id,
            handoff.kind,
            handoff.target_id,
            dispute.version,
            documents,
            asked["id"],
            now,
        )
        return handoff

    async def _supplied_documents(self, dispute: Dispute, ids: list[uuid.UUID]) -> list[Document]:
        """The documents named, each the case's own and not withdrawn, in the order named."""
        found = {
            d.id: d for d in (await self.session.scalars(select(Document).where(Document.id.in_(ids)))).all()
        }
        for n, document_id in enumerate(ids):
            document = found.get(document_id)
            if document is None or document.dispute_id != dispute.id:
                raise ValidationFailed.of_field(
                    f"document_ids[{n}]",
                    "not_of_this_case",
                    Text(
                        "该案没有这份材料, 请先上传到本案", "No such document in this case: upload it first"
                    ),
                )
            if document.status != "active":
                raise ValidationFailed.of_field(
                    f"document_ids[{n}]",
                    "withdrawn",
                    Text(
                        "这份材料已撤回, 不能作为补充材料",
                        "This document was withdrawn and cannot be supplied",
                    ),
                )
        return [found[i] for i in ids]

    async def flag_materials_overdue(self, handoff_id: uuid.UUID, principal: Principal) -> bool:
        """The clock marks, once, a request for materials whose day passed with nothing supplied, on
        the case's timeline with its event: the court may treat the application as withdrawn
        (民诉法解释 Art. 357), and the body and the center see it late."""
        locked = await self._locked_by_the_clock(handoff_id)
        if locked is None:
            return False
        handoff, dispute = locked
        asked = open_materials_request(handoff)
        if (
            asked is None
            or handoff.materials_overdue_flagged
            or not materials_overdue(handoff, self.clock.today())
        ):
            return False
        handoff.materials_overdue_flagged = True
        await self.disputes.record_work(
            dispute,
            "materials_overdue",
            principal,
            f"法院要求补交的材料逾期未补交, 期限 {asked['due_on']} 已过 ({MATERIALS_LATE_ARTICLE})",
            {
                "handoff_id": str(handoff.id),
                "target_id": str(handoff.target_id),
                "request_id": asked["id"],
                "due_on": asked["due_on"],
            },
            "handoff_materials_overdue",
        )
        return True

    async def _withdrawal_allowed(
        self, handoff: Handoff, data: DecisionIn, principal: Principal, etag: str
    ) -> None:
        """The court's ruling allowing the withdrawal of the application it accepted, or treating it
        as withdrawn (民诉法解释 Art. 357): the request ends as a withdrawal does, with the ruling's
        number and date (guard `withdrawal_ruled`), on the party who asked, if one was named."""
        asked = withdrawal_asked(handoff)
        party = asked.get("party_id") if asked else None
        payload = WithdrawConfirmationPayload(
            reason=data.note or "人民法院裁定准许撤回司法确认申请",
            party_id=uuid.UUID(party) if party else None,
            ruling_number=data.ruling_number,
            ruled_on=data.ruled_on,
        )
        await self.disputes.apply(handoff.dispute_id, Action.withdraw_confirmation, payload, principal, etag)

    async def _locked_by_the_clock(self, handoff_id: uuid.UUID) -> tuple[Handoff, Dispute] | None:
        """The handoff and its case, locked in the order `_locked` takes them, for the scheduler."""
        dispute_id = await self.session.scalar(select(Handoff.dispute_id).where(Handoff.id == handoff_id))
        if dispute_id is None:
            return None
        dispute = await self._lock_case(dispute_id)
        handoff = await self.session.get(Handoff, handoff_id, with_for_update=True, populate_existing=True)
        assert handoff is not None
        return handoff, dispute

    async def recount(self, handoff_id: uuid.UUID) -> bool:
        """A holiday schedule loaded since changes the current step's last day. A step counted in
        working days is counted again on the calendar as it now stands (e.g. 农村土地承包经营纠纷调解
        仲裁法 Art. 23: 五个工作日), and stays provisional while it reaches a year whose schedule is
        still unknown; a step counted in days whose last day the schedule takes off ends on the next
        working day instead (民事诉讼法 Art. 85), and one provisional (its last day lay in a year
        whose schedule was unknown: weekends and the statutory holidays only) is settled once that
        year is known, moved or not. A confirmation's period to apply for enforcement is counted
        again whole (民事诉讼法 Art. 250). The target's deadline only moves later, never earlier than it was told; a step
        flagged late on the old day may be again."""
        locked = await self._locked_by_the_clock(handoff_id)
        if locked is None:
            return False
        handoff, dispute = locked
        if handoff.status not in ("pending", "accepted", "confirmed"):
            return False
        step = {"pending": "accept", "accepted": "decide", "confirmed": "enforcement"}[handoff.status]
        clock = self.ledger.periods(handoff.kind)
        article, label = {
            "accept": (clock.accept_article, "受理"),
            "decide": (clock.decide_article, "作出决定"),
            "enforcement": ("民事诉讼法 第二百五十条", "申请执行"),
        }[step]
        count = StepCount.of(handoff)
        if count is not None:
            counted_before = count.recount()
            if counted_before is None:
                return False
            before, after = counted_before, count.due_on
            count.onto(handoff)
            reason = await recount_reason(f"{label}期限", before, after, self.session)
        else:
            last_day = {
                "accept": handoff.accept_due_on,
                "decide": handoff.decide_due_on,
                "enforcement": handoff.enforcement_deadline,
            }[step]
            if last_day is None:
                return False
            if step == "enforcement":
                # Counted again whole: the last day of performance it runs from may have moved too.
                assert handoff.decided_on is not None  # a confirmation is ruled on a day
                end = await self.ledger.enforcement_end(handoff, handoff.decided_on)
            else:
                end = period_end(last_day, 0)
            before, after = last_day, max(end.last_day, last_day)
            if (after, not end.calendar_known) == (before, handoff.provisional):
                return False
            if step == "accept":
                handoff.accept_due_on = after
            elif step == "decide":
                handoff.decide_due_on = after
            else:
                handoff.enforcement_deadline = after
            handoff.provisional = not end.calendar_known
            if after != before and not period_end(before, 0).extended:
                reason = await recount_reason(f"{label}期限", before, after, self.session)
            else:
                source = await notice_of(self.session, after.year)
                reason = (
                    f"节假日安排已公布{source}: {label}期限届满日 {before} 为休息日, 顺延至 {after}"
                    if after != before
                    else f"节假日安排已公布{source}: {label}期限届满日 {after} 确定"
                )
        withdrawn = handoff.overdue_flagged == step and after >= self.clock.today()
        if handoff.overdue_flagged == step and after != before:
            handoff.overdue_flagged = None
        self.ledger.touch(handoff, self.clock.now())
        dispute.handoff = summary(handoff, self.clock.today())
        if after == before and dispute.status == Status.archived:
            # Only made certain, on a file already closed: the handoff says so (its version moved),
            # the archived case's timeline stays as it was closed (the audit trail keeps the
            # change); its version moves, as the handoff it shows is no longer provisional.
            await self.disputes.record_correction(dispute)
            await append(
                self.session,
                [
                    AuditEntry.by(
                        SYSTEM,
                        "scheduler.handoff_deadline_settled",
                        object_type="dispute",
                        object_id=str(dispute.id),
                        details={
                            "handoff_id": str(handoff.id),
                            "clock": f"handoff_{step}",
                            "due_on": after.isoformat(),
                        },
                    )
                ],
                utcnow(),
            )
            return True
        await self.disputes.record_work(
            dispute,
            "clock_recounted",
            SYSTEM,
            reason + (OVERDUE_WITHDRAWN if withdrawn else ""),
            {
                "clock": f"handoff_{step}",
                "due_on": after.isoformat(),
                "previous_due_on": before.isoformat(),
                "provisional": handoff.provisional,
                "source": article or "",
                "handoff_id": str(handoff.id),
                "overdue_withdrawn": withdrawn,
            },
            "clock_recounted",
        )
        return True

    async def restore_count(self, handoff_id: uuid.UUID) -> bool:
        """An open step counted in working days that keeps no count, opened before the handoff
        kept one (migration 0025), gets it back from the rules (`Ledger.restore_count`), so that a
        holiday schedule loaded counts it again (`recount`, in the same pass) as it counts any
        step opened since: the rural land commission's five working days (农村土地承包经营纠纷调解
        仲裁法 Art. 23) end after the holidays, not on weekends only. Audited as the system's."""
        locked = await self._locked_by_the_clock(handoff_id)
        if locked is None:
            return False
        handoff, dispute = locked
        if not self.ledger.restore_count(handoff):
            return False
        if handoff.provisional:
            # Shown to the target and on the case: its last day may still move. Both versions
            # move, so that neither's copy held is taken as current.
            self.ledger.touch(handoff, self.clock.now())
            dispute.handoff = summary(handoff, self.clock.today())
            await self.disputes.record_correction(dispute)
        await append(
            self.session,
            [
                AuditEntry.by(
                    SYSTEM,
                    "scheduler.handoff_count_restored",
                    object_type="dispute",
                    object_id=str(dispute.id),
                    details={
                        "job": "handoff counts restored",
                        "handoff_id": str(handoff.id),
                        "counted_from": handoff.counted_from.isoformat() if handoff.counted_from else None,
                        "working_days": handoff.working_days,
                        "provisional": handoff.provisional,
                    },
                )
            ],
            utcnow(),
        )
        return True

    async def flag_overdue(self, handoff_id: uuid.UUID, principal: Principal) -> bool:
        """The clock marks a handoff whose step is late, once per step, on the case's timeline."""
        locked = await self._locked_by_the_clock(handoff_id)
        if locked is None:
            return False
        handoff, dispute = locked
        step = overdue_step(handoff, self.clock.today())
        if step is None or handoff.overdue_flagged == step:
            return False
        handoff.overdue_flagged = step
        due = handoff.accept_due_on if step == "accept" else handoff.decide_due_on
        clock = self.ledger.periods(handoff.kind)
        article = clock.accept_article if step == "accept" else clock.decide_article
        await self.disputes.record_work(
            dispute,
            "handoff_overdue",
            principal,
            f"{'受理' if step == 'accept' else '作出决定'}期限 {due} 已过 ({article})",
            {"handoff_id": str(handoff.id), "step": step, "due_on": due.isoformat() if due else None},
            "handoff_overdue",
        )
        return True


def _same_request(recorded: dict[str, Any], data: MaterialsRequestIn) -> bool:
    """Whether the request recorded asks what `data` asks: the same items, codes, day and note."""
    return (
        recorded.get("items") == list(data.items)
        and recorded.get("codes") == list(data.codes)
        and recorded.get("due_on") == data.due_on.isoformat()
        and recorded.get("note") == data.note
    )
