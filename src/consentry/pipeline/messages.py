"""What travels through the registration pipeline: never a plain password, only its hash."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class RegistrationMessage:
    request_id: uuid.UUID
    email: str | None
    phone: str | None
    password_hash: str | None
    attributes: dict[str, Any] = field(default_factory=dict)  # email_verified, phone_verified
    attempts: int = 0
    receipt: str | None = None  # the transport's handle for acknowledging it (a stream entry id)

    def next_attempt(self) -> RegistrationMessage:
        """The same message, counted as tried once more, detached from its transport receipt."""
        return RegistrationMessage(
            self.request_id, self.email, self.phone, self.password_hash, self.attributes, self.attempts + 1
        )


def to_wire(message: RegistrationMessage, **extra: Any) -> bytes:
    """The JSON a queue carries (Redis Streams, Kafka); ``extra`` adds transport fields (``retry_at``)."""
    return orjson.dumps(
        {
            "id": str(message.request_id),
            "email": message.email,
            "phone": message.phone,
            "hash": message.password_hash,
            "attributes": message.attributes,
            "attempts": message.attempts,
            **extra,
        }
    )


def from_wire(data: dict[str, Any], receipt: str | None) -> RegistrationMessage:
    """A message back from :func:`to_wire`'s JSON (already parsed), with the transport's receipt."""
    return RegistrationMessage(
        uuid.UUID(data["id"]),
        data.get("email"),
        data.get("phone"),
        data.get("hash"),
        dict(data.get("attributes") or {}),
        int(data.get("attempts", 0)),
        receipt,
    )
