"""API resources (SPEC §7): the operator's APIs, their custom scopes and credentials.

A resource introspects, reads its revocation feed and verifies its webhooks with the credentials of a client
row of its own, which has no redirect URI and no grant type: it can obtain no token.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consentry.domain import resources as rules
from consentry.domain.clients import ClientMetadata, InvalidClientMetadata, validate_webhook_url
from consentry.domain.resources import InvalidResource, TokenFormat
from consentry.domain.scopes import Scopes
from consentry.errors import ConflictError, InvalidRequestError, NotFoundError
from consentry.runtime import Runtime
from consentry.services.client_registration import apply_metadata, new_webhook_secret, register_client
from consentry.services.scopes import ScopeSpec, add_scope, retire_scope, scope_as_json
from consentry.storage.audit import AuditRepository, RequestOrigin
from consentry.storage.clients import ClientRepository
from consentry.storage.database import Transaction
from consentry.storage.records import Resource
from consentry.storage.resources import CatalogueRepository
from consentry.storage.tokens import TokenRepository


@dataclass(frozen=True, slots=True)
class IssuedResource:
    """What the operator sees once: the secrets are not recoverable afterwards."""

    resource_id: str
    identifier: str
    client_id: str
    client_secret: str
    webhook_secret: str | None
    created_at: datetime

    def as_json(self) -> dict[str, Any]:
        issued = {
            "resource_id": self.resource_id,
            "identifier": self.identifier,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "created_at": self.created_at.isoformat(),
        }
        return issued | ({"webhook_secret": self.webhook_secret} if self.webhook_secret else {})


def invalid(exc: InvalidResource | InvalidClientMetadata) -> InvalidRequestError:
    return InvalidRequestError(f"{exc.field}: {exc}")


def _token_format(value: object) -> TokenFormat:
    if value not in (TokenFormat.OPAQUE.value, TokenFormat.JWT.value):
        raise InvalidResource("token_format", "token_format must be opaque or jwt")
    return TokenFormat(value)


def _webhook_url(runtime: Runtime, url: str | None) -> str | None:
    settings = runtime.settings
    try:
        return validate_webhook_url(
            url, allow_private=settings.webhook_allow_private or settings.issuer_is_loopback
        )
    except InvalidClientMetadata as exc:
        raise invalid(exc) from None


def _credentials(name: str, webhook_url: str | None) -> ClientMetadata:
    return ClientMetadata(
        name=f"{name} (resource)"[:200],
        redirect_uris=(),
        scopes=Scopes(),
        grant_types=(),
        token_endpoint_auth_method="client_secret_basic",
        subject_type="public",
        sector="",
        webhook_url=webhook_url,
        auth_method_fixed=False,  # Basic or the form, as for introspection by any client
    )


async def create_resource(
    runtime: Runtime,
    *,
    identifier: str,
    name: str,
    scopes: Sequence[ScopeSpec] = (),
    token_format: str = TokenFormat.OPAQUE,
    access_token_ttl: int | None = None,
    webhook_url: str | None = None,
    actor: str = "admin",
    admin: uuid.UUID | None = None,
    origin: RequestOrigin | None = None,
    now: datetime,
) -> IssuedResource:
    try:
        identifier = rules.validate_identifier(identifier)
        name = rules.validate_name(name)
        chosen_format = _token_format(token_format)
        access_token_ttl = rules.validate_access_token_ttl(access_token_ttl)
        specs = [
            ScopeSpec(
                rules.validate_scope_name(s.name), rules.validate_description(s.description), s.restricted
            )
            for s in scopes
        ]
    except InvalidResource as exc:
        raise invalid(exc) from None
    webhook_url = _webhook_url(runtime, webhook_url)
    async with runtime.database.unit_of_work() as session:
        catalogue = CatalogueRepository(session)
        if await catalogue.resource_by_identifier(identifier) is not None:
            raise ConflictError(f"a resource with the identifier {identifier} exists")
        for spec in specs:
            if await catalogue.scope(spec.name) is not None:
                raise ConflictError(f"the scope {spec.name} exists")
        credentials = await register_client(
            session,
            _credentials(name, webhook_url),
            secret_hasher=runtime.secret_hasher,
            secret_box=runtime.secret_box,
            now=now,
        )
        assert credentials.client_secret is not None  # a confidential client
        resource = Resource(
            id="res_" + secrets.token_urlsafe(12),
            identifier=identifier,
            name=name,
            token_format=chosen_format,
            access_token_ttl=access_token_ttl,
            client_id=credentials.client_id,
            created_at=now,
            updated_at=now,
        )
        await catalogue.add_resource(resource)
        for spec in specs:
            await add_scope(catalogue, spec, resource.id, now=now)
        await AuditRepository(session).record(
            "resource_created",
            now=now,
            origin=origin,
            user_id=admin,
            actor=actor,
            details={"resource_id": resource.id, "identifier": identifier, "scopes": [s.name for s in specs]},
        )
    runtime.clients.invalidate_catalogue()
    return IssuedResource(
        resource.id,
        identifier,
        credentials.client_id,
        credentials.client_secret,
        credentials.webhook_secret,
        now,
    )


async def resource_as_json(session: Transaction, resource: Resource) -> dict[str, Any]:
    """The admin API's view of a resource (its secrets are never shown again)."""
    client = await ClientRepository(session).get_record(resource.client_id)
    scopes = await CatalogueRepository(session).scopes(resource_id=resource.id)
    return {
        "resource_id": resource.id,
        "identifier": resource.identifier,
        "name": resource.name,
        "token_format": resource.token_format.value,
        "access_token_ttl": resource.access_token_ttl,
        "client_id": resource.client_id,
        "webhook_url": client.webhook_url if client is not None else None,
        "scopes": [scope_as_json(scope, resource.identifier) for scope in scopes],
        "created_at": resource.created_at.isoformat(),
        "updated_at": resource.updated_at.isoformat(),
    }


