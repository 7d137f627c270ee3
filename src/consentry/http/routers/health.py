"""Liveness, readiness and metrics (SPEC §5)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from consentry.http import answer_bodies as reply
from consentry.http.deps import RuntimeDep
from consentry.http.responses import JSONResponse, error_response

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=reply.Health)
async def healthz() -> JSONResponse:
    """The process is up and serving."""
    return JSONResponse({"status": "ok"})


READINESS_WITHIN_SECONDS = 0.8  # a load balancer asks often and must hear at once, even of a frozen database


@router.get("/readyz", response_model=reply.Health)
async def readyz(request: Request, runtime: RuntimeDep) -> Response:
    """Ready to take traffic: the database answers, within a second, and Redis when it is configured."""
    outages = request.app.state.outages
    try:
        await runtime.database.ping(within=READINESS_WITHIN_SECONDS)
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log, not the caller
        outages.seen_down(exc)
        return error_response(
            503, "temporarily_unavailable", "the database is not reachable", {"Retry-After": "1"}
        )
    outages.seen_up()
    if not await runtime.rate_limiter.check_store(within=READINESS_WITHIN_SECONDS):
        return error_response(
            503,
            "temporarily_unavailable",
            "the rate-limit store (Redis) is not reachable",
            {"Retry-After": "1"},
        )
    return JSONResponse({"status": "ready", "database": runtime.database.dialect})


@router.get(
    "/metrics",
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
