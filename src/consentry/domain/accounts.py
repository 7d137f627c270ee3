"""An account's life: active, or soft-deleted until its purge. Pure."""

from __future__ import annotations

import enum
from typing import Literal


class UserStatus(enum.StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"  # soft-deleted, restorable until purge_after


# What an administrator may do to many accounts at once (SPEC §5).
BulkAction = Literal[
    "soft_delete", "restore", "verify_email", "unverify_email", "verify_phone", "unverify_phone"
]
