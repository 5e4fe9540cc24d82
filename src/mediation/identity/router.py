"""Sign-in and sign-out, the caller's own identity and password, staff accounts and machine
clients' API keys."""

import hashlib
import hmac
import json
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from mediation.bodies.models import Body
from mediation.bodies.schemas import not_null
from mediation.core.db import Database, UnitOfWorkRoute, release_on_rollback, session_of
from mediation.core.errors import (
    Conflict,
    Forbidden,
    IdempotencyInProgress,
    IdempotencyKeyMismatch,
    NotFound,
    PreconditionRequired,
    StaleVersion,
    Unauthenticated,
    ValidationFailed,
    problem_responses,
)
from mediation.core.http import (
    PAGED_ARRAY,
    PageCursor,
    PageLimit,
    check_if_match,
    etag_for,
    link_next_page,
    sends,
)
from mediation.core.i18n import Text
from mediation.core.idempotency import run_idempotent
from mediation.core.pii import redact_text
from mediation.core.principal import ROLE_PERMISSIONS, STAFF_ONLY, Permission, Principal, Role
from mediation.core.ratelimit import caller_network
from mediation.core.schemas import Instant, WriteModel
from mediation.disputes.router import IdempotencyKey
from mediation.disputes.schemas import without_null
from mediation.identity.auth import (
    AwaitingPasswordChange,
    CurrentPrincipal,
    authenticate_awaiting_password_change,
    bearer_scheme,
    claimed_principal,
    client_address,
    identity_of,
    make_principal,
    permission,
    token_claims,
)
from mediation.identity.credentials import API_KEY_PREFIX
from mediation.identity.models import User
from mediation.identity.service import (
    DISPLAY_NAME_MAX_LENGTH,
    INHERIT,
    UNCHANGED,
    USERNAME_MAX_LENGTH,
    USERNAME_MIN_LENGTH,
    USERNAME_PATTERN,
    CreatedKey,
    IdentityService,
    SignInRefused,
    account_change_facts,
    count_failed_sign_in,
    normalised_username,
)

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute)

# A password is taken exactly as typed, on every path (API, pages, command line): trimming it here
# alone would make an account created by the API unusable with its own password on the page.
Password = Annotated[str, StringConstraints(strip_whitespace=False)]


class TokenRequest(WriteModel):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[Password, Field(min_length=1, max_length=256)]


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int = Field(description="Seconds until the token expires.")
    role: Role
    organisation_id: uuid.UUID | None
    password_change_required: bool = Field(
        description="The password was set by an administrator: until it is changed at "
        "`POST /v1/me/password`, every operation but `GET /v1/me`, that change and "
        "`POST /v1/auth/logout` answers 403 `password_change_required`."
    )


class Me(BaseModel):
    kind: str
    id: str
    name: str | None
    role: Role
    organisation_id: uuid.UUID | None
    region: str | None = Field(description="Region prefix a center's staff see.")
    permissions: list[str]
    password_change_required: bool = Field(
        description="The password must be changed (`POST /v1/me/password`) before anything else."
    )


class UserIn(WriteModel):
    username: Annotated[
        str,
        Field(min_length=USERNAME_MIN_LENGTH, max_length=USERNAME_MAX_LENGTH, pattern=USERNAME_PATTERN),
    ]
    display_name: Annotated[str, Field(min_length=1, max_length=DISPLAY_NAME_MAX_LENGTH)]
    role: Role
    organisation_id: uuid.UUID | None = None
    password: Annotated[Password, Field(max_length=256)]


# What a change of an account may leave out but never clear.
USER_NOT_NULL = frozenset({"role", "display_name"})


class UserPatch(WriteModel):
    """A member of staff moving post: any of their role, organisation and display name."""

    model_config = ConfigDict(json_schema_extra=without_null(USER_NOT_NULL))

    role: Role | None = Field(
        default=None, description="A staff role; it must fit the organisation, as at creation."
    )
    organisation_id: uuid.UUID | None = Field(
        default=None,
        description="The center or body the account belongs to; null for none (an admin or an "
        "auditor only). Left out: unchanged.",
    )
    display_name: Annotated[str | None, Field(min_length=1, max_length=DISPLAY_NAME_MAX_LENGTH)] = None

    _required = field_validator(*USER_NOT_NULL)(not_null)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    display_name: str
    role: Role
    organisation_id: uuid.UUID | None
    active: bool
    created_at: datetime
    password_changed_at: datetime
    last_login_at: datetime | None
    password_change_required: bool = Field(
        description="The password was set by an administrator and its user has not changed it yet."
    )
    locked_until: datetime | None = Field(
        description="Locked by too many wrong passwords in a row until then (sign-in answers 401 "
        "`account_locked`); `POST /v1/users/{id}/activate` or a password reset unlocks it."
    )
    version: int = Field(
        description="Moved on by every change an administrator makes to the account (also the ETag "
        "`PATCH /v1/users/{id}` names in If-Match)."
    )


