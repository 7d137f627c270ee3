"""The ``sub`` each client sees: the user id (public) or a pairwise pseudonym (OIDC Core §8.1, SPEC §6).

Pseudonym versions: one ``active`` version issues new pseudonyms; after `pseudonyms rotate` the previous one
is ``retiring`` and its pseudonyms still resolve; `pseudonyms rollback` makes it active again.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from consentry.crypto.hashing import derive_key
from consentry.domain import pairwise
from consentry.domain.clients import RegisteredClient
from consentry.domain.pairwise import PseudonymVersionState
from consentry.errors import ConfigurationError
from consentry.single_flight import SingleFlight
from consentry.storage.database import Database, Transaction
from consentry.storage.group_commit import Statement
from consentry.storage.pseudonyms import (
    PseudonymRepository,
    PseudonymVersionRepository,
    pseudonym_insert,
)
from consentry.storage.records import PseudonymVersion


@dataclass(frozen=True, slots=True)
class VersionKey:
    version: int
    key: bytes


@dataclass(frozen=True, slots=True)
class PseudonymRecord:
    """The insert that records a pseudonym (idempotent), and what this process remembers once it is done."""

    statement: Statement
    marker: tuple[str, int, uuid.UUID]


class SubjectService:
    def __init__(self, database: Database, *, secret: bytes, refresh_interval: float = 30.0) -> None:
        self._database = database
        self._secret = secret
        self._refresh_interval = refresh_interval
        self._active: VersionKey | None = None
        self._loaded_at = float("-inf")
        self._stored: set[tuple[str, int, uuid.UUID]] = set()
        self._loads: SingleFlight[None, VersionKey] = SingleFlight()

    def _key(self, key_ref: str) -> bytes:
        return derive_key(self._secret, f"consentry pseudonyms {key_ref}")

    async def _active_version(self, session: Transaction | None, *, now: datetime) -> VersionKey:
        """The issuing version, read through the caller's session (or one load at a time of its own)."""
        if self._active is not None and time.monotonic() - self._loaded_at < self._refresh_interval:
            return self._active
        if session is None:
            return await self._loads.run(None, lambda: self._load_active(now=now))
        return self._adopt(await self._read_active(session, now=now))

    async def _load_active(self, *, now: datetime) -> VersionKey:
        async with self._database.unit_of_work() as session:
            active = await self._read_active(session, now=now)
        return self._adopt(active) if self._loads.is_current(None) else active  # not if rotated meanwhile

    async def _read_active(self, session: Transaction, *, now: datetime) -> VersionKey:
        versions = await PseudonymVersionRepository(session).all()
        active = next((v for v in versions if v.state == PseudonymVersionState.ACTIVE), None)
        if active is None:
            active = await self._create_version(session, versions, now=now)
        return VersionKey(active.version, self._key(active.key_ref))

    def _adopt(self, active: VersionKey) -> VersionKey:
        self._active = active
        self._loaded_at = time.monotonic()
        return active

    async def ensure_version(self, session: Transaction, *, now: datetime) -> int:
        """The active version, created if there is none yet."""
        return (await self._active_version(session, now=now)).version

    async def _create_version(
        self, session: Transaction, versions: list[PseudonymVersion], *, now: datetime
    ) -> PseudonymVersion:
        version = PseudonymVersion(
            version=max((v.version for v in versions), default=0) + 1,
            algorithm=pairwise.ALGORITHM,
            key_ref=secrets.token_urlsafe(24),
            state=PseudonymVersionState.ACTIVE,
            created_at=now,
            activated_at=now,
        )
        await PseudonymVersionRepository(session).add(version)
        return version

    async def subject_for(
        self, session: Transaction, user_id: uuid.UUID, client: RegisteredClient, *, now: datetime
    ) -> str:
        """The ``sub`` for ``client``; a pairwise pseudonym is recorded so it can be resolved back."""
        value, record = await self.pseudonym(user_id, client, now=now, session=session)
        if record is not None:
            await PseudonymRepository(session).record(record.statement)
            self.remember(record)
        return value

    async def pseudonym(
        self,
        user_id: uuid.UUID,
        client: RegisteredClient,
        *,
        now: datetime,
        session: Transaction | None = None,
    ) -> tuple[str, PseudonymRecord | None]:
        """The ``sub`` for ``client``, and the statement recording it when this process has not yet.

        The caller runs the statement in the transaction that issues the token (group-committed or not), then
        calls :meth:`remember` so later tokens skip it.
        """
        if client.subject_type != "pairwise":
            return str(user_id), None
        active = await self._active_version(session, now=now)
        value = pairwise.pseudonym(active.key, client.sector, user_id)
        if (client.sector, active.version, user_id) in self._stored:
            return value, None
        statement = pseudonym_insert(
            self._database.dialect,
            sector=client.sector,
            version=active.version,
            user_id=user_id,
            pseudonym=value,
            now=now,
        )
        return value, PseudonymRecord(statement, (client.sector, active.version, user_id))

    def remember(self, record: PseudonymRecord) -> None:
        """``record`` is committed: this process need not write it again."""
        if len(self._stored) > 100_000:
            self._stored.clear()
        self._stored.add(record.marker)

    async def resolve(self, session: Transaction, sector: str, subject: str) -> uuid.UUID | None:
        """The user behind a pseudonym of an active or retiring version (both resolve during a migration)."""
        return await PseudonymRepository(session).resolve(sector, subject)

    async def rotate(self, *, now: datetime) -> int:
        """Start a new version; the previous active one becomes retiring, an older retiring one retires."""
        async with self._database.unit_of_work() as session:
            repository = PseudonymVersionRepository(session)
            versions = await repository.all()
            for version in versions:
                if version.state == PseudonymVersionState.RETIRING:
                    await repository.set_state(version.version, PseudonymVersionState.RETIRED, now=now)
                elif version.state == PseudonymVersionState.ACTIVE:
                    await repository.set_state(version.version, PseudonymVersionState.RETIRING, now=now)
            created = await self._create_version(session, versions, now=now)
        self._forget()
        return created.version

    async def rollback(self, *, now: datetime) -> int:
        """Retire the active version and make the retiring one active again."""
        async with self._database.unit_of_work() as session:
            repository = PseudonymVersionRepository(session)
            versions = await repository.all()
            retiring = [v for v in versions if v.state == PseudonymVersionState.RETIRING]
            if not retiring:
                raise ConfigurationError("no previous pseudonym version to roll back to")
            previous = max(retiring, key=lambda v: v.version)
            for version in versions:
                if version.state == PseudonymVersionState.ACTIVE:
                    await repository.set_state(version.version, PseudonymVersionState.RETIRED, now=now)
            await repository.set_state(
                previous.version, PseudonymVersionState.ACTIVE, now=now, activated=True
            )
        self._forget()
        return previous.version

    async def versions(self) -> list[PseudonymVersion]:
        async with self._database.read_only() as session:
            return await PseudonymVersionRepository(session).all()

    def _forget(self) -> None:
        self._loads.forget(None)
        self._active = None
        self._loaded_at = float("-inf")
        self._stored.clear()
