"""The front door: the landing page, staff sign-in and sign-out (of this session, or of every
session of the account), a member of staff's own password, and the parties' status lookup."""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from mediation.bodies.models import Body
from mediation.core.db import session_of
from mediation.core.errors import (
    IdempotencyKeyMismatch,
    TooManyRequests,
    Unauthenticated,
    ValidationFailed,
)
from mediation.core.i18n import Text
from mediation.core.idempotency import run_idempotent
from mediation.core.pii import redact_text
from mediation.core.principal import Role
from mediation.disputes.lifecycle import STATUS_LABELS, Status
from mediation.disputes.lookup import PAGE_LOOKUP, WRONG_CODE, handoff_of
from mediation.disputes.router import looked_up, lookup_handoff_out, next_step, service
from mediation.disputes.schemas import StatusLookupIn, as_printed
from mediation.identity.auth import (
    ORGANISATION_SUSPENDED,
    claimed_principal,
    client_address,
    identity_of,
    make_principal,
    token_claims,
)
from mediation.identity.router import (
    check_password_guess,
    check_sign_in_limits,
    keyed_content,
    record_refused_sign_in,
)
from mediation.identity.service import ACCOUNT_LOCKED, IdentityService, normalised_username
from mediation.web.forms import errors_of
from mediation.web.rendering import WebRoute, render, see_other
from mediation.web.session import (
    PASSWORD_PAGE,
    SESSION_COOKIE,
    WEB_ROLES,
    account_holder,
    check_csrf,
    clear_session,
    current_principal,
    must_change_password,
    set_session,
    visitor,
)

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def _home_of(role: Role) -> str:
    return "/dashboard" if role == Role.supervisor else "/queue"


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site: an open redirect would let a link send a clerk anywhere."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    principal = await visitor(request)
    if principal is not None:
        return see_other(_home_of(principal.role))
    return render(request, "home.html")


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", {"next": _safe_next(next) or "", "error": None, "username": ""})


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    check_csrf(request, csrf)
    identity = identity_of(request)
    # Normalised before the limits: " clerk" must count against the same account as "clerk".
    username = normalised_username(username)
    address = client_address(request)
    # The API's limits on guessing apply to the page as well: per address and per account at it.
    try:
        check_sign_in_limits(request, username)
    except TooManyRequests as limited:
        # Said on the sign-in page, in Chinese, with how long to wait (the name typed kept).
        context = {
            "next": _safe_next(next) or "",
            "error": str(limited.body().get("detail")),
            "username": username,
        }
        page = render(request, "login.html", context, 429)
        page.headers.update(limited.headers)
        return page
    # What was typed may be a mobile or ID number: masked as the logs mask it.
    request.state.audit_details = {"username": redact_text(username), "via": "web"}
    session = session_of(request)
    svc = IdentityService(session, identity.passwords)
    try:
        # A NUL no account name or password holds (and PostgreSQL cannot compare): a wrong sign-in.
        if not username or not password or "\x00" in username or "\x00" in password:
            raise Unauthenticated
        user, token = await svc.sign_in(
            username,
            password,
            identity.tokens,
            address=address,
            locked_here_until=identity.throttle.locked_here(username, address),
        )
        if Role(user.role) not in WEB_ROLES:
            raise Unauthenticated
    except Unauthenticated as refused:
        await session.rollback()
        record_refused_sign_in(request, refused, username)
        code = refused.extensions.get("code")
        if code == ORGANISATION_SUSPENDED:
            error = "所属机构已暂停工作, 暂不能登录"
        elif code == ACCOUNT_LOCKED:  # the clerk typing the right password is told why it fails
            error = refused.detail.zh if isinstance(refused.detail, Text) else "账号已暂时锁定"
        else:
            error = "用户名或密码错误, 或该账号不能使用工作台"
        context = {"next": _safe_next(next) or "", "error": error, "username": username}
        return render(request, "login.html", context, 401)
    identity.throttle.succeeded(username, address)
    organisation = await session.get(Body, user.organisation_id) if user.organisation_id else None
    request.state.principal = make_principal(
        Role(user.role), str(user.id), organisation, kind="user", name=user.display_name
    )
    request.state.audit_object = ("user", user.id)
    # A password an administrator set is changed before anything else: straight to its page.
    target = PASSWORD_PAGE if user.password_change_required else _safe_next(next) or _home_of(Role(user.role))
    response = see_other(target)
    set_session(request, response, token.token, token.expires_in)
    return response


