"""Cost of one SQLite statement through SQLAlchemy: Consentry's one-call driver against stock aiosqlite.

    taskset -c 0 .venv/bin/python bench/statements.py

One core, as the server runs in the benchmark: each hand-over to aiosqlite's thread is a context switch there.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from consentry.storage.database import create_engine

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


async def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        one_call = await per_statement_us(create_engine(f"sqlite+aiosqlite:///{Path(directory) / 'a.db'}"))
        stock = await per_statement_us(create_async_engine(f"sqlite+aiosqlite:///{Path(directory) / 'b.db'}"))
    for name in one_call:
        print(f"{name}: {one_call[name]} µs per statement (stock aiosqlite adapter: {stock[name]} µs)")


if __name__ == "__main__":
    asyncio.run(main())
