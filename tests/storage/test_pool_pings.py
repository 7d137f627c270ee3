"""PostgreSQL connections are pinged before use only after sitting idle; a dead idle one is replaced."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from consentry.runtime import Runtime
from consentry.storage import database

BACKEND_PID = text("SELECT pg_backend_pid()")


@pytest.fixture
def pings(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    if runtime.database.dialect != "postgresql":
        pytest.skip("SQLite connections are files: nothing to ping")
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.2)
    dialect = runtime.database.engine.sync_engine.dialect
    counted: list[int] = []
    ping = dialect.do_ping

    def counting(dbapi_connection: Any) -> bool:
        counted.append(1)
        return ping(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counting)
    return counted


async def backend_pid(runtime: Runtime) -> int:
    async with runtime.database.read_connection() as connection:
        return int((await connection.execute(BACKEND_PID)).scalar_one())


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
    killer = database.create_engine(runtime.database.url)
    try:
        async with killer.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped})
    finally:
        await killer.dispose()
    await asyncio.sleep(0.3)
    assert await backend_pid(runtime) != dropped  # no error reached the caller
    assert pings == [1]
