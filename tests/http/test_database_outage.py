"""A PostgreSQL that goes away under load, then freezes (SPEC §11): every answer is 2xx, 4xx or 503 with
Retry-After, never a 500 or a hang; /readyz answers within a second throughout; service resumes by itself."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from consentry.http.app import create_app
from consentry.runtime import Runtime
from consentry.storage.database import Database
from consentry.storage.migrate import upgrade_to_head
from tests.conftest import make_settings
from tests.http.conftest import serve
from tests.oauth import App, Person, make_app, make_person
from tests.pg import PostgresCluster, start_cluster

TIMEOUT = 1.0  # CONSENTRY_DATABASE_TIMEOUT for this test (5 s by default)
SLOWEST_ANSWER = TIMEOUT * 3 + 1.5  # a connect, a statement and a pooled connection's wait, at the most


@dataclass
class Observed:
    answers: list[tuple[str, int, float, str]] = field(default_factory=list)  # (what, status, seconds, body)

    def statuses(self, since: float = 0.0) -> set[int]:
        return {status for _, status, at, _ in self.answers if at >= since}


@pytest.fixture
async def cluster() -> AsyncIterator[PostgresCluster]:
    cluster = await asyncio.to_thread(start_cluster)
    try:
        yield cluster
    finally:
        cluster.signal_all(signal.SIGCONT)
        await asyncio.to_thread(cluster.stop)


async def test_the_database_stopped_then_frozen_under_load(cluster: PostgresCluster, tmp_path: Path) -> None:
    url = cluster.url()
    database = Database(url)
    await upgrade_to_head(database)
    await database.dispose()
    settings = make_settings(url, tmp_path, database_timeout=TIMEOUT)
    runtime = Runtime.build(settings)
    try:
        app, person = (
            await make_app(runtime, grant_types=["client_credentials"], scope="openid"),
            await make_person(runtime),
        )
        async with serve(create_app(settings, runtime=runtime), settings) as client:
            await _outages(cluster, client, app, person)
    finally:
        await runtime.close()


async def _outages(cluster: PostgresCluster, client: httpx.AsyncClient, app: App, person: Person) -> None:
    token = (
        await client.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=app.basic())
    ).json()["access_token"]
    calls: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
        "token": lambda: client.post(
            "/oauth2/token", data={"grant_type": "client_credentials"}, auth=app.basic()
        ),
        "introspect": lambda: client.post("/oauth2/introspect", data={"token": token}, auth=app.basic()),
        "users/me": lambda: client.get("/api/v1/users/me", headers=person.headers),
        "submit-identifier": lambda: client.post(
            "/api/v1/auth/submit-identifier", json={"identifier": person.email}
        ),
        "authorize": lambda: client.get(
            "/oauth2/authorize",
            params={"client_id": app.client_id, "response_type": "code", "redirect_uri": app.redirect_uri},
            headers=person.headers,
        ),
    }
    observed = Observed()
    readiness: list[tuple[int, float]] = []
    stop = asyncio.Event()
    started = time.monotonic()

    async def load(name: str) -> None:
        call = calls[name]
        while not stop.is_set():
            began = time.monotonic()
            response = await call()
            elapsed = time.monotonic() - began
            observed.answers.append((name, response.status_code, began - started, response.text[:200]))
            assert elapsed < SLOWEST_ANSWER, (name, response.status_code, elapsed)
            if response.status_code == 503:
                assert response.headers.get("retry-after"), name
            await asyncio.sleep(0.02)

    async def ready() -> None:
        while not stop.is_set():
            began = time.monotonic()
            response = await client.get("/readyz")
            readiness.append((response.status_code, time.monotonic() - began))
            await asyncio.sleep(0.1)

    async def until_served(deadline: float) -> float:
        while time.monotonic() < deadline:
            response = await calls["token"]()
            if response.status_code == 200:
                return time.monotonic() - started
            await asyncio.sleep(0.2)
        raise AssertionError("service did not resume")

    tasks = [asyncio.create_task(load(name)) for name in calls for _ in range(2)]
    tasks.append(asyncio.create_task(ready()))
    try:
        await asyncio.sleep(1.0)
        assert observed.statuses() <= {200, 302}, observed.answers[-5:]
        await asyncio.to_thread(cluster.stop_fast)
        down = time.monotonic() - started
        await asyncio.sleep(3.0)
        await asyncio.to_thread(cluster.start_again)
        back = await until_served(time.monotonic() + 20)
        await asyncio.sleep(0.5)
        cluster.signal_all(signal.SIGSTOP)
        frozen = time.monotonic() - started
        await asyncio.sleep(4.0)
        cluster.signal_all(signal.SIGCONT)
        thawed = await until_served(time.monotonic() + 20)
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    everything = {status for _, status, _, _ in observed.answers}
    assert everything <= {200, 302, 401, 503}, [
        a for a in observed.answers if a[1] not in (200, 302, 401, 503)
    ][:5]
    during_stop = {s for _, s, at, _ in observed.answers if down + 0.5 < at < down + 2.5}
    during_freeze = {s for _, s, at, _ in observed.answers if frozen + 0.5 < at < frozen + 3}
    assert 503 in during_stop and 503 in during_freeze
    assert all(seconds < 1.0 for _, seconds in readiness), max(seconds for _, seconds in readiness)
    assert {status for status, _ in readiness} == {200, 503}
    assert back and thawed
    assert readiness[-1][0] == 200
