"""Admin CRUD of API resources and custom scopes (SPEC §7)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import Field
from starlette.responses import Response

from consentry.http import answer_bodies as reply
from consentry.http.deps import AdminDep, NowDep, OriginDep, RuntimeDep
from consentry.http.responses import JSONResponse
from consentry.http.schemas import RequestBody, answers
from consentry.services.resources import (
    create_resource,
    delete_resource,
    get_resource,
    list_resources,
    update_resource,
)
from consentry.services.scopes import (
    ScopeSpec,
    create_scope,
    delete_scope,
    get_scope,
    list_scopes,
    update_scope,
)

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], responses=answers(401, 403))

Name = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(min_length=1, max_length=500)]
ScopeName = Annotated[str, Field(min_length=1, max_length=64)]
TokenLifetime = Annotated[int, Field(ge=60, le=86_400)]
Url = Annotated[str, Field(max_length=2048)]
NO_STORE = {"Cache-Control": "no-store"}


class NewScope(RequestBody):
    name: ScopeName
    description: Description
    restricted: bool = False


class NewResource(RequestBody):
    identifier: Url
    name: Name
    scopes: list[NewScope] = Field(default_factory=list, max_length=100)
    token_format: Literal["opaque", "jwt"] = "opaque"
    access_token_ttl: TokenLifetime | None = None
    webhook_url: Url | None = None


class ResourceChanges(RequestBody):
    name: Name | None = None
    token_format: Literal["opaque", "jwt"] | None = None
    access_token_ttl: TokenLifetime | None = None
    webhook_url: Url | None = None


@router.get("/resources", response_model=reply.Resources)
async def resources(runtime: RuntimeDep, _admin: AdminDep) -> JSONResponse:
    return JSONResponse({"resources": await list_resources(runtime)}, headers=NO_STORE)


@router.post("/resources", status_code=201, responses=answers(400, 409), response_model=reply.ResourceCreated)
async def new_resource(
    body: NewResource, runtime: RuntimeDep, admin: AdminDep, origin: OriginDep, now: NowDep
) -> JSONResponse:
    """An API, its scopes, and the credentials it introspects with (``client_secret`` and, with a webhook URL,
    ``webhook_secret``: shown once)."""
    issued = await create_resource(
        runtime,
        identifier=body.identifier,
        name=body.name,
        scopes=[ScopeSpec(s.name, s.description, s.restricted) for s in body.scopes],
        token_format=body.token_format,
        access_token_ttl=body.access_token_ttl,
        webhook_url=body.webhook_url,
        admin=admin.user_id,
        origin=origin,
        now=now,
    )
    view = await get_resource(runtime, issued.resource_id)
    return JSONResponse(view | issued.as_json(), status_code=201, headers=NO_STORE)


@router.get("/resources/{resource_id}", responses=answers(404), response_model=reply.Resource)
async def one_resource(resource_id: str, runtime: RuntimeDep, _admin: AdminDep) -> JSONResponse:
    return JSONResponse(await get_resource(runtime, resource_id), headers=NO_STORE)


@router.patch("/resources/{resource_id}", responses=answers(400, 404), response_model=reply.Resource)
async def change_resource(
    resource_id: str,
    body: ResourceChanges,
    runtime: RuntimeDep,
    admin: AdminDep,
    origin: OriginDep,
    now: NowDep,
) -> JSONResponse:
    """Its name, token format, token lifetime or webhook URL; the identifier never changes."""
    changes = body.model_dump(exclude_unset=True)
    view, webhook_secret = await update_resource(
        runtime, resource_id, changes, admin=admin.user_id, origin=origin, now=now
    )
    return JSONResponse(
        view | ({"webhook_secret": webhook_secret} if webhook_secret else {}), headers=NO_STORE
    )


@router.delete("/resources/{resource_id}", status_code=204, responses=answers(404))
async def remove_resource(
    resource_id: str, runtime: RuntimeDep, admin: AdminDep, origin: OriginDep, now: NowDep
) -> Response:
    """The resource, its scopes and credentials go; every token for it or carrying its scopes is revoked."""
    await delete_resource(runtime, resource_id, admin=admin.user_id, origin=origin, now=now)
    return Response(status_code=204)


class NewCustomScope(NewScope):
    resource: Url | None = None  # the identifier (or id) of the resource it belongs to


class ScopeChanges(RequestBody):
    description: Description | None = None
    restricted: bool | None = None


@router.get("/scopes", response_model=reply.Scopes)
async def scopes(runtime: RuntimeDep, _admin: AdminDep) -> JSONResponse:
    return JSONResponse({"scopes": await list_scopes(runtime)}, headers=NO_STORE)


@router.post("/scopes", status_code=201, responses=answers(400, 404, 409), response_model=reply.Scope)
async def new_scope(
    body: NewCustomScope, runtime: RuntimeDep, admin: AdminDep, origin: OriginDep, now: NowDep
) -> JSONResponse:
    spec = ScopeSpec(body.name, body.description, body.restricted)
    view = await create_scope(
        runtime, spec, resource=body.resource, admin=admin.user_id, origin=origin, now=now
    )
    return JSONResponse(view, status_code=201, headers=NO_STORE)


@router.get("/scopes/{name}", responses=answers(404), response_model=reply.Scope)
async def one_scope(name: str, runtime: RuntimeDep, _admin: AdminDep) -> JSONResponse:
    return JSONResponse(await get_scope(runtime, name), headers=NO_STORE)


@router.patch("/scopes/{name}", responses=answers(400, 404), response_model=reply.Scope)
async def change_scope(
    name: str, body: ScopeChanges, runtime: RuntimeDep, admin: AdminDep, origin: OriginDep, now: NowDep
) -> JSONResponse:
    changes = {key: value for key, value in body.model_dump(exclude_unset=True).items() if value is not None}
    return JSONResponse(
        await update_scope(runtime, name, changes, admin=admin.user_id, origin=origin, now=now),
        headers=NO_STORE,
    )


@router.delete("/scopes/{name}", status_code=204, responses=answers(400, 404))
async def remove_scope(
    name: str, runtime: RuntimeDep, admin: AdminDep, origin: OriginDep, now: NowDep
) -> Response:
    """Tokens carrying it are revoked; it leaves every consent. OpenID Connect's scopes cannot be deleted."""
    await delete_scope(runtime, name, admin=admin.user_id, origin=origin, now=now)
    return Response(status_code=204)
