"""Pairwise pseudonyms and their numbered versions (SPEC §6): what each client's ``sub`` resolves to."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.domain.pairwise import PseudonymVersionState
from consentry.storage.group_commit import Statement
from consentry.storage.tables import Pseudonym, PseudonymVersion

RESOLVABLE = (PseudonymVersionState.ACTIVE, PseudonymVersionState.RETIRING)


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

    async def resolve(self, sector: str, subject: str) -> uuid.UUID | None:
        """The user behind a pseudonym of an active or retiring version (both resolve during a migration)."""
        return await self._session.scalar(
            select(Pseudonym.user_id)
            .join(PseudonymVersion, PseudonymVersion.version == Pseudonym.version)
            .where(
                Pseudonym.sector == sector.lower(),
                Pseudonym.pseudonym == subject,
                PseudonymVersion.state.in_(RESOLVABLE),
            )
        )


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
