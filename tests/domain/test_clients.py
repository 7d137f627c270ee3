from __future__ import annotations

from dataclasses import dataclass

import pytest

from consentry.domain.clients import (
    InvalidClientMetadata,
    build_client_metadata,
    sector_of,
    validate_redirect_uri,
    validate_webhook_url,
)
from consentry.domain.scopes import Scopes

KNOWN = frozenset({"openid", "profile", "email", "phone", "offline_access"})


@dataclass(frozen=True)
class UriCase:
    description: str
    uri: str
    valid: bool


REDIRECT_CASES = [
    UriCase("https", "https://app.example.com/cb", True),
    UriCase("https with query", "https://app.example.com/cb?x=1", True),
    UriCase("loopback http ipv4", "http://127.0.0.1:9000/cb", True),
    UriCase("loopback http ipv6", "http://[::1]:9000/cb", True),
    UriCase("localhost http", "http://localhost:3000/cb", True),
    UriCase("plain http public host", "http://app.example.com/cb", False),
    UriCase("fragment", "https://app.example.com/cb#frag", False),
    UriCase("empty fragment", "https://app.example.com/cb#", False),
    UriCase("wildcard", "https://*.example.com/cb", False),
    UriCase("relative", "/cb", False),
    UriCase("javascript scheme", "javascript:alert(1)", False),
    UriCase("credentials", "https://user:pw@app.example.com/cb", False),
    UriCase("empty", "", False),
    UriCase("too long", "https://app.example.com/" + "a" * 2100, False),
    UriCase("CR LF", "https://app.example.com/cb\r\nSet-Cookie: x=1", False),
    UriCase("tab", "https://app.example.com/c\tb", False),
    UriCase("space", "https://app.example.com/c b", False),
    UriCase("C1 control", "https://app.example.com/c\x85b", False),
    UriCase("decimal ipv4", "http://2130706433/cb", False),
    UriCase("hex ipv4", "https://0x7f.1/cb", False),
]


@pytest.mark.parametrize("case", REDIRECT_CASES, ids=lambda c: c.description)
def test_redirect_uri_rules(case: UriCase) -> None:
    if case.valid:
        assert validate_redirect_uri(case.uri) == case.uri
    else:
        with pytest.raises(InvalidClientMetadata):
            validate_redirect_uri(case.uri)


WEBHOOK_CASES = [
    UriCase("public https", "https://hooks.example.com/x", True),
    UriCase("loopback", "https://127.0.0.1/x", False),
    UriCase("private 10/8", "https://10.1.2.3/x", False),
    UriCase("private 192.168", "https://192.168.1.1/x", False),
    UriCase("link-local metadata", "https://169.254.169.254/latest", False),
    UriCase("localhost name", "https://localhost/x", False),
    UriCase("internal suffix", "https://db.internal/x", False),
    UriCase("plain http", "http://hooks.example.com/x", False),
    UriCase("decimal ipv4", "https://2130706433/", False),
    UriCase("hex ipv4", "https://0x7f.1/", False),
    UriCase("octal ipv4", "https://0177.0.0.1/", False),
    UriCase("short ipv4", "https://8.8.8/", False),
    UriCase("CR LF", "https://hooks.example.com/x\r\n", False),
]


@pytest.mark.parametrize("case", WEBHOOK_CASES, ids=lambda c: c.description)
def test_webhook_urls_refuse_private_targets(case: UriCase) -> None:
    if case.valid:
        assert validate_webhook_url(case.uri, allow_private=False) == case.uri
    else:
        with pytest.raises(InvalidClientMetadata):
            validate_webhook_url(case.uri, allow_private=False)


def test_webhook_private_targets_allowed_in_development() -> None:
    assert validate_webhook_url("http://127.0.0.1:9999/hook", allow_private=True)


@pytest.mark.parametrize("url", ["https://2130706433/", "https://0x7f.1/", "https://0177.0.0.1/"])
def test_numeric_hosts_in_odd_forms_are_refused_even_where_private_targets_are_allowed(url: str) -> None:
    with pytest.raises(InvalidClientMetadata):
        validate_webhook_url(url, allow_private=True)


def test_sector_is_the_single_redirect_host_or_the_sector_identifier_host() -> None:
    assert sector_of(["https://a.example.com/1", "https://A.example.com/2"], None) == "a.example.com"
    assert sector_of(
        ["https://a.example.com/1", "https://b.example.com/2"], "https://example.com/s.json"
    ) == ("example.com")
    with pytest.raises(InvalidClientMetadata):
        sector_of(["https://a.example.com/1", "https://b.example.com/2"], None)


def _build(**overrides: object) -> object:
    values: dict[str, object] = {
        "name": "App",
        "redirect_uris": ["https://app.example.com/cb"],
        "scopes": Scopes.parse("openid profile"),
        "known_scopes": KNOWN,
    }
    values.update(overrides)
    return build_client_metadata(**values)  # type: ignore[arg-type]


def test_defaults() -> None:
    metadata = _build()
    assert metadata.grant_types == ("authorization_code", "refresh_token")  # type: ignore[attr-defined]
    assert metadata.token_endpoint_auth_method == "client_secret_basic"  # type: ignore[attr-defined]
    assert metadata.sector == "app.example.com"  # type: ignore[attr-defined]
    assert metadata.id_token_signed_response_alg == "RS256"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "  "}, "client_name"),
        ({"scopes": Scopes.parse("openid admin")}, "scope"),
        ({"grant_types": ["implicit"]}, "grant_types"),
        ({"grant_types": ["password"]}, "grant_types"),
        ({"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}, "grant_types"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "token_endpoint_auth_method"),
        ({"subject_type": "secret"}, "subject_type"),
        ({"id_token_signed_response_alg": "none"}, "id_token_signed_response_alg"),
        ({"id_token_signed_response_alg": "HS256"}, "id_token_signed_response_alg"),
        ({"redirect_uris": []}, "redirect_uris"),
        ({"consent_ttl_days": 0}, "consent_ttl_days"),
        ({"logo_uri": "ftp://x/y.png"}, "logo_uri"),
        (
            {"subject_type": "pairwise", "redirect_uris": ["https://a.example/1", "https://b.example/2"]},
            "sector_identifier_uri",
        ),
    ],
    ids=lambda v: str(v),
)
def test_refusals_name_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidClientMetadata) as info:
        _build(**overrides)
    assert info.value.field == field


def test_client_credentials_only_client_needs_no_redirect_uri() -> None:
    metadata = _build(redirect_uris=[], grant_types=["client_credentials"])
    assert metadata.redirect_uris == ()  # type: ignore[attr-defined]
