"""Brute-force protection: counts of failed attempts per identifier and per IP (SPEC §1).

Successful attempts do not count. Counters live in memory by default, in Redis when ``CONSENTRY_REDIS_URL``
is set, so that several nodes share them.

When Redis does not answer, what needs the counters gets 503 with ``Retry-After`` (a limit that cannot be
checked is not waived), ``/readyz`` says so, and the log has one line when Redis goes and one when it is back.

A limit guards slow work (a password's argon2id hash) from the moment an attempt arrives: attempts under way
count beside the failures of the window (:meth:`RateLimiter.attempt`), so concurrent guesses cannot all pass
the check before the first of them has failed and been counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import NoReturn, Protocol, TypeVar

import redis.asyncio as redis
from coredis.exceptions import RedisError as CoredisError
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from redis.exceptions import RedisError

from consentry.errors import RateLimitedError, ServiceUnavailableError
from consentry.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

SWEEP_ABOVE = 10_000  # in-process keys held before those past their window are swept
STORE_TIMEOUT_SECONDS = 2.0  # a Redis that does not answer within this is down: 503, never a hang
STORE_ERRORS = (
    CoredisError,
    RedisError,
    OSError,
    TimeoutError,
)  # limits speaks coredis; under-way counts redis-py


class CounterStore:
    """Whether the shared counters answer: one log line when they stop, one when they are back."""

    def __init__(self) -> None:
        self.down_since: float | None = None

    async def call(self, pending: Awaitable[T], *, within: float = STORE_TIMEOUT_SECONDS) -> T:
        try:
            answer = await asyncio.wait_for(pending, within)
        except STORE_ERRORS as exc:
            if self.down_since is None:
                self.down_since = time.monotonic()
                log.error("the shared rate-limit counters (Redis) do not answer: %s", type(exc).__name__)
            raise ServiceUnavailableError(
                "attempts cannot be counted now (the rate-limit store is unavailable); try again shortly",
                retry_after=5,
            ) from None
        if self.down_since is not None:
            log.warning("the shared rate-limit counters (Redis) answer again")
            self.down_since = None
        return answer


@dataclass(frozen=True, slots=True)
class Policy:
    """Every limit in one place, from the settings (``CONSENTRY_RATE_LIMIT_*``)."""

    login_failures_per_identifier: RateLimitItem
    login_failures_per_ip: RateLimitItem
    code_failures_per_ip: RateLimitItem
    code_sends_per_identifier_and_ip: RateLimitItem
    code_sends_per_ip: RateLimitItem
    code_resend_interval: RateLimitItem
    client_auth_failures_per_client_and_ip: RateLimitItem
    client_auth_failures_per_ip: RateLimitItem
    registrations_per_ip: RateLimitItem
    client_registrations_per_ip: RateLimitItem  # RFC 7591 with CONSENTRY_DCR=open

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(**{name: parse(getattr(settings, f"rate_limit_{name}")) for name in cls.__slots__})

    @classmethod
    def default(cls) -> Policy:
        return cls.from_settings(Settings.model_construct())  # the defaults, whatever the environment says


class UnderWay(Protocol):
    """How many attempts under one key are being worked on now, across every process that shares it."""

    async def begin(self, key: str) -> int:
        """One more under way; returns how many are, this one included."""
        ...

    async def end(self, key: str) -> None: ...


class LocalUnderWay:
    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    async def begin(self, key: str) -> int:
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        return count

    async def end(self, key: str) -> None:
        count = self._counts.pop(key, 1) - 1
        if count > 0:
            self._counts[key] = count


class RedisUnderWay:
    """INCR and DECR in Redis; the key expires a while after its last change, so that a process that died
    mid-attempt leaves no count behind for long."""

    EXPIRES_SECONDS = 120

    def __init__(self, url: str) -> None:
        self._redis = redis.from_url(
            url, socket_timeout=STORE_TIMEOUT_SECONDS, socket_connect_timeout=STORE_TIMEOUT_SECONDS
        )

    async def begin(self, key: str) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(f"consentry:under-way:{key}")
            pipe.expire(f"consentry:under-way:{key}", self.EXPIRES_SECONDS)
            count, _ = await pipe.execute()
        return int(count)

    async def end(self, key: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.decr(f"consentry:under-way:{key}")
            pipe.expire(f"consentry:under-way:{key}", self.EXPIRES_SECONDS)
            await pipe.execute()

    async def aclose(self) -> None:
        await self._redis.aclose()


class Attempt:
    """One attempt admitted by :meth:`RateLimiter.attempt`; :meth:`failed` counts it as a failure."""

    def __init__(
        self, limiter: RateLimiter, limits: tuple[tuple[RateLimitItem, tuple[str, ...]], ...]
    ) -> None:
        self._limiter = limiter
        self._limits = limits

    async def failed(self) -> None:
        for item, keys in self._limits:
            await self._limiter.count(item, *keys)


def storage_for(redis_url: str | None) -> Storage:
    if redis_url:
        # limits names its asyncio Redis backend "async+redis://"
        storage = storage_from_string(
            "async+" + redis_url if redis_url.startswith("redis") else redis_url,
            connect_timeout=STORE_TIMEOUT_SECONDS,
            stream_timeout=STORE_TIMEOUT_SECONDS,
        )
        assert isinstance(storage, Storage)
        return storage
    return MemoryStorage()


class RateLimiter:
    def __init__(
        self, storage: Storage, policy: Policy | None = None, under_way: UnderWay | None = None
    ) -> None:
        self.policy = policy or Policy.default()
        self._under_way = under_way or LocalUnderWay()
        self._limiter = MovingWindowRateLimiter(storage)
        # With counters in this process, a key nothing was counted for within its window cannot be limited,
        # and most checks are of such keys (every client authentication checks two): they skip the window.
        # Shared counters (Redis) hold other nodes' counts too, so there every check asks the storage.
        self._counted_until: dict[tuple[RateLimitItem, tuple[str, ...]], float] | None = (
            {} if isinstance(storage, MemoryStorage) else None
        )
        self._sweep_above = SWEEP_ABOVE
        self.store = CounterStore()
        self._shared = not isinstance(storage, MemoryStorage)
        self._storage = storage

    async def check_store(self, *, within: float) -> bool:
        """For /readyz: the shared counters answer within ``within`` seconds (always, in this process)."""
        if not self._shared:
            return True
        try:
            answered = await self.store.call(self._storage.check(), within=within)
        except ServiceUnavailableError:
            return False
        return bool(answered)

    async def ensure_allowed(self, item: RateLimitItem, *keys: str) -> None:
        """Raise :class:`RateLimitedError` when the count for ``keys`` has reached the limit."""
        if self._never_counted(item, keys):
            return
        if not await self.store.call(self._limiter.test(item, *keys)):
            await self._refuse(item, keys)

    async def aclose(self) -> None:
        close = getattr(self._under_way, "aclose", None)
        if close is not None:
            await close()

    @contextlib.asynccontextmanager
    async def attempt(self, *limits: tuple[RateLimitItem, tuple[str, ...]]) -> AsyncIterator[Attempt]:
        """Admit one attempt under each of ``limits`` (an item and its keys), or raise
        :class:`RateLimitedError` before any work is done: the failures counted in the window plus the
        attempts under way, this one included, may not pass the limit. Inside, ``failed()`` counts the
        attempt as a failure (before it stops being under way, so it is never out of sight)."""
        begun: list[str] = []
        try:
            for item, keys in limits:
                key = _under_way_key(item, keys)
                begun.append(key)
                under_way = await self.store.call(self._under_way.begin(key))
                if under_way > item.amount:
                    raise RateLimitedError(1, "too many attempts at once; try again in a moment")
                if under_way > 1 or not self._never_counted(item, keys):
                    used = (
                        item.amount
                        - (await self.store.call(self._limiter.get_window_stats(item, *keys))).remaining
                    )
                    if used + under_way > item.amount:
                        await self._refuse(item, keys)
            yield Attempt(self, limits)
        finally:
            for key in begun:
                await self._end(key)

    @contextlib.asynccontextmanager
    async def one_at_a_time(self, *keys: str) -> AsyncIterator[None]:
        """Refuse (429) an attempt while another under the same keys is under way."""
        key = "/".join(("one-at-a-time", *keys))
        if await self.store.call(self._under_way.begin(key)) > 1:
            await self._end(key)
            raise RateLimitedError(1, "another attempt is under way; wait for its answer")
        try:
            yield
        finally:
            await self._end(key)

    async def _end(self, key: str) -> None:
        """An attempt is no longer under way; if the store cannot hear it now, the count expires by itself."""
        with contextlib.suppress(ServiceUnavailableError):
            await self.store.call(self._under_way.end(key))

    def _never_counted(self, item: RateLimitItem, keys: tuple[str, ...]) -> bool:
        """With counters in this process: nothing was counted for these keys within their window."""
        if self._counted_until is None:
            return False
        until = self._counted_until.get((item, keys))
        return until is None or until <= time.monotonic()

    async def count(self, item: RateLimitItem, *keys: str) -> None:
        """Record one (failed) attempt."""
        await self._hit(item, keys)

    async def take(self, item: RateLimitItem, *keys: str) -> None:
        """Count an attempt that is itself limited (e.g. sending a code), refusing it past the limit."""
        if not await self._hit(item, keys):
            await self._refuse(item, keys)

    async def take_code_send(self, identifier: str, ip: str | None) -> None:
        """A one-time code about to be sent: counted against the IP that asks, and against the identifier
        only from that IP, so that a stranger's sends never use up its owner's (SPEC §1)."""
        ip = ip or "-"
        await self.take(self.policy.code_resend_interval, "code-resend", identifier, ip)
        await self.take(self.policy.code_sends_per_identifier_and_ip, "code-send", identifier, ip)
        await self.take(self.policy.code_sends_per_ip, "code-send-ip", ip)

    async def _hit(self, item: RateLimitItem, keys: tuple[str, ...]) -> bool:
        """Count one attempt; False when the limit was already reached (the attempt is then not counted)."""
        self._note_counted(item, keys)  # before the hit, so no check made while it is awaited skips it,
        allowed = await self.store.call(self._limiter.hit(item, *keys))
        self._note_counted(item, keys)  # and after it, so the note outlasts the hit's window
        return allowed

    async def _refuse(self, item: RateLimitItem, keys: tuple[str, ...]) -> NoReturn:
        stats = await self.store.call(self._limiter.get_window_stats(item, *keys))
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


def _under_way_key(item: RateLimitItem, keys: tuple[str, ...]) -> str:
    return "/".join((item.key_for(), *keys))
