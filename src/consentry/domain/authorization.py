"""The authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, OIDC Core §3.1.2.1), validated. Pure.

Validation runs in two stages because the errors go to different places: a bad client or redirect URI is
shown to the person (never redirected, RFC 6749 §4.1.2.1), anything after that is redirected to the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from consentry.domain import pkce
from consentry.domain.clients import GRANT_AUTHORIZATION_CODE, RegisteredClient
from consentry.domain.prompts import InvalidPrompt, parse_prompt
from consentry.domain.resources import Catalogue, InvalidTarget, RestrictedScope, parse_resources
from consentry.domain.scopes import InvalidScopeToken, Scopes
from consentry.errors import (
    ConsentryError,
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    InvalidTargetError,
    RequestNotSupportedError,
    RequestUriNotSupportedError,
    UnauthorizedClientError,
    UnsupportedResponseTypeError,
)

MAX_STATE = 2048
MAX_NONCE = 512
MAX_LOGIN_HINT = 320

# The parameters that identify a pending request, in the order they are written into URLs.
REQUEST_PARAMETERS = (
    "response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
    "code_challenge_method", "prompt", "max_age", "login_hint", "resource",
)  # fmt: skip
# What a pending request carries through sign-in (``oauth2_context``, SPEC §3) and back from the consent
# screen: the parameters that decide what is granted and where it goes.
PENDING_PARAMETERS = (
    "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method", "nonce",
    "resource",
)  # fmt: skip


def pending_request(values: Mapping[str, Any]) -> dict[str, str]:
    """The authorization request ``values`` (an ``oauth2_context``, a consent decision) stand for."""
    present = {key: _one_value(values[key]) for key in PENDING_PARAMETERS if values.get(key) is not None}
    return {"response_type": "code", **present}


def _one_value(value: Any) -> str:
    """A list (``resource`` may be one, SPEC §7) as its space-separated values; anything else as text."""
    return " ".join(str(one) for one in value) if isinstance(value, list) else str(value)


class _AuthorizationError(ValueError):
    """A protocol error (one of ``errors.py``'s classes) and where the authorization endpoint reports it."""

    def __init__(self, cause: ConsentryError) -> None:
        self.cause = cause
        self.error = cause.error
        self.description = cause.description
        super().__init__(cause.description)


class UnredirectableError(_AuthorizationError):
    """Unknown client or bad redirect URI: shown to the person, never sent to a redirect URI."""


class RedirectableError(_AuthorizationError):
    """An error reported to the client through its redirect URI (RFC 6749 §4.1.2.1)."""


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    scopes: Scopes
    state: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    prompts: frozenset[str] = field(default_factory=frozenset)
    max_age: int | None = None
    login_hint: str | None = None
    resources: tuple[str, ...] = ()  # RFC 8707, each once, in the order asked

    def as_parameters(self, *, without_prompt: bool = False) -> dict[str, str]:
        """The request as query parameters, to carry it to /login or /consent and back."""
        values: dict[str, Any] = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scopes.format(),
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.code_challenge,
            "code_challenge_method": self.code_challenge_method,
            "prompt": None if without_prompt or not self.prompts else " ".join(sorted(self.prompts)),
            "max_age": None if self.max_age is None else str(self.max_age),
            "login_hint": self.login_hint,
            "resource": " ".join(self.resources) or None,
        }
        return {key: value for key, value in values.items() if value is not None}

    def query_string(self, *, without_prompt: bool = False) -> str:
        return urlencode(self.as_parameters(without_prompt=without_prompt))


def check_client_and_redirect(client: RegisteredClient | None, redirect_uri: str | None) -> str:
    """Stage one: the client exists and the redirect URI is one of its own, by exact string match."""
    if client is None:
        raise UnredirectableError(InvalidClientError("unknown client_id"))
    if not redirect_uri:
        raise UnredirectableError(InvalidRequestError("redirect_uri is required"))
    if redirect_uri not in client.redirect_uris:
        raise UnredirectableError(
            InvalidRequestError("redirect_uri does not match a registered redirect URI")
        )
    return redirect_uri


