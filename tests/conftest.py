"""Fixtures: every storage-touching test runs on SQLite and on a real, throwaway PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from consentry.http.app import create_app
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.database import Database
from consentry.storage.migrate import upgrade_to_head
from tests.kafka_broker import start_tansu
from tests.mail import Mailbox, SmsGateway
from tests.pg import PostgresCluster, start_cluster
from tests.redis_server import RedisServer, start_redis

BACKENDS = ["sqlite", "postgresql"]
_database_numbers = itertools.count()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server on loopback that collects one-time codes."""
    box = Mailbox()
    box.start()
    yield box
    box.stop()


@pytest.fixture
def sms() -> Iterator[SmsGateway]:
    """A real HTTP SMS gateway on loopback that collects one-time codes."""
    gateway = SmsGateway()
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kafka_address(tmp_path: Path) -> Iterator[str]:
    """A Kafka-protocol broker: ``CONSENTRY_TEST_KAFKA`` when it names one (Apache Kafka), else a Tansu of
    this test's own, empty (it keeps topics in memory)."""
    if os.environ.get("CONSENTRY_TEST_KAFKA"):
        yield os.environ["CONSENTRY_TEST_KAFKA"]
        return
    broker = start_tansu(tmp_path)
    try:
        yield broker.address
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


def run_in_thread(coroutine: Coroutine[object, object, object]) -> object:
    """Run set-up I/O on a loop of its own, so sync fixtures can do it whatever loop the tests use."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _admin(cluster: PostgresCluster, statement: str) -> None:
    connection = await asyncpg.connect(cluster.dsn())
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _migrate(url: str) -> None:
    database = Database(url)
    try:
        await upgrade_to_head(database)
    finally:
        await database.dispose()


@pytest.fixture(scope="session")
def postgres_template(postgres_cluster: PostgresCluster) -> str:
    """A database migrated once; each test clones it (CREATE DATABASE ... TEMPLATE) in milliseconds."""
    run_in_thread(_admin(postgres_cluster, "CREATE DATABASE consentry_template"))
    run_in_thread(_migrate(postgres_cluster.url("consentry_template")))
    return "consentry_template"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    run_in_thread(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated, empty database on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "consentry.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    template_name: str = request.getfixturevalue("postgres_template")
    name = f"test_{next(_database_numbers)}"
    run_in_thread(_admin(cluster, f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    yield cluster.url(name)
    run_in_thread(_admin(cluster, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "secret_key": "test-secret-key-that-is-long-enough-000",
        "secret_key_file": tmp_path / "secret",
        # Cheap argon2 for speed; the production parameters are covered by their own test.
        "argon2_memory_kib": 8 * 1024,
        "argon2_time_cost": 1,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime.build(settings)
    try:
        yield runtime
    finally:
        await runtime.close()


@pytest.fixture
def asgi_app(settings: Settings, runtime: Runtime) -> FastAPI:
    return create_app(settings, runtime=runtime)


@pytest.fixture
async def http(asgi_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=asgi_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        yield client
