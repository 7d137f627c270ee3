"""Client owners manage their clients (SPEC §5): register, read, update, rotate the secret."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from consentry.crypto.hashing import new_secret
from consentry.domain.clients import (
    ClientMetadata,
    ClientRegistration,
    InvalidClientMetadata,
    TokenEndpointAuthMethod,
    build_client_metadata,
)
from consentry.domain.scopes import InvalidScopeToken, Scopes
from consentry.domain.tokens import DEFAULT_SIGNING_ALGORITHM
from consentry.errors import ConsentryError, ForbiddenError, NotFoundError
from consentry.outbound import FetchRefused, fetch_document
from consentry.runtime import Runtime
from consentry.services.client_registration import (
    IssuedClient,
    apply_metadata,
    new_webhook_secret,
    register_client,
)
from consentry.services.sessions import SignedIn
from consentry.storage.audit import AuditRepository, RequestOrigin
from consentry.storage.clients import ClientRepository
from consentry.storage.database import Transaction
from consentry.storage.records import Client


class InvalidClientMetadataError(ConsentryError):
    """RFC 7591 §3.2.2."""

    error = "invalid_client_metadata"


class InvalidRedirectUriError(ConsentryError):
    """RFC 7591 §3.2.2."""

    error = "invalid_redirect_uri"


def metadata_error(exc: InvalidClientMetadata | InvalidScopeToken) -> ConsentryError:
    if isinstance(exc, InvalidClientMetadata) and exc.field == "redirect_uris":
        return InvalidRedirectUriError(str(exc))
    return InvalidClientMetadataError(str(exc))


def describe(client: Client) -> dict[str, Any]:
    """The client as its owner sees it (never the secrets)."""
    return {
        "client_id": client.id,
        "client_name": client.name,
        "client_uri": client.client_uri,
        "logo_uri": client.logo_uri,
        "redirect_uris": list(client.redirect_uris),
        "scope": client.scopes.format(),
        "grant_types": list(client.grant_types),
        "token_endpoint_auth_method": client.token_endpoint_auth_method.value,
        "subject_type": client.subject_type.value,
        "sector_identifier_uri": client.sector_identifier_uri,
        "webhook_url": client.webhook_url,
        "policy_uri": client.policy_uri,
        "tos_uri": client.tos_uri,
        "policy_version": client.policy_version,
        "consent_ttl_days": client.consent_ttl_days,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "trusted": client.trusted,
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris or []),
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "backchannel_logout_session_required": client.backchannel_logout_session_required,
        "registered_by": client.registered_by.value,
        "software_id": client.software_id,
        "software_version": client.software_version,
        "created_at": client.created_at.isoformat(),
        "updated_at": client.updated_at.isoformat(),
    }


def _build(runtime: Runtime, values: dict[str, Any], known: frozenset[str], *, trusted: bool) -> Any:
    try:
        return build_client_metadata(
            name=values.get("client_name") or "",
            redirect_uris=values.get("redirect_uris") or [],
            scopes=Scopes.parse(values.get("scope") or "openid"),
            known_scopes=known,
            grant_types=values.get("grant_types"),
            token_endpoint_auth_method=values.get("token_endpoint_auth_method") or "client_secret_basic",
            subject_type=values.get("subject_type") or "public",
            sector_identifier_uri=values.get("sector_identifier_uri"),
            client_uri=values.get("client_uri"),
            logo_uri=values.get("logo_uri"),
            policy_uri=values.get("policy_uri"),
            tos_uri=values.get("tos_uri"),
            policy_version=values.get("policy_version"),
            webhook_url=values.get("webhook_url"),
            consent_ttl_days=values.get("consent_ttl_days"),
            id_token_signed_response_alg=values.get("id_token_signed_response_alg")
            or DEFAULT_SIGNING_ALGORITHM,
            trusted=trusted,
            allow_private_webhooks=runtime.settings.webhook_allow_private
            or runtime.settings.issuer_is_loopback,
            issuer_on_loopback=runtime.settings.issuer_is_loopback,
            post_logout_redirect_uris=values.get("post_logout_redirect_uris") or [],
            backchannel_logout_uri=values.get("backchannel_logout_uri"),
            backchannel_logout_session_required=bool(values.get("backchannel_logout_session_required")),
        )
    except (InvalidClientMetadata, InvalidScopeToken) as exc:
        raise metadata_error(exc) from None


def _sector_changed(metadata: ClientMetadata, before: dict[str, Any]) -> bool:
    return bool(metadata.sector_identifier_uri) and (
        metadata.sector_identifier_uri != before.get("sector_identifier_uri")
        or list(metadata.redirect_uris) != before.get("redirect_uris")
    )


async def check_sector_identifier(runtime: Runtime, metadata: ClientMetadata) -> None:
    """OIDC Core §8.1: the ``sector_identifier_uri`` names a JSON array that lists every redirect URI of the
    client, fetched when the client is registered or changed; otherwise any client could claim another's
    sector and be given the same pairwise ``sub`` for the same person."""
    uri = metadata.sector_identifier_uri
    if not uri:
        return
    settings = runtime.settings
    try:
        fetched = await fetch_document(
            uri, allow_private=settings.webhook_allow_private or settings.issuer_is_loopback
        )
    except FetchRefused as exc:
        raise InvalidClientMetadataError(f"sector_identifier_uri: {exc}") from None
    if fetched.status != 200:
        raise InvalidClientMetadataError(f"sector_identifier_uri answered HTTP {fetched.status}")
    try:
        listed = orjson.loads(fetched.body)
    except orjson.JSONDecodeError:
        raise InvalidClientMetadataError("sector_identifier_uri does not name a JSON document") from None
    if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
        raise InvalidClientMetadataError("sector_identifier_uri must name a JSON array of redirect URIs")
    missing = [redirect_uri for redirect_uri in metadata.redirect_uris if redirect_uri not in listed]
    if missing:
        raise InvalidClientMetadataError(f"the sector_identifier_uri document does not list {missing[0]}")


@dataclass(frozen=True, slots=True)
class Created:
    issued: IssuedClient
    client: dict[str, Any]


async def create_client(
    runtime: Runtime, owner: SignedIn, values: dict[str, Any], *, origin: RequestOrigin, now: datetime
) -> Created:
    if values.get("trusted") and not owner.is_admin:
        raise ForbiddenError("only administrators can mark a client trusted")
    known = await runtime.clients.known_scopes(str(values.get("scope") or "").split())
    metadata = _build(runtime, values, known, trusted=bool(values.get("trusted")))
    await check_sector_identifier(runtime, metadata)
    async with runtime.database.unit_of_work() as session:
        issued = await register_client(
            session,
            metadata,
            secret_hasher=runtime.secret_hasher,
            secret_box=runtime.secret_box,
            now=now,
            owner_id=owner.user_id,
        )
        client = await ClientRepository(session).get_record(issued.client_id)
        assert client is not None
        await AuditRepository(session).record(
            "client_created",
            now=now,
            origin=origin,
            user_id=owner.user_id,
            client_id=issued.client_id,
            scopes=metadata.scopes,
        )
        return Created(issued, describe(client))


async def _owned(
    session: Transaction, client_id: str, by: SignedIn | None, *, for_update: bool = False
) -> Client:
    """The live client, if ``by`` may manage it: its owner, an administrator, or (None) the operator's CLI."""
    client = await ClientRepository(session).get_record(client_id, for_update=for_update)
    allowed = by is None or by.is_admin or (client is not None and client.owner_id == by.user_id)
    if client is None or client.deleted_at is not None or not allowed:
        raise NotFoundError("no such client")
    return client


