"""Pairwise pseudonymous subject identifiers (OIDC Core §8.1). Pure.

sub = base64url(HMAC-SHA256(key_v, sector || user_id)) under a numbered version v (SPEC §6).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import uuid

ALGORITHM = "hmac-sha256"


def pseudonym(key: bytes, sector: str, user_id: uuid.UUID) -> str:
    """The subject a client in ``sector`` sees for ``user_id`` under one version's key."""
    mac = hmac.new(key, sector.lower().encode() + str(user_id).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


class PseudonymVersionState(enum.StrEnum):
    ACTIVE = "active"
    RETIRING = "retiring"
    RETIRED = "retired"
