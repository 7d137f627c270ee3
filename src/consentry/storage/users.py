"""User aggregate: accounts and their credentials."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Update, and_, delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.domain.accounts import BulkAction, UserStatus
from consentry.storage.tables import AuditEvent, ConsentHistory, RegistrationRequest, User, UserCredential


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

    async def get_user(self, user_id: uuid.UUID, *, for_update: bool = False) -> User | None:
        return await self._session.get(User, user_id, with_for_update=for_update)

    async def ids_by_email(self, emails: Sequence[str]) -> list[uuid.UUID]:
        """The accounts (any status) holding these emails."""
        return list(await self._session.scalars(select(User.id).where(User.email.in_(emails))))

    async def look_up(self, *, email: str | None, phone: str | None, user_id: uuid.UUID | None) -> list[User]:
        """Accounts in any state holding this email or phone, or this id (an administrator's look-up)."""
        conditions: list[ColumnElement[bool]] = []
        if email is not None:
            conditions.append(User.email == email)
        if phone is not None:
            conditions.append(User.phone == phone)
        if user_id is not None:
            conditions.append(User.id == user_id)
        if not conditions:
            return []
        return list(
            await self._session.scalars(select(User).where(or_(*conditions)).order_by(User.created_at))
        )

    async def listed(self, *, limit: int, offset: int) -> list[User]:
        """Accounts in any state, newest first."""
        query = select(User).order_by(User.created_at.desc(), User.id).limit(limit).offset(offset)
        return list(await self._session.scalars(query))

    async def find_active(self, kind: str, value: str) -> User | None:
        """The active account whose ``kind`` identifier (email or phone) is ``value``."""
        return await self._session.scalar(select(User).where(active_account(User, kind, value)))

    async def find_restorable(self, kind: str, value: str, *, now: datetime) -> User | None:
        """The soft-deleted account holding the identifier, while its grace period lasts."""
        return await self._session.scalar(
            select(User).where(
                getattr(User, kind) == value, User.status == UserStatus.DELETED, User.purge_after > now
            )
        )

    async def held_by_another(self, kind: str, value: str, user_id: uuid.UUID) -> bool:
        """Whether an account other than ``user_id`` (soft-deleted ones included) holds the identifier."""
        held = exists().where(getattr(User, kind) == value, User.id != user_id)
        return bool(await self._session.scalar(select(held)))

    async def save(self) -> None:
        """Write what the transaction changed so far, before a later statement depends on it (an identifier
        set free before another account takes it)."""
        await self._session.flush()

    async def find_by_email(self, email: str) -> User | None:
        return await self._session.scalar(select(User).where(User.email == email))

    async def current_password_hash(self, user_id: uuid.UUID) -> str | None:
        return await self._session.scalar(
            select(UserCredential.password_hash).where(current_credential(user_id))
        )

    async def recent_password_hashes(self, user_id: uuid.UUID, *, limit: int) -> list[str]:
        """The account's last ``limit`` password hashes, newest first (the current one included)."""
        return list(
            await self._session.scalars(
                select(UserCredential.password_hash)
                .where(UserCredential.user_id == user_id)
                .order_by(UserCredential.created_at.desc())
                .limit(limit)
            )
        )

    async def replace_password(self, user_id: uuid.UUID, password_hash: str, *, now: datetime) -> None:
        """The new hash is current; the one before is kept as history (superseded now)."""
        await self._session.execute(
            update(UserCredential).where(current_credential(user_id)).values(superseded_at=now)
        )
        self._session.add(UserCredential(user_id=user_id, password_hash=password_hash, created_at=now))

    async def erase_deleted(self, *, now: datetime, limit: int) -> int:
        """Erase up to ``limit`` accounts whose grace period is over; how many were. Consent history and
        audit events are kept, anonymised (no user id, IP or user agent); the account's identifiers go from
        its registration requests too (SPEC §9); consents, tokens, sessions and credentials go with it."""
        rows = (
            await self._session.execute(
                select(User.id, User.email, User.phone)
                .where(User.status == UserStatus.DELETED, User.purge_after < now)
                .limit(limit)
            )
        ).all()
        ids = [row.id for row in rows]
        if not ids:
            return 0
        emails = [row.email for row in rows if row.email]
        phones = [row.phone for row in rows if row.phone]
        requests = or_(
            RegistrationRequest.user_id.in_(ids),
            RegistrationRequest.email.in_(emails),
            RegistrationRequest.phone.in_(phones),
        )
        erasures: list[Update] = [
            update(RegistrationRequest)
            .where(requests)
            .values(email=None, phone=None, user_id=None, password_hash=None, attributes=None),
            update(ConsentHistory)
            .where(ConsentHistory.user_id.in_(ids))
            .values(user_id=None, consent_id=None, ip=None, user_agent=None),
            update(AuditEvent)
            .where(AuditEvent.user_id.in_(ids))
            .values(user_id=None, ip=None, user_agent=None),
        ]
        for erasure in erasures:
            await self._session.execute(erasure.execution_options(synchronize_session=False))
        await self._session.execute(
            delete(User).where(User.id.in_(ids)).execution_options(synchronize_session=False)
        )
        return len(ids)

    async def apply_bulk(
        self, action: BulkAction, user_ids: Sequence[uuid.UUID], *, grace: timedelta, now: datetime
    ) -> int:
        """One statement over every account named; how many it changed. A soft delete takes active accounts
        only (purged after ``grace``); a restore, deleted ones still in their grace period."""
        chosen = User.id.in_(user_ids)
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
        result = await self._session.execute(statement.execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)

    async def discard_passwords(self, user_id: uuid.UUID) -> None:
        """Forget every password of the account, history included (a password nobody proved to own)."""
        await self._session.execute(delete(UserCredential).where(UserCredential.user_id == user_id))


def rehash_password(user_id: uuid.UUID, verified: str, upgraded: str) -> Update:
    """Upgrade a hash made with older parameters (or an imported format) on a successful sign-in; only the
    hash that was verified is replaced (a password changed meanwhile is left alone)."""
    return (
        update(UserCredential)
        .where(current_credential(user_id), UserCredential.password_hash == verified)
        .values(password_hash=upgraded)
    )
