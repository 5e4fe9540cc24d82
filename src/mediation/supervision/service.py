"""Supervision orders (督办) and case owners (包案领导).

A supervisor addresses an order to the body handling a case, with a deadline; the body answers
it; an order still unanswered after its last day is escalated by the scheduler (once) and the case
is flagged for attention. A hard case can be given an owner, an official who answers for it until
it is resolved (domain.md §4.4: "包案"). Every step lands on the case's timeline and in the outbox.

An open order follows its case (跟踪督办 supervises the case's handling, not one body). When the
body it is addressed to loses the case (a transfer, a return, an escalation to the next tier), the
order is addressed to nobody while the case waits at the center: no body sees or answers it, and
the scheduler does not escalate it, since no body holds the case to answer for it; the supervisor's
list shows it without an addressee. When the next body takes the case (it is assigned), the order
is addressed to that body with its instruction and its last day unchanged, and the change lands on
the timeline and in the outbox. An order addressed on purpose to a body that is not handling the
case (the body_id given when it was issued) stays with that body. Only a body the case could be
given to mediate is addressed so: an active mediation body whose jurisdiction covers the case's
region, as triage judges it (`_refuse_unless_addressable`).

An order closes with its case (随案办结): when the case's follow-up ends (attention.FINISHED says
which states end it, and why a failed mediation is not one of them), its open orders lapse in the
transition that ends it, each on the timeline and in the outbox. A lapsed order is not answered,
escalated or counted again, and no open order is left in the lists on a case no one follows.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy import ColumnElement, and_, exists, select, tuple_, update

from mediation.bodies.models import MEDIATING_KINDS, Body, BodyJurisdiction
from mediation.clocks import counted
from mediation.core.errors import Conflict, NotFound, ValidationFailed
from mediation.core.http import check_if_match, keyset_cursor, keyset_position
from mediation.core.i18n import Text
from mediation.core.principal import BODY_ROLES, SYSTEM, Principal
from mediation.disputes import attention
from mediation.disputes.attention import FINISHED, Attention
from mediation.disputes.lifecycle import STATUS_LABELS, Status
from mediation.disputes.models import Dispute
from mediation.disputes.scope import visible_to
from mediation.disputes.service import OVERDUE_WITHDRAWN, DisputeService
from mediation.supervision.models import SupervisionOrder
from mediation.supervision.schemas import OrderIn, OrderResponseIn, OwnerIn
from mediation.triage.engine import region_prefixes

OPEN = ("issued", "escalated")
LAPSED = "lapsed"
# The orders whose default answer date may still be counted again (clocks.counted).
UNANSWERED = SupervisionOrder.status.in_(OPEN)
# An unanswered order is escalated only while its case is still followed: its orders lapse when
# that ends (`lapse_with_the_case`), and this keeps the scheduler off an ended case all the same.
CASE_OPEN = Dispute.status.not_in(FINISHED)
# The latest answer date an order may set. 督办 asks a body to report within days or weeks (the
# default is MEDIATION_SUPERVISION_RESPONSE_DAYS working days); a mediation itself is to end within
# a month, extended only by the parties' agreement (人民调解工作若干规定 Art. 33), so an answer due
# further out than a quarter supervises nothing, and is taken for a mistyped year (2099-12-31).
LONGEST_ANSWER = timedelta(days=90)


def addressable(dispute: Dispute) -> ColumnElement[bool]:
    """The bodies an order on `dispute` may be addressed to besides the one handling it: active
    mediation bodies whose jurisdiction covers the case's region, the rule triage applies to its
    candidates (`SupervisionService._refuse_unless_addressable` says why no other)."""
    return and_(
        Body.kind.in_(MEDIATING_KINDS),
        Body.active.is_(True),
        exists().where(
            BodyJurisdiction.body_id == Body.id,
            BodyJurisdiction.region_prefix.in_(region_prefixes(dispute.region_code)),
        ),
    )


def _status_label(status: str | None) -> str:
    """A case state as the center names it (已撤回), for the timeline and the refusal."""
    known = {s.value: s for s in Status}
    return STATUS_LABELS[known[status]].zh if status in known else str(status)


class SupervisionService:
    def __init__(self, disputes: DisputeService) -> None:
        self.disputes = disputes
        self.session = disputes.session
        self.clock = disputes.clock

    async def issue(
        self, dispute_id: uuid.UUID, data: OrderIn, principal: Principal, if_match: str | None
    ) -> tuple[SupervisionOrder, Dispute]:
        dispute = await self.disputes.get(dispute_id, principal, for_update=True)
        check_if_match(if_match, dispute.version)
        if dispute.status in FINISHED:
            # An order on a case no one handles any more could never be escalated (CASE_OPEN)
            # and would stay unanswered in the supervisors' lists for good.
            raise Conflict(
                Text(
                    "案件已结束办理 ({s}), 不能再督办",
                    "The case is no longer being handled ({s}); it cannot be supervised",
                ).format(s=dispute.status),
                code="case_finished",
                status_now=dispute.status,
            )
        body_id = data.body_id or dispute.body_id
        body = await self.session.get(Body, body_id) if body_id else None
        if data.body_id is not None and data.body_id != dispute.body_id:
            await self._refuse_unless_addressable(body, dispute)
        if body is None:
            raise ValidationFailed.of_field(
                "body_id",
                "body_required",
                Text("案件尚未指派, 须指明督办对象", "The case has no body yet; name the body addressed"),
            )
        today = self.clock.today()
        if data.due_on is not None and data.due_on < today:
            raise ValidationFailed.of_field(
                "due_on", "in_past", Text("答复期限不能早于今天", "due_on cannot be in the past")
            )
        if data.due_on is not None and data.due_on > today + LONGEST_ANSWER:
            latest = (today + LONGEST_ANSWER).isoformat()
            raise ValidationFailed.of_field(
                "due_on",
                "due_too_far",
                Text(
                    f"答复期限最长为 {LONGEST_ANSWER.days} 日, 不能晚于 {latest}",
                    f"due_on is at most {LONGEST_ANSWER.days} days away: {latest} at the latest",
                ),
            )
        now = self.clock.now()
        order = SupervisionOrder(
            id=uuid.uuid4(),
            dispute_id=dispute.id,
            body_id=body.id,
            instruction=data.instruction,
            status="issued",
            issued_by=principal.id,
            issued_at=now,
            version=1,
        )
        if data.due_on is None:
            # The center's default, in working days: kept with its count (clocks.counted).
            order.count_due(today, self.disputes.settings.supervision_response_days)
        else:
            order.due_on = data.due_on
        due_on = order.due_on
        await self._refuse_if_already_open(dispute, body, data.instruction, due_on)
        self.session.add(order)
        await self.disputes.record_work(
            dispute,
            "supervision_issued",
            principal,
            data.instruction,
            {"order_id": str(order.id), "body_id": str(body.id), "due_on": due_on.isoformat()},
            "supervision_issued",
        )
        return order, dispute

    async def _refuse_unless_addressable(self, body: Body | None, dispute: Dispute) -> None:
        """An order addressed on purpose to a body other than the case's goes only to one the case
        could be given to mediate: an active mediation body whose jurisdiction covers the case's
        region (the rule triage applies to its candidates). Any other could never answer it (only
        the body addressed answers an order, and a court, a center or a suspended body has no one
        who may), the scheduler would escalate it and flag the case for an answer that cannot
        come, and a body of another region would be shown this case's number and instruction."""
        if body is None:
            code, reason = "body_not_found", Text("指定的督办对象不存在", "The body named does not exist")
        elif body.kind not in MEDIATING_KINDS:
            code, reason = (
                "body_not_mediating",
                Text(
                    f"「{body.name}」不是调解组织, 不能作为督办对象",
                    f"{body.name} is not a mediation body; it cannot be addressed an order",
                ),
            )
        elif not body.active:
            code, reason = (
                "body_suspended",
                Text(f"「{body.name}」已暂停工作", f"{body.name} is suspended"),
            )
        elif not await self.session.scalar(select(exists().where(Body.id == body.id, addressable(dispute)))):
            code, reason = (
                "body_outside_jurisdiction",
                Text(
                    f"「{body.name}」的管辖区域不包括本案所在地",
                    f"{body.name}'s jurisdiction does not cover the case's region",
                ),
            )
        else:
            return
        raise ValidationFailed.of_field("body_id", code, reason)

    async def addressable_bodies(self, dispute: Dispute) -> list[Body]:
        """The bodies an order on `dispute` may be addressed to by name (`addressable`), as the
        page offers them."""
        rows = await self.session.scalars(
            select(Body).where(addressable(dispute)).order_by(Body.tier, Body.name, Body.id)
        )
        return list(rows.all())

    async def _refuse_if_already_open(
        self, dispute: Dispute, body: Body, instruction: str, due_on: date
    ) -> None:
        """The same instruction to the same body by the same last day, while the first is not
        answered, is one order sent twice (two supervisors, or a page sent again under a new key):
        it would count twice in the lists and be answered twice. A new last day is a new order (how
        a supervisor presses a body or gives it more time, `follow_the_case`), and so is one sent
        after the first was escalated."""
        open_id = await self.session.scalar(
            select(SupervisionOrder.id).where(
                SupervisionOrder.dispute_id == dispute.id,
                SupervisionOrder.body_id == body.id,
                SupervisionOrder.instruction == instruction,
                SupervisionOrder.due_on == due_on,
                SupervisionOrder.status == "issued",
            )
        )
        if open_id is not None:
            raise Conflict(
                Text(
                    f"已有一项相同的督办 (同一要求、同一答复期限 {due_on.isoformat()}) 发给「{body.name}」且尚未答复, 无需重复督办",
                    f"An identical order (the same instruction, due {due_on.isoformat()}) to {body.name} "
                    "is already open and unanswered",
                ),
                code="order_already_open",
                order_id=str(open_id),
            )

    async def respond(
        self, order_id: uuid.UUID, data: OrderResponseIn, principal: Principal, if_match: str | None
    ) -> SupervisionOrder:
        dispute, order = await self._locked(order_id)
        # Judged once both are locked: a transfer committed meanwhile has taken the order from a
        # body that was its addressee when the request came in.
        if order is None or principal.role not in BODY_ROLES or principal.organisation_id != order.body_id:
            raise NotFound(Text("没有这项督办", "No such supervision order"))
        assert dispute is not None
        if order.status == LAPSED:
            # Closed with its case: nothing is left for the body to report on, and the record keeps
            # why it was not answered. Refused whatever version the body last read: it holds the
            # order's ETag from before the lapse, and no version of it can be answered.
            raise Conflict(
                Text(
                    "这项督办已随案办结 (案件{s}), 无需答复",
                    "This order lapsed with its case ({se}); it is not answered",
                ).format(s=_status_label(order.lapse_reason), se=order.lapse_reason),
                code="order_lapsed",
                lapse_reason=order.lapse_reason,
                lapsed_at=order.lapsed_at.isoformat() if order.lapsed_at else None,
            )
        check_if_match(if_match, order.version)
        if order.status not in OPEN:
            raise Conflict(Text("这项督办已经答复", "This order is already answered"), code="order_answered")
        now = self.clock.now()
        order.status = "responded"
        order.response = data.response
        order.responded_by = principal.id
        order.responded_at = now
        order.version += 1
        if not await self._other_escalated(order):
            await attention.clear(self.disputes, dispute, Attention.supervision_overdue)
        await self.disputes.record_work(
            dispute,
            "supervision_responded",
            principal,
            data.response,
            {"order_id": str(order.id), "late": order.escalated_at is not None},
            "supervision_responded",
        )
        return order

    async def _locked(self, order_id: uuid.UUID) -> tuple[Dispute | None, SupervisionOrder | None]:
        """The order's case, then the order, both locked: the order every transition takes them in
        (a transfer locks the case, then re-addresses its orders), so the two never deadlock."""
        dispute_id = await self.session.scalar(
            select(SupervisionOrder.dispute_id).where(SupervisionOrder.id == order_id)
        )
        if dispute_id is None:
            return None, None
        dispute = await self.disputes.get(dispute_id, SYSTEM, for_update=True)
        order = await self.session.get(
            SupervisionOrder, order_id, with_for_update=True, populate_existing=True
        )
        return dispute, order

    async def follow_the_case(
        self, dispute: Dispute, body_before: uuid.UUID | None, principal: Principal
    ) -> None:
        """The case changed body (`apply`, the case locked): the open orders addressed to the body
        that lost it wait, addressed to nobody; the orders waiting are addressed to the body that
        took it (the module's docstring says why)."""
        if body_before is not None and body_before != dispute.body_id:
            leaving = await self.session.scalars(
                select(SupervisionOrder)
                .where(
                    SupervisionOrder.dispute_id == dispute.id,
                    SupervisionOrder.body_id == body_before,
                    UNANSWERED,
                )
                .with_for_update()
            )
            for order in leaving.all():
                order.body_id = None
                order.version += 1
        if dispute.body_id is None:
            await self.session.flush()
            return
        waiting = list(
            (
                await self.session.scalars(
                    select(SupervisionOrder)
                    .where(
                        SupervisionOrder.dispute_id == dispute.id,
                        SupervisionOrder.body_id.is_(None),
                        UNANSWERED,
                    )
                    .order_by(SupervisionOrder.issued_at, SupervisionOrder.id)
                    .with_for_update()
                )
            ).all()
        )
        if not waiting:
            await self.session.flush()
            return
        body = await self.session.get(Body, dispute.body_id)
        name = body.name if body is not None else str(dispute.body_id)
        # An order escalated before it moved is still late: the flag an assignment clears is kept.
        if any(o.status == "escalated" for o in waiting):
            attention.flag(dispute, Attention.supervision_overdue)
        for order in waiting:
            # The last day stays as the supervisor set it: it is the supervisor's day for the case,
            # and a transfer must not buy the case time out of supervision; a default day keeps its
            # count and is counted again like any other (clocks.counted: the body keeps at least
            # the day it was told). A day that passed while the case waited at the center is
            # escalated at the scheduler's next pass, against the body now holding the case: the
            # supervisor still has no answer, and more time is theirs to give, by a new order.
            order.body_id = dispute.body_id
            order.version += 1
            await self.disputes.record_work(
                dispute,
                "supervision_readdressed",
                principal,
                f"督办随案转交「{name}」办理, 答复期限仍为 {order.due_on.isoformat()}",
                {
                    "order_id": str(order.id),
                    "body_id": str(dispute.body_id),
                    "due_on": order.due_on.isoformat(),
                },
                # To the body taking the case, the order is one newly addressed to it: the event its
                # systems already take for an order (the payload's `action` says how it came).
                "supervision_issued",
            )

    async def lapse_with_the_case(self, dispute: Dispute, principal: Principal) -> None:
        """The case's follow-up ended (`apply`, the case locked, in the transition's transaction):
        its open orders lapse with it (随案办结), whichever body they are addressed to, or none."""
        rows = await self.session.scalars(
            select(SupervisionOrder)
            .where(SupervisionOrder.dispute_id == dispute.id, UNANSWERED)
            .order_by(SupervisionOrder.issued_at, SupervisionOrder.id)
            .with_for_update()
        )
        now = self.clock.now()
        for order in rows.all():
            order.status, order.lapsed_at, order.lapse_reason = LAPSED, now, dispute.status
            order.version += 1
            await self.disputes.record_work(
                dispute,
                "supervision_lapsed",
                principal,
                f"案件{_status_label(dispute.status)}, 督办随案办结",
                {
                    "order_id": str(order.id),
                    "body_id": str(order.body_id) if order.body_id else None,
                    "due_on": order.due_on.isoformat(),
                    "lapse_reason": dispute.status,
                },
                "supervision_lapsed",
            )

    async def _other_escalated(self, order: SupervisionOrder) -> bool:
        other = await self.session.scalar(
            select(SupervisionOrder.id).where(
                SupervisionOrder.dispute_id == order.dispute_id,
                SupervisionOrder.status == "escalated",
                SupervisionOrder.id != order.id,
            )
        )
        return other is not None

    async def overdue_orders(self) -> list[uuid.UUID]:
        rows = await self.session.scalars(
            select(SupervisionOrder.id)
            .join(Dispute, Dispute.id == SupervisionOrder.dispute_id)
            .where(
                SupervisionOrder.status == "issued",
                SupervisionOrder.due_on < self.clock.today(),
                SupervisionOrder.body_id.is_not(None),  # waiting for the case's next body
                CASE_OPEN,
            )
        )
        return list(rows.all())

    async def escalate(self, order_id: uuid.UUID) -> bool:
        """The scheduler's step: issued and past its last day -> escalated, by one conditional
        UPDATE so that of two schedulers only one reports it. An order waiting for the case's next
        body is not escalated: no body holds the case to answer it."""
        dispute, _ = await self._locked(order_id)
        if dispute is None:
            return False
        now = self.clock.now()
        result = await self.session.execute(
            update(SupervisionOrder)
            .where(
                SupervisionOrder.id == order_id,
                SupervisionOrder.status == "issued",
                SupervisionOrder.due_on < self.clock.today(),
                SupervisionOrder.body_id.is_not(None),
                SupervisionOrder.dispute_id.in_(select(Dispute.id).where(CASE_OPEN)),
            )
            .values(status="escalated", escalated_at=now, version=SupervisionOrder.version + 1)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        order = await self.session.get(SupervisionOrder, order_id, populate_existing=True)
        assert order is not None
        attention.flag(dispute, Attention.supervision_overdue)
        await self.disputes.record_work(
            dispute,
            "supervision_escalated",
            SYSTEM,
            f"督办逾期未答复 (期限 {order.due_on.isoformat()}), 已升级",
            {"order_id": str(order.id), "body_id": str(order.body_id), "due_on": order.due_on.isoformat()},
            "supervision_escalated",
        )
        return True

    async def recount(self, order_id: uuid.UUID) -> bool:
        """A default answer date counted before its year's holidays were loaded, counted again
        (clocks.counted: only ever later). An order escalated on the old date that is no longer
        late goes back to waiting for its answer, and is escalated again if the new date passes."""
        dispute, order = await self._locked(order_id)
        if dispute is None or order is None or order.status not in OPEN or dispute.status in FINISHED:
            return False
        before = order.recount()
        if before is None:
            return False
        order.version += 1
        withdrawn = order.status == "escalated" and order.due_on >= self.clock.today()
        if withdrawn:
            order.status, order.escalated_at = "issued", None
            if not await self._other_escalated(order):
                await attention.clear(self.disputes, dispute, Attention.supervision_overdue)
        await self.disputes.record_work(
            dispute,
            "clock_recounted",
            SYSTEM,
            await counted.recount_reason("督办答复期限", before, order.due_on, self.session)
            + (OVERDUE_WITHDRAWN if withdrawn else ""),
            {
                "clock": "supervision_response",
                "due_on": order.due_on.isoformat(),
                "previous_due_on": before.isoformat(),
                "provisional": order.provisional,
                "source": f"中心工作规范: 督办 {order.working_days} 个工作日内答复",
                "order_id": str(order.id),
                "overdue_withdrawn": withdrawn,
            },
            "clock_recounted",
        )
        return True

    async def provisional(self, recent_years: list[int]) -> list[uuid.UUID]:
        """Open orders whose default answer date a count on today's calendar changes, on cases still
        being handled: an order on a case that ended is never escalated (CASE_OPEN), so its date
        matters no more, and the ended case is not written to for it."""
        still_supervised = and_(
            UNANSWERED, SupervisionOrder.dispute_id.in_(select(Dispute.id).where(CASE_OPEN))
        )
        return await counted.due_for_recount(self.session, SupervisionOrder, still_supervised, recent_years)

    async def get(self, order_id: uuid.UUID, principal: Principal) -> tuple[SupervisionOrder, str]:
        row = (
            await self.session.execute(self._visible(principal).where(SupervisionOrder.id == order_id))
        ).first()
        if row is None:
            raise NotFound(Text("没有这项督办", "No such supervision order"))
        return row[0], row[1]

    def _visible(self, principal: Principal):  # type: ignore[no-untyped-def]
        """A body sees the orders addressed to it; center staff the orders on cases they see."""
        query = select(SupervisionOrder, Dispute.case_number).join(
            Dispute, Dispute.id == SupervisionOrder.dispute_id
        )
        if principal.role in BODY_ROLES:
            return query.where(SupervisionOrder.body_id == principal.organisation_id)
        return query.where(visible_to(principal))

    async def search(
        self,
        principal: Principal,
        *,
        dispute_id: uuid.UUID | None,
        status: str | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[tuple[SupervisionOrder, str]], str | None]:
        query = self._visible(principal)
        if dispute_id is not None:
            query = query.where(SupervisionOrder.dispute_id == dispute_id)
        if status is not None:
            query = query.where(SupervisionOrder.status == status)
        if cursor is not None:
            due, last = keyset_position(cursor, date.fromisoformat)
            query = query.where(tuple_(SupervisionOrder.due_on, SupervisionOrder.id) > tuple_(due, last))
        rows = (
            await self.session.execute(
                query.order_by(SupervisionOrder.due_on, SupervisionOrder.id).limit(limit + 1)
            )
        ).all()
        items = [(o, n) for o, n in rows[:limit]]
        next_cursor = None
        if len(rows) > limit and items:
            last_order = items[-1][0]
            next_cursor = keyset_cursor(last_order.due_on, last_order.id)
        return items, next_cursor

    async def set_owner(
        self, dispute_id: uuid.UUID, data: OwnerIn | None, principal: Principal, if_match: str | None
    ) -> Dispute:
        """包案: name (or clear, with None) the official who owns the case."""
        dispute = await self.disputes.get(dispute_id, principal, for_update=True)
        check_if_match(if_match, dispute.version)
        if data is None:
            if dispute.owner is None:
                raise Conflict(Text("该案没有包案领导", "The case has no owner"), code="no_owner")
            dispute.owner = None
            await self.disputes.record_work(dispute, "owner_cleared", principal, None, {}, "owner_changed")
            return dispute
        owner = {
            "name": data.name,
            "title": data.title,
            "user_id": str(data.user_id) if data.user_id else None,
            "since": self.clock.today().isoformat(),
            "set_by": principal.id,
        }
        dispute.owner = owner
        await self.disputes.record_work(
            dispute,
            "owner_set",
            principal,
            data.reason,
            {"owner": owner},
            "owner_changed",
            timeline_only={"note": data.note},
        )
        return dispute
