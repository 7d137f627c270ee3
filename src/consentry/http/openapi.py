"""The OpenAPI document, as the API really answers: what every route declares (its ``responses=`` and, for
the endpoints that read their own request, ``openapi_extra``), plus what every operation may answer:

- 400 where FastAPI would document 422 (validation errors are answered 400 ``invalid_request``);
- 408 and 413 where a body is read (it stopped arriving, or it is too large);
- 503 with ``Retry-After`` wherever a dependency is needed (a database that is down or does not answer).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from consentry.http.schemas import ErrorBody

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
NO_DEPENDENCY = frozenset({"/healthz", "/metrics"})
SECURITY_SCHEMES = {
    "session": {"type": "http", "scheme": "bearer", "description": "A session token from sign-in"},
    "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "consentry_session"},
    "client": {"type": "http", "scheme": "basic", "description": "client_secret_basic (RFC 6749 §2.3.1)"},
    "accessToken": {"type": "http", "scheme": "bearer", "description": "An OAuth 2.0 access token"},
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def describe(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(title=app.title, version=app.version, routes=app.routes)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["ErrorBody"] = ErrorBody.model_json_schema()
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for response in responses.values():
                # FastAPI's default JSON entry, with no schema, on routes that answer a page, a redirect or
                # metrics text: each documents what it does answer (every JSON answer has its model).
                if response.get("content", {}).get("application/json") == {"schema": {}}:
                    del response["content"]["application/json"]
            if responses.pop("422", None) is not None or operation.get("parameters"):
                responses.setdefault("400", _error("The request is invalid (invalid_request)"))
            if "requestBody" in operation:
                responses.setdefault("400", _error("The request is invalid (invalid_request)"))
                responses.setdefault("408", _error("The request did not arrive in time (request_timeout)"))
                responses.setdefault("413", _error("The body is too large (request_too_large)"))
            if path not in NO_DEPENDENCY:
                unavailable = _error("A dependency is down or not answering; Retry-After says when to retry")
                unavailable["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
                responses.setdefault("503", unavailable)
    return document


def install(app: FastAPI) -> None:
    """Serve :func:`describe`'s document at the app's ``openapi_url`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def query_parameters(*names: str, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Query parameters of an endpoint that reads its own request: each a string."""
    return [
        {"name": name, "in": "query", "required": name in required, "schema": {"type": "string"}}
        for name in names
    ]


def form_body(*names: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """An ``application/x-www-form-urlencoded`` body of string fields (RFC 6749 §3.2, RFC 7009, RFC 7662)."""
    schema: dict[str, Any] = {"type": "object", "properties": {name: {"type": "string"} for name in names}}
    if required:
        schema["required"] = list(required)
    return {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": schema}}}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


HTML = {"text/html": {"schema": {"type": "string"}}}
ANY_OBJECT: dict[str, Any] = {"type": "object"}
