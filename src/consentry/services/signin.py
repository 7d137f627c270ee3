"""Identifier-first sign-in and sign-up (SPEC §3).

A flow is a row that moves through steps (``verify`` → ``password`` | ``set_password`` → done). Each step
hands out a signed flow token naming the flow and the step; a token is honoured only at its own step and only
while the stored flow is at that step, so an old token cannot be replayed and no step can be skipped.
"""

from __future__ import annotations

import functools
import hmac
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from consentry.domain import authorization as az
from consentry.domain.accounts import UserStatus
from consentry.domain.identifiers import Identifier, InvalidIdentifier, parse_identifier
from consentry.errors import (
    ConsentryError,
    ExpiredCodeError,
    InvalidCodeError,
    InvalidCredentialsError,
    InvalidFlowError,
    InvalidRequestError,
    PasswordReusedError,
)
from consentry.runtime import Runtime
from consentry.services.authorize import complete_without_prompt, validate
from consentry.services.consent_screen import ConsentScreen
from consentry.services.sessions import NewSession, SignedIn, create_session, new_session
from consentry.services.users import check_password_policy, create_user, terms_accepted
from consentry.services.webhooks import queue_logout_tokens
from consentry.storage.audit import AuditRepository, RequestOrigin, audit_row
from consentry.storage.consents import ConsentRepository
from consentry.storage.database import Transaction
from consentry.storage.group_commit import Claim, ClaimLost, WriteUnit
from consentry.storage.records import SigninFlow, User
from consentry.storage.sessions import (
    PASSWORD_STEP_DONE,
    SessionRepository,
    SigninFlowRepository,
    password_step,
)
from consentry.storage.tokens import TokenRepository
from consentry.storage.users import UserRepository, rehash_password

FLOW_TTL = timedelta(minutes=30)
CODE_TTL = timedelta(minutes=10)
MAX_CODE_FAILURES = 5
PASSWORD_HISTORY = 5

Step = Literal["verify", "password", "set_password"]


@dataclass(frozen=True, slots=True)
class StepResult:
    flow_token: str
    next: Step
    identifier_type: str


@dataclass(frozen=True, slots=True)
class Completion:
    user_id: uuid.UUID
    session: NewSession
    redirect_url: str | None = None
    consent_info: dict[str, Any] | None = None
    request: dict[str, Any] | None = None  # the authorization request, when consent is needed


# --- context ----------------------------------------------------------------------------------------


def context_params(context: Mapping[str, Any] | None) -> dict[str, str] | None:
    if context is None:
        return None
    return az.pending_request(context)


async def check_context(
    runtime: Runtime, context: Mapping[str, Any] | None, *, now: datetime
) -> dict[str, str] | None:
    """Validate an ``oauth2_context`` exactly as /oauth2/authorize would."""
    params = context_params(context)
    if params is None:
        return None
    try:
        await validate(runtime, params, None, now=now)
    except (az.UnredirectableError, az.RedirectableError) as error:
        raise InvalidRequestError(f"oauth2_context: {error.description}") from None
    return params


