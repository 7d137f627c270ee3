"""Bench scenario 6: registrations written per second through the pipeline, passwords hashed beforehand.

Run pinned to one core by bench/run.py: publishes N messages (not timed), then times the consumer — the work
`consentry worker` does — until every request is written.
"""

from __future__ import annotations

import asyncio
import sys
import time

from sqlalchemy import func, select

from consentry.domain.registration import RegistrationMessage, RegistrationStatus
from consentry.ids import new_clustered_id
from consentry.pipeline.consumer import RegistrationConsumer
from consentry.runtime import Runtime, tune_collector_for_long_run, utcnow
from consentry.settings import Settings
from consentry.storage.migrate import upgrade_to_head
from consentry.storage.tables import RegistrationRequest, User


async def main(database_url: str, count: int) -> None:
    settings = Settings(
        database_url=database_url,
        secret_key="bench-secret-key-bench-secret-key-000000",
        registration_idle_seconds=0.05,
    )
    runtime = Runtime.build(settings)
    try:
        await upgrade_to_head(runtime.database)
        password_hash = runtime.passwords.hash("a pre-hashed password")
        for start in range(0, count, 10_000):
            await runtime.registrations.publish(
                [
                    RegistrationMessage(new_clustered_id(), f"ingest{i}@example.com", None, password_hash)
                    for i in range(start, min(start + 10_000, count))
                ],
                now=utcnow(),
            )
        consumer = RegistrationConsumer(
            runtime.database, runtime.registrations, settings, runtime.pipeline_metrics
        )
        tune_collector_for_long_run()  # as `consentry worker` does before it starts taking registrations
        started = time.perf_counter()
        while True:
            if not await consumer.step():
                await consumer.drain()
                async with runtime.database.read_only() as session:
                    left = await session.scalar(
                        select(func.count())
                        .select_from(RegistrationRequest)
                        .where(RegistrationRequest.status == RegistrationStatus.PROCESSING)
                    )
                if not left:
                    break
        elapsed = time.perf_counter() - started
        async with runtime.database.read_only() as session:
            users = await session.scalar(select(func.count()).select_from(User))
            completed = await session.scalar(
                select(func.count())
                .select_from(RegistrationRequest)
                .where(RegistrationRequest.status == RegistrationStatus.COMPLETED)
            )
        # A fast run that lost or failed registrations does not count.
        if users != count or completed != count:
            raise SystemExit(f"ingest wrote {users} users and completed {completed} requests of {count}")
        print(f"INGEST {count} {elapsed:.3f} {count / elapsed:.1f}")
    finally:
        await runtime.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
