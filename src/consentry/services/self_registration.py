"""Clients that register themselves (SPEC §8): RFC 7591 registration in the mode ``CONSENTRY_DCR`` names,
RFC 7592 reading, replacing and deleting with the registration access token, and the operator's initial
access tokens (`consentry dcr token create`).

The registration access token is kept as a keyed hash, like a client secret; a read answers with the token
it was made with, a replacement with a new one (the old one stops working). A client deleted (by itself or an
administrator) no longer exists for its token: 401, as for any wrong token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from consentry.crypto.hashing import new_secret
from consentry.domain.client_documents import SelfRegistration, self_registration
from consentry.domain.clients import ClientRegistration, InvalidClientMetadata, TokenEndpointAuthMethod
from consentry.errors import InvalidTokenError, NotFoundError
from consentry.runtime import Runtime
from consentry.services.cascades import delete_client
from consentry.services.client_management import (
    InvalidClientMetadataError,
    check_sector_identifier,
    metadata_error,
)
from consentry.services.client_registration import apply_metadata, register_client
from consentry.storage.audit import AuditRepository, RequestOrigin
from consentry.storage.clients import ClientRepository, InitialAccessTokenRepository
from consentry.storage.database import Transaction
from consentry.storage.records import Client, InitialAccessToken

# RFC 7592 §2.2: fields a replacement must not carry (the server's, not the client's to set)
SERVER_FIELDS = ("registration_access_token", "registration_client_uri", "client_secret_expires_at",
                 "client_id_issued_at")  # fmt: skip


@dataclass(frozen=True, slots=True)
class IssuedInitialAccessToken:
    token: str  # shown once
    id: str
    uses: int | None
    expires_at: datetime | None


async def create_initial_access_token(
    runtime: Runtime, *, uses: int | None, expires_in: int | None, now: datetime
) -> IssuedInitialAccessToken:
    token = new_secret()
    row = InitialAccessToken(
        id="iat_" + secrets.token_urlsafe(12),
        token_hash=runtime.secret_hasher.hash(token),
        uses_left=uses,
        expires_at=now + timedelta(seconds=expires_in) if expires_in is not None else None,
        created_at=now,
    )
    async with runtime.database.unit_of_work() as session:
        await InitialAccessTokenRepository(session).add(row)
    return IssuedInitialAccessToken(token, row.id, uses, row.expires_at)


async def register(
    runtime: Runtime, values: dict[str, Any], *, bearer: str | None, origin: RequestOrigin, now: datetime
) -> dict[str, Any]:
    """RFC 7591 §3: 201's body, with the client secret (confidential clients) and the registration access
    token, each shown this once."""
    mode = _mode(runtime)
    if mode == "token" and not bearer:
        raise InvalidTokenError("registering needs an initial access token from the operator")
    if mode == "open":
        limiter = runtime.rate_limiter
        await limiter.take(limiter.policy.client_registrations_per_ip, "client-register", origin.ip or "-")
    registration = await _validated(runtime, values)
    token = new_secret()
    async with runtime.database.unit_of_work() as session:
        if mode == "token" and not await InitialAccessTokenRepository(session).use(
            runtime.secret_hasher.hash(bearer or ""), now=now
        ):
            raise InvalidTokenError("the initial access token is unknown, expired or used up")
        issued = await register_client(
            session,
            registration.metadata,
            secret_hasher=runtime.secret_hasher,
            secret_box=runtime.secret_box,
            now=now,
        )
        client = await ClientRepository(session).get_record(issued.client_id)
        assert client is not None
        client.registered_by = ClientRegistration.SELF
        client.registration_token_hash = runtime.secret_hasher.hash(token)
        client.software_id, client.software_version = registration.software_id, registration.software_version
        await AuditRepository(session).record(
            "client_registered",
            now=now,
            origin=origin,
            client_id=client.id,
            scopes=client.scopes,
            actor="client",
            details={"software_id": registration.software_id} if registration.software_id else None,
        )
        return client_information(runtime, client, token=token, secret=issued.client_secret)


async def check_token(runtime: Runtime, client_id: str, token: str | None) -> None:
    """The registration access token is this live client's (before its request's body is looked at)."""
    _mode(runtime)
    async with runtime.database.read_only() as session:
        await _registered(runtime, session, client_id, token)


async def read(runtime: Runtime, client_id: str, token: str | None) -> dict[str, Any]:
    """RFC 7592 §2.1."""
    _mode(runtime)
    async with runtime.database.read_only() as session:
        client = await _registered(runtime, session, client_id, token)
        return client_information(runtime, client, token=token or "")


async def replace(
    runtime: Runtime,
    client_id: str,
    token: str | None,
    values: dict[str, Any],
    *,
    origin: RequestOrigin,
    now: datetime,
) -> dict[str, Any]:
    """RFC 7592 §2.2: the metadata is replaced as a whole (what the request leaves out is not kept); the
    answer carries a new registration access token."""
    await check_token(runtime, client_id, token)
    if values.get("client_id") != client_id:
        raise InvalidClientMetadataError("client_id must be given, and be this client's")
    sent = [name for name in SERVER_FIELDS if name in values]
    if sent:
        raise InvalidClientMetadataError(f"{sent[0]} is the server's to set")
    registration = await _validated(runtime, values)
    new_token = new_secret()
    async with runtime.database.unit_of_work() as session:
        client = await _registered(runtime, session, client_id, token, for_update=True)
        secret = values.get("client_secret")
        if secret is not None and not (
            isinstance(secret, str)
            and client.secret_hash is not None
            and runtime.secret_hasher.verify(secret, client.secret_hash)
        ):
            raise InvalidClientMetadataError("client_secret is not this client's secret")
        if registration.metadata.is_public != (
            client.token_endpoint_auth_method == TokenEndpointAuthMethod.NONE
        ):
            raise InvalidClientMetadataError(
                "a client cannot change between public and confidential; register a new one"
            )
        client.token_endpoint_auth_method = TokenEndpointAuthMethod(
            registration.metadata.token_endpoint_auth_method
        )
        apply_metadata(client, registration.metadata, now=now)
        client.software_id, client.software_version = registration.software_id, registration.software_version
        client.registration_token_hash = runtime.secret_hasher.hash(new_token)
        await AuditRepository(session).record(
            "client_updated", now=now, origin=origin, client_id=client_id, actor="client",
            details={"via": "registration"},
        )  # fmt: skip
        answer = client_information(runtime, client, token=new_token)
    runtime.clients.invalidate(client_id)
    return answer


async def delete(
    runtime: Runtime, client_id: str, token: str | None, *, origin: RequestOrigin, now: datetime
) -> None:
    """RFC 7592 §2.3: the client deletion of SPEC §5 (every consent ended, every token revoked)."""
    await check_token(runtime, client_id, token)
    try:
        await delete_client(runtime, client_id, None, actor="client", origin=origin, now=now)
    except NotFoundError:  # deleted meanwhile
        raise InvalidTokenError("the registration access token is not valid") from None


def client_information(
    runtime: Runtime, client: Client, *, token: str, secret: str | None = None
) -> dict[str, Any]:
    """RFC 7591 §3.2.1 / RFC 7592 §3: the client's registered metadata and how to manage it. Empty values
    are left out."""
    metadata: dict[str, Any] = {
        "client_id": client.id,
        "client_id_issued_at": int(client.created_at.timestamp()),
        "registration_access_token": token,
        "registration_client_uri": f"{runtime.issuer}/oauth2/register/{client.id}",
        "client_name": client.name,
        "redirect_uris": list(client.redirect_uris),
        "grant_types": list(client.grant_types),
        "response_types": ["code"] if "authorization_code" in client.grant_types else [],
        "token_endpoint_auth_method": client.token_endpoint_auth_method.value,
        "scope": client.scopes.format(),
        "subject_type": client.subject_type.value,
        "sector_identifier_uri": client.sector_identifier_uri,
        "client_uri": client.client_uri,
        "logo_uri": client.logo_uri,
        "policy_uri": client.policy_uri,
        "tos_uri": client.tos_uri,
        "software_id": client.software_id,
        "software_version": client.software_version,
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris or []),
        "backchannel_logout_uri": client.backchannel_logout_uri,
    }
    if secret is not None:
        metadata["client_secret"] = secret
        metadata["client_secret_expires_at"] = 0  # it does not expire
    return {name: value for name, value in metadata.items() if value not in (None, [], "")}


def _mode(runtime: Runtime) -> str:
    """``CONSENTRY_DCR``; with ``off`` the endpoints do not exist (SPEC §8)."""
    if runtime.settings.dcr == "off":
        raise NotFoundError("clients cannot register themselves here")
    return runtime.settings.dcr


async def _validated(runtime: Runtime, values: dict[str, Any]) -> SelfRegistration:
    settings = runtime.settings
    scope = values.get("scope")
    catalogue = await runtime.clients.catalogue_covering(scope.split() if isinstance(scope, str) else ())
    try:
        registration = self_registration(
            values,
            catalogue,
            issuer_on_loopback=settings.issuer_is_loopback,
            allow_private_webhooks=settings.webhook_allow_private or settings.issuer_is_loopback,
        )
    except InvalidClientMetadata as exc:
        raise metadata_error(exc) from None
    await check_sector_identifier(runtime, registration.metadata)
    return registration


async def _registered(
    runtime: Runtime, session: Transaction, client_id: str, token: str | None, *, for_update: bool = False
) -> Client:
    """The live self-registered client whose registration access token ``token`` is; else 401 (RFC 7592
    §2: a client that does not exist answers as a wrong token does)."""
    client = (
        await ClientRepository(session).get_record(client_id, for_update=for_update) if client_id else None
    )
    if (
        client is None
        or client.deleted_at is not None
        or client.registration_token_hash is None
        or not token
        or not runtime.secret_hasher.verify(token, client.registration_token_hash)
    ):
        raise InvalidTokenError("the registration access token is not valid")
    return client
