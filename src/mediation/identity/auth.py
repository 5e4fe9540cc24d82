"""Authenticating each request: a staff access token (`Authorization: Bearer <jwt>`) or a machine
client's API key (`X-API-Key: mk_...`, also accepted as a bearer token).

Every request re-reads the account or key, so a deactivated user, a signed-out session or a revoked
key stops working at once rather than when its token expires. A user whose password an
administrator set (`User.password_change_required`) is refused everywhere but the few operations
that let them change it (`AwaitingPasswordChange`).
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.bodies.models import Body
from mediation.core.db import Database, utcnow
from mediation.core.errors import Forbidden, Unauthenticated
from mediation.core.i18n import Text
from mediation.core.pii import PiiCipher
from mediation.core.principal import CENTER_ROLES, PERMISSION_NAMES, Permission, Principal, Role
from mediation.core.ratelimit import RateLimiter
from mediation.core.secrets import Secrets
from mediation.core.settings import Settings
from mediation.disputes.identity import region_prefix
from mediation.identity.credentials import (
    API_KEY_PREFIX,
    InvalidToken,
    Passwords,
    Tokens,
    hash_api_key,
    key_prefix,
)
from mediation.identity.models import ApiKey, RevokedSession, User
from mediation.identity.throttle import SignInThrottle

ORGANISATION_SUSPENDED = "organisation_suspended"
SESSION_ENDED = "session_ended"
PASSWORD_CHANGE_REQUIRED = "password_change_required"

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="staffToken",
    description="Staff access token from `POST /v1/auth/token` (JWT, HS256, 15 minutes by default).",
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="apiKey",
    description="A machine client's key (`mk_...`), scoped to one organisation.",
)


@dataclass(slots=True)
class Identity:
    """Per-app credential services, kept on `app.state.identity`."""

    passwords: Passwords
    tokens: Tokens
    cipher: PiiCipher
    limiter: RateLimiter
    anonymous_limiter: RateLimiter
    throttle: SignInThrottle

    @classmethod
    def build(cls, settings: Settings, secrets: Secrets) -> Identity:
        return cls(
            passwords=Passwords(settings),
            tokens=Tokens(settings, secrets.jwt_secret),
            cipher=PiiCipher.from_secrets(secrets.pii_encryption_keys, secrets.pii_index_key),
            limiter=RateLimiter(settings.rate_limit_per_minute),
            anonymous_limiter=RateLimiter(settings.anonymous_rate_limit_per_minute),
            throttle=SignInThrottle(
                settings.sign_in_max_failures, timedelta(minutes=settings.sign_in_lock_minutes)
            ),
        )


def identity_of(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def authenticate(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    api_key: Annotated[str | None, Security(api_key_scheme)],
) -> Principal:
    """The caller; a user whose password an administrator set is refused (403
    `password_change_required`) until they have changed it."""
    principal = await authenticate_awaiting_password_change(request, bearer, api_key)
    if request.state.password_change_required:
        raise password_change_required()
    return principal


async def authenticate_awaiting_password_change(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    api_key: Annotated[str | None, Security(api_key_scheme)],
) -> Principal:
    """The caller, even a user whose password an administrator set and who has not changed it yet
    (`request.state.password_change_required` says so): only for the operations that user needs to
    get past it (who am I, change the password, sign out)."""
    identity = identity_of(request)
    if not api_key and not bearer:
        raise Unauthenticated(Text("需要登录或 API 密钥", "Sign in or send an API key"))
    db: Database = request.app.state.db
    own: AsyncSession | None = getattr(request.state, "session", None)
    try:
        if own is not None and not db.is_sqlite:
            # On PostgreSQL the lookup rides in the request's own transaction: one connection and
            # one transaction per request. (Read committed: it still sees a deactivation committed
            # a moment ago.)
            principal, staff = await _principal(own, identity, api_key, bearer)
        else:
            # A short read of its own: on SQLite the request's session may be a writer, and taking
            # the write lock for a credential lookup would serialise every request behind it.
            async with db.reader() as session:
                principal, staff = await _principal(session, identity, api_key, bearer)
    except Unauthenticated as exc:
        # The refusal is audited (a 401); one of a credential that exists names it, so an auditor
        # can tell a court's system still sending its revoked key from a stranger guessing.
        if exc.credential is not None:
            details = getattr(request.state, "audit_details", None) or {}
            request.state.audit_details = {**details, "credential": exc.credential}
        raise
    request.state.principal = principal
    request.state.session_id = staff.session_id if staff else None
    request.state.session_generation = staff.generation if staff else None
    request.state.password_change_required = staff.password_change_required if staff else False
    identity.limiter.check(principal.scope)
    return principal


async def _principal(
    session: AsyncSession,
    identity: Identity,
    api_key: str | None,
    bearer: HTTPAuthorizationCredentials | None,
) -> tuple[Principal, StaffSession | None]:
    """The caller, and the staff session its token belongs to (None for an API key)."""
    if api_key:
        return await principal_for_key(session, api_key), None
    assert bearer is not None
    if bearer.credentials.startswith(API_KEY_PREFIX):
        return await principal_for_key(session, bearer.credentials), None
    staff = await staff_session(session, identity.tokens, bearer.credentials)
    return staff.principal, staff


# The account (with whether its password must be changed first), its organisation and whether the
# token's session was signed out, in one round trip on every request; built once. Only the columns
# a principal needs, not the entities: no identity-map work for what is read and dropped.
_USER_AND_BODY = (
    select(
        User.id,
        User.role,
        User.active,
        User.display_name,
        User.session_generation,
        User.kept_session_id,
        User.password_change_required,
        Body.id.label("body_id"),
        Body.region_code,
        Body.active.label("body_active"),
        RevokedSession.sid.label("revoked_sid"),
    )
    .outerjoin(Body, Body.id == User.organisation_id)
    .outerjoin(
        RevokedSession, and_(RevokedSession.sid == bindparam("sid"), RevokedSession.user_id == User.id)
    )
    .where(User.id == bindparam("user_id"))
)


def organisation_suspended() -> Unauthenticated:
    """The credential itself is sound, but its organisation is suspended: said as such, so the
    client does not go looking for a revoked key or a wrong password."""
    return Unauthenticated(
        Text(
            "所属机构已暂停工作, 其账号和 API 密钥暂不能使用",
            "The organisation is suspended; its accounts and API keys cannot be used",
        ),
        code=ORGANISATION_SUSPENDED,
    )


def password_change_required() -> Forbidden:
    """The account is sound, but its password was set by an administrator and is still unchanged."""
    return Forbidden(
        Text(
            "您的密码由管理员设置, 须先修改密码 (POST /v1/me/password) 才能进行其他操作",
            "Your password was set by an administrator: change it (POST /v1/me/password) before "
            "doing anything else",
        ),
        code=PASSWORD_CHANGE_REQUIRED,
    )


def session_ended() -> Unauthenticated:
    return Unauthenticated(
        Text("该登录已退出或已失效, 请重新登录", "This session was signed out or has ended; sign in again"),
        code=SESSION_ENDED,
    )


@dataclass(frozen=True, slots=True)
class StaffSession:
    """A staff token that checked out: who, the session it belongs to, its claims, and whether the
    account must change its password before anything else."""

    principal: Principal
    session_id: str
    claims: dict[str, Any]
    password_change_required: bool

    @property
    def generation(self) -> int:
        """The account's session generation the token was issued in (`User.session_generation`)."""
        return int(self.claims["gen"])


