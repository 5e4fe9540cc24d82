"""The integrated front-end for window clerks, supervisors and mediators, served under `/`
beside the API under `/v1`: server-rendered pages over the same services as the API."""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from mediation.core.errors import DATABASE_ERRORS
from mediation.core.i18n import set_language
from mediation.web import cases, dashboard, documents, intake, public
from mediation.web.rendering import (
    HERE,
    WebRoute,
    page_not_found,
    page_not_opened,
    render,
    see_other,
    wants_page,
)

# The addresses a case page's forms post to: after a refused form the address bar shows one.
CASE_FORM = re.compile(
    r"^/cases/(?P<case>[0-9a-fA-F-]{36})/(?:actions|agreements|supervision-orders|alerts|documents|sittings|corrections)(?:/[^?]*)?$"
)


def install(app: FastAPI) -> None:
    for module in (public, intake, cases, documents, dashboard):
        app.include_router(module.router)
    # Vendored assets only (htmx, the stylesheets): the pages load nothing from another host.
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    # An address that is no page, asked for by a browser: a page saying so, not the API's JSON.
    api_handler = app.exception_handlers[HTTPException]

    async def as_page(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and wants_page(request):
            if exc.status_code == 404:
                return page_not_found(request)
            if exc.status_code == 405 and request.method in ("GET", "HEAD"):
                # A form's address opened as a page (Enter in the address bar after a refusal, a
                # bookmark): a case's form leads back to its case, any other says what to do.
                form = CASE_FORM.match(request.url.path)
                if form:
                    return see_other(f"/cases/{form.group('case')}")
                return page_not_opened(request, exc.headers)
        response = api_handler(request, exc)
        return await response if inspect.isawaitable(response) else response

    app.add_exception_handler(HTTPException, as_page)

    # The database down, or a bug: on a page, a page (in Chinese, with the pages' headers), since a
    # clerk at the window can do nothing with the API's problem details. Logged as the API's are.
    for kind in (*DATABASE_ERRORS, Exception):
        app.add_exception_handler(kind, _failure_page(app.exception_handlers[kind]))


def _failure_page(api_handler: Callable[[Request, Exception], Any]) -> Callable[..., Awaitable[Response]]:
    async def on_page(request: Request, exc: Exception) -> Response:
        answered = api_handler(request, exc)
        response: Response = await answered if inspect.isawaitable(answered) else answered
        if not isinstance(request.scope.get("route"), WebRoute) or response.status_code not in FAILURE_PAGES:
            return response
        set_language("zh")
        title, detail = FAILURE_PAGES[response.status_code]
        page = render(
            request,
            "error.html",
            {"title": title, "detail": detail, "status": response.status_code},
            response.status_code,
        )
        if "retry-after" in response.headers:
            page.headers["Retry-After"] = response.headers["retry-after"]
        return page

    return on_page


FAILURE_PAGES = {
    503: (
        "服务暂时不可用",
        "系统暂时无法处理这次请求, 本次提交的内容 (如有) 没有保存。请稍候片刻后刷新或重新提交。",
    ),
    500: (
        "系统出错",
        "系统处理这次请求时出错, 本次提交的内容 (如有) 没有保存。请稍后重试; 如仍出错, 请联系系统管理员。",
    ),
}
