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
   is still followed by the center (FINISHED): its orders lapse when that ends.
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

# A case whose follow-up by the center (跟踪督办) has ended: it is not supervised, its open orders
# lapse with the transition that brings it here (supervision.service, 随案办结), and no order keeps it
# before a supervisor (a risk does: the danger does not end with the case, Art. 25). These states lead
# only to one another, so a case never leaves them.
# - declined: never taken in; closed, archived: concluded.
# - withdrawn: a party ended the mediation (人民调解法 Art. 23); the case only waits to be closed,
#   and no body has anything left to do on it that an order could ask for.
# - referred_arbitration, referred_litigation: handed on for good to a commission or a court, which
#   decides it; the mediation body can no longer act on it, only the outcome comes back.
# Not mediation_failed: the failure ends the mediation, not the follow-up. The parties are told the
# other routes (Art. 26), and the center hands the case on to arbitration or litigation (domain §1:
# it "hands it on when mediation ends"; the body or the center refers it): until it is handed on or
# closed, an order on it (say, to refer it) still has a body to answer it, and is escalated unanswered.
# Nor confirmation_pending: the court's ruling may send the case back to the body (a withdrawal, a
# rejection and re-mediation), and the body follows the agreement's performance (Art. 31).
FINISHED = (
    Status.declined.value,
    Status.withdrawn.value,
    Status.referred_arbitration.value,
    Status.referred_litigation.value,
    Status.closed.value,
    Status.archived.value,
)


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
