"""Token (RFC 6749 §3.2), revocation (RFC 7009) and introspection (RFC 7662) endpoints."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from consentry.errors import ConsentryError, InvalidClientError, InvalidRequestError
from consentry.http.deps import form_values, request_context
from consentry.http.openapi import form_body, json_content
from consentry.http.responses import JSONResponse, error_response
from consentry.http.schemas import answers
from consentry.services.client_authentication import authenticate_client, presented_credentials
from consentry.services.introspection import introspect
from consentry.services.revocation import revoke
from consentry.services.token import exchange

router = APIRouter(tags=["tokens"])
# These endpoints take the request alone and read what they need through request_context(): on the busiest
# endpoints FastAPI's dependency resolution cost more than the work itself.

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
CLIENT_FIELDS = ("client_id", "client_secret")  # client_secret_post, or the client_id of a public client
CLIENT_AUTH: list[dict[str, list[str]]] = [{"client": []}, {}]
TOKEN_RESPONSE = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in"],
    "properties": {
        "access_token": {"type": "string"},
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "expires_in": {"type": "integer"},
        "refresh_token": {"type": "string"},
        "scope": {"type": "string"},
        "id_token": {"type": "string"},
    },
}
INTROSPECTION = {"type": "object", "required": ["active"], "properties": {"active": {"type": "boolean"}}}


def _no_store_error(error: ConsentryError) -> Response:
    return error_response(error.status_code, error.error, error.description, {**error.headers(), **NO_STORE})


@router.post(
    "/oauth2/token",
    responses={200: {"content": json_content(TOKEN_RESPONSE)}, **answers(400, 401, 429)},
    openapi_extra={
        "security": CLIENT_AUTH,
        "requestBody": form_body(
            "grant_type",
            "code",
            "redirect_uri",
            "code_verifier",
            "refresh_token",
            "scope",
            "resource",
            *CLIENT_FIELDS,
            required=("grant_type",),
        ),
    },
)
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


@router.post(
    "/oauth2/revoke",
    response_class=Response,  # RFC 7009 §2.2: 200 with no body
    responses={
        200: {"description": "Revoked, or it was no token of this client's"},
        **answers(400, 401, 429),
    },
    openapi_extra={
        "security": CLIENT_AUTH,
        "requestBody": form_body("token", "token_type_hint", *CLIENT_FIELDS, required=("token",)),
    },
)
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


@router.post(
    "/oauth2/introspect",
    responses={200: {"content": json_content(INTROSPECTION)}, **answers(400, 401, 429)},
    openapi_extra={
        "security": CLIENT_AUTH,
        "requestBody": form_body("token", "token_type_hint", *CLIENT_FIELDS, required=("token",)),
    },
)
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
