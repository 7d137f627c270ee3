"""What a resource server reads with its own credentials (SPEC §7): the revocation feed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from consentry.errors import InvalidClientError
from consentry.http import answer_bodies as reply
from consentry.http.deps import OriginDep, RuntimeDep
from consentry.http.responses import JSONResponse
from consentry.http.schemas import answers
from consentry.services.client_authentication import authenticate_client, presented_credentials
from consentry.services.revocation_feed import MAX_WAIT, revocations

router = APIRouter(prefix="/api/v1/resources", tags=["resources"])


@router.get(
    "/{resource_id}/revocations",
    response_model=reply.Revocations,
    responses=answers(400, 401),
    openapi_extra={"security": [{"client": []}]},
)
async def revocation_feed(
    resource_id: str,
    request: Request,
    runtime: RuntimeDep,
    origin: OriginDep,
    after: Annotated[str | None, Query(max_length=200)] = None,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT)] = 0,
) -> JSONResponse:
    """``{"revoked": [{"jti", "exp"}], "next": cursor}``: the resource's revoked tokens that have not expired,
    after ``after``; with ``wait`` (seconds, up to 30), answered when one appears or the time is up. Basic
    authentication with the resource's credentials; the resource is named by its id or its ``client_id``."""
    caller = await authenticate_client(
        runtime, presented_credentials(request.headers.get("authorization"), {}), ip=origin.ip
    )
    resource = (await runtime.clients.catalogue()).resource_of_client(caller.id)
    if resource is None or resource_id not in (resource.id, resource.client_id):
        raise InvalidClientError("these are not this resource's credentials")
    body = await revocations(runtime, resource, after, wait=wait)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
