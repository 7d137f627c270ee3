"""A `consentry worker` SIGKILLed mid-way through writing registrations loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from consentry.domain.registration import RegistrationMessage, RegistrationStatus
from consentry.runtime import Runtime, utcnow
from consentry.settings import Settings
from consentry.storage.tables import RegistrationRequest, User
from tests.conftest import make_settings
from tests.redis_server import RedisServer

TOTAL = 6000


async def _counts(runtime: Runtime) -> tuple[int, int]:
    async with runtime.database.read_only() as session:
        users = int(await session.scalar(select(func.count()).select_from(User)) or 0)
        done = int(
            await session.scalar(
                select(func.count())
                .select_from(RegistrationRequest)
                .where(RegistrationRequest.status == RegistrationStatus.COMPLETED)
            )
            or 0
        )
    return users, done


@pytest.mark.parametrize("queue", ["db", "redis"])
def test_sigkill_mid_batch_then_restart(
    database_url: str, tmp_path: Path, queue: str, request: pytest.FixtureRequest
) -> None:
    queue_url = "db"
    if queue == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        queue_url = server.url.replace("/0", "/1")  # a database of its own
        import redis

        redis.from_url(queue_url).flushdb()
    settings = make_settings(
        database_url,
        tmp_path,
        queue_url=queue_url,
        registration_lease_seconds=2,
        registration_batch_size=200,
        registration_idle_seconds=0.05,
    )

    async def publish() -> None:
        runtime = Runtime.build(settings)
        try:
            password_hash = runtime.passwords.hash("a perfectly fine passphrase")
            await runtime.registrations.publish(
                [
                    RegistrationMessage(uuid.uuid4(), f"k{i}@example.com", None, password_hash)
                    for i in range(TOTAL)
                ],
                now=utcnow(),
            )
        finally:
            await runtime.close()

    async def counts() -> tuple[int, int]:
        runtime = Runtime.build(settings)
        try:
            return await _counts(runtime)
        finally:
            await runtime.close()

    asyncio.run(publish())
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")},
        "CONSENTRY_DATABASE_URL": database_url,
        "CONSENTRY_QUEUE_URL": queue_url,
        "CONSENTRY_SECRET_KEY": "test-secret-key-that-is-long-enough-000",
        "CONSENTRY_REGISTRATION_LEASE_SECONDS": "2",
        "CONSENTRY_REGISTRATION_BATCH_SIZE": "200",
        "CONSENTRY_REGISTRATION_IDLE_SECONDS": "0.05",
        "CONSENTRY_WORKER_POLL_SECONDS": "0.1",
    }
    command = [sys.executable, "-m", "consentry", "worker"]

    first = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and asyncio.run(counts())[0] < 400:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # somewhere in the middle of the work
    first.wait(timeout=10)
    users_at_kill, _ = asyncio.run(counts())
    assert 0 < users_at_kill < TOTAL, "the kill should land mid-way"

    second = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and asyncio.run(counts())[1] < TOTAL:
            time.sleep(0.2)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert asyncio.run(counts()) == (TOTAL, TOTAL)  # nothing lost, nothing twice


def test_two_kafka_consumers_one_killed_mid_batch(
    database_url: str, tmp_path: Path, kafka_address: str
) -> None:
    """Four partitions, two `consentry worker`s in one group, one SIGKILLed mid-batch: its partitions go to
    the other, which reads again from the committed offsets; every registration is written once, and of two
    registrations of one address the first wins (they share a partition, keyed by the address)."""
    settings = make_settings(
        database_url,
        tmp_path,
        queue_url=f"kafka://{kafka_address}",
        kafka_partitions=4,
        kafka_idempotence=False,  # Tansu has no InitProducerId
        registration_batch_size=200,
        registration_idle_seconds=0.05,
    )
    firsts = [RegistrationMessage(uuid.uuid4(), f"q{i}@example.com", None, None) for i in range(TOTAL)]
    seconds = [
        RegistrationMessage(uuid.uuid4(), f"q{i}@example.com", None, None) for i in range(0, TOTAL, 30)
    ]

    async def publish() -> None:
        runtime = Runtime.build(settings)
        try:
            password_hash = runtime.passwords.hash("a perfectly fine passphrase")
            await runtime.registrations.publish(
                [replace(m, password_hash=password_hash) for m in [*firsts, *seconds]], now=utcnow()
            )
        finally:
            await runtime.close()

    async def states() -> dict[uuid.UUID, str]:
        runtime = Runtime.build(settings)
        try:
            async with runtime.database.read_only() as session:
                rows = await session.execute(select(RegistrationRequest.id, RegistrationRequest.status))
                return {row.id: row.status for row in rows}
        finally:
            await runtime.close()

    def finished() -> int:
        return sum(1 for status in asyncio.run(states()).values() if status != RegistrationStatus.PROCESSING)

    asyncio.run(publish())
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")},
        "CONSENTRY_DATABASE_URL": database_url,
        "CONSENTRY_QUEUE_URL": f"kafka://{kafka_address}",
        "CONSENTRY_KAFKA_PARTITIONS": "4",
        "CONSENTRY_KAFKA_IDEMPOTENCE": "0",
        "CONSENTRY_SECRET_KEY": "test-secret-key-that-is-long-enough-000",
        "CONSENTRY_REGISTRATION_BATCH_SIZE": "200",
        "CONSENTRY_REGISTRATION_IDLE_SECONDS": "0.05",
        "CONSENTRY_WORKER_POLL_SECONDS": "0.1",
    }
    command = [sys.executable, "-m", "consentry", "worker"]
    workers = [
        subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and asyncio.run(_counts_of(settings))[0] < 400:
            time.sleep(0.05)
        workers[0].send_signal(signal.SIGKILL)  # somewhere in the middle of a batch
        workers[0].wait(timeout=10)
        assert asyncio.run(_counts_of(settings))[0] < TOTAL, "the kill should land mid-way"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and finished() < len(firsts) + len(seconds):
            time.sleep(0.5)
    finally:
        workers[1].send_signal(signal.SIGTERM)
        workers[1].wait(timeout=30)
    final = asyncio.run(states())
    assert asyncio.run(_counts_of(settings)) == (TOTAL, TOTAL)  # nothing lost, nothing twice
    assert all(final[m.request_id] == RegistrationStatus.COMPLETED for m in firsts)
    assert all(final[m.request_id] == RegistrationStatus.FAILED for m in seconds)


async def _counts_of(settings: Settings) -> tuple[int, int]:
    runtime = Runtime.build(settings)
    try:
        return await _counts(runtime)
    finally:
        await runtime.close()
