"""FastAPI dependencies as ``Annotated`` aliases, so routers stay short."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from consentry.errors import ForbiddenError, InvalidRequestError, UnauthenticatedError
from consentry.runtime import Runtime, utcnow
from consentry.services.sessions import SESSION_COOKIE, SignedIn, authenticate_session
from consentry.storage.audit import RequestOrigin

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"
MAX_FORM_FIELDS = 1000  # as Starlette's form parser allows
Body = TypeVar("Body", bound=BaseModel)


# Dependencies are coroutines even when they do not await: FastAPI runs a plain ``def`` dependency in
# its thread pool, which costs a thread hop per request.


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_now() -> datetime:
    return utcnow()


NowDep = Annotated[datetime, Depends(get_now)]


async def get_origin(request: Request) -> RequestOrigin:
    return _origin(request)


OriginDep = Annotated[RequestOrigin, Depends(get_origin)]


def request_context(request: Request) -> tuple[Runtime, RequestOrigin, datetime]:
    """What the dependencies above give, without FastAPI's dependency resolution (for the hot endpoints)."""
    runtime: Runtime = request.app.state.runtime
    return runtime, _origin(request), utcnow()


def _origin(request: Request) -> RequestOrigin:
    return RequestOrigin(
        ip=request.client.host if request.client else None, user_agent=request.headers.get("user-agent")
    )


def bearer_token(request: Request) -> str | None:
    authorization = request.headers.get("authorization")
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


async def signed_in_from(request: Request, runtime: Runtime, *, now: datetime) -> SignedIn | None:
    """The session from ``Authorization: Bearer <session_token>`` or the ``consentry_session`` cookie."""
    token = bearer_token(request) or request.cookies.get(SESSION_COOKIE)
    return await authenticate_session(runtime.session_lookup, token, now=now)


async def get_signed_in(request: Request, runtime: RuntimeDep, now: NowDep) -> SignedIn | None:
    return await signed_in_from(request, runtime, now=now)


SignedInOptional = Annotated[SignedIn | None, Depends(get_signed_in)]


async def require_signed_in(signed_in: SignedInOptional) -> SignedIn:
    if signed_in is None:
        raise UnauthenticatedError()
    return signed_in


SignedInDep = Annotated[SignedIn, Depends(require_signed_in)]


async def require_admin(signed_in: SignedInDep) -> SignedIn:
    if not signed_in.is_admin:
        raise ForbiddenError("this needs an administrator")
    return signed_in


AdminDep = Annotated[SignedIn, Depends(require_admin)]


def refuse_nul(name: str, value: str) -> str:
    """NUL is never part of a legitimate parameter, and PostgreSQL text cannot hold it."""
    if "\x00" in value or "\x00" in name:
        raise InvalidRequestError("parameters must not contain NUL characters")
    return value


# RFC 8707 §2: ``resource`` may repeat. Its values are absolute URIs, which hold no space: internally they
# travel as one space-separated value, as scopes do.
REPEATABLE = "resource"


def single_query_values(request: Request) -> tuple[dict[str, str], frozenset[str]]:
    """Query parameters, first values (every ``resource``, space-separated), and the names that were
    repeated."""
    values: dict[str, str] = {}
    repeated: set[str] = set()
    for name, value in request.query_params.multi_items():
        refuse_nul(name, value)
        if name == REPEATABLE and name in values:
            values[name] = f"{values[name]} {value}"
        elif name in values:
            repeated.add(name)
        else:
            values[name] = value
    return values, frozenset(repeated)


def media_type(request: Request) -> str:
    """The body's media type, lower-cased and without parameters (``application/json; charset=utf-8``)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def form_values(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (RFC 6749 §3.2); repeated parameters are refused but
    ``resource`` (space-separated, as in :func:`single_query_values`).

    Parsed with the standard library, decoded as Starlette's form parser decodes (bytes as Latin-1, then
    percent-escapes as UTF-8, invalid sequences replaced), without its streaming parser's per-byte callbacks
    that every token request paid for; the edge middleware has already bounded the body's size.
    """
    content_type = media_type(request)
    if content_type != FORM_CONTENT_TYPE:
        raise InvalidRequestError(f"the body must be {FORM_CONTENT_TYPE}")
    try:
        pairs = parse_qsl(
            (await request.body()).decode("latin-1"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
        )
    except ValueError:
        raise InvalidRequestError(f"more than {MAX_FORM_FIELDS} parameters") from None
    values: dict[str, str] = {}
    for name, value in pairs:
        if name == REPEATABLE and name in values:
            values[name] = f"{values[name]} {refuse_nul(name, value)}"
        elif name in values:
            raise InvalidRequestError(f"repeated parameter: {name}")
        else:
            values[name] = refuse_nul(name, value)
    return values


async def json_body(request: Request, model: type[Body]) -> Body:
    """A JSON body validated as ``model``, for endpoints that take the request alone. As FastAPI reads a body
    model: JSON when the content type is absent, ``application/json`` or ``application/*+json``; anything
    malformed or invalid is a 400 ``invalid_request`` naming the first problem."""
    content_type = media_type(request)
    if content_type and content_type != JSON_CONTENT_TYPE and not _json_suffixed(content_type):
        raise InvalidRequestError(f"the body must be {JSON_CONTENT_TYPE}")
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidRequestError(f"{where or 'body'}: {first.get('msg')}") from None


def _json_suffixed(content_type: str) -> bool:
    return content_type.startswith("application/") and content_type.endswith("+json")


def documented_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its body with :func:`json_body`: the body documented as
    FastAPI documents a model parameter, nested models as references to its components."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return {"requestBody": {"required": True, "content": {JSON_CONTENT_TYPE: {"schema": schema}}}}


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept.split(",")[0]


def require_script_or_bearer(request: Request) -> None:
    """A state-changing request with no body, authenticated by the cookie, must come from a script (JSON), not
    from a form another site could post (the cookie is SameSite=Lax; this closes same-site forms too)."""
    if bearer_token(request) is None and media_type(request) != "application/json":
        raise UnauthenticatedError("send the session as a Bearer token, or the request as application/json")
