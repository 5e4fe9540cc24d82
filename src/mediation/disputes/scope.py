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
    match rule_for(principal):
        case ("all", _):
            return true()
        case ("region", str(prefix)):
            return Dispute.region_code.startswith(prefix)
        case ("body", uuid.UUID() as body):
            return Dispute.body_id == body
        case ("handoff", uuid.UUID() as target):
            return Dispute.handoff_target_id == target
    return false()


def scope_clause(kind: str) -> ColumnElement[bool]:
    """`visible_to` for every caller of one kind of rule, its value left as the bound parameter
    `scope`: a statement built with it once serves every request (see `scope_params`)."""
    match kind:
        case "all":
            return true()
        case "region":
            return Dispute.region_code.startswith(bindparam("scope", type_=Dispute.region_code.type))
        case "body":
            return Dispute.body_id == bindparam("scope", type_=Dispute.body_id.type)
        case "handoff":
            return Dispute.handoff_target_id == bindparam("scope", type_=Dispute.handoff_target_id.type)
    return false()


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
