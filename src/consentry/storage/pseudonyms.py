"""Pairwise pseudonyms and their numbered versions (SPEC §6): what each client's ``sub`` resolves to."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.domain.pairwise import PseudonymVersionState
from consentry.storage.group_commit import Statement
from consentry.storage.tables import Pseudonym, PseudonymSector, PseudonymVersion


def pseudonym_insert(
    dialect: str, *, sector: str, version: int, user_id: uuid.UUID, pseudonym: str, now: datetime
) -> Statement:
    """The statement recording a pseudonym, run with the writes of the token that carries it; a pseudonym
    already recorded is left as it is."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(Pseudonym).values(
        sector=sector, version=version, user_id=user_id, pseudonym=pseudonym, created_at=now
    )
    return statement.on_conflict_do_nothing()


class PseudonymRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record(self, statement: Statement) -> None:
        """Run a :func:`pseudonym_insert` in this transaction."""
        await self._session.execute(statement)

    async def resolve(self, sector: str, subject: str, versions: Sequence[int]) -> uuid.UUID | None:
        """The user behind a pseudonym of one of ``versions`` in ``sector``."""
        return await self._session.scalar(
            select(Pseudonym.user_id).where(
                Pseudonym.sector == sector.lower(),
                Pseudonym.pseudonym == subject,
                Pseudonym.version.in_(versions),
            )
        )


@dataclass(frozen=True, slots=True)
class SectorPin:
    """The version a sector's clients see, and during a migration the one they saw before, until when."""

    sector: str
    version: int
    previous_version: int | None = None
    migrating_until: datetime | None = None

    def previous(self, *, now: datetime) -> int | None:
        """The previous version while the migration window is open."""
        if self.previous_version is None or self.migrating_until is None or now >= self.migrating_until:
            return None
        return self.previous_version

    def versions(self, *, now: datetime) -> tuple[int, ...]:
        previous = self.previous(now=now)
        return (self.version,) if previous is None else (self.version, previous)


def _pin(row: PseudonymSector) -> SectorPin:
    return SectorPin(row.sector, row.version, row.previous_version, row.migrating_until)


class PseudonymSectorRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def pin(self, sector: str, *, version: int, now: datetime) -> SectorPin:
        """The sector's pin; a sector seen for the first time is pinned to ``version`` (whoever pins it first,
        of concurrent requests or nodes, decides)."""
        found = await self.find(sector)
        if found is not None:  # the common case: a read, no write
            return found
        insert = pg_insert if self._session.get_bind().dialect.name == "postgresql" else sqlite_insert
        await self._session.execute(
            insert(PseudonymSector)
            .values(sector=sector, version=version, updated_at=now)
            .on_conflict_do_nothing()
        )
        row = await self._session.get(PseudonymSector, sector, populate_existing=True)
        assert row is not None
        return _pin(row)

    async def find(self, sector: str) -> SectorPin | None:
        row = await self._session.get(PseudonymSector, sector, populate_existing=True)
        return None if row is None else _pin(row)

    async def all(self) -> list[SectorPin]:
        return [_pin(row) for row in await self._session.scalars(select(PseudonymSector))]

    async def move(
        self, sector: str | None, *, to: int, until: datetime | None, now: datetime
    ) -> list[SectorPin]:
        """Move ``sector`` (None: every sector) to version ``to``, keeping the one it had as previous until
        ``until``; sectors already there stay as they are. Returns the sectors moved, as they are now."""
        moving = select(PseudonymSector).where(PseudonymSector.version != to).with_for_update()
        if sector is not None:
            moving = moving.where(PseudonymSector.sector == sector)
        moved = []
        for row in await self._session.scalars(moving):
            row.previous_version, row.version = row.version, to
            row.migrating_until, row.updated_at = until, now
            moved.append(_pin(row))
        return moved

    async def roll_back(self, sector: str | None, *, now: datetime) -> list[SectorPin]:
        """Put ``sector`` (None: every sector that has one) back on its previous version at once."""
        going_back = (
            select(PseudonymSector).where(PseudonymSector.previous_version.is_not(None)).with_for_update()
        )
        if sector is not None:
            going_back = going_back.where(PseudonymSector.sector == sector)
        restored = []
        for row in await self._session.scalars(going_back):
            assert row.previous_version is not None
            row.version, row.previous_version = row.previous_version, None
            row.migrating_until, row.updated_at = None, now
            restored.append(_pin(row))
        return restored


class PseudonymVersionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def all(self) -> list[PseudonymVersion]:
        return list(await self._session.scalars(select(PseudonymVersion).order_by(PseudonymVersion.version)))

    async def add(self, version: PseudonymVersion) -> None:
        self._session.add(version)
        await self._session.flush()

    async def set_state(
        self, version: int, state: PseudonymVersionState, *, now: datetime, activated: bool = False
    ) -> None:
        values: dict[str, object] = {"state": state}
        if state == PseudonymVersionState.RETIRED:
            values["retired_at"] = now
        if activated:
            values["activated_at"] = now
            values["retired_at"] = None
        await self._session.execute(
            update(PseudonymVersion).where(PseudonymVersion.version == version).values(**values)
        )
