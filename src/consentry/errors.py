"""Errors the outside world sees.

Each OAuth error class is named after the ``error`` code a client receives (RFC 6749 §4.1.2.1, §5.2;
RFC 6750 §3.1; OIDC Core §3.1.2.6). ``description`` is public; ``debug`` stays in our logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


def N_(message: str) -> str:
    """Marks text a person may read for the message catalogs (``make messages``); translated where shown."""
    return message


class ConfigurationError(Exception):
    """The deployment is misconfigured; the message is one line an operator can act on."""


class ConsentryError(Exception):
    """Base of every error that maps to an HTTP response with a JSON ``{error, error_description}`` body."""

    error: ClassVar[str] = "server_error"
    status_code: ClassVar[int] = 400
    default_description: ClassVar[str] = ""

    def __init__(
        self,
        description: str | None = None,
        *,
        debug: str | None = None,
        values: Mapping[str, object] | None = None,
    ) -> None:
        # ``message`` with ``values`` filled in: the page a person reads translates the message first.
        self.message = description if description is not None else self.default_description
        self.values: Mapping[str, object] = values or {}
        self.description = self.message % self.values if self.values else self.message
        self.debug = debug
        super().__init__(self.description)

    def headers(self) -> dict[str, str]:
        return {}


class InvalidRequestError(ConsentryError):
    """RFC 6749 §5.2: missing or malformed parameter, repeated parameter, or otherwise malformed request."""

    error = "invalid_request"


class InvalidClientError(ConsentryError):
    """RFC 6749 §5.2: client authentication failed; 401 with ``WWW-Authenticate`` for HTTP auth schemes."""

    error = "invalid_client"
    status_code = 401
    default_description = N_("client authentication failed")

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Basic realm="consentry"'}


class InvalidGrantError(ConsentryError):
    """RFC 6749 §5.2: the grant or refresh token is invalid, expired, revoked, or bound to another client."""

    error = "invalid_grant"


class UnauthorizedClientError(ConsentryError):
    """RFC 6749 §5.2: the client may not use this grant type."""

    error = "unauthorized_client"


class UnsupportedGrantTypeError(ConsentryError):
    """RFC 6749 §5.2: the grant type is not supported by this server."""

    error = "unsupported_grant_type"


class InvalidScopeError(ConsentryError):
    """RFC 6749 §5.2: the requested scope is invalid, unknown, or exceeds what was granted."""

    error = "invalid_scope"


class InvalidTargetError(ConsentryError):
    """RFC 8707 §2: an unknown resource, or scopes that do not belong to the resources asked for."""

    error = "invalid_target"


class InvalidTokenError(ConsentryError):
    """RFC 6750 §3.1: the access token is expired, revoked, malformed, or invalid."""

    error = "invalid_token"
    status_code = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'Bearer error="{self.error}"'}


class InsufficientScopeError(ConsentryError):
    """RFC 6750 §3.1: the token lacks the scope the resource needs."""

    error = "insufficient_scope"
    status_code = 403

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'Bearer error="{self.error}"'}


class UnsupportedResponseTypeError(ConsentryError):
    """RFC 6749 §4.1.2.1: the authorization server does not issue codes (or tokens) this way."""

    error = "unsupported_response_type"


class AccessDeniedError(ConsentryError):
    """RFC 6749 §4.1.2.1: the person (or the server) declined the request."""

    error = "access_denied"
    status_code = 403


class LoginRequiredError(ConsentryError):
    """OIDC Core §3.1.2.6: ``prompt=none`` and nobody is signed in (or the sign-in is too old)."""

    error = "login_required"
    status_code = 401


class ConsentRequiredError(ConsentryError):
    """OIDC Core §3.1.2.6: ``prompt=none`` and the person would have to consent."""

    error = "consent_required"
    status_code = 403


class RequestNotSupportedError(ConsentryError):
    """OIDC Core §3.1.2.6: request objects (``request``) are not supported."""

    error = "request_not_supported"


class RequestUriNotSupportedError(ConsentryError):
    """OIDC Core §3.1.2.6: ``request_uri`` is not supported."""

    error = "request_uri_not_supported"


class UnauthenticatedError(ConsentryError):
    """No valid session for an endpoint that needs a signed-in person."""

    error = "unauthenticated"
    status_code = 401
    default_description = N_("sign in first")


class ForbiddenError(ConsentryError):
    """Signed in, but not allowed (e.g. a non-admin on an admin route)."""

    error = "forbidden"
    status_code = 403


class ExpiredFormError(ForbiddenError):
    """A page's form whose CSRF token no longer matches: too old, or posted from another site."""

    default_description = N_("the form has expired or did not come from this site; reload the page")


class NotFoundError(ConsentryError):
    error = "not_found"
    status_code = 404
    default_description = N_("no such resource")


class ConflictError(ConsentryError):
    error = "conflict"
    status_code = 409


class ServiceUnavailableError(ConsentryError):
    """A dependency is down or the server is saturated; ``Retry-After`` says when to try again."""

    error = "temporarily_unavailable"
    status_code = 503

    def __init__(self, description: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(description)
        self.retry_after = max(1, retry_after)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RateLimitedError(ConsentryError):
    """Too many failed attempts; ``Retry-After`` says when to try again (RFC 6585 §4)."""

    error = "rate_limited"
    status_code = 429
    default_description = N_("too many attempts; try again later")

    def __init__(self, retry_after: int, description: str | None = None) -> None:
        super().__init__(description)
        self.retry_after = max(1, retry_after)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class InvalidCodeError(ConsentryError):
    """The one-time code is wrong (SPEC §3)."""

    error = "invalid_code"


class ExpiredCodeError(ConsentryError):
    error = "expired_code"
    default_description = N_("the code has expired; ask for a new one")


class InvalidFlowError(ConsentryError):
    """The flow token is unknown, expired, dead, or meant for another step."""

    error = "invalid_flow"
    status_code = 401
    default_description = N_("this sign-in has expired or is not at this step; start again")


class InvalidCredentialsError(ConsentryError):
    error = "invalid_credentials"
    status_code = 401
    default_description = N_("the password is not correct")


class PasswordReusedError(ConsentryError):
    error = "password_reused"


class DeliveryFailedError(ConsentryError):
    """The one-time code could not be sent; the person should try again later."""

    error = "delivery_failed"
    status_code = 503
