"""Clients that register themselves (SPEC §8): RFC 7591 ``POST /oauth2/register`` and RFC 7592's client
configuration endpoint ``/oauth2/register/{client_id}``, with the registration access token as Bearer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.responses import Response

from consentry.errors import InvalidRequestError
from consentry.http import answer_bodies as reply
from consentry.http.deps import NowDep, OriginDep, RuntimeDep, bearer_token, documented_body, json_body
from consentry.http.responses import JSONResponse
from consentry.http.schemas import RequestBody, answers
from consentry.services import self_registration
from consentry.services.client_management import InvalidClientMetadataError

router = APIRouter(prefix="/oauth2/register", tags=["registration"])

Url = Annotated[str, Field(max_length=2048)]
Text = Annotated[str, Field(max_length=255)]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class ClientMetadataBody(RequestBody):
    """RFC 7591 §2 metadata (others are ignored, §2); with RFC 7592 ``client_id`` and ``client_secret`` when
    it replaces a registration, which must not name the fields that are the server's."""

    redirect_uris: Annotated[list[Url], Field(max_length=20)] | None = None
    client_name: str | None = Field(default=None, max_length=200)
    client_uri: Url | None = None
    logo_uri: Url | None = None
    policy_uri: Url | None = None
    tos_uri: Url | None = None
    grant_types: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=5)] | None = None
    response_types: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=5)] | None = None
    token_endpoint_auth_method: str | None = Field(default=None, max_length=32)
    scope: str | None = Field(default=None, max_length=2048)
    software_id: Text | None = None
    software_version: Text | None = None
    subject_type: str | None = Field(default=None, max_length=16)
    sector_identifier_uri: Url | None = None
    backchannel_logout_uri: Url | None = None
    post_logout_redirect_uris: Annotated[list[Url], Field(max_length=20)] | None = None
    client_id: str | None = Field(default=None, max_length=2048)
    client_secret: str | None = Field(default=None, max_length=256)
    registration_access_token: Any = None
    registration_client_uri: Any = None
    client_secret_expires_at: Any = None
    client_id_issued_at: Any = None


async def _metadata(request: Request) -> dict[str, Any]:
    """The body as metadata; what is malformed is ``invalid_client_metadata`` (RFC 7591 §3.2.2)."""
    try:
        body = await json_body(request, ClientMetadataBody)
    except InvalidRequestError as exc:
        raise InvalidClientMetadataError(exc.description) from None
    return body.model_dump(exclude_unset=True)


@router.post(
    "",
    response_model=reply.SelfRegisteredClient,
    status_code=201,
    responses=answers(400, 401, 404, 429),
    openapi_extra={**documented_body(ClientMetadataBody), "security": [{"accessToken": []}, {}]},
)
async def register(request: Request, runtime: RuntimeDep, origin: OriginDep, now: NowDep) -> JSONResponse:
    """RFC 7591 §3.1. With ``CONSENTRY_DCR=token``, an initial access token as Bearer; with ``off``, 404."""
    values = await _metadata(request)
    answer = await self_registration.register(
        runtime, values, bearer=bearer_token(request), origin=origin, now=now
    )
    return JSONResponse(answer, status_code=201, headers=NO_STORE)


@router.get(
    "/{client_id}",
    responses=answers(401, 404),
    openapi_extra={"security": [{"accessToken": []}]},
    response_model=reply.SelfRegisteredClient,
)
async def read(client_id: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    """RFC 7592 §2.1, with the registration access token as Bearer."""
    answer = await self_registration.read(runtime, client_id, bearer_token(request))
    return JSONResponse(answer, headers=NO_STORE)


@router.put(
    "/{client_id}",
    response_model=reply.SelfRegisteredClient,
    responses=answers(400, 401, 404),
    openapi_extra={**documented_body(ClientMetadataBody), "security": [{"accessToken": []}]},
)
async def replace(
    client_id: str, request: Request, runtime: RuntimeDep, origin: OriginDep, now: NowDep
) -> JSONResponse:
    """RFC 7592 §2.2: the whole metadata, replaced; the answer carries a new registration access token."""
    token = bearer_token(request)
    await self_registration.check_token(runtime, client_id, token)  # 401 before any complaint about the body
    values = await _metadata(request)
    answer = await self_registration.replace(runtime, client_id, token, values, origin=origin, now=now)
    return JSONResponse(answer, headers=NO_STORE)


@router.delete(
    "/{client_id}",
    status_code=204,
    responses=answers(401, 404),
    openapi_extra={"security": [{"accessToken": []}]},
)
async def delete(
    client_id: str, request: Request, runtime: RuntimeDep, origin: OriginDep, now: NowDep
) -> Response:
    """RFC 7592 §2.3: the client is deleted, every consent it held ended and every token revoked."""
    await self_registration.delete(runtime, client_id, bearer_token(request), origin=origin, now=now)
    return Response(status_code=204)
