"""Server-side sign-in sessions, found by the SHA-256 of the session token."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql import Executable

from consentry.storage.batched_reads import BatchedReader
from consentry.storage.group_commit import ClaimKind
from consentry.storage.tables import SigninFlow, User, UserSession, UserStatus

USER_SESSIONS: Table = UserSession.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A sign-in session of an active account, as the hot paths read it (no ORM object)."""

    token_hash: bytes
    session_id: uuid.UUID
    user_id: uuid.UUID
    auth_time: datetime
    expires_at: datetime
    revoked_at: datetime | None
    is_admin: bool

    def is_live(self, *, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


class SessionLookup:
    """Sessions by token hash, batched across concurrent requests; only sessions of active accounts."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reader: BatchedReader[bytes, SessionRecord] = BatchedReader(self._fetch)

    async def find_live(self, token_hash: bytes, *, now: datetime) -> SessionRecord | None:
        record = await self._reader.get(token_hash)
        return record if record is not None and record.is_live(now=now) else None

    async def _fetch(self, keys: Sequence[bytes]) -> dict[bytes, SessionRecord]:
        statement = (
            select(
                UserSession.token_hash,
                UserSession.id,
                UserSession.user_id,
                UserSession.auth_time,
                UserSession.expires_at,
                UserSession.revoked_at,
                User.is_admin,
            )
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.token_hash.in_(keys), User.status == UserStatus.ACTIVE)
        )
        async with self._engine.connect() as connection:
            return {row[0]: SessionRecord(*row) for row in await connection.execute(statement)}


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def end(self, session_id: uuid.UUID, *, now: datetime) -> None:
        await self._session.execute(
            update(UserSession).where(UserSession.id == session_id).values(revoked_at=now)
        )


async def live_sessions(session: AsyncSession, user_id: uuid.UUID, *, now: datetime) -> list[UserSession]:
    return list(
        await session.scalars(
            select(UserSession)
            .where(
                UserSession.user_id == user_id, UserSession.revoked_at.is_(None), UserSession.expires_at > now
            )
            .order_by(UserSession.created_at.desc())
        )
    )


async def end_user_session(
    session: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID, *, now: datetime
) -> bool:
    result = await session.execute(
        update(UserSession)
        .where(UserSession.id == session_id, UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


def _complete_password_steps(keys: Sequence[Any], now: datetime) -> Executable:
    return (
        update(SigninFlow)
        .where(
            SigninFlow.id.in_(keys),
            SigninFlow.step == "password",
            SigninFlow.completed_at.is_(None),
            SigninFlow.expires_at > now,
        )
        .values(step="done", completed_at=now)
        .returning(SigninFlow.id)
    )


# A sign-in flow completes once: the session a correct password earns is written only by the request that
# moves its flow from the password step to done (a group-commit claim).
PASSWORD_STEP_DONE = ClaimKind("password step done", exclusive=True, statement=_complete_password_steps)
