"""The batcher's three flush triggers, with a fake clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.batching import Batcher, BatchPolicy, idle_wait


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


def test_an_idle_consumer_waits_longer_after_each_empty_poll_up_to_the_longest_wait() -> None:
    waits = [idle_wait(n, first=0.1, longest=1.0, flush_in=None) for n in range(1, 7)]
    assert waits == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert idle_wait(10_000, first=0.1, longest=1.0, flush_in=None) == 1.0


def test_an_idle_consumer_holding_a_batch_wakes_when_it_is_due() -> None:
    assert idle_wait(5, first=0.1, longest=1.0, flush_in=0.3) == pytest.approx(0.3)
    assert idle_wait(1, first=0.1, longest=1.0, flush_in=0.3) == pytest.approx(0.1)
    assert idle_wait(5, first=0.1, longest=1.0, flush_in=-0.2) == 0.0  # overdue: poll now


@pytest.mark.parametrize(
    ("empty_polls", "first", "longest"), [(0, 0.1, 1.0), (1, 0.0, 1.0), (1, 0.5, 0.1), (1, -1.0, 1.0)]
)
def test_an_idle_wait_refuses_what_has_no_meaning(empty_polls: int, first: float, longest: float) -> None:
    with pytest.raises(ValueError):
        idle_wait(empty_polls, first=first, longest=longest, flush_in=None)


@given(
    empty_polls=st.integers(1, 10_000),
    first=st.floats(0.001, 10.0),
    extra=st.floats(0.0, 100.0),
    flush_in=st.none() | st.floats(-10.0, 100.0),
)
def test_an_idle_wait_grows_with_empty_polls_and_stays_within_its_bounds(
    empty_polls: int, first: float, extra: float, flush_in: float | None
) -> None:
    longest = first + extra
    wait = idle_wait(empty_polls, first=first, longest=longest, flush_in=flush_in)
    assert 0.0 <= wait <= longest
    assert flush_in is None or wait <= max(flush_in, 0.0)
    assert wait <= idle_wait(empty_polls + 1, first=first, longest=longest, flush_in=flush_in)
    if flush_in is None:
        assert wait >= first
