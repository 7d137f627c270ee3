"""Operator views and bulk actions (SPEC §5): statistics in SQL, bulk changes as single statements."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Date, Integer, cast, func, literal_column, or_, select, update

from consentry.domain.accounts import UserStatus
from consentry.domain.consent import ConsentStatus
from consentry.runtime import Runtime
from consentry.services.consents import end_all_consents
from consentry.storage.audit import AuditRepository, RequestOrigin
from consentry.storage.records import (
    AccessToken,
    AuditEvent,
    Client,
    Consent,
    RefreshToken,
    User,
    UserSession,
)

BulkAction = Literal[
    "soft_delete", "restore", "verify_email", "unverify_email", "verify_phone", "unverify_phone"
]


def _day(column: Any, dialect: str) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp, on either backend."""
    if dialect == "postgresql":
        return cast(column.op("AT TIME ZONE")(literal_column("'UTC'")), Date)
    return func.date(column)


async def statistics(runtime: Runtime, *, now: datetime, top: int = 10) -> dict[str, Any]:
    dialect = runtime.database.dialect
    async with runtime.database.read_only() as session:
        users = (
            select(Consent.client_id, func.count(func.distinct(Consent.user_id)).label("users"))
            .where(Consent.status == ConsentStatus.ACTIVE, Consent.expires_at > now)
            .group_by(Consent.client_id)
            .subquery()
        )
        tokens = (
            select(AccessToken.client_id, func.count().label("tokens"))
            .where(AccessToken.revoked_at.is_(None), AccessToken.expires_at > now)
            .group_by(AccessToken.client_id)
            .subquery()
        )
        users_count = func.coalesce(users.c.users, 0)
        tokens_count = func.coalesce(tokens.c.tokens, 0)
        top_clients = (
            await session.execute(
                select(Client.id, Client.name, users_count, tokens_count)
                .outerjoin(users, users.c.client_id == Client.id)
                .outerjoin(tokens, tokens.c.client_id == Client.id)
                .where(Client.deleted_at.is_(None))
                .order_by(users_count.desc(), tokens_count.desc(), Client.id)
                .limit(top)
            )
        ).all()
        day = _day(AuditEvent.occurred_at, dialect).label("day")
        activity = (
            await session.execute(
                select(day, AuditEvent.event_type, func.count())
                .where(AuditEvent.occurred_at >= now - timedelta(days=30))
                .group_by(day, AuditEvent.event_type)
                .order_by(day, AuditEvent.event_type)
            )
        ).all()
        refreshed = func.sum(func.cast(AuditEvent.event_type == "token_refreshed", Integer))
        issued = func.sum(func.cast(AuditEvent.event_type == "token_issued", Integer))
        refresh_rows = (
            await session.execute(
                select(AuditEvent.client_id, refreshed, issued)
                .where(
                    AuditEvent.occurred_at >= now - timedelta(days=7),
                    AuditEvent.client_id.is_not(None),
                    AuditEvent.event_type.in_(("token_refreshed", "token_issued")),
                )
                .group_by(AuditEvent.client_id)
                .order_by(refreshed.desc())
                .limit(top)
            )
        ).all()
    return {
        "generated_at": now.isoformat(),
        "top_clients": [
            {"client_id": cid, "client_name": name, "users": int(u), "live_access_tokens": int(t)}
            for cid, name, u, t in top_clients
        ],
        "activity_by_day": [{"day": str(d), "event_type": kind, "count": int(n)} for d, kind, n in activity],
        "refresh_rate_by_client": [
            {
                "client_id": cid,
                "refreshes": int(r or 0),
                "issued": int(i or 0),
                "refreshes_per_issue": round(int(r or 0) / int(i), 3) if i else None,
            }
            for cid, r, i in refresh_rows
        ],
    }


async def bulk_users(
    runtime: Runtime,
    action: BulkAction,
    user_ids: list[uuid.UUID],
    *,
    admin: uuid.UUID | None,
    origin: RequestOrigin,
    now: datetime,
) -> int:
    """One statement per table touched, whatever the number of accounts."""
    grace = timedelta(days=runtime.settings.account_deletion_grace_days)
    chosen = User.id.in_(user_ids)
    async with runtime.database.unit_of_work() as session:
        if action == "soft_delete":
            statement = (
                update(User)
                .where(chosen, User.status == UserStatus.ACTIVE)
                .values(status=UserStatus.DELETED, deleted_at=now, purge_after=now + grace, updated_at=now)
            )
        elif action == "restore":
            statement = (
                update(User)
                .where(chosen, User.status == UserStatus.DELETED, User.purge_after > now)
                .values(status=UserStatus.ACTIVE, deleted_at=None, purge_after=None, updated_at=now)
            )
        else:
            field = "email_verified" if action.endswith("email") else "phone_verified"
            statement = (
                update(User).where(chosen).values({field: action.startswith("verify"), "updated_at": now})
            )
        result = await session.execute(statement.execution_options(synchronize_session=False))
        affected = int(getattr(result, "rowcount", 0) or 0)
        if action == "soft_delete":
            for table in (AccessToken, RefreshToken):
                await session.execute(
                    update(table)
                    .where(table.user_id.in_(user_ids), table.revoked_at.is_(None))
                    .values(revoked_at=now)
                    .execution_options(synchronize_session=False)
                )
            await session.execute(
                update(UserSession)
                .where(UserSession.user_id.in_(user_ids), or_(UserSession.revoked_at.is_(None)))
                .values(revoked_at=now)
                .execution_options(synchronize_session=False)
            )
            await end_all_consents(
                runtime, session, Consent.user_id.in_(user_ids), actor="admin", origin=origin, now=now
            )
        await AuditRepository(session).record(
            "admin_bulk_users",
            now=now,
            origin=origin,
            user_id=admin,
            actor="admin",
            details={
                "action": action,
                "requested": len(user_ids),
                "affected": affected,
                "user_ids": [str(u) for u in user_ids[:1000]],
            },
        )
    return affected
