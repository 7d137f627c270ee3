"""The token endpoint (RFC 6749 §4.1.3, §4.4, §6; RFC 7636 §4.6; OIDC Core §3.1.3, §12).

Security rules live next to the code that enforces them:
- a code is single use; a replayed code revokes every token issued from it (RFC 6749 §4.1.2);
- refresh tokens rotate on every use; presenting a rotated one revokes the whole family (RFC 9700 §4.14.2);
- a refresh token works only while the consent it was issued under is live (SPEC §6).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from consentry.crypto.hashing import new_jti, new_token, token_hash
from consentry.domain import pkce
from consentry.domain.clients import (
    GRANT_AUTHORIZATION_CODE,
    GRANT_CLIENT_CREDENTIALS,
    GRANT_REFRESH_TOKEN,
    RegisteredClient,
)
from consentry.domain.resources import (
    InvalidTarget,
    ProtectedResource,
    RestrictedScope,
    TokenFormat,
    access_token_lifetime,
    parse_resources,
    token_format,
)
from consentry.domain.scopes import OFFLINE_ACCESS, OPENID, InvalidScopeToken, Scopes
from consentry.domain.tokens import ScopeWidening, at_hash, refreshed_scopes
from consentry.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    InvalidTargetError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from consentry.infrastructure.subjects import PseudonymRecord, Subject
from consentry.runtime import Runtime
from consentry.storage.audit import AuditRepository, RequestOrigin, audit_row
from consentry.storage.group_commit import Claim, ClaimLost, Row, Statement, WriteUnit
from consentry.storage.tokens import (
    CODE_USE,
    REFRESH_ROTATION,
    CodeRecord,
    TokenRecord,
    TokenRepository,
    token_row,
)

USER_ONLY_SCOPES = frozenset({OPENID, OFFLINE_ACCESS})
ACCESS_TOKEN_ALGORITHM = "ES256"  # RFC 9068 access tokens: the fastest of the provider's keys to sign


@dataclass(frozen=True, slots=True)
class UserGrant:
    """What tokens for a person carry over from the grant they were issued under."""

    user_id: uuid.UUID
    scopes: Scopes
    family_id: uuid.UUID
    consent_id: uuid.UUID | None
    auth_time: datetime | None
    nonce: str | None
    session_id: uuid.UUID | None  # the sign-in session (sid), which the grant ends with
    resources: tuple[str, ...] = ()  # RFC 8707: the resources the grant was asked for


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
    stored = await runtime.token_lookup.codes.get(token_hash(code))
    if stored is None or stored.client_id != client.id:
        raise InvalidGrantError("the code is invalid", debug="unknown code or another client's code")
    if stored.used_at is None:
        _check_code(stored, client, form.get("redirect_uri"), form.get("code_verifier"), now=now)
        grant = UserGrant(
            stored.user_id,
            stored.scopes,
            stored.family_id,
            stored.consent_id,
            stored.auth_time,
            stored.nonce,
            stored.session_id,
            tuple(stored.resources or ()),
        )
        # RFC 8707 §2.2: without ``resource``, the token is for every resource the grant was asked for.
        audience = _narrowed(form.get("resource"), grant.resources) or grant.resources
        issued = await _user_tokens(
            runtime,
            client,
            grant,
            grant.scopes,
            audience,
            now=now,
            with_refresh=stored.consent_id is not None,
        )
        audit = audit_row(
            "token_issued",
            now=now,
            origin=origin,
            user_id=stored.user_id,
            client_id=client.id,
            scopes=stored.scopes,
            details={"grant_type": GRANT_AUTHORIZATION_CODE},
        )
        if await issued.commit(runtime, Claim(CODE_USE, stored.code_hash, now), audit):
            return issued.response
        if not await _code_was_used(runtime, stored.code_hash):
            raise InvalidGrantError("the consent this code was issued under has ended")
        # else a concurrent request used it first: a replay like any other
    await _revoke_grant(
        runtime, stored, "token_revoked", {"reason": "authorization_code_replay"}, origin=origin, now=now
    )
    raise InvalidGrantError("the code has already been used", debug="code replay; its tokens were revoked")


def _check_code(
    stored: CodeRecord,
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
    runtime: Runtime,
    stored: CodeRecord | TokenRecord,
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
    assert stored.family_id is not None  # every code and refresh token belongs to a grant
    async with runtime.database.unit_of_work() as session:
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
    stored = await runtime.token_lookup.refresh.get(token_hash(presented))
    if stored is None or stored.client_id != client.id or stored.user_id is None or stored.family_id is None:
        raise InvalidGrantError("the refresh token is invalid")
    if stored.revoked_at is not None or now >= stored.expires_at:
        raise InvalidGrantError("the refresh token is no longer valid")
    if stored.rotated_at is None:
        if stored.consent_id is None:
            raise InvalidGrantError("the consent this token was issued under has ended")
        try:
            scopes = refreshed_scopes(requested, stored.scopes)
        except ScopeWidening as exc:
            raise InvalidScopeError(str(exc)) from exc
        grant = UserGrant(
            stored.user_id,
            stored.scopes,
            stored.family_id,
            stored.consent_id,
            stored.auth_time,
            None,
            stored.session_id,
            tuple(stored.resources or ()),
        )
        # SPEC §7: a refresh may narrow the resources; without ``resource`` its token is for userinfo.
        audience = _narrowed(form.get("resource"), grant.resources)
        issued = await _user_tokens(runtime, client, grant, scopes, audience, now=now, with_refresh=True)
        touch = runtime.consent_usage.due(stored.consent_id, now=now)
        if touch is not None:
            issued.statements.append(touch)
        audit = audit_row(
            "token_refreshed",
            now=now,
            origin=origin,
            user_id=stored.user_id,
            client_id=client.id,
            scopes=scopes,
        )
        # The rotation is conditional on the consent still being live, in the same statement: a revocation
        # committed after the read above still stops this refresh.
        if await issued.commit(runtime, Claim(REFRESH_ROTATION, stored.token_hash, now), audit):
            return issued.response
        if not await _was_rotated(runtime, stored.token_hash):
            raise InvalidGrantError("the consent this token was issued under has ended")
    await _revoke_grant(
        runtime,
        stored,
        "refresh_token_reuse_detected",
        {"family_id": str(stored.family_id)},
        origin=origin,
        now=now,
    )
    raise InvalidGrantError("the refresh token has already been used", debug="reuse; family revoked")


async def _code_was_used(runtime: Runtime, digest: bytes) -> bool:
    current = await runtime.token_lookup.codes.get(digest)
    return current is not None and current.used_at is not None


async def _was_rotated(runtime: Runtime, digest: bytes) -> bool:
    current = await runtime.token_lookup.refresh.get(digest)
    return current is not None and current.rotated_at is not None


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
    catalogue = await runtime.clients.catalogue_covering(scopes, (form.get("resource") or "").split())
    try:
        resources = parse_resources(form.get("resource"))
        catalogue.check_targets(resources, scopes)
        catalogue.grantable(scopes, trusted_client=client.trusted, admin=True)
    except InvalidTarget as exc:
        raise InvalidTargetError(str(exc)) from None
    except RestrictedScope as exc:
        raise InvalidScopeError(str(exc)) from None
    scopes = catalogue.for_audience(scopes, resources) if resources else scopes
    access = _access_token(
        runtime, client, catalogue.audience(resources), scopes, subject=client.id, auth_time=None, now=now
    )
    lifetime = access.lifetime
    token = token_row(
        "access",
        token_hash=token_hash(access.value, jti=access.jti),
        client_id=client.id,
        scopes=scopes,
        created_at=now,
        expires_at=now + lifetime,
        resources=resources,
        jti=access.jti,
    )
    audit = audit_row(
        "token_issued",
        now=now,
        origin=origin,
        client_id=client.id,
        scopes=scopes,
        actor="client",
        details={"grant_type": GRANT_CLIENT_CREDENTIALS},
    )
    await runtime.writes.write(WriteUnit(rows=(token, audit)))
    response: dict[str, Any] = {
        "access_token": access.value,
        "token_type": "Bearer",
        "expires_in": int(lifetime.total_seconds()),
    }
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


@dataclass(slots=True)
class IssuedTokens:
    """A token response and the writes that make it true; nothing is valid until :meth:`commit` returns."""

    response: dict[str, Any]
    rows: list[Row]
    statements: list[Statement] = field(default_factory=list)
    pseudonym: PseudonymRecord | None = None

    async def commit(self, runtime: Runtime, claim: Claim, audit: Row) -> bool:
        """Group-commit the rows if ``claim`` holds; False (nothing written) when it does not."""
        unit = WriteUnit(rows=(*self.rows, audit), claim=claim, statements=self.statements)
        try:
            await runtime.writes.write(unit)
        except ClaimLost:
            return False
        if self.pseudonym is not None:
            runtime.subjects.remember(self.pseudonym)
        return True


def _narrowed(requested: str | None, granted: tuple[str, ...]) -> tuple[str, ...]:
    """The ``resource`` parameters of a token request, which may only narrow the grant's (RFC 8707 §2.2)."""
    try:
        resources = parse_resources(requested)
    except InvalidTarget as exc:
        raise InvalidTargetError(str(exc)) from None
    beyond = [resource for resource in resources if resource not in granted]
    if beyond:
        raise InvalidTargetError(f"not among the resources this grant was asked for: {beyond[0][:200]}")
    return resources


