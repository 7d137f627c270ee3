"""Client aggregate."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.domain.clients import SubjectType
from consentry.storage.tables import Client


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

    async def get_record(self, client_id: str, *, for_update: bool = False) -> Client | None:
        """The client's record, soft-deleted or not; locked if ``for_update``."""
        return await self._session.get(Client, client_id, with_for_update=for_update)

    async def owned_by(self, owner_id: uuid.UUID) -> list[Client]:
        """The person's live clients, oldest first."""
        owned = (
            select(Client)
            .where(Client.owner_id == owner_id, Client.deleted_at.is_(None))
            .order_by(Client.created_at)
        )
        return list(await self._session.scalars(owned))

    async def pairwise_in_sector(self, sector: str) -> list[str]:
        """The live pairwise clients of a sector."""
        found = select(Client.id).where(
            Client.sector == sector, Client.subject_type == SubjectType.PAIRWISE, Client.deleted_at.is_(None)
        )
        return list(await self._session.scalars(found))