def token_claims(tokens: Tokens, token: str) -> tuple[uuid.UUID, dict[str, Any]]:
    """The account a staff token names and its claims, if it is ours and in date (nothing read)."""
    try:
        claims = tokens.verify(token)
        return uuid.UUID(str(claims["sub"])), claims
    except (InvalidToken, ValueError) as exc:
        raise Unauthenticated(Text("登录凭证无效或已过期", "Invalid or expired access token")) from exc


def claimed_principal(user_id: uuid.UUID, claims: dict[str, Any]) -> Principal:
    """The principal as the token itself names it, for the audit record of a sign-out, which must
    work whatever has become of the account since."""
    organisation = claims.get("org")
    try:
        role = Role(str(claims.get("role")))
        organisation_id = uuid.UUID(str(organisation)) if organisation else None
    except ValueError as exc:
        raise Unauthenticated(Text("登录凭证无效或已过期", "Invalid or expired access token")) from exc
    return _principal_of(role, str(user_id), organisation_id, None, kind="user", name=None)


async def staff_session(session: AsyncSession, tokens: Tokens, token: str) -> StaffSession:
    user_id, claims = token_claims(tokens, token)
    sid = str(claims["sid"])
    row = (await session.execute(_USER_AND_BODY, {"user_id": user_id, "sid": sid})).first()

    def naming(reason: str) -> dict[str, str]:
        # The token is ours and in date (signed with the service's key): the account it names is
        # who tried, whatever has become of the account since.
        return {"kind": "user", "user_id": str(user_id), "session_id": sid, "reason": reason}

    if row is None or not row.active:
        refused = Unauthenticated(Text("账号不存在或已停用", "Account missing or disabled"))
        raise refused.naming(**naming("account_missing" if row is None else "account_disabled"))
    # Signed out, or ended with every other session of the account (a password changed or reset):
    # refused at once, whatever is left of the token's lifetime.
    if row.revoked_sid is not None:
        raise session_ended().naming(**naming("signed_out"))
    if claims["gen"] != row.session_generation and sid != row.kept_session_id:
        raise session_ended().naming(**naming("session_ended"))
    # A suspended organisation's staff stop with its keys: whatever tokens they still hold.
    if row.body_id is not None and not row.body_active:
        raise organisation_suspended().naming(**naming("organisation_suspended"))
    principal = _principal_of(
        Role(row.role), str(row.id), row.body_id, row.region_code, kind="user", name=row.display_name
    )
    return StaffSession(principal, sid, claims, row.password_change_required)


