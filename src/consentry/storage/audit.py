"""The audit trail: append-only events with who, which client, which scopes, from where, when."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.domain.scopes import Scopes
from consentry.storage.tables import AuditEvent

MAX_USER_AGENT = 512


@dataclass(frozen=True, slots=True)
class RequestOrigin:
    """Where a request came from, for audit and consent history (the user agent cut to what is stored)."""

    ip: str | None = None
    user_agent: str | None = None

    def __post_init__(self) -> None:
        if self.user_agent is not None:
            object.__setattr__(self, "user_agent", self.user_agent[:MAX_USER_AGENT] or None)


AUDIT_TABLE: Table = AuditEvent.__table__  # type: ignore[assignment]


def audit_row(
    event_type: str,
    *,
    now: datetime,
    origin: RequestOrigin | None = None,
    user_id: uuid.UUID | None = None,
    client_id: str | None = None,
    scopes: Scopes | None = None,
    actor: str = "user",
    details: dict[str, Any] | None = None,
) -> tuple[Table, dict[str, Any]]:
    """One audit event as a row to insert, for a unit of work or a group-committed write."""
    origin = origin or RequestOrigin()
    return AUDIT_TABLE, {
        "event_type": event_type,
        "occurred_at": now,
        "actor": actor,
        "user_id": user_id,
        "client_id": client_id,
        "scopes": scopes,
        "ip": origin.ip,
        "user_agent": origin.user_agent,
        "details": details,
    }


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record(
        self,
        event_type: str,
        *,
        now: datetime,
        origin: RequestOrigin | None = None,
        user_id: uuid.UUID | None = None,
        client_id: str | None = None,
        scopes: Scopes | None = None,
        actor: str = "user",
        details: dict[str, Any] | None = None,
    ) -> None:
        row = audit_row(
            event_type,
            now=now,
            origin=origin,
            user_id=user_id,
            client_id=client_id,
            scopes=scopes,
            actor=actor,
            details=details,
        )
        await self._session.execute(insert(AuditEvent).values(row[1]))

    async def page(
        self,
        *,
        event_types: Collection[str],
        user_id: uuid.UUID | None,
        client_id: str | None,
        limit: int,
        offset: int,
    ) -> tuple[int, list[AuditEvent]]:
        """How many events match the filters (they combine; no ``event_types`` is any type), and one page of
        them, newest first."""
        conditions: list[ColumnElement[bool]] = []
        if event_types:
            conditions.append(AuditEvent.event_type.in_(event_types))
        if user_id:
            conditions.append(AuditEvent.user_id == user_id)
        if client_id:
            conditions.append(AuditEvent.client_id == client_id)
        total = await self._session.scalar(select(func.count()).select_from(AuditEvent).where(*conditions))
        events = await self._session.scalars(
            select(AuditEvent).where(*conditions).order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
        )
        return int(total or 0), list(events)

    async def events_of(self, user_id: uuid.UUID, *, limit: int) -> list[AuditEvent]:
        """The person's first ``limit`` audit events, in the order they happened."""
        events = select(AuditEvent).where(AuditEvent.user_id == user_id).order_by(AuditEvent.id).limit(limit)
        return list(await self._session.scalars(events))
