"""Hashes of secrets: argon2id for passwords, SHA-256 for opaque tokens, keyed SHA-256 for client secrets.

Tokens and client secrets carry >= 256 bits of entropy, so a fast hash is enough (no dictionary to attack);
passwords are chosen by people and get the slow, memory-hard argon2id (OWASP parameters by default).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher as _Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TOKEN_BYTES = 32  # 256 bits (SPEC §2)


def new_token() -> str:
    """A fresh opaque token: 256 random bits, base64url without padding."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> bytes:
    """The SHA-256 of an opaque token: the only form in which tokens are stored (SPEC §2)."""
    return hashlib.sha256(token.encode()).digest()


def derive_key(secret: bytes, purpose: str, *, length: int = 32) -> bytes:
    """A purpose-bound subkey of the server secret (HKDF-SHA256, RFC 5869), so no two uses share a key."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode()).derive(secret)


class SecretHasher:
    """Keyed SHA-256 (HMAC) for high-entropy secrets such as client secrets (SPEC §6)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def hash(self, secret: str) -> bytes:
        return hmac.new(self._key, secret.encode(), hashlib.sha256).digest()

    def verify(self, secret: str, expected: bytes) -> bool:
        """Constant-time comparison against a stored hash."""
        return hmac.compare_digest(self.hash(secret), expected)


class PasswordHasher:
    """argon2id with configurable cost; tells when a stored hash should be upgraded."""

    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int) -> None:
        self._hasher = _Argon2Hasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True
