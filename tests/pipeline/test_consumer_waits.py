"""How an idle registration consumer waits: seldom when the queue is empty, never in a busy loop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime

from consentry.domain.registration import RegistrationMessage
from consentry.pipeline.consumer import RegistrationConsumer
from consentry.runtime import Runtime

HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"


class CountingQueue:
    """A transport that hands out ``messages`` once, then nothing (or fails, if ``then_fail``), and counts the
    polls."""

    def __init__(self, messages: Sequence[RegistrationMessage] = (), *, then_fail: bool = False) -> None:
        self.messages = list(messages)
        self.then_fail = then_fail
        self.polls = 0

    async def publish(self, messages: Sequence[RegistrationMessage], *, now: datetime) -> None:
        self.messages.extend(messages)

    async def receive(self, limit: int, *, now: datetime) -> list[RegistrationMessage]:
        self.polls += 1
        await asyncio.sleep(0)  # as real I/O would, it lets the event loop run
        if self.then_fail and self.polls > 1:
            raise ConnectionError("the queue went away")
        taken, self.messages = self.messages[:limit], self.messages[limit:]
        return taken

    async def ack(self, messages: Sequence[RegistrationMessage]) -> None:
        pass

    async def dead_letter(
        self, message: RegistrationMessage, error: str, *, retry_at: datetime | None, now: datetime
    ) -> None:
        pass


async def run_for(consumer: RegistrationConsumer, seconds: float, **waits: float) -> None:
    stop = asyncio.Event()
    running = asyncio.create_task(consumer.run(stop, **waits))
    await asyncio.sleep(seconds)
    stop.set()
    async with asyncio.timeout(5):
        await running


async def test_an_empty_queue_is_polled_less_and_less_often(runtime: Runtime) -> None:
    queue = CountingQueue()
    consumer = RegistrationConsumer(runtime.database, queue, runtime.settings, runtime.pipeline_metrics)
    await run_for(consumer, 1.0, poll=0.05, idle_poll=0.4)
    # At 0, 0.05, 0.15, 0.35, 0.75 s: five polls; twenty at a steady 0.05 s.
    assert 3 <= queue.polls <= 8


async def test_a_held_batch_overdue_while_the_queue_fails_is_not_retried_in_a_busy_loop(
    runtime: Runtime,
) -> None:
    held = RegistrationMessage(uuid.uuid4(), "held@example.com", None, HASH)
    queue = CountingQueue([held], then_fail=True)
    consumer = RegistrationConsumer(runtime.database, queue, runtime.settings, runtime.pipeline_metrics)
    # The batch falls due after registration_idle_seconds (0.5 s), but each poll fails before it is flushed.
    await run_for(consumer, 1.0, poll=0.05, idle_poll=0.4)
    assert queue.polls <= 25
