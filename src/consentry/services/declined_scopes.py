"""Letting an app ask again for scopes the person declined (SPEC §6: declined scopes are not asked again
until the app sends ``prompt=consent``; the person can lift that from Connected apps)."""

from __future__ import annotations

import uuid
from datetime import datetime

from consentry.domain.scopes import Scopes
from consentry.errors import InvalidRequestError, NotFoundError
from consentry.runtime import Runtime
from consentry.services.consent_grants import consent_changed
from consentry.storage.audit import RequestOrigin
from consentry.storage.consents import ConsentRepository


async def ask_again(
    runtime: Runtime,
    user_id: uuid.UUID,
    client_id: str,
    scopes: Scopes,
    *,
    origin: RequestOrigin,
    now: datetime,
) -> Scopes:
    """Forget that the person declined ``scopes``: the app's next request for one shows the consent screen.

    Nothing is granted here (the app has to ask). Returns the scopes still declined.
    """
    async with runtime.database.unit_of_work() as session:
        consents = ConsentRepository(session)
        consent = await consents.get_active_for_update(user_id, client_id)
        if consent is None or now >= consent.expires_at:
            raise NotFoundError("no remembered consent for this application")
        if not scopes <= consent.declined_scopes:
            unknown = (scopes - consent.declined_scopes).format()
            raise InvalidRequestError(f"not declined for this application: {unknown}")
        consent.declined_scopes = consent.declined_scopes - scopes
        details = {
            "action": "asked_again",
            "asked_again": scopes.as_list(),
            "declined_scopes": consent.declined_scopes.as_list(),
        }
        await consent_changed(
            session,
            consent,
            "asked_again",
            actor="user",
            scopes_before=consent.scopes,
            origin=origin,
            now=now,
            details=details,
        )
        return consent.declined_scopes
