"""Signing in, signing up and linking through an upstream identity provider (SPEC §10).

A trip to the provider is a row: its ``state`` (kept by hash, honoured once), ``nonce`` and PKCE verifier, the
browser it began in (a cookie's hash: a callback carried to another browser signs nobody in there), the
``oauth2_context`` it carries and, when a signed-in person links an account, who they are. The callback takes
the row in one statement before anything else happens, so a replayed callback finds nothing; then the code is
exchanged, the ID token checked (OpenID) or the person's record read (OAuth 2.0), and the linking rules of
``domain.upstreams`` decide. Someone new accepts the terms on a page before an account exists; until then the
provider's answer waits, encrypted, on the row, behind a one-time ticket.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from consentry.domain.accounts import UserStatus
from consentry.domain.profile import acceptable_profile
from consentry.domain.upstreams import (
    SignInOutcome,
    UpstreamAnswerError,
    UpstreamConfig,
    UpstreamIdentity,
    identity_from,
    sign_in_outcome,
)
from consentry.errors import ConflictError, ConsentryError, NotFoundError, ServiceUnavailableError
from consentry.infrastructure.upstream_oauth import UpstreamRefused, UpstreamUnavailable
from consentry.runtime import Runtime
from consentry.services.accounts import time_zones
from consentry.services.sessions import NewSession, create_session
from consentry.services.signin import Completion, check_context, complete_signin, session_ttl
from consentry.services.upstream_providers import config_of, seal_token, token_expiry
from consentry.services.users import create_user, terms_accepted
from consentry.storage.audit import AuditRepository, RequestOrigin
from consentry.storage.consents import ConsentRepository
from consentry.storage.database import Transaction
from consentry.storage.records import LinkedAccount, UpstreamAuthorization, User
from consentry.storage.upstreams import (
    LinkedAccountRepository,
    UpstreamAuthorizationRepository,
    UpstreamProviderRepository,
)
from consentry.storage.users import UserRepository

TRIP_TTL = timedelta(minutes=10)  # from leaving for the provider to accepting the terms


class UpstreamSignInError(ConsentryError):
    """A callback that signs nobody in (bad or used state, refused exchange, bad ID token); nothing was
    created or linked. Shown to the person as a page."""

    error = "upstream_sign_in_failed"
    status_code = 400


@dataclass(frozen=True, slots=True)
class Departure:
    redirect_url: str  # the provider's authorization URL
    browser_token: str  # the cookie that ties the trip to this browser


@dataclass(frozen=True, slots=True)
class TermsNeeded:
    """Someone new: the page asks them to accept the terms, posting the ticket back."""

    ticket: str
    provider: str
    display_name: str
    email: str | None


@dataclass(frozen=True, slots=True)
class EmailTaken:
    """The provider named an existing person's email, which links nothing: they sign in and link it."""

    display_name: str
    email: str


@dataclass(frozen=True, slots=True)
class Linked:
    provider: str


Arrival = Completion | TermsNeeded | EmailTaken | Linked


@dataclass(frozen=True, slots=True)
class _SignedIn:
    """A session made in a transaction; the authorization request is completed with it once that commits."""

    user_id: uuid.UUID
    is_admin: bool
    session: NewSession
    params: dict[str, Any] | None

    async def complete(self, runtime: Runtime, *, origin: RequestOrigin, now: datetime) -> Completion:
        return await complete_signin(
            runtime, self.user_id, self.is_admin, self.session, self.params, origin=origin, now=now
        )


def callback_uri(runtime: Runtime, name: str) -> str:
    return f"{runtime.issuer}/auth/upstream/{name}/callback"


async def _enabled(runtime: Runtime, session: Transaction, name: str) -> UpstreamConfig:
    provider = await UpstreamProviderRepository(session).get(name)
    if provider is None or not provider.enabled:
        raise NotFoundError("no such upstream provider")
    return config_of(runtime, provider)


async def start(
    runtime: Runtime,
    name: str,
    *,
    context: Mapping[str, Any] | None,
    browser_token: str | None,
    link_user: uuid.UUID | None = None,
    now: datetime,
) -> Departure:
    """Off to the provider: the ``oauth2_context`` is checked now (and again at the end, as §3's is)."""
    params = await check_context(runtime, context, now=now)
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    browser_token = browser_token if browser_token and len(browser_token) <= 64 else secrets.token_urlsafe(32)
    async with runtime.database.unit_of_work() as session:
        config = await _enabled(runtime, session, name)
        await UpstreamAuthorizationRepository(session).add(
            UpstreamAuthorization(
                state_hash=runtime.secret_hasher.hash(state),
                provider=name,
                browser_hash=runtime.secret_hasher.hash(browser_token),
                nonce=nonce,
                code_verifier=runtime.secret_box.seal(verifier.encode()),
                oauth2_context=params,
                link_user_id=link_user,
                step="sent",
                created_at=now,
                expires_at=now + TRIP_TTL,
            )
        )
    url = runtime.upstream_oauth.authorization_url(
        config, redirect_uri=callback_uri(runtime, name), state=state, nonce=nonce, code_verifier=verifier
    )
    return Departure(url, browser_token)


