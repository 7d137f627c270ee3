"""Group commit: concurrent requests' writes share one transaction; each request waits for its commit.

A token issued per request used to cost a transaction per request: on SQLite a WAL append of every page the
rows' indexes touch, on PostgreSQL a round trip per statement and a commit each. Here requests hand over a
:class:`WriteUnit` (rows to insert, at most one claim, a few statements) and await it; while one batch is
being written the next one gathers, so the batch grows with the load and nobody waits for a timer. A request
is answered only after the transaction holding its rows has committed: nothing is acknowledged that a crash
could lose.

A claim is a condition the unit's writes depend on, checked for all the batch's units of one kind in one
statement that returns the keys that hold: a code's ``used_at IS NULL`` (exclusive: of two units presenting
the same code in one batch only the first wins), a consent still being live (shared). A unit whose claim
does not hold is dropped and reported lost; that is how single use stays exact under concurrency. On
PostgreSQL a batch whose units have no statements of their own is one statement: the claims are ``WITH``s
and each row is inserted only if its unit's claim key came back from them
(:func:`write_units_in_one_statement`).

When a batch fails as a whole (a foreign key gone because a client was deleted meanwhile), each unit is
retried alone so one bad unit does not fail the others.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Table, bindparam, insert, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from consentry.storage.bulk import Encoder, Guard, insert_rows, insert_tables_in_one_statement
from consentry.storage.database import Database, HeldConnection
from consentry.storage.key_lists import ByKeys, by_keys
from consentry.storage.tables import Base

log = logging.getLogger(__name__)

MAX_UNITS_PER_TRANSACTION = 256
_TABLE_ORDER = {table: position for position, table in enumerate(Base.metadata.sorted_tables)}


Row = tuple[Table, dict[str, Any]]  # a table and the values of one row to insert into it
Statement = Executable  # a statement a port built, run with a unit's rows (a consent's last use, say)


async def add_rows(session: AsyncSession, *rows: Row) -> None:
    """The rows of a write unit, inserted in the caller's own transaction (a use case that needs one
    transaction for more than the unit)."""
    for table, values in rows:
        await session.execute(insert(table).values(values))


@dataclass(frozen=True, slots=True)
class ClaimKind:
    """How to check many claims of one kind at once.

    ``statements`` return rows whose first column is a key that holds; for an exclusive kind they also take
    the key (``UPDATE ... WHERE key IN :keys AND used_at IS NULL RETURNING key``). They are built once, with
    the parameters ``keys`` and ``now``: building a statement costs more than running it. On PostgreSQL the
    keys are one array, and the claims and the rows they guard go in one statement. Build them with
    :func:`claim_kind`.
    """

    name: str
    exclusive: bool
    statements: ByKeys


def claim_kind(
    name: str, key: Any, build: Callable[[ColumnElement[bool]], Executable], *, exclusive: bool
) -> ClaimKind:
    """A claim kind whose statement ``build`` makes around the condition that ``key`` is among the keys."""
    return ClaimKind(name, exclusive=exclusive, statements=by_keys(key, build))


@dataclass(frozen=True, slots=True)
class Claim:
    kind: ClaimKind
    key: Any
    now: datetime


@dataclass(frozen=True, slots=True)
class WriteUnit:
    """One request's writes: applied all together or not at all."""

    rows: Sequence[Row] = ()
    claim: Claim | None = None
    statements: Sequence[Statement] = field(default_factory=tuple)


def marked_once(
    name: str, key: Any, mark: Any, *conditions: Any, also: dict[str, Any] | None = None
) -> ClaimKind:
    """An exclusive claim that sets ``mark`` to now on each claimed row (``key`` in the batch's keys) where
    ``mark`` is still NULL and ``conditions`` hold; ``also`` sets more columns. The keys marked are the claims
    that hold: of concurrent claims on one row only the first can mark it."""

    def build(among_keys: ColumnElement[bool]) -> Executable:
        return (
            update(key.class_)
            .where(among_keys, mark.is_(None), *conditions)
            .values({mark: bindparam("now"), **(also or {})})
            .returning(key)
        )

    return claim_kind(name, key, build, exclusive=True)


