"""Operator views and bulk actions (SPEC §5): statistics in SQL, bulk changes as single statements."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from consentry.domain.accounts import BulkAction
from consentry.domain.identifiers import InvalidIdentifier, normalise_email, normalise_phone, parse_identifier
from consentry.domain.webhooks import OutboxStatus
from consentry.errors import ConflictError, InvalidRequestError, NotFoundError
from consentry.runtime import Runtime
from consentry.services.accounts import HELD_BY_ANOTHER, checked_profile, describe
from consentry.services.connected_apps import connected_apps
from consentry.services.consent_endings import end_all_consents
from consentry.services.export import audit_entry
from consentry.services.linked_accounts import link_statistics, linked_accounts_of
from consentry.services.webhooks import queue_logout_tokens
from consentry.storage.audit import AuditRepository, RequestOrigin
from consentry.storage.consents import ConsentsOf
from consentry.storage.records import User
from consentry.storage.sessions import SessionRepository
from consentry.storage.statistics import statistics as read_statistics
from consentry.storage.tokens import TokenRepository
from consentry.storage.upstreams import LinkedAccountRepository
from consentry.storage.users import UserRepository
from consentry.storage.webhooks import WebhookOutboxRepository


async def statistics(runtime: Runtime, *, now: datetime, top: int = 10) -> dict[str, Any]:
    async with runtime.database.read_only() as session:
        figures = await read_statistics(session, dialect=runtime.database.dialect, now=now, top=top)
        return figures | await link_statistics(session)


def _account(user: User) -> dict[str, Any]:
    return {
        **describe(user),
        "status": user.status.value,
        "deleted_at": user.deleted_at.isoformat() if user.deleted_at else None,
        "purge_after": user.purge_after.isoformat() if user.purge_after else None,
    }


async def look_up_users(
    runtime: Runtime,
    *,
    identifier: str | None,
    user_id: uuid.UUID | None,
    linked: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Accounts, deleted ones included, by email or phone (normalised as at sign-in), by id, or by a linked
    upstream account ``(provider, provider_uid)`` (SPEC §9, §10)."""
    email = phone = None
    if identifier:
        try:
            found = parse_identifier(identifier)
        except InvalidIdentifier as exc:
            raise InvalidRequestError(exc.message, values=exc.values) from None
        email, phone = (found.value, None) if found.kind == "email" else (None, found.value)
    async with runtime.database.read_only() as session:
        users = UserRepository(session)
        accounts = await users.look_up(email=email, phone=phone, user_id=user_id)
        holder = await LinkedAccountRepository(session).user_id_of(*linked) if linked else None
        if holder is not None and all(user.id != holder for user in accounts):
            accounts += await users.look_up(email=None, phone=None, user_id=holder)
        return [_account(user) for user in accounts]


async def list_users(runtime: Runtime, *, limit: int, offset: int) -> list[dict[str, Any]]:
    """Accounts, deleted ones included, newest first (an operator's list)."""
    async with runtime.database.read_only() as session:
        return [_account(user) for user in await UserRepository(session).listed(limit=limit, offset=offset)]


async def user_overview(runtime: Runtime, user_id: uuid.UUID, *, now: datetime) -> dict[str, Any]:
    """One account as an administrator helping its owner sees it: profile, verification, state, live
    sessions, the apps that can see it, and linked accounts (SPEC §9)."""
    async with runtime.database.read_only() as session:
        user = await UserRepository(session).get_user(user_id)
        if user is None:
            raise NotFoundError("no such user")
        sessions = await SessionRepository(session).live_of(user_id, now=now)
        account = _account(user)
        linked = await linked_accounts_of(session, user_id)
    apps = await connected_apps(runtime, user_id, now=now)
    return {
        **account,
        "sessions": [
            {
                "session_id": str(s.id),
                "created_at": s.created_at.isoformat(),
                "last_seen_at": s.last_seen_at.isoformat() if s.last_seen_at else None,
                "expires_at": s.expires_at.isoformat(),
                "ip": s.ip,
                "user_agent": s.user_agent,
            }
            for s in sessions
        ],
        "consents": [app.as_json() for app in apps],
        "linked_accounts": linked,
    }


async def update_user(
    runtime: Runtime, user_id: uuid.UUID, changes: dict[str, Any], *, origin: RequestOrigin, now: datetime
) -> dict[str, Any]:
    """An operator's change to an account: profile fields, the admin role, an email or phone (unverified
    unless ``email_verified``/``phone_verified`` say the operator checked it: ``user create --verified``)."""
    async with runtime.database.unit_of_work() as session:
        users = UserRepository(session)
        user = await users.get_user(user_id, for_update=True)
        if user is None:
            raise NotFoundError("no such user")
        for kind, normalise in (("email", normalise_email), ("phone", normalise_phone)):
            if kind not in changes:
                continue
            try:
                value = normalise(changes[kind]) if changes[kind] else None
            except InvalidIdentifier as exc:
                raise InvalidRequestError(exc.message, values=exc.values) from None
            if value is not None and await users.held_by_another(kind, value, user.id):
                raise ConflictError(HELD_BY_ANOTHER[kind])
            if value != getattr(user, kind):
                setattr(user, kind, value)
                setattr(user, f"{kind}_verified", False)
        for field, value in checked_profile(changes).items():
            setattr(user, field, value or None)
        for field in ("email_verified", "phone_verified", "is_admin"):
            if field in changes:
                setattr(user, field, changes[field])
        user.updated_at = now
        await AuditRepository(session).record(
            "user_updated",
            now=now,
            origin=origin,
            user_id=user.id,
            actor="admin",
            details={"fields": sorted(changes)},
        )
        return _account(user)


async def audit_trail(
    runtime: Runtime,
    *,
    event_types: Collection[str],
    user_id: uuid.UUID | None,
    client_id: str | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """One page of the audit trail, newest first; the filters combine (no ``event_types``: any type)."""
    async with runtime.database.read_only() as session:
        total, events = await AuditRepository(session).page(
            event_types=event_types, user_id=user_id, client_id=client_id, limit=limit, offset=offset
        )
        return {"events": [audit_entry(e) for e in events], "total": total, "limit": limit, "offset": offset}


async def webhook_deliveries(runtime: Runtime, status: OutboxStatus, *, limit: int) -> list[dict[str, Any]]:
    """The newest webhook events in one state; ``dead`` ones gave up after their retries."""
    async with runtime.database.read_only() as session:
        return [
            {
                "id": row.payload.get("id"),
                "client_id": row.client_id,
                "type": row.event_type,
                "status": row.status.value,
                "attempts": row.attempts,
                "last_error": row.last_error,
                "created_at": row.created_at.isoformat(),
                "next_attempt_at": row.next_attempt_at.isoformat(),
            }
            for row in await WebhookOutboxRepository(session).by_status(status, limit=limit)
        ]


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
    async with runtime.database.unit_of_work() as session:
        affected = await UserRepository(session).apply_bulk(action, user_ids, grace=grace, now=now)
        if action == "soft_delete":
            await TokenRepository(session).revoke_tokens_of_users(user_ids, now=now)
            ended = await SessionRepository(session).end_all_of_users(user_ids, now=now)
            await queue_logout_tokens(runtime, session, ended, now=now)
            await end_all_consents(
                runtime, session, ConsentsOf(user_ids=user_ids), actor="admin", origin=origin, now=now
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
