"""A person's own account (SPEC §4): profile, identifier changes, password change, permanent purge."""

from __future__ import annotations

import functools
import hmac
import secrets
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import available_timezones

from consentry.domain.accounts import UserStatus
from consentry.domain.identifiers import Identifier, InvalidIdentifier, normalise_email, normalise_phone
from consentry.domain.profile import PROFILE_FIELDS, InvalidProfile, check_profile
from consentry.errors import (
    N_,
    ConflictError,
    ExpiredCodeError,
    InvalidCodeError,
    InvalidCredentialsError,
    InvalidFlowError,
    InvalidRequestError,
    LoginRequiredError,
)
from consentry.runtime import Runtime
from consentry.services.cascades import delete_account
from consentry.services.sessions import SignedIn
from consentry.services.signin import CODE_TTL, FLOW_TTL, MAX_CODE_FAILURES, change_password
from consentry.services.users import check_password_policy
from consentry.storage.audit import AuditRepository, RequestOrigin
from consentry.storage.database import Transaction
from consentry.storage.records import SigninFlow, User
from consentry.storage.sessions import SigninFlowRepository
from consentry.storage.users import UserRepository

HELD_BY_ANOTHER = {
    "email": N_("this email address belongs to another account"),
    "phone": N_("this phone number belongs to another account"),
}
# How recent a sign-in stands in for the password of an account that has none.
FRESH_SIGN_IN = timedelta(minutes=10)


@functools.cache
def time_zones() -> frozenset[str]:
    """The IANA time zones this machine's database knows (read once: walking it takes tens of ms)."""
    return frozenset(available_timezones())


def checked_profile(changes: Mapping[str, Any]) -> dict[str, str | None]:
    """The profile claims among ``changes``, each one its claim can hold (else 400 ``invalid_request``)."""
    profile = {field: changes[field] for field in PROFILE_FIELDS if field in changes}
    try:
        check_profile(profile, time_zones=time_zones())
    except InvalidProfile as exc:
        raise InvalidRequestError(exc.message, values=exc.values) from None
    return profile


def describe(user: User) -> dict[str, Any]:
    return {
        "user_id": str(user.id),
        "email": user.email,
        "email_verified": user.email_verified,
        "phone": user.phone,
        "phone_verified": user.phone_verified,
        **{field: getattr(user, field) for field in PROFILE_FIELDS},
        "is_admin": user.is_admin,
        "created_at": user.created_at.isoformat(),
        "updated_at": user.updated_at.isoformat(),
    }


async def _me(session: Transaction, signed_in: SignedIn, *, for_update: bool = False) -> User:
    user = await UserRepository(session).get_user(signed_in.user_id, for_update=for_update)
    if user is None or user.status != UserStatus.ACTIVE:
        raise InvalidFlowError("this account is not active")
    return user


async def read_me(runtime: Runtime, signed_in: SignedIn) -> dict[str, Any]:
    async with runtime.database.read_only() as session:
        user = await _me(session, signed_in)
        has_password = await UserRepository(session).current_password_hash(user.id) is not None
        return {**describe(user), "has_password": has_password}


async def _confirm_identity(
    runtime: Runtime, session: Transaction, signed_in: SignedIn, password: str | None, *, now: datetime
) -> None:
    """The person at the keyboard is the account's owner: its current password, or (an account without one,
    signed in through an upstream provider) a sign-in in the last few minutes."""
    stored = await UserRepository(session).current_password_hash(signed_in.user_id)
    if stored is None:
        if now - signed_in.auth_time > FRESH_SIGN_IN:
            raise LoginRequiredError("sign in again to confirm it is you")
    elif not await runtime.passwords.verify_off_loop(stored, password or ""):
        raise InvalidCredentialsError("the current password is not correct")


async def update_me(
    runtime: Runtime,
    signed_in: SignedIn,
    changes: dict[str, Any],
    *,
    origin: RequestOrigin,
    now: datetime,
    confirm_identity: bool = False,
) -> dict[str, Any]:
    """Profile fields apply at once; a new email or phone only after its code is verified (the answer carries
    the flow token); a new password needs the current one, and so does anything when ``confirm_identity``
    (the account pages ask for it before an identifier changes)."""
    result: dict[str, Any] = {}
    async with runtime.database.unit_of_work() as session:
        user = await _me(session, signed_in, for_update=True)
        if confirm_identity or "new_password" in changes:
            await _confirm_identity(runtime, session, signed_in, changes.get("current_password"), now=now)
        audit = AuditRepository(session)
        profile = checked_profile(changes)
        if profile:
            for key, value in profile.items():
                setattr(user, key, value or None)
            user.updated_at = now
            await audit.record(
                "profile_updated",
                now=now,
                origin=origin,
                user_id=user.id,
                details={"fields": sorted(profile)},
            )
        if "new_password" in changes:
            check_password_policy(changes["new_password"])
            await change_password(
                runtime, session, user, changes["new_password"], now=now, keep_session=signed_in.session_id
            )
            await audit.record(
                "password_changed", now=now, origin=origin, user_id=user.id, details={"via": "account"}
            )
        for kind in ("email", "phone"):
            if changes.get(kind):
                result["verification"] = await _start_change(
                    runtime, session, user, kind, changes[kind], origin=origin, now=now
                )
        result["user"] = describe(user)
    return result


