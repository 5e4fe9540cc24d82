"""Staff sign-in for the pages: the API's own access token, kept in a cookie.

The cookie holds the same short-lived JWT that `POST /v1/auth/token` issues, so the pages know no
second kind of credential: every request re-reads the account (a disabled user is out at once), and
a page request that finds the token past half its life gets a fresh one of the same session, so a
clerk who keeps working stays signed in while an idle session ends when the token does (等保:
session timeout). Signing out ends the session on the server, not only in this browser: a copy of
the cookie taken before is refused as well.

The cookie is HttpOnly and SameSite=Strict; every form also carries a CSRF token that must match a
second cookie (double submit), and a cross-site Origin is refused outright.

A member of staff whose password an administrator set is sent from every page to change it first
(等保: an initial or reset password is changed at first use), as the API refuses them everything else.
"""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from typing import Any

from fastapi import Request, Response

from mediation.core.db import Database
from mediation.core.errors import Forbidden, Unauthenticated
from mediation.core.i18n import Text
from mediation.core.principal import Principal, Role
from mediation.identity.auth import PASSWORD_CHANGE_REQUIRED, identity_of, staff_session

PASSWORD_PAGE = "/account/password"
SESSION_COOKIE = "mediation_session"
CSRF_COOKIE = "mediation_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"

# Roles that work in the pages; machine clients (courts, commissions) use the API.
WEB_ROLES = frozenset({Role.clerk, Role.supervisor, Role.body_mediator, Role.body_admin})


class SignInRequired(Unauthenticated):
    """The page needs a signed-in member of staff; the browser is sent to the sign-in page."""


class PasswordChangeFirst(Forbidden):
    """The member of staff must change the password an administrator set before using any page.
    A page asked for is answered with a redirect to the password page (the pages' error handling
    keeps a problem's status and headers); a form sent is refused (403), and recorded so, since
    nothing it asked for was done."""

    def __init__(self, request: Request) -> None:
        detail = Text(
            "您的密码由管理员设置, 请先修改密码再继续使用",
            "Your password was set by an administrator: change it before going on",
        )
        if request.method in ("GET", "HEAD"):
            super().__init__(
                detail, http_status=303, headers={"Location": PASSWORD_PAGE}, code=PASSWORD_CHANGE_REQUIRED
            )
        else:
            super().__init__(detail, code=PASSWORD_CHANGE_REQUIRED)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session(request: Request, response: Response, token: str, lifetime: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=lifetime,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (made on first use and set as a cookie by `remember_csrf`)."""
    token = getattr(request.state, "csrf", None) or request.cookies.get(CSRF_COOKIE)
    if not token or len(token) < 32:
        token = secrets.token_urlsafe(32)
    request.state.csrf = token
    return str(token)


def remember_csrf(request: Request, response: Response) -> None:
    token = getattr(request.state, "csrf", None)
    if token and token != request.cookies.get(CSRF_COOKIE):
        response.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path="/"
        )


def check_csrf(request: Request, submitted: str | None) -> None:
    """A change from a page must come from our own page: same origin, matching token."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin.rstrip("/") != str(request.base_url).rstrip("/"):
        raise Forbidden(Text("请求来源不是本系统页面", "The request did not come from this site"))
    expected = request.cookies.get(CSRF_COOKIE)
    given = submitted or request.headers.get(CSRF_HEADER)
    # Compared as bytes: `compare_digest` refuses non-ASCII text outright (a server error), and a
    # token of any other characters is simply not ours.
    if not expected or not given or not hmac.compare_digest(_bytes(expected), _bytes(given)):
        raise Forbidden(
            Text("页面已过期, 请刷新页面后重试", "The page has expired; reload it and try again"),
            csrf=True,
        )


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


async def current_principal(request: Request) -> Principal | None:
    """The signed-in member of staff, or None. Refreshes the token past half its life.
    `request.state.password_change_required` says whether their password must be changed first."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    identity = identity_of(request)
    db: Database = request.app.state.db
    try:
        async with db.reader() as session:
            staff = await staff_session(session, identity.tokens, token)
    except Unauthenticated:
        return None
    principal = staff.principal
    if principal.role not in WEB_ROLES:
        return None
    identity.limiter.check(principal.scope)
    request.state.principal = principal
    request.state.session_id = staff.session_id
    request.state.session_generation = staff.generation
    request.state.password_change_required = staff.password_change_required
    request.state.web_token = _refreshed(request, staff.claims, principal)
    return principal


def must_change_password(request: Request) -> bool:
    """Whether the signed-in member of staff still holds a password an administrator set."""
    return bool(getattr(request.state, "password_change_required", False))


async def visitor(request: Request) -> Principal | None:
    """Whoever asks for a page anyone may see: nobody signed in, or a member of staff, who is sent
    to change a password an administrator set first, as from every other page."""
    principal = await current_principal(request)
    if principal is not None and must_change_password(request):
        raise PasswordChangeFirst(request)
    return principal


def _refreshed(request: Request, claims: dict[str, Any], principal: Principal) -> tuple[str, int] | None:
    tokens = identity_of(request).tokens
    if int(claims["exp"]) - time.time() > tokens.lifetime / 2:
        return None
    # The same session, and the generation it was signed in with: signing out, or a password
    # changed elsewhere, ends the renewed token as it would have ended this one.
    issued = tokens.issue(
        uuid.UUID(principal.id),
        principal.role.value,
        principal.organisation_id,
        session_id=str(claims["sid"]),
        generation=int(claims["gen"]),
    )
    return issued.token, issued.expires_in


def keep_session(request: Request, response: Response) -> None:
    """Set the refreshed token, if the request earned one, and the CSRF cookie."""
    fresh = getattr(request.state, "web_token", None)
    if fresh:
        set_session(request, response, fresh[0], fresh[1])
    remember_csrf(request, response)


async def account_holder(request: Request) -> Principal:
    """The signed-in member of staff, even one whose password must still be changed: for the pages
    of their own account only (changing the password, signing out everywhere)."""
    principal = await current_principal(request)
    if principal is None:
        raise SignInRequired
    return principal


async def staff(request: Request) -> Principal:
    principal = await account_holder(request)
    if must_change_password(request):
        raise PasswordChangeFirst(request)
    return principal
