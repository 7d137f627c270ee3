"""Running the registration consumer in tests until the queue is quiet."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from consentry.domain.registration import RegistrationStatus
from consentry.pipeline.consumer import RegistrationConsumer
from consentry.runtime import Runtime
from consentry.storage.tables import RegistrationRequest


async def pending(runtime: Runtime) -> int:
    async with runtime.database.read_only() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(RegistrationRequest)
                .where(RegistrationRequest.status == RegistrationStatus.PROCESSING)
            )
            or 0
        )


async def run_pipeline(runtime: Runtime, *, within: float = 60.0) -> None:
    consumer = RegistrationConsumer(
        runtime.database, runtime.registrations, runtime.settings, runtime.pipeline_metrics
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        arrived = await consumer.step()
        if not arrived and await pending(runtime) == 0 and not len(consumer._batcher):
            return
        if not arrived:
            await asyncio.sleep(0.05)
    raise AssertionError("the pipeline did not drain in time")
