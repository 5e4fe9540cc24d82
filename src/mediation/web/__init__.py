"""The integrated front-end for window clerks, supervisors and mediators, served under `/`
beside the API under `/v1`: server-rendered pages over the same services as the API."""

from __future__ import annotations

import inspect
import re

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from mediation.web import cases, dashboard, intake, public
from mediation.web.rendering import HERE, page_not_found, page_not_opened, see_other, wants_page

# The addresses a case page's forms post to: after a refused form the address bar shows one.
CASE_FORM = re.compile(
    r"^/cases/(?P<case>[0-9a-fA-F-]{36})/(?:actions|agreements|supervision-orders|alerts)(?:/[^?]*)?$"
)


def install(app: FastAPI) -> None:
    for module in (public, intake, cases, dashboard):
        app.include_router(module.router)
    # Vendored assets only (htmx, the stylesheets): the pages load nothing from another host.
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    # An address that is no page, asked for by a browser: a page saying so, not the API's JSON.
    api_handler = app.exception_handlers[HTTPException]

    async def as_page(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and wants_page(request):
            if exc.status_code == 404:
                return page_not_found(request)
            if exc.status_code == 405 and request.method == "GET":
                # A form's address opened as a page (Enter in the address bar after a refusal, a
                # bookmark): a case's form leads back to its case, any other says what to do.
                form = CASE_FORM.match(request.url.path)
                if form:
                    return see_other(f"/cases/{form.group('case')}")
                return page_not_opened(request, exc.headers)
        response = api_handler(request, exc)
        return await response if inspect.isawaitable(response) else response

    app.add_exception_handler(HTTPException, as_page)
