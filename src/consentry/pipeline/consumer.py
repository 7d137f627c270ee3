"""The registration consumer: receive, batch (size / max wait / idle), write, dead-letter what fails."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram

from consentry.domain.batching import Batcher, BatchPolicy, Flush, idle_wait
from consentry.domain.registration import RegistrationMessage
from consentry.settings import Settings
from consentry.storage.database import Database
from consentry.storage.registration_writes import write_batch

log = logging.getLogger(__name__)

WRITES_IN_FLIGHT = 2  # batches written at once where the database has its own cores (not SQLite)
FIRST_IDLE_WAIT = 0.1  # seconds before an empty queue is polled again; it doubles while the queue stays empty


class Transport(Protocol):
    """One small interface for every transport (database, Redis Streams, Kafka)."""

    async def publish(self, messages: Sequence[RegistrationMessage], *, now: datetime) -> None: ...

    async def receive(self, limit: int, *, now: datetime) -> list[RegistrationMessage]: ...

    async def ack(self, messages: Sequence[RegistrationMessage]) -> None: ...

    async def dead_letter(
        self, message: RegistrationMessage, error: str, *, retry_at: datetime | None, now: datetime
    ) -> None: ...


class PipelineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter("consentry_registration_messages", "messages received", registry=registry)
        self.batch_size = Histogram(
            "consentry_registration_batch_size",
            "messages per written batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 5000),
            registry=registry,
        )
        self.flushes = Counter(
            "consentry_registration_flushes", "batches flushed", ["reason"], registry=registry
        )
        self.write_seconds = Histogram(
            "consentry_registration_write_seconds", "batch write latency", registry=registry
        )
        self.dead_lettered = Counter(
            "consentry_registration_dead_lettered", "messages sent to the DLQ", registry=registry
        )
        self.retries = Counter(
            "consentry_registration_retries", "DLQ messages taken again", registry=registry
        )
        self.failed = Counter("consentry_registration_failed", "messages failed for good", registry=registry)
        self.retries_succeeded = Counter(
            "consentry_registration_retries_succeeded",
            "DLQ messages written on a later attempt",
            registry=registry,
        )
        self.queued_to_written = Histogram(
            "consentry_registration_queued_to_written_seconds",
            "from a registration's queueing to its account's insert",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=registry,
        )


class Doorbell:
    """Rung when this process has published registrations, so that its consumer, idle, can poll seldom."""

    def __init__(self) -> None:
        self._waiting: set[asyncio.Future[None]] = set()

    def ring(self) -> None:
        for future in list(self._waiting):
            if not future.done():
                future.set_result(None)

    @property
    def listened_to(self) -> bool:
        """Whether a consumer waits for the next ring."""
        return any(not future.done() for future in self._waiting)

    def next_ring(self) -> asyncio.Future[None]:
        """A future done at the next ring (cancel it to stop waiting)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.add(future)
        future.add_done_callback(self._waiting.discard)
        return future


async def rung_within(seconds: float, stop: asyncio.Event, doorbell: Doorbell | None = None) -> bool:
    """Wait ``seconds``, or less if ``stop`` is set or ``doorbell`` rings; whether it rang."""
    if seconds <= 0:
        return False
    stopping = asyncio.ensure_future(stop.wait())
    ring = doorbell.next_ring() if doorbell is not None else None
    waits: list[asyncio.Future[Any]] = [stopping] if ring is None else [stopping, ring]
    try:
        done, _ = await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
    return ring in done


@dataclass(frozen=True, slots=True)
class _Write:
    task: asyncio.Task[None]
    identifiers: frozenset[str]


def _identifiers(messages: Sequence[RegistrationMessage]) -> frozenset[str]:
    return frozenset(value for m in messages for value in (m.email, m.phone) if value is not None)


