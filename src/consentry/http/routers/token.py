"""Token (RFC 6749 §3.2), revocation (RFC 7009) and introspection (RFC 7662) endpoints."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from consentry.errors import ConsentryError, InvalidClientError, InvalidRequestError
from consentry.http.deps import form_values, request_context
from consentry.http.responses import JSONResponse, error_response
from consentry.services.client_auth import authenticate_client, presented_credentials
from consentry.services.introspection import introspect
from consentry.services.revocation import revoke
from consentry.services.token import exchange

router = APIRouter(tags=["tokens"])
# These endpoints take the request alone and read what they need through request_context(): on the busiest
# endpoints FastAPI's dependency resolution cost more than the work itself.

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _no_store_error(error: ConsentryError) -> Response:
    return error_response(error.status_code, error.error, error.description, {**error.headers(), **NO_STORE})


@router.post("/oauth2/token")
async def token_endpoint(request: Request) -> Response:
    runtime, origin, now = request_context(request)
    try:
        form = await form_values(request)
        client = await authenticate_client(
            runtime, presented_credentials(request.headers.get("authorization"), form), ip=origin.ip
        )
        response = await exchange(runtime, client, form, origin=origin, now=now)
    except ConsentryError as error:
        return _no_store_error(error)
    return JSONResponse(response, headers=NO_STORE)


@router.post("/oauth2/revoke")
async def revocation_endpoint(request: Request) -> Response:
    runtime, origin, now = request_context(request)
    form = await form_values(request)
    client = await authenticate_client(
        runtime, presented_credentials(request.headers.get("authorization"), form), ip=origin.ip
    )
    token = form.get("token")
    if not token:
        raise InvalidRequestError("token is required")
    await revoke(runtime, client, token, form.get("token_type_hint"), origin=origin, now=now)
    return Response(status_code=200, headers=NO_STORE)


@router.post("/oauth2/introspect")
async def introspection_endpoint(request: Request) -> Response:
    runtime, origin, now = request_context(request)
    try:
        form = await form_values(request)
        caller = await authenticate_client(
            runtime, presented_credentials(request.headers.get("authorization"), form), ip=origin.ip
        )
        if caller.is_public:
            raise InvalidClientError("introspection needs a confidential client")
        token = form.get("token")
        if not token:
            raise InvalidRequestError("token is required")
        response = await introspect(runtime, caller, token, form.get("token_type_hint"), now=now)
    except ConsentryError as error:
        return _no_store_error(error)
    return JSONResponse(response, headers=NO_STORE)
