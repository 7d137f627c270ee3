"""The async engine and the unit of work, for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import contextvars
import errno
import functools
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeAlias, TypeVar

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InvalidatePoolError, OperationalError
from sqlalchemy.exc import TimeoutError as SqlalchemyTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from consentry.errors import ConfigurationError
from consentry.storage.sqlite_driver import OneCallAiosqlite
from consentry.storage.sqlite_writer import SqliteReader, SqliteWriter
from consentry.storage.types import dumps_json, loads_json

log = logging.getLogger(__name__)
T = TypeVar("T")
P = ParamSpec("P")

# What a use case holds for one transaction (Database.unit_of_work): it hands it to the ports, which alone
# speak to it.
Transaction: TypeAlias = AsyncSession


@asynccontextmanager
async def savepoint(transaction: Transaction) -> AsyncIterator[None]:
    """A part of ``transaction`` that, if it raises, is undone alone (SQL SAVEPOINT)."""
    async with transaction.begin_nested():
        yield


# PostgreSQL advisory locks that let one process of several do a one-time job while the others wait.
MIGRATIONS_LOCK = 0x636F6E73_0001  # "cons"…: migrating the schema (migrations/env.py)
SIGNING_KEYS_LOCK = 0x636F6E73_0002  # creating the first signing keys


async def take_advisory_lock(transaction: Transaction, key: int) -> None:
    """Hold ``key`` until the transaction ends (PostgreSQL); nothing elsewhere (SQLite has one writer)."""
    if transaction.get_bind().dialect.name == "postgresql":
        await transaction.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


SQLITE_BUSY_TIMEOUT_MS = 5000
_SQLITE_CONNECT = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
_holds_write_lock: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "consentry_holds_write_lock", default=False
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL for concurrent readers, foreign keys enforced, and a busy timeout instead of instant 'locked'."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode across application crashes
    cursor.close()


def _shared_options(echo: bool) -> dict[str, Any]:
    """Both backends: JSON columns through orjson (types.dumps_json / loads_json)."""
    return {"echo": echo, "json_serializer": dumps_json, "json_deserializer": loads_json}


def _sqlite_file(url: str) -> str | None:
    """The SQLite database file the URL names; None for another backend or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return parsed.database


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    echo: bool = False,
    timeout: float | None = 5.0,
) -> AsyncEngine:
    """An engine tuned for the backend the URL names; on PostgreSQL, connecting, every statement and a wait
    for a pooled connection each give up after ``timeout`` seconds (SPEC §11: a database that does not
    answer is a 503, never a hang). ``None``: statements may run as long as they take (migrations, bulk
    loads), and connecting still gives up after ``CONNECT_TIMEOUT_SECONDS``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # Every aiosqlite connection is a thread, a file open and its own page cache (2 MiB).
        options: dict[str, Any] = {}
        if _sqlite_file(url):
            options = {"pool_size": pool_size, "max_overflow": max_overflow}
        if parsed.get_driver_name() == "aiosqlite":
            options["module"] = OneCallAiosqlite()  # one thread hop per statement, not four
        engine = create_async_engine(url, connect_args=_SQLITE_CONNECT, **_shared_options(echo), **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=RECYCLE_SECONDS,
        pool_timeout=timeout if timeout is not None else 30,
        connect_args=_postgresql_timeouts(timeout),
        **_shared_options(echo),
    )
    _ping_after_idle(engine)
    return engine


CONNECT_TIMEOUT_SECONDS = 30.0


def _postgresql_timeouts(timeout: float | None) -> dict[str, Any]:
    """asyncpg's own: ``timeout`` for connecting, ``command_timeout`` for each statement."""
    if timeout is None:
        return {"timeout": CONNECT_TIMEOUT_SECONDS}
    return {"timeout": timeout, "command_timeout": timeout}


