"""Recording when a consent was last used, cheaply."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from consentry.storage.consents import ConsentRepository, last_used_update
from consentry.storage.database import Transaction
from consentry.storage.group_commit import Statement


class ConsentUsage:
    """Records that a consent was used (``last_used_at``) without a write per request on hot paths.

    In-process, a consent is touched at most once per ``granularity``; the UPDATE itself is conditional,
    so several processes do not repeat each other's writes either.
    """

    def __init__(self, granularity: timedelta = timedelta(hours=1), max_entries: int = 100_000) -> None:
        self._granularity = granularity
        self._max_entries = max_entries
        self._recent: dict[uuid.UUID, datetime] = {}

    def due(self, consent_id: uuid.UUID, *, now: datetime) -> Statement | None:
        """The UPDATE to run with this request's writes, or None when the consent was touched lately."""
        last = self._recent.get(consent_id)
        if last is not None and now - last < self._granularity:
            return None
        if len(self._recent) >= self._max_entries:
            self._recent.clear()
        self._recent[consent_id] = now
        return last_used_update(consent_id, now=now, granularity=self._granularity)

    async def record(self, session: Transaction, consent_id: uuid.UUID, *, now: datetime) -> None:
        statement = self.due(consent_id, now=now)
        if statement is not None:
            await ConsentRepository(session).run(statement)
