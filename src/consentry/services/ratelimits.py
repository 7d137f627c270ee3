"""Brute-force protection: counts of failed attempts per identifier and per IP (SPEC §1).

Successful attempts do not count. Counters live in memory by default, in Redis when ``CONSENTRY_REDIS_URL``
is set, so that several nodes share them.
"""

from __future__ import annotations

import time
from typing import NoReturn

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from consentry.errors import RateLimitedError

SWEEP_ABOVE = 10_000  # in-process keys held before those past their window are swept


class Policy:
    """Every limit in one place."""

    login_failures_per_identifier: RateLimitItem = parse("10/15 minutes")
    login_failures_per_ip: RateLimitItem = parse("50/15 minutes")
    code_failures_per_ip: RateLimitItem = parse("30/15 minutes")
    code_sends_per_identifier: RateLimitItem = parse("5/hour")
    code_resend_interval: RateLimitItem = parse("1/30 seconds")
    identifier_submissions_per_ip: RateLimitItem = parse("60/minute")
    client_auth_failures_per_client: RateLimitItem = parse("20/5 minutes")
    client_auth_failures_per_ip: RateLimitItem = parse("100/5 minutes")


def storage_for(redis_url: str | None) -> Storage:
    if redis_url:
        # limits names its asyncio Redis backend "async+redis://"
        storage = storage_from_string("async+" + redis_url if redis_url.startswith("redis") else redis_url)
        assert isinstance(storage, Storage)
        return storage
    return MemoryStorage()


class RateLimiter:
    def __init__(self, storage: Storage, policy: Policy | None = None) -> None:
        self.policy = policy or Policy()
        self._limiter = MovingWindowRateLimiter(storage)
        # With counters in this process, a key nothing was counted for within its window cannot be limited,
        # and most checks are of such keys (every client authentication checks two): they skip the window.
        # Shared counters (Redis) hold other nodes' counts too, so there every check asks the storage.
        self._counted_until: dict[tuple[RateLimitItem, tuple[str, ...]], float] | None = (
            {} if isinstance(storage, MemoryStorage) else None
        )
        self._sweep_above = SWEEP_ABOVE

    async def ensure_allowed(self, item: RateLimitItem, *keys: str) -> None:
        """Raise :class:`RateLimitedError` when the count for ``keys`` has reached the limit."""
        if self._counted_until is not None:
            until = self._counted_until.get((item, keys))
            if until is None or until <= time.monotonic():
                return
        if not await self._limiter.test(item, *keys):
            await self._refuse(item, keys)

    async def count(self, item: RateLimitItem, *keys: str) -> None:
        """Record one (failed) attempt."""
        await self._hit(item, keys)

    async def take(self, item: RateLimitItem, *keys: str) -> None:
        """Count an attempt that is itself limited (e.g. sending a code), refusing it past the limit."""
        if not await self._hit(item, keys):
            await self._refuse(item, keys)

    async def _hit(self, item: RateLimitItem, keys: tuple[str, ...]) -> bool:
        """Count one attempt; False when the limit was already reached (the attempt is then not counted)."""
        self._note_counted(item, keys)  # before the hit, so no check made while it is awaited skips it,
        allowed = await self._limiter.hit(item, *keys)
        self._note_counted(item, keys)  # and after it, so the note outlasts the hit's window
        return allowed

    async def _refuse(self, item: RateLimitItem, keys: tuple[str, ...]) -> NoReturn:
        stats = await self._limiter.get_window_stats(item, *keys)
        raise RateLimitedError(int(stats.reset_time - time.time()) + 1)

    def held_keys(self) -> int:
        """How many keys this process remembers a counted attempt for (0 with shared counters)."""
        return len(self._counted_until or ())

    def _note_counted(self, item: RateLimitItem, keys: tuple[str, ...]) -> None:
        counted = self._counted_until
        if counted is None:
            return
        now = time.monotonic()
        counted[(item, keys)] = now + item.get_expiry()
        if len(counted) > self._sweep_above:  # keys whose window has passed go, so memory follows live keys
            for key in [key for key, until in counted.items() if until <= now]:
                del counted[key]
            self._sweep_above = max(SWEEP_ABOVE, 2 * len(counted))
