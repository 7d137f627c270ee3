"""Kafka transport (aiokafka): topics ``user.registration`` and ``user.registration.dlq``.

Messages are keyed by the normalised identifier, so two registrations of one address land in one partition, in
the order they were made, and the first wins. A consumer group shares the partitions; offsets are committed by
hand, per partition, only up to the first message not yet written (batches in flight may finish out of
order): a consumer killed mid-batch leaves its unwritten messages to whoever takes the partition next, and
writes are idempotent by request id. The topics are created on first use with the configured partitions,
replication and retention (``CONSENTRY_KAFKA_*``). Dead-lettered messages go to the DLQ topic with their retry
time; the consumer takes them back when due (the DLQ partition waits, in order, until its head is due). Status
rows live in the database, as for the other transports.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from consentry.domain.registration import RegistrationMessage
from consentry.errors import ServiceUnavailableError
from consentry.pipeline.messages import from_wire, to_wire
from consentry.storage.database import Database
from consentry.storage.registrations import RegistrationLedger

log = logging.getLogger(__name__)

TOPIC = "user.registration"
DLQ_TOPIC = "user.registration.dlq"
GROUP = "consentry-writers"


def brokers_of(url: str) -> str:
    """``kafka://host:9092,host2:9092`` → ``host:9092,host2:9092``."""
    return url.removeprefix("kafka://").rstrip("/")


class _Handover(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, forget: Callable[[Iterable[TopicPartition]], None]) -> None:
        self._forget = forget

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self._forget(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._forget(assigned)  # read again from the committed offsets


def key_of(message: RegistrationMessage) -> bytes:
    """The partitioning key: the address registered (normalised before it is queued)."""
    return (message.email or message.phone or str(message.request_id)).encode()


@dataclass(frozen=True, slots=True)
class TopicSettings:
    partitions: int = 4
    replication: int = 1
    retention_hours: int = 168
    idempotence: bool = True  # off only for brokers without InitProducerId (Tansu, some proxies)


class KafkaTransport:
    def __init__(self, url: str, database: Database, topics: TopicSettings | None = None) -> None:
        self._brokers = brokers_of(url)
        self._database = database
        self._topics = topics or TopicSettings()
        self._ledger = RegistrationLedger(database)
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()
        self._topics_ready = False
        # Per partition, the offsets received and not yet written: a commit never passes the first of them.
        self._unwritten: dict[TopicPartition, set[int]] = {}
        self._next_offset: dict[TopicPartition, int] = {}  # one past the highest offset received

    async def _ensure_topics(self) -> None:
        if self._topics_ready:
            return
        retention = str(self._topics.retention_hours * 3600 * 1000)
        admin = AIOKafkaAdminClient(bootstrap_servers=self._brokers)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(
                    topic,
                    self._topics.partitions,
                    self._topics.replication,
                    topic_configs={"retention.ms": retention},
                )
                for topic in (TOPIC, DLQ_TOPIC)
                if topic not in existing
            ]
            if missing:
                created: Any = await admin.create_topics(missing)
                for name, code, *_ in created.topic_errors:
                    if code not in (0, TopicAlreadyExistsError.errno):  # another node made it meanwhile
                        raise KafkaError(f"cannot create the topic {name}: error {code}")
        finally:
            await admin.close()
        self._topics_ready = True

    async def _get_producer(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                await self._ensure_topics()
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._brokers, acks="all", enable_idempotence=self._topics.idempotence
                )
                await producer.start()
                self._producer = producer
            return self._producer

    async def _get_consumer(self) -> AIOKafkaConsumer:
        async with self._lock:
            if self._consumer is None:
                await self._ensure_topics()
                consumer = AIOKafkaConsumer(
                    bootstrap_servers=self._brokers,
                    group_id=GROUP,
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",
                )
                consumer.subscribe([TOPIC, DLQ_TOPIC], listener=_Handover(self._forget))
                await consumer.start()
                self._consumer = consumer
            return self._consumer

    async def publish(self, messages: Sequence[RegistrationMessage], *, now: datetime) -> None:
        if not messages:
            return
        await self._ledger.record_published(messages, now=now, keep_hash=False)
        try:
            producer = await self._get_producer()
            sent = [await producer.send(TOPIC, to_wire(m), key=key_of(m)) for m in messages]
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
                self._unwritten.setdefault(partition, set()).add(record.offset)
                self._next_offset[partition] = max(self._next_offset.get(partition, 0), record.offset + 1)
        return messages

    async def ack(self, messages: Sequence[RegistrationMessage]) -> None:
        """These are written: commit, per partition, up to the first offset still unwritten (a batch in flight
        before this one may not be), or past everything received."""
        touched: set[TopicPartition] = set()
        for message in messages:
            if not message.receipt:
                continue
            topic, partition, offset = message.receipt.split("|")
            key = TopicPartition(topic, int(partition))
            self._unwritten.get(key, set()).discard(int(offset))
            touched.add(key)
        offsets = {
            key: min(self._unwritten[key]) if self._unwritten.get(key) else self._next_offset[key]
            for key in touched
            if key in self._next_offset
        }
        if offsets and self._consumer is not None:
            try:
                await self._consumer.commit(offsets)
            except KafkaError as exc:  # the partition went to another consumer: it reads them again, and
                # the writes are idempotent by request id
                log.warning("could not commit registration offsets: %s", type(exc).__name__)

    def _forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions handed to another consumer: what this one received of them is theirs to commit."""
        for partition in partitions:
            self._unwritten.pop(partition, None)
            self._next_offset.pop(partition, None)

    async def dead_letter(
        self, message: RegistrationMessage, error: str, *, retry_at: datetime | None, now: datetime
    ) -> None:
        if retry_at is not None:
            retry = message.next_attempt()
            producer = await self._get_producer()
            await producer.send_and_wait(
                DLQ_TOPIC, to_wire(retry, retry_at=retry_at.timestamp()), key=key_of(message)
            )
        await self._ledger.record_dead_letter(message, error, retry_at=retry_at, now=now)

    async def aclose(self) -> None:
        for client in (self._consumer, self._producer):
            if client is not None:
                await client.stop()
