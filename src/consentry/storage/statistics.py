"""Operator statistics (SPEC §5): each figure one aggregate query, on either backend."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Date, Integer, cast, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.domain.consent import ConsentStatus
from consentry.storage.tables import AccessToken, AuditEvent, Client, Consent


def _day(column: Any, dialect: str) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp, on either backend."""
    if dialect == "postgresql":
        return cast(column.op("AT TIME ZONE")(literal_column("'UTC'")), Date)
    return func.date(column)


async def statistics(session: AsyncSession, *, dialect: str, now: datetime, top: int) -> dict[str, Any]:
    """SPEC §5's operator statistics, each figure one aggregate query."""
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