async def callback(
    runtime: Runtime,
    name: str,
    query: Mapping[str, str],
    *,
    browser_token: str | None,
    origin: RequestOrigin,
    now: datetime,
) -> Arrival:
    state = query.get("state")
    if not state:
        raise UpstreamSignInError("the provider's answer has no state: start again")
    async with runtime.database.unit_of_work() as session:
        trip = await UpstreamAuthorizationRepository(session).take(runtime.secret_hasher.hash(state), now=now)
        if trip is None or trip.provider != name:
            raise UpstreamSignInError(
                "this sign-in was already used, has expired or was not started here: start again"
            )
        if not browser_token or not secrets.compare_digest(
            runtime.secret_hasher.hash(browser_token), trip.browser_hash
        ):
            raise UpstreamSignInError("this sign-in was started in another browser: start again")
        config = await _enabled(runtime, session, name)
        nonce, link_user, params = trip.nonce, trip.link_user_id, trip.oauth2_context
        verifier = runtime.secret_box.open(trip.code_verifier).decode()
    if config.issuer is not None and "iss" in query and query["iss"] != config.issuer:
        # RFC 9207: the answer came from another provider (a mix-up attack)
        raise UpstreamSignInError(
            "the answer did not come from %(provider)s (iss): start again",
            values={"provider": config.display_name},
        )
    if query.get("error"):
        raise UpstreamSignInError(
            "%(provider)s answered: %(error)s",
            values={"provider": config.display_name, "error": query["error"][:200]},
        )
    code = query.get("code")
    if not code:
        raise UpstreamSignInError(
            "%(provider)s sent no code: start again", values={"provider": config.display_name}
        )
    identity, token = await _identity(runtime, config, code=code, verifier=verifier, nonce=nonce)
    if link_user is not None:
        return await _link(runtime, config, identity, token, link_user, origin=origin, now=now)
    async with runtime.database.unit_of_work() as session:
        arrival = await _arrive(
            runtime, session, config, identity, token, state, params, origin=origin, now=now
        )
    if isinstance(arrival, _SignedIn):
        return await arrival.complete(runtime, origin=origin, now=now)
    return arrival


async def _arrive(
    runtime: Runtime,
    session: Transaction,
    config: UpstreamConfig,
    identity: UpstreamIdentity,
    token: Mapping[str, Any],
    state: str,
    params: dict[str, Any] | None,
    *,
    origin: RequestOrigin,
    now: datetime,
) -> _SignedIn | TermsNeeded | EmailTaken:
    """Someone not signed in came back from the provider: the linking rules decide."""
    links = LinkedAccountRepository(session)
    link = await links.find(config.name, identity.uid, for_update=True)
    if link is not None:
        return await _sign_in(runtime, session, config, link, identity, token, params, origin=origin, now=now)
    owner = await UserRepository(session).find_active("email", identity.email) if identity.email else None
    outcome = sign_in_outcome(
        email_owner_exists=owner is not None,
        trust_email=config.trust_email,
        email_verified=identity.email_verified,
    )
    if outcome is SignInOutcome.LINK_BY_EMAIL and owner is not None:
        link = _new_link(runtime, owner.id, config, identity, token, now=now)
        if not await links.add(link):
            raise UpstreamSignInError(
                "this %(provider)s account was linked meanwhile: start again",
                values={"provider": config.display_name},
            )
        await AuditRepository(session).record(
            "account_linked", now=now, origin=origin, user_id=owner.id,
            details={"provider": config.name, "via": "verified_email"},
        )  # fmt: skip
        return await _sign_in(runtime, session, config, link, identity, token, params, origin=origin, now=now)
    if outcome is SignInOutcome.EMAIL_TAKEN and identity.email is not None:
        return EmailTaken(config.display_name, identity.email)
    ticket = secrets.token_urlsafe(32)
    await UpstreamAuthorizationRepository(session).await_terms(
        runtime.secret_hasher.hash(state),
        ticket_hash=runtime.secret_hasher.hash(ticket),
        answer=runtime.secret_box.seal(orjson.dumps(_answer(identity, token))),
    )
    return TermsNeeded(ticket, config.name, config.display_name, identity.email)


