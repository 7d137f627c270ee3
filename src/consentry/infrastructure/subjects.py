"""The ``sub`` each client sees: the user id (public) or a pairwise pseudonym (OIDC Core §8.1, SPEC §6).

Pseudonym versions are numbered keys. The ``active`` one is the version a sector gets when its first pseudonym
is made; from then on the sector is pinned to it, so no ``sub`` a client knows ever changes by itself.
``consentry pseudonyms rotate`` makes a new active version for sectors still to come. ``pseudonyms migrate``
moves sectors to the newest version gradually: during the sector's window its clients see the new ``sub`` and,
as ``sub_previous``, the old one, and either resolves. ``pseudonyms rollback`` puts sectors back at once. A
version no sector uses any more is ``retired``; one still in use but no longer given to new sectors is
``retiring``.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from consentry.crypto.hashing import derive_key
from consentry.domain import pairwise
from consentry.domain.clients import RegisteredClient
from consentry.domain.pairwise import PseudonymVersionState
from consentry.errors import ConfigurationError
from consentry.single_flight import SingleFlight
from consentry.storage.change_bus import ChangeBus
from consentry.storage.database import Database, Transaction
from consentry.storage.group_commit import Statement
from consentry.storage.pseudonyms import (
    PseudonymRepository,
    PseudonymSectorRepository,
    PseudonymVersionRepository,
    SectorPin,
    pseudonym_insert,
)
from consentry.storage.records import PseudonymVersion


@dataclass(frozen=True, slots=True)
class Versions:
    """The version new sectors get, and every version's key."""

    active: int
    keys: dict[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PseudonymRecord:
    """The insert that records a pseudonym (idempotent), and what this process remembers once it is done."""

    statement: Statement
    marker: tuple[str, int, uuid.UUID]


@dataclass(frozen=True, slots=True)
class Subject:
    """What a client knows a person by: ``sub``, and while its sector migrates, the ``sub`` it knew before."""

    value: str
    previous: str | None = None
    record: PseudonymRecord | None = None  # the new pseudonym's insert, when this process has not yet made it

    def claims(self) -> dict[str, str]:
        """As ID tokens, userinfo and introspection carry it."""
        if self.previous is None:
            return {"sub": self.value}
        return {"sub": self.value, "sub_previous": self.previous}


class SubjectService:
    def __init__(
        self, database: Database, changes: ChangeBus, *, secret: bytes, refresh_interval: float = 30.0
    ) -> None:
        self._database = database
        self._changes = changes
        changes.subscribe(self._changed)
        self._secret = secret
        self._refresh_interval = refresh_interval
        self._versions: Versions | None = None
        self._loaded_at = float("-inf")
        self._loads: SingleFlight[None, Versions] = SingleFlight()
        self._pins: dict[str, tuple[SectorPin, float]] = {}
        self._pin_loads: SingleFlight[str, SectorPin] = SingleFlight()
        self._stored: set[tuple[str, int, uuid.UUID]] = set()

    def _key(self, key_ref: str) -> bytes:
        return derive_key(self._secret, f"consentry pseudonyms {key_ref}")

    # --- reading ---------------------------------------------------------------------------------------

    async def _current(self, session: Transaction | None, *, now: datetime) -> Versions:
        """The versions, read through the caller's session (or one load at a time of its own)."""
        if self._versions is not None and time.monotonic() - self._loaded_at < self._refresh_interval:
            return self._versions
        if session is None:
            return await self._loads.run(None, lambda: self._load(now=now))
        return self._adopt(await self._read(session, now=now))

    async def _load(self, *, now: datetime) -> Versions:
        async with self._database.unit_of_work() as session:
            versions = await self._read(session, now=now)
        return self._adopt(versions) if self._loads.is_current(None) else versions  # not if rotated meanwhile

    async def _read(self, session: Transaction, *, now: datetime) -> Versions:
        rows = await PseudonymVersionRepository(session).all()
        active = next((v for v in rows if v.state == PseudonymVersionState.ACTIVE), None)
        if active is None:
            active = await self._create_version(session, rows, now=now)
            rows.append(active)
        return Versions(active.version, {v.version: self._key(v.key_ref) for v in rows})

    def _adopt(self, versions: Versions) -> Versions:
        self._versions = versions
        self._loaded_at = time.monotonic()
        return versions

    async def _pin(
        self, sector: str, active: int, session: Transaction | None, *, now: datetime
    ) -> SectorPin:
        """The sector's pin; a new sector is pinned to ``active``."""
        cached = self._pins.get(sector)
        if cached is not None and time.monotonic() - cached[1] < self._refresh_interval:
            return cached[0]
        if session is not None:
            return self._keep(await PseudonymSectorRepository(session).pin(sector, version=active, now=now))
        return await self._pin_loads.run(sector, lambda: self._load_pin(sector, active, now=now))

    async def _load_pin(self, sector: str, active: int, *, now: datetime) -> SectorPin:
        async with self._database.read_only() as session:  # a sector seen before: no write transaction
            pin = await PseudonymSectorRepository(session).find(sector)
        if pin is None:
            async with self._database.unit_of_work() as session:
                pin = await PseudonymSectorRepository(session).pin(sector, version=active, now=now)
        return self._keep(pin) if self._pin_loads.is_current(sector) else pin

    def _keep(self, pin: SectorPin) -> SectorPin:
        if len(self._pins) > 100_000:
            self._pins.clear()
        self._pins[pin.sector] = (pin, time.monotonic())
        return pin

    async def issuing_version(self, *, now: datetime) -> int:
        """The version a sector seen for the first time is pinned to."""
        return (await self._current(None, now=now)).active

    async def ensure_version(self, session: Transaction, *, now: datetime) -> int:
        """The active version, created if there is none yet."""
        return (await self._current(session, now=now)).active

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

    # --- issuing and resolving --------------------------------------------------------------------------

    async def subject(
        self,
        user_id: uuid.UUID,
        client: RegisteredClient,
        *,
        now: datetime,
        session: Transaction | None = None,
    ) -> Subject:
        """The ``sub`` for ``client`` (and ``sub_previous`` while its sector migrates), with the statement
        recording the pseudonym when this process has not yet.

        The caller runs the statement in the transaction that issues the token (group-committed or not), then
        calls :meth:`remember` so later tokens skip it.
        """
        if client.subject_type != "pairwise":
            return Subject(str(user_id))
        versions = await self._current(session, now=now)
        pin = await self._pin(client.sector, versions.active, session, now=now)
        if pin.version not in versions.keys:  # a version made by another node since this one last read
            self._forget_versions()
            versions = await self._current(session, now=now)
        value = pairwise.pseudonym(versions.keys[pin.version], client.sector, user_id)
        before = pin.previous(now=now)
        previous = None if before is None else pairwise.pseudonym(versions.keys[before], pin.sector, user_id)
        marker = (client.sector, pin.version, user_id)
        if marker in self._stored:
            return Subject(value, previous)
        statement = pseudonym_insert(
            self._database.dialect,
            sector=client.sector,
            version=pin.version,
            user_id=user_id,
            pseudonym=value,
            now=now,
        )
        return Subject(value, previous, PseudonymRecord(statement, marker))

    async def subject_for(
        self, session: Transaction, user_id: uuid.UUID, client: RegisteredClient, *, now: datetime
    ) -> str:
        """The ``sub`` for ``client``; a pairwise pseudonym is recorded so it can be resolved back."""
        subject = await self.subject(user_id, client, now=now, session=session)
        if subject.record is not None:
            await PseudonymRepository(session).record(subject.record.statement)
            self.remember(subject.record)
        return subject.value

    def remember(self, record: PseudonymRecord) -> None:
        """``record`` is committed: this process need not write it again."""
        if len(self._stored) > 100_000:
            self._stored.clear()
        self._stored.add(record.marker)

    async def resolve(
        self, session: Transaction, sector: str, subject: str, *, now: datetime
    ) -> uuid.UUID | None:
        """The user behind a pseudonym the sector's clients may hold: of its version, or during a migration of
        the previous one too. Nothing is written: a sector with no pin has no pseudonyms."""
        pin = await PseudonymSectorRepository(session).find(sector.lower())
        if pin is None:
            return None
        return await PseudonymRepository(session).resolve(sector, subject, pin.versions(now=now))

    # --- operating --------------------------------------------------------------------------------------

    async def rotate(self, *, now: datetime) -> int:
        """A new active version, for sectors still to come; every sector keeps the version it has."""
        async with self._database.unit_of_work() as session:
            repository = PseudonymVersionRepository(session)
            versions = await repository.all()
            created = await self._create_version(session, versions, now=now)
            await self._settle(session, active=created.version, now=now)
        self._changes.announce("pseudonyms")  # every process reads versions and pins again
        return created.version

    async def migrate(self, sector: str | None, *, window: timedelta, now: datetime) -> list[SectorPin]:
        """Move ``sector`` (None: every sector) to the active version; its previous version is honoured for
        ``window``. Returns the sectors moved."""
        async with self._database.unit_of_work() as session:
            active = (await self._read(session, now=now)).active
            moved = await PseudonymSectorRepository(session).move(
                sector.lower() if sector else None, to=active, until=now + window, now=now
            )
            await self._settle(session, active=active, now=now)
        self._changes.announce("pseudonyms")  # every process reads versions and pins again
        return moved

    async def rollback(self, sector: str | None, *, now: datetime) -> tuple[list[SectorPin], int]:
        """Put ``sector`` (None: every migrating sector) back on its previous version at once. Without a
        sector and with no sector migrating, undo the last rotation instead (if no sector uses it yet).
        Returns the sectors put back, and the active version."""
        async with self._database.unit_of_work() as session:
            versions = await PseudonymVersionRepository(session).all()
            active = next((v.version for v in versions if v.state == PseudonymVersionState.ACTIVE), None)
            restored = await PseudonymSectorRepository(session).roll_back(
                sector.lower() if sector else None, now=now
            )
            if not restored and sector is not None:
                raise ConfigurationError(f"sector {sector} has no previous pseudonym version")
            if not restored:
                in_use = {pin.version for pin in await PseudonymSectorRepository(session).all()}
                earlier = [v.version for v in versions if v.version != active]
                if active is None or active in in_use or not earlier:
                    raise ConfigurationError("no previous pseudonym version to roll back to")
                active = max(earlier)
            assert active is not None
            await self._settle(session, active=active, now=now)
        self._changes.announce("pseudonyms")  # every process reads versions and pins again
        return restored, active

    async def _settle(self, session: Transaction, *, active: int, now: datetime) -> None:
        """Each version's state: ``active`` the given one; ``retiring`` one a sector still sees (now, or as
        previous during a migration); ``retired`` any other."""
        repository = PseudonymVersionRepository(session)
        in_use: set[int] = set()
        for pin in await PseudonymSectorRepository(session).all():
            in_use.update(pin.versions(now=now))
        for version in await repository.all():
            if version.version == active:
                state = PseudonymVersionState.ACTIVE
            elif version.version in in_use:
                state = PseudonymVersionState.RETIRING
            else:
                state = PseudonymVersionState.RETIRED
            if version.state != state:
                activated = state == PseudonymVersionState.ACTIVE
                await repository.set_state(version.version, state, now=now, activated=activated)

    async def versions(self) -> list[PseudonymVersion]:
        async with self._database.read_only() as session:
            return await PseudonymVersionRepository(session).all()

    def _forget_versions(self) -> None:
        self._loads.forget(None)
        self._versions = None
        self._loaded_at = float("-inf")

    def _changed(self, topic: str, _key: str) -> None:
        if topic in ("pseudonyms", "everything"):
            self._forget()

    def _forget(self) -> None:
        self._forget_versions()
        self._pins.clear()
        self._stored.clear()