class RegistrationConsumer:
    def __init__(
        self, database: Database, transport: Transport, settings: Settings, metrics: PipelineMetrics
    ) -> None:
        self._database = database
        self._transport = transport
        self._metrics = metrics
        self._policy = BatchPolicy(
            settings.registration_batch_size,
            settings.registration_batch_wait_seconds,
            settings.registration_idle_seconds,
        )
        self._batcher: Batcher[RegistrationMessage] = Batcher(self._policy)
        self._writes_in_flight = 1 if database.dialect == "sqlite" else WRITES_IN_FLIGHT
        self._retry_base = settings.registration_retry_base_seconds
        self._max_retries = settings.registration_max_retries

    async def step(self) -> int:
        """Receive what is due, flush whatever is ready; returns how many messages arrived.

        On PostgreSQL, while a full batch is being written the next one is received, and written beside it on
        a second connection: the database works on other cores, so one batch's statements overlap the other's
        Python (a third write in flight gave no more). SQLite has one writer, which a claim from the database
        queue also needs: overlapping only makes them wait for each other, so its batches are written strictly
        in turn. None is left running when this returns.
        """
        arrived = 0
        writing: list[_Write] = []
        try:
            while True:
                room = self._policy.max_size - len(self._batcher)
                received = await self._transport.receive(room, now=datetime.now(UTC)) if room > 0 else []
                arrived += len(received)
                self._metrics.messages.inc(len(received))
                if retried := sum(1 for m in received if m.attempts):
                    self._metrics.retries.inc(retried)
                    log.info("%d dead-lettered registrations taken again", retried)
                clock = time.monotonic()
                ready = [flush for m in received if (flush := self._batcher.add(m, now=clock)) is not None]
                if (flush := self._batcher.poll(now=time.monotonic())) is not None:
                    ready.append(flush)
                for flush in ready:
                    await self._start(flush, writing)
                if not (self._writes_in_flight > 1 and ready and len(received) == room):
                    return arrived  # nothing to overlap: the queue had no more, or SQLite
        finally:
            outcomes = await asyncio.gather(*(write.task for write in writing), return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome

    async def _start(self, flush: Flush[RegistrationMessage], writing: list[_Write]) -> None:
        """Start writing ``flush`` once there is room, and once no batch in flight holds one of its
        identifiers: of two registrations for one address the one queued first must win, and two
        transactions inserting the same addresses in opposite orders would deadlock."""
        identifiers = _identifiers(flush.items)
        while writing and (
            len(writing) >= self._writes_in_flight
            or any(write.identifiers & identifiers for write in writing)
        ):
            await writing.pop(0).task
        writing.append(_Write(asyncio.create_task(self._flush(flush)), identifiers))

    async def drain(self) -> None:
        """Write whatever is held (on shutdown)."""
        if len(self._batcher):
            await self._flush(self._batcher.poll(now=float("inf")) or Flush([], "idle"))

    async def run(
        self,
        stop: asyncio.Event,
        *,
        doorbell: Doorbell | None = None,
        poll: float = FIRST_IDLE_WAIT,
        idle_poll: float = 1.0,
    ) -> None:
        """Take and write registrations until ``stop`` is set.

        A queue found empty is polled again after ``poll`` seconds, then less and less often, down to once
        per ``idle_poll``: ten polls a second of an idle queue took ~1 % of the core on PostgreSQL, taken
        from the password sign-ins beside them. Registrations this process publishes ring ``doorbell`` and
        are taken at once; those of other processes wait for the next poll.
        """
        first = min(poll, idle_poll)
        empty_polls = 0
        while not stop.is_set():
            failed = False
            try:
                arrived = await self.step()
            except Exception:
                log.exception("registration round failed")
                arrived, failed = 0, True
            if arrived:
                empty_polls = 0
                continue
            empty_polls += 1
            deadline = self._batcher.next_deadline()
            flush_in = None if deadline is None else deadline - time.monotonic()
            wait = idle_wait(empty_polls, first=first, longest=idle_poll, flush_in=flush_in)
            if failed:
                wait = max(wait, first)  # a batch overdue because its write failed: not again at once
            if await rung_within(wait, stop, doorbell):
                empty_polls = 0
        await self.drain()

    async def _flush(self, flush: Flush[RegistrationMessage]) -> None:
        if not flush.items:
            return
        started = time.perf_counter()
        result = await write_batch(self._database, flush.items, now=datetime.now(UTC))
        took = time.perf_counter() - started
        self._metrics.write_seconds.observe(took)
        self._metrics.batch_size.observe(len(flush.items))
        self._metrics.flushes.labels(flush.reason).inc()
        written_at, poisoned = time.time(), {message.request_id for message, _error in result.poisoned}
        for message in flush.items:
            if message.request_id in poisoned:
                continue
            if message.queued_at is not None:
                self._metrics.queued_to_written.observe(max(0.0, written_at - message.queued_at))
            if message.attempts:
                self._metrics.retries_succeeded.inc()
        log.info(
            "registration batch written: %d messages (%s), %d poisoned, %.0f ms",
            len(flush.items), flush.reason, len(poisoned), took * 1000,
        )  # fmt: skip
        for message, error in result.poisoned:
            now = datetime.now(UTC)
            retry = message.attempts < self._max_retries
            retry_at = now + timedelta(seconds=self._retry_base * 2**message.attempts) if retry else None
            await self._transport.dead_letter(message, error, retry_at=retry_at, now=now)
            self._metrics.dead_lettered.inc()
            if retry and retry_at is not None:
                log.info(
                    "registration %s to the dead-letter queue (attempt %d): %s; retried at %s",
                    message.request_id, message.attempts + 1, error, retry_at.isoformat(),
                )  # fmt: skip
            else:
                self._metrics.failed.inc()
                log.warning("registration %s failed for good: %s", message.request_id, error)
        await self._transport.ack(flush.items)  # only now: a crash before this redelivers, harmlessly