async def list_resources(runtime: Runtime) -> list[dict[str, Any]]:
    async with runtime.database.read_only() as session:
        return [await resource_as_json(session, r) for r in await CatalogueRepository(session).resources()]


async def get_resource(runtime: Runtime, resource_id: str) -> dict[str, Any]:
    async with runtime.database.read_only() as session:
        resource = await CatalogueRepository(session).resource(resource_id)
        if resource is None:
            raise NotFoundError("no such resource")
        return await resource_as_json(session, resource)


async def update_resource(
    runtime: Runtime,
    resource_id: str,
    changes: dict[str, Any],
    *,
    admin: uuid.UUID | None,
    origin: RequestOrigin | None,
    now: datetime,
) -> tuple[dict[str, Any], str | None]:
    """Change a resource's name, token format, token lifetime or webhook URL (its identifier is what tokens
    name: it never changes). Returns the resource and, when a webhook URL was first set, its secret."""
    try:
        if "name" in changes:
            changes["name"] = rules.validate_name(str(changes["name"]))
        if "token_format" in changes:
            changes["token_format"] = _token_format(changes["token_format"])
        if "access_token_ttl" in changes:
            changes["access_token_ttl"] = rules.validate_access_token_ttl(changes["access_token_ttl"])
    except InvalidResource as exc:
        raise invalid(exc) from None
    webhook_secret = None
    async with runtime.database.unit_of_work() as session:
        catalogue = CatalogueRepository(session)
        resource = await catalogue.resource(resource_id, for_update=True)
        if resource is None:
            raise NotFoundError("no such resource")
        client = await ClientRepository(session).get_record(resource.client_id, for_update=True)
        assert client is not None
        resource.name = changes.get("name", resource.name)
        resource.token_format = TokenFormat(changes.get("token_format", resource.token_format))
        resource.access_token_ttl = changes.get("access_token_ttl", resource.access_token_ttl)
        resource.updated_at = now
        webhook_url = (
            _webhook_url(runtime, changes["webhook_url"]) if "webhook_url" in changes else client.webhook_url
        )
        apply_metadata(client, _credentials(resource.name, webhook_url), now=now)
        if webhook_url and not client.webhook_secret:
            webhook_secret = new_webhook_secret()
            client.webhook_secret = runtime.secret_box.seal(webhook_secret.encode())
        await AuditRepository(session).record(
            "resource_updated",
            now=now,
            origin=origin,
            user_id=admin,
            actor="admin",
            details={"resource_id": resource.id, "changed": sorted(changes)},
        )
        view = await resource_as_json(session, resource)
    runtime.clients.invalidate(resource.client_id)
    runtime.clients.invalidate_catalogue()
    return view, webhook_secret


async def delete_resource(
    runtime: Runtime,
    resource_id: str,
    *,
    admin: uuid.UUID | None,
    origin: RequestOrigin | None,
    now: datetime,
) -> int:
    """Delete a resource, its scopes and its credentials; every token for it is revoked. Returns how many."""
    async with runtime.database.unit_of_work() as session:
        catalogue = CatalogueRepository(session)
        resource = await catalogue.resource(resource_id, for_update=True)
        if resource is None:
            raise NotFoundError("no such resource")
        revoked = await TokenRepository(session).revoke_for_resource(resource.identifier, now=now)
        for scope in await catalogue.scopes(resource_id=resource.id):
            revoked += await retire_scope(runtime, session, scope.name, actor="admin", origin=origin, now=now)
        await catalogue.delete_resource(resource)
        credentials = await ClientRepository(session).get_record(resource.client_id, for_update=True)
        if credentials is not None:
            credentials.deleted_at = now
        await AuditRepository(session).record(
            "resource_deleted",
            now=now,
            origin=origin,
            user_id=admin,
            actor="admin",
            details={
                "resource_id": resource.id,
                "identifier": resource.identifier,
                "revoked_tokens": revoked,
            },
        )
    runtime.clients.invalidate(resource.client_id)
    runtime.clients.invalidate_catalogue()
    return revoked