async def accept_terms(
    runtime: Runtime,
    name: str,
    ticket: str | None,
    *,
    accepted: bool,
    browser_token: str | None,
    origin: RequestOrigin,
    now: datetime,
) -> Completion:
    """Someone new accepted the terms: their account, linked to the provider's, and a session."""
    if not accepted:
        raise UpstreamSignInError("accept the terms to create an account")
    if not ticket or len(ticket) > 64:
        raise UpstreamSignInError("this page has expired: start again")
    async with runtime.database.unit_of_work() as session:
        trip = await UpstreamAuthorizationRepository(session).take_ticket(
            runtime.secret_hasher.hash(ticket), now=now
        )
        if trip is None or trip.provider != name or trip.answer is None:
            raise UpstreamSignInError("this page has expired or was already used: start again")
        if not browser_token or not secrets.compare_digest(
            runtime.secret_hasher.hash(browser_token), trip.browser_hash
        ):
            raise UpstreamSignInError("this sign-in was started in another browser: start again")
        config = await _enabled(runtime, session, name)
        answer = orjson.loads(runtime.secret_box.open(trip.answer))
        identity = UpstreamIdentity(
            answer["uid"], answer["email"], answer["email_verified"], answer["profile"]
        )
        params, token = trip.oauth2_context, answer["token"]
        users = UserRepository(session)
        # The provider's email becomes the account's only when the operator trusts its checks and it checked.
        email = identity.email if config.trust_email and identity.email_verified else None
        if email is not None and await users.identifier_taken(email=email):
            email = None
        user = await create_user(
            session,
            passwords=runtime.passwords,
            now=now,
            email=email,
            verified=email is not None,
            linked=True,
        )
        _profile_onto(user, identity)
        link = _new_link(runtime, user.id, config, identity, token, now=now)
        if not await LinkedAccountRepository(session).add(link):
            raise UpstreamSignInError(
                "this %(provider)s account was linked meanwhile: start again",
                values={"provider": config.display_name},
            )
        await ConsentRepository(session).add_history(terms_accepted(user.id, origin=origin, now=now))
        audit = AuditRepository(session)
        await audit.record(
            "user_registered", now=now, origin=origin, user_id=user.id,
            details={"via": "upstream", "provider": config.name},
        )  # fmt: skip
        await audit.record(
            "account_linked", now=now, origin=origin, user_id=user.id,
            details={"provider": config.name, "via": "sign_up"},
        )  # fmt: skip
        ready = await _signed_in(
            runtime, session, config, user.id, user.is_admin, params, origin=origin, now=now
        )
    return await ready.complete(runtime, origin=origin, now=now)


async def _identity(
    runtime: Runtime, config: UpstreamConfig, *, code: str, verifier: str, nonce: str
) -> tuple[UpstreamIdentity, dict[str, Any]]:
    """Exchange the code and learn who the person is: the ID token's claims (OpenID; the userinfo record
    fills in an email the token leaves out), or the userinfo record (OAuth 2.0)."""
    upstream = runtime.upstream_oauth
    try:
        token = await upstream.exchange(
            config, redirect_uri=callback_uri(runtime, config.name), code=code, code_verifier=verifier
        )
        verified_email = None
        if config.is_oidc:
            if not isinstance(token.get("id_token"), str):
                raise UpstreamRefused("the provider sent no ID token")
            record = await upstream.id_token_claims(config, token["id_token"], nonce=nonce)
            if config.email_field not in record and config.userinfo_url:
                extra = await upstream.person(config, token["access_token"])
                if extra.get("sub") == record["sub"]:  # OpenID Connect Core §5.3.2
                    record = {**extra, **record}
        else:
            record = await upstream.person(config, token["access_token"])
            verified_email = await upstream.verified_email(config, token["access_token"])
        identity = identity_from(
            record, uid_field=config.uid_field, email_field=config.email_field, verified_email=verified_email
        )
    except (UpstreamRefused, UpstreamAnswerError) as exc:
        raise UpstreamSignInError(
            "%(provider)s: %(reason)s", values={"provider": config.display_name, "reason": str(exc)}
        ) from None
    except UpstreamUnavailable as exc:
        raise ServiceUnavailableError(
            f"{config.display_name} cannot be reached: {exc}", retry_after=5
        ) from None
    return identity, token


def _answer(identity: UpstreamIdentity, token: Mapping[str, Any]) -> dict[str, Any]:
    kept = {key: token.get(key) for key in ("access_token", "refresh_token", "expires_at")}
    return {
        "uid": identity.uid,
        "email": identity.email,
        "email_verified": identity.email_verified,
        "profile": identity.profile,
        "token": kept,
    }


