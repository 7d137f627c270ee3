"""Group commit: concurrent requests' writes share one transaction; each request waits for its commit.

A token issued per request used to cost a transaction per request: on SQLite a WAL append of every page the
rows' indexes touch, on PostgreSQL a round trip per statement and a commit each. Here requests hand over a
:class:`WriteUnit` (rows to insert, at most one claim, a few statements) and await it; while one batch is
being written the next one gathers, so the batch grows with the load and nobody waits for a timer. A request
is answered only after the transaction holding its rows has committed: nothing is acknowledged that a crash
could lose.

A claim is a conditional UPDATE that must change exactly one row (a code's ``used_at IS NULL``, a refresh
token's ``rotated_at IS NULL``); a unit whose claim changes nothing is dropped and reported lost, which is how
single use stays exact when two requests in one batch present the same code.

When a batch fails as a whole (a foreign key gone because a client was deleted meanwhile), each unit is
retried alone so one bad unit does not fail the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, Update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable

from consentry.storage.database import Database
from consentry.storage.tables import Base

log = logging.getLogger(__name__)

MAX_UNITS_PER_TRANSACTION = 256
_TABLE_ORDER = {table: position for position, table in enumerate(Base.metadata.sorted_tables)}


Row = tuple[Table, dict[str, Any]]  # a table and the values of one row to insert into it


@dataclass(frozen=True, slots=True)
class WriteUnit:
    """One request's writes: applied all together or not at all."""

    rows: Sequence[Row] = ()
    claim: Update | None = None
    statements: Sequence[Executable] = field(default_factory=tuple)


class ClaimLost(Exception):
    """The unit's claim changed no row: another request used the code or token first."""


@dataclass(slots=True)
class _Pending:
    unit: WriteUnit
    done: asyncio.Future[None]


class GroupCommitter:
    def __init__(self, database: Database, *, max_units: int = MAX_UNITS_PER_TRANSACTION) -> None:
        self._database = database
        self._max_units = max_units
        self._queue: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, unit: WriteUnit) -> None:
        """Return once ``unit`` is committed; raise :class:`ClaimLost` if its claim changed nothing."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(unit, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all())
        await asyncio.shield(done)  # a caller that goes away does not take its committed rows with it

    async def drain(self) -> None:
        """Wait until everything handed over so far is written (used at shutdown)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def _flush_all(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max_units], self._queue[self._max_units :]
            try:
                lost = await self._write_batch(batch)
            except Exception as exc:
                if len(batch) == 1:
                    _fail(batch[0], exc)
                else:
                    log.warning("a grouped write of %d units failed; writing each alone", len(batch))
                    await self._write_alone(batch)
                continue
            except BaseException:  # cancelled at shutdown: nobody may wait forever
                for pending in batch + self._queue:
                    pending.done.cancel()
                raise
            _settle(batch, lost)

    async def _write_alone(self, batch: list[_Pending]) -> None:
        for pending in batch:
            try:
                lost = await self._write_batch([pending])
            except Exception as exc:
                _fail(pending, exc)
                continue
            _settle([pending], lost)

    async def _write_batch(self, batch: list[_Pending]) -> set[int]:
        """One transaction for the batch; the positions of units whose claim was lost."""
        lost: set[int] = set()
        by_table: dict[Table, list[dict[str, Any]]] = {}
        async with self._database.unit_of_work() as session:
            connection: AsyncConnection = await session.connection()
            for position, pending in enumerate(batch):
                unit = pending.unit
                if unit.claim is not None:
                    result = await connection.execute(unit.claim)
                    if not isinstance(result, CursorResult) or result.rowcount != 1:
                        lost.add(position)
                        continue
                for statement in unit.statements:
                    await connection.execute(statement)
                for table, row in unit.rows:
                    by_table.setdefault(table, []).append(row)
            for table in sorted(by_table, key=lambda t: _TABLE_ORDER.get(t, 0)):
                await connection.execute(table.insert(), by_table[table])
        return lost


def _settle(batch: list[_Pending], lost: set[int]) -> None:
    for position, pending in enumerate(batch):
        if pending.done.done():
            continue
        if position in lost:
            pending.done.set_exception(ClaimLost())
        else:
            pending.done.set_result(None)


def _fail(pending: _Pending, exc: BaseException) -> None:
    if not pending.done.done():
        pending.done.set_exception(exc)
