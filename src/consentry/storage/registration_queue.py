"""The default transport: the ``registration_requests`` table is the durable queue.

Claiming is a conditional UPDATE guarded by a lease (``claimed_at``), with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL so several consumers share the work; on SQLite one consumer at a time. A consumer that dies leaves
its claims to expire and the messages are taken again; the writer's idempotency check makes that harmless.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, or_, select, update
from sqlalchemy.sql.dml import ReturningUpdate

from consentry.domain.registration import RegistrationMessage, RegistrationStatus
from consentry.storage.database import Database
from consentry.storage.registrations import RegistrationLedger
from consentry.storage.tables import RegistrationRequest

_QUEUE = RegistrationRequest
# Due: waiting, its time come, and not claimed by a consumer whose lease still runs.
_DUE = (
    (_QUEUE.status == RegistrationStatus.PROCESSING)
    & (_QUEUE.next_attempt_at <= bindparam("now"))
    & or_(_QUEUE.claimed_at.is_(None), _QUEUE.claimed_at < bindparam("lease_cutoff"))
)
# Statements built once: SQLAlchemy spends more building a claim than the database spends running it.
_ANY_DUE = select(_QUEUE.id).where(_DUE).limit(1)
_DUE_IDS = select(_QUEUE.id).where(_DUE).order_by(_QUEUE.next_attempt_at).limit(bindparam("limit"))


def _claim(due_ids: Select[uuid.UUID]) -> ReturningUpdate[Any]:
    return (
        update(_QUEUE)
        .where(_QUEUE.id.in_(due_ids))
        .values(claimed_at=bindparam("now"), claimed_by=bindparam("consumer"))
        .returning(
            _QUEUE.id,
            _QUEUE.email,
            _QUEUE.phone,
            _QUEUE.password_hash,
            _QUEUE.attributes,
            _QUEUE.attempts,
            _QUEUE.next_attempt_at,
            _QUEUE.created_at,
        )
        .execution_options(synchronize_session=False)
    )  # columns, not ORM objects: a batch is a thousand rows


_CLAIM = _claim(_DUE_IDS)
_CLAIM_SKIP_LOCKED = _claim(_DUE_IDS.with_for_update(skip_locked=True))  # PostgreSQL: consumers share


class DatabaseTransport:
    def __init__(
        self, database: Database, *, lease: timedelta = timedelta(seconds=60), consumer_id: str | None = None
    ) -> None:
        self._database = database
        self._ledger = RegistrationLedger(database)
        self._lease = lease
        self._consumer_id = consumer_id or uuid.uuid4().hex[:16]
        self._claim = _CLAIM_SKIP_LOCKED if database.dialect == "postgresql" else _CLAIM

    async def publish(self, messages: Sequence[RegistrationMessage], *, now: datetime) -> None:
        if messages:
            await self._ledger.record_published(messages, now=now, keep_hash=True)

    async def receive(self, limit: int, *, now: datetime) -> list[RegistrationMessage]:
        """Claim up to ``limit`` due messages (new ones, and dead-lettered ones whose retry time has come).

        An idle queue costs one read: a consumer polls it up to ten times a second, and a claim is a write (on
        SQLite, the process's write lock). The claim is one statement: the due rows are found through the
        (status, next_attempt_at) index in due order, so rows already written are never walked again (ordered
        by ``created_at`` it walked them every time), and one statement costs a third of a SELECT then an
        UPDATE of a thousand listed ids.
        """
        due = {"now": now, "lease_cutoff": now - self._lease}
        async with self._database.read_connection() as connection:
            if (await connection.execute(_ANY_DUE, due)).first() is None:
                return []
        parameters = due | {"limit": limit, "consumer": self._consumer_id}
        claimed = await self._database.run_in_transaction(
            lambda connection: connection.execute(self._claim, parameters).all()
        )
        rows = sorted(claimed, key=lambda row: row.next_attempt_at)  # RETURNING has no order
        return [
            RegistrationMessage(
                row.id,
                row.email,
                row.phone,
                row.password_hash,
                dict(row.attributes or {}),
                row.attempts,
                queued_at=_epoch(row.created_at),
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


def _epoch(value: datetime | str) -> float:
    """A claimed row's ``created_at`` as epoch seconds (SQLite's RETURNING gives the stored text)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