class SignOut(WriteModel):
    everywhere: bool = Field(
        default=False,
        description="End every session of the account, this one included, not only this one.",
    )


class PasswordChange(WriteModel):
    current_password: Annotated[Password, Field(min_length=1, max_length=256)]
    new_password: Annotated[
        Password, Field(max_length=256, description="Meets the same rules as at creation.")
    ]


class PasswordReset(WriteModel):
    password: Annotated[Password, Field(max_length=256, description="Meets the same rules as at creation.")]


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


class RotationIn(WriteModel):
    expires_at: Instant | None = Field(
        default=None,
        description="When the successor expires: in the future, or null for never. "
        "Not given: when the key it replaces does.",
    )


def unknown_username(request: Request, username: str) -> dict[str, str]:
    """What the audit trail keeps of a username that names no account. What was typed may be the
    password, typed into the wrong box, and every auditor reads the trail: the record keeps the
    first character and the length, and a keyed digest (the blind index personal data is searched
    by). Every attempt with the same name carries the same digest, so the names a guesser tried can
    still be told apart and counted."""
    digest = identity_of(request).cipher.index(username, kind="username")[:16]
    return {"username": username[:1] + "*" * (len(username) - 1), "username_digest": digest}


def record_refused_sign_in(request: Request, refused: Unauthenticated, username: str) -> None:
    """A sign-in refused for an account that can no longer sign in is recorded against it, so an
    attempt on a former employee's account or a suspended body's is seen in the trail. A wrong
    password counts towards locking its account once the request has rolled back; the one that
    locks it is recorded against the account, with the lock's end. A username that names no
    account is kept masked (`unknown_username`). A lock at the request's address alone is recorded
    as `account_locked_here_until`, one at every address as `account_locked_until`."""
    if not isinstance(refused, SignInRefused):
        return
    if refused.account_id is None and refused.count_against is None:
        request.state.audit_details = {**request.state.audit_details, **unknown_username(request, username)}
    if refused.account_id is not None:
        request.state.audit_object = ("user", refused.account_id)
        request.state.audit_details = {**request.state.audit_details, **refused.audit_facts()}
    if refused.password_matched or refused.account_state == "locked":
        return  # the right password, or none tried while the lock lasts: nothing to count
    identity = identity_of(request)
    account = refused.count_against
    # Counted at once, in the process: against the address, and against the account at it.
    locked_here = identity.throttle.failed(username if account is not None else None, client_address(request))
    if account is None:
        return
    if locked_here is not None:
        request.state.audit_object = ("user", account)
        request.state.audit_details = {
            **request.state.audit_details,
            # Locked to sign-ins from this request's address (the record's client address) only.
            "account_locked_here_until": locked_here.isoformat(),
        }
    db: Database = request.app.state.db
    passwords = identity.passwords

    async def count() -> None:
        locked_until = await count_failed_sign_in(db.writer, account, passwords)
        if locked_until is not None:
            request.state.audit_object = ("user", account)
            request.state.audit_details = {
                **request.state.audit_details,
                "account_locked_until": locked_until.isoformat(),
            }

    # Not a claim to give back, but the same moment: after the rollback, before the audit record.
    release_on_rollback(request).append(count)


async def _keyed_content(request: Request, key: str | None) -> str | None:
    """What an Idempotency-Key stands for when the body holds a password: a keyed hash of the body,
    so the stored fingerprint is no plain SHA-256 a reader of the table could guess passwords
    against."""
    if key is None:
        return None
    body = await request.body()
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        canonical = body.decode("utf-8", "replace")
    return keyed_content(request, canonical)


