"""The token endpoint (RFC 6749 §4.1.3, §4.4, §6; RFC 7636 §4.6; OIDC Core §3.1.3, §12).

Security rules live next to the code that enforces them:
- a code is single use; a replayed code revokes every token issued from it (RFC 6749 §4.1.2);
- refresh tokens rotate on every use; presenting a rotated one revokes the whole family (RFC 9700 §4.14.2);
- a refresh token works only while the consent it was issued under is live (SPEC §6).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from consentry.crypto.hashing import new_token, token_hash
from consentry.domain import pkce
from consentry.domain.clients import (
    GRANT_AUTHORIZATION_CODE,
    GRANT_CLIENT_CREDENTIALS,
    GRANT_REFRESH_TOKEN,
    RegisteredClient,
)
from consentry.domain.scopes import OPENID, InvalidScopeToken, Scopes
from consentry.domain.tokens import ScopeWidening, at_hash, refreshed_scopes
from consentry.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from consentry.runtime import Runtime
from consentry.storage.audit import AuditRepository, RequestOrigin
from consentry.storage.consents import ConsentRepository
from consentry.storage.tables import AccessToken, AuthorizationCode, ConsentStatus, RefreshToken
from consentry.storage.tokens import TokenRepository

USER_ONLY_SCOPES = frozenset({OPENID, "offline_access"})


@dataclass(frozen=True, slots=True)
class UserGrant:
    """What tokens for a person carry over from the grant they were issued under."""

    user_id: uuid.UUID
    scopes: Scopes
    family_id: uuid.UUID
    consent_id: uuid.UUID | None
    auth_time: datetime | None
    nonce: str | None


async def exchange(
    runtime: Runtime,
    client: RegisteredClient,
    form: Mapping[str, str],
    *,
    origin: RequestOrigin,
    now: datetime,
) -> dict[str, Any]:
    grant_type = form.get("grant_type")
    if not grant_type:
        raise InvalidRequestError("grant_type is required")
    if grant_type not in (GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN, GRANT_CLIENT_CREDENTIALS):
        raise UnsupportedGrantTypeError(f"unsupported grant_type: {grant_type[:64]}")
    if not client.allows_grant(grant_type):
        raise UnauthorizedClientError(f"this client may not use the {grant_type} grant")
    await runtime.keys.ensure_loaded(now=now)  # before any transaction: it may write new keys
    if grant_type == GRANT_AUTHORIZATION_CODE:
        return await _authorization_code(runtime, client, form, origin=origin, now=now)
    if grant_type == GRANT_REFRESH_TOKEN:
        return await _refresh_token(runtime, client, form, origin=origin, now=now)
    return await _client_credentials(runtime, client, form, origin=origin, now=now)


async def _authorization_code(
    runtime: Runtime,
    client: RegisteredClient,
    form: Mapping[str, str],
    *,
    origin: RequestOrigin,
    now: datetime,
) -> dict[str, Any]:
    code = form.get("code")
    if not code:
        raise InvalidRequestError("code is required")
    redirect_uri = form.get("redirect_uri")
    async with runtime.database.unit_of_work() as session:
        tokens = TokenRepository(session)
        stored = await tokens.get_code(token_hash(code))
        if stored is None or stored.client_id != client.id:
            raise InvalidGrantError("the code is invalid", debug="unknown code or another client's code")
        replayed = stored.used_at is not None or not await tokens.consume_code(stored.code_hash, now=now)
        if replayed:
            await _revoke_grant(
                session,
                stored,
                "token_revoked",
                {"reason": "authorization_code_replay"},
                origin=origin,
                now=now,
            )
        else:
            _check_code(stored, client, redirect_uri, form.get("code_verifier"), now=now)
            grant = UserGrant(
                stored.user_id,
                stored.scopes,
                stored.family_id,
                stored.consent_id,
                stored.auth_time,
                stored.nonce,
            )
            response = await _issue_user_tokens(
                runtime,
                session,
                client,
                grant,
                grant.scopes,
                now=now,
                with_refresh=stored.consent_id is not None,
            )
            await AuditRepository(session).record(
                "token_issued",
                now=now,
                origin=origin,
                user_id=stored.user_id,
                client_id=client.id,
                scopes=stored.scopes,
                details={"grant_type": GRANT_AUTHORIZATION_CODE},
            )
    if replayed:  # raised only now, so the revocation above is committed
        raise InvalidGrantError(
            "the code has already been used", debug="code replay; its tokens were revoked"
        )
    return response


def _check_code(
    stored: AuthorizationCode,
    client: RegisteredClient,
    redirect_uri: str | None,
    verifier: str | None,
    *,
    now: datetime,
) -> None:
    if now >= stored.expires_at:
        raise InvalidGrantError("the code has expired")
    # RFC 6749 §4.1.3: redirect_uri must be identical to the one in the authorization request.
    if redirect_uri != stored.redirect_uri:
        raise InvalidGrantError("redirect_uri does not match the authorization request")
    if stored.code_challenge is not None:
        if not pkce.verify(verifier, stored.code_challenge, stored.code_challenge_method or ""):
            raise InvalidGrantError("code_verifier does not match the code_challenge")
    elif verifier is not None:
        raise InvalidGrantError("code_verifier sent but no code_challenge was given")
    elif client.is_public:
        raise InvalidGrantError("PKCE is required for public clients")


async def _revoke_grant(
    session: AsyncSession,
    stored: AuthorizationCode | RefreshToken,
    event_type: str,
    details: dict[str, Any],
    *,
    origin: RequestOrigin,
    now: datetime,
) -> None:
    """Revoke every token of the grant ``stored`` belongs to, and record why.

    Used for a replayed code (RFC 6749 §4.1.2) and a reused refresh token (RFC 9700 §4.14.2): either means a
    copy is in the wrong hands.
    """
    revoked = await TokenRepository(session).revoke_family(stored.family_id, now=now)
    await AuditRepository(session).record(
        event_type,
        now=now,
        origin=origin,
        user_id=stored.user_id,
        client_id=stored.client_id,
        scopes=stored.scopes,
        actor="system",
        details={**details, "revoked": revoked},
    )


async def _refresh_token(
    runtime: Runtime,
    client: RegisteredClient,
    form: Mapping[str, str],
    *,
    origin: RequestOrigin,
    now: datetime,
) -> dict[str, Any]:
    presented = form.get("refresh_token")
    if not presented:
        raise InvalidRequestError("refresh_token is required")
    requested = _parse_scope(form.get("scope"))
    async with runtime.database.unit_of_work() as session:
        tokens = TokenRepository(session)
        stored = await tokens.get_refresh_token(token_hash(presented))
        if stored is None or stored.client_id != client.id:
            raise InvalidGrantError("the refresh token is invalid")
        if stored.revoked_at is not None or now >= stored.expires_at:
            raise InvalidGrantError("the refresh token is no longer valid")
        reused = stored.rotated_at is not None or not await tokens.mark_rotated(stored.token_hash, now=now)
        if reused:
            await _revoke_grant(
                session,
                stored,
                "refresh_token_reuse_detected",
                {"family_id": str(stored.family_id)},
                origin=origin,
                now=now,
            )
        else:
            consents = ConsentRepository(session)
            consent = await consents.get(stored.consent_id) if stored.consent_id else None
            if consent is None or consent.status != ConsentStatus.ACTIVE or now >= consent.expires_at:
                raise InvalidGrantError("the consent this token was issued under has ended")
            try:
                scopes = refreshed_scopes(requested, stored.scopes)
            except ScopeWidening as exc:
                raise InvalidScopeError(str(exc)) from exc
            grant = UserGrant(
                stored.user_id, stored.scopes, stored.family_id, stored.consent_id, stored.auth_time, None
            )
            response = await _issue_user_tokens(
                runtime, session, client, grant, scopes, now=now, with_refresh=True
            )
            await runtime.consent_usage.record(session, consent.id, now=now)
            await AuditRepository(session).record(
                "token_refreshed",
                now=now,
                origin=origin,
                user_id=stored.user_id,
                client_id=client.id,
                scopes=scopes,
            )
    if reused:  # raised only now, so the family's revocation above is committed
        raise InvalidGrantError("the refresh token has already been used", debug="reuse; family revoked")
    return response


async def _client_credentials(
    runtime: Runtime,
    client: RegisteredClient,
    form: Mapping[str, str],
    *,
    origin: RequestOrigin,
    now: datetime,
) -> dict[str, Any]:
    """RFC 6749 §4.4: a token for the client itself; no refresh token (§4.4.3), no person, no ID token."""
    if client.is_public:
        raise UnauthorizedClientError("public clients cannot use client_credentials")
    requested = _parse_scope(form.get("scope"))
    allowed = client.scopes - USER_ONLY_SCOPES
    scopes = requested if requested is not None else Scopes()
    if not scopes <= allowed:
        raise InvalidScopeError(f"scope not allowed for this client: {(scopes - allowed).format()}")
    access = new_token()
    expires_in = int(runtime.lifetimes.access_token.total_seconds())
    async with runtime.database.unit_of_work() as session:
        await TokenRepository(session).add_tokens(
            AccessToken(
                token_hash=token_hash(access),
                client_id=client.id,
                scopes=scopes,
                created_at=now,
                expires_at=now + runtime.lifetimes.access_token,
            )
        )
        await AuditRepository(session).record(
            "token_issued",
            now=now,
            origin=origin,
            client_id=client.id,
            scopes=scopes,
            actor="client",
            details={"grant_type": GRANT_CLIENT_CREDENTIALS},
        )
    response: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": expires_in}
    if scopes:
        response["scope"] = scopes.format()
    return response


def _parse_scope(value: str | None) -> Scopes | None:
    if value is None:
        return None
    try:
        return Scopes.parse(value)
    except InvalidScopeToken as exc:
        raise InvalidScopeError(str(exc)) from exc


async def _issue_user_tokens(
    runtime: Runtime,
    session: AsyncSession,
    client: RegisteredClient,
    grant: UserGrant,
    scopes: Scopes,
    *,
    now: datetime,
    with_refresh: bool,
) -> dict[str, Any]:
    """Access token for ``scopes``; refresh token (same family, the grant's scopes); ID token for openid."""
    lifetimes = runtime.lifetimes
    access = new_token()
    rows: list[AccessToken | RefreshToken] = [
        AccessToken(
            token_hash=token_hash(access),
            client_id=client.id,
            user_id=grant.user_id,
            family_id=grant.family_id,
            consent_id=grant.consent_id,
            scopes=scopes,
            auth_time=grant.auth_time,
            created_at=now,
            expires_at=now + lifetimes.access_token,
        )
    ]
    response: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": int(lifetimes.access_token.total_seconds()),
        "scope": scopes.format(),
    }
    if with_refresh and client.allows_grant(GRANT_REFRESH_TOKEN):
        refresh = new_token()
        rows.append(
            RefreshToken(
                token_hash=token_hash(refresh),
                client_id=client.id,
                user_id=grant.user_id,
                family_id=grant.family_id,
                consent_id=grant.consent_id,
                scopes=grant.scopes,
                auth_time=grant.auth_time,
                created_at=now,
                expires_at=now + lifetimes.refresh_token,
            )
        )
        response["refresh_token"] = refresh
    await TokenRepository(session).add_tokens(*rows)
    if OPENID in scopes:
        response["id_token"] = await _id_token(runtime, session, client, grant, access, now=now)
    return response


async def _id_token(
    runtime: Runtime,
    session: AsyncSession,
    client: RegisteredClient,
    grant: UserGrant,
    access_token: str,
    *,
    now: datetime,
) -> str:
    """OIDC Core §2: iss, sub, aud, exp, iat, auth_time, nonce, at_hash; signed with the active key."""
    issued_at = int(now.timestamp())
    claims: dict[str, Any] = {
        "iss": runtime.issuer,
        "sub": await runtime.subjects.subject_for(session, grant.user_id, client, now=now),
        "aud": client.id,
        "exp": issued_at + int(runtime.lifetimes.access_token.total_seconds()),
        "iat": issued_at,
        "at_hash": at_hash(access_token),
    }
    if grant.auth_time is not None:
        claims["auth_time"] = int(grant.auth_time.timestamp())
    if grant.nonce is not None:
        claims["nonce"] = grant.nonce
    return runtime.keys.sign(claims)
