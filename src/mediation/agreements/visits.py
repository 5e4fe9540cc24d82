"""Follow-up visits (回访) after a case is closed, and the follow-up task lists.

The task is opened when the case closes (`DisputeService`), in the inbox of the body that handled
it or of the center. Each try is recorded; a visit that reaches the parties records how, their
satisfaction (1-5) and whether the agreement is being performed; after the configured number of
unreachable tries, or with a stated reason, the visit is recorded as impossible. Either way the
case may then be archived (guard `follow_up_visit_recorded`, 人民调解法 Art. 27).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, tuple_

from mediation.agreements.models import FollowUp
from mediation.agreements.schemas import VisitImpossibleIn, VisitIn
from mediation.core.errors import Conflict, NotFound, ValidationFailed
from mediation.core.http import check_if_match, keyset_cursor, keyset_position
from mediation.core.i18n import Text
from mediation.core.principal import BODY_ROLES, CENTER_ROLES, SYSTEM, Principal, Role
from mediation.disputes.models import Dispute
from mediation.disputes.scope import visible_to
from mediation.disputes.service import DisputeService


class VisitService:
    def __init__(self, disputes: DisputeService) -> None:
        self.disputes = disputes
        self.session = disputes.session
        self.clock = disputes.clock

    def _mine(self, principal: Principal) -> Any:
        """A body works its own tasks; the center works every task on the cases of its region."""
        if principal.role in BODY_ROLES:
            return FollowUp.body_id == principal.organisation_id
        if principal.role in CENTER_ROLES | {Role.system}:
            return visible_to(principal)
        return FollowUp.id.is_(None)

    async def _task(
        self, follow_up_id: uuid.UUID, principal: Principal, if_match: str | None
    ) -> tuple[FollowUp, Dispute]:
        """The open visit task and its case, both locked: the case first, then the task, the order
        in which archiving (which settles the visit) and every other change to a case take them,
        so that a visit recorded while the case is archived waits instead of deadlocking. A visit
        lands on the case's timeline and may let it be archived: it is held to the case's ETag
        (`if_match`), as every change of the case is."""
        scoped = (
            select(FollowUp)
            .join(Dispute, Dispute.id == FollowUp.dispute_id)
            .where(FollowUp.id == follow_up_id, FollowUp.kind == "visit", self._mine(principal))
        )
        missing = NotFound(Text("没有这项回访任务", "No such visit task"))
        dispute_id = await self.session.scalar(scoped.with_only_columns(FollowUp.dispute_id))
        if dispute_id is None:
            raise missing
        # The task's scope is checked; the case is locked for the timeline entry.
        dispute = await self.disputes.get(dispute_id, SYSTEM, for_update=True)
        task = await self.session.scalar(
            scoped.with_for_update(of=FollowUp).execution_options(populate_existing=True)
        )
        if task is None:
            raise missing
        check_if_match(if_match, dispute.version)
        if task.status != "open":
            raise Conflict(Text("这项回访已办结", "This visit is already recorded"), code="visit_recorded")
        return task, dispute

    async def visit(
        self, follow_up_id: uuid.UUID, data: VisitIn, principal: Principal, if_match: str | None
    ) -> tuple[FollowUp, Dispute]:
        task, dispute = await self._task(follow_up_id, principal, if_match)
        self._check_visited_on(data.visited_on, dispute)
        now = self.clock.now()
        attempt = {**data.model_dump(mode="json"), "recorded_at": now.isoformat(), "by": principal.id}
        task.attempts = [*(task.attempts or []), attempt]
        if data.reached:
            assert data.satisfaction is not None
            self._finish(task, "done", {"outcome": "visited", **data.model_dump(mode="json")}, principal, now)
            dispute.satisfaction = data.satisfaction
            action, reason = "visit_completed", data.notes
        elif len(task.attempts) >= self.disputes.settings.visit_max_attempts:
            outcome = {"outcome": "unreachable", "attempts": len(task.attempts)}
            self._finish(task, "impossible", outcome, principal, now)
            action, reason = "visit_impossible", f"连续 {len(task.attempts)} 次联系不上当事人"
        else:
            action, reason = "visit_attempted", data.notes
        await self.disputes.record_work(
            dispute,
            action,
            principal,
            reason,
            {
                "follow_up_id": str(task.id),
                "attempt": len(task.attempts),
                "reached": data.reached,
                "contact_method": data.contact_method.value,
                "satisfaction": data.satisfaction,
                "agreement_performed": data.agreement_performed,
            },
            action,
        )
        return task, dispute

    def _check_visited_on(self, visited_on: date, dispute: Dispute) -> None:
        """The visit (回访) follows the closing of the case (人民调解法 Art. 27: the body files the case
        after it; the center's close-the-loop practice, domain §4.4), and asks after the agreement's
        performance (Art. 31), which begins when it took effect: a try dated before either, or
        after today, did not happen as recorded."""
        if visited_on > self.clock.today():
            raise ValidationFailed.of_field(
                "visited_on", "in_future", Text("回访日期不能晚于今天", "visited_on cannot be in the future")
            )
        closed = dispute.closed_at.astimezone(self.clock.zone).date() if dispute.closed_at else None
        if closed is not None and visited_on < closed:
            raise ValidationFailed.of_field(
                "visited_on",
                "before_closing",
                Text(
                    "回访日期不能早于结案日 ({d}): 回访在结案后进行",
                    "visited_on cannot be before the case was closed ({d}): the visit follows closing",
                ).format(d=closed.isoformat()),
            )
        effective = dispute.agreement_effective_on
        if effective is not None and visited_on < effective:
            raise ValidationFailed.of_field(
                "visited_on",
                "before_effective",
                Text(
                    "回访日期不能早于调解协议生效日 ({d})",
                    "visited_on cannot be before the agreement took effect ({d})",
                ).format(d=effective.isoformat()),
            )

    async def impossible(
        self, follow_up_id: uuid.UUID, data: VisitImpossibleIn, principal: Principal, if_match: str | None
    ) -> tuple[FollowUp, Dispute]:
        task, dispute = await self._task(follow_up_id, principal, if_match)
        now = self.clock.now()
        self._finish(task, "impossible", {"outcome": "impossible", "reason": data.reason}, principal, now)
        await self.disputes.record_work(
            dispute,
            "visit_impossible",
            principal,
            data.reason,
            {"follow_up_id": str(task.id)},
            "visit_impossible",
        )
        return task, dispute

    def _finish(
        self, task: FollowUp, status: str, result: dict[str, Any], principal: Principal, now: datetime
    ) -> None:
        task.status, task.result = status, result
        task.done_at, task.done_by = now, principal.id

    async def search(
        self,
        principal: Principal,
        *,
        kind: str | None,
        status: str | None,
        dispute_id: uuid.UUID | None,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[tuple[FollowUp, str]], str | None]:
        query = (
            select(FollowUp, Dispute.case_number)
            .join(Dispute, Dispute.id == FollowUp.dispute_id)
            .where(self._mine(principal))
        )
        if kind is not None:
            query = query.where(FollowUp.kind == kind)
        if status is not None:
            query = query.where(FollowUp.status == status)
        if dispute_id is not None:
            query = query.where(FollowUp.dispute_id == dispute_id)
        if cursor is not None:
            due, last = keyset_position(cursor, date.fromisoformat)
            query = query.where(tuple_(FollowUp.due_on, FollowUp.id) > tuple_(due, last))
        rows = (
            await self.session.execute(query.order_by(FollowUp.due_on, FollowUp.id).limit(limit + 1))
        ).all()
        items = [(f, n) for f, n in rows[:limit]]
        next_cursor = (
            keyset_cursor(items[-1][0].due_on, items[-1][0].id) if len(rows) > limit and items else None
        )
        return items, next_cursor
