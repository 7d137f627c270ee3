"""The operator's upstream identity providers (SPEC §10): `consentry upstream …`, `/api/v1/admin/upstreams`.

An OpenID Connect provider is configured from its discovery document, read once when it is created (its
endpoints, JWKS and signing algorithms are kept); a plain OAuth 2.0 provider names its endpoints and the
fields of its userinfo record that hold the person's id and email. The client secret is kept encrypted.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from consentry.domain.upstreams import (
    DEFAULT_OIDC_SCOPE,
    InvalidUpstream,
    UpstreamConfig,
    UpstreamKind,
    check_name,
    check_url,
)
from consentry.errors import ConflictError, InvalidRequestError, NotFoundError, ServiceUnavailableError
from consentry.infrastructure.upstream_oauth import UpstreamRefused, UpstreamUnavailable
from consentry.runtime import Runtime
from consentry.storage.audit import AuditRepository, RequestOrigin
from consentry.storage.records import UpstreamProvider
from consentry.storage.upstreams import UpstreamProviderRepository

# What an administrator may change in place; the rest (endpoints, kind) is a new provider.
CHANGEABLE = ("display_name", "client_secret", "scope", "trust_email", "enabled", "icon")


@dataclass(frozen=True, slots=True)
class UpstreamSpec:
    name: str
    client_id: str
    client_secret: str
    kind: UpstreamKind = UpstreamKind.OIDC
    issuer: str | None = None
    display_name: str | None = None
    scope: str | None = None
    trust_email: bool = False
    authorize_url: str | None = None
    token_url: str | None = None
    userinfo_url: str | None = None
    emails_url: str | None = None
    uid_field: str | None = None
    email_field: str | None = None
    icon: str | None = None


def describe(provider: UpstreamProvider) -> dict[str, Any]:
    """The provider as administrators see it: everything but the client secret."""
    return {
        "name": provider.name,
        "display_name": provider.display_name,
        "kind": provider.kind.value,
        "issuer": provider.issuer,
        "authorize_url": provider.authorize_url,
        "token_url": provider.token_url,
        "userinfo_url": provider.userinfo_url,
        "emails_url": provider.emails_url,
        "jwks_uri": provider.jwks_uri,
        "client_id": provider.client_id,
        "scope": provider.scope,
        "uid_field": provider.uid_field,
        "email_field": provider.email_field,
        "trust_email": provider.trust_email,
        "enabled": provider.enabled,
        "icon": provider.icon,
        "created_at": provider.created_at.isoformat(),
        "updated_at": provider.updated_at.isoformat(),
    }


def config_of(runtime: Runtime, provider: UpstreamProvider) -> UpstreamConfig:
    return UpstreamConfig(
        name=provider.name,
        display_name=provider.display_name,
        kind=provider.kind,
        authorize_url=provider.authorize_url,
        token_url=provider.token_url,
        client_id=provider.client_id,
        client_secret=runtime.secret_box.open(provider.client_secret).decode(),
        scope=provider.scope,
        uid_field=provider.uid_field,
        email_field=provider.email_field,
        trust_email=provider.trust_email,
        issuer=provider.issuer,
        userinfo_url=provider.userinfo_url,
        emails_url=provider.emails_url,
        jwks_uri=provider.jwks_uri,
        signing_algs=tuple(provider.signing_algs or ()),
    )


def seal_token(runtime: Runtime, value: object) -> str | None:
    """A provider's token, encrypted for storage (None when it gave none)."""
    return runtime.secret_box.seal(value.encode()) if isinstance(value, str) and value else None


def token_expiry(token: Mapping[str, Any]) -> datetime | None:
    """When a provider's token response says its access token expires (Authlib's ``expires_at``)."""
    expires_at = token.get("expires_at")
    if isinstance(expires_at, int | float) and not isinstance(expires_at, bool):
        return datetime.fromtimestamp(expires_at, tz=UTC)
    return None


def _text(field: str, value: str | None, *, limit: int) -> str | None:
    """The value, trimmed; None when it is absent or blank."""
    if value is None or value.strip() == "":
        return None
    if len(value) > limit or any(ord(c) < 32 for c in value):
        raise InvalidUpstream(f"{field}: at most {limit} printable characters")
    return value.strip()


def _required(field: str, value: str | None, *, limit: int) -> str:
    text = _text(field, value, limit=limit)
    if text is None:
        raise InvalidUpstream(f"{field} is required")
    return text


async def create_upstream(
    runtime: Runtime,
    spec: UpstreamSpec,
    *,
    admin: uuid.UUID | None = None,
    actor: str = "admin",
    origin: RequestOrigin | None = None,
    now: datetime,
) -> dict[str, Any]:
    try:
        provider = await _provider(runtime, spec, now=now)
    except InvalidUpstream as exc:
        raise InvalidRequestError(str(exc)) from None
    async with runtime.database.unit_of_work() as session:
        if not await UpstreamProviderRepository(session).add(provider):
            raise ConflictError(f"an upstream provider named {spec.name} exists")
        await AuditRepository(session).record(
            "upstream_created", now=now, origin=origin, user_id=admin, actor=actor,
            details={"provider": provider.name, "kind": provider.kind.value},
        )  # fmt: skip
        return describe(provider)


