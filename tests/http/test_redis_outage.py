"""Redis as a dependency that degrades cleanly (SPEC §11): while it is down, what needs the shared rate-limit
counters answers 503 with Retry-After (a limit that cannot be checked is not waived) and /readyz says not
ready; started again, empty, everything works with no restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from consentry.http.app import create_app
from consentry.runtime import Runtime
from tests.conftest import make_settings
from tests.oauth import make_app
from tests.redis_server import RedisServer, start_redis


@pytest.fixture
def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = start_redis(tmp_path)
    yield server
    server.stop()


@pytest.fixture
async def outage_runtime(database_url: str, tmp_path: Path, redis: RedisServer) -> AsyncIterator[Runtime]:
    runtime = Runtime.build(make_settings(database_url, tmp_path, redis_url=redis.url))
    yield runtime
    await runtime.close()


async def test_redis_down_gives_503_and_not_ready_and_back_it_just_works(
    outage_runtime: Runtime, redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app: FastAPI = create_app(outage_runtime.settings, runtime=outage_runtime)
    client = await make_app(outage_runtime, grant_types=["client_credentials"], redirect_uris=[])
    token = {"grant_type": "client_credentials"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    ) as http:
        assert (await http.post("/oauth2/token", data=token, auth=client.basic())).status_code == 200
        assert (await http.get("/readyz")).status_code == 200

        redis.stop()
        for _ in range(5):
            refused = await http.post("/oauth2/token", data=token, auth=client.basic())
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] and refused.json()["error"] == "temporarily_unavailable"
        not_ready = await http.get("/readyz")
        assert not_ready.status_code == 503 and "Redis" in not_ready.json()["error_description"]
        down_lines = [r for r in caplog.records if "do not answer" in r.getMessage()]
        assert len(down_lines) == 1  # one line when it goes, not one per request

        restarted = start_redis(tmp_path, port=redis.port)
        try:
            assert (await http.post("/oauth2/token", data=token, auth=client.basic())).status_code == 200
            assert (await http.get("/readyz")).status_code == 200
            assert any("answer again" in r.getMessage() for r in caplog.records)
        finally:
            restarted.stop()