def same_context(stored: dict[str, Any] | None, given: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The context is fixed at the first step; a later step may repeat it but not change it."""
    if given is None:
        return stored
    if context_params(given) != context_params(stored):
        raise InvalidRequestError("oauth2_context changed during sign-in")
    return stored


# --- steps ------------------------------------------------------------------------------------------


async def _find_user(session: Transaction, identifier: Identifier) -> User | None:
    return await UserRepository(session).find_active(identifier.kind, identifier.value)


def _verified(user: User, identifier: Identifier) -> bool:
    return user.email_verified if identifier.kind == "email" else user.phone_verified


def _code_hash(runtime: Runtime, flow_id: uuid.UUID, code: str) -> bytes:
    return runtime.secret_hasher.hash(f"one-time-code:{flow_id}:{code}")


async def _send_code(
    runtime: Runtime, flow: SigninFlow, identifier: Identifier, *, origin: RequestOrigin, now: datetime
) -> None:
    await runtime.rate_limiter.take_code_send(identifier.value, origin.ip)
    code = f"{secrets.randbelow(1_000_000):06d}"
    flow.code_hash = _code_hash(runtime, flow.id, code)
    flow.code_expires_at = now + CODE_TTL
    flow.code_sent_at = now
    await runtime.senders.for_identifier(identifier).send(identifier, code, purpose=flow.purpose)


async def submit_identifier(
    runtime: Runtime,
    raw_identifier: str,
    context: Mapping[str, Any] | None,
    *,
    reset: bool = False,
    origin: RequestOrigin,
    now: datetime,
) -> StepResult:
    try:
        identifier = parse_identifier(raw_identifier)
    except InvalidIdentifier as exc:
        raise InvalidRequestError(exc.message, values=exc.values) from None
    params = await check_context(runtime, context, now=now)
    async with runtime.database.unit_of_work() as session:
        user = await _find_user(session, identifier)
        has_password = (
            user is not None and await UserRepository(session).current_password_hash(user.id) is not None
        )
        if user is None and await _restorable(session, identifier, now=now) is not None:
            purpose, step = "restore", "verify"  # deleted, still in its grace period: the code restores it
        elif user is None:
            purpose, step = "signup", "verify"
        elif reset:
            purpose, step = "reset", "verify"
        elif _verified(user, identifier) and has_password:
            purpose, step = "signin", "password"
        else:
            purpose, step = "signin", "verify"
        flow = SigninFlow(
            id=uuid.uuid4(),
            identifier=identifier.value,
            identifier_type=identifier.kind,
            purpose=purpose,
            step=step,
            oauth2_context=params,
            created_at=now,
            expires_at=now + FLOW_TTL,
        )
        if step == "verify":
            await _send_code(runtime, flow, identifier, origin=origin, now=now)
        SigninFlowRepository(session).add(flow)
    token = runtime.flow_tokens.issue(flow.id, step, expires_at=flow.expires_at)
    return StepResult(token, step, identifier.kind)  # type: ignore[arg-type]


async def _load_flow(session: Transaction, flow_id: uuid.UUID, step: str, *, now: datetime) -> SigninFlow:
    flow = await SigninFlowRepository(session).waiting_at(flow_id, step, now=now)
    if flow is None:
        raise InvalidFlowError()
    return flow


async def resend_code(
    runtime: Runtime, flow_token: str | None, *, origin: RequestOrigin, now: datetime
) -> StepResult:
    flow_id = runtime.flow_tokens.read(flow_token, step="verify", now=now)
    async with runtime.database.unit_of_work() as session:
        flow = await _load_flow(session, flow_id, "verify", now=now)
        identifier = Identifier(flow.identifier_type, flow.identifier)  # type: ignore[arg-type]
        await _send_code(runtime, flow, identifier, origin=origin, now=now)
    return StepResult(
        runtime.flow_tokens.issue(flow.id, "verify", expires_at=flow.expires_at),
        "verify",
        flow.identifier_type,
    )


async def verify_identifier(
    runtime: Runtime, flow_token: str | None, code: str, *, origin: RequestOrigin, now: datetime
) -> StepResult:
    limiter = runtime.rate_limiter
    flow_id = runtime.flow_tokens.read(flow_token, step="verify", now=now)
    failure: ConsentryError | None = None
    async with limiter.attempt(
        (limiter.policy.code_failures_per_ip, ("code-fail", origin.ip or "-"))
    ) as attempt:
        async with runtime.database.unit_of_work() as session:
            flow = await _load_flow(session, flow_id, "verify", now=now)
            if flow.code_hash is None or flow.code_expires_at is None or now >= flow.code_expires_at:
                raise ExpiredCodeError()
            presented = code.strip() if isinstance(code, str) else ""
            if not (presented.isdigit() and len(presented) == 6) or not hmac.compare_digest(
                _code_hash(runtime, flow.id, presented), flow.code_hash
            ):
                flow.failed_attempts += 1
                left = MAX_CODE_FAILURES - flow.failed_attempts
                if left <= 0:
                    flow.step = "dead"
                    failure = InvalidCodeError("too many wrong codes; start again")
                else:
                    failure = InvalidCodeError(
                        "the code is not correct; %(left)s tries left", values={"left": left}
                    )
            else:
                next_step = await _after_verification(runtime, session, flow, now=now)
        if failure is not None:  # raised after commit, so the failed attempt is counted
            await attempt.failed()
            raise failure
    return StepResult(
        runtime.flow_tokens.issue(flow.id, next_step, expires_at=flow.expires_at),
        next_step,
        flow.identifier_type,
    )


async def _restorable(session: Transaction, identifier: Identifier, *, now: datetime) -> User | None:
    return await UserRepository(session).find_restorable(identifier.kind, identifier.value, now=now)


async def _after_verification(
    runtime: Runtime, session: Transaction, flow: SigninFlow, *, now: datetime
) -> Step:
    identifier = Identifier(flow.identifier_type, flow.identifier)  # type: ignore[arg-type]
    if flow.purpose == "restore":
        deleted = await _restorable(session, identifier, now=now)
        if deleted is None:
            raise InvalidFlowError()
        deleted.status, deleted.deleted_at, deleted.purge_after = UserStatus.ACTIVE, None, None
        await AuditRepository(session).record("user_restored", now=now, user_id=deleted.id)
        flow.purpose = "signin"
        await UserRepository(session).save()
    user = await _find_user(session, identifier)
    flow.code_hash = None
    next_step: Step = "set_password"
    if user is not None and not _verified(user, identifier):
        user = await _first_proof(runtime, session, user, identifier, flow, now=now)
    if user is not None:
        if identifier.kind == "email":
            user.email_verified = True
        else:
            user.phone_verified = True
        user.updated_at = now
        has_password = await UserRepository(session).current_password_hash(user.id) is not None
        if flow.purpose == "signin" and has_password:
            next_step = "password"
    elif flow.purpose != "signup":
        raise InvalidFlowError()  # the account went away during the flow
    flow.step = next_step
    return next_step


async def _first_proof(
    runtime: Runtime,
    session: Transaction,
    user: User,
    identifier: Identifier,
    flow: SigninFlow,
    *,
    now: datetime,
) -> User | None:
    """Someone has just proved control of an identifier that nobody had proved on this account (SPEC §3,
    account pre-hijacking). Whoever registered it may not be that person, so nothing they set survives:
    on an account with no proven identifier, the registration's password is discarded (never kept as history)
    and every session, token and code ends, and the prover sets a password; on an account that another,
    proven identifier holds, the unproven one is taken off it and the prover signs up with it afresh.
    Returns the account the prover continues with (None: a new one)."""
    audit = AuditRepository(session)
    if user.email_verified or user.phone_verified:
        if identifier.kind == "email":
            user.email = None
        else:
            user.phone = None
        user.updated_at = now
        await audit.record(
            "identifier_detached", now=now, user_id=user.id, details={"identifier_type": identifier.kind}
        )
        await UserRepository(session).save()  # the identifier is free before the prover's account takes it
        flow.purpose = "signup"
        return None
    await UserRepository(session).discard_passwords(user.id)
    ended = await SessionRepository(session).end_all_of(user.id, now=now)
    await queue_logout_tokens(runtime, session, dict.fromkeys(ended, user.id), now=now)
    await TokenRepository(session).revoke_everything_of(user.id, now=now)
    await audit.record(
        "account_claimed", now=now, user_id=user.id, details={"identifier_type": identifier.kind}
    )
    flow.purpose = "claim"
    return user


async def set_password(
    runtime: Runtime,
    flow_token: str | None,
    password: str,
    *,
    accepted_terms: bool,
    context: Mapping[str, Any] | None,
    origin: RequestOrigin,
    now: datetime,
) -> Completion:
    flow_id = runtime.flow_tokens.read(flow_token, step="set_password", now=now)
    check_password_policy(password)
    async with runtime.database.unit_of_work() as session:
        flow = await _load_flow(session, flow_id, "set_password", now=now)
        params = same_context(flow.oauth2_context, context)
        identifier = Identifier(flow.identifier_type, flow.identifier)  # type: ignore[arg-type]
        user = await _find_user(session, identifier)
        audit = AuditRepository(session)
        claiming = flow.purpose == "claim"  # an account registered by someone who never proved the identifier
        if (user is None or claiming) and not accepted_terms:
            raise InvalidRequestError("accept the terms (consent: true) to create an account")
        if user is None:
            user = await create_user(
                session,
                passwords=runtime.passwords,
                now=now,
                password_hash=await runtime.passwords.hash_off_loop(password),
                verified=True,
                email=identifier.value if identifier.kind == "email" else None,
                phone=identifier.value if identifier.kind == "phone" else None,
            )
            await ConsentRepository(session).add_history(terms_accepted(user.id, origin=origin, now=now))
            await audit.record(
                "user_registered",
                now=now,
                origin=origin,
                user_id=user.id,
                details={"via": "signin", "identifier_type": identifier.kind},
            )
        else:
            await change_password(runtime, session, user, password, now=now)
            if claiming:
                await ConsentRepository(session).add_history(terms_accepted(user.id, origin=origin, now=now))
            await audit.record(
                "password_changed", now=now, origin=origin, user_id=user.id, details={"via": flow.purpose}
            )
        flow.completed_at = now
        flow.step = "done"
        user_id, is_admin = user.id, user.is_admin
        new_session = await create_session(session, user_id, now=now, ttl=session_ttl(runtime), origin=origin)
        await audit.record(
            "login_succeeded", now=now, origin=origin, user_id=user_id, details={"method": "one_time_code"}
        )
    return await complete_signin(runtime, user_id, is_admin, new_session, params, origin=origin, now=now)


async def change_password(
    runtime: Runtime,
    session: Transaction,
    user: User,
    password: str,
    *,
    now: datetime,
    keep_session: uuid.UUID | None = None,
) -> None:
    """New credential; none of the last five may be reused; every session of the account ends (except
    ``keep_session``, the one the change was made from), and every code and token of the person (SPEC §9)."""
    users = UserRepository(session)
    for old in await users.recent_password_hashes(user.id, limit=PASSWORD_HISTORY):
        if await runtime.passwords.verify_off_loop(old, password):
            raise PasswordReusedError(
                "choose a password you have not used for your last %(count)s",
                values={"count": PASSWORD_HISTORY},
            )
    await users.replace_password(user.id, await runtime.passwords.hash_off_loop(password), now=now)
    ended = await SessionRepository(session).end_all_of(user.id, now=now, keep=keep_session)
    await queue_logout_tokens(runtime, session, dict.fromkeys(ended, user.id), now=now)
    await TokenRepository(session).revoke_everything_of(user.id, now=now)
    user.updated_at = now


async def login_password(
    runtime: Runtime,
    flow_token: str | None,
    password: str,
    *,
    context: Mapping[str, Any] | None,
    origin: RequestOrigin,
    now: datetime,
) -> Completion:
    flow_id = runtime.flow_tokens.read(flow_token, step="password", now=now)
    limiter, policy = runtime.rate_limiter, runtime.rate_limiter.policy
    step = await runtime.database.run_read(functools.partial(password_step, flow_id=flow_id, now=now))
    if step is None:
        raise InvalidFlowError()
    identifier = step.identifier
    params = same_context(step.oauth2_context, context)
    user_id, stored = step.user_id, step.password_hash
    async with (
        limiter.one_at_a_time("password", str(flow_id)),
        limiter.attempt(
            (policy.login_failures_per_identifier, ("login-fail", identifier)),
            (policy.login_failures_per_ip, ("login-fail-ip", origin.ip or "-")),
        ) as attempt,
    ):
        # The hash runs off the event loop and outside any transaction. An unknown account costs the same
        # argon2 work and gets the same answer as a wrong password.
        ok = await runtime.passwords.verify_off_loop(stored or runtime.dummy_password_hash, password)
        if not ok or user_id is None or stored is None:
            failed = audit_row(
                "login_failed",
                now=now,
                origin=origin,
                user_id=user_id,
                details={"reason": "wrong_password" if user_id else "unknown_account"},
            )
            await attempt.failed()
            await runtime.writes.write(WriteUnit(rows=(failed,)))
            raise InvalidCredentialsError()
    statements = []
    if runtime.passwords.needs_rehash(stored):
        statements.append(rehash_password(user_id, stored, await runtime.passwords.hash_off_loop(password)))
    created, session_row = new_session(user_id, now=now, ttl=session_ttl(runtime), origin=origin)
    succeeded = audit_row(
        "login_succeeded", now=now, origin=origin, user_id=user_id, details={"method": "password"}
    )
    unit = WriteUnit(
        rows=(session_row, succeeded), claim=Claim(PASSWORD_STEP_DONE, flow_id, now), statements=statements
    )
    try:
        await runtime.writes.write(unit)  # the session exists only if this request completed the flow
    except ClaimLost:
        raise InvalidFlowError() from None
    return await complete_signin(runtime, user_id, step.is_admin, created, params, origin=origin, now=now)


def session_ttl(runtime: Runtime) -> timedelta:
    return timedelta(seconds=runtime.settings.session_ttl)


async def complete_signin(
    runtime: Runtime,
    user_id: uuid.UUID,
    is_admin: bool,
    new_session: NewSession,
    params: dict[str, Any] | None,
    *,
    origin: RequestOrigin,
    now: datetime,
) -> Completion:
    """With an oauth2_context: validate it again in full, then issue a code or say consent is needed."""
    if params is None:
        return Completion(user_id, new_session)
    signed_in = SignedIn(user_id, new_session.session_id, now, is_admin)
    try:
        pending = await validate(runtime, params, signed_in, now=now)
    except (az.UnredirectableError, az.RedirectableError) as error:
        raise InvalidRequestError(f"oauth2_context: {error.description}") from None
    async with runtime.database.unit_of_work() as session:
        decision, location = await complete_without_prompt(
            runtime, session, pending.client, pending.request, signed_in, origin=origin, now=now
        )
    if location is not None:
        return Completion(user_id, new_session, redirect_url=location)
    screen = ConsentScreen(pending, decision, await runtime.clients.scope_descriptions())
    return Completion(user_id, new_session, consent_info=screen.as_json(), request=params)
