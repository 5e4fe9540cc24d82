"""Sign-in, the caller's own identity, staff accounts and machine clients' API keys."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from mediation.bodies.models import Body
from mediation.core.db import UnitOfWorkRoute, session_of
from mediation.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthenticated,
    problem_responses,
)
from mediation.core.principal import Permission, Principal, Role
from mediation.core.schemas import WriteModel
from mediation.disputes.schemas import Instant
from mediation.identity.auth import CurrentPrincipal, client_address, identity_of, make_principal, permission
from mediation.identity.service import IdentityService

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute)


class TokenRequest(WriteModel):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int = Field(description="Seconds until the token expires.")
    role: Role
    organisation_id: uuid.UUID | None


class Me(BaseModel):
    kind: str
    id: str
    name: str | None
    role: Role
    organisation_id: uuid.UUID | None
    region: str | None = Field(description="Region prefix a center's staff see.")
    permissions: list[str]


class UserIn(WriteModel):
    username: Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    display_name: Annotated[str, Field(min_length=1, max_length=100)]
    role: Role
    organisation_id: uuid.UUID | None = None
    password: Annotated[str, Field(max_length=256)]


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    display_name: str
    role: Role
    organisation_id: uuid.UUID | None
    active: bool
    created_at: datetime
    last_login_at: datetime | None


class ApiKeyIn(WriteModel):
    organisation_id: uuid.UUID
    role: Role
    name: Annotated[str, Field(min_length=1, max_length=100)]
    expires_at: Instant | None = Field(default=None, description="Never, if not given; else in the future.")


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str = Field(description="Visible start of the key, to tell keys apart.")
    role: Role
    organisation_id: uuid.UUID
    replaces_id: uuid.UUID | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="The key itself. Shown only in this response; store it now.")


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    summary="员工登录 Staff sign-in",
    description="Exchanges a username and password for a short-lived access token (JWT).",
    responses=problem_responses(Unauthenticated),
    tags=["identity"],
)
async def sign_in(request: Request, data: TokenRequest) -> TokenResponse:
    identity = identity_of(request)
    # Per address and per account: slows password guessing without locking the real user out.
    identity.anonymous_limiter.check(f"signin:{client_address(request)}")
    identity.anonymous_limiter.check(f"signin-user:{data.username}")
    request.state.audit_details = {"username": data.username}
    svc = IdentityService(session_of(request), identity.passwords)
    user, token = await svc.sign_in(data.username, data.password, identity.tokens)
    # The sign-in's audit record names the account and its organisation, like any later request.
    organisation = await session_of(request).get(Body, user.organisation_id) if user.organisation_id else None
    request.state.principal = make_principal(
        Role(user.role), str(user.id), organisation, kind="user", name=user.display_name
    )
    request.state.audit_object = ("user", user.id)
    return TokenResponse(
        access_token=token.token,
        expires_in=token.expires_in,
        role=Role(user.role),
        organisation_id=user.organisation_id,
    )


@router.get(
    "/me", response_model=Me, summary="当前身份 Who am I", responses=problem_responses(), tags=["identity"]
)
async def me(principal: CurrentPrincipal) -> Me:
    return Me(
        kind=principal.kind,
        id=principal.id,
        name=principal.name,
        role=principal.role,
        organisation_id=principal.organisation_id,
        region=principal.region,
        permissions=sorted(p.value for p in principal.permissions),
    )


# ---- staff accounts (admin) ----------------------------------------------------------------------

UserAdmin = Annotated[Principal, permission(Permission.users_manage)]


@router.post(
    "/users",
    status_code=201,
    response_model=UserOut,
    summary="创建员工账号 Create a staff account",
    responses=problem_responses(Forbidden, Conflict),
    tags=["identity"],
)
async def create_user(request: Request, data: UserIn, principal: UserAdmin) -> UserOut:
    settings = request.app.state.settings
    svc = IdentityService(session_of(request), identity_of(request).passwords)
    user = await svc.create_user(
        data.username,
        data.display_name,
        data.role,
        data.organisation_id,
        data.password,
        settings.min_password_length,
    )
    request.state.audit_object = ("user", user.id)
    request.state.audit_details = {"role": data.role.value}
    return UserOut.model_validate(user)


@router.get(
    "/users",
    response_model=list[UserOut],
    summary="员工账号 Staff accounts",
    responses=problem_responses(Forbidden),
    tags=["identity"],
)
async def list_users(request: Request, principal: UserAdmin) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in await IdentityService(session_of(request)).users()]


@router.post(
    "/users/{user_id}/deactivate",
    response_model=UserOut,
    summary="停用账号 Deactivate an account",
    description="Takes effect on the account's next request, whatever tokens it still holds.",
    responses=problem_responses(Forbidden, NotFound),
    tags=["identity"],
)
async def deactivate_user(request: Request, user_id: uuid.UUID, principal: UserAdmin) -> UserOut:
    user = await IdentityService(session_of(request)).set_active(user_id, False)
    return UserOut.model_validate(user)


# ---- API keys (admin: any organisation; body_admin: its own) ---------------------------------------


def _key_manager(principal: Principal) -> None:
    if not (principal.can(Permission.keys_manage) or principal.can(Permission.keys_manage_own)):
        raise Forbidden()


@router.post(
    "/api-keys",
    status_code=201,
    response_model=ApiKeyCreated,
    summary="创建 API 密钥 Create an API key",
    description="The key is in this response only; the service keeps a hash.",
    responses=problem_responses(Forbidden),
    tags=["identity"],
)
async def create_key(request: Request, data: ApiKeyIn, principal: CurrentPrincipal) -> ApiKeyCreated:
    _key_manager(principal)
    if not principal.can(Permission.keys_manage) and data.organisation_id != principal.organisation_id:
        raise Forbidden()
    created = await IdentityService(session_of(request)).create_key(
        data.organisation_id, data.role, data.name, principal.id, data.expires_at
    )
    request.state.audit_object = ("api_key", created.key.id)
    return ApiKeyCreated(**ApiKeyOut.model_validate(created.key).model_dump(), secret=created.secret)


@router.get(
    "/api-keys",
    response_model=list[ApiKeyOut],
    summary="API 密钥 API keys",
    responses=problem_responses(Forbidden),
    tags=["identity"],
)
async def list_keys(
    request: Request,
    principal: CurrentPrincipal,
    organisation_id: Annotated[uuid.UUID | None, Query()] = None,
) -> list[ApiKeyOut]:
    _key_manager(principal)
    keys = await IdentityService(session_of(request)).keys(principal, organisation_id)
    return [ApiKeyOut.model_validate(k) for k in keys]


@router.post(
    "/api-keys/{key_id}/revoke",
    response_model=ApiKeyOut,
    summary="吊销 API 密钥 Revoke an API key",
    responses=problem_responses(Forbidden, NotFound),
    tags=["identity"],
)
async def revoke_key(request: Request, key_id: uuid.UUID, principal: CurrentPrincipal) -> ApiKeyOut:
    _key_manager(principal)
    svc = IdentityService(session_of(request))
    return ApiKeyOut.model_validate(await svc.revoke(await svc.key(key_id, principal)))


@router.post(
    "/api-keys/{key_id}/rotate",
    status_code=201,
    response_model=ApiKeyCreated,
    summary="轮换 API 密钥 Rotate an API key",
    description="Creates a successor; both keys work until the old one is revoked.",
    responses=problem_responses(Forbidden, NotFound, Conflict),
    tags=["identity"],
)
async def rotate_key(request: Request, key_id: uuid.UUID, principal: CurrentPrincipal) -> ApiKeyCreated:
    _key_manager(principal)
    svc = IdentityService(session_of(request))
    created = await svc.rotate(await svc.key(key_id, principal, for_update=True), principal.id)
    request.state.audit_object = ("api_key", created.key.id)
    request.state.audit_details = {"replaces": str(key_id)}
    return ApiKeyCreated(**ApiKeyOut.model_validate(created.key).model_dump(), secret=created.secret)