def parse_request(
    params: Mapping[str, str], client: RegisteredClient, *, catalogue: Catalogue
) -> AuthorizationRequest:
    """Stage two (after :func:`check_client_and_redirect`): every other parameter. ``resource`` arrives
    space-separated when it was repeated."""
    redirect_uri = check_client_and_redirect(client, params.get("redirect_uri"))
    response_type = params.get("response_type")
    if not response_type:
        raise RedirectableError(InvalidRequestError("response_type is required"))
    if response_type != "code":
        raise RedirectableError(UnsupportedResponseTypeError("only response_type=code is supported"))
    # OIDC Core §6: request objects are not supported, and must not be silently ignored.
    if params.get("request") is not None:
        raise RedirectableError(RequestNotSupportedError("request objects are not supported"))
    if params.get("request_uri") is not None:
        raise RedirectableError(RequestUriNotSupportedError("request_uri is not supported"))
    if not client.allows_grant(GRANT_AUTHORIZATION_CODE):
        raise RedirectableError(
            UnauthorizedClientError("this client may not use the authorization code grant")
        )
    try:
        scopes = Scopes.parse(params.get("scope"))
    except InvalidScopeToken as exc:
        raise RedirectableError(InvalidScopeError(str(exc))) from exc
    if not scopes:
        raise RedirectableError(InvalidScopeError("scope is required"))
    not_allowed = scopes - client.scopes
    if not_allowed:
        raise RedirectableError(
            InvalidScopeError(f"scope not allowed for this client: {not_allowed.format()}")
        )
    unknown = scopes - catalogue.scopes.keys()
    if unknown:
        raise RedirectableError(InvalidScopeError(f"unknown scope: {unknown.format()}"))
    try:
        resources = parse_resources(params.get("resource"))
        catalogue.check_targets(resources, scopes)
        catalogue.grantable(scopes, trusted_client=client.trusted, admin=True)
    except InvalidTarget as exc:
        raise RedirectableError(InvalidTargetError(str(exc))) from exc
    except RestrictedScope as exc:
        raise RedirectableError(InvalidScopeError(str(exc))) from exc
    try:
        challenge = pkce.validate_challenge(params.get("code_challenge"), params.get("code_challenge_method"))
    except pkce.PKCEError as exc:
        raise RedirectableError(InvalidRequestError(str(exc))) from exc
    if challenge is None and client.is_public:
        raise RedirectableError(
            InvalidRequestError("PKCE (code_challenge with S256) is required for public clients")
        )
    try:
        prompts = parse_prompt(params.get("prompt"))
    except InvalidPrompt as exc:
        raise RedirectableError(InvalidRequestError(str(exc))) from exc
    max_age = _parse_max_age(params.get("max_age"))
    state = _bounded(params, "state", MAX_STATE)
    nonce = _bounded(params, "nonce", MAX_NONCE)
    login_hint = _bounded(params, "login_hint", MAX_LOGIN_HINT)
    return AuthorizationRequest(
        client_id=client.id,
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=state,
        nonce=nonce,
        code_challenge=challenge[0] if challenge else None,
        code_challenge_method=challenge[1] if challenge else None,
        prompts=prompts,
        max_age=max_age,
        login_hint=login_hint,
        resources=resources,
    )


def _bounded(params: Mapping[str, str], name: str, limit: int) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if len(value) > limit:
        raise RedirectableError(InvalidRequestError(f"{name} is longer than {limit} characters"))
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise RedirectableError(InvalidRequestError(f"{name} must not contain control characters"))
    return value


def _parse_max_age(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    # str.isdigit() is true of "²" and other digits int() refuses: ASCII digits only.
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise RedirectableError(InvalidRequestError("max_age must be a non-negative number of seconds"))
    return int(value)


def error_redirect(redirect_uri: str, *, error: str, description: str, state: str | None, issuer: str) -> str:
    """RFC 6749 §4.1.2.1 error response, with ``iss`` (RFC 9207)."""
    params = {"error": error, "error_description": description, "state": state, "iss": issuer}
    return append_query(redirect_uri, {k: v for k, v in params.items() if v is not None})


def code_redirect(redirect_uri: str, *, code: str, state: str | None, issuer: str) -> str:
    """RFC 6749 §4.1.2 success response, with ``iss`` (RFC 9207)."""
    params = {"code": code, "state": state, "iss": issuer}
    return append_query(redirect_uri, {k: v for k, v in params.items() if v is not None})


def append_query(uri: str, params: Mapping[str, str]) -> str:
    """Add parameters to a URI that may already carry a query (RFC 6749 §3.1.2 keeps the existing one)."""
    separator = "&" if "?" in uri else "?"
    return f"{uri}{separator}{urlencode(params)}"
