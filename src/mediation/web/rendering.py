"""Templates, the pages' route class and their error pages."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException

from mediation.core.db import UnitOfWorkRoute
from mediation.core.errors import ProblemError, StaleVersion, Unauthenticated, field_errors
from mediation.core.i18n import cn_date, set_language
from mediation.core.principal import Permission, Principal, Role
from mediation.documents.service import DOCUMENT_ENTRIES
from mediation.web.forms import PATH_PART, error_links
from mediation.web.labels import (
    ENUM_LABELS,
    agreement_effective,
    agreement_work,
    corrected_fields,
    decline_advice,
    document_entry,
    entry_reason,
    enum_label,
    group_counted,
    risk_report,
    sitting_moved,
    sitting_outcome,
    visit_result,
)
from mediation.web.session import csrf_token, keep_session
from mediation.web.submissions import once_per_submission

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def _zone(context: Context) -> ZoneInfo:
    """The center's time zone (MEDIATION_TIMEZONE), as its clock keeps it: a time is shown as the
    day and hour the clerk lives them, the same day the legal periods are counted in."""
    request = context.get("request")
    clock = getattr(getattr(getattr(request, "app", None), "state", None), "clock", None)
    return clock.zone if clock is not None else ZoneInfo("Asia/Shanghai")


@pass_context
def _local(context: Context, value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    return value.astimezone(_zone(context)).strftime(fmt)


@pass_context
def _sitting_moved(context: Context, action: str, payload: dict[str, object] | None) -> str:
    return sitting_moved(action, payload, _zone(context))


@pass_context
def _risk_report(context: Context, action: str, payload: dict[str, object] | None) -> str:
    return risk_report(action, payload, _zone(context))


def _the_day(context: Context, value: date | datetime | str) -> date:
    """The day `value` falls on at the center: a time in its time zone, a day as it is."""
    if isinstance(value, str):  # a response model dumped as JSON, as a receipt's case is
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        return value.astimezone(_zone(context)).date()
    return value


@pass_context
def _day(context: Context, value: date | datetime | str | None) -> str:
    """A day on a screen: ISO 8601 (2026-12-03)."""
    return "" if value is None or value == "" else _the_day(context, value).isoformat()


@pass_context
def _cn_date(context: Context, value: date | datetime | str | None) -> str:
    """A day on a printed paper, as formal papers write it (2026年12月3日, GB/T 9704); a time is
    dated by the center's day, as `day` dates it on a screen."""
    return "" if value is None or value == "" else cn_date(_the_day(context, value))


def _remaining(seconds: int | None) -> str:
    """Time left on a clock, the way a clerk says it."""
    if seconds is None:
        return ""
    late = seconds < 0
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours = rest // 3600
    text = f"{days}天{hours}小时" if days else f"{hours}小时{(rest % 3600) // 60}分"
    return f"已超期{text}" if late else f"剩余{text}"


def _money(value: object) -> str:
    if value is None or value == "":
        return ""
    return f"{float(str(value)):,.2f}"


def value_at(values: Any, path: str) -> Any:
    """The submitted value at a form path (`parties[0].name`), to refill a refused form."""
    node = values
    for m in PATH_PART.finditer(path):
        key: Any = m.group(1) if m.group(1) is not None else int(m.group(2))
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _alert_title(title: str) -> str:
    """An alert's title without the kind it opens with ("风险预警: …"): the page names the kind
    beside it, by the label the alert lists filter on."""
    kind, said, rest = title.partition(": ")
    return rest if said and kind.endswith("预警") and rest else title


templates.env.filters.update(local=_local, day=_day, cn_date=_cn_date, remaining=_remaining, money=_money)
templates.env.globals.update(
    value_at=value_at,
    error_links=error_links,
    alert_title=_alert_title,
    label=enum_label,
    entry_reason=entry_reason,
    visit_result=visit_result,
    corrected_fields=corrected_fields,
    group_counted=group_counted,
    decline_advice=decline_advice,
    sitting_outcome=sitting_outcome,
    document_entry=document_entry,
    DOCUMENT_ENTRIES=DOCUMENT_ENTRIES,
    sitting_moved=_sitting_moved,
    risk_report=_risk_report,
    agreement_work=agreement_work,
    agreement_effective=agreement_effective,
    LABELS=ENUM_LABELS,
    Role=Role,
    Permission=Permission,
)


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    principal: Principal | None = None,
) -> HTMLResponse:
    principal = principal or getattr(request.state, "principal", None)
    values = {"principal": principal, "csrf": csrf_token(request), "path": request.url.path}
    values.update(context or {})
    response = templates.TemplateResponse(request, name, values, status_code=status_code)
    secure_page(response)
    return response


