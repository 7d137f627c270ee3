"""Server-side sign-in sessions, found by the SHA-256 of the session token."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.storage.tables import User, UserSession, UserStatus


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, user_session: UserSession) -> UserSession:
        self._session.add(user_session)
        await self._session.flush()
        return user_session

    async def find_live(self, token_hash: bytes, *, now: datetime) -> tuple[UserSession, User] | None:
        """A session that is neither expired nor ended, of an active account."""
        row = (
            await self._session.execute(
                select(UserSession, User)
                .join(User, User.id == UserSession.user_id)
                .where(
                    UserSession.token_hash == token_hash,
                    UserSession.revoked_at.is_(None),
                    UserSession.expires_at > now,
                    User.status == UserStatus.ACTIVE,
                )
            )
        ).first()
        return None if row is None else (row[0], row[1])

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