@router.post("/logout")
async def logout(
    request: Request,
    csrf: Annotated[str, Form(max_length=100)] = "",
    everywhere: Annotated[bool, Form()] = False,
) -> Response:
    """Ends the session on the server, as `POST /v1/auth/logout` does: the cookie's token, and any
    copy of it, is refused from now on. A cookie already invalid is only deleted. 退出所有设备
    (`everywhere`) ends every session of the account, which takes a session still signed in."""
    check_csrf(request, csrf)
    if everywhere:
        principal = await account_holder(request)
        user_id = uuid.UUID(principal.id)
        request.state.audit_object = ("user", user_id)
        await IdentityService(session_of(request)).sign_out_everywhere(user_id)
        request.state.audit_details = {"sessions_ended": "all", "via": "web"}
        response = see_other("/login")
        clear_session(response)
        # Not renewed on the way out: the token of a session just ended is no use to keep.
        request.state.web_token = None
        return response
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        identity = identity_of(request)
        try:
            user_id, claims = token_claims(identity.tokens, token)
            principal = claimed_principal(user_id, claims)
        except Unauthenticated:
            pass
        else:
            request.state.principal = principal
            request.state.audit_object = ("user", user_id)
            await IdentityService(session_of(request)).sign_out(
                user_id, str(claims["sid"]), identity.tokens, token_expires=float(claims["exp"])
            )
    response = see_other("/login")
    clear_session(response)
    return response


# ---- the member of staff's own password ---------------------------------------------------------


def _password_page(
    request: Request, errors: dict[str, str] | None = None, status_code: int = 200, *, changed: bool = False
) -> Response:
    context = {
        "errors": errors or {},
        "changed": changed,
        # Sent here from every page until the password an administrator set is changed: say why.
        "required": must_change_password(request),
        "min_length": request.app.state.settings.min_password_length,
        # One change per form shown: a second click sends the same key and gets the first answer,
        # not a refusal of the old password it no longer has.
        "idempotency_key": secrets.token_urlsafe(18),
    }
    return render(request, "password.html", context, status_code)


