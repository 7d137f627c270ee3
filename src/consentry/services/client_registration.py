"""Registering clients: credentials are generated here and shown exactly once."""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from consentry.crypto.hashing import SecretHasher, new_secret
from consentry.crypto.secret_box import SecretBox
from consentry.domain.clients import ClientMetadata, SubjectType, TokenEndpointAuthMethod
from consentry.storage.clients import ClientRepository
from consentry.storage.database import Transaction
from consentry.storage.records import Client


@dataclass(frozen=True, slots=True)
class IssuedClient:
    """What the registrant sees once: the secrets are not recoverable afterwards."""

    client_id: str
    client_secret: str | None
    webhook_secret: str | None
    created_at: datetime


def new_client_id() -> str:
    return secrets.token_urlsafe(18)


def new_webhook_secret() -> str:
    """Standard Webhooks secret format: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def register_client(
    session: Transaction,
    metadata: ClientMetadata,
    *,
    secret_hasher: SecretHasher,
    secret_box: SecretBox,
    now: datetime,
    owner_id: uuid.UUID | None = None,
) -> IssuedClient:
    client_secret = None if metadata.is_public else new_secret()
    webhook_secret = new_webhook_secret() if metadata.webhook_url else None
    client = Client(
        id=new_client_id(),
        token_endpoint_auth_method=TokenEndpointAuthMethod(metadata.token_endpoint_auth_method),
        token_endpoint_auth_method_fixed=metadata.auth_method_fixed,
        secret_hash=secret_hasher.hash(client_secret) if client_secret else None,
        secret_rotated_at=now if client_secret else None,
        webhook_secret=secret_box.seal(webhook_secret.encode()) if webhook_secret else None,
        owner_id=owner_id,
        created_at=now,
    )
    apply_metadata(client, metadata, now=now)
    await ClientRepository(session).add_client(client)
    return IssuedClient(client.id, client_secret, webhook_secret, now)


def apply_metadata(client: Client, metadata: ClientMetadata, *, now: datetime) -> None:
    """The client's record takes the validated metadata (on registration, and on every update); its
    credentials and authentication method are the caller's business."""
    client.name = metadata.name
    client.redirect_uris = list(metadata.redirect_uris)
    client.grant_types = list(metadata.grant_types)
    client.scopes = metadata.scopes
    client.subject_type = SubjectType(metadata.subject_type)
    client.sector_identifier_uri = metadata.sector_identifier_uri
    client.sector = metadata.sector
    client.client_uri, client.logo_uri = metadata.client_uri, metadata.logo_uri
    client.policy_uri, client.tos_uri = metadata.policy_uri, metadata.tos_uri
    client.policy_version = metadata.policy_version
    client.consent_ttl_days = metadata.consent_ttl_days
    client.id_token_signed_response_alg = metadata.id_token_signed_response_alg
    client.trusted = metadata.trusted
    client.webhook_url = metadata.webhook_url
    client.post_logout_redirect_uris = list(metadata.post_logout_redirect_uris) or None
    client.backchannel_logout_uri = metadata.backchannel_logout_uri
    client.backchannel_logout_session_required = metadata.backchannel_logout_session_required
    client.updated_at = now