def keyed_content(request: Request, canonical: str) -> str:
    """What an Idempotency-Key stands for when the request holds a password, given the request's
    content in one canonical text: a keyed hash of it."""
    secret = identity_of(request).tokens.secret.encode()
    return hmac.new(secret, b"idempotency\x00" + canonical.encode(), hashlib.sha256).hexdigest()


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
    username = normalised_username(data.username)
    address = client_address(request)
    check_sign_in_limits(request, username)
    # What was typed may be a mobile or ID number (someone signing in with their phone number):
    # masked as the logs mask it.
    request.state.audit_details = {"username": redact_text(username)}
    svc = IdentityService(session_of(request), identity.passwords)
    try:
        user, token = await svc.sign_in(
            username,
            data.password,
            identity.tokens,
            address=address,
            locked_here_until=identity.throttle.locked_here(username, address),
        )
    except Unauthenticated as refused:
        record_refused_sign_in(request, refused, username)
        raise
    identity.throttle.succeeded(username, address)
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
        password_change_required=user.password_change_required,
    )


@router.post(
    "/auth/logout",
    status_code=204,
    summary="退出登录 Sign out",
    description="Ends the session of the presenting staff token: every token of that session, renewed "
    "ones and copies included, is refused from now on. Signing out again answers 204 too. With "
    '`{"everywhere": true}` every session of the account ends, this one included (a browser left '
    "signed in elsewhere): that needs a session still signed in (else 401 `session_ended`).",
    responses=problem_responses(Unauthenticated, Forbidden),
    tags=["identity"],
)
async def sign_out(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    data: SignOut | None = None,
) -> Response:
    if bearer is None and not request.headers.get("x-api-key"):
        raise Unauthenticated(Text("需要员工登录凭证", "Send the staff access token to sign out"))
    if bearer is None or bearer.credentials.startswith(API_KEY_PREFIX):
        raise Forbidden(
            Text(
                "API 密钥没有登录会话可退出; 不再使用的密钥请吊销",
                "An API key has no session to sign out of; revoke a key no longer used",
            )
        )
    identity = identity_of(request)
    if data is not None and data.everywhere:
        # Every session, so a signed-in one: a token already signed out, or copied before, must not
        # be able to end the sessions its owner has signed in to since.
        principal = await authenticate_awaiting_password_change(request, bearer, None)
        user_id = uuid.UUID(principal.id)
        request.state.audit_object = ("user", user_id)
        await IdentityService(session_of(request)).sign_out_everywhere(user_id)
        request.state.audit_details = {"sessions_ended": "all"}
        return Response(status_code=204)
    # The token's signature and dates, not the account: a session already signed out, or of an
    # account deactivated since, may still be signed out (idempotent, and never a 401 to a client
    # cleaning up).
    user_id, claims = token_claims(identity.tokens, bearer.credentials)
    principal = claimed_principal(user_id, claims)
    request.state.principal = principal
    identity.limiter.check(principal.scope)
    await IdentityService(session_of(request)).sign_out(
        user_id, str(claims["sid"]), identity.tokens, token_expires=float(claims["exp"])
    )
    request.state.audit_object = ("user", user_id)
    return Response(status_code=204)


@router.get(
    "/me",
    response_model=Me,
    summary="当前身份 Who am I",
    description="Answers also a user whose password must be changed first (`password_change_required`).",
    responses=problem_responses(),
    tags=["identity"],
)
async def me(request: Request, principal: AwaitingPasswordChange) -> Me:
    return Me(
        kind=principal.kind,
        id=principal.id,
        name=principal.name,
        role=principal.role,
        organisation_id=principal.organisation_id,
        region=principal.region,
        permissions=sorted(p.value for p in principal.permissions),
        password_change_required=request.state.password_change_required,
    )


def check_sign_in_limits(request: Request, username: str) -> None:
    """The limits on password guessing (429 with Retry-After): tries per minute per address and per
    account at that address, and the growing wait of an address that keeps failing. None counts the
    account's tries from every address together: a stranger's guesses elsewhere must not use up the
    clerk's at the center's own address (the account-wide bound is `count_failed_sign_in`'s)."""
    identity = identity_of(request)
    address = caller_network(client_address(request))
    identity.anonymous_limiter.check(f"signin:{address}")
    identity.anonymous_limiter.check(f"signin-user:{username}@{address}")
    identity.throttle.check_address(address)


def check_password_guess(request: Request, user: User) -> None:
    """The current password is a password guess like a sign-in's, and draws on the same limits (per
    address and per account at it): a session left open is no way around them."""
    check_sign_in_limits(request, user.username)


