"""Clustered ids: valid UUIDs, made together → stored together, and nothing about the time in them."""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.clustered_ids import ClusteredIds
from consentry.ids import new_clustered_id

SECOND = 1_000_000_000


def _clock(*readings_ns: int) -> Callable[[], int]:
    readings = iter(readings_ns)
    return lambda: next(readings)


def _counting_entropy() -> Callable[[int], bytes]:
    """Distinct, recognisable bytes on every draw."""
    draws = itertools.count(1)
    return lambda n: next(draws).to_bytes(n, "big")


def test_an_id_is_an_rfc_9562_uuid_of_the_custom_version() -> None:
    user_id = new_clustered_id()
    assert isinstance(user_id, uuid.UUID)
    assert user_id.version == 8
    assert user_id.variant == uuid.RFC_4122


def test_ids_of_one_second_share_their_prefix_and_sort_in_the_order_they_were_made() -> None:
    start = 1_790_000_000 * SECOND
    moments = [start + SECOND * k // 10 for k in range(10)]  # ten moments in one second
    ids = ClusteredIds(clock_ns=_clock(*moments), entropy=os.urandom)
    made = [ids() for _ in moments]
    assert len({user_id.int >> 96 for user_id in made}) == 1
    assert sorted(made) == made


def test_the_prefix_is_drawn_again_each_second_and_is_not_the_time() -> None:
    start = 1_790_000_000 * SECOND
    ids = ClusteredIds(
        clock_ns=_clock(start, start + 1, start + SECOND, start + 2 * SECOND), entropy=_counting_entropy()
    )
    first, same_second, next_second, third_second = (ids() for _ in range(4))
    # Draws: 1 = first prefix, 2 = first id's random bits, 3 = same second's random bits, 4 = the next prefix.
    assert first.int >> 96 == same_second.int >> 96 == 1
    assert next_second.int >> 96 == 4
    assert third_second.int >> 96 == 6
    assert all((user_id.int >> 96) != start // SECOND & 0xFFFFFFFF for user_id in (first, next_second))


@given(st.integers(min_value=0, max_value=2**62), st.binary(min_size=14, max_size=14))
def test_every_field_lands_where_the_layout_says(now_ns: int, drawn: bytes) -> None:
    chunks = iter((drawn[:4], drawn[4:]))
    user_id = ClusteredIds(clock_ns=lambda: now_ns, entropy=lambda n: next(chunks))()
    random = int.from_bytes(drawn[4:], "big")
    assert user_id.int >> 96 == int.from_bytes(drawn[:4], "big")
    assert (user_id.int >> 80) & 0xFFFF == (now_ns % SECOND) * 65_536 // SECOND
    assert user_id.version == 8
    assert user_id.variant == uuid.RFC_4122
    assert (user_id.int >> 64) & 0xFFF == random >> 68
    assert user_id.int & ((1 << 62) - 1) == random & ((1 << 62) - 1)


def test_ids_made_at_once_on_many_threads_are_all_different() -> None:
    made: list[uuid.UUID] = []
    lock = threading.Lock()

    def make() -> None:
        mine = [new_clustered_id() for _ in range(5_000)]
        with lock:
            made.extend(mine)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 40_000


@given(st.integers(min_value=0, max_value=2**62), st.binary(min_size=14, max_size=14))
def test_a_locator_is_the_first_48_bits_an_id_made_at_that_moment_has(now_ns: int, drawn: bytes) -> None:
    def maker() -> ClusteredIds:
        chunks = iter((drawn[:4], drawn[4:]))
        return ClusteredIds(clock_ns=lambda: now_ns, entropy=lambda n: next(chunks))

    locator = maker().locator()
    assert len(locator) == 6
    assert locator == maker()().bytes[:6]


def test_locators_of_one_second_share_their_prefix_and_sort_in_the_order_they_were_made() -> None:
    start = 1_790_000_000 * SECOND
    moments = [start + SECOND * k // 10 for k in range(10)] + [start + SECOND]
    locators = ClusteredIds(clock_ns=_clock(*moments), entropy=_counting_entropy())
    made = [locators.locator() for _ in moments]
    assert {locator[:4] for locator in made[:10]} == {(1).to_bytes(4, "big")}
    assert sorted(made[:10]) == made[:10]
    assert made[10][:4] == (2).to_bytes(4, "big")  # the next second: a new prefix, drawn
