"""The provider's signing keys: active, and retired ones still published while their tokens live."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.storage.database import SIGNING_KEYS_LOCK, take_advisory_lock
from consentry.storage.tables import SigningKey


class SigningKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def published(self, *, now: datetime) -> list[SigningKey]:
        """Active keys and retired ones whose tokens may still be live, newest first."""
        return list(
            await self._session.scalars(
                select(SigningKey)
                .where(or_(SigningKey.publish_until.is_(None), SigningKey.publish_until > now))
                .order_by(SigningKey.created_at.desc())
            )
        )

    async def one_creator_at_a_time(self) -> None:
        """Until this transaction ends, another process creating keys waits (then finds these): PostgreSQL's
        transaction-level advisory lock. SQLite's single writer already serialises the writes."""
        await take_advisory_lock(self._session, SIGNING_KEYS_LOCK)

    async def add(self, key: SigningKey) -> None:
        self._session.add(key)
        await self._session.flush()

    async def retire_active(self, alg: str, *, now: datetime, publish_until: datetime) -> None:
        await self._session.execute(
            update(SigningKey)
            .where(SigningKey.alg == alg, SigningKey.retired_at.is_(None))
            .values(retired_at=now, publish_until=publish_until)
        )
