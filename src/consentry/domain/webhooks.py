"""Where a webhook event is on its way to the client (SPEC §6). Pure."""

from __future__ import annotations

import enum


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
