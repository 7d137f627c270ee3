"""One load at a time per key: concurrent callers share the running load instead of starting their own.

In-process caches (clients, signing keys) expire while a server is under load; without this, every request in
flight at that moment missed at once and each ran the load itself: for signing keys, one slow RSA key import
per request in flight, a long stall of the event loop every minute.

A load runs as a task of its own, in the context of the caller that started it, and is shared by callers that
did not: call it outside any unit of work (a load that writes takes SQLite's write lock itself).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The result of the load running for ``key``, or of ``load()`` started now."""
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(load())
            self._running[key] = running
            running.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(running)  # one caller going away does not cancel the others' load

    def is_current(self, key: K) -> bool:
        """Whether the calling load is still the one for ``key`` (not forgotten meanwhile): a load asks before
        it publishes what it read."""
        return self._running.get(key) is asyncio.current_task()

    def forget(self, key: K) -> None:
        """Callers from now on start a new load; the running one (it may predate a change) is not joined."""
        self._running.pop(key, None)

    def _finished(self, key: K, done: asyncio.Future[V]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved here: every caller may have gone
