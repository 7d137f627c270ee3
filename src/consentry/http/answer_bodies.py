"""What the JSON endpoints answer, for the OpenAPI document (``response_model=``). Routes return their
``JSONResponse`` themselves, so these models describe and never re-validate an answer (no cost per request);
the fuzzing gate (tests/http/test_openapi_fuzz.py) checks every answer against them. Each lists the fields
always present; others may be added (``extra="allow"``), as JSON clients must accept.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


# Operations and discovery


class Health(Answer):
    status: Literal["ok", "ready"]


class ProviderMetadata(Answer):
    """RFC 8414 / OpenID Connect Discovery 1.0."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    response_types_supported: list[str]
    scopes_supported: list[str]


class JsonWebKey(Answer):
    kty: str
    kid: str


class JsonWebKeySet(Answer):
    keys: list[JsonWebKey]


# Sign-in and registration (SPEC §3)


class SignInStep(Answer):
    flow_token: str
    next: Literal["verify", "password", "set_password"]
    identifier_type: Literal["email", "phone"] | None = None


class SignedIn(Answer):
    user_id: str
    session_token: str
    expires_at: str
    redirect_url: str | None = None
    requires_consent: bool | None = None
    consent_info: dict[str, Any] | None = None


class Registered(Answer):
    user_id: str
    email: str | None = None
    phone: str | None = None


class RegistrationQueued(Answer):
    message: str
    request_id: str
    status: Literal["processing"]


class RegistrationsQueued(Answer):
    message: str
    request_ids: list[str]
    count: int
    status: Literal["processing"]
    errors: list[dict[str, Any]]


class RegistrationStatus(Answer):
    request_id: str
    status: Literal["processing", "completed", "failed"]
    user_id: str | None = None
    error: str | None = None


class Upstream(Answer):
    name: str
    display_name: str


# The person's consents and account (SPEC §4, §9, §10)


class ConnectedApp(Answer):
    client_id: str
    client_name: str
    scopes: list[str]
    granted_at: str
    expires_at: str
    remembered: bool
    last_used: str | None = None


class ConnectedApps(Answer):
    consents: list[ConnectedApp]


class ConsentRecord(Answer):
    client_id: str
    client_name: str
    scopes: list[str]
    state: Literal["active", "revoked", "expired"]
    history: list[dict[str, Any]]
    receipt: str


class ConsentExport(Answer):
    user_id: str
    exported_at: str
    consents: list[ConsentRecord]
    audit_events: list[dict[str, Any]]


class ConsentChanged(Answer):
    client_id: str
    scopes: list[str] | None = None
    revoked: bool | None = None
    declined_scopes: list[str] | None = None


class Account(Answer):
    user_id: str
    email: str | None
    email_verified: bool
    phone: str | None
    phone_verified: bool
    name: str | None
    is_admin: bool
    created_at: str
    updated_at: str


class AccountChanged(Answer):
    user: Account
    verification: SignInStep | None = None


class AccountDeleted(Answer):
    status: Literal["deleted"]
    deleted_at: str
    purge_after: str


class LinkedAccount(Answer):
    provider: str
    provider_uid: str
    email: str | None
    linked_at: str
    last_used_at: str | None


class RedirectTo(Answer):
    redirect_url: str


# Clients (SPEC §5, §8)


class Client(Answer):
    client_id: str
    client_name: str
    redirect_uris: list[str]
    scope: str
    grant_types: list[str]
    token_endpoint_auth_method: str
    created_at: str


class ClientCreated(Client):
    client_secret: str | None = None
    webhook_secret: str | None = None


class Clients(Answer):
    clients: list[Client]


class ClientSecret(Answer):
    client_id: str
    client_secret: str


class SelfRegisteredClient(Answer):
    """RFC 7591 §3.2.1, RFC 7592 §3."""

    client_id: str
    registration_access_token: str | None = None
    registration_client_uri: str | None = None


# Administration (SPEC §5, §7, §9, §10)


class AuditEvent(Answer):
    id: int
    event_type: str
    occurred_at: str
    user_id: str | None
    client_id: str | None


class AuditTrail(Answer):
    events: list[AuditEvent]
    total: int
    limit: int
    offset: int


class AdminAccount(Account):
    status: Literal["active", "deleted"]


class AdminAccounts(Answer):
    users: list[AdminAccount]


class AdminAccountOverview(AdminAccount):
    sessions: list[dict[str, Any]]
    consents: list[ConnectedApp]
    linked_accounts: list[LinkedAccount]


class ProviderToken(Answer):
    provider: str
    access_token: str


class WebhookDelivery(Answer):
    client_id: str | None
    type: str
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    created_at: str


class WebhookDeliveries(Answer):
    webhooks: list[WebhookDelivery]


class Statistics(Answer):
    generated_at: str
    top_clients: list[dict[str, Any]]
    activity_by_day: list[dict[str, Any]]
    refresh_rate_by_client: list[dict[str, Any]]


class BulkDone(Answer):
    action: str
    requested: int
    affected: int


class Scope(Answer):
    name: str
    description: str
    resource: str | None
    restricted: bool


class Scopes(Answer):
    scopes: list[Scope]


class Resource(Answer):
    resource_id: str
    identifier: str
    name: str
    token_format: Literal["opaque", "jwt"]
    client_id: str
    scopes: list[Scope]


class ResourceCreated(Resource):
    client_secret: str


class Resources(Answer):
    resources: list[Resource]


class Revocations(Answer):
    """The revocation feed a resource server follows (SPEC §7)."""

    revoked: list[dict[str, Any]]
    next: str


class UpstreamProvider(Answer):
    name: str
    display_name: str
    kind: Literal["oidc", "oauth2"]


class UpstreamProviders(Answer):
    upstreams: list[UpstreamProvider]
