"""Consent records and their history."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Update, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.domain.consent import StoredConsent
from consentry.domain.scopes import Scopes
from consentry.storage.audit import RequestOrigin
from consentry.storage.tables import Consent, ConsentHistory, ConsentStatus


def to_stored(consent: Consent) -> StoredConsent:
    return StoredConsent(
        scopes=consent.scopes,
        declined_scopes=consent.declined_scopes,
        expires_at=consent.expires_at,
        revoked=consent.status == ConsentStatus.REVOKED,
        policy_version=consent.policy_version,
    )


def last_used_update(consent_id: uuid.UUID, *, now: datetime, granularity: timedelta) -> Update:
    """Record use at most once per ``granularity``: the statement matches no row when it is recent."""
    return (
        update(Consent)
        .where(
            Consent.id == consent_id,
            or_(Consent.last_used_at.is_(None), Consent.last_used_at < now - granularity),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )


def is_live_consent(consent_id: uuid.UUID, *, now: datetime) -> ColumnElement[bool]:
    """SQL for "this consent is active and unexpired", to make a write conditional on it."""
    return (
        select(Consent.id)
        .where(Consent.id == consent_id, Consent.status == ConsentStatus.ACTIVE, Consent.expires_at > now)
        .exists()
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

    async def record_change(
        self,
        consent: Consent,
        action: str,
        *,
        actor: str,
        scopes_before: Scopes | None,
        origin: RequestOrigin | None,
        now: datetime,
        scopes_after: Scopes | None = None,
    ) -> None:
        """A history row for a change just made to ``consent``; "after" defaults to its scopes now."""
        origin = origin or RequestOrigin()
        await self.add_history(
            ConsentHistory(
                consent_id=consent.id,
                user_id=consent.user_id,
                client_id=consent.client_id,
                action=action,
                actor=actor,
                scopes_before=scopes_before,
                scopes_after=consent.scopes if scopes_after is None else scopes_after,
                policy_version=consent.policy_version,
                ip=origin.ip,
                user_agent=origin.user_agent,
                occurred_at=now,
            )
        )

    async def touch_last_used(self, consent_id: uuid.UUID, *, now: datetime, granularity: timedelta) -> None:
        await self._session.execute(last_used_update(consent_id, now=now, granularity=granularity))
