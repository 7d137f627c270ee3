"""SQLite write transactions run whole on one thread, and the hot paths' point reads on another.

Through aiosqlite every statement is a hand-over to the connection's thread and back, several times the
event-loop time of the same statement on a plain sqlite3 connection. A group
commit is three to five statements (a claim, an INSERT per table, the COMMIT); here the whole transaction is
one hand-over to a thread that owns a synchronous connection to the same file, and the event loop waits for
it without working.

The writer thread's connection gets the same pragmas as the pool's. It is used only while the process's SQLite
write lock is held (:meth:`Database.run_in_transaction`), so it never competes with this process's other
writers. The reader thread (:class:`SqliteReader`, :meth:`Database.run_read`) does the same for the batched
point reads of introspection, the authorization endpoint and token exchange, and the sign-in's password step.

Checkpoints run beside it. By default SQLite checkpoints inside the commit that takes the write-ahead log past
1,000 pages: that commit copies the logged pages into the database file and waits for the disk, and every
request of that group commit waits with it while the loop, all requests parked, idles. Here another thread
checkpoints every ``CHECKPOINT_INTERVAL_SECONDS`` in PASSIVE mode (it waits for no reader or writer; commits
carry on appending to the log meanwhile), and the writer's own automatic checkpoint stays as a backstop at
``BACKSTOP_PAGES``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)
T = TypeVar("T")

CHECKPOINT_INTERVAL_SECONDS = 0.2
# The writer's own wal_autocheckpoint, for when the checkpoint thread falls behind: high enough that it
# rarely runs in a commit, low enough that the log stays small and a backstop checkpoint stays short.
BACKSTOP_PAGES = 2_000


def _thread_engine(url: str, pragmas: Callable[[Any, Any], None], engine_options: dict[str, Any]) -> Engine:
    """A synchronous engine with one connection to the SQLite file ``url`` names, for one thread: sqlite3
    connections stay on the thread that opened them."""
    engine = create_engine(
        make_url(url).set(drivername="sqlite+pysqlite"), pool_size=1, max_overflow=0, **engine_options
    )
    event.listen(engine, "connect", pragmas)
    return engine


class SqliteWriter:
    def __init__(self, url: str, *, pragmas: Callable[[Any, Any], None], **engine_options: Any) -> None:
        self.engine = _thread_engine(url, pragmas, engine_options)
        event.listen(self.engine, "connect", _backstop_checkpoints)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._connected = False  # a command that never writes through it starts neither thread nor connection
        self.checkpoints = Checkpointer(self.engine.url.database or "")

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work`` in one transaction on the writer thread: committed if it returns, rolled back if not.

        Once handed over the transaction runs to its end: a caller cancelled meanwhile still waits for it, so
        that whoever holds the write lock next does not find the database locked by it.
        """
        if not self._connected:
            self._connected = True
            self.checkpoints.start()
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
            await asyncio.to_thread(self.checkpoints.stop)
            await asyncio.get_running_loop().run_in_executor(self._thread, self.engine.dispose)
        self._thread.shutdown()


class SqliteReader:
    """Point reads run whole on one thread that owns a synchronous connection, as the writer's transactions.

    Through the async pool most of a one-row read's cost is on the event loop (the pool checkout, the
    greenlet, aiosqlite's hand-over); here little of it is (``bench/statements.py`` measures both).
    Reads in WAL mode wait for no writer, and each read outside a transaction sees the latest commit. The
    connection is ``query_only``. Only short indexed reads belong here: they take turns on the one thread.
    """

    def __init__(self, url: str, *, pragmas: Callable[[Any, Any], None], **engine_options: Any) -> None:
        self.engine = _thread_engine(url, pragmas, engine_options)
        event.listen(self.engine, "connect", _query_only)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-reader")
        self._connection: Connection | None = None  # opened by the first read, on the thread
        self._used = False

    async def run(self, work: Callable[[Connection], T]) -> T:
        self._used = True
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._read, work)

    def _read(self, work: Callable[[Connection], T]) -> T:
        # Kept open: a checkout and return per read would cost a good part of the read itself.
        connection = self._connection = self._connection or self.engine.connect()
        try:
            return work(connection)
        finally:
            try:
                connection.rollback()  # no read transaction outlives the work: the next sees newer commits
            except DBAPIError:  # a broken connection: the next read opens a new one
                self._connection = None
                connection.invalidate()

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.engine.dispose()

    async def dispose(self) -> None:
        if self._used:
            self._used = False
            await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown()


def _query_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def _backstop_checkpoints(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
    cursor.close()


class Checkpointer:
    """PASSIVE checkpoints of one SQLite file from a daemon thread, from :meth:`start` to :meth:`stop`."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)
        self.rounds = 0  # checkpoints completed

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=True)
        try:
            # A checkpoint syncs as its connection says: as durable as the commits themselves (NORMAL).
            connection.execute("PRAGMA synchronous=NORMAL")
            while not self._stopping.wait(CHECKPOINT_INTERVAL_SECONDS):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as error:  # busy or locked: the next round tries again
                    log.warning("background checkpoint failed: %s", error)
                    continue
                self.rounds += 1
        finally:
            connection.close()
