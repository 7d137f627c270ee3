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

from consentry.runtime import Runtime
from consentry.services.accounts import purge_deleted_accounts
from consentry.services.consent_endings import end_consents
from consentry.storage.consents import ConsentRepository, ConsentsOf
from consentry.storage.purges import Purge, count_due, delete_due, purges

Progress = Callable[[str, int], None]


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
    for purge in purges(audit_retention=timedelta(days=runtime.settings.audit_retention_days)):
        report.counts[purge.name] = await _purge(
            runtime, purge, now=now, batch=batch, dry_run=dry_run, progress=progress
        )
    return report


async def _purge(
    runtime: Runtime, purge: Purge, *, now: datetime, batch: int, dry_run: bool, progress: Progress | None
) -> int:
    if dry_run:
        async with runtime.database.read_only() as session:
            return await count_due(session, purge, now=now)
    total = 0
    while True:
        async with runtime.database.unit_of_work() as session:
            removed = await delete_due(session, purge, now=now, limit=batch)
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
    due = ConsentsOf(expired_by=now)
    if dry_run:
        async with runtime.database.read_only() as session:
            return await ConsentRepository(session).count_active(due)
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