@dataclass(frozen=True, slots=True)
class AccessTokenValue:
    value: str
    jti: str | None  # for a token with an audience: the revocation feed names it by this
    lifetime: timedelta


def _access_token(
    runtime: Runtime,
    client: RegisteredClient,
    audience: list[ProtectedResource],
    scopes: Scopes,
    *,
    subject: str,
    auth_time: datetime | None,
    now: datetime,
) -> AccessTokenValue:
    """An opaque token, or for an audience that asks for one an RFC 9068 JWT signed with the provider's
    keys (ES256: the resource server verifies it against ``/oauth2/jwks``)."""
    lifetime = access_token_lifetime(audience, runtime.lifetimes.access_token)
    if not audience:
        return AccessTokenValue(new_token(), None, lifetime)
    jti = new_jti()
    if token_format(audience) is TokenFormat.OPAQUE:
        return AccessTokenValue(new_token(), jti, lifetime)
    issued_at = int(now.timestamp())
    claims: dict[str, Any] = {
        "iss": runtime.issuer,
        "exp": issued_at + int(lifetime.total_seconds()),
        "aud": audience[0].identifier if len(audience) == 1 else [r.identifier for r in audience],
        "sub": subject,
        "client_id": client.id,
        "iat": issued_at,
        "jti": jti,
        "scope": scopes.format(),
    }
    if auth_time is not None:
        claims["auth_time"] = int(auth_time.timestamp())
    return AccessTokenValue(
        runtime.keys.sign(claims, alg=ACCESS_TOKEN_ALGORITHM, typ="at+jwt"), jti, lifetime
    )


