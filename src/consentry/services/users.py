"""Creating accounts (the CLI and synchronous registration share this)."""

from __future__ import annotations

import uuid
from datetime import datetime

from consentry.crypto.hashing import PasswordHasher
from consentry.domain.accounts import UserStatus
from consentry.domain.identifiers import normalise_email, normalise_phone
from consentry.errors import ConflictError, InvalidRequestError
from consentry.storage.audit import RequestOrigin
from consentry.storage.database import Transaction
from consentry.storage.records import ConsentHistory, User
from consentry.storage.users import UserRepository

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # bounds the argon2 input; longer is a denial-of-service attempt, not a password


def check_password_policy(password: str) -> None:
    """NIST SP 800-63B §5.1.1.2: at least 8 characters; no composition rules."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequestError(
            "the password must be at least %(count)s characters", values={"count": MIN_PASSWORD_LENGTH}
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidRequestError(
            "the password must be at most %(count)s characters", values={"count": MAX_PASSWORD_LENGTH}
        )


async def create_user(
    session: Transaction,
    *,
    passwords: PasswordHasher,
    now: datetime,
    email: str | None = None,
    phone: str | None = None,
    password: str | None = None,
    password_hash: str | None = None,
    verified: bool = False,
    admin: bool = False,
    linked: bool = False,
) -> User:
    """A new active account; raises :class:`ConflictError` when the identifier is taken. Requests pass the
    ``password_hash`` made off the event loop; the CLI and tests may pass the ``password``. Only an account
    reached through a linked upstream account (``linked``) may have no identifier."""
    if email is None and phone is None and not linked:
        raise InvalidRequestError("an email address or a phone number is required")
    email = normalise_email(email) if email is not None else None
    phone = normalise_phone(phone) if phone is not None else None
    if password is not None:
        check_password_policy(password)
    users = UserRepository(session)
    if await users.identifier_taken(email=email, phone=phone):
        raise ConflictError("an account with this identifier already exists")
    user = User(
        email=email,
        email_verified=verified and email is not None,
        phone=phone,
        phone_verified=verified and phone is not None,
        is_admin=admin,
        status=UserStatus.ACTIVE,
        created_at=now,
        updated_at=now,
    )
    if password is not None:
        password_hash = passwords.hash(password)
    return await users.add_user(user, password_hash=password_hash, now=now)


def terms_accepted(user_id: uuid.UUID, *, origin: RequestOrigin, now: datetime) -> ConsentHistory:
    """The consent-history entry of a person accepting the terms at sign-up (kept for the GDPR export)."""
    return ConsentHistory(
        user_id=user_id,
        action="terms_accepted",
        actor="user",
        ip=origin.ip,
        user_agent=origin.user_agent,
        occurred_at=now,
    )
