"""What cleanup deletes, and how one bounded batch of it goes (STYLE habit 8).

Each statement touches at most ``limit`` rows (``DELETE ... WHERE pk IN (SELECT pk ... LIMIT n)``), so a batch
is a short transaction that never holds a long lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.domain.registration import RegistrationStatus
from consentry.domain.webhooks import OutboxStatus
from consentry.storage.tables import (
    AccessToken,
    AuditEvent,
    AuthorizationCode,
    InitialAccessToken,
    RefreshToken,
    RegistrationRequest,
    SigninFlow,
    UpstreamAuthorization,
    UserSession,
    WebhookOutbox,
)

DELIVERED_WEBHOOK_RETENTION = timedelta(days=7)
DEAD_WEBHOOK_RETENTION = timedelta(days=30)
ENDED_SESSION_RETENTION = timedelta(days=1)
# How long register-status answers for a finished registration (then the request, and its address, go).
FINISHED_REGISTRATION_RETENTION = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Purge:
    name: str
    key: Any  # the primary-key column
    condition: Callable[[datetime], ColumnElement[bool]]


def _old_webhooks(now: datetime) -> ColumnElement[bool]:
    delivered = (WebhookOutbox.status == OutboxStatus.DELIVERED) & (
        WebhookOutbox.created_at < now - DELIVERED_WEBHOOK_RETENTION
    )
    dead = (WebhookOutbox.status == OutboxStatus.DEAD) & (
        WebhookOutbox.created_at < now - DEAD_WEBHOOK_RETENTION
    )
    return delivered | dead


def _ended_sessions(now: datetime) -> ColumnElement[bool]:
    return (UserSession.expires_at < now) | (UserSession.revoked_at < now - ENDED_SESSION_RETENTION)


def _finished_registrations(now: datetime) -> ColumnElement[bool]:
    finished = RegistrationRequest.status.in_((RegistrationStatus.COMPLETED, RegistrationStatus.FAILED))
    return finished & (RegistrationRequest.updated_at < now - FINISHED_REGISTRATION_RETENTION)


def _spent_initial_access_tokens(now: datetime) -> ColumnElement[bool]:
    return (InitialAccessToken.expires_at < now) | (InitialAccessToken.uses_left <= 0)


def purges(*, audit_retention: timedelta) -> list[Purge]:
    """Everything cleanup deletes once it is over, in order; audit events after ``audit_retention``."""
    return [
        Purge(
            "authorization_codes", AuthorizationCode.code_hash, lambda now: AuthorizationCode.expires_at < now
        ),
        Purge("access_tokens", AccessToken.token_hash, lambda now: AccessToken.expires_at < now),
        Purge("refresh_tokens", RefreshToken.token_hash, lambda now: RefreshToken.expires_at < now),
        Purge("sessions", UserSession.id, _ended_sessions),
        Purge("signin_flows", SigninFlow.id, lambda now: SigninFlow.expires_at < now),
        Purge(
            "upstream_authorizations",
            UpstreamAuthorization.state_hash,
            lambda now: UpstreamAuthorization.expires_at < now,
        ),
        Purge("webhooks", WebhookOutbox.id, _old_webhooks),
        Purge("registration_requests", RegistrationRequest.id, _finished_registrations),
        Purge("initial_access_tokens", InitialAccessToken.id, _spent_initial_access_tokens),
        Purge("audit_events", AuditEvent.id, lambda now: AuditEvent.occurred_at < now - audit_retention),
    ]


async def count_due(session: AsyncSession, purge: Purge, *, now: datetime) -> int:
    """How many rows ``purge`` would delete (a dry run)."""
    counted = select(func.count()).select_from(purge.key.class_).where(purge.condition(now))
    return int(await session.scalar(counted) or 0)


async def delete_due(session: AsyncSession, purge: Purge, *, now: datetime, limit: int) -> int:
    """Delete up to ``limit`` of ``purge``'s rows; how many went. SKIP LOCKED (PostgreSQL; ignored on SQLite):
    concurrent purgers (several workers, or the CLI beside a worker) take different rows instead of
    deadlocking on the same ones."""
    chosen = (
        select(purge.key)
        .where(purge.condition(now))
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await session.execute(
        delete(purge.key.class_).where(purge.key.in_(chosen)).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
