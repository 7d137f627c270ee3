"""The registration requests' status rows: what register-status reports, whatever the transport."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update

from consentry.domain.registration import RegistrationMessage, RegistrationStatus
from consentry.storage.database import Database
from consentry.storage.tables import RegistrationRequest

CHUNK = 1000  # request ids per statement


class RegistrationLedger:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def find(self, request_id: uuid.UUID) -> RegistrationRequest | None:
        async with self._database.read_only() as session:
            return await session.get(RegistrationRequest, request_id)

    async def count_processing(self, request_ids: Sequence[uuid.UUID]) -> int:
        """How many of these requests are still being processed."""
        total = 0
        async with self._database.read_only() as session:
            for start in range(0, len(request_ids), CHUNK):
                processing = (
                    select(func.count())
                    .select_from(RegistrationRequest)
                    .where(
                        RegistrationRequest.id.in_(request_ids[start : start + CHUNK]),
                        RegistrationRequest.status == RegistrationStatus.PROCESSING,
                    )
                )
                total += int(await session.scalar(processing) or 0)
        return total

    async def outcomes(self, request_ids: Sequence[uuid.UUID]) -> list[tuple[RegistrationStatus, str | None]]:
        """Each request's status and error (if it failed)."""
        found: list[tuple[RegistrationStatus, str | None]] = []
        async with self._database.read_only() as session:
            for start in range(0, len(request_ids), CHUNK):
                rows = await session.execute(
                    select(RegistrationRequest.status, RegistrationRequest.error).where(
                        RegistrationRequest.id.in_(request_ids[start : start + CHUNK])
                    )
                )
                found.extend(rows)
        return found

    async def record_published(
        self, messages: Sequence[RegistrationMessage], *, now: datetime, keep_hash: bool
    ) -> None:
        """One ``processing`` row per message; the hash is kept only where the table itself is the queue.

        The queue is taken in ``next_attempt_at`` order, so the messages of one call are made due a
        microsecond apart: they are written in the order given, and the first of two entries for one address
        wins.
        """
        async with self._database.unit_of_work() as session:
            await session.execute(
                insert(RegistrationRequest),
                [
                    {
                        "id": m.request_id,
                        "status": RegistrationStatus.PROCESSING,
                        "email": m.email,
                        "phone": m.phone,
                        "password_hash": m.password_hash if keep_hash else None,
                        "attributes": m.attributes,
                        "attempts": 0,
                        "in_dlq": False,
                        "created_at": now,
                        "updated_at": now,
                        "next_attempt_at": now + timedelta(microseconds=position),
                    }
                    for position, m in enumerate(messages)
                ],
            )

    async def record_dead_letter(
        self,
        message: RegistrationMessage,
        error: str,
        *,
        retry_at: datetime | None,
        now: datetime,
        release_claim: bool = False,
    ) -> None:
        """A failed write: retried at ``retry_at``, or failed for good (and its hash dropped) when None."""
        values: dict[str, object] = {
            "in_dlq": True,
            "attempts": message.attempts + 1,
            "error": error[:1000],
            "updated_at": now,
        }
        if release_claim:
            values |= {"claimed_at": None, "claimed_by": None}
        if retry_at is None:
            values |= {"status": RegistrationStatus.FAILED, "password_hash": None}
        else:
            values["next_attempt_at"] = retry_at
        async with self._database.unit_of_work() as session:
            await session.execute(
                update(RegistrationRequest)
                .where(RegistrationRequest.id == message.request_id)
                .values(**values)
            )

    async def record_failed(self, request_ids: Sequence[uuid.UUID], error: str, *, now: datetime) -> None:
        async with self._database.unit_of_work() as session:
            await session.execute(
                update(RegistrationRequest)
                .where(RegistrationRequest.id.in_(request_ids))
                .values(status=RegistrationStatus.FAILED, error=error, password_hash=None, updated_at=now)
            )
