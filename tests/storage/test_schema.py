"""The schema, the migrations and the unit of work, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import IntegrityError

from consentry.domain.clients import SubjectType, TokenEndpointAuthMethod
from consentry.domain.consent import ConsentStatus
from consentry.domain.scopes import Scopes
from consentry.runtime import Runtime
from consentry.storage.database import Database
from consentry.storage.migrate import alembic_config, current_revision, upgrade_to_head
from consentry.storage.tables import AccessToken, Base, Client, Consent, Scope, User

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _user(**overrides: object) -> User:
    values: dict[str, object] = {
        "email": f"{uuid.uuid4().hex}@example.com",
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(overrides)
    return User(**values)


def _client(client_id: str = "client-1") -> Client:
    return Client(
        id=client_id,
        name="App",
        redirect_uris=["https://app.example.com/cb"],
        grant_types=["authorization_code"],
        scopes=Scopes.parse("openid profile"),
        token_endpoint_auth_method=TokenEndpointAuthMethod.CLIENT_SECRET_BASIC,
        subject_type=SubjectType.PUBLIC,
        sector="app.example.com",
        created_at=NOW,
        updated_at=NOW,
    )


async def test_migrations_reach_head_and_match_the_models(runtime: Runtime) -> None:
    assert await current_revision(runtime.database) is not None

    def _diff(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))

    async with runtime.database.engine.connect() as connection:
        differences = await connection.run_sync(_diff)
    assert differences == []


async def test_migrating_twice_is_a_no_op(runtime: Runtime) -> None:
    before = await current_revision(runtime.database)
    await upgrade_to_head(runtime.database)
    assert await current_revision(runtime.database) == before


async def test_the_newest_migration_goes_down_and_up_again(runtime: Runtime) -> None:
    """A release can be rolled back: the newest revision's downgrade runs, keeps the rows that did not depend
    on it (on SQLite a rebuilt clients' table once took every token and consent with it), and upgrading
    again brings the schema back to the models."""
    head = await current_revision(runtime.database)
    user = _user()
    async with runtime.database.unit_of_work() as session:
        session.add_all([user, _client("kept-client")])
        await session.flush()
        session.add(
            AccessToken(
                token_hash=b"\x02" * 32,
                client_id="kept-client",
                user_id=user.id,
                scopes=Scopes.parse("openid"),
                created_at=NOW,
                expires_at=NOW + timedelta(hours=1),
            )
        )

    def _downgrade_one(connection: Connection) -> None:
        config = alembic_config(runtime.database.url)
        config.attributes["connection"] = connection
        command.downgrade(config, "-1")

    async with runtime.database.unbounded_connection() as connection:
        await connection.run_sync(_downgrade_one)
    assert await current_revision(runtime.database) not in (None, head)
    async with runtime.database.engine.connect() as connection:
        tokens = await connection.execute(text("SELECT client_id FROM access_tokens"))
        assert [row.client_id for row in tokens] == ["kept-client"]
    await upgrade_to_head(runtime.database)
    assert await current_revision(runtime.database) == head
    async with runtime.database.engine.connect() as connection:
        differences = await connection.run_sync(
            lambda sync: list(compare_metadata(MigrationContext.configure(sync), Base.metadata))
        )
        if runtime.database.dialect == "sqlite":  # back on for the connection that migrated
            assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    assert differences == []


async def test_scope_catalogue_is_seeded(runtime: Runtime) -> None:
    async with runtime.database.read_only() as session:
        scopes = {s.name: s for s in await session.scalars(select(Scope))}
    assert {"openid", "profile", "email", "phone", "offline_access"} <= set(scopes)
    assert "email_verified" in scopes["email"].claims
    assert all(scope.description for scope in scopes.values())


async def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'pragmas.db'}")
    try:
        async with database.engine.connect() as connection:
            assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await connection.execute(text("PRAGMA busy_timeout"))).scalar() == 5000
    finally:
        await database.dispose()


async def test_unit_of_work_commits_on_success_and_rolls_back_on_error(runtime: Runtime) -> None:
    kept, dropped = _user(), _user()
    async with runtime.database.unit_of_work() as session:
        session.add(kept)
    with pytest.raises(RuntimeError):
        async with runtime.database.unit_of_work() as session:
            session.add(dropped)
            await session.flush()
            raise RuntimeError("boom")
    async with runtime.database.read_only() as session:
        emails = set(await session.scalars(select(User.email)))
    assert kept.email in emails
    assert dropped.email not in emails


async def test_foreign_keys_are_enforced(runtime: Runtime) -> None:
    with pytest.raises(IntegrityError):
        async with runtime.database.unit_of_work() as session:
            session.add(
                AccessToken(
                    token_hash=b"\x01" * 32,
                    client_id="no-such-client",
                    scopes=Scopes(),
                    created_at=NOW,
                    expires_at=NOW + timedelta(hours=1),
                )
            )


async def test_emails_are_unique(runtime: Runtime) -> None:
    async with runtime.database.unit_of_work() as session:
        session.add(_user(email="same@example.com"))
    with pytest.raises(IntegrityError):
        async with runtime.database.unit_of_work() as session:
            session.add(_user(email="same@example.com"))


async def test_one_active_consent_per_user_and_client_but_history_is_kept(runtime: Runtime) -> None:
    user = _user()
    async with runtime.database.unit_of_work() as session:
        session.add_all([user, _client()])
        await session.flush()

        def consent(status: ConsentStatus) -> Consent:
            return Consent(
                user_id=user.id,
                client_id="client-1",
                scopes=Scopes.parse("openid"),
                declined_scopes=Scopes(),
                status=status,
                granted_at=NOW,
                updated_at=NOW,
                expires_at=NOW + timedelta(days=90),
            )

        session.add_all(
            [consent(ConsentStatus.REVOKED), consent(ConsentStatus.EXPIRED), consent(ConsentStatus.ACTIVE)]
        )
    with pytest.raises(IntegrityError):
        async with runtime.database.unit_of_work() as session:
            session.add(consent(ConsentStatus.ACTIVE))


async def test_datetimes_come_back_aware_utc_and_scopes_as_scopes(runtime: Runtime) -> None:
    async with runtime.database.unit_of_work() as session:
        session.add(_client("c-types"))
    async with runtime.database.read_only() as session:
        client = await session.get(Client, "c-types")
    assert client is not None
    assert client.created_at == NOW
    assert client.created_at.tzinfo is not None
    assert isinstance(client.scopes, Scopes)
    assert client.scopes == {"openid", "profile"}
    assert client.redirect_uris == ["https://app.example.com/cb"]


async def test_enum_columns_refuse_unknown_values(runtime: Runtime) -> None:
    with pytest.raises(IntegrityError):
        async with runtime.database.unit_of_work() as session:
            await session.execute(
                text(
                    "INSERT INTO users (id, email, email_verified, phone_verified, is_admin, status, "
                    "created_at, updated_at) "
                    "VALUES (:id, 'x@example.com', false, false, false, 'bogus', :now, :now)"
                ),
                {
                    "id": uuid.uuid4().hex if runtime.database.dialect == "sqlite" else uuid.uuid4(),
                    "now": NOW,
                },
            )
