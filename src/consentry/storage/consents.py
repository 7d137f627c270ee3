"""Consent records and their history."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.domain.consent import StoredConsent
from consentry.storage.tables import Consent, ConsentHistory, ConsentStatus


def to_stored(consent: Consent) -> StoredConsent:
    return StoredConsent(
        scopes=consent.scopes,
        declined_scopes=consent.declined_scopes,
        expires_at=consent.expires_at,
        revoked=consent.status == ConsentStatus.REVOKED,
        policy_version=consent.policy_version,
    )


class ConsentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get_active(self, user_id: uuid.UUID, client_id: str) -> Consent | None:
        """The one record with status active (it may still be past ``expires_at``: the domain decides)."""
        return await self._session.scalar(
            select(Consent).where(
                Consent.user_id == user_id,
                Consent.client_id == client_id,
                Consent.status == ConsentStatus.ACTIVE,
            )
        )

    async def get_active_for_update(self, user_id: uuid.UUID, client_id: str) -> Consent | None:
        return await self._session.scalar(
            select(Consent)
            .where(
                Consent.user_id == user_id,
                Consent.client_id == client_id,
                Consent.status == ConsentStatus.ACTIVE,
            )
            .with_for_update()
        )

    async def get(self, consent_id: uuid.UUID) -> Consent | None:
        return await self._session.get(Consent, consent_id)

    async def add(self, consent: Consent) -> Consent:
        self._session.add(consent)
        await self._session.flush()
        return consent

    async def add_history(self, entry: ConsentHistory) -> None:
        self._session.add(entry)
        await self._session.flush()

    async def touch_last_used(self, consent_id: uuid.UUID, *, now: datetime, granularity: timedelta) -> None:
        """Record use at most once per ``granularity``: the statement matches no row when it is recent."""
        await self._session.execute(
            update(Consent)
            .where(
                Consent.id == consent_id,
                or_(Consent.last_used_at.is_(None), Consent.last_used_at < now - granularity),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
