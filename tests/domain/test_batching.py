"""The batcher's three flush triggers, with a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.batching import Batcher, BatchPolicy


def batcher(size: int = 3, wait: float = 5.0, idle: float = 0.5) -> Batcher[int]:
    return Batcher(BatchPolicy(max_size=size, max_wait=wait, idle_timeout=idle))


def test_flushes_when_full() -> None:
    b = batcher(size=3)
    assert b.add(1, now=0.0) is None
    assert b.add(2, now=0.1) is None
    flush = b.add(3, now=0.2)
    assert flush is not None and (flush.items, flush.reason) == ([1, 2, 3], "size")
    assert len(b) == 0


def test_flushes_when_idle() -> None:
    b = batcher(idle=0.5)
    b.add(1, now=0.0)
    b.add(2, now=0.3)
    assert b.poll(now=0.79) is None  # 0.49 s since the last message
    flush = b.poll(now=0.8)
    assert flush is not None and (flush.items, flush.reason) == ([1, 2], "idle")


def test_flushes_on_max_wait_even_while_messages_keep_coming() -> None:
    b = batcher(size=1000, wait=5.0, idle=0.5)
    t = 0.0
    flush = None
    while flush is None:
        b.add(int(t * 10), now=t)
        t += 0.4  # never idle for 0.5 s
        flush = b.poll(now=t)
    assert flush.reason == "max_wait"
    assert t == pytest.approx(5.2)


def test_nothing_to_flush_when_empty() -> None:
    b = batcher()
    assert b.poll(now=100.0) is None
    assert b.next_deadline() is None


def test_next_deadline_is_the_earlier_trigger() -> None:
    b = batcher(wait=5.0, idle=0.5)
    b.add(1, now=10.0)
    assert b.next_deadline() == 10.5
    b.add(2, now=14.8)
    assert b.next_deadline() == 15.0  # max wait comes before idleness now


def test_invalid_policy() -> None:
    with pytest.raises(ValueError):
        BatchPolicy(max_size=0)


@given(st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=200), st.integers(1, 50))
def test_every_message_is_flushed_exactly_once_and_in_order(gaps: list[float], size: int) -> None:
    b = batcher(size=size, wait=3.0, idle=0.5)
    out: list[int] = []
    t = 0.0
    for i, gap in enumerate(gaps):
        t += gap
        if (polled := b.poll(now=t)) is not None:
            out.extend(polled.items)
        if (flush := b.add(i, now=t)) is not None:
            assert len(flush.items) == size
            out.extend(flush.items)
    final = b.poll(now=t + 10)
    if final is not None:
        out.extend(final.items)
    assert out == list(range(len(gaps)))
