"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from consentry import __version__
from consentry.http.edge import DatabaseOutages, EdgeMiddleware, RequestMetrics
from consentry.http.errors import install_error_handlers
from consentry.http.hot_path import HotPath, hot_routes
from consentry.http.openapi import install as install_openapi
from consentry.http.responses import JSONResponse
from consentry.http.routers import (
    account_pages,
    accounts,
    admin,
    admin_pages,
    api_docs,
    auth,
    authorize,
    catalogue,
    clients,
    consents,
    demo,
    discovery,
    health,
    logout,
    pages,
    registration,
    resources,
    token,
    upstream_admin,
    upstreams,
    userinfo,
)
from consentry.jobs.worker import Worker
from consentry.logs import configure_logging
from consentry.runtime import Runtime, tune_collector_for_long_run, utcnow
from consentry.settings import Settings, get_settings

log = logging.getLogger(__name__)


HOT_ROUTES = (
    ("POST", "/oauth2/token"),
    ("POST", "/oauth2/introspect"),
    ("POST", "/oauth2/revoke"),
    ("GET", "/oauth2/authorize"),
    ("POST", "/api/v1/auth/login-password"),
)
HASHING_HOT_ROUTES = (("POST", "/api/v1/auth/login-password"),)  # of those, the ones that hash a password


class ConsentryApp(FastAPI):
    """FastAPI, with the hot routes answered at the door by the edge around the hot path (see hot_path)."""

    hot_path: HotPath
    hot_edge: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.hot_path.serves(scope):
            scope["app"] = self  # what Starlette sets: endpoints reach the runtime through request.app
            if self.root_path:
                scope["root_path"] = self.root_path
            await self.hot_edge(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    run_worker: bool = False,
    tune_collector: bool = False,
) -> FastAPI:
    """Build the application; the runtime (database engine, hashers) is created here unless one is given.

    A runtime passed in is owned by the caller and not closed on shutdown. ``run_worker`` runs the background
    jobs (webhook delivery) in this process, as `consentry serve` does; so does ``tune_collector`` (gc.freeze
    and rarer young collections after start-up: right for a server process, not for a test process that
    builds many apps).
    """
    owned = runtime is None
    runtime = runtime or Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.changes.start()  # hear what other nodes change
        await runtime.keys.ensure_loaded(now=utcnow())
        log.info("consentry %s serving as %s", __version__, settings.issuer)
        if tune_collector:
            tune_collector_for_long_run()
        worker = Worker(runtime) if run_worker else None
        task = asyncio.create_task(worker.run()) if worker else None
        try:
            yield
        finally:
            if worker and task:
                worker.stop()
                await task
            if owned:
                await runtime.close()

    app = ConsentryApp(
        title="Consentry",
        version=__version__,
        lifespan=lifespan,
        default_response_class=JSONResponse,
        docs_url=None,  # ours: routers/api_docs.py, with no CDN
        redoc_url=None,
        openapi_url="/openapi.json" if settings.is_development else None,
    )
    install_openapi(app)
    app.state.runtime = runtime
    app.state.settings = settings
    registry = runtime.metrics_registry
    app.state.metrics_registry = registry
    install_error_handlers(app)
    routers = (
        health.router, discovery.router, authorize.router, token.router, userinfo.router, auth.router,
        consents.router, pages.router, account_pages.router, admin_pages.router, demo.router, admin.router,
        accounts.router, clients.router, logout.router, catalogue.router, resources.router,
        registration.router, upstreams.router, upstream_admin.router,
    )  # fmt: skip
    for router in routers:
        app.include_router(router)
    if settings.is_development:  # as /openapi.json
        app.include_router(api_docs.router)
        app.mount("/static/api-docs", StaticFiles(directory=str(files("fastapi_offline") / "static")))
    app.mount("/static", StaticFiles(directory=str(files("consentry") / "http" / "static")), name="static")
    metrics = RequestMetrics(registry)
    app.state.outages = outages = DatabaseOutages()
    edge: dict[str, Any] = {
        "metrics": metrics,
        "outages": outages,
        "max_body_bytes": settings.max_body_bytes,
        "hsts": urlsplit(settings.issuer).scheme == "https",
    }
    app.add_middleware(EdgeMiddleware, **edge)
    app.hot_path = HotPath(hot_routes(routers, HOT_ROUTES), hashing=HASHING_HOT_ROUTES)
    app.hot_edge = EdgeMiddleware(app.hot_path, **edge)
    return app


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for ``X-Forwarded-For``: trusted only from the configured proxies, from none unless
    ``CONSENTRY_FORWARDED_ALLOW_IPS`` names some (a client must not choose the address its limits count)."""
    trusted = settings.forwarded_allow_ips
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or ""}


def app_from_environment() -> FastAPI:
    """Uvicorn factory (``consentry.http.app:app_from_environment``): settings from ``CONSENTRY_*``."""
    settings = get_settings()
    configure_logging(json_logs=not settings.is_development, level=settings.log_level)
    return create_app(settings, run_worker=settings.run_jobs, tune_collector=True)
