"""SingleFlight: concurrent callers share one running load; forgetting starts a fresh one."""

from __future__ import annotations

import asyncio

import pytest

from consentry.single_flight import SingleFlight


async def test_concurrent_callers_share_one_load_and_later_ones_start_another() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    started = 0

    async def load() -> int:
        nonlocal started
        started += 1
        await asyncio.sleep(0.01)
        return started

    assert await asyncio.gather(*(flights.run("k", load) for _ in range(10))) == [1] * 10
    assert await flights.run("k", load) == 2
    assert await flights.run("other", load) == 3


async def test_a_failure_reaches_every_caller_and_is_not_kept() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise ConnectionError("down")

    results = await asyncio.gather(*(flights.run("k", failing) for _ in range(3)), return_exceptions=True)
    assert calls == 1 and all(isinstance(result, ConnectionError) for result in results)

    async def working() -> int:
        return 7

    assert await flights.run("k", working) == 7


async def test_one_caller_cancelled_does_not_cancel_the_others() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    release = asyncio.Event()

    async def load() -> str:
        await release.wait()
        return "done"

    first = asyncio.create_task(flights.run("k", load))
    second = asyncio.create_task(flights.run("k", load))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == "done"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_forgotten_load_is_not_joined_and_knows_it() -> None:
    flights: SingleFlight[str, bool] = SingleFlight()
    release = asyncio.Event()

    async def slow() -> bool:
        await release.wait()
        return flights.is_current("k")

    async def fast() -> bool:
        return flights.is_current("k")

    old = asyncio.create_task(flights.run("k", slow))
    await asyncio.sleep(0)
    flights.forget("k")
    assert await flights.run("k", fast) is True  # a new load, not the one forgotten
    release.set()
    assert await old is False
