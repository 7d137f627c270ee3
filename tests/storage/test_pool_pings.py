"""PostgreSQL connections are pinged before use only after sitting idle; a dead idle one is replaced; a
batched reader and the group committer each hold one between statements."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from consentry.runtime import Runtime
from consentry.storage import database
from tests.storage.test_group_commit import audit_count
from tests.storage.test_sqlite_writer import insert_event

BACKEND_PID = text("SELECT pg_backend_pid()")


@pytest.fixture
def pings(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    if runtime.database.dialect != "postgresql":
        pytest.skip("SQLite connections are files: nothing to ping")
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.2)
    dialect_class = type(runtime.database.engine.sync_engine.dialect)  # every engine's: the pool's, the held
    counted: list[int] = []
    ping = dialect_class.do_ping

    def counting(dialect: Any, dbapi_connection: Any) -> bool:
        counted.append(1)
        return ping(dialect, dbapi_connection)

    monkeypatch.setattr(dialect_class, "do_ping", counting)
    return counted


async def backend_pid(runtime: Runtime) -> int:
    async with runtime.database.read_connection() as connection:
        return int((await connection.execute(BACKEND_PID)).scalar_one())


async def terminate_backend(runtime: Runtime, pid: int) -> None:
    """End one server process from outside, as a restart or a proxy's idle timeout would."""
    killer = database.create_engine(runtime.database.url)
    try:
        async with killer.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await killer.dispose()


async def test_a_connection_in_steady_use_is_not_pinged_and_an_idle_one_is(
    runtime: Runtime, pings: list[int]
) -> None:
    first = await backend_pid(runtime)
    assert await backend_pid(runtime) == first  # the same pooled connection, straight back
    assert pings == []
    await asyncio.sleep(0.3)
    assert await backend_pid(runtime) == first
    assert pings == [1]


async def test_a_connection_the_server_dropped_while_idle_is_replaced_before_use(
    runtime: Runtime, pings: list[int]
) -> None:
    dropped = await backend_pid(runtime)  # the pool's one connection, idle from here on
    await terminate_backend(runtime, dropped)
    await asyncio.sleep(0.3)
    assert await backend_pid(runtime) != dropped  # no error reached the caller
    assert pings == [1]


def pid_of(connection: Connection) -> int:
    return int(connection.execute(BACKEND_PID).scalar_one())


async def test_a_batched_readers_connection_is_held_between_reads_and_sees_each_commit(
    runtime: Runtime, pings: list[int]
) -> None:
    reader = runtime.database.reader_for_batches()
    first = await reader.run(pid_of)
    for round_ in range(3):
        await runtime.database.run_in_transaction(lambda c: insert_event(c, "seen by a held reader"))
        counted = await reader.run(
            lambda c: c.execute(
                text("SELECT count(*) FROM audit_events WHERE event_type = 'seen by a held reader'")
            ).scalar_one()
        )
        assert counted == round_ + 1  # no snapshot kept between reads
    assert await reader.run(pid_of) == first  # kept between reads: no checkout and return per read
    assert (
        runtime.database.engine.sync_engine.pool.checkedout() == 0
    )  # not the pool's: it is left for the rest
    assert pings == []


async def test_a_held_connection_outlives_a_failed_statement_and_is_pinged_after_idling(
    runtime: Runtime, pings: list[int]
) -> None:
    reader = runtime.database.reader_for_batches()
    first = await reader.run(pid_of)
    with pytest.raises(ProgrammingError):
        await reader.run(lambda c: c.execute(text("SELECT * FROM no_such_table")))
    assert await reader.run(pid_of) == first  # outside a transaction block the failure left it as it was
    await asyncio.sleep(0.3)
    assert await reader.run(pid_of) == first
    assert pings == [1]  # idle: pinged before the read


async def test_a_held_connection_lost_in_steady_use_fails_one_statement_and_is_let_go(
    runtime: Runtime, pings: list[int]
) -> None:
    held = runtime.database.held_connection()
    lost = await held.run(pid_of)
    await terminate_backend(runtime, lost)
    with pytest.raises(DBAPIError) as failed:  # used just now: not pinged, so this statement finds out
        await held.run(pid_of)
    assert failed.value.connection_invalidated
    assert await held.run(pid_of) != lost  # the next one connects again
    assert pings == []


async def test_a_held_connection_the_server_dropped_while_idle_is_replaced_before_use(
    runtime: Runtime, pings: list[int]
) -> None:
    reader = runtime.database.reader_for_batches()
    dropped = await reader.run(pid_of)
    await terminate_backend(runtime, dropped)
    await asyncio.sleep(0.3)
    assert await reader.run(pid_of) != dropped  # no error reached the caller
    assert len(pings) >= 1


async def test_held_connections_leave_even_a_pool_of_one_to_the_writes(runtime: Runtime) -> None:
    if runtime.database.dialect != "postgresql":
        pytest.skip("SQLite's reads run on the reader thread")
    small = database.Database(runtime.database.url, pool_size=1, max_overflow=0)
    try:
        readers = [small.reader_for_batches() for _ in range(5)]
        assert [await reader.run(lambda c: c.exec_driver_sql("SELECT 1").scalar()) for reader in readers] == [
            1
        ] * 5
        written = small.run_in_transaction(lambda c: insert_event(c, "written beside held readers"))
        await asyncio.wait_for(written, timeout=5)  # the pool's one connection is free for it
    finally:
        await small.dispose()
    assert await audit_count(runtime, "written beside held readers") == 1
