"""Batched point reads: concurrent lookups by key become one ``WHERE key IN (...)`` query.

Introspection, userinfo and the authorization endpoint each look one row up by primary key. Per request
that is a pooled connection, a statement and a rollback; on SQLite each of those is a hop to the driver's
thread. Here the lookups that arrive while a query runs wait for the next one, which fetches all their keys
at once. A batch's query starts after every key in it was asked for, so a lookup never misses a row that
was committed before it was made.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import Connection, Executable

if TYPE_CHECKING:
    from consentry.storage.database import Database

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_KEYS_PER_QUERY = 500  # under SQLite's and asyncpg's bind-parameter limits with room to spare

Fetch = Callable[[Sequence[K]], Awaitable[dict[K, V]]]


def rows_by_first_column(
    database: Database, statement: Executable, record: Callable[..., V]
) -> Fetch[Any, V]:
    """A fetch for one batched reader: runs ``statement`` (its keys bound as ``keys``) through a reader of
    its own (:meth:`Database.reader_for_batches`) and makes a ``record`` of each row, keyed by its first
    column."""
    reader = database.reader_for_batches()

    def read(connection: Connection, keys: Sequence[Any]) -> dict[Any, V]:
        return {row[0]: record(*row) for row in connection.execute(statement, {"keys": keys})}

    async def fetch(keys: Sequence[Any]) -> dict[Any, V]:
        return await reader.run(functools.partial(read, keys=keys))

    return fetch


class BatchedReader(Generic[K, V]):
    def __init__(self, fetch: Fetch[K, V], *, max_keys: int = MAX_KEYS_PER_QUERY) -> None:
        self._fetch = fetch
        self._max_keys = max_keys
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V | None:
        found: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(found)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_all())
        return await found

    async def _read_all(self) -> None:
        while self._waiting:
            keys = list(self._waiting)[: self._max_keys]
            batch = {key: self._waiting.pop(key) for key in keys}
            try:
                rows = await self._fetch(keys)
            except Exception as exc:
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            except BaseException:  # cancelled at shutdown: nobody may wait forever
                for futures in (*batch.values(), *self._waiting.values()):
                    for future in futures:
                        future.cancel()
                raise
            for key, futures in batch.items():
                row = rows.get(key)
                for future in futures:
                    if not future.done():
                        future.set_result(row)
