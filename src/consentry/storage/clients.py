"""Client aggregate, and the initial access tokens that let software register a client (RFC 7591 §3)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.domain.clients import ClientRegistration, SubjectType
from consentry.storage.database import savepoint
from consentry.storage.tables import Client, InitialAccessToken


class ClientRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_client(self, client: Client) -> Client:
        self._session.add(client)
        await self._session.flush()
        return client

    async def add_unless_present(self, client: Client) -> bool:
        """Add the client unless one with its id exists (another process made it meanwhile): False then."""
        try:
            async with savepoint(self._session):
                self._session.add(client)
                await self._session.flush()
        except IntegrityError:
            return False
        return True

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

    async def listed(
        self, *, registered_by: ClientRegistration | None = None, limit: int, offset: int
    ) -> list[Client]:
        """Every live client (for administrators), newest first; those that came to be one way if asked."""
        query = select(Client).where(Client.deleted_at.is_(None))
        if registered_by is not None:
            query = query.where(Client.registered_by == registered_by)
        query = query.order_by(Client.created_at.desc(), Client.id).limit(limit).offset(offset)
        return list(await self._session.scalars(query))

    async def pairwise_in_sector(self, sector: str) -> list[str]:
        """The live pairwise clients of a sector."""
        found = select(Client.id).where(
            Client.sector == sector, Client.subject_type == SubjectType.PAIRWISE, Client.deleted_at.is_(None)
        )
        return list(await self._session.scalars(found))


class InitialAccessTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, token: InitialAccessToken) -> None:
        self._session.add(token)
        await self._session.flush()

    async def use(self, token_hash: bytes, *, now: datetime) -> bool:
        """Spend one use of the token if it is still good: unexpired, with uses left. One statement, so two
        registrations cannot both take its last use."""
        spent = await self._session.execute(
            update(InitialAccessToken)
            .where(
                InitialAccessToken.token_hash == token_hash,
                or_(InitialAccessToken.expires_at.is_(None), InitialAccessToken.expires_at > now),
                or_(InitialAccessToken.uses_left.is_(None), InitialAccessToken.uses_left > 0),
            )
            .values(uses_left=InitialAccessToken.uses_left - 1)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(spent, "rowcount", 0))
