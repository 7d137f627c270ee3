"""Redis Streams transport: a consumer group shares the stream; crashed consumers' entries are reclaimed.

Each consumer is named for its host and process. One that starts takes over, at once, the entries of a
consumer of its own host whose process is gone (a restarted worker), and the group forgets consumers that
hold nothing and were idle for a day; entries of a consumer on another host return after the lease.

The request's status row is written to the database first (so register-status answers at once), then the
message, with its password hash, goes to the stream. Dead-lettered messages wait in a sorted set scored by
their retry time and return to the stream when due; a final failure is recorded on the status row.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
import redis.asyncio as redis
from redis.exceptions import RedisError, ResponseError

from consentry.domain.registration import RegistrationMessage
from consentry.errors import ServiceUnavailableError
from consentry.pipeline.messages import from_wire, to_wire
from consentry.storage.database import Database
from consentry.storage.registrations import RegistrationLedger

HOST = socket.gethostname()
FORGET_IDLE_MS = 24 * 3600 * 1000  # a consumer holding nothing, idle this long, leaves the group
STREAM = "consentry:registrations"
DLQ = "consentry:registrations:dlq"
GROUP = "consentry-writers"


class RedisStreamsTransport:
    def __init__(
        self,
        url: str,
        database: Database,
        *,
        lease: timedelta = timedelta(seconds=60),
        consumer: str | None = None,
    ) -> None:
        self._redis = redis.from_url(url)
        self._database = database
        self._ledger = RegistrationLedger(database)
        self._lease_ms = int(lease.total_seconds() * 1000)
        self._consumer = consumer or f"writer-{HOST}-{os.getpid()}"
        self._group_ready = False
        # This consumer's own pending entries (taken over at start) are read once, before new ones, from here.
        self._own_cursor: str | None = "0"

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self._redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True
        await self._take_over_from_the_gone()

    async def _take_over_from_the_gone(self) -> None:
        """Claim the entries of this host's consumers whose process has ended; forget idle empty ones."""
        consumers: Any = await self._redis.xinfo_consumers(STREAM, GROUP)
        for consumer in consumers:
            name = _text(consumer["name"])
            if name == self._consumer:
                continue
            if _gone_from_this_host(name):
                pending: Any = await self._redis.xpending_range(
                    STREAM, GROUP, "-", "+", count=100_000, consumername=name
                )
                ids = [entry["message_id"] for entry in pending]
                if ids:
                    await self._redis.xclaim(STREAM, GROUP, self._consumer, 0, ids, justid=True)
                await self._redis.xgroup_delconsumer(STREAM, GROUP, name)
            elif consumer["pending"] == 0 and consumer["idle"] > FORGET_IDLE_MS:
                await self._redis.xgroup_delconsumer(STREAM, GROUP, name)

    async def publish(self, messages: Sequence[RegistrationMessage], *, now: datetime) -> None:
        if not messages:
            return
        await self._ledger.record_published(messages, now=now, keep_hash=False)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for message in messages:
                    pipe.xadd(STREAM, {"m": to_wire(message)})
                await pipe.execute()
        except RedisError as exc:
            await self._ledger.record_failed(
                [m.request_id for m in messages], "the registration queue was unavailable", now=now
            )
            raise ServiceUnavailableError("the registration queue is unavailable; try again") from exc

    async def receive(self, limit: int, *, now: datetime) -> list[RegistrationMessage]:
        try:
            return await self._receive(limit, now=now)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # Redis came back empty (restarted without persistence): make the group again, then carry on.
            self._group_ready = False
            await self._ensure_group()
            return await self._receive(limit, now=now)

    async def _receive(self, limit: int, *, now: datetime) -> list[RegistrationMessage]:
        await self._ensure_group()
        await self._release_due_retries(now=now)
        # Entries a crashed consumer claimed but never acknowledged come back after the lease.
        claimed: Any = await self._redis.xautoclaim(
            STREAM, GROUP, self._consumer, min_idle_time=self._lease_ms, count=limit
        )
        entries: list[Any] = list(claimed[1])
        if self._own_cursor is not None and len(entries) < limit:
            mine: Any = await self._redis.xreadgroup(
                GROUP, self._consumer, {STREAM: self._own_cursor}, count=limit - len(entries)
            )
            held = [item for _stream, items in mine or [] for item in items]
            entries.extend(held)
            self._own_cursor = _text(held[-1][0]) if held else None
        if len(entries) < limit:
            fresh: Any = await self._redis.xreadgroup(
                GROUP, self._consumer, {STREAM: ">"}, count=limit - len(entries)
            )
            for _stream, items in fresh or []:
                entries.extend(items)
        return [
            from_wire(orjson.loads(fields[b"m"]), entry_id.decode()) for entry_id, fields in entries if fields
        ]

    async def ack(self, messages: Sequence[RegistrationMessage]) -> None:
        receipts = [m.receipt for m in messages if m.receipt]
        if receipts:
            await self._redis.xack(STREAM, GROUP, *receipts)
            await self._redis.xdel(STREAM, *receipts)

    async def dead_letter(
        self, message: RegistrationMessage, error: str, *, retry_at: datetime | None, now: datetime
    ) -> None:
        if retry_at is not None:
            retry = message.next_attempt()
            await self._redis.zadd(DLQ, {to_wire(retry): retry_at.timestamp()})
        await self._ledger.record_dead_letter(message, error, retry_at=retry_at, now=now)

    async def _release_due_retries(self, *, now: datetime) -> None:
        due: Any = await self._redis.zrangebyscore(DLQ, "-inf", now.timestamp(), start=0, num=1000)
        for raw in due:
            if await self._redis.zrem(DLQ, raw):  # whoever removes it re-queues it, once
                await self._redis.xadd(STREAM, {"m": raw})

    async def aclose(self) -> None:
        await self._redis.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _gone_from_this_host(consumer: str) -> bool:
    """A consumer named for a process of this host (``writer-HOST-PID``) that no longer runs."""
    prefix = f"writer-{HOST}-"
    if not consumer.startswith(prefix) or not consumer[len(prefix) :].isdigit():
        return False
    try:
        os.kill(int(consumer[len(prefix) :]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it runs, as another user
        return False
    return False
