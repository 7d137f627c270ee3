"""Random UUIDs that rows made together are stored together by: user and registration request ids. Pure:
the clock and the entropy are given (``consentry.ids`` wires the system's).

A user id keys four indexes (accounts, credentials, consent history, audit), and a registration request id the
queue, which the claim, the writer's check and the completion each look a batch up in. A uuid4 lands anywhere
in an index, so a batch of a thousand registrations touched pages all over five of them, and that was most of
the cost of a bulk registration (docs/performance.md).
A time-ordered UUIDv7 would do that too, but a user id is the ``sub`` of clients with public subjects, and a
UUIDv7 tells each one when its users signed up.

So the high 32 bits are random, drawn again each second, and the next 16 the position within that second: the
ids of one second sit together and in order, at a place in the index that says nothing about the time. What
a client can still learn is that two of its users whose ids share the first 32 bits signed up in the same
second. The other 74 bits are random (uuid4 has 122): they tell apart ids made in the same 1/65,536 s, and
keep a request id, which reads its registration's status, out of reach of guessing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

_VERSION = 8  # RFC 9562 §5.8: a layout of the implementation's own
_VARIANT = 0b10
LOCATOR_BYTES = 6  # the 32-bit prefix and the 16-bit position


class ClusteredIds:
    """Makes ids; safe to call from any thread. Each kind of key gets its own maker, so keys of different
    kinds made in one second do not share a prefix that would tie them together."""

    def __init__(self, clock_ns: Callable[[], int], entropy: Callable[[int], bytes]) -> None:
        """``clock_ns``: nanoseconds since the epoch; ``entropy``: n unpredictable bytes (``consentry.ids``
        gives the system's)."""
        self._clock_ns = clock_ns
        self._entropy = entropy
        self._second_and_prefix = (-1, 0)  # replaced whole: threads see an old pair or a new one, never half

    def __call__(self) -> uuid.UUID:
        prefix, position = self._prefix_and_position()
        random = int.from_bytes(self._entropy(10), "big")
        value = (
            (prefix << 96)
            | (position << 80)
            | (_VERSION << 76)
            | ((random >> 68) << 64)  # 12 random bits after the version
            | (_VARIANT << 62)
            | (random & ((1 << 62) - 1))  # 62 more after the variant
        )
        return uuid.UUID(int=value)

    def locator(self) -> bytes:
        """An id's first 48 bits alone: this second's random prefix, then the position within the second. Keys
        that begin with it are stored together and in order, as the ids are (opaque tokens lead with one)."""
        prefix, position = self._prefix_and_position()
        return (prefix << 16 | position).to_bytes(LOCATOR_BYTES, "big")

    def _prefix_and_position(self) -> tuple[int, int]:
        second, fraction_ns = divmod(self._clock_ns(), 1_000_000_000)
        current, prefix = self._second_and_prefix
        if second != current:
            prefix = int.from_bytes(self._entropy(4), "big")
            self._second_and_prefix = (second, prefix)
        return prefix, fraction_ns * 65_536 // 1_000_000_000
