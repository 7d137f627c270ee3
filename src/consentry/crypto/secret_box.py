"""Encryption at rest for secrets the server must read back (signing keys, webhook signing secrets)."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet


class SecretBox:
    """Fernet (AES-128-CBC + HMAC-SHA256, authenticated) under a key derived from the server secret."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, plaintext: bytes) -> str:
        return self._fernet.encrypt(plaintext).decode()

    def open(self, sealed: str) -> bytes:
        return self._fernet.decrypt(sealed.encode())
