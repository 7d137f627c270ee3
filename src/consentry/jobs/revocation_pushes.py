"""Pushing revocations to the resources that registered a webhook URL (SPEC §7): ``tokens.revoked`` with the
revoked tokens' ``jti``s, from the same feed resource servers read, through the webhook outbox.

Each push covers the feed from where the last one ended; a revocation committed late (its time before that
point) goes out with the next push, and every resource server also reads the feed itself. Two workers may
push the same revocations: a receiver drops what it knows by ``jti``.
"""

from __future__ import annotations

from datetime import datetime

from consentry.domain.revocation_feed import FeedCursor
from consentry.runtime import Runtime
from consentry.services.webhooks import enqueue_event
from consentry.storage.resources import CatalogueRepository
from consentry.storage.tokens import TokenRepository

PAGE = 1000


async def push_revocations(runtime: Runtime, *, now: datetime) -> int:
    """Queue the news of each resource's feed; returns how many revocations were queued."""
    pushed = 0
    for resource in (await runtime.clients.catalogue()).resources.values():
        credentials = await runtime.clients.get(resource.client_id)
        if credentials is None or not credentials.webhook_url:
            continue
        async with runtime.database.read_only() as session:  # most rounds find nothing: no write
            record = await CatalogueRepository(session).resource(resource.id)
            if record is None:
                continue
            cursor = (
                FeedCursor.decode(record.pushed_until)
                if record.pushed_until
                else FeedCursor(record.created_at, "", caught_up=False)
            )
            page = await TokenRepository(session).revocations_for(
                resource.identifier, after=cursor.read_after(), now=now, limit=PAGE
            )
        news = [r for r in page if (r.revoked_at, r.jti) > (cursor.revoked_at, cursor.jti)]
        if not news:
            continue
        data = {
            "resource": resource.identifier,
            "revoked": [{"jti": r.jti, "exp": int(r.expires_at.timestamp())} for r in page],
        }
        last = news[-1]
        async with runtime.database.unit_of_work() as session:
            await enqueue_event(session, credentials, "tokens.revoked", data, now=now)
            await CatalogueRepository(session).advance_pushes(
                resource.id, FeedCursor(last.revoked_at, last.jti, caught_up=len(page) < PAGE).encode()
            )
        pushed += len(news)
    return pushed
