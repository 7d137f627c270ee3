"""Proof Key for Code Exchange (RFC 7636). Only S256 is accepted; ``plain`` is refused (RFC 9700 §2.1.1)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

S256 = "S256"
# RFC 7636 §4.1: code-verifier = 43*128unreserved; §4.2: the S256 challenge is 43 base64url characters.
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


class PKCEError(ValueError):
    """A malformed or unsupported PKCE parameter."""


def validate_challenge(challenge: str | None, method: str | None) -> tuple[str, str] | None:
    """Check the authorization request's PKCE parameters (RFC 7636 §4.3); None when PKCE is not used."""
    if challenge is None and method is None:
        return None
    if challenge is None:
        raise PKCEError("code_challenge_method without code_challenge")
    method = method or "plain"  # RFC 7636 §4.3: the default is plain, which we refuse
    if method != S256:
        raise PKCEError("code_challenge_method must be S256 (plain is not allowed)")
    if not _S256_CHALLENGE.match(challenge):
        raise PKCEError("code_challenge must be the 43-character base64url SHA-256 of the verifier")
    return challenge, method


def s256_challenge(verifier: str) -> str:
    """BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(verifier: str | None, challenge: str, method: str) -> bool:
    """Compare code_verifier to the stored challenge in constant time (RFC 7636 §4.6)."""
    if verifier is None or method != S256 or not _VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(s256_challenge(verifier), challenge)
