"""What travels through the registration pipeline: never a plain password, only its hash. Pure."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from typing import Any

# Why a registration failed when its email or phone belongs to an account already.
TAKEN = "an account with this identifier already exists"


@dataclass(frozen=True, slots=True)
class RegistrationMessage:
    request_id: uuid.UUID
    email: str | None
    phone: str | None
    password_hash: str | None
    attributes: dict[str, Any] = field(default_factory=dict)  # email_verified, phone_verified
    attempts: int = 0
    receipt: str | None = None  # the transport's handle for acknowledging it (a stream entry id)
    queued_at: float | None = None  # when it was first queued (epoch seconds), for the pipeline's latency

    def next_attempt(self) -> RegistrationMessage:
        """The same message, counted as tried once more, detached from its transport receipt."""
        return RegistrationMessage(
            self.request_id, self.email, self.phone, self.password_hash, self.attributes, self.attempts + 1,
            queued_at=self.queued_at,
        )  # fmt: skip


class RegistrationStatus(enum.StrEnum):
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
