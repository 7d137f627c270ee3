"""The API's documentation pages (development): Swagger UI at ``/docs`` and ReDoc at ``/redoc``, both from
assets this server serves itself (the ``fastapi-offline`` package's copies), so they load with no network."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from consentry.http.pages import render

router = APIRouter(include_in_schema=False)

# The site's policy, with what the two viewers need: the styles they inject, data: images and fonts, and
# ReDoc's search worker.
DOCS_CSP = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "worker-src 'self' blob:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


def _page(request: Request, *, redoc: bool) -> Response:
    response = render(request, "api_docs.html", {"redoc": redoc})
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


@router.get("/docs")
async def swagger_ui(request: Request) -> Response:
    return _page(request, redoc=False)


@router.get("/redoc")
async def redoc(request: Request) -> Response:
    return _page(request, redoc=True)
