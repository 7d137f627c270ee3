"""The Redis Streams transport against a real redis-server: the same guarantees as the database queue."""

from __future__ import annotations

import asyncio
import socket
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import redis.asyncio as redis
from sqlalchemy import func, select

from consentry.domain.registration import RegistrationMessage
from consentry.pipeline.redis_transport import RedisStreamsTransport
from consentry.runtime import Runtime, utcnow
from consentry.settings import Settings
from consentry.storage.registration_writes import write_batch
from consentry.storage.tables import RegistrationRequest, User
from tests.conftest import make_settings
from tests.pipeline_helpers import run_pipeline
from tests.redis_server import RedisServer

PASSWORD = "a perfectly fine passphrase"


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> str:
    client = redis.from_url(redis_server.url)
    await client.flushdb()
    await client.aclose()
    return redis_server.url


@pytest.fixture
def settings(database_url: str, tmp_path: Path, redis_url: str) -> Settings:
    return make_settings(
        database_url,
        tmp_path,
        queue_url=redis_url,
        registration_idle_seconds=0.05,
        registration_retry_base_seconds=0.05,
        registration_batch_size=500,
    )


async def count_users(runtime: Runtime) -> int:
    async with runtime.database.read_only() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def test_async_registration_over_redis(http: httpx.AsyncClient, runtime: Runtime) -> None:
    assert isinstance(runtime.registrations, RedisStreamsTransport)
    queued = (
        await http.post(
            "/api/v1/auth/register-async",
            json={"email": "r@example.com", "password": PASSWORD, "consent": True},
        )
    ).json()
    async with runtime.database.read_only() as session:
        row = await session.get(RegistrationRequest, uuid.UUID(queued["request_id"]))
    assert row is not None and row.password_hash is None  # the hash travels in the stream, not the table
    await run_pipeline(runtime)
    status = (await http.get(f"/api/v1/auth/register-status/{queued['request_id']}")).json()
    assert status["status"] == "completed"


async def test_ten_thousand_over_redis_exactly_once(runtime: Runtime) -> None:
    password_hash = runtime.passwords.hash(PASSWORD)
    messages = [
        RegistrationMessage(uuid.uuid4(), f"s{i}@example.com", None, password_hash) for i in range(10_000)
    ]
    await runtime.registrations.publish(messages, now=utcnow())
    await run_pipeline(runtime, within=240)
    assert await count_users(runtime) == 10_000


async def test_a_crashed_consumers_entries_are_reclaimed(runtime: Runtime, redis_url: str) -> None:
    password_hash = runtime.passwords.hash(PASSWORD)
    messages = [
        RegistrationMessage(uuid.uuid4(), f"c{i}@example.com", None, password_hash) for i in range(50)
    ]
    await runtime.registrations.publish(messages, now=utcnow())
    crashed = RedisStreamsTransport(
        redis_url, runtime.database, lease=timedelta(milliseconds=200), consumer="crashed"
    )
    taken = await crashed.receive(50, now=utcnow())
    assert len(taken) == 50  # claimed, then the consumer "dies": no write, no ack
    await crashed.aclose()
    survivor = RedisStreamsTransport(
        redis_url, runtime.database, lease=timedelta(milliseconds=200), consumer="survivor"
    )
    assert await survivor.receive(50, now=utcnow()) == []  # still leased to the dead consumer
    await asyncio.sleep(0.3)
    reclaimed = await survivor.receive(50, now=utcnow())
    assert {m.request_id for m in reclaimed} == {m.request_id for m in messages}
    result = await write_batch(runtime.database, reclaimed, now=utcnow())
    await survivor.ack(reclaimed)
    await survivor.aclose()
    assert result.completed == 50
    assert await count_users(runtime) == 50


async def test_poison_over_redis_is_retried_then_failed(http: httpx.AsyncClient, runtime: Runtime) -> None:
    password_hash = runtime.passwords.hash(PASSWORD)
    poison = RegistrationMessage(
        uuid.uuid4(), "poison@example.com", None, password_hash, {"phone_verified": 7}
    )
    good = RegistrationMessage(uuid.uuid4(), "fine@example.com", None, password_hash)
    await runtime.registrations.publish([poison, good], now=utcnow())
    await run_pipeline(runtime)
    assert (await http.get(f"/api/v1/auth/register-status/{good.request_id}")).json()["status"] == "completed"
    failed = (await http.get(f"/api/v1/auth/register-status/{poison.request_id}")).json()
    assert failed["status"] == "failed" and "phone_verified" in failed["error"]
    async with runtime.database.read_only() as session:
        row = await session.get(RegistrationRequest, poison.request_id)
    assert row is not None and row.attempts == 4


async def test_registrations_resume_when_redis_comes_back_empty(
    http: httpx.AsyncClient, runtime: Runtime, redis_url: str
) -> None:
    """A Redis restarted without persistence has no stream and no group: the consumer makes them again
    instead of failing on NOGROUP until the process restarts."""
    await run_pipeline(runtime)  # the group exists
    client = redis.from_url(redis_url)
    await client.flushall()  # as a restart of a Redis that keeps nothing
    await client.aclose()
    queued = (
        await http.post(
            "/api/v1/auth/register-async",
            json={"email": "back@example.com", "password": PASSWORD, "consent": True},
        )
    ).json()
    await run_pipeline(runtime)
    status = (await http.get(f"/api/v1/auth/register-status/{queued['request_id']}")).json()
    assert status["status"] == "completed"


async def test_a_restarted_worker_takes_over_its_hosts_gone_consumer_at_once(
    runtime: Runtime, redis_url: str
) -> None:
    """No lease to wait out when the consumer that holds entries was a process of this host that has
    ended; its name leaves the group."""
    password_hash = runtime.passwords.hash(PASSWORD)
    messages = [
        RegistrationMessage(uuid.uuid4(), f"w{i}@example.com", None, password_hash) for i in range(20)
    ]
    await runtime.registrations.publish(messages, now=utcnow())
    gone = f"writer-{socket.gethostname()}-{2**22 + 1}"  # above any PID Linux hands out: no such process
    crashed = RedisStreamsTransport(redis_url, runtime.database, consumer=gone)
    assert len(await crashed.receive(20, now=utcnow())) == 20  # claimed, never acknowledged
    await crashed.aclose()
    restarted = RedisStreamsTransport(redis_url, runtime.database)  # named for this host and process
    taken = await restarted.receive(20, now=utcnow())  # the lease is a minute: taken over, not waited for
    assert {m.request_id for m in taken} == {m.request_id for m in messages}
    client = redis.from_url(redis_url)
    names = [
        c["name"].decode()
        for c in await client.xinfo_consumers("consentry:registrations", "consentry-writers")
    ]
    await client.aclose()
    await restarted.aclose()
    assert gone not in names
