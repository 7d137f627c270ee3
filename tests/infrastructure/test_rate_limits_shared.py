"""Rate limits shared across nodes through a real redis-server (CONSENTRY_REDIS_URL)."""

from __future__ import annotations

import uuid

import pytest
from limits import parse

from consentry.errors import RateLimitedError
from consentry.infrastructure.rate_limits import Policy, RateLimiter, RedisUnderWay, storage_for
from tests.redis_server import RedisServer


async def test_two_nodes_share_failure_counts(redis_server: RedisServer) -> None:
    node_a = RateLimiter(storage_for(redis_server.url))
    node_b = RateLimiter(storage_for(redis_server.url))
    item = Policy.default().login_failures_per_identifier  # 10 per 15 minutes
    key = f"{uuid.uuid4()}@example.com"
    for node in [node_a, node_b] * 5:
        await node.ensure_allowed(item, "login-fail", key)
        await node.count(item, "login-fail", key)
    with pytest.raises(RateLimitedError) as refused:
        await node_a.ensure_allowed(item, "login-fail", key)
    assert refused.value.retry_after > 0
    with pytest.raises(RateLimitedError):
        await node_b.ensure_allowed(item, "login-fail", key)
    await node_a.ensure_allowed(item, "login-fail", "someone-else@example.com")


async def test_memory_storage_is_per_process() -> None:
    node_a, node_b = RateLimiter(storage_for(None)), RateLimiter(storage_for(None))
    item = Policy.default().login_failures_per_identifier
    for _ in range(10):
        await node_a.count(item, "login-fail", "x")
    with pytest.raises(RateLimitedError):
        await node_a.ensure_allowed(item, "login-fail", "x")
    await node_b.ensure_allowed(item, "login-fail", "x")


async def test_attempts_under_way_on_two_nodes_count_together(redis_server: RedisServer) -> None:
    """An attempt is counted as it arrives, across nodes: while one is under way on A, B admits one less."""
    node_a = RateLimiter(storage_for(redis_server.url), under_way=RedisUnderWay(redis_server.url))
    node_b = RateLimiter(storage_for(redis_server.url), under_way=RedisUnderWay(redis_server.url))
    item = parse("2/minute")
    key = ("login-fail", f"{uuid.uuid4()}@example.com")
    try:
        async with node_a.attempt((item, key)), node_b.attempt((item, key)):
            with pytest.raises(RateLimitedError):
                async with node_a.attempt((item, key)):
                    pass
        async with node_b.attempt((item, key)) as attempt:  # the two ended without failing: nothing counted
            await attempt.failed()
        async with node_a.attempt((item, key)) as attempt:
            await attempt.failed()
        with pytest.raises(RateLimitedError):
            async with node_b.attempt((item, key)):
                pass
    finally:
        await node_a.aclose()
        await node_b.aclose()
