"""The person's connected apps (SPEC §4): each app a live consent lets in, with what it may see."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from consentry.domain.scopes import Scopes
from consentry.runtime import Runtime
from consentry.storage.consents import ConsentRepository


@dataclass(frozen=True, slots=True)
class ConnectedApp:
    client_id: str
    client_name: str
    logo_uri: str | None
    client_uri: str | None
    scopes: Scopes
    granted_at: datetime
    last_used: datetime | None
    expires_at: datetime


async def connected_apps(runtime: Runtime, user_id: uuid.UUID, *, now: datetime) -> list[ConnectedApp]:
    """Consents that still let an app in: active and not past their expiry, newest first."""
    async with runtime.database.read_only() as session:
        rows = await ConsentRepository(session).live_with_clients(user_id, now=now)
        return [
            ConnectedApp(
                client.id,
                client.name,
                client.logo_uri,
                client.client_uri,
                consent.scopes,
                consent.granted_at,
                consent.last_used_at,
                consent.expires_at,
            )
            for consent, client in rows
        ]
