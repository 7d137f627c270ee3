"""Creating users and clients through the services, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from consentry.crypto.hashing import PasswordHasher
from consentry.domain.clients import build_client_metadata
from consentry.domain.scopes import Scopes
from consentry.errors import ConflictError, InvalidRequestError
from consentry.runtime import Runtime
from consentry.services.client_registration import register_client
from consentry.services.users import create_user
from consentry.storage.clients import ClientRepository
from consentry.storage.resources import CatalogueRepository
from consentry.storage.tables import Client, UserCredential
from consentry.storage.users import UserRepository

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


async def test_create_user_hashes_the_password_with_argon2id(runtime: Runtime) -> None:
    async with runtime.database.unit_of_work() as session:
        user = await create_user(
            session, passwords=runtime.passwords, now=NOW, email="Alice@Example.com", password="correct horse"
        )
    async with runtime.database.read_only() as session:
        stored = await UserRepository(session).current_password_hash(user.id)
        loaded = await UserRepository(session).find_by_email("alice@example.com")
    assert loaded is not None and loaded.id == user.id
    assert stored is not None and stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert runtime.passwords.verify(stored, "correct horse")
    assert not runtime.passwords.verify(stored, "wrong horse")


async def test_duplicate_identifier_is_a_conflict(runtime: Runtime) -> None:
    async with runtime.database.unit_of_work() as session:
        await create_user(
            session, passwords=runtime.passwords, now=NOW, email="bob@example.com", password="p" * 8
        )
    with pytest.raises(ConflictError):
        async with runtime.database.unit_of_work() as session:
            await create_user(
                session, passwords=runtime.passwords, now=NOW, email="BOB@example.com", password="p" * 8
            )


@pytest.mark.parametrize("password", ["short", "x" * 1025], ids=["too-short", "too-long"])
async def test_password_policy(runtime: Runtime, password: str) -> None:
    with pytest.raises(InvalidRequestError):
        async with runtime.database.unit_of_work() as session:
            await create_user(
                session, passwords=runtime.passwords, now=NOW, email="c@example.com", password=password
            )
    async with runtime.database.read_only() as session:
        assert list(await session.scalars(select(UserCredential))) == []


async def test_register_confidential_client_stores_only_a_keyed_hash(runtime: Runtime) -> None:
    async with runtime.database.unit_of_work() as session:
        metadata = build_client_metadata(
            name="App",
            redirect_uris=["https://app.example.com/cb"],
            scopes=Scopes.parse("openid email"),
            known_scopes=frozenset((await CatalogueRepository(session).catalogue()).scopes),
            webhook_url="https://hooks.example.com/consentry",
        )
        issued = await register_client(
            session, metadata, secret_hasher=runtime.secret_hasher, secret_box=runtime.secret_box, now=NOW
        )
    assert issued.client_secret is not None and len(issued.client_secret) >= 43
    assert issued.webhook_secret is not None and issued.webhook_secret.startswith("whsec_")
    async with runtime.database.read_only() as session:
        client = await ClientRepository(session).get_client(issued.client_id)
    assert client is not None
    assert client.secret_hash is not None
    assert issued.client_secret.encode() not in client.secret_hash
    assert runtime.secret_hasher.verify(issued.client_secret, client.secret_hash)
    assert not runtime.secret_hasher.verify(issued.client_secret + "x", client.secret_hash)


async def test_register_public_client_has_no_secret(runtime: Runtime) -> None:
    async with runtime.database.unit_of_work() as session:
        metadata = build_client_metadata(
            name="SPA",
            redirect_uris=["http://127.0.0.1:5173/cb"],
            scopes=Scopes.parse("openid"),
            known_scopes=frozenset({"openid"}),
            token_endpoint_auth_method="none",
        )
        issued = await register_client(
            session, metadata, secret_hasher=runtime.secret_hasher, secret_box=runtime.secret_box, now=NOW
        )
    assert issued.client_secret is None
    async with runtime.database.read_only() as session:
        client = await session.scalar(select(Client).where(Client.id == issued.client_id))
    assert client is not None and client.secret_hash is None


def test_production_argon2_parameters_are_owasp() -> None:
    hasher = PasswordHasher(memory_kib=19 * 1024, time_cost=2, parallelism=1)
    digest = hasher.hash("correct horse battery staple")
    assert digest.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert hasher.verify(digest, "correct horse battery staple")
    assert not hasher.needs_rehash(digest)
    assert PasswordHasher(memory_kib=19 * 1024, time_cost=3, parallelism=1).needs_rehash(digest)
