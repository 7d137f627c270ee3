"""Token rules (RFC 6749 §4, §6; OIDC Core §3.1.3.6). Pure."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from consentry.domain.scopes import Scopes

# The JWS algorithms ID tokens (and consent receipts) are signed with. RS256 is the default that OIDC Core
# asks every provider to support; a client may ask for ES256 (id_token_signed_response_alg): smaller tokens,
# cheaper to sign.
SIGNING_ALGORITHMS = ("RS256", "ES256")
DEFAULT_SIGNING_ALGORITHM = "RS256"


@dataclass(frozen=True, slots=True)
class TokenLifetimes:
    authorization_code: timedelta
    access_token: timedelta
    refresh_token: timedelta


def is_live(*, expires_at: datetime, revoked_at: datetime | None, now: datetime) -> bool:
    return revoked_at is None and now < expires_at


class ScopeWidening(ValueError):
    """A refresh asked for a scope the original grant did not include (RFC 6749 §6)."""


def refreshed_scopes(requested: Scopes | None, original: Scopes) -> Scopes:
    """RFC 6749 §6: the requested scope MUST NOT include any scope not originally granted; absent = all."""
    if requested is None or not requested:
        return original
    if not requested <= original:
        raise ScopeWidening(f"scope not granted originally: {(requested - original).format()}")
    return requested


def at_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6: base64url of the left half of SHA-256 of the token (for RS256/ES256)."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def auth_too_old(*, auth_time: datetime, max_age: int | None, now: datetime) -> bool:
    """OIDC Core §3.1.2.1 max_age: re-authenticate when the last sign-in is older than max_age seconds."""
    return max_age is not None and (now - auth_time).total_seconds() > max_age
