"""Who is calling.

Until staff sign-in and API keys land, callers declare themselves with `X-Actor-Role` and
`X-Actor-Id` headers (default: an unnamed window clerk). The role is checked against the lifecycle
table and recorded on the timeline; it is a declaration, not authentication, so this mode is for
trusted networks only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Header

from mediation.core.errors import ValidationFailed
from mediation.core.i18n import Text


class Role(StrEnum):
    clerk = "clerk"
    supervisor = "supervisor"
    body_mediator = "body_mediator"
    body_admin = "body_admin"
    court = "court"
    arbitration = "arbitration"
    admin = "admin"
    auditor = "auditor"
    system = "system"


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    id: str
    organisation_id: uuid.UUID | None = None

    @property
    def scope(self) -> str:
        """The namespace for idempotency keys: one caller's keys never collide with another's."""
        return f"{self.role}:{self.id}"


SYSTEM = Principal(role=Role.system, id="system")


async def current_principal(
    x_actor_role: Annotated[
        str | None, Header(alias="X-Actor-Role", description="Caller's role (pre-authentication mode).")
    ] = None,
    x_actor_id: Annotated[
        str | None, Header(alias="X-Actor-Id", max_length=100, description="Caller's user or client id.")
    ] = None,
    x_actor_org: Annotated[
        uuid.UUID | None, Header(alias="X-Actor-Org", description="Caller's organisation id.")
    ] = None,
) -> Principal:
    role_name = x_actor_role or Role.clerk.value
    try:
        role = Role(role_name)
    except ValueError as exc:
        raise ValidationFailed(
            Text("未知角色: {r}", "Unknown role: {r}").format(r=role_name),
            errors=[{"field": "X-Actor-Role", "location": "header", "code": "enum", "message": role_name}],
        ) from exc
    return Principal(role=role, id=x_actor_id or f"anonymous-{role.value}", organisation_id=x_actor_org)
