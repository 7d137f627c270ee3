"""Kafka transport (aiokafka): topics ``user.registration`` and ``user.registration.dlq``.

Messages are keyed by request id (so one request always lands in one partition), offsets are committed by
hand only after the batch is written, and a consumer group shares the partitions. Dead-lettered messages go to
the DLQ topic with their retry time; the consumer takes them back when due (the DLQ partition waits, in order,
until its head is due). Status rows live in the database, as for the other transports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from consentry.domain.registration import RegistrationMessage
from consentry.errors import ServiceUnavailableError
from consentry.pipeline.messages import from_wire, to_wire
from consentry.storage.database import Database
from consentry.storage.registrations import RegistrationLedger

TOPIC = "user.registration"
DLQ_TOPIC = "user.registration.dlq"
GROUP = "consentry-writers"


def brokers_of(url: str) -> str:
    """``kafka://host:9092,host2:9092`` → ``host:9092,host2:9092``."""
    return url.removeprefix("kafka://").rstrip("/")


class KafkaTransport:
    def __init__(self, url: str, database: Database) -> None:
        self._brokers = brokers_of(url)
        self._database = database
        self._ledger = RegistrationLedger(database)
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def _get_producer(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._brokers, acks="all", enable_idempotence=True
                )
                await producer.start()
                self._producer = producer
            return self._producer

    async def _get_consumer(self) -> AIOKafkaConsumer:
        async with self._lock:
            if self._consumer is None:
                consumer = AIOKafkaConsumer(
                    TOPIC,
                    DLQ_TOPIC,
                    bootstrap_servers=self._brokers,
                    group_id=GROUP,
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",
                )
                await consumer.start()
                self._consumer = consumer
            return self._consumer

    async def publish(self, messages: Sequence[RegistrationMessage], *, now: datetime) -> None:
        if not messages:
            return
        await self._ledger.record_published(messages, now=now, keep_hash=False)
        try:
            producer = await self._get_producer()
            sent = [await producer.send(TOPIC, to_wire(m), key=m.request_id.bytes) for m in messages]
            await asyncio.gather(*sent)
        except KafkaError as exc:
            await self._ledger.record_failed(
                [m.request_id for m in messages], "the registration queue was unavailable", now=now
            )
            raise ServiceUnavailableError("the registration queue is unavailable; try again") from exc

    async def receive(self, limit: int, *, now: datetime) -> list[RegistrationMessage]:
        consumer = await self._get_consumer()
        batches = await consumer.getmany(timeout_ms=100, max_records=limit)
        messages: list[RegistrationMessage] = []
        for partition, records in batches.items():
            for record in records:
                data: dict[str, Any] = orjson.loads(record.value or b"{}")
                retry_at = data.get("retry_at")
                if partition.topic == DLQ_TOPIC and retry_at and retry_at > now.timestamp():
                    consumer.seek(partition, record.offset)  # not yet due: read it again later
                    break
                receipt = f"{partition.topic}|{partition.partition}|{record.offset}"
                messages.append(from_wire(data, receipt))
        return messages

    async def ack(self, messages: Sequence[RegistrationMessage]) -> None:
        """Commit, per partition, past the highest offset written (the batch is in the database now)."""
        offsets: dict[TopicPartition, int] = {}
        for message in messages:
            if not message.receipt:
                continue
            topic, partition, offset = message.receipt.split("|")
            key = TopicPartition(topic, int(partition))
            offsets[key] = max(offsets.get(key, 0), int(offset) + 1)
        if offsets and self._consumer is not None:
            await self._consumer.commit(offsets)

    async def dead_letter(
        self, message: RegistrationMessage, error: str, *, retry_at: datetime | None, now: datetime
    ) -> None:
        if retry_at is not None:
            retry = message.next_attempt()
            producer = await self._get_producer()
            await producer.send_and_wait(
                DLQ_TOPIC, to_wire(retry, retry_at=retry_at.timestamp()), key=message.request_id.bytes
            )
        await self._ledger.record_dead_letter(message, error, retry_at=retry_at, now=now)

    async def aclose(self) -> None:
        for client in (self._consumer, self._producer):
            if client is not None:
                await client.stop()
