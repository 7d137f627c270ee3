"""The catalogue aggregate: API resources and the scopes (identity and custom) tokens are granted for."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.domain.resources import Catalogue, CatalogueScope, ProtectedResource
from consentry.storage.tables import Resource, Scope


def resource_snapshot(resource: Resource) -> ProtectedResource:
    return ProtectedResource(
        id=resource.id,
        identifier=resource.identifier,
        name=resource.name,
        token_format=resource.token_format,
        access_token_ttl=resource.access_token_ttl,
        client_id=resource.client_id,
    )


class CatalogueRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def catalogue(self) -> Catalogue:
        resources = {r.id: resource_snapshot(r) for r in await self._session.scalars(select(Resource))}
        scopes = {
            scope.name: CatalogueScope(
                name=scope.name,
                description=scope.description,
                claims=tuple(scope.claims),
                resource=resources[scope.resource_id].identifier if scope.resource_id in resources else None,
                restricted=scope.restricted,
            )
            for scope in await self._session.scalars(select(Scope))
        }
        return Catalogue(scopes, {r.identifier: r for r in resources.values()})

    async def resources(self) -> list[Resource]:
        return list(await self._session.scalars(select(Resource).order_by(Resource.created_at)))

    async def resource(self, resource_id: str, *, for_update: bool = False) -> Resource | None:
        return await self._session.get(Resource, resource_id, with_for_update=for_update)

    async def resource_by_identifier(self, identifier: str) -> Resource | None:
        return await self._session.scalar(select(Resource).where(Resource.identifier == identifier))

    async def advance_pushes(self, resource_id: str, cursor: str) -> None:
        """Where the next revocation push starts."""
        await self._session.execute(
            update(Resource).where(Resource.id == resource_id).values(pushed_until=cursor)
        )

    async def add_resource(self, resource: Resource) -> None:
        self._session.add(resource)
        await self._session.flush()

    async def delete_resource(self, resource: Resource) -> None:
        """The resource and its scopes (the database cascades); its credentials are the caller's."""
        await self._session.execute(delete(Scope).where(Scope.resource_id == resource.id))
        await self._session.delete(resource)
        await self._session.flush()

    async def scopes(self, *, resource_id: str | None = None) -> list[Scope]:
        """Every scope, or a resource's, by name."""
        chosen = select(Scope).order_by(Scope.name)
        if resource_id is not None:
            chosen = chosen.where(Scope.resource_id == resource_id)
        return list(await self._session.scalars(chosen))

    async def scope(self, name: str, *, for_update: bool = False) -> Scope | None:
        return await self._session.get(Scope, name, with_for_update=for_update)

    async def add_scope(self, scope: Scope) -> None:
        self._session.add(scope)
        await self._session.flush()

    async def delete_scope(self, scope: Scope) -> None:
        await self._session.delete(scope)
        await self._session.flush()
