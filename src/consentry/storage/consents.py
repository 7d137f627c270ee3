"""Consent records and their history."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy import ColumnElement, Connection, Update, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.domain.consent import ConsentStatus, StoredConsent
from consentry.domain.scopes import Scopes
from consentry.storage.audit import RequestOrigin
from consentry.storage.batched_reads import BatchedReader
from consentry.storage.group_commit import Statement, claim_kind
from consentry.storage.json_arrays import array_has
from consentry.storage.key_lists import by_keys
from consentry.storage.tables import Client, Consent, ConsentHistory

if TYPE_CHECKING:
    from consentry.storage.database import Database


def to_stored(consent: Consent) -> StoredConsent:
    return StoredConsent(
        scopes=consent.scopes,
        declined_scopes=consent.declined_scopes,
        expires_at=consent.expires_at,
        revoked=consent.status == ConsentStatus.REVOKED,
        policy_version=consent.policy_version,
    )


@dataclass(frozen=True, slots=True)
class ActiveConsent:
    id: uuid.UUID
    stored: StoredConsent


class ActiveConsentLookup:
    """Each person's active consents, batched across concurrent requests (the authorization endpoint's read).

    Keyed by person: one indexed range read returns all of a person's active consents, few by nature.
    """

    def __init__(self, database: Database) -> None:
        self._database_reader = database.reader_for_batches()
        self._active_by_user = _ACTIVE_BY_USER.for_dialect(database.dialect)
        self._reader: BatchedReader[uuid.UUID, dict[str, ActiveConsent]] = BatchedReader(self._fetch)

    async def get(self, user_id: uuid.UUID, client_id: str) -> ActiveConsent | None:
        return (await self._reader.get(user_id) or {}).get(client_id)

    async def _fetch(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, ActiveConsent]]:
        return await self._database_reader.run(functools.partial(self._read, user_ids=user_ids))

    def _read(
        self, connection: Connection, user_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, dict[str, ActiveConsent]]:
        found: dict[uuid.UUID, dict[str, ActiveConsent]] = {}
        rows = connection.execute(self._active_by_user, {"keys": user_ids})
        for user_id, client_id, consent_id, scopes, declined, expires_at, policy in rows:
            stored = StoredConsent(scopes, declined, expires_at, False, policy)
            found.setdefault(user_id, {})[client_id] = ActiveConsent(consent_id, stored)
        return found


_ACTIVE_BY_USER = by_keys(
    Consent.user_id,
    lambda among_keys: select(
        Consent.user_id,
        Consent.client_id,
        Consent.id,
        Consent.scopes,
        Consent.declined_scopes,
        Consent.expires_at,
        Consent.policy_version,
    ).where(among_keys, Consent.status == ConsentStatus.ACTIVE),
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


# A code issued under a remembered consent is written only while that consent is live (a group-commit claim).
LIVE_CONSENT = claim_kind(
    "live consent",
    Consent.id,
    lambda among_keys: (
        select(Consent.id)
        .where(among_keys, Consent.status == ConsentStatus.ACTIVE, Consent.expires_at > bindparam("now"))
        .with_for_update(read=True)
    ),  # PostgreSQL: a concurrent revocation waits for the codes written here
    exclusive=False,
)


@dataclass(frozen=True, slots=True)
class EndedConsent:
    """A consent that :meth:`ConsentRepository.end_active` has just ended: who, which app, what it held."""

    id: uuid.UUID
    user_id: uuid.UUID
    client_id: str
    scopes: Scopes


@dataclass(frozen=True, slots=True)
class ConsentsOf:
    """Which active consents to end: those of these people, of this app, or (set together) of one person
    with one app; ``expired_by``: those past their expiry at that time."""

    user_ids: Sequence[uuid.UUID] | None = None
    client_id: str | None = None
    expired_by: datetime | None = None

    def where(self) -> ColumnElement[bool]:
        conditions = [Consent.status == ConsentStatus.ACTIVE]
        if self.user_ids is not None:
            conditions.append(Consent.user_id.in_(self.user_ids))
        if self.client_id is not None:
            conditions.append(Consent.client_id == self.client_id)
        if self.expired_by is not None:
            conditions.append(Consent.expires_at < self.expired_by)
        return and_(*conditions)


class ConsentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def run(self, statement: Statement) -> None:
        """A statement another port built for this aggregate (``last_used_update``), in this transaction."""
        await self._session.execute(statement)

    async def count_active(self, which: ConsentsOf) -> int:
        counted = select(func.count()).select_from(Consent).where(which.where())
        return int(await self._session.scalar(counted) or 0)

    async def clients_consented_by(self, user_id: uuid.UUID) -> list[str]:
        """The apps the person has an active consent with (expired or not)."""
        return list(
            await self._session.scalars(
                select(Consent.client_id).where(
                    Consent.user_id == user_id, Consent.status == ConsentStatus.ACTIVE
                )
            )
        )

    async def every_one_of(self, user_id: uuid.UUID) -> list[tuple[Consent, Client]]:
        """Every consent record of the person (active, revoked, expired), oldest first, each with its app."""
        rows = await self._session.execute(
            select(Consent, Client)
            .join(Client, Client.id == Consent.client_id)
            .where(Consent.user_id == user_id)
            .order_by(Consent.granted_at)
        )
        return [(consent, client) for consent, client in rows]

    async def history_of(self, user_id: uuid.UUID) -> list[ConsentHistory]:
        """The person's consent history, in the order it happened."""
        history = select(ConsentHistory).where(ConsentHistory.user_id == user_id).order_by(ConsentHistory.id)
        return list(await self._session.scalars(history))

    async def live_with_clients(self, user_id: uuid.UUID, *, now: datetime) -> list[tuple[Consent, Client]]:
        """The person's consents that still let an app in (active, not expired, app not deleted), newest
        first, each with its app."""
        rows = await self._session.execute(
            select(Consent, Client)
            .join(Client, Client.id == Consent.client_id)
            .where(
                Consent.user_id == user_id,
                Consent.status == ConsentStatus.ACTIVE,
                Consent.expires_at > now,
                Client.deleted_at.is_(None),
            )
            .order_by(Consent.granted_at.desc())
        )
        return [(consent, client) for consent, client in rows]

    async def end_active(
        self,
        which: ConsentsOf,
        *,
        action: Literal["revoked", "expired"],
        actor: str,
        origin: RequestOrigin | None,
        now: datetime,
        limit: int = 1000,
        skip_locked: bool = False,
    ) -> list[EndedConsent]:
        """Up to ``limit`` active consents ``which`` names end (revoked, or expired), each with a history
        row; returns them. Callers with more to end call again until fewer than ``limit`` come back;
        ``skip_locked`` leaves consents another transaction holds to it (a background sweep)."""
        chosen = await self._session.execute(
            select(Consent.id, Consent.user_id, Consent.client_id, Consent.scopes, Consent.policy_version)
            .where(which.where())
            .limit(limit)
            .with_for_update(skip_locked=skip_locked)
        )
        rows = chosen.all()
        if not rows:
            return []
        ended = {"status": ConsentStatus(action), "updated_at": now}
        if action == "revoked":
            ended["revoked_at"] = now
        await self._session.execute(
            update(Consent)
            .where(Consent.id.in_([row.id for row in rows]))
            .values(ended)
            .execution_options(synchronize_session=False)
        )
        origin = origin or RequestOrigin()
        history = [
            {
                "consent_id": row.id,
                "user_id": row.user_id,
                "client_id": row.client_id,
                "action": action,
                "actor": actor,
                "scopes_before": row.scopes,
                "scopes_after": Scopes() if action == "revoked" else row.scopes,
                "policy_version": row.policy_version,
                "ip": origin.ip,
                "user_agent": origin.user_agent,
                "occurred_at": now,
            }
            for row in rows
        ]
        await self._session.execute(insert(ConsentHistory), history)
        return [EndedConsent(row.id, row.user_id, row.client_id, row.scopes) for row in rows]

    async def active_carrying(self, scope: str, *, limit: int) -> list[Consent]:
        """Up to ``limit`` active consents that hold or declined ``scope``, locked (it is being deleted)."""
        dialect = self._session.get_bind().dialect.name
        held = array_has(Consent.scopes, scope, dialect)
        declined = array_has(Consent.declined_scopes, scope, dialect)
        carrying = select(Consent).where(Consent.status == ConsentStatus.ACTIVE, or_(held, declined))
        return list(await self._session.scalars(carrying.limit(limit).with_for_update()))

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

    async def close_expired(self, consent: Consent, *, now: datetime) -> None:
        """Mark a consent past its expiry as expired before a new one for the same app takes its place."""
        consent.status = ConsentStatus.EXPIRED
        consent.updated_at = now
        await self._session.flush()

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
