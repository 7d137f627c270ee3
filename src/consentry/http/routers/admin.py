"""Admin endpoints (SPEC §5): the audit trail, and webhook deliveries that need attention."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import Field
from starlette.responses import Response

from consentry.domain.accounts import BulkAction
from consentry.domain.clients import ClientRegistration
from consentry.domain.webhooks import OutboxStatus
from consentry.errors import InvalidRequestError
from consentry.http import answer_bodies as reply
from consentry.http.deps import AdminDep, NowDep, OriginDep, RuntimeDep
from consentry.http.responses import JSONResponse
from consentry.http.schemas import RequestBody, answers
from consentry.services.admin import (
    audit_trail,
    bulk_users,
    look_up_users,
    statistics,
    user_overview,
    webhook_deliveries,
)
from consentry.services.client_management import all_clients
from consentry.services.consent_endings import revoke_consent
from consentry.services.linked_accounts import upstream_access_token

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], responses=answers(401, 403))


@router.get("/audit", response_model=reply.AuditTrail)
async def audit(
    runtime: RuntimeDep,
    admin: AdminDep,
    origin: OriginDep,
    now: NowDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    event_type: Annotated[str | None, Query(max_length=48)] = None,
    user_id: uuid.UUID | None = None,
    client_id: Annotated[str | None, Query(max_length=2048)] = None,
) -> JSONResponse:
    """Newest first; filters combine."""
    body = await audit_trail(
        runtime,
        event_types=(event_type,) if event_type else (),
        user_id=user_id,
        client_id=client_id,
        limit=limit,
        offset=offset,
    )
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/users", responses=answers(400), response_model=reply.AdminAccounts)
async def look_up(
    runtime: RuntimeDep,
    _admin: AdminDep,
    identifier: Annotated[str | None, Query(max_length=320)] = None,
    user_id: uuid.UUID | None = None,
    provider: Annotated[str | None, Query(max_length=64)] = None,
    provider_uid: Annotated[str | None, Query(max_length=255)] = None,
) -> JSONResponse:
    """Accounts by email or phone, by id, or by the upstream account linked to them."""
    if not (identifier or user_id or (provider and provider_uid)):
        raise InvalidRequestError("give identifier, user_id, or provider with provider_uid")
    linked = (provider, provider_uid) if provider and provider_uid else None
    users = await look_up_users(runtime, identifier=identifier, user_id=user_id, linked=linked)
    return JSONResponse({"users": users}, headers={"Cache-Control": "no-store"})


@router.get("/users/{user_id}", responses=answers(404), response_model=reply.AdminAccountOverview)
async def user(user_id: uuid.UUID, runtime: RuntimeDep, _admin: AdminDep, now: NowDep) -> JSONResponse:
    """Profile, verification, state, live sessions, connected apps and linked accounts of one account."""
    return JSONResponse(await user_overview(runtime, user_id, now=now), headers={"Cache-Control": "no-store"})


@router.get(
    "/users/{user_id}/linked-accounts/{provider}/token",
    responses=answers(404, 409),
    response_model=reply.ProviderToken,
)
async def upstream_token(
    user_id: uuid.UUID, provider: str, runtime: RuntimeDep, admin: AdminDep, origin: OriginDep, now: NowDep
) -> JSONResponse:
    """The provider's access token kept for the person, refreshed first if it has expired (audited): for
    calling the provider's API on their behalf."""
    token = await upstream_access_token(
        runtime, user_id, provider, admin=admin.user_id, origin=origin, now=now
    )
    return JSONResponse(token, headers={"Cache-Control": "no-store"})


@router.get("/webhooks", response_model=reply.WebhookDeliveries)
async def webhooks(
    runtime: RuntimeDep,
    _admin: AdminDep,
    status: Literal["pending", "delivered", "dead"] = "dead",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JSONResponse:
    """Webhook deliveries by state; ``dead`` ones gave up after 24 hours of retries."""
    body = {"webhooks": await webhook_deliveries(runtime, OutboxStatus(status), limit=limit)}
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/clients", response_model=reply.Clients)
async def clients(
    runtime: RuntimeDep,
    _admin: AdminDep,
    registered_by: ClientRegistration | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    """Every live client, newest first; ``registered_by`` = ``operator``, ``self`` (RFC 7591) or ``document``
    (a client ID metadata document). Delete one with ``DELETE /api/v1/oauth2/clients/{client_id}``."""
    listed = await all_clients(runtime, registered_by=registered_by, limit=limit, offset=offset)
    return JSONResponse({"clients": listed}, headers={"Cache-Control": "no-store"})


@router.get("/stats", response_model=reply.Statistics)
async def stats(runtime: RuntimeDep, _admin: AdminDep, now: NowDep) -> JSONResponse:
    """Most used clients, activity by day and event type (30 days), refresh rate by client (7 days)."""
    return JSONResponse(await statistics(runtime, now=now), headers={"Cache-Control": "no-store"})


@router.delete("/users/{user_id}/consents/{client_id:path}", status_code=204, responses=answers(404))
async def revoke_users_consent(
    user_id: uuid.UUID, client_id: str, runtime: RuntimeDep, _admin: AdminDep, origin: OriginDep, now: NowDep
) -> Response:
    """SPEC §9: an administrator ends a person's consent as the person would (actor ``admin``)."""
    await revoke_consent(runtime, user_id, client_id, actor="admin", origin=origin, now=now)
    return Response(status_code=204)


class BulkUsers(RequestBody):
    action: BulkAction
    user_ids: list[uuid.UUID] = Field(min_length=1, max_length=10_000)


@router.post("/users/bulk", response_model=reply.BulkDone)
async def bulk(
    body: BulkUsers, runtime: RuntimeDep, admin: AdminDep, origin: OriginDep, now: NowDep
) -> JSONResponse:
    """Soft delete, restore, or set verification on many accounts at once (one statement per table)."""
    affected = await bulk_users(
        runtime, body.action, body.user_ids, admin=admin.user_id, origin=origin, now=now
    )
    return JSONResponse({"action": body.action, "requested": len(body.user_ids), "affected": affected})