# SQLSTATE classes of a database that cannot serve now: connection exceptions, insufficient resources,
# operator intervention (a shutdown, a restart under way).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")
_NETWORK_ERRNOS = frozenset(
    (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.ETIMEDOUT, errno.EPIPE)
)


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) says the database is down, unreachable, or not answering in
    time, rather than that the statement was wrong: such a request is answered 503 and may be retried."""
    import asyncpg

    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
            continue
        if isinstance(current, (TimeoutError, ConnectionError, SqlalchemyTimeout, asyncpg.InterfaceError)):
            return True
        if isinstance(current, socket.gaierror) or (
            isinstance(current, OSError) and current.errno in _NETWORK_ERRNOS
        ):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES:
            return True
        if isinstance(current, asyncpg.PostgresConnectionError):
            return True
        if isinstance(current, OperationalError) and "locked" in str(current):  # SQLite's busy timeout
            return True
        pending.extend((getattr(current, "orig", None), current.__cause__, current.__context__))
    return False


PING_AFTER_IDLE_SECONDS = 10.0
RECYCLE_SECONDS = 1800  # PostgreSQL connections are replaced at this age (server-side caches and limits)


def _ping_after_idle(engine: AsyncEngine) -> None:
    """Ping a pooled connection before use only if it sat idle ``PING_AFTER_IDLE_SECONDS`` (a database
    restarted or a proxy's idle timeout shows there); a dead one is replaced, and the pool's others with it.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout, and asyncpg's ping is three round trips (BEGIN, an
    empty query, ROLLBACK) of event-loop time per password sign-in, and one per batch of tokens. A
    connection in steady use is not pinged: were the database to go away under load, the statement that finds
    out fails, and SQLAlchemy then discards the pool's connections, as it does with pre-ping."""
    pool, dialect = engine.sync_engine.pool, engine.sync_engine.dialect

    def idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")  # None: connected for this checkout
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise InvalidatePoolError(
                f"ping after {time.monotonic() - idle_since:.0f} s idle failed"
            ) from error
        if not alive:
            raise InvalidatePoolError("ping after idle failed")

    event.listen(pool, "checkin", idle_from)
    event.listen(pool, "checkout", ping_if_idle)


DEADLOCK_DETECTED = "40P01"  # PostgreSQL's SQLSTATE
DEADLOCK_ATTEMPTS = 3