async def principal_for_token(session: AsyncSession, tokens: Tokens, token: str) -> Principal:
    return (await staff_session(session, tokens, token)).principal


async def principal_for_key(session: AsyncSession, secret: str) -> Principal:
    refused = Unauthenticated(Text("API 密钥无效或已吊销", "Invalid or revoked API key"))
    prefix = key_prefix(secret)
    if prefix is None:
        raise refused
    key = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None:
        raise refused

    def naming(reason: str) -> dict[str, str]:
        return {"kind": "api_key", "key_id": str(key.id), "prefix": key.prefix, "reason": reason}

    if not hmac.compare_digest(key.secret_hash, hash_api_key(secret)):
        raise refused.naming(**naming("wrong_secret"))
    now = utcnow()
    if key.revoked_at is not None:
        raise refused.naming(**naming("revoked"))
    if key.expires_at is not None and key.expires_at <= now:
        raise refused.naming(**naming("expired"))
    organisation = await session.get(Body, key.organisation_id)
    if organisation is None:
        raise refused.naming(**naming("organisation_missing"))
    if not organisation.active:
        raise organisation_suspended().naming(**naming("organisation_suspended"))
    principal = make_principal(Role(key.role), str(key.id), organisation, kind="api_key", name=key.name)
    return replace(principal, lineage_id=str(key.lineage_id))


def make_principal(
    role: Role, principal_id: str, organisation: Body | None, *, kind: str, name: str | None
) -> Principal:
    if organisation is None:
        return _principal_of(role, principal_id, None, None, kind=kind, name=name)
    return _principal_of(role, principal_id, organisation.id, organisation.region_code, kind=kind, name=name)


def _principal_of(
    role: Role,
    principal_id: str,
    organisation_id: uuid.UUID | None,
    region_code: str | None,
    *,
    kind: str,
    name: str | None,
) -> Principal:
    """A center's staff see their center's region; other organisations see by assignment."""
    region = None
    if organisation_id is not None and region_code is not None and role in CENTER_ROLES:
        region = region_prefix(region_code)
    return Principal(
        role=role, id=principal_id, organisation_id=organisation_id, region=region, kind=kind, name=name
    )


def require(principal: Principal, permission: Permission) -> None:
    if not principal.can(permission):
        raise Forbidden(
            Text(
                f"当前角色没有「{PERMISSION_NAMES[permission]}」权限",
                f"Your role lacks the {permission.value} permission",
            ),
            required_permission=permission.value,
        )


def permission(needed: Permission) -> object:
    """A dependency: the authenticated principal, refused with 403 unless it holds `needed`."""

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        require(principal, needed)
        return principal

    return Depends(dependency)


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
AwaitingPasswordChange = Annotated[Principal, Depends(authenticate_awaiting_password_change)]
