"""The default transport: the ``registration_requests`` table is the durable queue.

Claiming is a conditional UPDATE guarded by a lease (``claimed_at``), with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL so several consumers share the work; on SQLite one consumer at a time. A consumer that dies leaves
its claims to expire and the messages are taken again; the writer's idempotency check makes that harmless.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from consentry.pipeline.messages import RegistrationMessage
from consentry.storage.database import Database
from consentry.storage.registrations import RegistrationLedger
from consentry.storage.tables import RegistrationRequest, RegistrationStatus


class DatabaseTransport:
    def __init__(
        self, database: Database, *, lease: timedelta = timedelta(seconds=60), consumer_id: str | None = None
    ) -> None:
        self._database = database
        self._ledger = RegistrationLedger(database)
        self._lease = lease
        self._consumer_id = consumer_id or uuid.uuid4().hex[:16]

    async def publish(self, messages: Sequence[RegistrationMessage], *, now: datetime) -> None:
        if messages:
            await self._ledger.record_published(messages, now=now, keep_hash=True)

    async def receive(self, limit: int, *, now: datetime) -> list[RegistrationMessage]:
        """Claim up to ``limit`` due messages (new ones, and dead-lettered ones whose retry time has come)."""
        due = (
            (RegistrationRequest.status == RegistrationStatus.PROCESSING)
            & (RegistrationRequest.next_attempt_at <= now)
            & or_(
                RegistrationRequest.claimed_at.is_(None), RegistrationRequest.claimed_at < now - self._lease
            )
        )
        async with self._database.unit_of_work() as session:
            table = RegistrationRequest
            query = (
                select(
                    table.id, table.email, table.phone, table.password_hash, table.attributes, table.attempts
                )
                .where(due)
                .order_by(table.created_at)
                .limit(limit)
            )  # columns, not ORM objects: a batch is a thousand rows
            if self._database.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = (await session.execute(query)).all()
            if not rows:
                return []
            await session.execute(
                update(table)
                .where(table.id.in_([row.id for row in rows]), due)
                .values(claimed_at=now, claimed_by=self._consumer_id)
                .execution_options(synchronize_session=False)
            )
            return [
                RegistrationMessage(
                    row.id, row.email, row.phone, row.password_hash, dict(row.attributes or {}), row.attempts
                )
                for row in rows
            ]

    async def ack(self, messages: Sequence[RegistrationMessage]) -> None:
        """Nothing to do: the writer marks requests done in the same transaction as the accounts."""

    async def dead_letter(
        self, message: RegistrationMessage, error: str, *, retry_at: datetime | None, now: datetime
    ) -> None:
        """Park a message that failed to write: retried at ``retry_at``, or failed for good when None."""
        await self._ledger.record_dead_letter(message, error, retry_at=retry_at, now=now, release_claim=True)
