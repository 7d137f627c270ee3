"""Client registration rules (RFC 6749 §2, RFC 7591 §2, RFC 8252 §7.3, OIDC Core §8.1). Pure."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from consentry.domain.net import has_control_or_space, is_loopback_host, is_odd_ipv4, is_private_host
from consentry.domain.scopes import Scopes
from consentry.domain.tokens import DEFAULT_SIGNING_ALGORITHM, SIGNING_ALGORITHMS

GRANT_AUTHORIZATION_CODE = "authorization_code"
GRANT_REFRESH_TOKEN = "refresh_token"
GRANT_CLIENT_CREDENTIALS = "client_credentials"
SUPPORTED_GRANT_TYPES = (GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN, GRANT_CLIENT_CREDENTIALS)
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
SUBJECT_TYPES = ("public", "pairwise")


class ClientRegistration(enum.StrEnum):
    """How a client came to be (SPEC §8): registered by the operator or an account holder, by itself (RFC
    7591), or named by its client ID metadata document. The last two are never trusted."""

    OPERATOR = "operator"
    SELF = "self"
    DOCUMENT = "document"


def verified_host(client_id: str, registration: ClientRegistration) -> str | None:
    """A metadata document's client: the host its ``client_id`` names, which served its document (what the
    pages show of who it is, SPEC §8); others have none."""
    return urlsplit(client_id).hostname if registration is ClientRegistration.DOCUMENT else None


class InvalidClientMetadata(ValueError):
    """RFC 7591 §3.2.2 ``invalid_client_metadata`` / ``invalid_redirect_uri``; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def validate_redirect_uri(uri: str) -> str:
    """An absolute URI without fragment or wildcard; https, or http on a loopback host (RFC 8252 §7.3)."""
    if not uri or len(uri) > 2048:
        raise InvalidClientMetadata("redirect_uris", "a redirect URI must be 1 to 2048 characters")
    if "*" in uri:
        raise InvalidClientMetadata("redirect_uris", f"wildcards are not allowed: {uri}")
    if has_control_or_space(uri):
        raise InvalidClientMetadata(
            "redirect_uris", f"a redirect URI must not contain spaces or control characters: {uri!r}"
        )
    parts = urlsplit(uri)
    if parts.fragment or uri.endswith("#"):
        raise InvalidClientMetadata("redirect_uris", f"a redirect URI must not have a fragment: {uri}")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidClientMetadata("redirect_uris", f"a redirect URI must be an absolute http(s) URL: {uri}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise InvalidClientMetadata("redirect_uris", f"plain http is allowed only on loopback hosts: {uri}")
    if parts.username or parts.password:
        raise InvalidClientMetadata("redirect_uris", f"a redirect URI must not carry credentials: {uri}")
    if is_odd_ipv4(parts.hostname):
        raise InvalidClientMetadata("redirect_uris", f"write an IPv4 host in dotted decimal: {uri}")
    return uri


def validate_https_url(field: str, url: str | None, *, allow_loopback_http: bool = True) -> str | None:
    """Optional metadata URLs (client_uri, logo_uri, policy_uri, tos_uri, webhook_url)."""
    if url is None or url == "":
        return None
    parts = urlsplit(url)
    if len(url) > 2048 or parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidClientMetadata(field, f"{field} must be an absolute http(s) URL")
    if has_control_or_space(url):
        raise InvalidClientMetadata(field, f"{field} must not contain spaces or control characters")
    if is_odd_ipv4(parts.hostname):
        raise InvalidClientMetadata(field, f"{field}: write an IPv4 host in dotted decimal")
    if parts.scheme == "http" and not (allow_loopback_http and is_loopback_host(parts.hostname)):
        raise InvalidClientMetadata(field, f"{field} must use https")
    return url


def validate_webhook_url(url: str | None, *, allow_private: bool) -> str | None:
    """An https (or, when private targets are allowed, loopback http) URL not aimed at our own network (SSRF).

    Host names are checked again against the addresses they resolve to when a delivery is made.
    """
    if url is None or url == "":
        return None
    validate_https_url("webhook_url", url, allow_loopback_http=allow_private)
    host = urlsplit(url).hostname or ""
    if not allow_private and is_private_host(host):
        raise InvalidClientMetadata(
            "webhook_url", "webhook URLs on private or loopback addresses are refused"
        )
    return url


def sector_of(
    redirect_uris: Sequence[str], sector_identifier_uri: str | None, *, allow_loopback_http: bool = False
) -> str:
    """The host pairwise subjects are computed for (OIDC Core §8.1).

    Without a ``sector_identifier_uri`` every redirect URI must share one host, else the client's
    pseudonyms would be ambiguous. The document at that URI is fetched and checked by the service that
    registers the client (it must list every redirect URI).
    """
    if sector_identifier_uri:
        parts = urlsplit(sector_identifier_uri)
        loopback_http = allow_loopback_http and parts.scheme == "http" and is_loopback_host(parts.hostname)
        if not parts.hostname or not (parts.scheme == "https" or loopback_http):
            raise InvalidClientMetadata("sector_identifier_uri", "sector_identifier_uri must be an https URL")
        if has_control_or_space(sector_identifier_uri) or is_odd_ipv4(parts.hostname):
            raise InvalidClientMetadata("sector_identifier_uri", "sector_identifier_uri is not a plain URL")
        return parts.hostname.lower()
    hosts = {(urlsplit(uri).hostname or "").lower() for uri in redirect_uris}
    if len(hosts) != 1:
        raise InvalidClientMetadata(
            "sector_identifier_uri",
            "redirect URIs on several hosts need a sector_identifier_uri for pairwise subjects",
        )
    return hosts.pop()


@dataclass(frozen=True, slots=True)
class ClientMetadata:
    """Validated registration metadata, ready to store."""

    name: str
    redirect_uris: tuple[str, ...]
    scopes: Scopes
    grant_types: tuple[str, ...]
    token_endpoint_auth_method: str
    subject_type: str
    sector: str
    sector_identifier_uri: str | None = None
    client_uri: str | None = None
    logo_uri: str | None = None
    policy_uri: str | None = None
    tos_uri: str | None = None
    policy_version: str | None = None
    webhook_url: str | None = None
    trusted: bool = False
    consent_ttl_days: int | None = None
    id_token_signed_response_alg: str = DEFAULT_SIGNING_ALGORITHM
    auth_method_fixed: bool = True  # see RegisteredClient.accepts_auth_method
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"


def build_client_metadata(
    *,
    name: str,
    redirect_uris: Sequence[str],
    scopes: Scopes,
    known_scopes: frozenset[str],
    grant_types: Sequence[str] | None = None,
    token_endpoint_auth_method: str = "client_secret_basic",
    subject_type: str = "public",
    sector_identifier_uri: str | None = None,
    client_uri: str | None = None,
    logo_uri: str | None = None,
    policy_uri: str | None = None,
    tos_uri: str | None = None,
    policy_version: str | None = None,
    webhook_url: str | None = None,
    trusted: bool = False,
    consent_ttl_days: int | None = None,
    id_token_signed_response_alg: str = DEFAULT_SIGNING_ALGORITHM,
    allow_private_webhooks: bool = False,
    auth_method_fixed: bool = True,
    issuer_on_loopback: bool = False,
    post_logout_redirect_uris: Sequence[str] = (),
    backchannel_logout_uri: str | None = None,
    backchannel_logout_session_required: bool = False,
) -> ClientMetadata:
    """Apply every registration rule; raise :class:`InvalidClientMetadata` on the first broken one."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidClientMetadata("client_name", "client_name must be 1 to 200 characters")
    if token_endpoint_auth_method not in AUTH_METHODS:
        raise InvalidClientMetadata("token_endpoint_auth_method", f"must be one of {', '.join(AUTH_METHODS)}")
    if subject_type not in SUBJECT_TYPES:
        raise InvalidClientMetadata("subject_type", "must be public or pairwise")
    if id_token_signed_response_alg not in SIGNING_ALGORITHMS:
        raise InvalidClientMetadata(
            "id_token_signed_response_alg", f"must be one of {', '.join(SIGNING_ALGORITHMS)}"
        )
    grants = tuple(dict.fromkeys(grant_types or (GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN)))
    unknown = [g for g in grants if g not in SUPPORTED_GRANT_TYPES]
    if unknown:
        raise InvalidClientMetadata("grant_types", f"unsupported grant types: {', '.join(unknown)}")
    if token_endpoint_auth_method == "none" and GRANT_CLIENT_CREDENTIALS in grants:
        raise InvalidClientMetadata("grant_types", "a public client cannot use client_credentials")
    uris = tuple(dict.fromkeys(validate_redirect_uri(uri) for uri in redirect_uris))
    if GRANT_AUTHORIZATION_CODE in grants and not uris:
        raise InvalidClientMetadata(
            "redirect_uris", "the authorization_code grant needs at least one redirect URI"
        )
    unknown_scopes = scopes - known_scopes
    if unknown_scopes:
        raise InvalidClientMetadata("scope", f"unknown scopes: {unknown_scopes.format()}")
    if consent_ttl_days is not None and not 1 <= consent_ttl_days <= 3650:
        raise InvalidClientMetadata("consent_ttl_days", "consent_ttl_days must be between 1 and 3650")
    if policy_version is not None and not 1 <= len(policy_version) <= 64:
        raise InvalidClientMetadata("policy_version", "policy_version must be 1 to 64 characters")
    if subject_type == "pairwise" or sector_identifier_uri:
        sector = sector_of(uris, sector_identifier_uri, allow_loopback_http=issuer_on_loopback)
    else:
        sector = (urlsplit(uris[0]).hostname or "") if uris else ""
    return ClientMetadata(
        name=name,
        redirect_uris=uris,
        scopes=scopes,
        grant_types=grants,
        token_endpoint_auth_method=token_endpoint_auth_method,
        subject_type=subject_type,
        sector=sector.lower(),
        sector_identifier_uri=sector_identifier_uri,
        client_uri=validate_https_url("client_uri", client_uri),
        logo_uri=validate_https_url("logo_uri", logo_uri),
        policy_uri=validate_https_url("policy_uri", policy_uri),
        tos_uri=validate_https_url("tos_uri", tos_uri),
        policy_version=policy_version,
        webhook_url=validate_webhook_url(webhook_url, allow_private=allow_private_webhooks),
        trusted=trusted,
        consent_ttl_days=consent_ttl_days,
        id_token_signed_response_alg=id_token_signed_response_alg,
        auth_method_fixed=auth_method_fixed,
        post_logout_redirect_uris=validate_post_logout_redirect_uris(post_logout_redirect_uris),
        backchannel_logout_uri=validate_backchannel_logout_uri(
            backchannel_logout_uri, allow_loopback_http=issuer_on_loopback or allow_private_webhooks
        ),
        backchannel_logout_session_required=backchannel_logout_session_required,
    )


def validate_post_logout_redirect_uris(uris: Sequence[str]) -> tuple[str, ...]:
    """Where RP-Initiated Logout 1.0 may send the browser back to: the rules of redirect URIs (its §3)."""
    try:
        return tuple(dict.fromkeys(validate_redirect_uri(uri) for uri in uris))
    except InvalidClientMetadata as exc:
        message = str(exc).replace("a redirect URI", "a post-logout redirect URI")
        raise InvalidClientMetadata("post_logout_redirect_uris", message) from None


def validate_backchannel_logout_uri(url: str | None, *, allow_loopback_http: bool) -> str | None:
    """Back-Channel Logout 1.0 §2.2: an absolute https URL (http on loopback while the issuer is), without
    fragment; the delivery checks again where its host resolves (SSRF), as for webhooks."""
    url = validate_https_url("backchannel_logout_uri", url, allow_loopback_http=allow_loopback_http)
    if url is not None and (urlsplit(url).fragment or url.endswith("#")):
        raise InvalidClientMetadata("backchannel_logout_uri", "it must not have a fragment")
    return url


@dataclass(frozen=True, slots=True)
class RegisteredClient:
    """An immutable snapshot of a stored client: what the protocol layer needs, safe to cache."""

    id: str
    name: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scopes: Scopes
    token_endpoint_auth_method: str
    secret_hash: bytes | None
    subject_type: str
    sector: str
    trusted: bool
    consent_ttl_days: int | None
    policy_version: str | None
    client_uri: str | None = None
    logo_uri: str | None = None
    policy_uri: str | None = None
    tos_uri: str | None = None
    webhook_url: str | None = None
    id_token_signed_response_alg: str = DEFAULT_SIGNING_ALGORITHM
    auth_method_fixed: bool = True
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    registration: ClientRegistration = ClientRegistration.OPERATOR
    created_at: datetime | None = None
    document_expires_at: datetime | None = None  # a metadata document's client: when to fetch it again

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    @property
    def registered_itself(self) -> bool:
        return self.registration is not ClientRegistration.OPERATOR

    @property
    def verified_host(self) -> str | None:
        return verified_host(self.id, self.registration)

    def accepts_auth_method(self, method: str) -> bool:
        """SPEC §2: a client registered with a ``token_endpoint_auth_method`` authenticates with that one; a
        confidential client created without one (``consentry client create``) with Basic or the form."""
        if self.is_public or method == "none":
            return method == self.token_endpoint_auth_method
        return not self.auth_method_fixed or method == self.token_endpoint_auth_method

    def allows_grant(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


class SubjectType(enum.StrEnum):
    PUBLIC = "public"
    PAIRWISE = "pairwise"


class TokenEndpointAuthMethod(enum.StrEnum):
    CLIENT_SECRET_BASIC = "client_secret_basic"
    CLIENT_SECRET_POST = "client_secret_post"
    NONE = "none"
