"""How a registration travels through a queue (Redis Streams, Kafka): JSON, never a plain password."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from consentry.domain.registration import RegistrationMessage


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
            "queued_at": message.queued_at if message.queued_at is not None else time.time(),
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
        data["queued_at"] if isinstance(data.get("queued_at"), int | float) else None,
    )
