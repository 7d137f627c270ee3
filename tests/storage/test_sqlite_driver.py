"""The SQLite driver: one call on the connection's thread per statement, and the same results and errors."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from consentry.storage.database import create_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/driver.db")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    yield engine
    await engine.dispose()


@pytest.fixture
def thread_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions aiosqlite runs on its connection threads, in order."""
    calls: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return calls


async def test_a_query_is_one_call_on_the_thread(engine: AsyncEngine, thread_calls: list[str]) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("INSERT INTO item (name) VALUES ('a'), ('b'), ('c')"))
        thread_calls.clear()
        rows = (await connection.execute(text("SELECT id, name FROM item ORDER BY id"))).all()
        assert [tuple(row) for row in rows] == [(1, "a"), (2, "b"), (3, "c")]
        assert thread_calls == ["_run"]


async def test_inserts_report_counts_and_keys(engine: AsyncEngine, thread_calls: list[str]) -> None:
    async with engine.begin() as connection:
        single = await connection.execute(text("INSERT INTO item (name) VALUES ('x')"))
        assert single.lastrowid == 1
        many = await connection.execute(
            text("INSERT INTO item (name) VALUES (:name)"), [{"name": "y"}, {"name": "z"}]
        )
        assert many.rowcount == 2
        assert thread_calls == ["_run", "_run"]  # executemany too: one call
        returned = await connection.execute(text("UPDATE item SET name = name || '!' RETURNING name"))
        assert sorted(returned.scalars()) == ["x!", "y!", "z!"]


async def test_partial_fetches_read_the_buffered_rows(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO item (name) VALUES (:name)"), [{"name": n} for n in "abcde"]
        )
        result = await connection.execute(text("SELECT name FROM item ORDER BY name"))
        assert result.fetchone() == ("a",)
        assert result.fetchmany(2) == [("b",), ("c",)]
        assert result.fetchall() == [("d",), ("e",)]
        assert result.fetchone() is None


async def test_errors_are_sqlalchemy_errors_and_the_connection_stays_usable(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("INSERT INTO item (name) VALUES ('same')"))
        with pytest.raises(IntegrityError):
            await connection.execute(text("INSERT INTO item (name) VALUES ('same')"))
        await connection.rollback()
        count = await connection.scalar(text("SELECT count(*) FROM item"))
        assert count == 0  # the first insert was in the transaction rolled back


async def test_streaming_results_still_stream(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO item (name) VALUES (:name)"), [{"name": str(n)} for n in range(50)]
        )
        result = await connection.stream(text("SELECT name FROM item"))
        names = [row[0] async for row in result]
        assert len(names) == 50


async def test_commit_and_rollback_reach_sqlite_only_with_a_transaction_open(
    engine: AsyncEngine, thread_calls: list[str]
) -> None:
    async with engine.connect() as connection:
        await connection.scalar(text("SELECT count(*) FROM item"))  # a read opens no transaction
        await connection.rollback()
        assert thread_calls == ["_run"]
        await connection.execute(text("INSERT INTO item (name) VALUES ('kept')"))
        await connection.commit()
        await connection.execute(text("INSERT INTO item (name) VALUES ('dropped')"))
        await connection.rollback()
        assert thread_calls == ["_run", "_run", "commit", "_run", "rollback"]
    async with engine.connect() as connection:
        names = (await connection.execute(text("SELECT name FROM item"))).scalars().all()
    assert names == ["kept"]


async def test_a_failed_first_write_still_rolls_back(engine: AsyncEngine, thread_calls: list[str]) -> None:
    """The write that fails may be the one that began the transaction: its rollback must reach SQLite."""
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO item (name) VALUES ('taken')"))
    async with engine.connect() as connection:
        thread_calls.clear()
        with pytest.raises(IntegrityError):
            await connection.execute(text("INSERT INTO item (name) VALUES ('free'), ('taken')"))
        await connection.rollback()
        assert thread_calls == ["_run", "rollback"]
    async with engine.begin() as other:  # the write lock is free again
        await other.execute(text("INSERT INTO item (name) VALUES ('after')"))
        names = sorted((await other.execute(text("SELECT name FROM item"))).scalars())
    assert names == ["after", "taken"]


async def test_an_explicit_begin_is_seen_as_a_transaction(
    engine: AsyncEngine, thread_calls: list[str]
) -> None:
    async with engine.connect() as connection:
        await connection.exec_driver_sql("BEGIN IMMEDIATE")
        await connection.exec_driver_sql("SELECT 1")
        await connection.rollback()
        assert thread_calls[-1] == "rollback"


async def test_a_connection_that_fails_to_open_leaves_no_thread_behind(tmp_path: Path) -> None:
    """aiosqlite stops a failed connection's thread without waiting; a CLI that then exits raced it and
    printed "Event loop is closed" from the thread (seen in CI: `consentry migrate`, a directory as path)."""
    before = {t for t in threading.enumerate() if t.is_alive()}
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}")  # a directory: sqlite3 cannot open it
    with pytest.raises(OperationalError, match="unable to open database file"):
        async with engine.connect():
            pass
    await engine.dispose()
    assert {t for t in threading.enumerate() if t.is_alive()} - before == set()
