"""The long-lived collaborators of one process, built once from settings (the app's and the CLI's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from consentry.crypto.hashing import PasswordHasher, SecretHasher, derive_key
from consentry.settings import Settings
from consentry.storage.database import Database


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Runtime:
    settings: Settings
    database: Database
    passwords: PasswordHasher
    secret_hasher: SecretHasher

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        """Checks the settings are safe, resolves the server secret, and creates the engine (no I/O yet)."""
        settings.check_secure()
        secret = settings.resolved_secret_key()
        return cls(
            settings=settings,
            database=Database(
                settings.database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
            ),
            passwords=PasswordHasher(
                memory_kib=settings.argon2_memory_kib,
                time_cost=settings.argon2_time_cost,
                parallelism=settings.argon2_parallelism,
            ),
            secret_hasher=SecretHasher(derive_key(secret, "consentry client secrets v1")),
        )

    async def close(self) -> None:
        await self.database.dispose()
