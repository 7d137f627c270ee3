"""aiosqlite with one thread hop per statement.

aiosqlite runs each sqlite3 call on the connection's own thread, and SQLAlchemy's adapter makes four such
calls per query (open a cursor, execute, fetch the rows, close the cursor) and three per insert. Every call is
a hand-over to that thread and back: a queue put, a thread wake-up, the GIL changing hands, a wake-up of the
event loop. On one core that shares its time with other work (argon2id hashing a password, say) each
hand-over also means cold caches. Here a statement is executed, its rows fetched and its cursor closed in one
call on the connection's thread; the adapter then reads the rows, description and counts from memory. Each
call also reports whether SQLite has a transaction open, so a commit or rollback with none open (the pool's
reset after a session already rolled back, a read-only session's end) is not sent to the thread at all: SQLite
would do nothing.

The rows are fetched in full, which is what SQLAlchemy's adapter already did for every non-streaming cursor.
Streaming results (``server_side``) keep aiosqlite's own cursor.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from typing import Any, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

# description, rowcount, lastrowid, rows, whether a transaction is open afterwards
_Outcome = tuple[Any, int, int | None, list[Any], bool]


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """On the connection's thread: the whole life of one cursor."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, () if parameters is None else parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows, connection.in_transaction
    finally:
        cursor.close()


class OneCallCursor:
    """The part of aiosqlite's cursor SQLAlchemy's adapter uses, each statement one call on the thread."""

    __slots__ = ("_adapted", "_connection", "_rows", "arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, adapted: _Connection) -> None:
        self._adapted = adapted
        self._connection: aiosqlite.Connection = adapted._connection  # type: ignore[assignment]
        self._rows: list[Any] = []
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    async def execute(self, operation: str, parameters: Any = None) -> OneCallCursor:
        return await self._call(operation, parameters, many=False)

    async def executemany(self, operation: str, parameters: Sequence[Any]) -> OneCallCursor:
        return await self._call(operation, parameters, many=True)

    async def _call(self, operation: str, parameters: Any, *, many: bool) -> OneCallCursor:
        # aiosqlite has no public "run this on your thread"; SQLAlchemy's own adapter uses the same queue.
        try:
            outcome: _Outcome = await self._connection._execute(  # type: ignore[no-untyped-call]
                _run, self._connection._conn, operation, parameters, many
            )
        except BaseException:
            # A statement that failed may still have begun a transaction (the sqlite3 module begins one before
            # a write, and a failed write can keep its lock): let the rollback that follows through.
            self._adapted.in_transaction = True
            raise
        self.description, self.rowcount, self.lastrowid, rows, self._adapted.in_transaction = outcome
        self._rows = rows
        return self

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    def close(self) -> None:
        self._rows = []


class _Cursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()
    _awaitable_cursor_close = False  # closing only drops the buffered rows

    def _make_new_cursor(self, connection: Any) -> Any:
        return OneCallCursor(self._adapt_connection)  # type: ignore[arg-type]

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor  # nothing to open on the thread


class _Connection(AsyncAdapt_aiosqlite_connection):
    # Only statements run through OneCallCursor open transactions (the sqlite3 module begins one before a
    # write; an explicit BEGIN is a statement too), so this is exact; True until the first statement says.
    __slots__ = ("in_transaction",)
    _cursor_cls = _Cursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self.in_transaction = True

    def commit(self) -> None:
        if self.in_transaction:
            super().commit()
            self.in_transaction = False

    def rollback(self) -> None:
        if self.in_transaction:
            super().rollback()
            self.in_transaction = False


class OneCallAiosqlite(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module handed to SQLAlchemy (``create_async_engine(..., module=...)``)."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> _Connection:
        connection = aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True  # as SQLAlchemy does: a forgotten connection must not hang exit
        try:
            opened = await_(connection)
        except BaseException:
            # aiosqlite stops the thread of a connection that failed to open without waiting for it. Wait
            # here, while the loop can still take the thread's last message: a CLI that then exits would
            # otherwise race it and print "Event loop is closed" from the thread.
            deadline = time.monotonic() + 5
            while connection._thread.is_alive() and time.monotonic() < deadline:
                await_(asyncio.sleep(0.001))
            raise
        return _Connection(self, cast(Any, opened))  # aiosqlite's Connection is the shape it expects
