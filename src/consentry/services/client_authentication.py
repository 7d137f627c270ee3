"""Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

from consentry.domain.clients import RegisteredClient
from consentry.errors import InvalidClientError, InvalidRequestError
from consentry.runtime import Runtime


@dataclass(frozen=True, slots=True)
class PresentedCredentials:
    client_id: str
    client_secret: str | None
    method: str  # client_secret_basic, client_secret_post, none


def presented_credentials(authorization: str | None, form: Mapping[str, str]) -> PresentedCredentials:
    """What the client sent: Basic header, or form fields; using two methods at once is refused (§2.3)."""
    form_id, form_secret = form.get("client_id"), form.get("client_secret")
    if authorization and authorization[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
            raw_id, raw_secret = decoded.split(":", 1)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidClientError("malformed Basic credentials") from None
        # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
        client_id, client_secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if form_secret is not None:
            raise InvalidRequestError("use one client authentication method, not two")
        if form_id is not None and form_id != client_id:
            raise InvalidRequestError("client_id does not match the authenticated client")
        return PresentedCredentials(client_id, client_secret, "client_secret_basic")
    if not form_id:
        raise InvalidClientError("client authentication is required")
    if form_secret is not None:
        return PresentedCredentials(form_id, form_secret, "client_secret_post")
    return PresentedCredentials(form_id, None, "none")


async def authenticate_client(
    runtime: Runtime, presented: PresentedCredentials, *, ip: str | None = None
) -> RegisteredClient:
    """The client, if its credentials hold. Failures are counted per (client, IP) and per IP (SPEC §1): per
    client alone, anyone who knows a public ``client_id`` could lock its owner out."""
    limiter, policy = runtime.rate_limiter, runtime.rate_limiter.policy
    per_client = ("client-auth", presented.client_id, ip or "-")
    await limiter.ensure_allowed(policy.client_auth_failures_per_client_and_ip, *per_client)
    await limiter.ensure_allowed(policy.client_auth_failures_per_ip, "client-auth-ip", ip or "-")
    try:
        return await _check(runtime, presented)
    except InvalidClientError:
        await limiter.count(policy.client_auth_failures_per_client_and_ip, *per_client)
        await limiter.count(policy.client_auth_failures_per_ip, "client-auth-ip", ip or "-")
        raise


async def _check(runtime: Runtime, presented: PresentedCredentials) -> RegisteredClient:
    """One generic failure for every reason (no oracle)."""
    client = await runtime.clients.get(presented.client_id)
    if client is None:
        raise InvalidClientError(debug=f"unknown client {presented.client_id!r}")
    if not client.accepts_auth_method(presented.method):
        raise InvalidClientError(debug=f"the client may not authenticate with {presented.method}")
    if client.is_public:
        return client
    if presented.client_secret is None or client.secret_hash is None:
        raise InvalidClientError(debug="a confidential client presented no secret")
    if not runtime.secret_hasher.verify(presented.client_secret, client.secret_hash):
        raise InvalidClientError(debug="wrong client secret")
    return client
