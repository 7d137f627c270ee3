"""Custom scopes (SPEC §7): created, described and restricted by an admin; deleting one revokes the tokens
that carry it and takes it out of every consent."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consentry.domain import resources as rules
from consentry.domain.resources import IDENTITY_SCOPES, InvalidResource
from consentry.errors import ConflictError, InvalidRequestError, NotFoundError
from consentry.runtime import Runtime
from consentry.services.consent_endings import end_consents
from consentry.services.webhooks import enqueue
from consentry.storage.audit import AuditRepository, RequestOrigin
from consentry.storage.consents import ConsentRepository, ConsentsOf
from consentry.storage.database import Transaction
from consentry.storage.records import Scope
from consentry.storage.resources import CatalogueRepository
from consentry.storage.tokens import TokenRepository

CONSENTS_PER_BATCH = 1000


@dataclass(frozen=True, slots=True)
class ScopeSpec:
    """A custom scope to create: ``NAME=DESCRIPTION`` on the command line."""

    name: str
    description: str
    restricted: bool = False


def scope_as_json(scope: Scope, resource: str | None) -> dict[str, Any]:
    return {
        "name": scope.name,
        "description": scope.description,
        "resource": resource,
        "restricted": scope.restricted,
        "created_at": scope.created_at.isoformat(),
    }


async def add_scope(
    catalogue: CatalogueRepository, spec: ScopeSpec, resource_id: str | None, *, now: datetime
) -> None:
    await catalogue.add_scope(
        Scope(
            name=spec.name,
            description=spec.description,
            claims=[],
            resource_id=resource_id,
            restricted=spec.restricted,
            created_at=now,
        )
    )


async def create_scope(
    runtime: Runtime,
    spec: ScopeSpec,
    *,
    resource: str | None = None,
    actor: str = "admin",
    admin: uuid.UUID | None = None,
    origin: RequestOrigin | None = None,
    now: datetime,
) -> dict[str, Any]:
    """A custom scope, of no resource or of the resource ``resource`` (its identifier or id)."""
    try:
        spec = ScopeSpec(
            rules.validate_scope_name(spec.name),
            rules.validate_description(spec.description),
            spec.restricted,
        )
    except InvalidResource as exc:
        raise InvalidRequestError(f"{exc.field}: {exc}") from None
    async with runtime.database.unit_of_work() as session:
        catalogue = CatalogueRepository(session)
        owner = None
        if resource:
            owner = await catalogue.resource_by_identifier(resource) or await catalogue.resource(resource)
            if owner is None:
                raise NotFoundError(f"no resource {resource}")
        if await catalogue.scope(spec.name) is not None:
            raise ConflictError(f"the scope {spec.name} exists")
        await add_scope(catalogue, spec, owner.id if owner else None, now=now)
        await AuditRepository(session).record(
            "scope_created",
            now=now,
            origin=origin,
            user_id=admin,
            actor=actor,
            details={"scope": spec.name, "resource": owner.identifier if owner else None},
        )
        created = await catalogue.scope(spec.name)
        assert created is not None
        view = scope_as_json(created, owner.identifier if owner else None)
    runtime.clients.invalidate_catalogue()
    return view


async def list_scopes(runtime: Runtime) -> list[dict[str, Any]]:
    catalogue = await runtime.clients.catalogue()
    async with runtime.database.read_only() as session:
        return [
            scope_as_json(
                scope, catalogue.scopes[scope.name].resource if scope.name in catalogue.scopes else None
            )
            for scope in await CatalogueRepository(session).scopes()
        ]


async def get_scope(runtime: Runtime, name: str) -> dict[str, Any]:
    catalogue = await runtime.clients.catalogue()
    async with runtime.database.read_only() as session:
        scope = await CatalogueRepository(session).scope(name)
    if scope is None:
        raise NotFoundError("no such scope")
    known = catalogue.scopes.get(name)
    return scope_as_json(scope, known.resource if known else None)


async def update_scope(
    runtime: Runtime,
    name: str,
    changes: dict[str, Any],
    *,
    admin: uuid.UUID | None,
    origin: RequestOrigin | None,
    now: datetime,
) -> dict[str, Any]:
    """A scope's description (what the consent screen shows) or whether it is restricted."""
    try:
        if "description" in changes:
            changes["description"] = rules.validate_description(str(changes["description"]))
    except InvalidResource as exc:
        raise InvalidRequestError(f"{exc.field}: {exc}") from None
    async with runtime.database.unit_of_work() as session:
        scope = await CatalogueRepository(session).scope(name, for_update=True)
        if scope is None:
            raise NotFoundError("no such scope")
        if name in IDENTITY_SCOPES and "restricted" in changes:
            raise InvalidRequestError(f"{name} is an OpenID Connect scope: it cannot be restricted")
        scope.description = changes.get("description", scope.description)
        scope.restricted = bool(changes.get("restricted", scope.restricted))
        await AuditRepository(session).record(
            "scope_updated",
            now=now,
            origin=origin,
            user_id=admin,
            actor="admin",
            details={"scope": name, "changed": sorted(changes)},
        )
    runtime.clients.invalidate_catalogue()
    return await get_scope(runtime, name)


async def delete_scope(
    runtime: Runtime, name: str, *, admin: uuid.UUID | None, origin: RequestOrigin | None, now: datetime
) -> int:
    """Delete a custom scope: the tokens that carry it are revoked and it leaves every consent. Returns the
    number of tokens revoked."""
    if name in IDENTITY_SCOPES:
        raise InvalidRequestError(f"{name} is an OpenID Connect scope: it cannot be deleted")
    async with runtime.database.unit_of_work() as session:
        catalogue = CatalogueRepository(session)
        scope = await catalogue.scope(name, for_update=True)
        if scope is None:
            raise NotFoundError("no such scope")
        revoked = await retire_scope(runtime, session, name, actor="admin", origin=origin, now=now)
        await catalogue.delete_scope(scope)
        await AuditRepository(session).record(
            "scope_deleted",
            now=now,
            origin=origin,
            user_id=admin,
            actor="admin",
            details={"scope": name, "revoked_tokens": revoked},
        )
    runtime.clients.invalidate_catalogue()
    return revoked


async def retire_scope(
    runtime: Runtime,
    session: Transaction,
    name: str,
    *,
    actor: str,
    origin: RequestOrigin | None,
    now: datetime,
) -> int:
    """A scope going away: every token carrying it is revoked, and it leaves every consent (a consent left
    with nothing ends, as any ending does). Returns the number of tokens revoked."""
    revoked = await TokenRepository(session).revoke_carrying_scope(name, now=now)
    consents = ConsentRepository(session)
    while batch := await consents.active_carrying(name, limit=CONSENTS_PER_BATCH):
        for consent in batch:
            before = consent.scopes
            consent.declined_scopes = consent.declined_scopes - {name}
            if not before - {name}:
                await end_consents(
                    runtime,
                    session,
                    ConsentsOf(user_ids=[consent.user_id], client_id=consent.client_id),
                    actor=actor,
                    origin=origin,
                    now=now,
                )
                continue
            consent.scopes = before - {name}
            consent.updated_at = now
            if consent.scopes != before:
                await consents.record_change(
                    consent, "scope_deleted", actor=actor, scopes_before=before, origin=origin, now=now
                )
                client = await runtime.clients.get(consent.client_id)
                if client is not None:
                    await enqueue(
                        runtime,
                        session,
                        client,
                        "consent.updated",
                        user_id=consent.user_id,
                        scopes=consent.scopes,
                        now=now,
                    )
    return revoked