async def _user_tokens(
    runtime: Runtime,
    client: RegisteredClient,
    grant: UserGrant,
    scopes: Scopes,
    audience: tuple[str, ...],
    *,
    now: datetime,
    with_refresh: bool,
) -> IssuedTokens:
    """Access token for ``scopes`` (those of its ``audience``, SPEC §7); refresh token (same family, the
    grant's scopes and resources); ID token for openid."""
    lifetimes = runtime.lifetimes
    catalogue = await runtime.clients.catalogue()
    resources = catalogue.audience(audience)
    if len(resources) != len(audience):
        raise InvalidTargetError("a resource this grant was asked for no longer exists")
    token_scopes = catalogue.for_audience(scopes, audience)
    subject = None
    if OPENID in scopes or token_format(resources) is TokenFormat.JWT:
        subject = await runtime.subjects.subject(grant.user_id, client, now=now)
    access = _access_token(
        runtime,
        client,
        resources,
        token_scopes,
        subject=subject.value if subject is not None else "",
        auth_time=grant.auth_time,
        now=now,
    )

    def person_token(
        kind: Literal["access", "refresh"],
        value: str,
        token_scopes: Scopes,
        expires_at: datetime,
        resources: tuple[str, ...],
        jti: str | None = None,
    ) -> Row:
        return token_row(
            kind,
            token_hash=token_hash(value, jti=jti),
            client_id=client.id,
            user_id=grant.user_id,
            family_id=grant.family_id,
            consent_id=grant.consent_id,
            session_id=grant.session_id,
            scopes=token_scopes,
            auth_time=grant.auth_time,
            created_at=now,
            expires_at=expires_at,
            resources=resources,
            jti=jti,
        )

    issued = IssuedTokens(
        response={
            "access_token": access.value,
            "token_type": "Bearer",
            "expires_in": int(access.lifetime.total_seconds()),
            "scope": token_scopes.format(),
        },
        rows=[
            person_token("access", access.value, token_scopes, now + access.lifetime, audience, access.jti)
        ],
    )
    if with_refresh and client.allows_grant(GRANT_REFRESH_TOKEN):
        refresh = new_token()
        issued.rows.append(
            person_token("refresh", refresh, grant.scopes, now + lifetimes.refresh_token, grant.resources)
        )
        issued.response["refresh_token"] = refresh
    if subject is not None:
        issued.pseudonym = subject.record
        if subject.record is not None:
            issued.statements.append(subject.record.statement)
    if OPENID in scopes and subject is not None:
        issued.response["id_token"] = _id_token(runtime, client, grant, subject, access.value, now=now)
    return issued


def _id_token(
    runtime: Runtime,
    client: RegisteredClient,
    grant: UserGrant,
    subject: Subject,
    access_token: str,
    *,
    now: datetime,
) -> str:
    """OIDC Core §2: iss, sub (and sub_previous while the sector migrates, SPEC §6), aud, exp, iat, auth_time,
    nonce, at_hash, and the session's ``sid`` (Back-Channel Logout); signed with the active key."""
    issued_at = int(now.timestamp())
    claims: dict[str, Any] = {
        "iss": runtime.issuer,
        **subject.claims(),
        "aud": client.id,
        "exp": issued_at + int(runtime.lifetimes.access_token.total_seconds()),
        "iat": issued_at,
        "at_hash": at_hash(access_token),
    }
    if grant.auth_time is not None:
        claims["auth_time"] = int(grant.auth_time.timestamp())
    if grant.nonce is not None:
        claims["nonce"] = grant.nonce
    if grant.session_id is not None:
        claims["sid"] = str(grant.session_id)
    return runtime.keys.sign(claims, alg=client.id_token_signed_response_alg)
