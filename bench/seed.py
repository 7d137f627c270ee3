"""Bench fixtures written straight into the database: what a scenario uses up (codes, refresh tokens,
sign-in flows), the 10,000 live tokens scenario 7 revokes, and scenario 8's million-row population.

Rows are exactly what the server itself writes (the same tables, hashes and flow-token keys), made in bulk so
that seeding takes seconds and not the minutes the HTTP flows would. Never used outside `make bench`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from consentry.crypto.flow_tokens import FlowTokens
from consentry.crypto.hashing import derive_key, new_token, token_hash
from consentry.domain.accounts import UserStatus
from consentry.domain.consent import ConsentStatus
from consentry.domain.scopes import Scopes
from consentry.storage.database import create_engine
from consentry.storage.tables import Consent, SigninFlow, User, UserCredential
from consentry.storage.tokens import ACCESS_TOKENS, AUTHORIZATION_CODES, REFRESH_TOKENS

CHUNK = 5_000


def now() -> datetime:
    return datetime.now(UTC)


def chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


class Seeder:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_engine(
            url, timeout=None
        )  # the population's statements take minutes

    async def close(self) -> None:
        await self.engine.dispose()

    async def insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        for chunk in chunks(rows):
            async with self.engine.begin() as connection:
                await connection.execute(insert(table), chunk)

    async def grant(self, email: str, client_id: str) -> tuple[uuid.UUID, uuid.UUID]:
        """The person's id and their active consent for the client."""
        async with self.engine.connect() as connection:
            user_id = (await connection.execute(select(User.id).where(User.email == email))).scalar_one()
            consent_id = (
                await connection.execute(
                    select(Consent.id).where(
                        Consent.user_id == user_id,
                        Consent.client_id == client_id,
                        Consent.status == ConsentStatus.ACTIVE,
                    )
                )
            ).scalar_one()
        return user_id, consent_id

    async def codes(
        self, client_id: str, user_id: uuid.UUID, consent_id: uuid.UUID, redirect_uri: str, count: int
    ) -> list[str]:
        """Authorization codes (openid profile, no PKCE: a confidential client), each to be used once."""
        issued_at, values = now(), [new_token() for _ in range(count)]
        await self.insert(
            AUTHORIZATION_CODES,
            [
                {
                    "code_hash": token_hash(value),
                    "client_id": client_id,
                    "user_id": user_id,
                    "consent_id": consent_id,
                    "redirect_uri": redirect_uri,
                    "scopes": Scopes.parse("openid profile"),
                    "auth_time": issued_at,
                    "family_id": uuid.uuid4(),
                    "created_at": issued_at,
                    "expires_at": issued_at + timedelta(hours=1),  # outlives the run; the server's are 10 min
                }
                for value in values
            ],
        )
        return values

    async def tokens(
        self,
        table: Table,
        client_id: str,
        user_id: uuid.UUID,
        consent_id: uuid.UUID,
        count: int,
        scopes: str = "openid profile",
    ) -> list[str]:
        """Live access or refresh tokens of one person for one client."""
        issued_at, values = now(), [new_token() for _ in range(count)]
        await self.insert(
            table,
            [
                {
                    "token_hash": token_hash(value),
                    "client_id": client_id,
                    "user_id": user_id,
                    "family_id": uuid.uuid4(),
                    "consent_id": consent_id,
                    "scopes": Scopes.parse(scopes),
                    "auth_time": issued_at,
                    "created_at": issued_at,
                    "expires_at": issued_at + timedelta(hours=1),
                }
                for value in values
            ],
        )
        return values

    async def refresh_tokens(
        self, client_id: str, user_id: uuid.UUID, consent_id: uuid.UUID, count: int
    ) -> list[str]:
        return await self.tokens(REFRESH_TOKENS, client_id, user_id, consent_id, count)

    async def access_tokens(
        self, client_id: str, user_id: uuid.UUID, consent_id: uuid.UUID, count: int
    ) -> None:
        await self.tokens(ACCESS_TOKENS, client_id, user_id, consent_id, count)

    async def live_tokens(self, email: str) -> int:
        """Live access and refresh tokens the person holds, for any client."""
        live = 0
        async with self.engine.connect() as connection:
            user_id = (await connection.execute(select(User.id).where(User.email == email))).scalar_one()
            for table in (ACCESS_TOKENS, REFRESH_TOKENS):
                live += (
                    await connection.execute(
                        select(func.count())
                        .select_from(table)
                        .where(
                            table.c.user_id == user_id,
                            table.c.revoked_at.is_(None),
                            table.c.expires_at > now(),
                        )
                    )
                ).scalar_one()
        return live

    async def signers(self, like: str, count: int) -> list[str]:
        """The addresses of ``count`` people who sign in with the password of ``like`` (its hash copied).

        Sign-ins are limited per person, attempts under way included (SPEC §1: a guess is counted as it
        arrives), so a sign-in load is many people signing in, as it is in service."""
        async with self.engine.connect() as connection:
            password_hash = (
                await connection.execute(
                    select(UserCredential.password_hash)
                    .join(User, User.id == UserCredential.user_id)
                    .where(User.email == like, UserCredential.superseded_at.is_(None))
                )
            ).scalar_one()
        stamp, ids = now(), [uuid.uuid4() for _ in range(count)]
        emails = [f"signer-{id_.hex[:12]}@bench.example.com" for id_ in ids]
        people = [
            {"id": id_, "email": email, "email_verified": True, "phone_verified": False, "is_admin": False,
             "status": UserStatus.ACTIVE, "created_at": stamp, "updated_at": stamp}
            for id_, email in zip(ids, emails, strict=True)
        ]  # fmt: skip
        await self.insert(User.__table__, people)  # type: ignore[arg-type]
        credentials = [{"user_id": id_, "password_hash": password_hash, "created_at": stamp} for id_ in ids]
        await self.insert(UserCredential.__table__, credentials)  # type: ignore[arg-type]
        return emails

    async def password_flows(self, secret: str, emails: list[str], count: int) -> list[str]:
        """Sign-in flows waiting at the password step (what submit-identifier leaves), as flow tokens, for
        ``emails`` in turn."""
        flows = FlowTokens(derive_key(secret.encode(), "consentry flow tokens v1"))
        started = now()
        expires_at = started + timedelta(minutes=30)
        ids = [uuid.uuid4() for _ in range(count)]
        rows = [
            {
                "id": id_,
                "identifier": emails[number % len(emails)],
                "identifier_type": "email",
                "purpose": "signin",
                "step": "password",
                "created_at": started,
                "expires_at": expires_at,
            }
            for number, id_ in enumerate(ids)
        ]
        await self.insert(SigninFlow.__table__, rows)  # type: ignore[arg-type]
        return [flows.issue(id_, "password", expires_at=expires_at) for id_ in ids]

    async def population(self, client_id: str, users: int, consents: int, tokens: int) -> float:
        """Scenario 8: ``users`` people, ``consents`` active consents for ``client_id`` (one per person),
        ``tokens`` live access tokens spread over them, generated inside the database; seconds taken."""
        started = asyncio.get_running_loop().time()
        sql = POSTGRES_POPULATION if self.engine.dialect.name == "postgresql" else SQLITE_POPULATION
        params = {"client": client_id, "users": users, "consents": consents, "tokens": tokens}
        async with self.engine.begin() as connection:
            for statement in sql:
                await connection.execute(text(statement), params)
        if self.engine.dialect.name == "postgresql":
            # Measured as a database of this size is in service, not in the minutes after one bulk load: else
            # autovacuum's first pass over 5M new rows and the checkpoint of the load's WAL ran during the
            # measurement on the core PostgreSQL shares with wrk (token rate at scale 0.73 of small).
            async with self.engine.connect() as connection:
                connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
                for statement in POSTGRES_SETTLE:
                    await connection.execute(text(statement))
        return asyncio.get_running_loop().time() - started


