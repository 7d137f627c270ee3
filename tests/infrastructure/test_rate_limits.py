"""In-process rate limits: they hold, end with their window, and memory follows the live keys."""

from __future__ import annotations

import asyncio

import pytest
from limits import parse

from consentry.errors import RateLimitedError
from consentry.infrastructure import rate_limits as ratelimits
from consentry.infrastructure.rate_limits import RateLimiter, storage_for

TWO_PER_SECOND = parse("2/second")


async def test_a_limit_reached_refuses_until_its_window_has_passed() -> None:
    limiter = RateLimiter(storage_for(None))
    await limiter.ensure_allowed(TWO_PER_SECOND, "k")
    await limiter.count(TWO_PER_SECOND, "k")
    await limiter.ensure_allowed(TWO_PER_SECOND, "k")  # one counted: still allowed
    await limiter.count(TWO_PER_SECOND, "k")
    with pytest.raises(RateLimitedError):
        await limiter.ensure_allowed(TWO_PER_SECOND, "k")
    await limiter.ensure_allowed(TWO_PER_SECOND, "other")
    with pytest.raises(RateLimitedError):  # the same keys under another limit are counted apart
        await limiter.take(parse("1/second"), "k")
        await limiter.take(parse("1/second"), "k")
    await asyncio.sleep(1.05)
    await limiter.ensure_allowed(TWO_PER_SECOND, "k")


async def test_take_refuses_past_the_limit_and_counts_toward_checks() -> None:
    limiter = RateLimiter(storage_for(None))
    item = parse("3/minute")
    for _ in range(3):
        await limiter.take(item, "send", "a@example.com")
    with pytest.raises(RateLimitedError):
        await limiter.take(item, "send", "a@example.com")
    with pytest.raises(RateLimitedError):
        await limiter.ensure_allowed(item, "send", "a@example.com")


async def test_keys_past_their_window_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimits, "SWEEP_ABOVE", 50)
    limiter = RateLimiter(storage_for(None))
    for n in range(50):
        await limiter.count(parse("5/second"), "key", str(n))
    await asyncio.sleep(1.05)
    await limiter.count(parse("5/minute"), "key", "live")
    await limiter.count(parse("5/minute"), "key", "live too")
    assert limiter.held_keys() == 2
