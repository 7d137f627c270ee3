"""Purging what has expired, in bounded batches that never hold a long lock (STYLE habit 8).

Each statement touches at most ``batch`` rows (``DELETE ... WHERE pk IN (SELECT pk ... LIMIT n)``), and each
batch is its own short transaction, so the token endpoint keeps answering while millions of rows go.
Consents are not deleted but marked ``expired``, with a history row each: they are part of a person's record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select

from consentry.domain.consent import ConsentStatus
from consentry.domain.registration import RegistrationStatus
from consentry.domain.webhooks import OutboxStatus
from consentry.runtime import Runtime
from consentry.services.accounts import purge_deleted_accounts
from consentry.services.consents import end_consents
from consentry.storage.records import (
    AccessToken,
    AuditEvent,
    AuthorizationCode,
    Consent,
    RefreshToken,
    RegistrationRequest,
    SigninFlow,
    UserSession,
    WebhookOutbox,
)

DELIVERED_WEBHOOK_RETENTION = timedelta(days=7)
DEAD_WEBHOOK_RETENTION = timedelta(days=30)
ENDED_SESSION_RETENTION = timedelta(days=1)
# How long register-status answers for a finished registration (then the request, and its address, go).
FINISHED_REGISTRATION_RETENTION = timedelta(days=7)

Progress = Callable[[str, int], None]


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


def purges(runtime: Runtime) -> list[Purge]:
    audit_retention = timedelta(days=runtime.settings.audit_retention_days)
    return [
        Purge(
            "authorization_codes", AuthorizationCode.code_hash, lambda now: AuthorizationCode.expires_at < now
        ),
        Purge("access_tokens", AccessToken.token_hash, lambda now: AccessToken.expires_at < now),
        Purge("refresh_tokens", RefreshToken.token_hash, lambda now: RefreshToken.expires_at < now),
        Purge("sessions", UserSession.id, _ended_sessions),
        Purge("signin_flows", SigninFlow.id, lambda now: SigninFlow.expires_at < now),
        Purge("webhooks", WebhookOutbox.id, _old_webhooks),
        Purge("registration_requests", RegistrationRequest.id, _finished_registrations),
        Purge("audit_events", AuditEvent.id, lambda now: AuditEvent.occurred_at < now - audit_retention),
    ]


@dataclass
class CleanupReport:
    counts: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False


async def run_cleanup(
    runtime: Runtime, *, now: datetime, dry_run: bool = False, progress: Progress | None = None
) -> CleanupReport:
    batch = runtime.settings.cleanup_batch_size
    report = CleanupReport(dry_run=dry_run)
    if not dry_run:
        report.counts["accounts_purged"] = await purge_deleted_accounts(runtime, now=now, batch=batch)
    report.counts["consents_expired"] = await _expire_consents(
        runtime, now=now, batch=batch, dry_run=dry_run, progress=progress
    )
    for purge in purges(runtime):
        report.counts[purge.name] = await _purge(
            runtime, purge, now=now, batch=batch, dry_run=dry_run, progress=progress
        )
    return report


async def _purge(
    runtime: Runtime, purge: Purge, *, now: datetime, batch: int, dry_run: bool, progress: Progress | None
) -> int:
    table = purge.key.class_
    condition = purge.condition(now)
    if dry_run:
        async with runtime.database.read_only() as session:
            return int(await session.scalar(select(func.count()).select_from(table).where(condition)) or 0)
    total = 0
    while True:
        async with runtime.database.unit_of_work() as session:
            # SKIP LOCKED (PostgreSQL; ignored on SQLite): concurrent purgers - several workers, or the CLI
            # beside a worker - take different rows instead of deadlocking on the same ones.
            chosen = (
                select(purge.key)
                .where(condition)
                .limit(batch)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            result = await session.execute(
                delete(table).where(purge.key.in_(chosen)).execution_options(synchronize_session=False)
            )
        removed = int(getattr(result, "rowcount", 0) or 0)
        total += removed
        if progress and removed:
            progress(purge.name, removed)
        if removed < batch:
            return total
        await asyncio.sleep(
            runtime.settings.cleanup_pause_seconds
        )  # let live requests through between batches


async def _expire_consents(
    runtime: Runtime, *, now: datetime, batch: int, dry_run: bool, progress: Progress | None
) -> int:
    """Consents past their expiry end as expired: history, audit event and ``consent.expired`` each."""
    due = (Consent.status == ConsentStatus.ACTIVE) & (Consent.expires_at < now)
    if dry_run:
        async with runtime.database.read_only() as session:
            return int(await session.scalar(select(func.count()).select_from(Consent).where(due)) or 0)
    total = 0
    while True:
        async with runtime.database.unit_of_work() as session:
            ended = await end_consents(
                runtime, session, due, action="expired", actor="system", origin=None, now=now, limit=batch,
                skip_locked=True,
            )  # fmt: skip
        total += len(ended)
        if progress and ended:
            progress("consents_expired", len(ended))
        if len(ended) < batch:
            return total