@router.post(
    "/me/password",
    status_code=204,
    summary="修改本人密码 Change one's own password",
    description="Needs the current password. Every other session of the account ends; the one that "
    "made the change goes on. A password an administrator set is temporary no more.",
    responses=problem_responses(Forbidden, IdempotencyKeyMismatch, IdempotencyInProgress),
    tags=["identity"],
)
async def change_own_password(
    request: Request,
    data: PasswordChange,
    principal: AwaitingPasswordChange,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    if principal.kind != "user":
        raise Forbidden(Text("API 密钥没有密码", "An API key has no password"))
    settings = request.app.state.settings
    svc = IdentityService(session_of(request), identity_of(request).passwords)
    user_id = uuid.UUID(principal.id)
    request.state.audit_object = ("user", user_id)

    async def work() -> Response:
        await svc.change_password(
            user_id,
            data.current_password,
            data.new_password,
            settings.min_password_length,
            session_id=request.state.session_id,
            generation=request.state.session_generation,
            before_check=lambda user: check_password_guess(request, user),
        )
        request.state.audit_details = {"sessions_ended": "others"}
        return Response(status_code=204)

    content = await _keyed_content(request, idempotency_key)
    return await run_idempotent(request, principal, idempotency_key, work, content=content)


# ---- staff accounts (admin) ----------------------------------------------------------------------

UserAdmin = Annotated[Principal, permission(Permission.users_manage)]


@router.post(
    "/users",
    status_code=201,
    response_model=UserOut,
    summary="创建员工账号 Create a staff account",
    description="The password is temporary (`password_change_required`): the administrator chose it, so "
    "the user must change it at first sign-in before doing anything else.",
    responses=problem_responses(Forbidden, Conflict, IdempotencyKeyMismatch, IdempotencyInProgress),
    tags=["identity"],
)
async def create_user(
    request: Request, data: UserIn, principal: UserAdmin, idempotency_key: IdempotencyKey = None
) -> Response:
    settings = request.app.state.settings
    svc = IdentityService(session_of(request), identity_of(request).passwords)

    async def work() -> Response:
        user = await svc.create_user(
            data.username,
            data.display_name,
            data.role,
            data.organisation_id,
            data.password,
            settings.min_password_length,
            # 等保: an initial password set by someone else is changed at first use.
            temporary_password=True,
        )
        request.state.audit_object = ("user", user.id)
        request.state.audit_details = {"role": data.role.value}
        return _json(UserOut.model_validate(user), 201)

    content = await _keyed_content(request, idempotency_key)
    return await run_idempotent(request, principal, idempotency_key, work, content=content)


@router.get(
    "/users",
    response_model=list[UserOut],
    summary="员工账号 Staff accounts",
    responses=problem_responses(Forbidden),
    tags=["identity"],
)
async def list_users(request: Request, principal: UserAdmin) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in await IdentityService(session_of(request)).users()]


IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description="The account's current ETag (required; 428 without it)."),
]


@router.get(
    "/users/{user_id}",
    response_model=UserOut,
    summary="员工账号 A staff account",
    responses=problem_responses(Forbidden, NotFound) | sends(200, "ETag"),
    tags=["identity"],
)
async def get_user(request: Request, user_id: uuid.UUID, principal: UserAdmin) -> Response:
    user = await IdentityService(session_of(request)).user(user_id)
    return _with_etag(user)


@router.patch(
    "/users/{user_id}",
    response_model=UserOut,
    summary="调整岗位 Change an account's role, organisation or name",
    description="A member of staff moves post (a clerk becomes a supervisor, a mediator moves to "
    "another committee): the account keeps its history. Fields left out are unchanged; "
    "`organisation_id: null` leaves no organisation (admin and auditor only). Checked as at "
    "creation (422). A new role or organisation ends every session of the account at once: the "
    "tokens it holds are refused (401 `session_ended`) and its user signs in again. Refused (409 "
    "`last_admin`) when no other active administrator would be left. A mediator's move leaves the "
    "body's roster and cases as they are (a case names a roster entry, not an account): the body "
    "names another mediator for the cases it still names (`PUT /v1/disputes/{id}/mediator`).",
    responses=problem_responses(Forbidden, NotFound, Conflict, StaleVersion, PreconditionRequired)
    | sends(200, "ETag"),
    tags=["identity"],
)
async def update_user(
    request: Request, user_id: uuid.UUID, data: UserPatch, principal: UserAdmin, if_match: IfMatch = None
) -> Response:
    given = data.model_fields_set
    user, changes = await IdentityService(session_of(request)).update_user(
        user_id,
        role=data.role,
        organisation_id=data.organisation_id if "organisation_id" in given else UNCHANGED,
        display_name=data.display_name,
        before_change=lambda user: check_if_match(if_match, user.version),
    )
    request.state.audit_details = account_change_facts(changes)
    return _with_etag(user)


