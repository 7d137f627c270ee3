"""Talking to upstream identity providers (SPEC §10), with Authlib's OAuth 2.0 client and joserfc.

Discovery, the authorization URL (state, nonce, PKCE S256), the code exchange, refreshing, the person's
record and, for OpenID providers, the ID token checked against the provider's JWKS (kept per provider and
fetched again when a token names a key it does not hold). Nothing is stored here; each call is bounded.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

from consentry.domain.upstreams import UpstreamConfig

if TYPE_CHECKING:
    from authlib.integrations.httpx_client import AsyncOAuth2Client

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
ID_TOKEN_LEEWAY = 120  # seconds of clock skew allowed between us and the provider
JWKS_MIN_REFETCH = 10.0  # an unknown kid fetches the provider's keys again at most this often


class UpstreamRefused(Exception):
    """The provider refused, or answered something that signs nobody in; the message says what, for people."""


class UpstreamUnavailable(Exception):
    """The provider could not be reached or did not answer in time."""


class UpstreamOAuth:
    def __init__(self) -> None:
        self._jwks: dict[str, tuple[KeySet, float]] = {}

    async def discover(self, issuer: str) -> dict[str, Any]:
        """The provider's OpenID Connect discovery document, whose ``issuer`` must be the one given."""
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._get_json(url)
        if not isinstance(document, dict) or document.get("issuer") != issuer:
            raise UpstreamRefused(f"the discovery document at {url} does not name {issuer} as its issuer")
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(field), str):
                raise UpstreamRefused(f"the discovery document at {url} has no {field}")
        return document

    def authorization_url(
        self, config: UpstreamConfig, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        client = self._client(config, redirect_uri=redirect_uri)
        extra = {"nonce": nonce} if config.is_oidc else {}
        url, _ = client.create_authorization_url(
            config.authorize_url, state=state, code_verifier=code_verifier, **extra
        )
        return str(url)

    async def exchange(
        self, config: UpstreamConfig, *, redirect_uri: str, code: str, code_verifier: str
    ) -> dict[str, Any]:
        """The provider's token response for the code."""
        async with self._client(config, redirect_uri=redirect_uri) as client:
            return await self._token_call(
                client.fetch_token(config.token_url, code=code, code_verifier=code_verifier)
            )

    async def refresh(self, config: UpstreamConfig, refresh_token: str) -> dict[str, Any]:
        async with self._client(config) as client:
            return await self._token_call(client.refresh_token(config.token_url, refresh_token=refresh_token))

    async def id_token_claims(self, config: UpstreamConfig, id_token: str, *, nonce: str) -> dict[str, Any]:
        """The ID token's claims once its signature (the provider's JWKS), ``iss``, ``aud``, ``azp``, ``exp``,
        ``iat`` and ``nonce`` hold (OpenID Connect Core §3.1.3.7)."""
        if config.jwks_uri is None or config.issuer is None:
            raise UpstreamRefused("the provider has no JWKS or issuer to check an ID token with")
        algorithms = list(config.signing_algs or ["RS256"])
        keys = await self._keys(config.jwks_uri, refetch=False)
        try:
            try:
                token = jwt.decode(id_token, keys, algorithms=algorithms)
            except JoseError:
                keys = await self._keys(
                    config.jwks_uri, refetch=True
                )  # the provider may have rolled its keys
                token = jwt.decode(id_token, keys, algorithms=algorithms)
            claims = dict(token.claims)
            jwt.JWTClaimsRegistry(
                leeway=ID_TOKEN_LEEWAY,
                iss={"essential": True, "value": config.issuer},
                aud={"essential": True, "value": config.client_id},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(claims)
        except (JoseError, ValueError) as exc:
            raise UpstreamRefused(f"the provider's ID token was refused: {_jose_reason(exc)}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != config.client_id:
            raise UpstreamRefused("the provider's ID token was refused: it was issued to another party (azp)")
        return claims

    async def person(self, config: UpstreamConfig, access_token: str) -> dict[str, Any]:
        """The person's record at the provider's userinfo URL."""
        assert config.userinfo_url is not None
        record = await self._get_json(config.userinfo_url, access_token=access_token)
        if not isinstance(record, dict):
            raise UpstreamRefused("the provider's userinfo answer is not a JSON object")
        return record

    async def verified_email(self, config: UpstreamConfig, access_token: str) -> str | None:
        """The primary verified address from a GitHub-style list of the person's emails, if there is one."""
        if config.emails_url is None:
            return None
        listed = await self._get_json(config.emails_url, access_token=access_token)
        if not isinstance(listed, list):
            return None
        for entry in listed:
            if isinstance(entry, dict) and entry.get("primary") and entry.get("verified"):
                email = entry.get("email")
                return email if isinstance(email, str) and "@" in email else None
        return None

    def _client(self, config: UpstreamConfig, *, redirect_uri: str | None = None) -> AsyncOAuth2Client:
        # Imported on first use: most processes (the CLI, a server with no provider) never need it.
        with warnings.catch_warnings():  # Authlib would rather have httpx2; it falls back to our httpx
            warnings.simplefilter("ignore")
            from authlib.integrations.httpx_client import AsyncOAuth2Client

        return AsyncOAuth2Client(
            client_id=config.client_id,
            client_secret=config.client_secret,
            scope=config.scope,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=TIMEOUT,
            follow_redirects=False,
        )

    async def _token_call(self, call: Any) -> dict[str, Any]:
        from authlib.common.errors import AuthlibBaseError

        try:
            token = await call
        except AuthlibBaseError as exc:
            raise UpstreamRefused(f"the provider refused: {exc.error}") from None
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(
                f"the provider's token endpoint could not be reached ({type(exc).__name__})"
            ) from None
        except httpx.HTTPStatusError as exc:
            raise UpstreamRefused(
                f"the provider's token endpoint answered HTTP {exc.response.status_code}"
            ) from None
        except ValueError:
            raise UpstreamRefused(
                "the provider's token endpoint answered something that is not a token"
            ) from None
        if not isinstance(token, Mapping) or not isinstance(token.get("access_token"), str):
            error = token.get("error") if isinstance(token, Mapping) else None
            raise UpstreamRefused(f"the provider refused the code: {error or 'no access token'}")
        return dict(token)

    async def _keys(self, jwks_uri: str, *, refetch: bool) -> KeySet:
        cached = self._jwks.get(jwks_uri)
        if cached is not None and (not refetch or time.monotonic() - cached[1] < JWKS_MIN_REFETCH):
            return cached[0]
        document = await self._get_json(jwks_uri)
        try:
            keys = KeySet.import_key_set(document)
        except (JoseError, ValueError, TypeError, KeyError):
            raise UpstreamRefused("the provider's JWKS cannot be read") from None
        self._jwks[jwks_uri] = (keys, time.monotonic())
        return keys

    async def _get_json(self, url: str, *, access_token: str | None = None) -> Any:
        headers = {"Accept": "application/json"}
        if access_token is not None:
            headers["Authorization"] = f"Bearer {access_token}"
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
                answer = await client.get(url, headers=headers)
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"{url} could not be reached ({type(exc).__name__})") from None
        if answer.status_code != 200:
            raise UpstreamRefused(f"{url} answered HTTP {answer.status_code}")
        try:
            return answer.json()
        except ValueError:
            raise UpstreamRefused(f"{url} did not answer JSON") from None


def _jose_reason(exc: Exception) -> str:
    """Why an ID token was refused, in words (joserfc's own descriptions repeat the error code)."""
    claim = getattr(exc, "claim", None)
    if isinstance(exc, InvalidClaimError):
        return f"its {claim} is not the expected one"
    if isinstance(exc, MissingClaimError):
        return f"it has no {claim}"
    if isinstance(exc, ExpiredTokenError):
        return "it has expired"
    if isinstance(exc, BadSignatureError):
        return "its signature does not verify with the provider's keys"
    return str(getattr(exc, "description", "") or getattr(exc, "error", "") or exc) or type(exc).__name__
