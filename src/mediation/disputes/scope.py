"""Object-level authorisation: which cases a caller can see at all.

A center's clerks and supervisors see the cases of its region; a mediation body sees the cases
assigned to it; a court or arbitration commission sees the cases handed to it (confirmation
requests, referrals). Everyone else sees none. Queries filter with this clause, so lists never
include a case outside it and reading one answers 404 exactly as for a case that does not exist.
"""

from __future__ import annotations

import uuid
from typing import Literal

from sqlalchemy import ColumnElement, bindparam, false, true

from mediation.core.principal import BODY_ROLES, CENTER_ROLES, Principal, Role
from mediation.disputes.models import Dispute
from mediation.events.models import OutboxEvent

Rule = (
    tuple[Literal["all"], None]
    | tuple[Literal["region"], str]
    | tuple[Literal["body", "handoff"], uuid.UUID]
    | tuple[Literal["none"], None]
)


def rule_for(principal: Principal) -> Rule:
    """The one place that decides what a role sees; `visible_to` and `sees` apply it."""
    role, organisation = principal.role, principal.organisation_id
    if role == Role.system:
        return ("all", None)
    if role in CENTER_ROLES and principal.region:
        return ("region", principal.region)
    if role in BODY_ROLES and organisation is not None:
        return ("body", organisation)
    if role in (Role.court, Role.arbitration) and organisation is not None:
        return ("handoff", organisation)
    return ("none", None)


def visible_to(principal: Principal) -> ColumnElement[bool]:
    """As a query clause."""
    kind, value = rule_for(principal)
    return scope_clause(kind, value)


def scope_clause(kind: str, value: object = None) -> ColumnElement[bool]:
    """A scope rule as a query clause. Without `value` it is left as the bound parameter `scope`:
    a statement built with it once serves every caller of that kind (see `scope_params`)."""
    if kind in ("region", "body", "handoff"):
        column = {
            "region": Dispute.region_code,
            "body": Dispute.body_id,
            "handoff": Dispute.handoff_target_id,
        }[kind]
        param = bindparam("scope", value, type_=column.type, unique=value is not None)
        return column.startswith(param) if kind == "region" else column == param
    return true() if kind == "all" else false()


RULE_KINDS = ("all", "region", "body", "handoff", "none")


def scope_params(principal: Principal) -> tuple[str, dict[str, object]]:
    """The rule's kind and the parameters a `scope_clause` statement takes for this caller."""
    kind, value = rule_for(principal)
    return kind, ({} if value is None else {"scope": value})


def sees(principal: Principal, dispute: Dispute) -> bool:
    """For a case already loaded (event fan-out)."""
    match rule_for(principal):
        case ("all", _):
            return True
        case ("region", str(prefix)):
            return dispute.region_code.startswith(prefix)
        case ("body", uuid.UUID() as body):
            return dispute.body_id == body
        case ("handoff", uuid.UUID() as target):
            return dispute.handoff_target_id == target
    return False


def event_visible_to(principal: Principal) -> ColumnElement[bool]:
    """Which events a caller reads, as a query clause over events joined with their cases. A
    center reads its region's (a case never leaves its region). A body or a court reads the events
    addressed to it when they happened (OutboxEvent.body_id, target_id): those of a case it
    transferred or that was mediated again stay in its feed, the one that took the case away
    included, and none after it."""
    kind, value = rule_for(principal)
    if kind == "body":
        return OutboxEvent.body_id == bindparam("scope", value, type_=OutboxEvent.body_id.type, unique=True)
    if kind == "handoff":
        return OutboxEvent.target_id == bindparam(
            "scope", value, type_=OutboxEvent.target_id.type, unique=True
        )
    return scope_clause(kind, value)


def sees_event(principal: Principal, event: OutboxEvent, dispute: Dispute) -> bool:
    """`event_visible_to` for an event and its case already loaded (webhook fan-out)."""
    match rule_for(principal):
        case ("body", uuid.UUID() as body):
            return event.body_id == body
        case ("handoff", uuid.UUID() as target):
            return event.target_id == target
    return sees(principal, dispute)
