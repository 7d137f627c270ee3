"""User aggregate: accounts and their credentials."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.domain.accounts import UserStatus
from consentry.storage.tables import User, UserCredential


def active_account(user: Any, kind: str, value: Any) -> ColumnElement[bool]:
    """``user`` (the User entity or an alias of it) is an active account whose ``kind`` identifier (email or
    phone: the identifier kinds are the column names) equals ``value``."""
    return and_(getattr(user, kind) == value, user.status == UserStatus.ACTIVE)


def current_credential(user_id: Any) -> ColumnElement[bool]:
    """The credential row holding ``user_id``'s current password (earlier ones are superseded, kept)."""
    return and_(UserCredential.user_id == user_id, UserCredential.superseded_at.is_(None))


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def identifier_taken(self, *, email: str | None = None, phone: str | None = None) -> bool:
        """Whether an account (soft-deleted ones included: they can be restored) holds the identifier."""
        if email is not None and await self._session.scalar(select(exists().where(User.email == email))):
            return True
        return bool(
            phone is not None and await self._session.scalar(select(exists().where(User.phone == phone)))
        )

    async def add_user(self, user: User, *, password_hash: str | None, now: datetime) -> User:
        self._session.add(user)
        await self._session.flush()
        if password_hash is not None:
            self._session.add(UserCredential(user_id=user.id, password_hash=password_hash, created_at=now))
            await self._session.flush()
        return user

    async def get_user(self, user_id: uuid.UUID) -> User | None:
        return await self._session.get(User, user_id)

    async def find_by_email(self, email: str) -> User | None:
        return await self._session.scalar(select(User).where(User.email == email))

    async def current_password_hash(self, user_id: uuid.UUID) -> str | None:
        return await self._session.scalar(
            select(UserCredential.password_hash).where(current_credential(user_id))
        )

    async def discard_passwords(self, user_id: uuid.UUID) -> None:
        """Forget every password of the account, history included (a password nobody proved to own)."""
        await self._session.execute(delete(UserCredential).where(UserCredential.user_id == user_id))