async def _start_change(
    runtime: Runtime,
    session: Transaction,
    user: User,
    kind: str,
    raw: str,
    *,
    origin: RequestOrigin,
    now: datetime,
) -> dict[str, Any]:
    try:
        value = normalise_email(raw) if kind == "email" else normalise_phone(raw)
    except InvalidIdentifier as exc:
        raise InvalidRequestError(exc.message, values=exc.values) from None
    if await UserRepository(session).held_by_another(kind, value, user.id):
        raise ConflictError(HELD_BY_ANOTHER[kind])
    identifier = Identifier(kind, value)  # type: ignore[arg-type]
    await runtime.rate_limiter.take_code_send(value, origin.ip)
    code = f"{secrets.randbelow(1_000_000):06d}"
    flow = SigninFlow(
        id=uuid.uuid4(),
        identifier=value,
        identifier_type=kind,
        purpose="change",
        step="change",
        created_at=now,
        expires_at=now + FLOW_TTL,
        code_expires_at=now + CODE_TTL,
        code_sent_at=now,
    )
    flow.code_hash = runtime.secret_hasher.hash(f"one-time-code:{flow.id}:{code}")
    SigninFlowRepository(session).add(flow)
    await runtime.senders.for_identifier(identifier).send(identifier, code, purpose="change")
    # The token (not the row) names the account, so only the account that started the change can finish it.
    token = runtime.flow_tokens.issue(flow.id, f"change:{user.id}", expires_at=flow.expires_at)
    return {"flow_token": token, "next": "verify", "identifier_type": kind}


async def confirm_change(
    runtime: Runtime, signed_in: SignedIn, flow_token: str, code: str, *, origin: RequestOrigin, now: datetime
) -> dict[str, Any]:
    """The new identifier is proven: it replaces the old one, verified."""
    flow_id = runtime.flow_tokens.read(flow_token, step=f"change:{signed_in.user_id}", now=now)
    failure = None
    async with runtime.database.unit_of_work() as session:
        flow = await SigninFlowRepository(session).get_for_update(flow_id)
        if flow is None or flow.step != "change" or flow.completed_at is not None or now >= flow.expires_at:
            raise InvalidFlowError()
        if flow.code_hash is None or flow.code_expires_at is None or now >= flow.code_expires_at:
            raise ExpiredCodeError()
        expected = runtime.secret_hasher.hash(f"one-time-code:{flow.id}:{code.strip()}")
        if not hmac.compare_digest(expected, flow.code_hash):
            flow.failed_attempts += 1
            if flow.failed_attempts >= MAX_CODE_FAILURES:
                flow.step = "dead"
            failure = InvalidCodeError("the code is not correct")
        else:
            user = await _me(session, signed_in, for_update=True)
            if await UserRepository(session).held_by_another(flow.identifier_type, flow.identifier, user.id):
                raise ConflictError(HELD_BY_ANOTHER[flow.identifier_type])
            if flow.identifier_type == "email":
                user.email, user.email_verified = flow.identifier, True
            else:
                user.phone, user.phone_verified = flow.identifier, True
            user.updated_at = now
            flow.completed_at, flow.step = now, "done"
            await AuditRepository(session).record(
                "identifier_changed",
                now=now,
                origin=origin,
                user_id=user.id,
                details={"identifier_type": flow.identifier_type},
            )
            described = describe(user)
    if failure is not None:
        raise failure
    return described


async def delete_me(
    runtime: Runtime,
    signed_in: SignedIn,
    *,
    password: str | None,
    grace: timedelta,
    origin: RequestOrigin,
    now: datetime,
) -> datetime:
    """The account page's deletion: the owner confirmed, then the soft delete of ``delete_account``."""
    async with runtime.database.read_only() as session:
        await _me(session, signed_in)
        await _confirm_identity(runtime, session, signed_in, password, now=now)
    return await delete_account(runtime, signed_in.user_id, grace=grace, origin=origin, now=now)


async def purge_deleted_accounts(runtime: Runtime, *, now: datetime, batch: int) -> int:
    """After the grace period: erase accounts in bounded batches (``UserRepository.erase_deleted``)."""
    total = 0
    while True:
        async with runtime.database.unit_of_work() as session:
            erased = await UserRepository(session).erase_deleted(now=now, limit=batch)
        total += erased
        if erased < batch:
            return total
