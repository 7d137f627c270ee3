"""CPU threads: results and errors reach their callers, in groups while work waits, at once when none does;
work queued for a caller that has left is dropped."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from consentry import cpu_threads
from consentry.cpu_threads import CpuThreads


@pytest.fixture
def one_thread() -> Iterator[CpuThreads]:
    threads = CpuThreads(1, group=3, name="test")
    yield threads
    threads.shutdown()


async def test_results_and_errors_reach_their_callers(one_thread: CpuThreads) -> None:
    def fail() -> None:
        raise ValueError("no")

    assert await one_thread.run(pow, 2, 10) == 1024
    with pytest.raises(ValueError, match="no"):
        await one_thread.run(fail)


async def test_a_lone_job_is_handed_back_without_waiting_for_a_group(one_thread: CpuThreads) -> None:
    assert await asyncio.wait_for(one_thread.run(sum, [1, 2]), timeout=10) == 3


async def test_results_finished_while_work_waits_are_handed_back_together(
    one_thread: CpuThreads, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed_back: list[int] = []
    settle = cpu_threads._settle

    def counted(items: list[Any]) -> None:
        handed_back.append(len(items))
        settle(items)

    monkeypatch.setattr(cpu_threads, "_settle", counted)
    release = threading.Event()

    def job(number: int) -> int:
        if number == 0:
            release.wait()  # every other job is queued before the first one finishes
        return number

    futures = [asyncio.ensure_future(one_thread.run(job, number)) for number in range(7)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*futures) == list(range(7))
    assert handed_back == [3, 3, 1]  # the loop woke three times for seven results


@pytest.mark.parametrize("leaving", ["cancelled", "disconnected"])
async def test_a_job_whose_caller_has_gone_is_not_run(one_thread: CpuThreads, leaving: str) -> None:
    """Its task cancelled, or its client gone (``caller_gone``, set by the HTTP layer): a job still queued
    is dropped, and the caller gets CancelledError or CallerGone."""
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def blocking() -> None:
        started.set()
        release.wait()

    first = asyncio.ensure_future(one_thread.run(blocking))
    await asyncio.to_thread(started.wait)
    gone = asyncio.Event()
    watching = cpu_threads.caller_gone.set(gone.wait if leaving == "disconnected" else None)
    try:
        second = asyncio.ensure_future(one_thread.run(ran.append, "second"))
    finally:
        cpu_threads.caller_gone.reset(watching)
    await asyncio.sleep(0)
    if leaving == "disconnected":
        gone.set()
    else:
        second.cancel()
    try:
        with pytest.raises(cpu_threads.CallerGone if leaving == "disconnected" else asyncio.CancelledError):
            await asyncio.wait_for(second, timeout=10)  # its job is still queued behind the first
    finally:
        release.set()
    await first
    assert await one_thread.run(ran.append, "third") is None
    assert ran == ["third"]


async def test_shutdown_runs_what_was_queued_and_ends_the_threads() -> None:
    threads = CpuThreads(2, group=4, name="test")
    results = [asyncio.ensure_future(threads.run(pow, 3, n)) for n in range(5)]
    await asyncio.sleep(0)
    await asyncio.to_thread(threads.shutdown)
    assert await asyncio.gather(*results) == [1, 3, 9, 27, 81]
    assert not [t for t in threading.enumerate() if t.name.startswith("test_")]


async def test_a_caller_that_stays_gets_its_result_and_the_watch_ends(one_thread: CpuThreads) -> None:
    watch_ended = asyncio.Event()

    async def never_leaves() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            watch_ended.set()

    watching = cpu_threads.caller_gone.set(never_leaves)
    try:
        assert await one_thread.run(pow, 3, 4) == 81
        with pytest.raises(ZeroDivisionError):
            await one_thread.run(divmod, 1, 0)  # the job's own error, not CallerGone
    finally:
        cpu_threads.caller_gone.reset(watching)
    await asyncio.wait_for(watch_ended.wait(), timeout=5)


async def test_a_watch_that_cannot_tell_leaves_the_job_to_finish(one_thread: CpuThreads) -> None:
    async def broken() -> None:
        raise RuntimeError("the transport cannot say")

    watching = cpu_threads.caller_gone.set(broken)
    try:
        assert await one_thread.run(sum, [4, 5]) == 9
    finally:
        cpu_threads.caller_gone.reset(watching)
