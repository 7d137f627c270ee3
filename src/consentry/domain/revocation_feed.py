"""The revocation feed's cursor (SPEC §7): where a resource has read up to. Pure.

Revocations are read in (revoked_at, jti) order. A transaction stamps ``revoked_at`` before it commits, so a
revocation can become visible after a later one was read: once a reader has caught up, its next read starts
``OVERLAP`` earlier, and the resource drops what it already knows by ``jti``. A reader that stopped in the
middle of a page continues exactly where it stopped.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

OVERLAP = timedelta(seconds=10)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InvalidCursor(ValueError):
    """Not a cursor this feed gave out."""


@dataclass(frozen=True, slots=True)
class FeedCursor:
    revoked_at: datetime
    jti: str
    caught_up: bool  # the page it ended was not full: the next read looks back OVERLAP

    def encode(self) -> str:
        micros = (self.revoked_at - _EPOCH) // timedelta(microseconds=1)
        raw = f"{micros}.{int(self.caught_up)}.{self.jti}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> FeedCursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            micros, caught_up, jti = raw.split(".", 2)
            at = _EPOCH + timedelta(microseconds=int(micros))
        except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
            raise InvalidCursor("after is not a cursor this feed gave out") from None
        if caught_up not in ("0", "1") or len(jti) > 64:
            raise InvalidCursor("after is not a cursor this feed gave out")
        return cls(at, jti, caught_up == "1")

    def read_after(self) -> tuple[datetime, str]:
        """Where the next read starts (exclusive)."""
        if self.caught_up:
            return self.revoked_at - OVERLAP, ""
        return self.revoked_at, self.jti