@router.get("/account/password", response_class=HTMLResponse)
async def password_form(request: Request, changed: bool = False) -> Response:
    await account_holder(request)
    return _password_page(request, changed=changed)


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(
    request: Request,
    current_password: Annotated[str, Form(max_length=256)] = "",
    new_password: Annotated[str, Form(max_length=256)] = "",
    new_password_again: Annotated[str, Form(max_length=256)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
    idempotency_key: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """修改密码: the current password, and the new one twice; the rules are the API's
    (`POST /v1/me/password`). The user's other sessions end, this one goes on."""
    check_csrf(request, csrf)
    principal = await account_holder(request)
    user_id = uuid.UUID(principal.id)
    request.state.audit_object = ("user", user_id)
    typed = {
        "current_password": current_password,
        "new_password": new_password,
        "new_password_again": new_password_again,
    }
    errors = {name: "此项为必填项" for name, value in typed.items() if not value}
    if not errors and new_password != new_password_again:
        errors["new_password_again"] = "两次输入的新密码不一致"
    if errors:
        return _password_page(request, errors, 422)
    settings = request.app.state.settings
    svc = IdentityService(session_of(request), identity_of(request).passwords)

    async def work() -> Response:
        await svc.change_password(
            user_id,
            current_password,
            new_password,
            settings.min_password_length,
            session_id=request.state.session_id,
            generation=request.state.session_generation,
            before_check=lambda user: check_password_guess(request, user),
        )
        request.state.audit_details = {"sessions_ended": "others", "via": "web"}
        return see_other("/account/password?changed=true")

    # The key stands for what was typed in this form, kept only as a keyed hash (no plain digest a
    # reader of the table could guess passwords against): the same form sent again gets the first
    # answer; the form sent back with other passwords under its old key is another change, refused
    # rather than answered "changed" for a change never made.
    content = keyed_content(request, json.dumps(typed, sort_keys=True, ensure_ascii=False))
    try:
        return await run_idempotent(request, principal, idempotency_key or None, work, content=content)
    except IdempotencyKeyMismatch:
        errors = {
            "_form": "这张表单已经提交过, 密码已按当时填写的内容修改, 本次填写的内容未被采用。"
            "如需再次修改密码, 请在下面重新填写 (当前密码为上次修改后的新密码)。"
        }
        return _password_page(request, errors, 422)
    except ValidationFailed as refused:
        return _password_page(request, errors_of(refused), 422)
    except TooManyRequests as limited:
        # Said at the field the guess was made in, with how long to wait.
        page = _password_page(request, {"current_password": str(limited.body().get("detail"))}, 429)
        page.headers.update(limited.headers)
        return page


@router.get("/session/renew", status_code=204)
async def renew_session(request: Request) -> Response:
    """A clerk typing into a long form is working, though no page is requested: the page asks here
    now and then while it is typed in, and a token past half its life is renewed on the way out
    (`keep_session`), as any page request renews it; nothing is changed or audited. A session
    already over answers 401, and the page says so before anything typed is lost."""
    signed_in = await current_principal(request) is not None
    # Said, not redirected to the sign-in page: the page that asks is not the one to leave.
    return Response(status_code=204 if signed_in else 401)


@router.get("/lookup", response_class=HTMLResponse)
async def lookup_form(request: Request) -> HTMLResponse:
    # Open to everyone; a member of staff signed in keeps the staff menu.
    await visitor(request)
    return render(request, "lookup.html", {"result": None, "errors": {}, "values": {}})


@router.post("/lookup", response_class=HTMLResponse, name=PAGE_LOOKUP)
async def lookup(
    request: Request,
    case_number: Annotated[str, Form(max_length=64)] = "",
    query_code: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> HTMLResponse:
    """Case number and query code -> status and next step; never a name or a number (the same
    answer as `POST /v1/status-lookup`, and the same limits)."""
    check_csrf(request, csrf)
    await visitor(request)
    # A phone's Chinese input method types full-width digits, letters and dashes (３３０６８１－…,
    # ＡＢＣＤ) and the ideographic space: read as the receipt prints them, or the party holding
    # the right receipt is told the code is wrong.
    values = {"case_number": as_printed(case_number), "query_code": as_printed(query_code)}
    # What was typed may be an ID or mobile number, not a case number: masked as the logs mask it
    # (audit records are kept for years and never altered; 个人信息保护法 Art. 6, 51).
    request.state.audit_details = {"case_number": redact_text(values["case_number"]), "via": "web"}
    try:
        data = StatusLookupIn.model_validate(values)
    except ValidationError as exc:
        return render(
            request, "lookup.html", {"result": None, "errors": errors_of(exc), "values": values}, 422
        )
    svc = await service(request)
    found = await looked_up(request, svc, data)
    if found.dispute is None:
        errors = {"_form": WRONG_CODE.zh}
        return render(request, "lookup.html", {"result": None, "errors": errors, "values": values}, 404)
    dispute = found.dispute
    status = Status(dispute.status)
    today = svc.clock.today()
    handoff = await handoff_of(svc.session, dispute)
    result = {
        "case_number": dispute.case_number,
        "status_label": STATUS_LABELS[status].get(),
        "next_step": next_step(dispute, today, svc.settings.confirmation_window_days, handoff).get(),
        "handoff": lookup_handoff_out(handoff),
        "updated_at": dispute.updated_at,
    }
    return render(request, "lookup.html", {"result": result, "errors": {}, "values": {}})