def retrying_deadlocks(work: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """``work`` (a whole transaction), run again when PostgreSQL aborted it to break a deadlock: the other
    transaction went on, so the same work run again can succeed (up to ``DEADLOCK_ATTEMPTS`` runs)."""

    @functools.wraps(work)
    async def retrying(*args: P.args, **kwargs: P.kwargs) -> T:
        attempt = 1
        while True:
            try:
                return await work(*args, **kwargs)
            except DBAPIError as error:
                if getattr(error.orig, "sqlstate", None) != DEADLOCK_DETECTED or attempt == DEADLOCK_ATTEMPTS:
                    raise
            log.warning("a transaction was aborted to break a deadlock; running it again")
            attempt += 1

    return retrying


def describe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def ensure_sqlite_directory(url: str) -> None:
    """Fail early, in one line, when the SQLite file cannot be created where the URL points."""
    database = _sqlite_file(url)
    if database is None:
        return
    directory = Path(database).expanduser().resolve().parent
    if not directory.is_dir():
        raise ConfigurationError(f"cannot open the SQLite database {database}: {directory} does not exist")


class Reader(Protocol):
    """Runs synchronous read-only ``work`` with a connection (:meth:`Database.reader_for_batches`)."""

    async def run(self, work: Callable[[Connection], T]) -> T: ...


class HeldConnection:
    """A connection kept open for a caller whose statements come one at a time, outside a transaction block
    (a batched reader; the group committer's one-statement batches), taken from ``engine`` (on PostgreSQL one
    outside the pool: :meth:`Database.held_connection`).

    On PostgreSQL a checkout and return cost more event-loop time per statement than a point read
    itself (``bench/statements.py``). As the pool does for its own, the connection is pinged before a
    statement that follows ``PING_AFTER_IDLE_SECONDS`` of idleness and replaced if dead, and replaced at
    ``RECYCLE_SECONDS`` of age; it is let go when the driver finds it lost, so a database that went away under
    load costs the one statement that finds out.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._last_used = self._connected_at = 0.0
        self._turn = asyncio.Lock()  # a connection runs one statement at a time

    async def run(self, work: Callable[[Connection], T]) -> T:
        async with self._turn:
            connection = self._connection
            idle = time.monotonic() - self._last_used > PING_AFTER_IDLE_SECONDS
            if connection is not None and idle and not await _alive(connection):
                await connection.invalidate()
                await self.release()
                connection = None
            if connection is not None and time.monotonic() - self._connected_at > RECYCLE_SECONDS:
                await self.release()
                connection = None
            if connection is None:
                connection = self._connection = await self._engine.connect()
                self._connected_at = time.monotonic()
            try:
                return await connection.run_sync(work)
            except DBAPIError as error:
                # Outside a transaction block a failed statement (a constraint, a deadlock's victim) leaves
                # the connection as it was; one the driver found lost is let go.
                if error.connection_invalidated:
                    await self.release()
                raise
            except BaseException:  # cancelled mid-statement, or anything else: its state is unknown
                await self.release()
                raise
            finally:
                self._last_used = time.monotonic()

    async def release(self) -> None:
        """Let the connection go (at shutdown, or once lost)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()


def _forget(task: asyncio.Future[None]) -> None:
    """Retrieve an abandoned task's outcome, so that nothing logs it as never retrieved."""
    if not task.cancelled():
        task.exception()


async def _alive(connection: AsyncConnection) -> bool:
    def ping(sync_connection: Connection) -> bool:
        dbapi_connection = sync_connection.connection.dbapi_connection
        return dbapi_connection is not None and bool(sync_connection.dialect.do_ping(dbapi_connection))

    try:
        return await connection.run_sync(ping)
    except Exception:  # the driver's own errors, not wrapped by SQLAlchemy here: any failure means dead
        return False


class Database:
    """Owns the engine; hands out units of work (one transaction each)."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 10,
        echo: bool = False,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self._echo = echo
        self._timeout = timeout
        self.engine = create_engine(
            url, pool_size=pool_size, max_overflow=max_overflow, echo=echo, timeout=timeout
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        # SQLite has a single writer. Queueing this process's write transactions on a lock replaces SQLite's
        # busy handler, which sleeps in growing steps and gave a one-second tail under load.
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None
        # Statements outside a transaction block on PostgreSQL: reads by statements alone (one round trip
        # instead of three: BEGIN, the query, the pool's ROLLBACK; at READ COMMITTED each statement has its
        # own snapshot either way). SQLite's driver begins nothing for a read.
        self.autocommit_engine: AsyncEngine = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql"
            else self.engine
        )
        # On a SQLite file, write transactions and hot point reads each run whole on a thread of their own.
        self._sqlite_writer: SqliteWriter | None = None
        self._sqlite_reader: SqliteReader | None = None
        self._held: list[HeldConnection] = []
        self._held_engine: AsyncEngine | None = None
        if _sqlite_file(url):
            options = {"pragmas": _sqlite_pragmas, "connect_args": _SQLITE_CONNECT, **_shared_options(echo)}
            self._sqlite_writer = SqliteWriter(url, **options)
            self._sqlite_reader = SqliteReader(url, **options)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def unbounded_connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction whose statements may take as long as they need (migrations, whose
        index builds on a large table take minutes): on PostgreSQL from an engine of its own without the
        statement timeout; on SQLite the pool's, its foreign keys on again once the transaction has ended
        (migrations turn them off: ``migrations/env.py``)."""
        if self.dialect != "postgresql":
            async with self.engine.connect() as connection:
                try:
                    async with connection.begin():
                        yield connection
                finally:  # outside any transaction, where SQLite heeds it
                    await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                    await connection.commit()
            return
        engine = create_async_engine(
            self.url,
            poolclass=NullPool,
            connect_args=_postgresql_timeouts(None),
            **_shared_options(self._echo),
        )
        try:
            async with engine.begin() as connection:
                yield connection
        finally:
            await engine.dispose()

    @property
    def sync_engines(self) -> list[Engine]:
        """Every engine this database's statements run on (for event listeners): the pool's and, on a SQLite
        file, the writer's and the reader's threads'."""
        threads = (self._sqlite_writer, self._sqlite_reader)
        return [self.engine.sync_engine, *(thread.engine for thread in threads if thread is not None)]

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends normally, rolled back when it raises."""
        async with self._writing(), self.sessionmaker() as session, session.begin():
            yield session

    async def run_in_transaction(self, work: Callable[[Connection], T]) -> T:
        """Synchronous ``work`` in one write transaction: committed if it returns, rolled back if it raises.

        On a SQLite file the whole transaction is one hand-over to a writer thread (storage/sqlite_writer.py);
        elsewhere it runs on the event loop's own connection through the async driver (``run_sync``), with no
        ORM session: its bookkeeping was ~15 % of a one-unit group commit's event-loop time.
        """
        if self._sqlite_writer is None:
            async with self._writing(), self.engine.begin() as connection:
                return await connection.run_sync(work)
        async with self._writing():
            return await self._sqlite_writer.run(work)

    async def run_read(self, work: Callable[[Connection], T]) -> T:
        """Synchronous ``work`` that reads by a few short indexed statements (the hot paths' point reads).

        On a SQLite file it runs whole on the reader thread (storage/sqlite_writer.py); elsewhere on a pooled
        connection outside a transaction block, as :meth:`read_connection`. Nothing may be written through it.
        """
        if self._sqlite_reader is not None:
            return await self._sqlite_reader.run(work)
        return await self._run_outside_transaction(work)

    async def _run_outside_transaction(self, work: Callable[[Connection], T]) -> T:
        """``work`` on a pooled connection with no transaction block (``autocommit_engine``)."""
        async with self.autocommit_engine.connect() as connection:
            return await connection.run_sync(work)

    def reader_for_batches(self) -> Reader:
        """A reader for one caller whose reads come one at a time (a batched reader): on a SQLite file the
        reader thread, elsewhere a connection held for it (:class:`HeldConnection`)."""
        if self._sqlite_reader is not None:
            return self._sqlite_reader
        return self.held_connection()

    def held_connection(self) -> HeldConnection:
        """A connection kept for one caller whose statements come one at a time, outside a transaction block
        (:class:`HeldConnection`); released by :meth:`dispose`."""
        held = HeldConnection(self._engine_for_held_connections())
        self._held.append(held)
        return held

    def _engine_for_held_connections(self) -> AsyncEngine:
        """On PostgreSQL, connections outside the pool: held ones taken from it would leave a small pool (two,
        say) nothing for writes. Elsewhere (an in-memory SQLite database) the pool's own."""
        if self.dialect != "postgresql":
            return self.autocommit_engine
        if self._held_engine is None:
            self._held_engine = create_async_engine(
                self.url,
                poolclass=NullPool,
                isolation_level="AUTOCOMMIT",
                connect_args=_postgresql_timeouts(self._timeout),
                **_shared_options(self._echo),
            )
        return self._held_engine

    async def notify(self, channel: str, payload: str) -> None:
        """PostgreSQL's NOTIFY, from a pooled connection outside a transaction block."""
        async with self.autocommit_engine.connect() as connection:
            await connection.execute(
                text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload}
            )

    @asynccontextmanager
    async def listening_connection(self) -> AsyncIterator[Any]:
        """A PostgreSQL connection of its own, outside the pool, for LISTEN: the driver's (asyncpg's)."""
        async with self._engine_for_held_connections().connect() as connection:
            raw = await connection.get_raw_connection()
            yield raw.driver_connection

    @asynccontextmanager
    async def read_connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads by statements alone (``autocommit_engine``): a one-row read costs clearly
        less event-loop time than through :meth:`read_only`'s session. Nothing may be written through it."""
        async with self.autocommit_engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        """On SQLite, this process's write transactions one at a time; a nested one runs in its parent's."""
        if self._write_lock is None or _holds_write_lock.get():
            yield
            return
        async with self._write_lock:
            marker = _holds_write_lock.set(True)  # a transaction nested in this task must not wait for itself
            try:
                yield
            finally:
                _holds_write_lock.reset(marker)

    @asynccontextmanager
    async def read_only(self) -> AsyncIterator[AsyncSession]:
        """A session for reads; nothing it does is committed."""
        async with self.sessionmaker() as session:
            yield session

    async def ping(self, *, within: float | None = None) -> None:
        """Raise if the database cannot answer a trivial query; past ``within`` seconds, if given, raise
        ``TimeoutError`` at once and leave the query to end by itself (a cancelled connect to a frozen server
        can take longer to unwind than the caller may wait)."""

        async def select_one() -> None:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))

        pinging = asyncio.ensure_future(select_one())
        done, _ = await asyncio.wait((pinging,), timeout=within)
        if not done:
            pinging.add_done_callback(_forget)
            pinging.cancel()
            raise TimeoutError(f"the database did not answer within {within} s")
        pinging.result()

    async def check_reachable(self) -> None:
        """Like :meth:`ping`, but failures become one clear :class:`ConfigurationError` line."""
        ensure_sqlite_directory(self.url)
        try:
            await self.ping()
        except (OperationalError, DBAPIError, OSError) as exc:
            reason = getattr(exc, "orig", None) or exc
            raise ConfigurationError(
                f"cannot reach the database {describe_url(self.url)}: {str(reason).strip().splitlines()[0]}"
            ) from exc

    async def dispose(self) -> None:
        for held in self._held:
            await held.release()
        if self._held_engine is not None:
            await self._held_engine.dispose()
        for thread in (self._sqlite_writer, self._sqlite_reader):
            if thread is not None:
                await thread.dispose()
        await self.engine.dispose()
