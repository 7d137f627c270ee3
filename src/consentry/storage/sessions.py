"""Server-side sign-in sessions, found by the SHA-256 of the session token."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, Select, Table, and_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from consentry.domain.accounts import UserStatus
from consentry.storage.batched_reads import BatchedReader, rows_by_first_column
from consentry.storage.group_commit import marked_once
from consentry.storage.key_lists import by_keys
from consentry.storage.tables import SigninFlow, User, UserCredential, UserSession
from consentry.storage.users import active_account, current_credential

if TYPE_CHECKING:
    from consentry.storage.database import Database

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

    def __init__(self, database: Database) -> None:
        self._reader: BatchedReader[bytes, SessionRecord] = BatchedReader(
            rows_by_first_column(database, _SESSIONS_BY_HASH.for_dialect(database.dialect), SessionRecord)
        )

    async def find_live(self, token_hash: bytes, *, now: datetime) -> SessionRecord | None:
        record = await self._reader.get(token_hash)
        return record if record is not None and record.is_live(now=now) else None


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

    async def end_all_of(
        self, user_id: uuid.UUID, *, now: datetime, keep: uuid.UUID | None = None
    ) -> list[uuid.UUID]:
        """Every live session of one person but ``keep`` (the one a change was made from, if any); returns
        the sessions ended."""
        live = select(UserSession.id).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        if keep is not None:
            live = live.where(UserSession.id != keep)
        ending = list(await self._session.scalars(live.with_for_update()))
        if ending:
            await self._session.execute(
                update(UserSession)
                .where(UserSession.id.in_(ending), UserSession.revoked_at.is_(None))
                .values(revoked_at=now)
                .execution_options(synchronize_session=False)
            )
        return ending

    async def live_of(self, user_id: uuid.UUID, *, now: datetime) -> list[UserSession]:
        """The person's live sessions, newest first."""
        live = (
            select(UserSession)
            .where(
                UserSession.user_id == user_id, UserSession.revoked_at.is_(None), UserSession.expires_at > now
            )
            .order_by(UserSession.created_at.desc())
        )
        return list(await self._session.scalars(live))

    async def end_own(self, user_id: uuid.UUID, session_id: uuid.UUID, *, now: datetime) -> bool:
        """End one of the person's live sessions; False if it is not theirs or already ended."""
        result = await self._session.execute(
            update(UserSession)
            .where(
                UserSession.id == session_id, UserSession.user_id == user_id, UserSession.revoked_at.is_(None)
            )
            .values(revoked_at=now)
        )
        return bool(getattr(result, "rowcount", 0))

    async def end_all_of_users(
        self, user_ids: Sequence[uuid.UUID], *, now: datetime
    ) -> dict[uuid.UUID, uuid.UUID]:
        """Every live session of these people (their accounts are being deleted); returns each session ended
        with its person."""
        live = select(UserSession.id, UserSession.user_id).where(
            UserSession.user_id.in_(user_ids), UserSession.revoked_at.is_(None)
        )
        ending = {
            session_id: user_id for session_id, user_id in await self._session.execute(live.with_for_update())
        }
        if ending:
            await self._session.execute(
                update(UserSession)
                .where(UserSession.user_id.in_(user_ids), UserSession.revoked_at.is_(None))
                .values(revoked_at=now)
                .execution_options(synchronize_session=False)
            )
        return ending


class SigninFlowRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, flow: SigninFlow) -> None:
        self._session.add(flow)

    async def get_for_update(self, flow_id: uuid.UUID) -> SigninFlow | None:
        return await self._session.get(SigninFlow, flow_id, with_for_update=True)

    async def waiting_at(self, flow_id: uuid.UUID, step: str, *, now: datetime) -> SigninFlow | None:
        """The flow, locked, if it is still at ``step`` (not completed, not expired)."""
        waiting = select(SigninFlow).where(SigninFlow.id == flow_id, *flow_waiting_at(step)).with_for_update()
        return await self._session.scalar(waiting, {"now": now})


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


def password_step(connection: Connection, flow_id: uuid.UUID, *, now: datetime) -> PasswordStep | None:
    """The flow if it is waiting for a password and has not expired; None otherwise."""
    row = connection.execute(_PASSWORD_STEP, {"flow_id": flow_id, "now": now}).first()
    if row is None:
        return None
    identifier, context, found, is_admin, password_hash = row
    return PasswordStep(identifier, context, found, bool(is_admin), password_hash)
