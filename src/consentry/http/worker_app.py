"""What an operator watches of a `consentry worker` (SPEC §11): ``/healthz``, ``/readyz`` and ``/metrics`` on
a port of its own, with the registration pipeline's figures (message rate, batch sizes, time from queueing
to insert, dead letters, retries that succeeded)."""

from __future__ import annotations

from fastapi import FastAPI

from consentry.http.edge import DatabaseOutages
from consentry.http.routers import health
from consentry.runtime import Runtime


def create_worker_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(title="Consentry worker", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.runtime = runtime
    app.state.outages = DatabaseOutages()
    app.state.metrics_registry = runtime.metrics_registry
    app.include_router(health.router)
    return app
