"""Telling every process of one provider that something it caches has changed (SPEC §11).

Each process keeps clients, the scope catalogue, the signing keys and the pairwise pseudonym versions in
memory. A change made in one process is announced on PostgreSQL's ``LISTEN``/``NOTIFY`` channel; every
process listening (each node, each of its workers, `consentry worker`) drops what it cached, so its next
request reads it again. An announcement is a small text, ``topic`` or ``topic:key``; one that is lost (a
process that was reconnecting) is covered by the caches' own short lifetimes, and a process that listens
again drops everything. (Redis pub/sub would add a second path for the same announcements: several nodes
share a PostgreSQL database in any case, so its channel is the one.)

On SQLite, announcements are applied in this process only (the processes of `serve --workers N` on one file
see a change within the caches' lifetimes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.exc import SQLAlchemyError

from consentry.storage.database import Database

log = logging.getLogger(__name__)

CHANNEL = "consentry_changes"
RECONNECT_AFTER = 1.0  # seconds between attempts to listen again after the connection was lost
MAX_PAYLOAD = 7000  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more

Listener = Callable[[str, str], None]  # (topic, key): apply a change announced by any process


class ChangeBus:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._listeners: list[Listener] = []
        self._pending: set[asyncio.Task[None]] = set()
        self._listening: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def shared(self) -> bool:
        """Whether other processes hear announcements (PostgreSQL), or only this one (SQLite)."""
        return self._database.dialect == "postgresql"

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def announce(self, topic: str, key: str = "") -> None:
        """Tell every process (this one at once) that ``topic``/``key`` changed. Returns at once: the NOTIFY
        goes out from a task, which :meth:`flush` waits for."""
        self._apply(topic, key)
        if not self.shared:
            return
        task = asyncio.get_running_loop().create_task(self._notify(f"{topic}:{key}"[:MAX_PAYLOAD]))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def flush(self) -> None:
        """Wait for announcements still on their way (a CLI command's before it exits)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def _notify(self, payload: str) -> None:
        try:
            await self._database.notify(CHANNEL, payload)
        except (OSError, TimeoutError, SQLAlchemyError) as exc:
            # The change holds here; the other processes see it when their caches expire.
            log.warning("could not announce a change to other processes: %s", type(exc).__name__)

    def _apply(self, topic: str, key: str) -> None:
        for listener in self._listeners:
            listener(topic, key)

    def _heard(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        topic, _, key = payload.partition(":")
        self._apply(topic, key)

    def start(self) -> None:
        """Listen for other processes' announcements (a server's lifespan), reconnecting when the database
        connection is lost."""
        if self.shared and self._listening is None:
            self._stopping = False
            self._listening = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        while not self._stopping:
            try:
                async with self._database.listening_connection() as connection:
                    lost = asyncio.Event()
                    connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                    await connection.add_listener(CHANNEL, self._heard)
                    # What changed while nobody listened is unknown: every cache starts again.
                    self._apply("everything", "")
                    await lost.wait()
                    log.warning("stopped hearing other processes' changes: the database connection was lost")
            except (
                OSError,
                TimeoutError,
                SQLAlchemyError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
            ) as exc:
                log.warning("cannot listen for other processes' changes: %s", type(exc).__name__)
            if not self._stopping:
                await asyncio.sleep(RECONNECT_AFTER)

    async def stop(self) -> None:
        await self.flush()
        self._stopping = True
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listening
            self._listening = None