def _with_etag(user: User) -> Response:
    response = _json(UserOut.model_validate(user), 200)
    response.headers["ETag"] = etag_for(user.version)
    return response


@router.post(
    "/users/{user_id}/deactivate",
    response_model=UserOut,
    summary="停用账号 Deactivate an account",
    description="Takes effect on the account's next request, whatever tokens it still holds, and ends "
    "its sessions for good: activated again, it signs in afresh. Refused (409) for one's own account "
    "(`own_account`) and for the last active administrator (`last_admin`).",
    responses=problem_responses(Forbidden, NotFound, Conflict),
    tags=["identity"],
)
async def deactivate_user(request: Request, user_id: uuid.UUID, principal: UserAdmin) -> UserOut:
    user = await IdentityService(session_of(request)).set_active(user_id, False, principal)
    return UserOut.model_validate(user)


@router.post(
    "/users/{user_id}/activate",
    response_model=UserOut,
    summary="启用账号 Activate an account",
    description="A deactivated account may sign in again; the tokens it held before stay refused. "
    "Also unlocks an account locked by wrong passwords (`locked_until`).",
    responses=problem_responses(Forbidden, NotFound, IdempotencyKeyMismatch, IdempotencyInProgress),
    tags=["identity"],
)
async def activate_user(
    request: Request, user_id: uuid.UUID, principal: UserAdmin, idempotency_key: IdempotencyKey = None
) -> Response:
    async def work() -> Response:
        user = await IdentityService(session_of(request)).set_active(user_id, True, principal)
        # The locks at single addresses end with the one everywhere.
        identity_of(request).throttle.forget_account(user.username)
        return _json(UserOut.model_validate(user), 200)

    return await run_idempotent(request, principal, idempotency_key, work)