class ClaimLost(Exception):
    """The unit's claim did not hold (code used, consent revoked...): nothing of it was written."""


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
        # PostgreSQL writes a batch as one statement, on a connection kept for them, as batches go one at a
        # time: a pool checkout and return per batch would cost more event-loop time than the statement.
        self._connection: HeldConnection | None = (
            database.held_connection() if database.dialect == "postgresql" else None
        )

    async def write(self, unit: WriteUnit) -> None:
        """Return once ``unit`` is committed; raise :class:`ClaimLost` if its claim did not hold."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(unit, done))
        if self._flusher is None or self._flusher.done():
            # The flusher writes for every caller: it must not inherit this one's context variables (among
            # them whether this task holds the SQLite write lock).
            self._flusher = asyncio.create_task(self._flush_all(), context=contextvars.Context())
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
        """The batch in one transaction (one statement on PostgreSQL); the positions of units whose claim was
        lost."""
        units = [pending.unit for pending in batch]
        if self._connection is not None and not any(unit.statements for unit in units):
            # Claims and rows in one statement, one round trip instead of four or more (BEGIN, a claim per
            # kind, an INSERT per table, COMMIT).
            return await self._connection.run(functools.partial(write_units_in_one_statement, units=units))
        return await self._database.run_in_transaction(lambda connection: write_units(connection, units))


def write_units(connection: Connection, units: Sequence[WriteUnit]) -> set[int]:
    """The units' writes in the transaction of ``connection``, but for those whose claim does not hold; their
    positions. Synchronous: on SQLite it runs whole on the writer thread (storage/sqlite_writer.py)."""
    lost = _repeated_exclusive_claims(units)
    for kind, keys, now in _claims_by_kind(units, lost):
        statement = kind.statements.for_dialect(connection.dialect.name)
        held = {row[0] for row in connection.execute(statement, {"keys": keys, "now": now})}
        lost |= _not_held(units, kind, held)
    for position, unit in enumerate(units):
        if position not in lost:
            for statement in unit.statements:
                connection.execute(statement)
    for table, rows, _ in _rows_by_shape(units, lost=lost):
        insert_rows(connection, table, rows)
    return lost


def write_units_in_one_statement(connection: Connection, units: Sequence[WriteUnit]) -> set[int]:
    """PostgreSQL: as :func:`write_units`, for units without statements, in one statement: each claim kind
    is a guard (bulk.Guard) of the rows, and a unit's rows name its claim's key, so the rows of a unit whose
    claim does not hold are not inserted. The claims are the only reads the rows depend on, and concurrent
    claims on a row wait for each other as they do in a transaction."""
    lost = _repeated_exclusive_claims(units)
    claims = _claims_by_kind(units, lost)
    kinds = [kind for kind, _, _ in claims]
    batches = _rows_by_shape(units, lost=lost, kinds=kinds)
    if not batches and not claims:
        return lost
    returned = insert_tables_in_one_statement(
        connection,
        [(table, rows) for table, rows, _ in batches],
        guards=[_guard(kind, keys, now, connection.dialect) for kind, keys, now in claims],
        row_keys=[keys for _, _, keys in batches],
    )
    for kind, held in zip(kinds, returned, strict=True):
        lost |= _not_held(units, kind, held)
    return lost


@dataclass(frozen=True, slots=True)
class _CompiledGuard:
    """A claim kind's array statement compiled for one dialect, and how to encode what it is given."""

    sql: str
    parameters: list[tuple[str, Encoder | None, Any]]  # per placeholder: name, encoder, constant value
    key_type: str
    encode_key: Encoder | None


