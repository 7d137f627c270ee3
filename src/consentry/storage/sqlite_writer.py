"""SQLite write transactions run whole on one thread.

Through aiosqlite every statement is a hand-over to the connection's thread and back: ~55 µs of event-loop
time for a trivial statement, against ~11 µs for the same statement on a plain sqlite3 connection. A group
commit is three to five statements (a claim, an INSERT per table, the COMMIT); here the whole transaction is
one hand-over to a thread that owns a synchronous connection to the same file, and the event loop waits for
it without working.

The thread's connection gets the same pragmas as the pool's. It is used only while the process's SQLite write
lock is held (:meth:`Database.run_in_transaction`), so it never competes with this process's other writers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

T = TypeVar("T")


class SqliteWriter:
    def __init__(self, url: str, *, pragmas: Callable[[Any, Any], None], **engine_options: Any) -> None:
        sync_url = make_url(url).set(drivername="sqlite+pysqlite")
        # One thread, one connection: sqlite3 connections stay on the thread that opened them.
        self.engine: Engine = create_engine(sync_url, pool_size=1, max_overflow=0, **engine_options)
        event.listen(self.engine, "connect", pragmas)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._connected = False  # a command that never writes through it starts neither thread nor connection

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work`` in one transaction on the writer thread: committed if it returns, rolled back if not.

        Once handed over the transaction runs to its end: a caller cancelled meanwhile still waits for it, so
        that whoever holds the write lock next does not find the database locked by it.
        """
        self._connected = True
        pending = asyncio.get_running_loop().run_in_executor(self._thread, self._transaction, work)
        try:
            return await asyncio.shield(pending)
        except asyncio.CancelledError:
            await asyncio.wait([pending])
            raise

    def _transaction(self, work: Callable[[Connection], T]) -> T:
        with self.engine.begin() as connection:
            return work(connection)

    async def dispose(self) -> None:
        if self._connected:
            self._connected = False
            await asyncio.get_running_loop().run_in_executor(self._thread, self.engine.dispose)
        self._thread.shutdown()
