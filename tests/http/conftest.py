"""Fixtures for HTTP tests: the app served over real sockets, for tests that need real concurrency."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from consentry.http.app import create_app, proxy_options
from consentry.http.protocol import ResponseCoalescingProtocol
from consentry.runtime import Runtime
from consentry.settings import Settings
from tests.conftest import make_settings
from tests.documents import Documents
from tests.oauth import App, Person, make_app, make_person
from tests.pg import free_port


@contextlib.asynccontextmanager
async def serve(app: FastAPI, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` behind uvicorn on a free loopback port, as `consentry serve` runs it, and a client of it whose
    requests travel over TCP (so ``asyncio.gather`` of them is real concurrency)."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=ResponseCoalescingProtocol,
        lifespan="on",
        log_config=None,
        **proxy_options(settings),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn offers no event for this
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as client:
        try:
            yield client
        finally:
            server.should_exit = True
            await task


@pytest.fixture
async def app(runtime: Runtime) -> App:
    """A confidential client of the usual shape (tests that need another kind define their own)."""
    return await make_app(runtime)


@pytest.fixture
async def person(runtime: Runtime) -> Person:
    """A verified account, signed in (``person.headers`` carries its session)."""
    return await make_person(runtime)


@contextlib.asynccontextmanager
async def production(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """An app in production mode (an https issuer), in process, and its runtime."""
    settings = make_settings(database_url, tmp_path, env="production", issuer="https://id.example.com")
    app = create_app(settings)
    runtime: Runtime = app.state.runtime
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://id.example.com") as client:
            yield client, runtime
    finally:
        await runtime.close()


@pytest.fixture
async def served(asgi_app: FastAPI, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The test's app, served (see :func:`serve`)."""
    async with serve(asgi_app, settings) as client:
        yield client


@pytest.fixture
def documents() -> Iterator[Documents]:
    server = Documents()
    yield server
    server.stop()