async def _provider(runtime: Runtime, spec: UpstreamSpec, *, now: datetime) -> UpstreamProvider:
    name = check_name(spec.name)
    client_id = _required("client_id", spec.client_id, limit=255)
    secret = _required("client_secret", spec.client_secret, limit=512)
    icon = check_url("icon", spec.icon) if spec.icon else None
    display_name = _text("display_name", spec.display_name, limit=200) or name.capitalize()
    common: dict[str, Any] = {
        "name": name, "display_name": display_name, "kind": spec.kind, "client_id": client_id,
        "client_secret": runtime.secret_box.seal(secret.encode()), "trust_email": spec.trust_email,
        "enabled": True, "icon": icon, "created_at": now, "updated_at": now,
    }  # fmt: skip
    if spec.kind is UpstreamKind.OIDC:
        if not spec.issuer:
            raise InvalidUpstream("issuer is required for an OpenID Connect provider (or use --kind oauth2)")
        issuer = check_url("issuer", spec.issuer)
        document = await _discover(runtime, issuer)
        algorithms = document.get("id_token_signing_alg_values_supported")
        return UpstreamProvider(
            **common,
            issuer=issuer,
            authorize_url=check_url("authorization_endpoint", document["authorization_endpoint"]),
            token_url=check_url("token_endpoint", document["token_endpoint"]),
            userinfo_url=document.get("userinfo_endpoint")
            if isinstance(document.get("userinfo_endpoint"), str)
            else None,
            emails_url=None,
            jwks_uri=check_url("jwks_uri", document["jwks_uri"]),
            signing_algs=[a for a in algorithms if isinstance(a, str) and a != "none"]
            if isinstance(algorithms, list)
            else None,
            scope=_text("scope", spec.scope, limit=1024) or DEFAULT_OIDC_SCOPE,
            uid_field=spec.uid_field or "sub",
            email_field=spec.email_field or "email",
        )
    for field in ("authorize_url", "token_url", "userinfo_url"):
        if not getattr(spec, field):
            raise InvalidUpstream(f"{field} is required for a plain OAuth 2.0 provider")
    return UpstreamProvider(
        **common,
        issuer=None,
        authorize_url=check_url("authorize_url", spec.authorize_url or ""),
        token_url=check_url("token_url", spec.token_url or ""),
        userinfo_url=check_url("userinfo_url", spec.userinfo_url or ""),
        emails_url=check_url("emails_url", spec.emails_url) if spec.emails_url else None,
        jwks_uri=None,
        signing_algs=None,
        scope=_text("scope", spec.scope, limit=1024) or "",
        uid_field=_text("uid_field", spec.uid_field, limit=64) or "id",
        email_field=_text("email_field", spec.email_field, limit=64) or "email",
    )


async def _discover(runtime: Runtime, issuer: str) -> dict[str, Any]:
    try:
        return await runtime.upstream_oauth.discover(issuer)
    except UpstreamRefused as exc:
        raise InvalidUpstream(f"issuer: {exc}") from None
    except UpstreamUnavailable as exc:
        raise ServiceUnavailableError(f"the provider's discovery document: {exc}", retry_after=5) from None


async def list_upstreams(runtime: Runtime) -> list[dict[str, Any]]:
    async with runtime.database.read_only() as session:
        return [describe(provider) for provider in await UpstreamProviderRepository(session).listed()]


async def enabled_upstreams(runtime: Runtime) -> list[dict[str, Any]]:
    """What the login page offers: the enabled providers' names, display names and icons."""
    async with runtime.database.read_only() as session:
        providers = await UpstreamProviderRepository(session).listed(enabled_only=True)
        return [{"name": p.name, "display_name": p.display_name, "icon": p.icon} for p in providers]


async def get_upstream(runtime: Runtime, name: str) -> dict[str, Any]:
    async with runtime.database.read_only() as session:
        provider = await UpstreamProviderRepository(session).get(name)
        if provider is None:
            raise NotFoundError("no such upstream provider")
        return describe(provider)


async def update_upstream(
    runtime: Runtime,
    name: str,
    changes: dict[str, Any],
    *,
    admin: uuid.UUID | None = None,
    origin: RequestOrigin | None = None,
    now: datetime,
) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(CHANGEABLE))
    if unknown:
        raise InvalidRequestError(f"{unknown[0]} cannot be changed (create a new provider instead)")
    try:
        values = _changes(runtime, changes)
    except InvalidUpstream as exc:
        raise InvalidRequestError(str(exc)) from None
    async with runtime.database.unit_of_work() as session:
        provider = await UpstreamProviderRepository(session).get(name, for_update=True)
        if provider is None:
            raise NotFoundError("no such upstream provider")
        for field, value in values.items():
            setattr(provider, field, value)
        provider.updated_at = now
        await AuditRepository(session).record(
            "upstream_updated", now=now, origin=origin, user_id=admin, actor="admin",
            details={"provider": name, "changed": sorted(values)},
        )  # fmt: skip
        return describe(provider)


def _changes(runtime: Runtime, changes: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field, value in changes.items():
        if field in ("trust_email", "enabled"):
            if not isinstance(value, bool):
                raise InvalidUpstream(f"{field} must be true or false")
            values[field] = value
        elif field == "icon":
            values[field] = check_url("icon", value) if isinstance(value, str) and value else None
        elif not isinstance(value, str):
            raise InvalidUpstream(f"{field} must be a string")
        elif field == "client_secret":
            values[field] = runtime.secret_box.seal(_required(field, value, limit=512).encode())
        elif field == "scope":
            values[field] = _text(field, value, limit=1024) or ""
        else:
            values[field] = _required(field, value, limit=200)
    return values


async def delete_upstream(
    runtime: Runtime,
    name: str,
    *,
    admin: uuid.UUID | None = None,
    actor: str = "admin",
    origin: RequestOrigin | None = None,
    now: datetime,
) -> None:
    """The provider goes, and every account linked to it: people sign in another way."""
    async with runtime.database.unit_of_work() as session:
        if not await UpstreamProviderRepository(session).remove(name):
            raise NotFoundError("no such upstream provider")
        await AuditRepository(session).record(
            "upstream_deleted", now=now, origin=origin, user_id=admin, actor=actor, details={"provider": name}
        )
