"""Why a supervisor must look at a case now (`Dispute.attention`).

The case carries one reason: the most urgent of those that hold. A more urgent reason replaces a
less urgent one; when the reason shown stops holding, the next one that still holds takes its place,
so a case never drops off the supervisors' list while something still needs them.

1. `risk`: words of violence, self-harm or gathering (人民调解法 Art. 25: a mediator who finds a
   dispute may turn violent takes preventive measures and reports it at once). Held while its alert
   is not resolved.
2. `triage_exhausted`: every body that could take the case returned it, and none is left. The case
   goes nowhere until a supervisor decides, and until then an order to a body cannot be answered.
3. `supervision_overdue`: a 督办 order went unanswered past its day (escalated). Held while the case
   is still being handled: a case closed, archived or declined is not supervised any more.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import exists, select

from mediation.alerts.models import Alert, AlertCase
from mediation.disputes.lifecycle import Status
from mediation.disputes.models import Dispute
from mediation.supervision.models import SupervisionOrder

if TYPE_CHECKING:
    from mediation.disputes.service import DisputeService


class Attention(StrEnum):
    """Why a case waits for a supervisor."""

    triage_exhausted = "triage_exhausted"  # every candidate body returned it, or none covers it
    supervision_overdue = "supervision_overdue"  # a 督办 order went unanswered past its deadline
    risk = "risk"  # words of violence, self-harm or gathering (人民调解法 Art. 25)


URGENCY = (Attention.risk, Attention.triage_exhausted, Attention.supervision_overdue)

# A case no one handles any more: it is not supervised, and an order on it left unanswered no longer
# keeps it before a supervisor (a risk does: the danger does not end with the case, Art. 25).
FINISHED = (Status.closed.value, Status.archived.value, Status.declined.value)


def flag(dispute: Dispute, reason: Attention) -> None:
    """`reason` now holds: shown unless a more urgent one already is."""
    current = dispute.attention
    if current is None or URGENCY.index(reason) < URGENCY.index(Attention(current)):
        dispute.attention = reason


async def clear(service: DisputeService, dispute: Dispute, reason: Attention) -> None:
    """`reason` no longer holds (the caller knows: its own change is not written yet). If it was
    the one shown, the most urgent reason that still holds is shown instead, or none."""
    if dispute.attention != reason:
        return
    dispute.attention = None
    for other in URGENCY:
        if other != reason and await _holds(service, dispute, other):
            dispute.attention = other
            return


async def _holds(service: DisputeService, dispute: Dispute, reason: Attention) -> bool:
    session = service.session
    if reason == Attention.risk:
        open_risk = (
            select(AlertCase.id)
            .join(Alert, Alert.id == AlertCase.alert_id)
            .where(AlertCase.dispute_id == dispute.id, Alert.kind == "risk", Alert.status != "resolved")
        )
        return bool(await session.scalar(select(exists(open_risk))))
    if reason == Attention.supervision_overdue:
        if dispute.status in FINISHED:
            return False
        escalated = select(SupervisionOrder.id).where(
            SupervisionOrder.dispute_id == dispute.id, SupervisionOrder.status == "escalated"
        )
        return bool(await session.scalar(select(exists(escalated))))
    # Exhausted as the lifecycle finds it (a return, transfer or escalation leaving no candidate):
    # waiting for a body, after at least one had it, with none left to send it to.
    if dispute.status != Status.accepted or dispute.body_id is not None:
        return False
    if not await service.triage.history(dispute.id):
        return False
    return not (await service.triage.evaluate(dispute)).candidates
