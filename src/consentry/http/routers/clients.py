"""Client management for their owners (SPEC §5; metadata names from RFC 7591)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field
from starlette.responses import Response

from consentry.http import answer_bodies as reply
from consentry.http.deps import NowDep, OriginDep, RuntimeDep, SignedInDep
from consentry.http.responses import JSONResponse
from consentry.http.schemas import RequestBody, answers
from consentry.services import client_management as manage
from consentry.services.cascades import delete_client

router = APIRouter(prefix="/api/v1/oauth2/clients", tags=["clients"], responses=answers(401))

Url = Annotated[str, Field(max_length=2048)]


class ClientFields(RequestBody):
    client_name: str | None = Field(default=None, max_length=200)
    client_uri: Url | None = None
    logo_uri: Url | None = None
    redirect_uris: Annotated[list[Url], Field(max_length=20)] | None = None
    scope: str | None = Field(default=None, max_length=1024)
    grant_types: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=5)] | None = None
    token_endpoint_auth_method: str | None = Field(default=None, max_length=32)
    subject_type: str | None = Field(default=None, max_length=16)
    sector_identifier_uri: Url | None = None
    webhook_url: Url | None = None
    policy_uri: Url | None = None
    tos_uri: Url | None = None
    policy_version: str | None = Field(default=None, max_length=64)
    consent_ttl_days: int | None = Field(default=None, ge=1, le=3650)
    id_token_signed_response_alg: str | None = Field(default=None, max_length=8)
    trusted: bool | None = None
    post_logout_redirect_uris: Annotated[list[Url], Field(max_length=20)] | None = None
    backchannel_logout_uri: Url | None = None
    backchannel_logout_session_required: bool | None = None


class NewClient(ClientFields):
    client_name: str = Field(max_length=200)
    redirect_uris: Annotated[list[Url], Field(max_length=20)] = Field(default_factory=list)


def _set(body: RequestBody) -> dict[str, Any]:
    return body.model_dump(exclude_unset=True)


@router.post("", status_code=201, responses=answers(400, 403), response_model=reply.ClientCreated)
async def create(
    body: NewClient, runtime: RuntimeDep, signed_in: SignedInDep, origin: OriginDep, now: NowDep
) -> JSONResponse:
    created = await manage.create_client(runtime, signed_in, _set(body), origin=origin, now=now)
    result: dict[str, Any] = {**created.client, "created_at": created.issued.created_at.isoformat()}
    if created.issued.client_secret:
        result["client_secret"] = created.issued.client_secret
    if created.issued.webhook_secret:
        result["webhook_secret"] = created.issued.webhook_secret
    return JSONResponse(result, status_code=201, headers={"Cache-Control": "no-store"})


@router.get("", response_model=reply.Clients)
async def list_mine(runtime: RuntimeDep, signed_in: SignedInDep) -> JSONResponse:
    return JSONResponse({"clients": await manage.list_clients(runtime, signed_in)})


@router.get("/{client_id:path}", responses=answers(404), response_model=reply.Client)
async def read(client_id: str, runtime: RuntimeDep, signed_in: SignedInDep) -> JSONResponse:
    return JSONResponse(await manage.read_client(runtime, client_id, signed_in))


@router.patch("/{client_id:path}", responses=answers(400, 403, 404), response_model=reply.ClientCreated)
async def update(
    client_id: str,
    body: ClientFields,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    origin: OriginDep,
    now: NowDep,
) -> JSONResponse:
    client, webhook_secret = await manage.update_client(
        runtime, client_id, signed_in, _set(body), origin=origin, now=now
    )
    if webhook_secret:
        client["webhook_secret"] = webhook_secret
    return JSONResponse(client, headers={"Cache-Control": "no-store"})


@router.delete("/{client_id:path}", status_code=204, responses=answers(404))
async def delete(
    client_id: str, runtime: RuntimeDep, signed_in: SignedInDep, origin: OriginDep, now: NowDep
) -> Response:
    """Soft delete: the client stops working at once; its consents and tokens are revoked."""
    await delete_client(runtime, client_id, signed_in, origin=origin, now=now)
    return Response(status_code=204)


@router.post("/{client_id:path}/secret", responses=answers(400, 404), response_model=reply.ClientSecret)
async def regenerate_secret(
    client_id: str, runtime: RuntimeDep, signed_in: SignedInDep, origin: OriginDep, now: NowDep
) -> JSONResponse:
    secret = await manage.regenerate_secret(runtime, client_id, signed_in, origin=origin, now=now)
    return JSONResponse(
        {"client_id": client_id, "client_secret": secret}, headers={"Cache-Control": "no-store"}
    )
