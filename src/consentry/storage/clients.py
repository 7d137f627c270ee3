"""Client aggregate and the scope catalogue."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.storage.tables import Client, Scope


class ClientRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_client(self, client: Client) -> Client:
        self._session.add(client)
        await self._session.flush()
        return client

    async def get_client(self, client_id: str) -> Client | None:
        """A live (not soft-deleted) client."""
        return await self._session.scalar(
            select(Client).where(Client.id == client_id, Client.deleted_at.is_(None))
        )

    async def get_for_update(self, client_id: str) -> Client | None:
        """The client's record, locked, soft-deleted or not."""
        return await self._session.get(Client, client_id, with_for_update=True)

    async def known_scope_names(self) -> frozenset[str]:
        return frozenset(await self._session.scalars(select(Scope.name)))
