"""Deleting a client or an account revokes its consents and tokens the same way a person's revocation does."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timedelta

from consentry.domain.accounts import UserStatus
from consentry.errors import ForbiddenError, NotFoundError
from consentry.runtime import Runtime
from consentry.services.consent_endings import end_all_consents, revoke_consent
from consentry.services.sessions import SignedIn
from consentry.services.webhooks import queue_logout_tokens
from consentry.storage.audit import AuditRepository, RequestOrigin
from consentry.storage.clients import ClientRepository
from consentry.storage.consents import ConsentRepository, ConsentsOf
from consentry.storage.sessions import SessionRepository
from consentry.storage.tokens import TokenRepository
from consentry.storage.users import UserRepository


async def delete_client(
    runtime: Runtime,
    client_id: str,
    by: SignedIn | None,
    *,
    actor: str | None = None,
    origin: RequestOrigin,
    now: datetime,
) -> None:
    """Soft delete: the client stops working at once; every consent and token it held is revoked in bulk.

    ``by`` is the person asking (its owner or an admin); None means the operator's CLI, or with ``actor``
    "client" a self-registered client deleting itself (RFC 7592).
    """
    registered = await runtime.clients.get(client_id)  # as it was: its consents' webhooks go to it
    async with runtime.database.unit_of_work() as session:
        client = await ClientRepository(session).get_record(client_id, for_update=True)
        if client is None or client.deleted_at is not None:
            raise NotFoundError("no such client")
        if by is not None and not by.is_admin and client.owner_id != by.user_id:
            raise NotFoundError("no such client")  # someone else's client is not even acknowledged
        client.deleted_at = now
        client.updated_at = now
        await TokenRepository(session).revoke_tokens_of_client(client_id, now=now)
        by_whom = "admin" if by is not None and by.is_admin and client.owner_id != by.user_id else "user"
        await end_all_consents(
            runtime, session, ConsentsOf(client_id=client_id), actor="system", origin=origin, now=now,
            client=registered,
        )  # fmt: skip
        await AuditRepository(session).record(
            "client_deleted",
            now=now,
            origin=origin,
            user_id=by.user_id if by else None,
            client_id=client_id,
            actor=actor or ("admin" if by is None else by_whom),
        )
    runtime.clients.invalidate(client_id)


async def delete_account(
    runtime: Runtime, user_id: uuid.UUID, *, grace: timedelta, origin: RequestOrigin, now: datetime
) -> datetime:
    """Soft delete with a grace period: sign-in stops, sessions end, every app loses access (each client is
    told, as for a revocation); the record is kept, restorable, until ``purge_after``."""
    async with runtime.database.read_only() as session:
        client_ids = await ConsentRepository(session).clients_consented_by(user_id)
    for client_id in client_ids:
        with contextlib.suppress(NotFoundError):  # revoked meanwhile
            await revoke_consent(runtime, user_id, client_id, actor="user", origin=origin, now=now)
    async with runtime.database.unit_of_work() as session:
        user = await UserRepository(session).get_user(user_id, for_update=True)
        if user is None or user.status != UserStatus.ACTIVE:
            raise ForbiddenError("this account is already deleted")
        purge_after = now + grace
        user.status = UserStatus.DELETED
        user.deleted_at = now
        user.purge_after = purge_after
        user.updated_at = now
        # grants that had no remembered consent
        await TokenRepository(session).revoke_tokens_of_users((user_id,), now=now)
        ended = await SessionRepository(session).end_all_of(user_id, now=now)
        await queue_logout_tokens(runtime, session, dict.fromkeys(ended, user_id), now=now)
        await AuditRepository(session).record(
            "user_deleted",
            now=now,
            origin=origin,
            user_id=user_id,
            details={"purge_after": purge_after.isoformat()},
        )
    return purge_after
