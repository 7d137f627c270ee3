"""CPU-bound work off the event loop, one thread per CPU, its results handed back in groups while work waits.

Password hashing is that work. Handed back one at a time (a ThreadPoolExecutor), each finished hash woke the
event loop for one sign-in: on one core the loop then ran that sign-in's remaining work in caches argon2id had
just filled with its own memory, and the sign-in's writes were a transaction of their own. Here a thread that
finishes a job while others wait in the queue keeps the result and goes on with the next, up to ``group``
results: the loop wakes once for them, warm after the first, and their writes share one group commit. A
thread that finds the queue empty hands back what it has at once, so a server that keeps up adds no wait.

Work is done only for callers still there: where the HTTP layer says how to learn that a request's client has
left (:data:`caller_gone`), a job of that request still queued when it leaves is dropped and its caller gets
:class:`CallerGone`. Under overload, clients give up first; hashing for them would make every later sign-in
wait longer still.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import threading
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

# Set around a request by the HTTP layer: awaiting it returns once the request's client has gone.
caller_gone: ContextVar[Callable[[], Awaitable[object]] | None] = ContextVar("caller_gone", default=None)


class CallerGone(Exception):
    """The caller left while its job waited: the job was dropped (or its result, if it had begun)."""


@dataclass(frozen=True, slots=True)
class _Job:
    call: Callable[[], Any]
    future: asyncio.Future[Any]  # of the caller's event loop


_Finished = tuple[_Job, Any, BaseException | None]  # the job, its result, or what it raised


class CpuThreads:
    def __init__(self, threads: int, *, group: int, name: str) -> None:
        self._count = threads
        self._group = group
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` on one of the threads."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        if not self._threads:  # started on first use: a process that never hashes keeps no threads
            self._threads = [
                threading.Thread(target=self._work, name=f"{self._name}_{number}", daemon=True)
                for number in range(self._count)
            ]
            for thread in self._threads:
                thread.start()
        self._jobs.put(_Job(functools.partial(function, *args), future))
        gone = caller_gone.get()
        if gone is None:
            return await future
        watch = asyncio.ensure_future(_has_left(gone))
        try:
            await asyncio.wait((future, watch), return_when=asyncio.FIRST_COMPLETED)
            if not future.done() and watch.result():
                raise CallerGone
            return await future  # done, or the watch cannot tell: then the job is waited for
        finally:
            watch.cancel()
            if not future.done():  # the caller left, or this task was cancelled: a queued job is skipped
                future.cancel()

    def shutdown(self) -> None:
        """Run the jobs queued so far, hand back their results, and end the threads."""
        threads, self._threads = self._threads, []
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join()

    def _work(self) -> None:
        finished: list[_Finished] = []
        while True:
            try:
                job = self._jobs.get(block=not finished)
            except queue.Empty:  # nothing waits: hand back now
                _hand_back(finished)
                finished = []
                continue
            if job is None:
                _hand_back(finished)
                return
            if job.future.cancelled():  # its caller has gone (read across threads: at worst the job runs)
                continue
            try:
                finished.append((job, job.call(), None))
            except BaseException as exc:  # handed to the caller, as a ThreadPoolExecutor would
                finished.append((job, None, exc))
            if len(finished) >= self._group:
                _hand_back(finished)
                finished = []


async def _has_left(gone: Callable[[], Awaitable[object]]) -> bool:
    """True once the caller has gone; False at once if the watch fails, which then cannot tell."""
    try:
        await gone()
    except Exception:
        return False
    return True


def _hand_back(finished: list[_Finished]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[_Finished]] = {}
    for item in finished:
        by_loop.setdefault(item[0].future.get_loop(), []).append(item)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, items)


def _settle(items: list[_Finished]) -> None:
    for job, result, error in items:
        if job.future.done():  # cancelled meanwhile
            continue
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)
