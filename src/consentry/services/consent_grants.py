"""Recording consent: grant or merge, with history and audit, in the caller's transaction."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from consentry.domain import consent as rules
from consentry.domain.clients import RegisteredClient
from consentry.domain.consent import ConsentStatus
from consentry.domain.scopes import Scopes
from consentry.services.webhooks import EventType, enqueue
from consentry.storage.audit import AuditRepository, RequestOrigin
from consentry.storage.consents import ConsentRepository, to_stored
from consentry.storage.database import Transaction, savepoint
from consentry.storage.records import Consent

if TYPE_CHECKING:
    from consentry.runtime import Runtime

log = logging.getLogger(__name__)


def consent_ttl(client: RegisteredClient, default_days: int) -> timedelta:
    """The client's own consent TTL, else the deployment's (SPEC §6)."""
    return timedelta(days=client.consent_ttl_days or default_days)


async def record_consent(
    runtime: Runtime,
    session: Transaction,
    existing: Consent | None,
    *,
    user_id: uuid.UUID,
    client: RegisteredClient,
    requested: Scopes,
    granted: Scopes,
    ttl: timedelta,
    now: datetime,
    origin: RequestOrigin | None,
    actor: str = "user",
) -> uuid.UUID | None:
    """Store or merge the consent; returns its id, or None when storing failed. ``existing`` is the person's
    active consent for the client, read for update by the caller.

    A failure to store consent never blocks the person's redirect (SPEC §6): it is logged, and the change is
    confined to a savepoint so the code can still be issued in the same transaction.
    """
    try:
        async with savepoint(session):
            consent_id, action, scopes = await _record(
                session, existing, user_id, client, requested, granted, ttl, now, origin, actor
            )
            event: EventType = "consent.granted" if action == "granted" else "consent.updated"
            await enqueue(runtime, session, client, event, user_id=user_id, scopes=scopes, now=now)
            return consent_id
    except Exception:
        log.exception("failed to store consent", extra={"user_id": str(user_id), "client_id": client.id})
        return None


async def _record(
    session: Transaction,
    existing: Consent | None,
    user_id: uuid.UUID,
    client: RegisteredClient,
    requested: Scopes,
    granted: Scopes,
    ttl: timedelta,
    now: datetime,
    origin: RequestOrigin | None,
    actor: str,
) -> tuple[uuid.UUID, str, Scopes]:
    consents = ConsentRepository(session)
    stored = to_stored(existing) if existing is not None else None
    merged = rules.merge(stored, requested=requested, granted=granted, ttl=ttl, now=now)
    before: Scopes | None = None
    if existing is not None and stored is not None and stored.is_live(now=now):
        before = existing.scopes
        record = existing
        record.scopes = merged.scopes
        record.declined_scopes = merged.declined_scopes
        record.expires_at = merged.expires_at
        record.policy_version = client.policy_version
        record.updated_at = now
        action = "merged" if merged.scopes != before else "renewed"
    else:
        if existing is not None:  # past its expiry: close it, keep it as history
            await consents.close_expired(existing, now=now)
        record = await consents.add(
            Consent(
                user_id=user_id,
                client_id=client.id,
                scopes=merged.scopes,
                declined_scopes=merged.declined_scopes,
                policy_version=client.policy_version,
                status=ConsentStatus.ACTIVE,
                granted_at=now,
                updated_at=now,
                last_used_at=now,
                expires_at=merged.expires_at,
            )
        )
        action = "granted"
    await consents.record_change(record, action, actor=actor, scopes_before=before, origin=origin, now=now)
    await AuditRepository(session).record(
        "consent_granted" if action == "granted" else "consent_updated",
        now=now,
        origin=origin,
        user_id=user_id,
        client_id=client.id,
        scopes=record.scopes,
        actor=actor,
        details={"declined_scopes": record.declined_scopes.as_list(), "action": action},
    )
    return record.id, action, record.scopes


async def consent_changed(
    session: Transaction,
    consent: Consent,
    action: str,
    *,
    actor: str,
    scopes_before: Scopes,
    origin: RequestOrigin | None,
    now: datetime,
    details: dict[str, Any],
) -> None:
    """A change just made to a live consent (narrowed, a declined scope lifted): its history row and its
    ``consent_updated`` audit event."""
    consent.updated_at = now
    await ConsentRepository(session).record_change(
        consent, action, actor=actor, scopes_before=scopes_before, origin=origin, now=now
    )
    await AuditRepository(session).record(
        "consent_updated",
        now=now,
        origin=origin,
        user_id=consent.user_id,
        client_id=consent.client_id,
        scopes=consent.scopes,
        actor=actor,
        details=details,
    )