def _new_link(
    runtime: Runtime,
    user_id: uuid.UUID,
    config: UpstreamConfig,
    identity: UpstreamIdentity,
    token: Mapping[str, Any],
    *,
    now: datetime,
) -> LinkedAccount:
    return LinkedAccount(
        user_id=user_id,
        provider=config.name,
        provider_uid=identity.uid,
        email=identity.email,
        email_verified=identity.email_verified,
        profile=identity.profile,
        access_token=seal_token(runtime, token.get("access_token")),
        refresh_token=seal_token(runtime, token.get("refresh_token")),
        token_expires_at=token_expiry(token),
        linked_at=now,
        last_used_at=now,
    )


async def _refresh_link(
    runtime: Runtime,
    session: Transaction,
    link: LinkedAccount,
    identity: UpstreamIdentity,
    token: Mapping[str, Any],
    *,
    now: datetime,
) -> None:
    """The provider's fresh tokens and profile, at each sign-in."""
    links = LinkedAccountRepository(session)
    await links.update_tokens(
        link.id,
        access_token=seal_token(runtime, token.get("access_token")),
        refresh_token=seal_token(runtime, token.get("refresh_token")),
        expires_at=token_expiry(token),
    )
    await links.update_profile(
        link.id,
        email=identity.email,
        email_verified=identity.email_verified,
        profile=identity.profile,
        now=now,
    )


async def _sign_in(
    runtime: Runtime,
    session: Transaction,
    config: UpstreamConfig,
    link: LinkedAccount,
    identity: UpstreamIdentity,
    token: Mapping[str, Any],
    params: dict[str, Any] | None,
    *,
    origin: RequestOrigin,
    now: datetime,
) -> _SignedIn:
    user = await UserRepository(session).get_user(link.user_id, for_update=True)
    if user is not None and user.status is UserStatus.DELETED and user.purge_after and user.purge_after > now:
        # Signing in during the grace period restores a deleted account (SPEC §4), whichever way it is.
        user.status, user.deleted_at, user.purge_after, user.updated_at = UserStatus.ACTIVE, None, None, now
        await AuditRepository(session).record("user_restored", now=now, origin=origin, user_id=user.id)
    if user is None or user.status is not UserStatus.ACTIVE:
        raise UpstreamSignInError("the account linked to this provider is closed")
    await _refresh_link(runtime, session, link, identity, token, now=now)
    return await _signed_in(runtime, session, config, user.id, user.is_admin, params, origin=origin, now=now)


async def _signed_in(
    runtime: Runtime,
    session: Transaction,
    config: UpstreamConfig,
    user_id: uuid.UUID,
    is_admin: bool,
    params: dict[str, Any] | None,
    *,
    origin: RequestOrigin,
    now: datetime,
) -> _SignedIn:
    created = await create_session(session, user_id, now=now, ttl=session_ttl(runtime), origin=origin)
    await AuditRepository(session).record(
        "login_succeeded", now=now, origin=origin, user_id=user_id,
        details={"method": "upstream", "provider": config.name},
    )  # fmt: skip
    return _SignedIn(user_id, is_admin, created, params)


async def _link(
    runtime: Runtime,
    config: UpstreamConfig,
    identity: UpstreamIdentity,
    token: Mapping[str, Any],
    user_id: uuid.UUID,
    *,
    origin: RequestOrigin,
    now: datetime,
) -> Linked:
    """A signed-in person links the provider's account to theirs (they started it from ``/account``)."""
    async with runtime.database.unit_of_work() as session:
        links = LinkedAccountRepository(session)
        holder = await links.find(config.name, identity.uid, for_update=True)
        if holder is not None and holder.user_id != user_id:
            raise ConflictError(
                "this %(provider)s account is linked to another person",
                values={"provider": config.display_name},
            )
        if holder is not None:
            await _refresh_link(runtime, session, holder, identity, token, now=now)
            return Linked(config.name)
        if not await links.add(_new_link(runtime, user_id, config, identity, token, now=now)):
            raise ConflictError(
                "another %(provider)s account is linked to yours: unlink it first",
                values={"provider": config.display_name},
            )
        await AuditRepository(session).record(
            "account_linked", now=now, origin=origin, user_id=user_id,
            details={"provider": config.name, "via": "account"},
        )  # fmt: skip
    return Linked(config.name)


def _profile_onto(user: User, identity: UpstreamIdentity) -> None:
    """A new account starts with the provider's name, picture and language (the person edits them later):
    those of its values that their claims can hold."""
    profile = dict(identity.profile)
    profile["preferred_username"] = profile.get("preferred_username") or profile.get("login") or ""
    for field, value in acceptable_profile(profile, time_zones=time_zones()).items():
        setattr(user, field, value)