_compiled_guards: dict[tuple[ClaimKind, str], _CompiledGuard] = {}


def _guard(kind: ClaimKind, keys: list[Any], now: datetime, dialect: Dialect) -> Guard:
    """The claims of one kind as a guard of the rows they allow."""
    cache_key = (kind, dialect.name)
    if cache_key not in _compiled_guards:
        compiled = cast(SQLCompiler, cast(ClauseElement, kind.statements.array).compile(dialect=dialect))
        parameters: list[tuple[str, Encoder | None, Any]] = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            processor: Encoder | None = bind.type.dialect_impl(dialect).bind_processor(dialect)
            parameters.append((name, processor, bind.effective_value))
        _compiled_guards[cache_key] = _CompiledGuard(
            str(compiled),
            parameters,
            str(kind.statements.key_type.compile(dialect=dialect)),
            kind.statements.key_type.dialect_impl(dialect).bind_processor(dialect),
        )
    compiled_guard = _compiled_guards[cache_key]
    given = {"keys": keys, "now": now}
    values = []
    for name, encode, constant in compiled_guard.parameters:
        value = given.get(name, constant)
        values.append(value if encode is None else encode(value))
    return Guard(compiled_guard.sql, tuple(values), compiled_guard.key_type, compiled_guard.encode_key)


def _rows_by_shape(
    units: Sequence[WriteUnit], *, lost: set[int], kinds: Sequence[ClaimKind] = ()
) -> list[tuple[Table, list[dict[str, Any]], list[list[Any]]]]:
    """The rows of the units not ``lost``, by table and the columns they name (a bulk insert takes the first
    row's columns for all), parents before the tables referring to them; with each, per kind of ``kinds``, the
    key each row's unit claims of that kind (None: none)."""
    by_shape: dict[tuple[Table, tuple[str, ...]], tuple[list[dict[str, Any]], list[list[Any]]]] = {}
    for position, unit in enumerate(units):
        if position in lost:
            continue
        claimed = [unit.claim.key if unit.claim and unit.claim.kind is kind else None for kind in kinds]
        for table, row in unit.rows:
            rows, keys = by_shape.setdefault((table, tuple(row)), ([], [[] for _ in kinds]))
            rows.append(row)
            for column, key in zip(keys, claimed, strict=True):
                column.append(key)
    ordered = sorted(by_shape.items(), key=lambda item: _TABLE_ORDER.get(item[0][0], 0))
    return [(table, rows, keys) for (table, _), (rows, keys) in ordered]


def _repeated_exclusive_claims(units: Sequence[WriteUnit]) -> set[int]:
    """The positions of exclusive claims on a key an earlier unit of the batch claims (the first one wins)."""
    repeated, seen = set(), set()
    for position, unit in enumerate(units):
        claim = unit.claim
        if claim is not None and claim.kind.exclusive:
            if (claim.kind, claim.key) in seen:
                repeated.add(position)
            seen.add((claim.kind, claim.key))
    return repeated


def _claims_by_kind(
    units: Sequence[WriteUnit], lost: set[int]
) -> list[tuple[ClaimKind, list[Any], datetime]]:
    """Per claim kind in the batch (but ``lost`` units): its keys, each once, and the earliest ``now``."""
    by_kind: dict[ClaimKind, list[Claim]] = {}
    for position, unit in enumerate(units):
        if unit.claim is not None and position not in lost:
            by_kind.setdefault(unit.claim.kind, []).append(unit.claim)
    return [
        (kind, list(dict.fromkeys(claim.key for claim in claims)), min(claim.now for claim in claims))
        for kind, claims in by_kind.items()
    ]


def _not_held(units: Sequence[WriteUnit], kind: ClaimKind, held: set[Any]) -> set[int]:
    return {
        position
        for position, unit in enumerate(units)
        if unit.claim is not None and unit.claim.kind is kind and unit.claim.key not in held
    }


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
