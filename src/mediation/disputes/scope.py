"""Object-level authorisation: which cases a caller can see at all.

A center's clerks and supervisors see the cases of its region; a mediation body sees the cases
assigned to it; a court or arbitration commission sees the cases handed to it (confirmation
requests, referrals). Everyone else sees none. Queries filter with this clause, so lists never
include a case outside it and reading one answers 404 exactly as for a case that does not exist.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, true

from mediation.core.principal import BODY_ROLES, CENTER_ROLES, Principal, Role
from mediation.disputes.models import Dispute


def visible_to(principal: Principal) -> ColumnElement[bool]:
    role, organisation = principal.role, principal.organisation_id
    if role == Role.system:
        return true()
    if role in CENTER_ROLES and principal.region:
        return Dispute.region_code.startswith(principal.region)
    if role in BODY_ROLES and organisation is not None:
        return Dispute.body_id == organisation
    if role in (Role.court, Role.arbitration) and organisation is not None:
        return Dispute.handoff_target_id == organisation
    return false()


def sees(principal: Principal, dispute: Dispute) -> bool:
    """The same rule as `visible_to`, for a case already loaded (event fan-out)."""
    role, organisation = principal.role, principal.organisation_id
    if role == Role.system:
        return True
    if role in CENTER_ROLES and principal.region:
        return dispute.region_code.startswith(principal.region)
    if role in BODY_ROLES and organisation is not None:
        return dispute.body_id == organisation
    if role in (Role.court, Role.arbitration) and organisation is not None:
        return dispute.handoff_target_id == organisation
    return False
