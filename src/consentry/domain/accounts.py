"""An account's life: active, or soft-deleted until its purge. Pure."""

from __future__ import annotations

import enum


class UserStatus(enum.StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"  # soft-deleted, restorable until purge_after
