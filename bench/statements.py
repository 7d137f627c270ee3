"""Cost of one SQLite statement through SQLAlchemy: Consentry's one-call driver against stock aiosqlite; and
of a one-row read through the pool against the batched readers' way (``Database.reader_for_batches``:
SQLite's reader thread, a held connection on PostgreSQL, run on a throwaway cluster when it is installed).

    taskset -c 0 .venv/bin/python bench/statements.py

One core, as the server runs in the benchmark: each hand-over to aiosqlite's thread is a context switch there.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import pg_tool
from tests.pg import start_cluster

from consentry.storage.database import Database, create_engine

COUNT = 3000


async def per_statement_us(engine: AsyncEngine) -> dict[str, float]:
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)"))
        await connection.execute(text("INSERT INTO item (name) VALUES ('a')"))
    timings: dict[str, float] = {}
    async with engine.connect() as connection:
        for name, statement, parameters in (
            ("select", text("SELECT name FROM item WHERE id = :id"), {"id": 1}),
            ("insert", text("INSERT INTO item (name) VALUES (:name)"), {"name": "x"}),
        ):
            started = time.perf_counter()
            for _ in range(COUNT):
                result = await connection.execute(statement, parameters)
                if result.returns_rows:
                    result.all()
            timings[name] = round((time.perf_counter() - started) / COUNT * 1e6, 1)
        await connection.rollback()
    await engine.dispose()
    return timings


async def point_read_us(url: str) -> dict[str, tuple[float, float]]:
    """A one-row read, each way: (µs in all, µs of it on the event loop's thread)."""
    database = Database(url)
    await database.run_in_transaction(
        lambda connection: [
            connection.exec_driver_sql(sql)
            for sql in (
                "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)",
                "INSERT INTO item VALUES (1, 'a')",
            )
        ]
    )
    statement, parameters = text("SELECT name FROM item WHERE id = :id"), {"id": 1}

    async def through_the_pool() -> None:
        async with database.read_connection() as connection:
            (await connection.execute(statement, parameters)).first()

    reader = database.reader_for_batches()

    async def as_batched_readers_do() -> None:
        await reader.run(lambda connection: connection.execute(statement, parameters).first())

    timings: dict[str, tuple[float, float]] = {}
    for name, read in (
        ("through the pool", through_the_pool),
        ("as batched readers do", as_batched_readers_do),
    ):
        started, loop_started = time.perf_counter(), time.thread_time()
        for _ in range(COUNT):
            await read()
        elapsed, on_loop = time.perf_counter() - started, time.thread_time() - loop_started
        timings[name] = (round(elapsed / COUNT * 1e6, 1), round(on_loop / COUNT * 1e6, 1))
    await database.dispose()
    return timings


async def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        one_call = await per_statement_us(create_engine(f"sqlite+aiosqlite:///{Path(directory) / 'a.db'}"))
        stock = await per_statement_us(create_async_engine(f"sqlite+aiosqlite:///{Path(directory) / 'b.db'}"))
        reads = {"SQLite": await point_read_us(f"sqlite+aiosqlite:///{Path(directory) / 'c.db'}")}
    try:
        cluster = start_cluster()
    except (RuntimeError, OSError, subprocess.CalledProcessError):
        cluster = None  # no PostgreSQL here
    if cluster is not None:
        try:
            await asyncio.to_thread(subprocess.run, pg_tool(cluster, "createdb", "statements"), check=True)
            reads["PostgreSQL"] = await point_read_us(cluster.url("statements"))
        finally:
            cluster.stop()
    for name in one_call:
        print(f"{name}: {one_call[name]} µs per statement (stock aiosqlite adapter: {stock[name]} µs)")
    for backend, timings in reads.items():
        for name, (in_all, on_loop) in timings.items():
            print(f"{backend} one-row read {name}: {in_all} µs ({on_loop} µs on the event loop's thread)")


if __name__ == "__main__":
    asyncio.run(main())
