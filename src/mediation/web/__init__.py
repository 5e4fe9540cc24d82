"""The integrated front-end for window clerks, supervisors and mediators, served under `/`
beside the API under `/v1`: server-rendered pages over the same services as the API."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from mediation.web import cases, dashboard, intake, public
from mediation.web.rendering import HERE


def install(app: FastAPI) -> None:
    for module in (public, intake, cases, dashboard):
        app.include_router(module.router)
    # Vendored assets only (htmx, the stylesheets): the pages load nothing from another host.
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
