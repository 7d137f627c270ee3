"""Writing a batch of registrations in one transaction; a message that cannot be written fails alone.

Idempotent by request id: a message whose request is already completed or failed is skipped, so redelivery
never creates a second account. Identifiers taken (by an existing account, or earlier in the same batch) fail
only their own message.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.pipeline.messages import RegistrationMessage
from consentry.storage.database import Database
from consentry.storage.tables import (
    AuditEvent,
    ConsentHistory,
    RegistrationRequest,
    RegistrationStatus,
    User,
    UserCredential,
    UserStatus,
)

TAKEN = "an account with this identifier already exists"


class PoisonMessage(ValueError):
    """A message the writer cannot turn into an account (malformed in the queue)."""


@dataclass
class WriteResult:
    completed: int = 0
    duplicates: int = 0
    skipped: int = 0
    poisoned: list[tuple[RegistrationMessage, str]] = field(default_factory=list)


def _check(message: RegistrationMessage) -> None:
    if not (message.email or message.phone) or not message.password_hash:
        raise PoisonMessage("a registration needs an identifier and a password hash")
    for flag in ("email_verified", "phone_verified"):
        if not isinstance(message.attributes.get(flag, False), bool):
            raise PoisonMessage(f"{flag} must be true or false")


async def write_batch(
    database: Database, messages: Sequence[RegistrationMessage], *, now: datetime
) -> WriteResult:
    """One transaction; if it fails, one transaction per message, so a bad one cannot sink the rest."""
    try:
        async with database.unit_of_work() as session:
            return await _write(session, messages, now=now)
    except Exception:  # a poisoned message, or a race with a synchronous registration: isolate it
        result = WriteResult()
        for message in messages:
            try:
                async with database.unit_of_work() as session:
                    single = await _write(session, [message], now=now)
            except Exception as exc:
                result.poisoned.append((message, f"{type(exc).__name__}: {exc}"[:1000]))
                continue
            result.completed += single.completed
            result.duplicates += single.duplicates
            result.skipped += single.skipped
        return result


async def _write(
    session: AsyncSession, messages: Sequence[RegistrationMessage], *, now: datetime
) -> WriteResult:
    for message in messages:
        _check(message)
    result = WriteResult()
    ids = [m.request_id for m in messages]
    open_ids = set(
        await session.scalars(
            select(RegistrationRequest.id).where(
                RegistrationRequest.id.in_(ids), RegistrationRequest.status == RegistrationStatus.PROCESSING
            )
        )
    )
    emails = [m.email for m in messages if m.email]
    phones = [m.phone for m in messages if m.phone]
    taken = set(await session.scalars(select(User.email).where(User.email.in_(emails)))) if emails else set()
    if phones:
        taken |= set(await session.scalars(select(User.phone).where(User.phone.in_(phones))))
    users, credentials, history, audit, done, failed = [], [], [], [], [], []
    for message in messages:
        if message.request_id not in open_ids:
            result.skipped += 1  # already written: a redelivery
            continue
        identifiers = {message.email, message.phone} - {None}
        if identifiers & taken:
            failed.append(
                {
                    "id": message.request_id,
                    "status": RegistrationStatus.FAILED,
                    "error": TAKEN,
                    "password_hash": None,
                    "updated_at": now,
                }
            )
            result.duplicates += 1
            continue
        taken |= identifiers
        user_id = uuid.uuid4()
        users.append(
            {
                "id": user_id,
                "email": message.email,
                "phone": message.phone,
                "email_verified": bool(message.attributes.get("email_verified")),
                "phone_verified": bool(message.attributes.get("phone_verified")),
                "is_admin": False,
                "status": UserStatus.ACTIVE,
                "created_at": now,
                "updated_at": now,
            }
        )
        credentials.append({"user_id": user_id, "password_hash": message.password_hash, "created_at": now})
        imported = (
            message.attributes.get("via") == "import"
        )  # terms were accepted where the account came from
        history.append(
            {
                "user_id": user_id,
                "action": "imported" if imported else "terms_accepted",
                "actor": "system" if imported else "user",
                "occurred_at": now,
            }
        )
        audit.append(
            {
                "event_type": "user_registered",
                "occurred_at": now,
                "actor": "user",
                "user_id": user_id,
                "details": {"via": "pipeline", "request_id": str(message.request_id)},
            }
        )
        done.append(
            {
                "id": message.request_id,
                "status": RegistrationStatus.COMPLETED,
                "user_id": user_id,
                "password_hash": None,
                "error": None,
                "updated_at": now,
            }
        )
    if users:
        await session.execute(insert(User), users)
        await session.execute(insert(UserCredential), credentials)
        await session.execute(insert(ConsentHistory), history)
        await session.execute(insert(AuditEvent), audit)
    if done or failed:
        await session.execute(update(RegistrationRequest), done + failed)
    result.completed = len(done)
    return result
