"""The person's connected apps (SPEC §4): each app a live consent lets in, with what it may see."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from consentry.domain.clients import ClientRegistration, verified_host
from consentry.domain.scopes import Scopes
from consentry.runtime import Runtime
from consentry.storage.consents import ConsentRepository
from consentry.storage.tokens import TokenRepository


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
    remembered: bool  # False: an approval not remembered, that lasts as long as its tokens
    declined_scopes: Scopes = field(default_factory=Scopes)  # not asked again until the person lets it
    registered_itself_on: datetime | None = None  # SPEC §8: a client no operator registered
    verified_host: str | None = None  # a client ID metadata document's: the host that served it

    def as_json(self) -> dict[str, Any]:
        """SPEC §4's shape of one entry of ``GET /api/v1/oauth2/consents``."""
        return {
            "client_id": self.client_id,
            "client_name": self.client_name,
            "logo_uri": self.logo_uri,
            "scopes": self.scopes.as_list(),
            "granted_at": self.granted_at.isoformat(),
            "last_used": self.last_used.isoformat() if self.last_used else None,
            "expires_at": self.expires_at.isoformat(),
            "remembered": self.remembered,
            "declined_scopes": self.declined_scopes.as_list(),
            "registered_itself_on": self.registered_itself_on.isoformat()
            if self.registered_itself_on
            else None,
            "verified_host": self.verified_host,
        }


async def connected_apps(runtime: Runtime, user_id: uuid.UUID, *, now: datetime) -> list[ConnectedApp]:
    """Every app that can see the person now (SPEC §4), newest first: a live remembered consent, or an
    approval not remembered whose tokens still live (until the last of them expires)."""
    async with runtime.database.read_only() as session:
        remembered = await ConsentRepository(session).live_with_clients(user_id, now=now)
        one_time = await TokenRepository(session).one_time_grants(user_id, now=now)
    apps = [
        ConnectedApp(
            client.id,
            client.name,
            client.logo_uri,
            client.client_uri,
            consent.scopes,
            consent.granted_at,
            consent.last_used_at,
            consent.expires_at,
            remembered=True,
            declined_scopes=consent.declined_scopes - consent.scopes,
            registered_itself_on=client.created_at
            if client.registered_by is not ClientRegistration.OPERATOR
            else None,
            verified_host=verified_host(client.id, client.registered_by),
        )
        for consent, client in remembered
    ]
    consented = {app.client_id for app in apps}
    for grant in one_time:
        client = await runtime.clients.get(grant.client_id)
        if client is None or grant.client_id in consented:
            continue
        apps.append(
            ConnectedApp(
                client.id,
                client.name,
                client.logo_uri,
                client.client_uri,
                grant.scopes,
                grant.granted_at,
                grant.last_issued_at,
                grant.expires_at,
                remembered=False,
                registered_itself_on=client.created_at if client.registered_itself else None,
                verified_host=client.verified_host,
            )
        )
    return sorted(apps, key=lambda app: app.granted_at, reverse=True)
