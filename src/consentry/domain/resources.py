"""API resources and custom scopes (SPEC §7; RFC 8707 resource indicators, RFC 9068 JWT access tokens). Pure.

A custom scope belongs to at most one resource. A token asked for resources names them as its audience and
carries only their scopes; a token asked for none is for userinfo and carries every scope that belongs to no
resource (the identity scopes, and custom scopes of no resource).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from consentry.domain.net import has_control_or_space
from consentry.domain.scopes import InvalidScopeToken, Scopes

# The scopes OpenID Connect defines, seeded by the first migration: never redefined or deleted.
IDENTITY_SCOPES = frozenset({"openid", "profile", "email", "phone", "address", "offline_access"})
MIN_ACCESS_TOKEN_TTL, MAX_ACCESS_TOKEN_TTL = 60, 86_400
MAX_RESOURCES = 10  # per request


class TokenFormat(enum.StrEnum):
    OPAQUE = "opaque"  # the resource introspects it
    JWT = "jwt"  # RFC 9068: the resource validates it against the JWKS


class InvalidResource(ValueError):
    """A resource or scope definition that breaks a rule; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class InvalidTarget(ValueError):
    """RFC 8707 §2 ``invalid_target``: an unknown resource, or a scope that none of the requested ones has."""


class RestrictedScope(ValueError):
    """A restricted scope asked for by a client that is not trusted."""


@dataclass(frozen=True, slots=True)
class ProtectedResource:
    """An immutable snapshot of a stored resource, safe to cache."""

    id: str
    identifier: str
    name: str
    token_format: TokenFormat
    access_token_ttl: int | None
    client_id: str  # its credentials: introspection, the revocation feed, webhook signatures


@dataclass(frozen=True, slots=True)
class CatalogueScope:
    name: str
    description: str  # what the consent screen shows
    claims: tuple[str, ...]  # the identity claims it releases (identity scopes only)
    resource: str | None = None  # the identifier of the resource it belongs to
    restricted: bool = False


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Every scope and resource, as one immutable snapshot (cached for the hot paths)."""

    scopes: Mapping[str, CatalogueScope]
    resources: Mapping[str, ProtectedResource]  # by identifier

    def check_targets(self, resources: Sequence[str], scopes: Scopes) -> None:
        """RFC 8707 §2: every requested resource is known, and every scope that belongs to a resource belongs
        to a requested one."""
        for resource in resources:
            if resource not in self.resources:
                raise InvalidTarget(f"unknown resource: {resource[:200]}")
        for scope in scopes:
            known = self.scopes.get(scope)
            if known is not None and known.resource is not None and known.resource not in resources:
                raise InvalidTarget(f"the scope {scope} is for {known.resource}, which was not requested")

    def for_audience(self, scopes: Scopes, resources: Sequence[str]) -> Scopes:
        """The scopes a token for ``resources`` carries: theirs; for no resource, those of no resource."""
        wanted = set(resources) if resources else {None}
        return Scopes(scope for scope in scopes if self._resource_of(scope) in wanted)

    def grantable(self, scopes: Scopes, *, trusted_client: bool, admin: bool) -> Scopes:
        """A restricted scope goes only to a trusted client, and only for an admin: others go without it.

        Raises :class:`RestrictedScope` when the client asks for one it may never have."""
        restricted = Scopes(name for name in scopes if (known := self.scopes.get(name)) and known.restricted)
        if restricted and not trusted_client:
            raise RestrictedScope(f"only trusted clients may ask for {restricted.format()}")
        return scopes if admin else scopes - restricted

    def audience(self, resources: Sequence[str]) -> list[ProtectedResource]:
        return [self.resources[identifier] for identifier in resources if identifier in self.resources]

    def resource_of_client(self, client_id: str) -> ProtectedResource | None:
        """The resource whose credentials ``client_id`` is, if any."""
        return next((r for r in self.resources.values() if r.client_id == client_id), None)

    def _resource_of(self, scope: str) -> str | None:
        known = self.scopes.get(scope)
        return known.resource if known is not None else None


def parse_resources(value: str | None) -> tuple[str, ...]:
    """A request's ``resource`` parameters, space-separated (RFC 8707 §2: absolute URIs without a fragment,
    which hold no space), in order, each once."""
    if value is None:
        return ()
    values = value.split(" ")
    for one in values:
        if not is_resource_uri(one):
            raise InvalidTarget(f"resource must be an absolute URI without a fragment: {one[:200]!r}")
    if len(values) > MAX_RESOURCES:
        raise InvalidTarget(f"at most {MAX_RESOURCES} resources")
    return tuple(dict.fromkeys(values))


def is_resource_uri(value: str) -> bool:
    parts = urlsplit(value)
    return (
        len(value) <= 2048
        and bool(parts.scheme)
        and (bool(parts.netloc) or parts.scheme == "urn")
        and "#" not in value
        and not has_control_or_space(value)
    )


def validate_identifier(identifier: str) -> str:
    """A resource's identifier: an absolute URI without fragment or query (RFC 8707 §2)."""
    if not is_resource_uri(identifier) or urlsplit(identifier).query:
        raise InvalidResource(
            "identifier", "the identifier must be an absolute URI without a query or fragment"
        )
    return identifier


def validate_name(name: str, field: str = "name") -> str:
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidResource(field, f"{field} must be 1 to 200 characters")
    return name


def validate_access_token_ttl(seconds: int | None) -> int | None:
    if seconds is not None and not MIN_ACCESS_TOKEN_TTL <= seconds <= MAX_ACCESS_TOKEN_TTL:
        raise InvalidResource(
            "access_token_ttl",
            f"access_token_ttl must be {MIN_ACCESS_TOKEN_TTL} to {MAX_ACCESS_TOKEN_TTL} seconds",
        )
    return seconds


def validate_scope_name(name: str) -> str:
    """A custom scope: one RFC 6749 §3.3 scope token, not one OpenID Connect defines."""
    try:
        Scopes([name])
    except InvalidScopeToken:
        message = "a scope name is one scope token (no spaces, quotes or backslashes)"
        raise InvalidResource("name", message) from None
    if len(name) > 64:
        raise InvalidResource("name", "a scope name is at most 64 characters")
    if name in IDENTITY_SCOPES:
        raise InvalidResource("name", f"{name} is an OpenID Connect scope")
    return name


def validate_description(description: str) -> str:
    description = description.strip()
    if not 1 <= len(description) <= 500:
        raise InvalidResource("description", "description must be 1 to 500 characters")
    return description


def token_format(audience: Sequence[ProtectedResource]) -> TokenFormat:
    """A JWT when a resource of the audience asks for one (it may have no way to introspect)."""
    return TokenFormat.JWT if any(r.token_format is TokenFormat.JWT for r in audience) else TokenFormat.OPAQUE


def access_token_lifetime(audience: Sequence[ProtectedResource], default: timedelta) -> timedelta:
    """The shortest lifetime any resource of the audience allows, else the deployment's."""
    chosen = [timedelta(seconds=r.access_token_ttl) for r in audience if r.access_token_ttl]
    return min(chosen) if chosen else default
