"""When to flush a batch (pure; time is passed in).

A batch is written when it reaches ``max_size``, when its oldest message has waited ``max_wait``, or when no
message has arrived for ``idle_timeout`` — whichever comes first. Big bursts go out full; a trickle goes out
promptly; nothing waits longer than ``max_wait``. Also how long a consumer that found nothing waits before it
polls again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

T = TypeVar("T")
FlushReason = Literal["size", "max_wait", "idle"]


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    max_size: int = 1000
    max_wait: float = 5.0  # seconds
    idle_timeout: float = 0.5  # seconds

    def __post_init__(self) -> None:
        if self.max_size < 1 or self.max_wait <= 0 or self.idle_timeout <= 0:
            raise ValueError("batch limits must be positive")


@dataclass(frozen=True, slots=True)
class Flush(Generic[T]):
    items: list[T]
    reason: FlushReason


@dataclass
class Batcher(Generic[T]):
    policy: BatchPolicy
    _items: list[T] = field(default_factory=list)
    _first_at: float | None = None
    _last_at: float | None = None

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: T, *, now: float) -> Flush[T] | None:
        """Take one message; returns a full batch as soon as there is one."""
        if self._first_at is None:
            self._first_at = now
        self._last_at = now
        self._items.append(item)
        if len(self._items) >= self.policy.max_size:
            return self._take("size")
        return None

    def poll(self, *, now: float) -> Flush[T] | None:
        """Called when no message came: flush on max wait or idleness."""
        if not self._items or self._first_at is None or self._last_at is None:
            return None
        if now - self._first_at >= self.policy.max_wait:
            return self._take("max_wait")
        if now - self._last_at >= self.policy.idle_timeout:
            return self._take("idle")
        return None

    def next_deadline(self) -> float | None:
        """When :meth:`poll` could next flush, for the consumer's wait."""
        if self._first_at is None or self._last_at is None:
            return None
        return min(self._first_at + self.policy.max_wait, self._last_at + self.policy.idle_timeout)

    def _take(self, reason: FlushReason) -> Flush[T]:
        items, self._items = self._items, []
        self._first_at = self._last_at = None
        return Flush(items, reason)


def idle_wait(empty_polls: int, *, first: float, longest: float, flush_in: float | None) -> float:
    """Seconds an idle consumer waits before it polls the queue again, after ``empty_polls`` polls in a row
    found nothing: ``first``, doubled after each further empty poll up to ``longest``; never past the moment
    the batch it holds is due (``flush_in`` seconds from now, None when it holds none)."""
    if empty_polls < 1 or first <= 0 or longest < first:
        raise ValueError("an idle wait needs an empty poll and 0 < first <= longest")
    # From the 33rd empty poll on, the longest wait outright: 2 ** n would overflow a float near n = 1,024.
    wait = longest if empty_polls > 32 else min(first * 2 ** (empty_polls - 1), longest)
    return wait if flush_in is None else max(0.0, min(wait, flush_in))
