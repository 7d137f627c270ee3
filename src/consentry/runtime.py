"""The long-lived collaborators of one process, built once from settings (the app's and the CLI's)."""

from __future__ import annotations

import asyncio
import gc
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from consentry.crypto.flow_tokens import FlowTokens
from consentry.crypto.hashing import PasswordHasher, SecretHasher, derive_key
from consentry.crypto.keys import KeyStore
from consentry.crypto.secret_box import SecretBox
from consentry.domain.tokens import TokenLifetimes
from consentry.errors import ConfigurationError
from consentry.infrastructure.client_directory import ClientDirectory
from consentry.infrastructure.code_senders import Senders
from consentry.infrastructure.consent_usage import ConsentUsage
from consentry.infrastructure.rate_limits import Policy, RateLimiter, RedisUnderWay, storage_for
from consentry.infrastructure.subjects import SubjectService
from consentry.infrastructure.upstream_oauth import UpstreamOAuth
from consentry.pipeline.consumer import Doorbell, PipelineMetrics, Transport
from consentry.settings import Settings
from consentry.storage.change_bus import ChangeBus
from consentry.storage.consents import ActiveConsentLookup
from consentry.storage.database import Database
from consentry.storage.group_commit import GroupCommitter
from consentry.storage.registration_queue import DatabaseTransport
from consentry.storage.sessions import SessionLookup
from consentry.storage.tokens import TokenLookup


def tune_collector_for_long_run() -> None:
    """For a long-running process, once started: what start-up built lives as long as the process, and moved
    out of the collector's sight the full collections no longer walk it (under load they set the tail latency,
    and in the registration worker they took much of its time). Not for a test process that builds many
    runtimes.

    The youngest generation is collected less often too. Each collection of it walks the live objects of the
    requests in flight, most of which are not garbage: every 10,000 allocations instead of Python's 700."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])


YOUNG_COLLECTION_EVERY = 10_000  # net allocations of tracked objects between collections of the youngest


def utcnow() -> datetime:
    return datetime.now(UTC)


def registration_transport(settings: Settings, database: Database) -> Transport:
    """The queue registrations travel through, from ``CONSENTRY_QUEUE_URL``."""
    lease = timedelta(seconds=settings.registration_lease_seconds)
    if settings.queue_url == "db":
        return DatabaseTransport(database, lease=lease)
    if settings.queue_url.startswith(("redis://", "rediss://")):
        from consentry.pipeline.redis_transport import RedisStreamsTransport

        return RedisStreamsTransport(settings.queue_url, database, lease=lease)
    if settings.queue_url.startswith("kafka://"):
        from consentry.pipeline.kafka_transport import KafkaTransport, TopicSettings

        topics = TopicSettings(
            settings.kafka_partitions,
            settings.kafka_replication,
            settings.kafka_retention_hours,
            settings.kafka_idempotence,
        )
        return KafkaTransport(settings.queue_url, database, topics)
    raise ConfigurationError(
        f"CONSENTRY_QUEUE_URL must be db, redis://host:port/db or kafka://host:port[,host:port] "
        f"(got {settings.queue_url.split('://')[0]}://…)"
    )


@dataclass(slots=True)
class Runtime:
    settings: Settings
    database: Database
    passwords: PasswordHasher
    secret_hasher: SecretHasher
    keys: KeyStore
    subjects: SubjectService
    clients: ClientDirectory
    lifetimes: TokenLifetimes
    csrf_key: bytes
    consent_usage: ConsentUsage
    flow_tokens: FlowTokens
    rate_limiter: RateLimiter
    senders: Senders
    dummy_password_hash: str
    secret_box: SecretBox
    metrics_registry: CollectorRegistry
    registrations: Transport
    registration_doorbell: Doorbell  # rung after ``registrations.publish`` for this process's consumer
    pipeline_metrics: PipelineMetrics
    writes: GroupCommitter
    token_lookup: TokenLookup
    session_lookup: SessionLookup
    consent_lookup: ActiveConsentLookup
    upstream_oauth: UpstreamOAuth
    changes: ChangeBus  # what other processes of this provider must forget (storage/change_bus.py)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        """Checks the settings are safe, resolves the server secret, and creates the engine (no I/O yet)."""
        settings.check_secure()
        secret = settings.resolved_secret_key()
        database = Database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            timeout=settings.database_timeout,
        )
        lifetimes = TokenLifetimes(
            authorization_code=timedelta(seconds=settings.auth_code_ttl),
            access_token=timedelta(seconds=settings.access_token_ttl),
            refresh_token=timedelta(seconds=settings.refresh_token_ttl),
        )
        registry = CollectorRegistry()
        changes = ChangeBus(database)
        passwords = PasswordHasher(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
        )
        return cls(
            settings=settings,
            database=database,
            passwords=passwords,
            secret_hasher=SecretHasher(derive_key(secret, "consentry client secrets v1")),
            keys=KeyStore(
                database,
                changes,
                encryption_key=derive_key(secret, "consentry signing keys v1"),
                token_lifetime=lifetimes.access_token,  # ID tokens live as long as access tokens
            ),
            subjects=SubjectService(database, changes, secret=secret),
            clients=ClientDirectory(database, changes),
            lifetimes=lifetimes,
            csrf_key=derive_key(secret, "consentry csrf v1"),
            consent_usage=ConsentUsage(),
            flow_tokens=FlowTokens(derive_key(secret, "consentry flow tokens v1")),
            rate_limiter=RateLimiter(
                storage_for(settings.redis_url),
                Policy.from_settings(settings),
                under_way=RedisUnderWay(settings.redis_url) if settings.redis_url else None,
            ),
            senders=Senders.from_settings(settings),
            # Checked when an account does not exist: that costs the same time as a wrong password.
            dummy_password_hash=passwords.hash(secrets.token_urlsafe(16)),
            secret_box=SecretBox(derive_key(secret, "consentry sealed secrets v1")),
            metrics_registry=registry,
            registrations=registration_transport(settings, database),
            registration_doorbell=Doorbell(),
            pipeline_metrics=PipelineMetrics(registry),
            writes=GroupCommitter(database),
            token_lookup=TokenLookup(database),
            session_lookup=SessionLookup(database),
            consent_lookup=ActiveConsentLookup(database),
            upstream_oauth=UpstreamOAuth(),
            changes=changes,
        )

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    async def close(self) -> None:
        await self.changes.stop()  # announcements still on their way go out first
        await self.writes.drain()
        close_transport = getattr(self.registrations, "aclose", None)
        if close_transport is not None:
            await close_transport()
        await self.rate_limiter.aclose()
        await self.database.dispose()
        await asyncio.to_thread(self.passwords.close)
