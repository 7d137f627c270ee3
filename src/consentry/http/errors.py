"""Map every failure to SPEC §5's JSON error shape; nothing a client sends may surface as a bare 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from consentry.errors import ConsentryError, ExpiredFormError
from consentry.http.deps import wants_html
from consentry.http.pages import error_page
from consentry.http.responses import error_response

log = logging.getLogger(__name__)

_HTTP_ERROR_CODES = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "header"))
        parts.append(f"{location or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "malformed request"


def refusal_response(exc: ConsentryError) -> Response:
    """A refusal in SPEC §5's shape; the debug reason goes to the log only."""
    if exc.debug:
        log.info("request refused: %s", exc.error, extra={"debug": exc.debug})
    return error_response(exc.status_code, exc.error, exc.description, exc.headers() or None)


def unexpected_error_response(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "server_error", "an unexpected error occurred; it has been logged")


def _for_a_person(request: Request) -> bool:
    """A browser navigating to a page (not a program calling the API) reads a page, not JSON."""
    return wants_html(request) and not request.url.path.startswith(_API_PATHS)


_API_PATHS = ("/api/", "/oauth2/token", "/oauth2/introspect", "/oauth2/revoke", "/oauth2/userinfo")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ConsentryError)
    async def _consentry_error(request: Request, exc: ConsentryError) -> Response:
        if _for_a_person(request):
            page = error_page(
                request,
                exc.error,
                exc.message,
                values=exc.values,
                status_code=exc.status_code,
                expired_form=isinstance(exc, ExpiredFormError),
            )
            page.headers.update(exc.headers())
            return page
        return refusal_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> Response:
        return error_response(400, "invalid_request", _describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_ERROR_CODES.get(
            exc.status_code, "invalid_request" if exc.status_code < 500 else "server_error"
        )
        detail = exc.detail if isinstance(exc.detail, str) else None
        headers = dict(exc.headers) if exc.headers else None
        if _for_a_person(request):
            page = error_page(request, code, detail or code.replace("_", " "), status_code=exc.status_code)
            page.headers.update(headers or {})
            return page
        return error_response(exc.status_code, code, detail, headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return unexpected_error_response(request, exc)
