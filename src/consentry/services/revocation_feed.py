"""The revocation feed (SPEC §7): a resource catches up on the tokens revoked for it, from a cursor, and may
wait (long-poll) for the next one. Resource servers refuse a revoked JWT within a second this way, whether or
not webhook pushes reach them."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from consentry.domain.resources import ProtectedResource
from consentry.domain.revocation_feed import FeedCursor, InvalidCursor
from consentry.errors import InvalidRequestError
from consentry.runtime import Runtime, utcnow
from consentry.storage.tokens import Revocation, TokenRepository

PAGE = 1000
MAX_WAIT = 30.0  # seconds a long-poll may last
POLL_INTERVAL = 0.2  # seconds between reads while waiting


async def revocations(
    runtime: Runtime, resource: ProtectedResource, after: str | None, *, wait: float
) -> dict[str, Any]:
    """``{"revoked": [{"jti", "exp"}], "next": cursor}``; with ``wait``, answers as soon as a revocation past
    the cursor appears, or when ``wait`` seconds have passed."""
    try:
        cursor = FeedCursor.decode(after) if after else None
    except InvalidCursor as exc:
        raise InvalidRequestError(str(exc)) from None
    if not 0 <= wait <= MAX_WAIT:
        raise InvalidRequestError(f"wait is 0 to {MAX_WAIT:g} seconds")
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        now = utcnow()
        page = await _read(runtime, resource, cursor, now=now)
        if _news(page, cursor) or asyncio.get_running_loop().time() >= deadline:
            return {"revoked": [_entry(r) for r in page], "next": _next(page, cursor, now=now).encode()}
        await asyncio.sleep(POLL_INTERVAL)


async def _read(
    runtime: Runtime, resource: ProtectedResource, cursor: FeedCursor | None, *, now: datetime
) -> list[Revocation]:
    async with runtime.database.read_only() as session:
        return await TokenRepository(session).revocations_for(
            resource.identifier, after=cursor.read_after() if cursor else None, now=now, limit=PAGE
        )


def _news(page: list[Revocation], cursor: FeedCursor | None) -> bool:
    """Anything past where the reader had got to (the overlap it is sent again is not news)."""
    if cursor is None:
        return bool(page)
    return any((r.revoked_at, r.jti) > (cursor.revoked_at, cursor.jti) for r in page)


def _next(page: list[Revocation], cursor: FeedCursor | None, *, now: datetime) -> FeedCursor:
    """Past the page, never behind the cursor (the overlap sent again lies behind it)."""
    caught_up = len(page) < PAGE
    reached = [(page[-1].revoked_at, page[-1].jti)] if page else []
    if cursor is not None:
        reached.append((cursor.revoked_at, cursor.jti))
    if not reached:
        return FeedCursor(now, "", caught_up=True)  # nothing revoked yet: from now, looking back the overlap
    revoked_at, jti = max(reached)
    return FeedCursor(revoked_at, jti, caught_up)


def _entry(revocation: Revocation) -> dict[str, Any]:
    return {"jti": revocation.jti, "exp": int(revocation.expires_at.timestamp())}
