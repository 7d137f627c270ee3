"""Database.run_in_transaction and run_read: synchronous work; on SQLite, on the writer and reader threads."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from consentry.runtime import Runtime, utcnow
from consentry.storage import sqlite_writer
from consentry.storage.audit import audit_row
from consentry.storage.bulk import insert_rows
from consentry.storage.database import Database
from tests.storage.test_group_commit import audit_count


def insert_event(connection: Connection, event_type: str) -> None:
    table, row = audit_row(event_type, now=utcnow())
    insert_rows(connection, table, [row])


async def test_work_is_committed_when_it_returns_and_rolled_back_when_it_raises(runtime: Runtime) -> None:
    def insert_then_fail(connection: Connection) -> None:
        insert_event(connection, "rolled back")
        raise LookupError("the work failed")

    assert await runtime.database.run_in_transaction(lambda c: insert_event(c, "committed") or 7) == 7
    with pytest.raises(LookupError):
        await runtime.database.run_in_transaction(insert_then_fail)
    assert await audit_count(runtime, "committed") == 1
    assert await audit_count(runtime, "rolled back") == 0


def sqlite_only(runtime: Runtime) -> None:
    if runtime.database.dialect != "sqlite":
        pytest.skip("PostgreSQL runs the work on the event loop's connection")


async def test_the_writer_thread_connection_has_the_pools_pragmas(runtime: Runtime) -> None:
    sqlite_only(runtime)

    def pragmas(connection: Connection) -> tuple[object, ...]:
        read = [connection.exec_driver_sql(f"PRAGMA {name}").scalar() for name in PRAGMAS]
        return (*read, threading.current_thread().name)

    PRAGMAS = ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
    *values, thread = await runtime.database.run_in_transaction(pragmas)
    assert values == ["wal", 1, 5000, 1]  # synchronous=NORMAL is 1
    assert thread.startswith("sqlite-writer")


async def test_a_cancelled_caller_keeps_the_write_lock_until_its_transaction_ends(runtime: Runtime) -> None:
    sqlite_only(runtime)
    started, finished = threading.Event(), threading.Event()

    def slow(connection: Connection) -> None:
        started.set()
        insert_event(connection, "slow")
        time.sleep(0.3)
        finished.set()

    caller = asyncio.create_task(runtime.database.run_in_transaction(slow))
    await asyncio.to_thread(started.wait)
    caller.cancel()
    async with runtime.database.unit_of_work() as session:  # the next writer in this process
        assert finished.is_set()
        await session.execute(text("SELECT 1"))
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert await audit_count(runtime, "slow") == 1  # handed over, it ran to its commit


async def test_a_database_can_be_disposed_twice_used_or_not(tmp_path: Path) -> None:
    for used in (False, True):
        database = Database(f"sqlite+aiosqlite:///{tmp_path / f'{used}.db'}")
        if used:
            assert await database.run_in_transaction(lambda c: c.exec_driver_sql("SELECT 1").scalar()) == 1
        await database.dispose()
        await database.dispose()


async def test_checkpoints_run_beside_the_writer_which_keeps_its_own_only_as_a_backstop(
    runtime: Runtime,
) -> None:
    sqlite_only(runtime)
    for batch in range(20):
        await runtime.database.run_in_transaction(
            lambda connection, batch=batch: [insert_event(connection, f"wal {batch}") for _ in range(50)]
        )
    writer = runtime.database._sqlite_writer
    assert writer is not None
    await asyncio.sleep(sqlite_writer.CHECKPOINT_INTERVAL_SECONDS * 5)
    assert writer.checkpoints.rounds > 0
    backstop = await runtime.database.run_in_transaction(
        lambda c: c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    )
    assert backstop == sqlite_writer.BACKSTOP_PAGES
    await runtime.database.dispose()
    assert not any(thread.name == "sqlite-checkpoints" for thread in threading.enumerate())


async def test_reads_see_each_commit_made_before_them(runtime: Runtime) -> None:
    """The reader's connection keeps no snapshot between reads: each sees what was committed before it."""

    def committed(connection: Connection) -> int:
        count = connection.exec_driver_sql(
            "SELECT count(*) FROM audit_events WHERE event_type = 'read after write'"
        ).scalar()
        return int(count or 0)

    for expected in range(1, 4):
        await runtime.database.run_in_transaction(lambda c: insert_event(c, "read after write"))
        assert await runtime.database.run_read(committed) == expected


async def test_point_reads_run_on_the_reader_thread_which_cannot_write(runtime: Runtime) -> None:
    sqlite_only(runtime)

    def where(connection: Connection) -> tuple[object, ...]:
        pragmas = ("journal_mode", "query_only")
        read = [connection.exec_driver_sql(f"PRAGMA {name}").scalar() for name in pragmas]
        return (*read, threading.current_thread().name)

    journal_mode, query_only, thread = await runtime.database.run_read(where)
    assert (journal_mode, query_only) == ("wal", 1)
    assert thread.startswith("sqlite-reader")
    with pytest.raises(OperationalError, match="readonly"):
        await runtime.database.run_read(lambda c: insert_event(c, "written by a reader"))
    assert await audit_count(runtime, "written by a reader") == 0


async def test_a_database_whose_reader_was_used_can_be_disposed_twice(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'read.db'}")
    assert await database.run_read(lambda c: c.exec_driver_sql("SELECT 1").scalar()) == 1
    await database.dispose()
    await database.dispose()
    assert not any(thread.name.startswith("sqlite-reader") for thread in threading.enumerate())
