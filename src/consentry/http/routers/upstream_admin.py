"""Admin CRUD of upstream identity providers (SPEC §10): `/api/v1/admin/upstreams`."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import Field
from starlette.responses import Response

from consentry.domain.upstreams import UpstreamKind
from consentry.http import answer_bodies as reply
from consentry.http.deps import AdminDep, NowDep, OriginDep, RuntimeDep
from consentry.http.responses import JSONResponse
from consentry.http.schemas import RequestBody, answers
from consentry.services.upstream_providers import (
    UpstreamSpec,
    create_upstream,
    delete_upstream,
    get_upstream,
    list_upstreams,
    update_upstream,
)

router = APIRouter(prefix="/api/v1/admin/upstreams", tags=["admin"], responses=answers(401, 403))

Url = Annotated[str, Field(max_length=2048)]
Field64 = Annotated[str, Field(min_length=1, max_length=64)]
NO_STORE = {"Cache-Control": "no-store"}


class NewUpstream(RequestBody):
    name: Field64
    kind: Literal["oidc", "oauth2"] = "oidc"
    issuer: Url | None = None
    client_id: Annotated[str, Field(min_length=1, max_length=255)]
    client_secret: Annotated[str, Field(min_length=1, max_length=512)]
    display_name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    scope: Annotated[str, Field(max_length=1024)] | None = None
    trust_email: bool = False
    authorize_url: Url | None = None
    token_url: Url | None = None
    userinfo_url: Url | None = None
    emails_url: Url | None = None
    uid_field: Field64 | None = None
    email_field: Field64 | None = None
    icon: Url | None = None


class UpstreamChanges(RequestBody):
    display_name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    client_secret: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    scope: Annotated[str, Field(max_length=1024)] | None = None
    trust_email: bool | None = None
    enabled: bool | None = None
    icon: Url | None = None


@router.get("", response_model=reply.UpstreamProviders)
async def upstreams(runtime: RuntimeDep, _admin: AdminDep) -> JSONResponse:
    return JSONResponse({"upstreams": await list_upstreams(runtime)}, headers=NO_STORE)


@router.post("", status_code=201, responses=answers(400, 409), response_model=reply.UpstreamProvider)
async def new_upstream(
    body: NewUpstream, runtime: RuntimeDep, admin: AdminDep, origin: OriginDep, now: NowDep
) -> JSONResponse:
    """An OpenID Connect provider (from its issuer's discovery document) or a plain OAuth 2.0 one (its
    endpoints, and the userinfo fields naming the person); 503 when the issuer cannot be reached."""
    values = body.model_dump()
    values["kind"] = UpstreamKind(values["kind"])
    created = await create_upstream(
        runtime, UpstreamSpec(**values), admin=admin.user_id, origin=origin, now=now
    )
    return JSONResponse(created, status_code=201, headers=NO_STORE)


@router.get("/{name}", responses=answers(404), response_model=reply.UpstreamProvider)
async def one_upstream(name: str, runtime: RuntimeDep, _admin: AdminDep) -> JSONResponse:
    return JSONResponse(await get_upstream(runtime, name), headers=NO_STORE)


@router.patch("/{name}", responses=answers(400, 404), response_model=reply.UpstreamProvider)
async def change_upstream(
    name: str, body: UpstreamChanges, runtime: RuntimeDep, admin: AdminDep, origin: OriginDep, now: NowDep
) -> JSONResponse:
    """Its display name, secret, scope, email trust, icon, or whether it is offered (``enabled``)."""
    changes = body.model_dump(exclude_unset=True)
    changed = await update_upstream(runtime, name, changes, admin=admin.user_id, origin=origin, now=now)
    return JSONResponse(changed, headers=NO_STORE)


@router.delete("/{name}", status_code=204, responses=answers(404))
async def remove_upstream(
    name: str, runtime: RuntimeDep, admin: AdminDep, origin: OriginDep, now: NowDep
) -> Response:
    """The provider goes, and every account linked to it."""
    await delete_upstream(runtime, name, admin=admin.user_id, origin=origin, now=now)
    return Response(status_code=204)
