"""Who is calling, and what each role may do.

Roles come from domain.md §2: window clerks and supervisors belong to a center and see its region;
mediators and body administrators belong to one mediation body; courts and arbitration
commissions are machine clients scoped to themselves; admins manage accounts; auditors read the
audit trail. Permissions are fixed per role (least privilege, 个人信息保护法 Art. 51): the ones that
show personal data unmasked are given only to roles that must contact or identify the parties.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

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
    party = "party"  # anonymous status lookup with case number and query code


class Permission(StrEnum):
    cases_read = "cases:read"
    cases_write = "cases:write"
    pii_read = "pii:read"  # see ID and phone numbers unmasked; every such read is audited
    supervise = "supervise"
    users_manage = "users:manage"
    keys_manage = "keys:manage"  # any organisation's API keys
    keys_manage_own = "keys:manage_own"  # the caller's own organisation's keys
    audit_read = "audit:read"
    registry_manage = "registry:manage"  # the body registry and the triage rules
    stats_read = "stats:read"  # statistics over the cases the caller can see
    # Subscribe the caller's organisation's webhooks, rotate their secrets, disable, enable and
    # redeliver them: its administrator's (a body's mediators read them, and do not redirect them).
    webhooks_manage = "webhooks:manage"


# The roles as a message names them, in either language.
ROLE_NAMES: dict[Role, Text] = {
    Role.clerk: Text("窗口受理员", "intake clerk"),
    Role.supervisor: Text("督办人员", "supervisor"),
    Role.body_mediator: Text("调解员", "mediator"),
    Role.body_admin: Text("调解组织管理员", "mediation body administrator"),
    Role.court: Text("人民法院", "people's court"),
    Role.arbitration: Text("仲裁委员会", "arbitration commission"),
    Role.admin: Text("系统管理员", "system administrator"),
    Role.auditor: Text("审计员", "auditor"),
    Role.system: Text("系统", "system"),
    Role.party: Text("当事人", "party"),
}

# What a refusal names, in the reader's language (the code itself is in the problem's extension).
PERMISSION_NAMES: dict[Permission, str] = {
    Permission.cases_read: "查看案件",
    Permission.cases_write: "办理案件",
    Permission.pii_read: "查看完整身份信息",
    Permission.supervise: "督办",
    Permission.users_manage: "管理账号",
    Permission.keys_manage: "管理接口密钥",
    Permission.keys_manage_own: "管理本单位接口密钥",
    Permission.audit_read: "查阅审计记录",
    Permission.registry_manage: "管理调解组织名录和分流规则",
    Permission.stats_read: "查看统计",
    Permission.webhooks_manage: "管理事件推送订阅",
}

P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.clerk: frozenset({P.cases_read, P.cases_write, P.pii_read, P.stats_read, P.webhooks_manage}),
    Role.supervisor: frozenset({P.cases_read, P.cases_write, P.supervise, P.stats_read, P.webhooks_manage}),
    Role.body_mediator: frozenset({P.cases_read, P.cases_write, P.pii_read}),
    Role.body_admin: frozenset(
        {P.cases_read, P.cases_write, P.pii_read, P.keys_manage_own, P.stats_read, P.webhooks_manage}
    ),
    Role.court: frozenset({P.cases_read, P.cases_write, P.pii_read, P.webhooks_manage}),
    Role.arbitration: frozenset({P.cases_read, P.cases_write, P.pii_read, P.webhooks_manage}),
    Role.admin: frozenset({P.users_manage, P.keys_manage, P.registry_manage}),
    Role.auditor: frozenset({P.audit_read}),
    Role.system: frozenset(Permission),
    Role.party: frozenset(),
}

# What a machine client's API key never holds, whatever its role: a key that could make keys could
# make one that outlives it (never expiring, or kept when it is revoked), so revoking a leaked key
# would not end what it did. The people of an organisation manage its keys, signed in.
STAFF_ONLY = frozenset({P.keys_manage, P.keys_manage_own, P.users_manage})
KEY_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    role: granted - STAFF_ONLY for role, granted in ROLE_PERMISSIONS.items()
}

# Who belongs to which kind of organisation (checked when accounts and keys are created).
STAFF_ROLES = frozenset(
    {Role.clerk, Role.supervisor, Role.body_mediator, Role.body_admin, Role.admin, Role.auditor}
)
MACHINE_ROLES = frozenset({Role.body_mediator, Role.body_admin, Role.court, Role.arbitration})
CENTER_ROLES = frozenset({Role.clerk, Role.supervisor})
BODY_ROLES = frozenset({Role.body_mediator, Role.body_admin})


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    id: str
    organisation_id: uuid.UUID | None = None
    # The region prefix a center's staff see (region_prefix of the center's code), else None.
    region: str | None = None
    kind: str = "user"  # user | api_key | anonymous | system
    name: str | None = None
    # An API key's lineage: the first key of its chain of rotations (ApiKey.lineage_id).
    lineage_id: str | None = None

    @property
    def scope(self) -> str:
        """The caller, as its rate limit counts it: one caller's requests never count against
        another's. An API key and the keys rotated from it are one caller: the old key works on
        beside its successor so that a client can switch over at any moment, and a client sending
        with both during the overlap has the one allowance, not one for each key. Another key of
        the same organisation is another caller, with an allowance of its own."""
        if self.kind == "api_key" and self.lineage_id is not None:
            return f"api_key:{self.lineage_id}"
        return f"{self.kind}:{self.id}"

    @property
    def idempotency_scope(self) -> str:
        """The namespace for idempotency keys: the caller's (`scope`), so that a retry with the
        rotated key of a request the old key sent is the same request."""
        return self.scope

    @property
    def permissions(self) -> frozenset[Permission]:
        return (KEY_PERMISSIONS if self.kind == "api_key" else ROLE_PERMISSIONS)[self.role]

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


SYSTEM = Principal(role=Role.system, id="system", kind="system")