# Pages hold personal data: not cached, never framed by another site, scripts only our own file.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}


def secure_page(response: Response) -> None:
    for key, value in PAGE_HEADERS.items():
        response.headers.setdefault(key, value)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def sign_in_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(target, safe='')}"


class WebRoute(UnitOfWorkRoute):
    """The unit of work of the API (one commit, the audit trail) with pages' manners: a missing
    sign-in sends the browser to the sign-in page, a refusal is a page in Chinese, not JSON, and
    the session cookie is renewed on the way out. Unknown query parameters are left alone: links
    from elsewhere and browsers add their own."""

    strict_requests = False
    is_page = True  # read by the middleware that answers a timeout before any handler can

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            # The pages are in Chinese, and so is every message on them, whatever the browser asks.
            set_language("zh")
            try:
                # A form sent twice a moment apart is known before it queues for a turn to write.
                response = await once_per_submission(request, handler, form_still_running)
            except Unauthenticated:
                if request.method in ("GET", "HEAD"):
                    response = see_other(sign_in_url(request))
                else:
                    # Back to the page the form was on, once signed in again.
                    referer = urlsplit(request.headers.get("referer", ""))
                    same_site = referer.netloc == request.url.netloc and referer.path.startswith("/")
                    context = {
                        "title": "需要登录",
                        "detail": "登录已过期, 请重新登录后再提交。",
                        "login": True,
                        "next": referer.path if same_site and not referer.path.startswith("//") else "",
                    }
                    response = render(request, "error.html", context, 401)
            except RequestValidationError as exc:
                # Only an address edited by hand, or a form altered past its own limits, gets here:
                # the pages' links and forms send what the routes take.
                wrong = "; ".join(f"{e['field']}: {e['message']}" for e in field_errors(exc.errors()))
                title = "页面地址有误" if request.method in ("GET", "HEAD") else "提交的内容有误"
                response = render(
                    request, "error.html", {"title": title, "detail": wrong, "status": 422}, 422
                )
            except HTTPException as exc:
                if exc.status_code != 400:
                    raise
                # The form could not be read (more fields than any page sends, or a malformed
                # multipart body): the framework's JSON answer would be all a clerk saw. 422, as
                # the API answers an unreadable body and as the audit trail records it.
                detail = "表单无法读取 (字段过多或格式有误), 没有保存任何内容。请回到原页面重新填写后提交。"
                response = render(
                    request,
                    "error.html",
                    {"title": "提交的表单无法读取", "detail": detail, "status": 422},
                    422,
                )
            except (ProblemError, StaleDataError) as caught:
                # A versioned row changed under the flush: the page says so as for a stale form.
                problem = caught if isinstance(caught, ProblemError) else StaleVersion()
                body = problem.body()
                response = render(
                    request,
                    "error.html",
                    {"title": body["title"], "detail": body.get("detail"), "status": problem.http_status},
                    problem.http_status,
                )
                for key, value in problem.headers.items():
                    response.headers[key] = value
            keep_session(request, response)
            return response

        return page


def wants_page(request: Request) -> bool:
    """A browser asking for a page, not a client of the API (which is under /v1 and reads JSON)."""
    return not request.url.path.startswith("/v1/") and "text/html" in request.headers.get("accept", "")


def page_not_found(request: Request) -> HTMLResponse:
    set_language("zh")
    detail = "您要找的页面不存在, 可能是地址有误或链接已失效。"
    return render(request, "error.html", {"title": "页面不存在", "detail": detail, "status": 404}, 404)


def form_still_running(request: Request) -> HTMLResponse:
    """The same form sent again while the first submission is still being handled, for longer than
    it is worth waiting: nothing more is done with this one."""
    detail = (
        "此表单已提交, 正在处理中, 本次重复提交不会再办理一次。请稍候片刻后刷新原页面查看结果, 不要再次提交。"
    )
    response = render(request, "error.html", {"title": "此表单已提交", "detail": detail, "status": 409}, 409)
    response.headers["Retry-After"] = "5"
    return response


def page_not_opened(request: Request, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """A form's address opened as a page: it takes a form sent from its page, and shows none."""
    set_language("zh")
    detail = "这个地址用于提交表单, 不能直接打开。请回到原页面, 使用页面上的按钮办理。"
    response = render(
        request, "error.html", {"title": "不能直接打开此地址", "detail": detail, "status": 405}, 405
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value  # Allow: what the address does take (RFC 9110 §15.5.6)
    return response
