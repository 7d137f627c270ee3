"""Registration (SPEC §3): synchronous, asynchronous through the pipeline, and in bulk (admins only).

Passwords are hashed here, before anything is queued: a plain password never reaches the queue, the database
or a log. Bulk requests are validated up front; invalid entries are listed and the valid ones still go.
Registration is open to anyone, so it is limited per IP and its hashes never take the threads sign-in needs
(:meth:`PasswordHasher.hash_for_registration`): a flood of them is answered 503, never queued.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consentry.crypto.hashing import HashingBusy
from consentry.domain.identifiers import InvalidIdentifier, account_identifiers
from consentry.domain.registration import RegistrationMessage
from consentry.errors import ConsentryError, InvalidRequestError, NotFoundError, ServiceUnavailableError
from consentry.ids import new_clustered_id
from consentry.runtime import Runtime
from consentry.services.users import check_password_policy, create_user, terms_accepted
from consentry.storage.audit import AuditRepository, RequestOrigin
from consentry.storage.consents import ConsentRepository
from consentry.storage.registrations import RegistrationLedger


@dataclass(frozen=True, slots=True)
class Applicant:
    email: str | None
    phone: str | None
    password: str


def validate(entry: dict[str, Any]) -> Applicant:
    """Raises :class:`InvalidRequestError` with a reason fit for the caller."""
    if entry.get("consent") is not True:
        raise InvalidRequestError("consent: true is required (acceptance of the terms)")
    try:
        email, phone = account_identifiers(entry.get("email"), entry.get("phone"))
    except InvalidIdentifier as exc:
        raise InvalidRequestError(exc.message, values=exc.values) from None
    password = entry.get("password")
    if not isinstance(password, str):
        raise InvalidRequestError("password is required")
    check_password_policy(password)
    return Applicant(email, phone, password)


async def register_sync(
    runtime: Runtime, entry: dict[str, Any], *, origin: RequestOrigin, now: datetime
) -> dict[str, Any]:
    applicant = validate(entry)
    await _take_registration(runtime, origin)
    password_hash = await _hash(runtime, applicant.password, wait=False)
    async with runtime.database.unit_of_work() as session:
        user = await create_user(
            session,
            passwords=runtime.passwords,
            now=now,
            email=applicant.email,
            phone=applicant.phone,
            password_hash=password_hash,
        )
        await ConsentRepository(session).add_history(terms_accepted(user.id, origin=origin, now=now))
        await AuditRepository(session).record(
            "user_registered", now=now, origin=origin, user_id=user.id, details={"via": "register-sync"}
        )
        return {"user_id": str(user.id), "email": user.email, "phone": user.phone}


async def _take_registration(runtime: Runtime, origin: RequestOrigin) -> None:
    limiter = runtime.rate_limiter
    await limiter.take(limiter.policy.registrations_per_ip, "register", origin.ip or "-")


async def _hash(runtime: Runtime, password: str, *, wait: bool) -> str:
    try:
        return await runtime.passwords.hash_for_registration(password, wait=wait)
    except HashingBusy:
        raise ServiceUnavailableError("too many registrations at once; try again in a moment") from None


async def register_async(
    runtime: Runtime,
    entries: list[dict[str, Any]],
    *,
    origin: RequestOrigin,
    bulk: bool = False,
    now: datetime,
) -> tuple[list[uuid.UUID], list[dict[str, Any]]]:
    """Queue the valid entries; returns their request ids, and each invalid one with its index and reason.
    ``bulk`` is an administrator's: not limited per IP, and its hashes wait for their turn instead of 503."""
    valid: list[Applicant] = []
    errors: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        try:
            valid.append(validate(entry if isinstance(entry, dict) else {}))
        except ConsentryError as exc:
            errors.append({"index": index, "error": exc.error, "error_description": exc.description})
    if valid and not bulk:
        await _take_registration(runtime, origin)
    hashes = await asyncio.gather(*(_hash(runtime, applicant.password, wait=bulk) for applicant in valid))
    messages = [
        RegistrationMessage(new_clustered_id(), applicant.email, applicant.phone, password_hash)
        for applicant, password_hash in zip(valid, hashes, strict=True)
    ]
    await runtime.registrations.publish(messages, now=now)
    if messages:
        runtime.registration_doorbell.ring()
    return [m.request_id for m in messages], errors


async def registration_status(runtime: Runtime, request_id: str) -> dict[str, Any]:
    try:
        key = uuid.UUID(request_id)
    except ValueError:
        raise NotFoundError("no such registration request") from None
    row = await RegistrationLedger(runtime.database).find(key)
    if row is None:
        raise NotFoundError("no such registration request")
    body: dict[str, Any] = {"request_id": str(row.id), "status": row.status.value}
    if row.user_id:
        body["user_id"] = str(row.user_id)
    if row.status.value == "failed" and row.error:
        body["error"] = row.error
    return body
