"""Clients that register themselves (SPEC §8): RFC 7591 metadata, and client ID metadata documents (a
``client_id`` that is an https URL naming a JSON document of that metadata). Pure.

A self-registered client is never trusted, whatever its metadata says; it acts only for people who consent (no
``client_credentials``); the restricted scopes it lists are left out of what it may ask for (SPEC §7), and a
client that lists no scope may ask for every scope that is not restricted: the person's consent decides, every
time.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from consentry.domain.clients import (
    GRANT_CLIENT_CREDENTIALS,
    ClientMetadata,
    InvalidClientMetadata,
    build_client_metadata,
)
from consentry.domain.net import has_control_or_space, is_loopback_host, is_odd_ipv4
from consentry.domain.resources import Catalogue
from consentry.domain.scopes import InvalidScopeToken, Scopes

MAX_CLIENT_ID_URL = 2048
MAX_DOCUMENT_LIFETIME = timedelta(hours=24)
DEFAULT_DOCUMENT_LIFETIME = timedelta(hours=1)  # a document served without caching headers
# RFC 7591 §2 metadata a client may register with (SPEC §8); anything else it sends is ignored (§2).
METADATA_FIELDS = (
    "redirect_uris", "client_name", "logo_uri", "client_uri", "policy_uri", "tos_uri", "grant_types",
    "token_endpoint_auth_method", "scope", "software_id", "software_version", "subject_type",
    "sector_identifier_uri", "backchannel_logout_uri", "post_logout_redirect_uris",
)  # fmt: skip
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SelfRegistration:
    """Validated metadata of a client that registers itself, and the software it names."""

    metadata: ClientMetadata
    software_id: str | None = None
    software_version: str | None = None


def is_document_client_id(client_id: str, *, loopback_http: bool) -> bool:
    """A ``client_id`` that names a metadata document: an https URL with a path and no fragment, credentials
    or dot segments (http on a loopback host while the issuer is on one, for development)."""
    if len(client_id) > MAX_CLIENT_ID_URL or has_control_or_space(client_id):
        return False
    parts = urlsplit(client_id)
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return False
    if parts.scheme != "https" and not (
        loopback_http and parts.scheme == "http" and is_loopback_host(parts.hostname)
    ):
        return False
    segments = parts.path.split("/")
    return (
        len(parts.path) > 1
        and "." not in segments
        and ".." not in segments
        and not parts.fragment
        and "#" not in client_id
        and not is_odd_ipv4(parts.hostname)
    )


def self_registration(
    values: Mapping[str, Any],
    catalogue: Catalogue,
    *,
    issuer_on_loopback: bool,
    allow_private_webhooks: bool,
    public_only: bool = False,
) -> SelfRegistration:
    """RFC 7591 §2 metadata as a client sends it (or its document says it), checked as the client API
    checks it; :class:`InvalidClientMetadata` on the first rule broken. ``trusted`` is never taken from it."""
    text = _text_fields(values)
    uris = _uri_list(values, "redirect_uris")
    logout_uris = _uri_list(values, "post_logout_redirect_uris")
    grants = values.get("grant_types")
    if grants is not None and (not isinstance(grants, list) or not all(isinstance(g, str) for g in grants)):
        raise InvalidClientMetadata("grant_types", "grant_types must be a list of strings")
    response_types = values.get("response_types")
    if response_types is not None and response_types != ["code"]:
        raise InvalidClientMetadata("response_types", "the only response type is code")
    method = text.get("token_endpoint_auth_method") or ("none" if public_only else "client_secret_basic")
    if public_only and method != "none":
        raise InvalidClientMetadata(
            "token_endpoint_auth_method", "a client ID metadata document's client is public: use none"
        )
    try:
        asked = Scopes.parse(text["scope"]) if text.get("scope") else None
    except InvalidScopeToken as exc:
        raise InvalidClientMetadata("scope", str(exc)) from None
    unknown = (asked or Scopes()) - frozenset(catalogue.scopes)
    if unknown:
        raise InvalidClientMetadata("scope", f"unknown scopes: {unknown.format()}")
    open_scopes = Scopes(name for name, scope in catalogue.scopes.items() if not scope.restricted)
    metadata = build_client_metadata(
        name=text.get("client_name") or _host_of(uris),
        redirect_uris=uris,
        scopes=(asked & open_scopes) if asked is not None else open_scopes,
        known_scopes=frozenset(catalogue.scopes),
        grant_types=grants,
        token_endpoint_auth_method=method,
        subject_type=text.get("subject_type") or "public",
        sector_identifier_uri=text.get("sector_identifier_uri"),
        client_uri=text.get("client_uri"),
        logo_uri=text.get("logo_uri"),
        policy_uri=text.get("policy_uri"),
        tos_uri=text.get("tos_uri"),
        trusted=False,
        allow_private_webhooks=allow_private_webhooks,
        auth_method_fixed=True,
        issuer_on_loopback=issuer_on_loopback,
        post_logout_redirect_uris=logout_uris,
        backchannel_logout_uri=text.get("backchannel_logout_uri"),
    )
    if GRANT_CLIENT_CREDENTIALS in metadata.grant_types:
        # With no person to ask, a stranger's software would mint tokens for the operator's APIs unasked.
        raise InvalidClientMetadata(
            "grant_types", "a client that registers itself may not use client_credentials: ask an operator"
        )
    return SelfRegistration(metadata, text.get("software_id"), text.get("software_version"))


def document_client(
    client_id: str, document: Any, catalogue: Catalogue, *, issuer_on_loopback: bool, allow_private: bool
) -> SelfRegistration:
    """The client a metadata document fetched from ``client_id`` describes: a public client (``none``, PKCE)
    whose pairwise subjects, if it asks for them, are for the host that served the document."""
    if not isinstance(document, dict):
        raise InvalidClientMetadata("client_id", "the client ID metadata document is not a JSON object")
    if document.get("client_id") != client_id:
        raise InvalidClientMetadata(
            "client_id", "the document's client_id is not the URL it was fetched from"
        )
    for secret in ("client_secret", "client_secret_expires_at"):
        if secret in document:
            raise InvalidClientMetadata(secret, "a client ID metadata document must not hold a client secret")
    values = {**document, "sector_identifier_uri": None}
    registration = self_registration(
        values,
        catalogue,
        issuer_on_loopback=issuer_on_loopback,
        allow_private_webhooks=allow_private,
        public_only=True,
    )
    host = (urlsplit(client_id).hostname or "").lower()
    return replace(registration, metadata=replace(registration.metadata, sector=host))


def document_lifetime(headers: Mapping[str, str], *, now: datetime) -> timedelta:
    """How long a fetched document stays fresh (RFC 9111 §4.2.1): ``no-store``/``no-cache`` not at all,
    else ``max-age``, else ``Expires``, else an hour; never more than 24 hours (SPEC §8)."""
    cache_control = headers.get("cache-control", "")
    directives = {part.strip().split("=")[0].lower() for part in cache_control.split(",")}
    if directives & {"no-store", "no-cache"}:
        return timedelta(0)
    if (max_age := _MAX_AGE.search(cache_control)) is not None:
        return min(timedelta(seconds=int(max_age.group(1))), MAX_DOCUMENT_LIFETIME)
    if "expires" in headers:
        expires = _http_date(headers["expires"])
        if expires is None:
            return timedelta(0)  # RFC 9111 §5.3: an invalid date means already expired
        served = _http_date(headers.get("date", "")) or now
        return max(timedelta(0), min(expires - served, MAX_DOCUMENT_LIFETIME))
    return DEFAULT_DOCUMENT_LIFETIME


def _http_date(value: str) -> datetime | None:
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


def _text_fields(values: Mapping[str, Any]) -> dict[str, str]:
    """The metadata fields that are strings; ``null`` counts as absent."""
    text: dict[str, str] = {}
    for name in METADATA_FIELDS:
        value = values.get(name)
        if value is None or isinstance(value, list):
            continue
        if not isinstance(value, str):
            raise InvalidClientMetadata(name, f"{name} must be a string")
        if len(value) > 2048:
            raise InvalidClientMetadata(name, f"{name} is longer than 2048 characters")
        text[name] = value
    return text


def _uri_list(values: Mapping[str, Any], name: str) -> list[str]:
    listed = values.get(name)
    if listed is None:
        return []
    if not isinstance(listed, list) or not all(isinstance(uri, str) for uri in listed):
        raise InvalidClientMetadata(name, f"{name} must be a list of strings")
    if len(listed) > 20:
        raise InvalidClientMetadata(name, f"at most 20 {name}")
    return listed


def _host_of(redirect_uris: list[str]) -> str:
    """A name for a client that gave none: the host it sends people back to."""
    host = urlsplit(redirect_uris[0]).hostname if redirect_uris else None
    return (host or "Unnamed application")[:200]
