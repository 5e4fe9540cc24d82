"""Accounts and API keys: create, sign in, rotate, revoke. Services flush; the caller commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.bodies.models import ARBITRATION_KINDS, MEDIATING_KINDS, Body, BodyKind
from mediation.core.db import utcnow
from mediation.core.errors import Conflict, NotFound, Unauthenticated, ValidationFailed
from mediation.core.i18n import Text
from mediation.core.principal import (
    BODY_ROLES,
    CENTER_ROLES,
    MACHINE_ROLES,
    STAFF_ROLES,
    Permission,
    Principal,
    Role,
)
from mediation.identity.auth import organisation_suspended
from mediation.identity.credentials import IssuedToken, Passwords, Tokens, new_api_key
from mediation.identity.models import ApiKey, User


# Which kind of organisation each role belongs to (None: no organisation).
def organisation_fits(role: Role, organisation: Body | None) -> bool:
    kind = organisation.kind if organisation else None
    if role in CENTER_ROLES:
        return kind == BodyKind.mediation_center
    if role in BODY_ROLES:
        return kind in MEDIATING_KINDS
    if role == Role.court:
        return kind == BodyKind.court
    if role == Role.arbitration:
        return kind in ARBITRATION_KINDS
    if role in (Role.admin, Role.auditor):
        return organisation is None or kind == BodyKind.mediation_center
    return False


def normalised_username(typed: str) -> str:
    """The account a typed username names: surrounding spaces are not part of it. Every sign-in
    path, and its guessing limit, keys on this form, so padding cannot make a fresh name."""
    return typed.strip()


def _invalid(field: str, code: str, text: Text) -> ValidationFailed:
    return ValidationFailed.of_field(field, code, text)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: ApiKey
    secret: str


class IdentityService:
    def __init__(self, session: AsyncSession, passwords: Passwords | None = None) -> None:
        self.session = session
        self.passwords = passwords

    async def _organisation(self, role: Role, organisation_id: uuid.UUID | None) -> Body | None:
        organisation = await self.session.get(Body, organisation_id) if organisation_id else None
        if organisation_id and organisation is None:
            raise _invalid("organisation_id", "unknown", Text("机构不存在", "No such organisation"))
        if not organisation_fits(role, organisation):
            raise _invalid(
                "organisation_id",
                "organisation_mismatch",
                Text(
                    "角色 {r} 不能属于该类机构", "Role {r} cannot belong to this kind of organisation"
                ).format(r=role.value),
            )
        return organisation

    # ---- users ----------------------------------------------------------------------------------

    async def create_user(
        self,
        username: str,
        display_name: str,
        role: Role,
        organisation_id: uuid.UUID | None,
        password: str,
        min_length: int,
    ) -> User:
        assert self.passwords is not None
        if role in MACHINE_ROLES - STAFF_ROLES:
            raise _invalid("role", "not_staff", Text("该角色使用 API 密钥", "This role uses API keys"))
        if role not in STAFF_ROLES:
            # `system` stands for the service's own jobs and the command line; nobody signs in as it.
            raise _invalid(
                "role",
                "not_staff",
                Text(
                    "该角色仅供系统内部使用, 不能创建账号",
                    "This role is the service's own and cannot have accounts",
                ),
            )
        if len(password) < min_length:
            raise _invalid(
                "password",
                "too_short",
                Text("密码至少 {n} 位", "Password needs at least {n} characters").format(n=min_length),
            )
        await self._organisation(role, organisation_id)
        now = utcnow()
        user = User(
            id=uuid.uuid4(),
            username=username,
            display_name=display_name,
            role=role.value,
            organisation_id=organisation_id,
            password_hash=self.passwords.hash(password),
            active=True,
            created_at=now,
            password_changed_at=now,
        )
        self.session.add(user)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise Conflict(Text("用户名已存在", "Username already taken")) from exc
        return user

    async def sign_in(self, username: str, password: str, tokens: Tokens) -> tuple[User, IssuedToken]:
        """`username` as `normalised_username` gives it; the password exactly as typed."""
        assert self.passwords is not None
        user = await self.session.scalar(select(User).where(User.username == username))
        # Verify even for an unknown user, so timing does not tell which usernames exist.
        valid = self.passwords.verify(user.password_hash if user else None, password)
        if user is None or not valid or not user.active:
            raise Unauthenticated(Text("用户名或密码错误", "Wrong username or password"))
        if user.organisation_id is not None:
            # Said only after the password checked out, so it tells a stranger nothing.
            organisation = await self.session.get(Body, user.organisation_id)
            if organisation is not None and not organisation.active:
                raise organisation_suspended()
        if self.passwords.needs_rehash(user.password_hash):
            user.password_hash = self.passwords.hash(password)
        user.last_login_at = utcnow()
        await self.session.flush()
        return user, tokens.issue(user.id, user.role, user.organisation_id)

    async def users(self) -> list[User]:
        return list((await self.session.scalars(select(User).order_by(User.username))).all())

    async def set_active(self, user_id: uuid.UUID, active: bool) -> User:
        user = await self.session.get(User, user_id)
        if user is None:
            raise NotFound(Text("用户不存在", "No such user"))
        user.active = active
        await self.session.flush()
        return user

    # ---- API keys -------------------------------------------------------------------------------

    async def create_key(
        self,
        organisation_id: uuid.UUID,
        role: Role,
        name: str,
        created_by: str,
        expires_at: datetime | None = None,
        replaces: ApiKey | None = None,
        secret: str | None = None,
    ) -> CreatedKey:
        if role not in MACHINE_ROLES:
            raise _invalid(
                "role", "not_machine", Text("该角色不能使用 API 密钥", "This role cannot have API keys")
            )
        now = utcnow()
        if expires_at is not None and expires_at.tzinfo is None:
            raise _invalid(
                "expires_at",
                "timezone_missing",
                Text("时间须带时区", "Give the time with its time zone offset"),
            )
        if expires_at is not None and expires_at <= now:
            raise _invalid(
                "expires_at", "in_past", Text("过期时间须晚于现在", "expires_at must lie in the future")
            )
        await self._organisation(role, organisation_id)
        issued = new_api_key(secret)
        key = ApiKey(
            id=uuid.uuid4(),
            name=name,
            prefix=issued.prefix,
            secret_hash=issued.secret_hash,
            role=role.value,
            organisation_id=organisation_id,
            replaces_id=replaces.id if replaces else None,
            created_by=created_by,
            created_at=now,
            expires_at=expires_at,
        )
        self.session.add(key)
        await self.session.flush()
        return CreatedKey(key, issued.secret)

    def _may_manage(self, principal: Principal, key: ApiKey) -> bool:
        if principal.can(Permission.keys_manage):
            return True
        return principal.can(Permission.keys_manage_own) and key.organisation_id == principal.organisation_id

    async def key(self, key_id: uuid.UUID, principal: Principal, *, for_update: bool = False) -> ApiKey:
        key = await self.session.get(ApiKey, key_id, with_for_update=for_update)
        if key is None or not self._may_manage(principal, key):
            raise NotFound(Text("API 密钥不存在", "No such API key"))
        return key

    async def keys(self, principal: Principal, organisation_id: uuid.UUID | None = None) -> list[ApiKey]:
        stmt = select(ApiKey).order_by(ApiKey.created_at, ApiKey.prefix)
        if not principal.can(Permission.keys_manage):
            stmt = stmt.where(ApiKey.organisation_id == principal.organisation_id)
        if organisation_id:
            stmt = stmt.where(ApiKey.organisation_id == organisation_id)
        return list((await self.session.scalars(stmt)).all())

    async def revoke(self, key: ApiKey) -> ApiKey:
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            await self.session.flush()
        return key

    async def rotate(self, key: ApiKey, created_by: str) -> CreatedKey:
        """A successor with the same organisation and role; the old key keeps working until revoked,
        so the client can switch over without downtime."""
        if key.revoked_at is not None:
            raise Conflict(Text("已吊销的密钥不能轮换", "A revoked key cannot be rotated"))
        now = utcnow()
        if key.expires_at is not None and key.expires_at <= now:
            raise Conflict(Text("已过期的密钥不能轮换", "An expired key cannot be rotated"), code="expired")
        # One live successor at a time: a second would leave two keys the client never switched to.
        # The caller holds the key's row (`key(..., for_update=True)`), so two rotations at once
        # take turns and the second finds the first's successor.
        successor = await self.session.scalar(
            select(ApiKey.prefix).where(
                ApiKey.replaces_id == key.id,
                ApiKey.revoked_at.is_(None),
                (ApiKey.expires_at.is_(None)) | (ApiKey.expires_at > now),
            )
        )
        if successor is not None:
            raise Conflict(
                Text(
                    "该密钥已轮换, 新密钥为 {p}", "This key was rotated already; its successor is {p}"
                ).format(p=successor),
                code="already_rotated",
            )
        return await self.create_key(
            key.organisation_id, Role(key.role), key.name, created_by, key.expires_at, replaces=key
        )
