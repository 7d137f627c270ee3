"""Webhook events, written to the outbox in the same transaction as the change they announce (SPEC §5)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from consentry.domain.clients import RegisteredClient
from consentry.domain.scopes import Scopes
from consentry.domain.webhooks import OutboxStatus
from consentry.storage.database import Transaction
from consentry.storage.records import WebhookOutbox
from consentry.storage.tokens import TokenRepository
from consentry.storage.webhooks import WebhookOutboxRepository

if TYPE_CHECKING:
    from consentry.runtime import Runtime

EventType = Literal[
    "consent.granted",
    "consent.updated",
    "consent.revoked",
    "consent.expired",
    "tokens.revoked",
    "subjects.migrating",
]


# Back-Channel Logout 1.0: an outbox event whose delivery is a logout token POSTed to the client's
# backchannel_logout_uri (signed when it is sent, so a retry carries a fresh one), not a webhook.
BACKCHANNEL_LOGOUT = "backchannel.logout"


def message_id(outbox_id: uuid.UUID) -> str:
    """The ``webhook-id`` (Standard Webhooks): stable across retries, so receivers can deduplicate."""
    return f"msg_{outbox_id.hex}"


async def enqueue(
    runtime: Runtime,
    session: Transaction,
    client: RegisteredClient,
    event_type: EventType,
    *,
    user_id: uuid.UUID,
    scopes: Scopes,
    now: datetime,
) -> None:
    """Queue an event about one person for a client that has a webhook URL; ``sub`` is the one this client
    knows."""
    if not client.webhook_url:
        return
    data = {
        "client_id": client.id,
        "sub": await runtime.subjects.subject_for(session, user_id, client, now=now),
        "scopes": scopes.as_list(),
    }
    await enqueue_event(session, client, event_type, data, now=now)


async def enqueue_event(
    session: Transaction,
    client: RegisteredClient,
    event_type: EventType,
    data: dict[str, Any],
    *,
    now: datetime,
) -> None:
    """Queue ``data`` as a ``event_type`` event for a client that has a webhook URL, in the caller's
    transaction (the outbox: it is sent only if what it reports is committed)."""
    if not client.webhook_url:
        return
    outbox_id = uuid.uuid4()
    payload = {"id": message_id(outbox_id), "type": event_type, "occurred_at": now.isoformat(), "data": data}
    WebhookOutboxRepository(session).add(
        WebhookOutbox(
            id=outbox_id,
            client_id=client.id,
            event_type=event_type,
            payload=payload,
            status=OutboxStatus.PENDING,
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
    )


async def queue_logout_tokens(
    runtime: Runtime,
    session: Transaction,
    ended: Mapping[uuid.UUID, uuid.UUID],
    *,
    now: datetime,
) -> None:
    """Back-Channel Logout 1.0 §2.5: the sessions ended; every client that was issued a code or a token in
    one of them and registered a ``backchannel_logout_uri`` is sent a logout token naming the session
    (``sid``) and the person as it knows them (``sub``), from the outbox like webhooks. ``ended`` maps each
    session to its person."""
    if not ended:
        return
    outbox = WebhookOutboxRepository(session)
    for client_id, session_id in await TokenRepository(session).clients_issued_in(list(ended)):
        client = await runtime.clients.get(client_id)
        if client is None or not client.backchannel_logout_uri:
            continue
        outbox.add(
            WebhookOutbox(
                id=uuid.uuid4(),
                client_id=client.id,
                event_type=BACKCHANNEL_LOGOUT,
                payload={
                    "sub": await runtime.subjects.subject_for(session, ended[session_id], client, now=now),
                    "sid": str(session_id),
                },
                status=OutboxStatus.PENDING,
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )
