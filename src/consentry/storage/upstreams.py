"""Upstream identity providers, the accounts linked to them, and the trips to a provider and back (SPEC §10).

``LinkedAccountRepository`` is the port for linked accounts; each of its methods is one question or change
(the seed's Go repository named the same eleven: CreateOAuthAccount is ``add``, CheckOAuthAccountExists
``exists``, FindByProviderUID ``find``, GetUserIDByProviderUID ``user_id_of``, GetOAuthAccountByID ``get``,
GetOAuthAccountsByUserID ``of_user``, UnlinkOAuthAccount ``remove``, UpdateOAuthTokens ``update_tokens``,
UpdateOAuthAccountMetadata ``update_profile``, GetRecentOAuthLinks ``recent``, CountOAuthAccountsByProvider
``count_by_provider``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.storage.database import savepoint
from consentry.storage.tables import LinkedAccount, UpstreamAuthorization, UpstreamProvider


class UpstreamProviderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, provider: UpstreamProvider) -> bool:
        """False when a provider of that name exists."""
        try:
            async with savepoint(self._session):
                self._session.add(provider)
                await self._session.flush()
        except IntegrityError:
            return False
        return True

    async def get(self, name: str, *, for_update: bool = False) -> UpstreamProvider | None:
        return await self._session.get(UpstreamProvider, name, with_for_update=for_update)

    async def listed(self, *, enabled_only: bool = False) -> list[UpstreamProvider]:
        query = select(UpstreamProvider).order_by(UpstreamProvider.name)
        if enabled_only:
            query = query.where(UpstreamProvider.enabled)
        return list(await self._session.scalars(query))

    async def remove(self, name: str) -> bool:
        """The provider goes, and every account linked to it (the foreign keys cascade)."""
        removed = await self._session.execute(
            delete(UpstreamProvider)
            .where(UpstreamProvider.name == name)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(removed, "rowcount", 0))


class LinkedAccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, link: LinkedAccount) -> bool:
        """False when the upstream account, or an account of the person at that provider, is linked already
        (perhaps by a concurrent request): a ``(provider, provider_uid)`` belongs to one person."""
        try:
            async with savepoint(self._session):
                self._session.add(link)
                await self._session.flush()
        except IntegrityError:
            return False
        return True

    async def exists(self, provider: str, provider_uid: str) -> bool:
        found = select(LinkedAccount.id).where(
            LinkedAccount.provider == provider, LinkedAccount.provider_uid == provider_uid
        )
        return await self._session.scalar(found) is not None

    async def find(
        self, provider: str, provider_uid: str, *, for_update: bool = False
    ) -> LinkedAccount | None:
        query = select(LinkedAccount).where(
            LinkedAccount.provider == provider, LinkedAccount.provider_uid == provider_uid
        )
        if for_update:
            query = query.with_for_update()
        return await self._session.scalar(query)

    async def user_id_of(self, provider: str, provider_uid: str) -> uuid.UUID | None:
        found = select(LinkedAccount.user_id).where(
            LinkedAccount.provider == provider, LinkedAccount.provider_uid == provider_uid
        )
        return await self._session.scalar(found)

    async def get(self, link_id: int) -> LinkedAccount | None:
        return await self._session.get(LinkedAccount, link_id)

    async def of_user(self, user_id: uuid.UUID, *, for_update: bool = False) -> list[LinkedAccount]:
        """The person's linked accounts, in the order they were linked."""
        query = (
            select(LinkedAccount).where(LinkedAccount.user_id == user_id).order_by(LinkedAccount.linked_at)
        )
        if for_update:
            query = query.with_for_update()
        return list(await self._session.scalars(query))

    async def remove(self, user_id: uuid.UUID, provider: str) -> bool:
        removed = await self._session.execute(
            delete(LinkedAccount)
            .where(LinkedAccount.user_id == user_id, LinkedAccount.provider == provider)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(removed, "rowcount", 0))

    async def update_tokens(
        self,
        link_id: int,
        *,
        access_token: str | None,
        refresh_token: str | None,
        expires_at: datetime | None,
    ) -> None:
        """The provider's tokens (sealed by the caller); a refresh that brings no new refresh token keeps the
        old one."""
        values: dict[str, Any] = {"access_token": access_token, "token_expires_at": expires_at}
        if refresh_token is not None:
            values["refresh_token"] = refresh_token
        await self._session.execute(
            update(LinkedAccount)
            .where(LinkedAccount.id == link_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def update_profile(
        self, link_id: int, *, email: str | None, email_verified: bool, profile: dict[str, Any], now: datetime
    ) -> None:
        """What the provider said of the person at this sign-in; the account was used now."""
        await self._session.execute(
            update(LinkedAccount)
            .where(LinkedAccount.id == link_id)
            .values(email=email, email_verified=email_verified, profile=profile, last_used_at=now)
            .execution_options(synchronize_session=False)
        )

    async def recent(self, *, limit: int) -> list[LinkedAccount]:
        """The newest links, newest first (for administrators)."""
        query = select(LinkedAccount).order_by(LinkedAccount.linked_at.desc(), LinkedAccount.id.desc())
        return list(await self._session.scalars(query.limit(limit)))

    async def count_by_provider(self) -> dict[str, int]:
        counted = select(LinkedAccount.provider, func.count()).group_by(LinkedAccount.provider)
        return {provider: int(count) for provider, count in await self._session.execute(counted)}


class UpstreamAuthorizationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, trip: UpstreamAuthorization) -> None:
        self._session.add(trip)
        await self._session.flush()

    async def take(self, state_hash: bytes, *, now: datetime) -> UpstreamAuthorization | None:
        """The trip whose state came back, once: the first caller moves it past ``sent`` (one statement, so a
        replayed callback racing the first finds nothing)."""
        return await self._advance(
            UpstreamAuthorization.state_hash == state_hash, "sent", "answered", now=now
        )

    async def take_ticket(self, ticket_hash: bytes, *, now: datetime) -> UpstreamAuthorization | None:
        """The trip awaiting the terms whose ticket this is, once."""
        found = UpstreamAuthorization.ticket_hash == ticket_hash
        return await self._advance(found, "awaiting_terms", "done", now=now)

    async def _advance(
        self, found: ColumnElement[bool], step: str, to: str, *, now: datetime
    ) -> UpstreamAuthorization | None:
        """The unexpired trip ``found`` at ``step``, moved to ``to`` by one conditional statement; None when
        another request moved it first (or it is not there)."""
        moved = await self._session.execute(
            update(UpstreamAuthorization)
            .where(found, UpstreamAuthorization.step == step, UpstreamAuthorization.expires_at > now)
            .values(step=to)
            .execution_options(synchronize_session=False)
        )
        if not getattr(moved, "rowcount", 0):
            return None
        return await self._session.scalar(
            select(UpstreamAuthorization).where(found).execution_options(populate_existing=True)
        )

    async def await_terms(self, state_hash: bytes, *, ticket_hash: bytes, answer: str) -> None:
        """The provider's answer (sealed) waits for someone new to accept the terms, behind a ticket."""
        await self._session.execute(
            update(UpstreamAuthorization)
            .where(UpstreamAuthorization.state_hash == state_hash)
            .values(step="awaiting_terms", ticket_hash=ticket_hash, answer=answer)
            .execution_options(synchronize_session=False)
        )
