"""The authorization endpoint's use case (RFC 6749 §4.1.1-§4.1.2, OIDC Core §3.1.2), and issuing codes.

Pipeline, in order (each step's failure says where the person goes):
  client + redirect_uri       → 400 page, never a redirect
  request parameters          → error redirect to the client
  session, prompt, max_age    → /login, or login_required
  consent decision            → /consent, or consent_required
  code                        → redirect with code, state, iss
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from consentry.crypto.hashing import new_token, token_hash
from consentry.domain import authorization as az
from consentry.domain.clients import RegisteredClient
from consentry.domain.consent import ClientConsentPolicy, ConsentDecision, StoredConsent, decide
from consentry.domain.scopes import Scopes
from consentry.domain.tokens import auth_too_old
from consentry.errors import (
    AccessDeniedError,
    ConsentRequiredError,
    ConsentryError,
    InvalidRequestError,
    LoginRequiredError,
)
from consentry.runtime import Runtime
from consentry.services.client_documents import ClientDocumentError, current_client
from consentry.services.consent_grants import consent_ttl, record_consent
from consentry.services.sessions import SignedIn
from consentry.storage.audit import RequestOrigin, audit_row
from consentry.storage.consents import LIVE_CONSENT, ConsentRepository, to_stored
from consentry.storage.database import Transaction
from consentry.storage.group_commit import Claim, ClaimLost, Row, WriteUnit, add_rows
from consentry.storage.tokens import AUTHORIZATION_CODES

OutcomeKind = Literal["code", "login", "consent", "error"]


@dataclass(frozen=True, slots=True)
class AuthorizeOutcome:
    kind: OutcomeKind
    location: str


@dataclass(frozen=True, slots=True)
class ValidatedRequest:
    client: RegisteredClient
    request: az.AuthorizationRequest


async def check_client(
    runtime: Runtime, params: Mapping[str, str], *, now: datetime
) -> tuple[RegisteredClient, str]:
    """Stage one: the client (its metadata document fetched if it has one, SPEC §8) and its redirect URI;
    :class:`az.UnredirectableError` if either is wrong."""
    try:
        client = await current_client(runtime, params.get("client_id"), now=now)
    except ClientDocumentError as exc:
        raise az.UnredirectableError(exc) from None
    redirect_uri = az.check_client_and_redirect(client, params.get("redirect_uri"))
    assert client is not None
    return client, redirect_uri


async def parse(
    runtime: Runtime, client: RegisteredClient, params: Mapping[str, str], person: SignedIn | None
) -> az.AuthorizationRequest:
    """Stage two, for a client that passed stage one: :class:`az.RedirectableError` if anything is wrong.

    For a ``person`` who is not an admin, restricted scopes are left out (SPEC §7)."""
    catalogue = await runtime.clients.catalogue_covering(
        (params.get("scope") or "").split(), (params.get("resource") or "").split()
    )
    request = az.parse_request(params, client, catalogue=catalogue)
    if person is None or person.is_admin:
        return request
    scopes = catalogue.grantable(request.scopes, trusted_client=client.trusted, admin=False)
    if not scopes:
        raise az.RedirectableError(AccessDeniedError("what this application asks for is for administrators"))
    return request if scopes == request.scopes else replace(request, scopes=scopes)


async def validate(
    runtime: Runtime, params: Mapping[str, str], person: SignedIn | None, *, now: datetime
) -> ValidatedRequest:
    """Both stages; raises :class:`az.UnredirectableError` or :class:`az.RedirectableError`."""
    client, _ = await check_client(runtime, params, now=now)
    return ValidatedRequest(client, await parse(runtime, client, params, person))


def error_location(runtime: Runtime, redirect_uri: str, error: ConsentryError, state: str | None) -> str:
    """Where the browser goes to tell the client of ``error`` (RFC 6749 §4.1.2.1)."""
    return az.error_redirect(
        redirect_uri, error=error.error, description=error.description, state=state, issuer=runtime.issuer
    )


def safe_state(params: Mapping[str, str]) -> str | None:
    """The state to echo in an error redirect, even when the request is otherwise invalid."""
    state = params.get("state")
    return state if state and len(state) <= az.MAX_STATE else None


async def authorize(
    runtime: Runtime,
    params: Mapping[str, str],
    signed_in: SignedIn | None,
    *,
    repeated: frozenset[str] = frozenset(),
    origin: RequestOrigin,
    now: datetime,
) -> AuthorizeOutcome:
    """Run the pipeline; :class:`az.UnredirectableError` escapes for the router to show."""
    if repeated & {"client_id", "redirect_uri"}:
        raise az.UnredirectableError(InvalidRequestError("client_id and redirect_uri must not be repeated"))
    client, redirect_uri = await check_client(runtime, params, now=now)
    try:
        if repeated & set(az.REQUEST_PARAMETERS):
            names = ", ".join(sorted(repeated & set(az.REQUEST_PARAMETERS)))
            raise az.RedirectableError(InvalidRequestError(f"repeated parameter: {names}"))
        request = await parse(runtime, client, params, signed_in)
    except az.RedirectableError as error:
        return AuthorizeOutcome(
            "error", error_location(runtime, redirect_uri, error.cause, safe_state(params))
        )

    needs_login = (
        signed_in is None
        or "login" in request.prompts
        or auth_too_old(auth_time=signed_in.auth_time, max_age=request.max_age, now=now)
    )
    if needs_login:
        if "none" in request.prompts:
            login_required = LoginRequiredError("the person must sign in")
            return AuthorizeOutcome(
                "error", error_location(runtime, redirect_uri, login_required, request.state)
            )
        return AuthorizeOutcome("login", f"/login?{request.query_string()}")
    assert signed_in is not None

    def ask_consent() -> AuthorizeOutcome:
        if "none" in request.prompts:
            consent_required = ConsentRequiredError("the person must consent")
            return AuthorizeOutcome(
                "error", error_location(runtime, redirect_uri, consent_required, request.state)
            )
        return AuthorizeOutcome("consent", f"/consent?{request.query_string()}")

    active = await runtime.consent_lookup.get(signed_in.user_id, client.id)
    decision = _decide(client, request, active.stored if active else None, now=now)
    if decision.prompt:
        return ask_consent()
    if active is not None and _covers(active.stored, decision, now=now):
        # The common case, a remembered consent: the code is group-committed, conditional on the consent
        # still being live when it is written.
        scopes = decision.effective_scopes
        code, row = code_row(runtime, client, request, signed_in, scopes, active.id, now=now)
        audit = _granted(client, signed_in, scopes, origin=origin, now=now)
        touch = runtime.consent_usage.due(active.id, now=now)
        unit = WriteUnit(
            rows=(row, audit),
            claim=Claim(LIVE_CONSENT, active.id, now),
            statements=() if touch is None else (touch,),
        )
        try:
            await runtime.writes.write(unit)
        except ClaimLost:  # revoked or expired since it was read: ask again
            return ask_consent()
        return AuthorizeOutcome("code", _code_location(runtime, request, code))
    async with runtime.database.unit_of_work() as session:  # a trusted client: its consent is recorded
        decision, location = await complete_without_prompt(
            runtime, session, client, request, signed_in, origin=origin, now=now
        )
    if location is None:  # revoked or narrowed since it was read
        return ask_consent()
    return AuthorizeOutcome("code", location)


def _decide(
    client: RegisteredClient,
    request: az.AuthorizationRequest,
    existing: StoredConsent | None,
    *,
    now: datetime,
) -> ConsentDecision:
    return decide(
        existing,
        request.scopes,
        ClientConsentPolicy(client.trusted, client.policy_version),
        force_prompt="consent" in request.prompts,
        now=now,
    )


def _covers(existing: StoredConsent, decision: ConsentDecision, *, now: datetime) -> bool:
    return existing.is_live(now=now) and decision.effective_scopes <= existing.scopes


async def consent_decision(
    session: Transaction,
    client: RegisteredClient,
    request: az.AuthorizationRequest,
    user_id: uuid.UUID,
    *,
    now: datetime,
) -> ConsentDecision:
    """Whether to show the consent screen, and what it shows (for GET /oauth2/consent)."""
    existing = await ConsentRepository(session).get_active(user_id, client.id)
    return _decide(client, request, to_stored(existing) if existing else None, now=now)


async def complete_without_prompt(
    runtime: Runtime,
    session: Transaction,
    client: RegisteredClient,
    request: az.AuthorizationRequest,
    signed_in: SignedIn,
    *,
    origin: RequestOrigin,
    now: datetime,
) -> tuple[ConsentDecision, str | None]:
    """The decision, and the code's redirect if it needs no prompt: the remembered consent covers the request
    or the client is trusted (its consent is then recorded, for the person to see and revoke). The consent
    is read once, held until the transaction ends."""
    existing = await ConsentRepository(session).get_active_for_update(signed_in.user_id, client.id)
    stored = to_stored(existing) if existing is not None else None
    decision = _decide(client, request, stored, now=now)
    if decision.prompt:
        return decision, None
    if existing is not None and stored is not None and _covers(stored, decision, now=now):
        consent_id: uuid.UUID | None = existing.id
        await runtime.consent_usage.record(session, existing.id, now=now)
    else:
        consent_id = await record_consent(
            runtime,
            session,
            existing,
            user_id=signed_in.user_id,
            client=client,
            requested=decision.effective_scopes,
            granted=decision.effective_scopes,
            ttl=consent_ttl(client, runtime.settings.consent_ttl_days),
            now=now,
            origin=origin,
            actor="system",
        )
    location = await issue_code(
        runtime,
        session,
        client,
        request,
        signed_in,
        decision.effective_scopes,
        consent_id,
        origin=origin,
        now=now,
    )
    return decision, location


async def issue_code(
    runtime: Runtime,
    session: Transaction,
    client: RegisteredClient,
    request: az.AuthorizationRequest,
    signed_in: SignedIn,
    scopes: Scopes,
    consent_id: uuid.UUID | None,
    *,
    origin: RequestOrigin,
    now: datetime,
) -> str:
    """Store a one-time code (by hash) bound to client, redirect URI, PKCE challenge and nonce; audit it."""
    code, row = code_row(runtime, client, request, signed_in, scopes, consent_id, now=now)
    await add_rows(session, row, _granted(client, signed_in, scopes, origin=origin, now=now))
    return _code_location(runtime, request, code)


def code_row(
    runtime: Runtime,
    client: RegisteredClient,
    request: az.AuthorizationRequest,
    signed_in: SignedIn,
    scopes: Scopes,
    consent_id: uuid.UUID | None,
    *,
    now: datetime,
) -> tuple[str, Row]:
    """A new one-time code, and its row: stored by hash, bound to client, redirect URI, PKCE and nonce."""
    code = new_token()
    return code, (
        AUTHORIZATION_CODES,
        {
            "code_hash": token_hash(code),
            "client_id": client.id,
            "user_id": signed_in.user_id,
            "consent_id": consent_id,
            "redirect_uri": request.redirect_uri,
            "scopes": scopes,
            "code_challenge": request.code_challenge,
            "code_challenge_method": request.code_challenge_method,
            "nonce": request.nonce,
            "auth_time": signed_in.auth_time,
            "family_id": uuid.uuid4(),
            "session_id": signed_in.session_id,
            "resources": list(request.resources) or None,
            "created_at": now,
            "expires_at": now + runtime.lifetimes.authorization_code,
        },
    )


def _granted(
    client: RegisteredClient, signed_in: SignedIn, scopes: Scopes, *, origin: RequestOrigin, now: datetime
) -> Row:
    return audit_row(
        "authorization_granted",
        now=now,
        origin=origin,
        user_id=signed_in.user_id,
        client_id=client.id,
        scopes=scopes,
    )


def _code_location(runtime: Runtime, request: az.AuthorizationRequest, code: str) -> str:
    return az.code_redirect(request.redirect_uri, code=code, state=request.state, issuer=runtime.issuer)
