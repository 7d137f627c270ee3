"""The contract every transport keeps, run against each one: the database, Redis, and Kafka (Tansu, or the
broker ``CONSENTRY_TEST_KAFKA`` names), with topics of four partitions."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from consentry.domain.registration import RegistrationMessage
from consentry.runtime import Runtime, utcnow
from consentry.settings import Settings
from consentry.storage.tables import RegistrationRequest, User
from tests.conftest import make_settings
from tests.pipeline_helpers import run_pipeline

KAFKA = os.environ.get("CONSENTRY_TEST_KAFKA")


@pytest.fixture(params=["db", "redis", "kafka"])
def settings(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Settings:
    queue_url = "db"
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url.replace("/0", "/2")
        redis.from_url(url).flushdb()
        queue_url = url
    elif request.param == "kafka":
        queue_url = f"kafka://{request.getfixturevalue('kafka_address')}"
        kafka = {"kafka_partitions": 4, "kafka_idempotence": bool(KAFKA)}  # Tansu has no InitProducerId
    return make_settings(
        database_url,
        tmp_path,
        queue_url=queue_url,
        **(kafka if request.param == "kafka" else {}),
        registration_idle_seconds=0.05,
        registration_retry_base_seconds=0.05,
        registration_batch_size=250,
    )


async def test_every_message_is_written_exactly_once_and_poison_fails_alone(runtime: Runtime) -> None:
    password_hash = runtime.passwords.hash("a perfectly fine passphrase")
    good = [RegistrationMessage(uuid.uuid4(), f"t{i}@example.com", None, password_hash) for i in range(1000)]
    poison = RegistrationMessage(uuid.uuid4(), "p@example.com", None, password_hash, {"email_verified": "?"})
    duplicate = RegistrationMessage(uuid.uuid4(), "t1@example.com", None, password_hash)
    await runtime.registrations.publish([*good[:500], poison, duplicate, *good[500:]], now=utcnow())
    await run_pipeline(runtime, within=120)
    async with runtime.database.read_only() as session:
        users = int(await session.scalar(select(func.count()).select_from(User)) or 0)
        states = dict(
            (await session.execute(select(RegistrationRequest.id, RegistrationRequest.status))).all()
        )
    assert users == 1000
    assert all(states[m.request_id] == "completed" for m in good)
    assert states[poison.request_id] == "failed" and states[duplicate.request_id] == "failed"