@router.post(
    "/users/{user_id}/password",
    response_model=UserOut,
    summary="重置密码 Reset an account's password",
    description="Sets a new password for another account (the rules as at creation) and ends every "
    "session of it. The password is temporary (`password_change_required`): its user must change it "
    "before doing anything else. One's own password is changed at `POST /v1/me/password` instead "
    "(409 `own_account`).",
    responses=problem_responses(Forbidden, NotFound, Conflict, IdempotencyKeyMismatch, IdempotencyInProgress),
    tags=["identity"],
)
async def reset_password(
    request: Request,
    user_id: uuid.UUID,
    data: PasswordReset,
    principal: UserAdmin,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    settings = request.app.state.settings
    svc = IdentityService(session_of(request), identity_of(request).passwords)

    async def work() -> Response:
        user = await svc.reset_password(user_id, data.password, settings.min_password_length, principal)
        identity_of(request).throttle.forget_account(user.username)
        request.state.audit_details = {"sessions_ended": "all"}
        return _json(UserOut.model_validate(user), 200)

    content = await _keyed_content(request, idempotency_key)
    return await run_idempotent(request, principal, idempotency_key, work, content=content)


# ---- API keys (admin: any organisation; body_admin: its own; signed in, never with a key) ----------


def _key_manager(principal: Principal) -> None:
    if principal.can(Permission.keys_manage) or principal.can(Permission.keys_manage_own):
        return
    # The role manages keys, but not with a key (principal.STAFF_ONLY): its administrator signs in.
    if principal.kind == "api_key" and ROLE_PERMISSIONS[principal.role] & STAFF_ONLY:
        raise Forbidden(
            Text(
                "API 密钥不能管理 API 密钥, 请由管理员登录后操作",
                "An API key cannot manage API keys: an administrator signs in to do it",
            ),
            code="staff_only",
        )
    raise Forbidden()


@router.post(
    "/api-keys",
    status_code=201,
    response_model=ApiKeyCreated,
    summary="创建 API 密钥 Create an API key",
    description="The key is in this response only; the service keeps a hash. Only a signed-in administrator "
    "(`admin`: any organisation; `body_admin`: its own) manages keys: an API key is refused (403 `staff_only`).",
    responses=problem_responses(Forbidden, IdempotencyKeyMismatch, IdempotencyInProgress),
    tags=["identity"],
)
async def create_key(
    request: Request, data: ApiKeyIn, principal: CurrentPrincipal, idempotency_key: IdempotencyKey = None
) -> Response:
    _key_manager(principal)
    if not principal.can(Permission.keys_manage) and data.organisation_id != principal.organisation_id:
        raise Forbidden()

    async def work() -> Response:
        created = await IdentityService(session_of(request)).create_key(
            data.organisation_id, data.role, data.name, principal.id, data.expires_at
        )
        request.state.audit_object = ("api_key", created.key.id)
        return _json(_created(created), 201)

    # A retry after a lost answer gets the same key back (stored encrypted, replayed only to the
    # same caller) instead of a second live key whose secret nobody holds.
    return await run_idempotent(request, principal, idempotency_key, work)


@router.get(
    "/api-keys",
    response_model=list[ApiKeyOut],
    summary="API 密钥 API keys",
    description=(
        "To a signed-in administrator: `admin` sees every organisation's keys, `body_admin` its own; "
        "oldest first (ties broken by id), `limit` a page, revoked and expired keys among them." + PAGED_ARRAY
    ),
    responses=problem_responses(Forbidden, ValidationFailed) | sends(200, "Link"),
    tags=["identity"],
)
async def list_keys(
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    organisation_id: Annotated[uuid.UUID | None, Query()] = None,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> list[ApiKeyOut]:
    _key_manager(principal)
    keys, next_cursor = await IdentityService(session_of(request)).key_page(
        principal, organisation_id, limit, cursor
    )
    link_next_page(request, response, next_cursor)
    return [ApiKeyOut.model_validate(k) for k in keys]


@router.post(
    "/api-keys/{key_id}/revoke",
    response_model=ApiKeyOut,
    summary="吊销 API 密钥 Revoke an API key",
    description="By a signed-in administrator (`admin`, or its own body's `body_admin`). The webhook "
    "subscriptions the key made stop with it: disabled (`disabled_reason` starting `subscriber_key_lapsed`), "
    "their pending deliveries cancelled, until a signed-in administrator enables them again.",
    responses=problem_responses(Forbidden, NotFound),
    tags=["identity"],
)
async def revoke_key(request: Request, key_id: uuid.UUID, principal: CurrentPrincipal) -> ApiKeyOut:
    _key_manager(principal)
    svc = IdentityService(session_of(request))
    key = await svc.key(key_id, principal, for_update=True)
    stopped = await svc.revoke(key, principal)
    if stopped:
        request.state.audit_details = {"webhooks_stopped": sorted(str(s) for s in stopped)}
    return ApiKeyOut.model_validate(key)


@router.post(
    "/api-keys/{key_id}/rotate",
    status_code=201,
    response_model=ApiKeyCreated,
    summary="轮换 API 密钥 Rotate an API key",
    description="Creates a successor (its `replaces_id` names the old key); both keys work until the old "
    "one is revoked. Webhook subscriptions the old key made stop when it is revoked (see revoke): make them "
    "anew with the successor, or have a signed-in administrator enable them again. The successor expires when the old key does, unless `expires_at` is given. By a "
    "signed-in administrator (`admin`, or its own body's `body_admin`); never by an API key.",
    responses=problem_responses(Forbidden, NotFound, Conflict, IdempotencyKeyMismatch, IdempotencyInProgress),
    tags=["identity"],
)
async def rotate_key(
    request: Request,
    key_id: uuid.UUID,
    principal: CurrentPrincipal,
    data: RotationIn | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    _key_manager(principal)
    svc = IdentityService(session_of(request))
    given = data is not None and "expires_at" in data.model_fields_set
    expires_at = data.expires_at if data is not None and given else INHERIT

    async def work() -> Response:
        key = await svc.key(key_id, principal, for_update=True)
        created = await svc.rotate(key, principal.id, expires_at)
        request.state.audit_object = ("api_key", created.key.id)
        request.state.audit_details = {"replaces": str(key_id)}
        return _json(_created(created), 201)

    # A rotation retried after a lost answer would otherwise meet its own successor (409
    # already_rotated), and the successor's secret, shown once, would be lost.
    return await run_idempotent(request, principal, idempotency_key, work)


def _created(created: CreatedKey) -> ApiKeyCreated:
    return ApiKeyCreated(**ApiKeyOut.model_validate(created.key).model_dump(), secret=created.secret)


def _json(model: BaseModel, status_code: int) -> Response:
    """The answer as the response model would have written it; built here because an idempotent
    request stores and replays the response itself."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")
