"""Sign-in sessions: created at sign-in completion, found by cookie or Bearer token, ended on logout."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from consentry.crypto.hashing import new_token, token_hash
from consentry.runtime import Runtime
from consentry.services.webhooks import queue_logout_tokens
from consentry.storage.audit import AuditRepository, RequestOrigin
from consentry.storage.database import Database, Transaction
from consentry.storage.group_commit import Row, add_rows
from consentry.storage.records import UserSession
from consentry.storage.sessions import USER_SESSIONS, SessionLookup, SessionRepository
from consentry.storage.tokens import TokenRepository

SESSION_COOKIE = "consentry_session"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The person behind a request."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    auth_time: datetime
    is_admin: bool


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str
    session_id: uuid.UUID
    expires_at: datetime


def new_session(
    user_id: uuid.UUID,
    *,
    now: datetime,
    ttl: timedelta,
    origin: RequestOrigin | None = None,
    auth_time: datetime | None = None,
) -> tuple[NewSession, Row]:
    """A sign-in session: the token for the person, and the row to store (by the token's hash)."""
    token, session_id = new_token(), uuid.uuid4()
    origin = origin or RequestOrigin()
    row = {
        "id": session_id,
        "token_hash": token_hash(token),
        "user_id": user_id,
        "auth_time": auth_time or now,
        "created_at": now,
        "last_seen_at": now,
        "expires_at": now + ttl,
        "ip": origin.ip,
        "user_agent": origin.user_agent,
    }
    return NewSession(token=token, session_id=session_id, expires_at=now + ttl), (USER_SESSIONS, row)


async def create_session(
    session: Transaction,
    user_id: uuid.UUID,
    *,
    now: datetime,
    ttl: timedelta,
    origin: RequestOrigin | None = None,
    auth_time: datetime | None = None,
) -> NewSession:
    created, row = new_session(user_id, now=now, ttl=ttl, origin=origin, auth_time=auth_time)
    await add_rows(session, row)
    return created


async def authenticate_session(
    sessions: SessionLookup, token: str | None, *, now: datetime
) -> SignedIn | None:
    """The live session a token belongs to, or None."""
    if not token or len(token) > 256:
        return None
    found = await sessions.find_live(token_hash(token), now=now)
    if found is None:
        return None
    return SignedIn(found.user_id, found.session_id, found.auth_time, found.is_admin)


async def end_session(runtime: Runtime, signed_in: SignedIn, *, now: datetime) -> None:
    """Sign-out: the session ends, and with it what apps were issued in it but a grant with
    ``offline_access``; the apps that registered for it hear of it by back-channel (SPEC §9)."""
    async with runtime.database.unit_of_work() as session:
        await SessionRepository(session).end(signed_in.session_id, now=now)
        await _ended(runtime, session, signed_in.user_id, [signed_in.session_id], now=now)


async def _ended(
    runtime: Runtime, session: Transaction, user_id: uuid.UUID, session_ids: list[uuid.UUID], *, now: datetime
) -> None:
    """What follows sessions' end: their grants end (but offline_access), logout tokens are queued."""
    if session_ids:
        await TokenRepository(session).end_session_grants(session_ids, now=now)
        await queue_logout_tokens(runtime, session, dict.fromkeys(session_ids, user_id), now=now)


async def live_sessions(database: Database, user_id: uuid.UUID, *, now: datetime) -> list[UserSession]:
    """The person's live sessions, for the account page."""
    async with database.read_only() as session:
        return await SessionRepository(session).live_of(user_id, now=now)


async def end_own_session(
    runtime: Runtime, user_id: uuid.UUID, session_id: uuid.UUID, *, now: datetime
) -> None:
    """The person ends one of their other sessions (the one in use ends by signing out)."""
    async with runtime.database.unit_of_work() as session:
        if await SessionRepository(session).end_own(user_id, session_id, now=now):
            await _ended(runtime, session, user_id, [session_id], now=now)


async def sign_out_everywhere(
    runtime: Runtime, user_id: uuid.UUID, *, origin: RequestOrigin, now: datetime
) -> None:
    """Every session of the person ends and every code, access and refresh token dies, ``offline_access``
    included; consents stay (SPEC §9)."""
    async with runtime.database.unit_of_work() as session:
        ended = await SessionRepository(session).end_all_of(user_id, now=now)
        await queue_logout_tokens(runtime, session, dict.fromkeys(ended, user_id), now=now)
        revoked = await TokenRepository(session).revoke_everything_of(user_id, now=now)
        await AuditRepository(session).record(
            "signed_out_everywhere", now=now, origin=origin, user_id=user_id, details={"revoked": revoked}
        )
