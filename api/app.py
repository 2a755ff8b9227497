"""The FastAPI application factory: routers, error mapping, CORS, metrics, live feed lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib import resources

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from api import errors
from api.limits import LimitsMiddleware
from api.metrics import MetricsMiddleware
from api.routes import (
    alerts,
    dashboard,
    density,
    health,
    opendata,
    tourism,
    traffic,
    transparency,
    windows,
    zones,
)
from api.state import ApiState
from hexpulse.settings import Settings, get_settings

DESCRIPTION = """Released (differentially private) crowd density and traffic over H3 cells.

Every number is noisy and carries its uncertainty (σ or a 95% interval). Authenticate with
`Authorization: Bearer <key>` (create keys with `hexpulse keys create`); only /healthz, /readyz,
the transparency page /privacy and the open data under /open-data/ are open. Released windows
never change, so responses for an explicit `at` are cacheable forever.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    state, keys, limiter = ApiState.build(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        poller = asyncio.create_task(state.feed.run(), name="release-window-feed")
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            state.pool.close()

    app = FastAPI(title="hexpulse API", version="1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.api = state
    app.state.keys = keys
    app.state.limiter = limiter
    errors.install(app)
    for module in (
        density,
        traffic,
        windows,
        zones,
        alerts,
        health,
        dashboard,
        transparency,
        opendata,
        tourism,
    ):
        app.include_router(module.router)
    static = resources.files("api") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match"],
            expose_headers=["ETag", "Retry-After", "X-Cache"],
            max_age=600,
        )
    app.add_middleware(LimitsMiddleware, settings=settings)  # inside metrics: refusals are counted
    app.add_middleware(MetricsMiddleware)
    return app
