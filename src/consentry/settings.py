"""Configuration from ``CONSENTRY_*`` environment variables (SPEC §1).

Settings are built by :func:`get_settings` (cached) or explicitly by callers such as tests;
never at import time, so importing a module has no side effects.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from consentry.domain.net import is_loopback_host
from consentry.errors import ConfigurationError

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./consentry.db"


class Settings(BaseSettings):
    """Every knob of a Consentry deployment; all optional."""

    model_config = SettingsConfigDict(env_prefix="CONSENTRY_", extra="ignore", frozen=True)

    env: Literal["development", "production"] = Field(
        default="development",
        description="development: readable logs, one-time codes logged, loopback issuer only.",
    )
    database_url: str = DEFAULT_SQLITE_URL
    issuer: str = "http://127.0.0.1:8000"
    queue_url: str = "db"
    smtp_url: str | None = None
    smtp_from: str | None = Field(default=None, description="From address of one-time-code emails")
    sms_gateway_url: str | None = Field(default=None, description="HTTP endpoint that sends SMS (JSON POST)")
    sms_gateway_token: SecretStr | None = None
    redis_url: str | None = None
    secret_key: SecretStr | None = None
    secret_key_file: Path = Path("./consentry.secret")
    webhook_allow_private: bool = False
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0, description="first retry delay; doubles")
    webhook_max_age_hours: float = Field(default=24.0, gt=0, description="then the event is marked dead")
    webhook_lease_seconds: float = Field(
        default=60.0, gt=0, description="a claimed delivery's time to finish"
    )
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    registration_batch_size: int = Field(default=1000, ge=1, le=10_000)
    registration_batch_wait_seconds: float = Field(default=5.0, gt=0)
    registration_idle_seconds: float = Field(default=0.5, gt=0)
    registration_retry_base_seconds: float = Field(
        default=5.0, gt=0, description="dead-letter retry; doubles"
    )
    registration_max_retries: int = Field(default=3, ge=0)
    # Kafka topics, created on first use (CONSENTRY_QUEUE_URL=kafka://…)
    kafka_partitions: int = Field(default=4, ge=1, le=1000)
    kafka_replication: int = Field(default=1, ge=1, le=10)
    kafka_retention_hours: int = Field(default=168, ge=1)
    kafka_idempotence: bool = Field(
        default=True, description="idempotent producer; off only for brokers without InitProducerId"
    )
    registration_lease_seconds: float = Field(
        default=60.0, gt=0, description="a claimed message's time to be written"
    )

    dcr: Literal["off", "token", "open"] = Field(
        default="off",
        description="RFC 7591 registration: off, token (an initial access token), open (limited per IP)",
    )
    client_id_documents: bool = Field(
        default=True, description="accept client ID metadata documents (a client_id that is an https URL)"
    )

    consent_ttl_days: int = Field(default=90, ge=1)
    access_token_ttl: int = Field(default=3600, ge=60, description="seconds")
    refresh_token_ttl: int = Field(default=30 * 24 * 3600, ge=300, description="seconds")
    auth_code_ttl: int = Field(
        default=600, ge=30, le=600, description="seconds (RFC 6749 §4.1.2: at most 10 min)"
    )
    session_ttl: int = Field(default=14 * 24 * 3600, ge=300, description="seconds")
    account_deletion_grace_days: int = Field(default=30, ge=0)
    audit_retention_days: int = Field(default=365, ge=1)
    cleanup_batch_size: int = Field(default=5000, ge=1, le=100_000)
    cleanup_interval_seconds: float = Field(default=3600.0, gt=0)
    cleanup_pause_seconds: float = Field(
        default=0.02, ge=0, description="rest between batches for live traffic"
    )

    # OWASP Password Storage Cheat Sheet minimum for argon2id: m=19 MiB, t=2, p=1.
    argon2_memory_kib: int = Field(default=19 * 1024, ge=8 * 1024)
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_parallelism: int = Field(default=1, ge=1)

    # Rate limits (SPEC §1), each "N/period" as the limits package reads it ("10/15 minutes", "30/minute").
    rate_limit_login_failures_per_identifier: str = "10/15 minutes"
    rate_limit_login_failures_per_ip: str = "50/15 minutes"
    rate_limit_code_failures_per_ip: str = "30/15 minutes"
    rate_limit_code_sends_per_identifier_and_ip: str = "5/hour"
    rate_limit_code_sends_per_ip: str = "30/hour"
    rate_limit_code_resend_interval: str = "1/30 seconds"
    rate_limit_client_auth_failures_per_client_and_ip: str = "20/5 minutes"
    rate_limit_client_auth_failures_per_ip: str = "100/5 minutes"
    rate_limit_registrations_per_ip: str = "30/minute"
    rate_limit_client_registrations_per_ip: str = "20/hour"
    forwarded_allow_ips: str | None = Field(
        default=None,
        description="proxies (comma-separated addresses or networks, or *) whose X-Forwarded-For is trusted",
    )
    run_jobs: bool = Field(
        default=True,
        description="`serve` runs the background jobs too; off on API nodes beside `consentry worker`",
    )

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    database_timeout: float = Field(
        default=5.0, gt=0, description="seconds to connect, to run a statement, or to wait for a connection"
    )
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    log_level: str = "INFO"

    @field_validator("issuer")
    @classmethod
    def _issuer_is_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment (OIDC Discovery §3)")
        return value.rstrip("/")

    @field_validator("*")
    @classmethod
    def _rate_limit_parses(cls, value: object, info: ValidationInfo) -> object:
        if info.field_name and info.field_name.startswith("rate_limit_"):
            from limits import parse

            try:
                parse(str(value))
            except ValueError:
                raise ValueError('must read like "10/15 minutes" or "30/minute"') from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_is_supported(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @property
    def is_development(self) -> bool:
        return self.env == "development"

    @property
    def issuer_is_loopback(self) -> bool:
        return is_loopback_host(urlsplit(self.issuer).hostname)

    def check_secure(self) -> None:
        """Refuse setups that would expose users (raises :class:`ConfigurationError`)."""
        if urlsplit(self.issuer).scheme != "https" and not self.issuer_is_loopback:
            raise ConfigurationError(
                f"CONSENTRY_ISSUER={self.issuer} is plain http on a non-loopback host; "
                "tokens and sessions would travel in clear text. Use an https issuer."
            )
        if self.is_development and not self.issuer_is_loopback:
            raise ConfigurationError(
                "development mode runs only on a loopback issuer (it logs one-time codes and relaxes "
                "cookies); set CONSENTRY_ENV=production for a public issuer."
            )
        if self.secret_key is not None and len(self.secret_key.get_secret_value()) < 32:
            raise ConfigurationError("CONSENTRY_SECRET_KEY must be at least 32 characters of random text.")

    def resolved_secret_key(self) -> bytes:
        """The server secret: from the environment, else read from (or created in) ``secret_key_file``.

        The file is created once with mode 0600, so restarts keep every keyed hash and signed value valid.
        """
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.secret_key_file
        try:
            if path.exists():
                value = path.read_text().strip()
                if len(value) < 32:
                    raise ConfigurationError(f"{path} holds no usable secret key (under 32 characters).")
                return value.encode()
            value = secrets.token_urlsafe(48)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(value + "\n")
            return value.encode()
        except FileExistsError:  # another process created it between exists() and open()
            return path.read_text().strip().encode()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read or create the secret key file {path}: {exc.strerror}"
            ) from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    try:
        return Settings()
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        raise ConfigurationError(_describe_validation_error(exc)) from exc


def _describe_validation_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = []
        for error in errors():
            field = ".".join(str(p) for p in error.get("loc", ()))
            parts.append(f"CONSENTRY_{field.upper()}: {error.get('msg')}")
        return "invalid configuration: " + "; ".join(parts)
    return f"invalid configuration: {exc}"