# Ids are derived from the row number so that consents and tokens can point at people without a join.
POSTGRES_POPULATION = (
    "INSERT INTO users (id, email, email_verified, phone_verified, is_admin, status, created_at, updated_at) "
    "SELECT md5('u' || g)::uuid, 'scale' || g || '@example.com', true, false, false, 'active', now(), now() "
    "FROM generate_series(1, CAST(:users AS integer)) g",
    "INSERT INTO consents (id, user_id, client_id, scopes, declined_scopes, status, granted_at, updated_at, "
    "expires_at) SELECT md5('c' || g)::uuid, md5('u' || g)::uuid, :client, '[\"profile\"]'::jsonb, "
    "'[]'::jsonb, 'active', now(), now(), now() + interval '30 days' "
    "FROM generate_series(1, CAST(:consents AS integer)) g",
    "INSERT INTO access_tokens (token_hash, client_id, user_id, consent_id, scopes, created_at, expires_at) "
    "SELECT sha256(('t' || g)::bytea), :client, md5('u' || (1 + g % CAST(:consents AS integer)))::uuid, "
    "md5('c' || (1 + g % CAST(:consents AS integer)))::uuid, '[\"profile\"]'::jsonb, now(), "
    "now() + interval '1 hour' FROM generate_series(1, CAST(:tokens AS integer)) g",
)
POSTGRES_SETTLE = ("VACUUM (ANALYZE) users, consents, access_tokens", "CHECKPOINT")


# SQLite has no md5 or sha256: ids and hashes come from randomblob, and a scratch table keeps each person's
# id by row number so that consents and tokens can point at them. Timestamps are written in the form
# SQLAlchemy writes (microseconds included) so that comparisons with the server's own values hold.
SQLITE_POPULATION = (
    "CREATE TEMP TABLE scale_people (n INTEGER PRIMARY KEY, id BLOB, consent BLOB)",
    "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :users) "
    "INSERT INTO scale_people SELECT n, randomblob(16), randomblob(16) FROM g",
    "INSERT INTO users (id, email, email_verified, phone_verified, is_admin, status, created_at, updated_at) "
    "SELECT lower(hex(id)), 'scale' || n || '@example.com', 1, 0, 0, 'active', "
    "strftime('%Y-%m-%d %H:%M:%S.000000', 'now'), strftime('%Y-%m-%d %H:%M:%S.000000', 'now') "
    "FROM scale_people",
    "INSERT INTO consents (id, user_id, client_id, scopes, declined_scopes, status, granted_at, updated_at, "
    "expires_at) SELECT lower(hex(consent)), lower(hex(id)), :client, '[\"profile\"]', '[]', 'active', "
    "strftime('%Y-%m-%d %H:%M:%S.000000', 'now'), strftime('%Y-%m-%d %H:%M:%S.000000', 'now'), "
    "strftime('%Y-%m-%d %H:%M:%S.000000', 'now', '+30 days') FROM scale_people WHERE n <= :consents",
    "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :tokens) "
    "INSERT INTO access_tokens (token_hash, client_id, user_id, consent_id, scopes, created_at, expires_at) "
    "SELECT randomblob(32), :client, lower(hex(p.id)), lower(hex(p.consent)), '[\"profile\"]', "
    "strftime('%Y-%m-%d %H:%M:%S.000000', 'now'), strftime('%Y-%m-%d %H:%M:%S.000000', 'now', '+1 hour') "
    "FROM g JOIN scale_people p ON p.n = 1 + g.n % :consents",
    "DROP TABLE scale_people",
    "ANALYZE",
)
