"""Server-side sign-in sessions, found by the SHA-256 of the session token."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import aliased

from consentry.storage.batched_reads import BatchedReader
from consentry.storage.group_commit import marked_once
from consentry.storage.key_lists import by_keys
from consentry.storage.tables import SigninFlow, User, UserCredential, UserSession, UserStatus
from consentry.storage.users import active_account, current_credential

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
        self._sessions_by_hash = _SESSIONS_BY_HASH.for_dialect(engine.dialect.name)
        self._reader: BatchedReader[bytes, SessionRecord] = BatchedReader(self._fetch)

    async def find_live(self, token_hash: bytes, *, now: datetime) -> SessionRecord | None:
        record = await self._reader.get(token_hash)
        return record if record is not None and record.is_live(now=now) else None

    async def _fetch(self, keys: Sequence[bytes]) -> dict[bytes, SessionRecord]:
        async with self._engine.connect() as connection:
            rows = await connection.execute(self._sessions_by_hash, {"keys": keys})
            return {row[0]: SessionRecord(*row) for row in rows}


_SESSIONS_BY_HASH = by_keys(
    UserSession.token_hash,
    lambda among_keys: (
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
        .where(among_keys, User.status == UserStatus.ACTIVE)
    ),
)


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


# A sign-in flow completes once: the session a correct password earns is written only by the request that
# moves its flow from the password step to done (a group-commit claim).
PASSWORD_STEP_DONE = marked_once(
    "password step done",
    SigninFlow.id,
    SigninFlow.completed_at,
    SigninFlow.step == "password",
    SigninFlow.expires_at > bindparam("now"),
    also={"step": "done"},
)


@dataclass(frozen=True, slots=True)
class PasswordStep:
    """A sign-in flow at its password step, with the active account its identifier names (if any) and that
    account's current password hash: all login-password needs before the hash, read in one statement."""

    identifier: str
    oauth2_context: dict[str, Any] | None
    user_id: uuid.UUID | None
    is_admin: bool
    password_hash: str | None


def flow_waiting_at(step: str) -> tuple[ColumnElement[bool], ...]:
    """A sign-in flow still at ``step``: not completed, not expired at the bound parameter ``now``."""
    return (
        SigninFlow.step == step,
        SigninFlow.completed_at.is_(None),
        SigninFlow.expires_at > bindparam("now"),
    )


def _password_step() -> Select[Any]:
    by_email, by_phone = aliased(User), aliased(User)

    def account(alias: Any, kind: str) -> ColumnElement[bool]:
        return and_(SigninFlow.identifier_type == kind, active_account(alias, kind, SigninFlow.identifier))

    user_id = func.coalesce(by_email.id, by_phone.id)
    return (
        select(
            SigninFlow.identifier,
            SigninFlow.oauth2_context,
            user_id,
            func.coalesce(by_email.is_admin, by_phone.is_admin),
            UserCredential.password_hash,
        )
        .outerjoin(by_email, account(by_email, "email"))
        .outerjoin(by_phone, account(by_phone, "phone"))
        .outerjoin(UserCredential, current_credential(user_id))
        .where(SigninFlow.id == bindparam("flow_id"), *flow_waiting_at("password"))
    )


_PASSWORD_STEP = _password_step()


async def password_step(
    connection: AsyncConnection, flow_id: uuid.UUID, *, now: datetime
) -> PasswordStep | None:
    """The flow if it is waiting for a password and has not expired; None otherwise."""
    row = (await connection.execute(_PASSWORD_STEP, {"flow_id": flow_id, "now": now})).first()
    if row is None:
        return None
    identifier, context, found, is_admin, password_hash = row
    return PasswordStep(identifier, context, found, bool(is_admin), password_hash)
