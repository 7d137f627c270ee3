"""The background loop (`consentry worker`, or a task in `serve`): registrations, webhooks, cleanup."""

from __future__ import annotations

import asyncio
import logging
import time

from consentry.jobs.cleanup import run_cleanup
from consentry.jobs.revocation_pushes import push_revocations
from consentry.jobs.webhooks import WebhookDelivery
from consentry.pipeline.consumer import RegistrationConsumer, rung_within
from consentry.runtime import Runtime, utcnow

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Poll for due work until stopped; one failed round is logged, never fatal."""
        runtime = self._runtime
        registrations = RegistrationConsumer(
            runtime.database, runtime.registrations, runtime.settings, runtime.pipeline_metrics
        )
        interval = runtime.settings.worker_poll_seconds
        pipeline = asyncio.create_task(
            registrations.run(self._stop, doorbell=runtime.registration_doorbell, idle_poll=interval)
        )
        webhooks = WebhookDelivery(runtime)
        cleanup_every = runtime.settings.cleanup_interval_seconds
        next_cleanup = time.monotonic() + min(cleanup_every, 60.0)  # not in the middle of start-up
        log.info("background worker started")
        try:
            while not self._stop.is_set():
                try:
                    busy = await push_revocations(runtime, now=utcnow())
                    busy += await webhooks.run_once(now=utcnow())
                    if time.monotonic() >= next_cleanup:
                        report = await run_cleanup(runtime, now=utcnow())
                        log.info("cleanup done", extra={"counts": report.counts})
                        next_cleanup = time.monotonic() + cleanup_every
                except Exception:
                    log.exception("background round failed")
                    busy = 0
                if not busy:
                    await rung_within(interval, self._stop)
        finally:
            self._stop.set()
            await pipeline
            await webhooks.aclose()
            log.info("background worker stopped")
