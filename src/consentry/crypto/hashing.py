"""Hashes of secrets: argon2id for passwords, SHA-256 for opaque tokens, keyed SHA-256 for client secrets.

Tokens and client secrets carry >= 256 bits of entropy, so a fast hash is enough (no dictionary to attack);
passwords are chosen by people and get the slow, memory-hard argon2id (OWASP parameters by default).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import secrets

import bcrypt
import orjson
from argon2 import PasswordHasher as _Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from consentry.cpu_threads import CpuThreads
from consentry.domain.clustered_ids import LOCATOR_BYTES
from consentry.ids import new_token_locator

TOKEN_BYTES = 32  # 256 bits (SPEC §2)
_LOCATOR_CHARS = LOCATOR_BYTES * 4 // 3  # 6 bytes are 8 base64url characters, whole: the head decodes alone
_TOKEN_CHARS = _LOCATOR_CHARS + 43  # 43 = base64url of TOKEN_BYTES, without padding
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


def new_secret() -> str:
    """A fresh high-entropy secret: 256 random bits, base64url without padding (client secrets)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_token() -> str:
    """A fresh opaque token: a locator, then 256 random bits; base64url without padding.

    The locator (``consentry.ids.new_token_locator``) holds no secret: a random prefix drawn each second and
    the position within that second. It leads the token's stored key, so the tokens issued in one second go
    into neighbouring index pages, where a key of the SHA-256 alone put each new token in a page of its own
    anywhere in an index of millions (README, Performance: tokens at 5M)."""
    return base64.urlsafe_b64encode(new_token_locator()).decode() + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str, *, jti: str | None = None) -> bytes:
    """The key a token is stored and looked up by: the SHA-256 of the whole token, the only form in which a
    token is stored (SPEC §2), led by the token's locator when it has one. Tokens issued before locators keep
    their plain SHA-256. Any string maps to exactly one key, and no two strings share one, since the digest
    covers the whole string. The issuer of a JWT passes its ``jti``, which it need not read back."""
    encoded = token.encode()
    digest = hashlib.sha256(encoded).digest()
    if len(token) == _TOKEN_CHARS:
        return (_locator(encoded[:_LOCATOR_CHARS]) or b"") + digest
    if token.count(".") == 2:  # a JWT access token: its jti leads with the locator (new_jti)
        head = _jti_head(token) if jti is None else jti[:_LOCATOR_CHARS].encode()
        return (_locator(head) or b"") + digest
    return digest


def new_jti() -> str:
    """A JWT ID for an RFC 9068 access token: a locator, then 128 random bits. The token's stored key is led
    by it (:func:`token_hash`), as an opaque token's is by its own."""
    return base64.urlsafe_b64encode(new_token_locator()).decode() + secrets.token_urlsafe(16)


def _locator(head: bytes) -> bytes | None:
    try:  # binascii rather than base64.b64decode: a third of the time, on every token a request presents
        return binascii.a2b_base64(head.translate(_URLSAFE_TO_STANDARD), strict_mode=True)
    except binascii.Error:  # not a locator
        return None


def _jti_head(token: str) -> bytes:
    """The first characters of a JWT's ``jti`` claim, or nothing (any string: what a client presents)."""
    payload = token.split(".")[1]
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        return b""
    jti = claims.get("jti") if isinstance(claims, dict) else None
    return jti[:_LOCATOR_CHARS].encode() if isinstance(jti, str) and len(jti) > _LOCATOR_CHARS else b""


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


def imported_hash_format(stored: str) -> str | None:
    """The format of a password hash we can verify: argon2, bcrypt, or pbkdf2-sha256; None otherwise."""
    if stored.startswith(("$argon2id$", "$argon2i$", "$argon2d$")):
        return "argon2"
    if stored.startswith(("$2a$", "$2b$", "$2y$")) and len(stored) == 60:
        return "bcrypt"
    if stored.startswith(("pbkdf2_sha256$", "$pbkdf2-sha256$")) and _parse_pbkdf2(stored) is not None:
        return "pbkdf2-sha256"
    return None


def _parse_pbkdf2(stored: str) -> tuple[int, bytes, bytes] | None:
    """Django: ``pbkdf2_sha256$iter$salt$b64hash``; passlib: ``$pbkdf2-sha256$iter$ab64salt$ab64hash``."""
    try:
        if stored.startswith("pbkdf2_sha256$"):
            _, iterations, salt, digest = stored.split("$", 3)
            return int(iterations), salt.encode(), base64.b64decode(digest)
        _, _, iterations, salt, digest = stored.split("$", 4)

        def ab64(value: str) -> bytes:  # passlib's adapted base64: "." for "+", no padding
            value = value.replace(".", "+")
            return base64.b64decode(value + "=" * (-len(value) % 4))

        return int(iterations), ab64(salt), ab64(digest)
    except (ValueError, binascii.Error):
        return None


def _verify_legacy(stored: str, password: str) -> bool:
    """Imported bcrypt and PBKDF2-SHA256 hashes, verified with their libraries; upgraded on success."""
    kind = imported_hash_format(stored)
    if kind == "bcrypt":
        try:
            return bcrypt.checkpw(password.encode()[:72], stored.encode())
        except ValueError:
            return False
    if kind == "pbkdf2-sha256":
        parsed = _parse_pbkdf2(stored)
        if parsed is None or not 1 <= parsed[0] <= 10_000_000:
            return False
        iterations, salt, expected = parsed
        computed = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations, dklen=len(expected))
        return hmac.compare_digest(computed, expected)
    return False


class HashingBusy(Exception):
    """Registration has every hashing place it may hold (:meth:`PasswordHasher.hash_for_registration`)."""


class PasswordHasher:
    """argon2id with configurable cost; tells when a stored hash should be upgraded.

    Requests use the ``*_off_loop`` forms: the hash runs on one thread per CPU this process may use, so the
    event loop keeps serving while it works, and at most that many hashes (each ``memory_kib`` of memory) run
    at once however many sign-ins arrive. While hashes wait, finished ones are handed back up to
    ``HANDED_BACK_TOGETHER`` at a time (cpu_threads.py): the first of them waits for at most seven more
    hashes, and the rest of each sign-in costs the core little over a third as much (docs/performance.md).
    """

    HANDED_BACK_TOGETHER = 8

    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int) -> None:
        self._hasher = _Argon2Hasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        threads = len(os.sched_getaffinity(0))
        self._threads = CpuThreads(threads, group=self.HANDED_BACK_TOGETHER, name="argon2")
        self._registrations = asyncio.Semaphore(max(1, threads // 2))

    async def hash_for_registration(self, password: str, *, wait: bool = False) -> str:
        """A new account's password hash. Registration is open to anyone, so its hashes may hold at most half
        of the hashing threads at once: sign-ins always find a thread soon, however many registrations come.
        Past that, :class:`HashingBusy` at once (the caller answers 503), or with ``wait`` (an admin's bulk
        registration) the hash waits for its turn."""
        if not wait and self._registrations.locked():
            raise HashingBusy
        async with self._registrations:
            return await self.hash_off_loop(password)

    async def hash_off_loop(self, password: str) -> str:
        return await self._threads.run(self.hash, password)

    async def verify_off_loop(self, stored_hash: str, password: str) -> bool:
        return await self._threads.run(self.verify, stored_hash, password)

    def close(self) -> None:
        self._threads.shutdown()

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        if not stored_hash.startswith("$argon2"):
            return _verify_legacy(stored_hash, password)
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True