async def list_clients(runtime: Runtime, owner: SignedIn) -> list[dict[str, Any]]:
    async with runtime.database.read_only() as session:
        return [describe(client) for client in await ClientRepository(session).owned_by(owner.user_id)]


async def all_clients(
    runtime: Runtime, *, registered_by: ClientRegistration | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    """Every live client, for administrators (newest first): those of each owner, and those that
    registered themselves (SPEC §8), which have none."""
    async with runtime.database.read_only() as session:
        listed = await ClientRepository(session).listed(
            registered_by=registered_by, limit=limit, offset=offset
        )
        return [describe(client) for client in listed]


async def read_client(runtime: Runtime, client_id: str, by: SignedIn | None) -> dict[str, Any]:
    async with runtime.database.read_only() as session:
        return describe(await _owned(session, client_id, by))


async def update_client(
    runtime: Runtime,
    client_id: str,
    by: SignedIn | None,
    changes: dict[str, Any],
    *,
    origin: RequestOrigin,
    now: datetime,
) -> tuple[dict[str, Any], str | None]:
    """Apply the changes after validating the whole result; returns the client and a new webhook secret if one
    was created (a webhook URL added where there was none). ``by`` None: the operator's CLI."""
    if "trusted" in changes and by is not None and not by.is_admin:
        raise ForbiddenError("only administrators can change whether a client is trusted")
    known = await runtime.clients.known_scopes(str(changes.get("scope") or "").split())
    async with runtime.database.read_only() as session:  # the sector's document is fetched outside the lock
        current = describe(await _owned(session, client_id, by))
    checked = _build(
        runtime, {**current, **changes}, known, trusted=bool({**current, **changes}.get("trusted"))
    )
    if _sector_changed(checked, current):
        await check_sector_identifier(runtime, checked)
    async with runtime.database.unit_of_work() as session:
        client = await _owned(session, client_id, by, for_update=True)
        merged = {**describe(client), **changes}
        if merged.get("trusted") and client.registered_by is not ClientRegistration.OPERATOR:
            raise ForbiddenError("a client that registered itself is never trusted (SPEC §8)")
        metadata = _build(runtime, merged, known, trusted=bool(merged.get("trusted")))
        if metadata.is_public != (client.token_endpoint_auth_method == TokenEndpointAuthMethod.NONE):
            raise InvalidClientMetadataError(
                "a client cannot change between public and confidential; register a new one"
            )
        if metadata.sector_identifier_uri and (metadata.sector_identifier_uri, metadata.redirect_uris) != (
            checked.sector_identifier_uri,
            checked.redirect_uris,
        ):
            await check_sector_identifier(runtime, metadata)  # changed by someone else meanwhile: again
        if "token_endpoint_auth_method" in changes:
            client.token_endpoint_auth_method = TokenEndpointAuthMethod(metadata.token_endpoint_auth_method)
            client.token_endpoint_auth_method_fixed = True
        apply_metadata(client, metadata, now=now)
        webhook_secret = None
        if metadata.webhook_url and not client.webhook_secret:
            webhook_secret = new_webhook_secret()
            client.webhook_secret = runtime.secret_box.seal(webhook_secret.encode())
        await AuditRepository(session).record(
            "client_updated",
            now=now,
            origin=origin,
            user_id=by.user_id if by else None,
            client_id=client_id,
            actor="user" if by is not None and client.owner_id == by.user_id else "admin",
            details={"changed": sorted(changes)},
        )
        described = describe(client)
    runtime.clients.invalidate(client_id)
    return described, webhook_secret


async def regenerate_secret(
    runtime: Runtime, client_id: str, by: SignedIn | None, *, origin: RequestOrigin, now: datetime
) -> str:
    """A new client secret; the old one stops working at once (other processes: within the cache TTL)."""
    secret = new_secret()
    async with runtime.database.unit_of_work() as session:
        client = await _owned(session, client_id, by, for_update=True)
        if client.token_endpoint_auth_method == TokenEndpointAuthMethod.NONE:
            raise InvalidClientMetadataError("a public client has no secret")
        client.secret_hash = runtime.secret_hasher.hash(secret)
        client.secret_rotated_at = now
        client.updated_at = now
        await AuditRepository(session).record(
            "client_secret_rotated", now=now, origin=origin, client_id=client_id,
            user_id=by.user_id if by else None, actor="user" if by else "admin",
        )  # fmt: skip
    runtime.clients.invalidate(client_id)
    return secret
