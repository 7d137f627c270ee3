"""The webhook outbox: events queued in the transaction that caused them, claimed and settled by delivery."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.domain.webhooks import OutboxStatus
from consentry.storage.tables import Client, WebhookOutbox


@dataclass(frozen=True, slots=True)
class DueEvent:
    """An event claimed for delivery, with where it goes and the client's sealed signing secret."""

    event: WebhookOutbox
    url: str | None
    sealed_secret: str | None
    backchannel_logout_uri: str | None


class WebhookOutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, event: WebhookOutbox) -> None:
        self._session.add(event)

    async def claim_due(self, *, now: datetime, lease: timedelta, limit: int) -> list[DueEvent]:
        """Up to ``limit`` pending events due by ``now``, oldest first, each claimed by pushing its next
        attempt one ``lease`` on (a conditional UPDATE: two deliverers never claim the same event; on
        PostgreSQL they also skip each other's rows)."""
        query = (
            select(WebhookOutbox, Client.webhook_url, Client.webhook_secret, Client.backchannel_logout_uri)
            .join(Client, Client.id == WebhookOutbox.client_id)
            .where(WebhookOutbox.status == OutboxStatus.PENDING, WebhookOutbox.next_attempt_at <= now)
            .order_by(WebhookOutbox.next_attempt_at, WebhookOutbox.created_at)
            .limit(limit)
        )
        if self._session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=WebhookOutbox)
        claimed = []
        for event, url, sealed, logout_uri in await self._session.execute(query):
            result = await self._session.execute(
                update(WebhookOutbox)
                .where(WebhookOutbox.id == event.id, WebhookOutbox.next_attempt_at == event.next_attempt_at)
                .values(next_attempt_at=now + lease)
            )
            if getattr(result, "rowcount", 0) == 1:
                claimed.append(DueEvent(event, url, sealed, logout_uri))
        return claimed

    async def renew_leases(self, held: Mapping[uuid.UUID, datetime], *, until: datetime) -> set[uuid.UUID]:
        """Extend the leases this deliverer still holds (each event's ``next_attempt_at`` as it claimed or
        last renewed it) to ``until``; an event whose lease ran out and that another deliverer took is left
        alone. Returns the events whose lease was extended."""
        renewed = set()
        for event_id, lease_until in held.items():
            result = await self._session.execute(
                update(WebhookOutbox)
                .where(
                    WebhookOutbox.id == event_id,
                    WebhookOutbox.status == OutboxStatus.PENDING,
                    WebhookOutbox.next_attempt_at == lease_until,
                )
                .values(next_attempt_at=until)
            )
            if getattr(result, "rowcount", 0) == 1:
                renewed.add(event_id)
        return renewed

    async def settle(self, event_id: uuid.UUID, outcome: dict[str, Any]) -> None:
        """What one delivery attempt came to: delivered, dead, or its next attempt."""
        await self._session.execute(
            update(WebhookOutbox).where(WebhookOutbox.id == event_id).values(**outcome)
        )

    async def by_status(self, status: OutboxStatus, *, limit: int) -> list[WebhookOutbox]:
        """The newest ``limit`` events in ``status``."""
        return list(
            await self._session.scalars(
                select(WebhookOutbox)
                .where(WebhookOutbox.status == status)
                .order_by(WebhookOutbox.created_at.desc())
                .limit(limit)
            )
        )
