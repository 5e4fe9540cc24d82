"""The integrated front-end for window clerks, supervisors and mediators, served under `/`
beside the API under `/v1`: server-rendered pages over the same services as the API."""

from __future__ import annotations

import inspect

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from mediation.web import cases, dashboard, intake, public
from mediation.web.rendering import HERE, page_not_found, wants_page


def install(app: FastAPI) -> None:
    for module in (public, intake, cases, dashboard):
        app.include_router(module.router)
    # Vendored assets only (htmx, the stylesheets): the pages load nothing from another host.
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    # An address that is no page, asked for by a browser: a page saying so, not the API's JSON.
    api_handler = app.exception_handlers[HTTPException]

    async def not_found(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and exc.status_code == 404 and wants_page(request):
            return page_not_found(request)
        response = api_handler(request, exc)
        return await response if inspect.isawaitable(response) else response

    app.add_exception_handler(HTTPException, not_found)
