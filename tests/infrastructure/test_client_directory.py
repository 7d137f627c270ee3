"""The in-process client cache: one read per expiry under concurrency, and no stale entry after a change."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, update

from consentry.infrastructure.client_directory import ClientDirectory
from consentry.runtime import Runtime
from consentry.storage.clients import ClientRepository
from consentry.storage.tables import Client
from tests.oauth import make_app


def count_client_reads(runtime: Runtime) -> list[str]:
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "oauth2_clients" in statement:
            reads.append(statement)

    event.listen(runtime.database.engine.sync_engine, "before_cursor_execute", seen)
    return reads


async def test_concurrent_misses_share_one_read(runtime: Runtime) -> None:
    app = await make_app(runtime, name="Shared")
    directory = ClientDirectory(runtime.database, runtime.changes, ttl=0)  # every call is a miss
    reads = count_client_reads(runtime)
    clients = await asyncio.gather(*(directory.get(app.client_id) for _ in range(20)))
    assert {client.name if client else None for client in clients} == {"Shared"}
    assert len(reads) == 1
    await directory.get(app.client_id)  # the finished read is not joined again
    assert len(reads) == 2


async def test_a_change_during_a_read_is_not_hidden_by_it(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await make_app(runtime, name="Before")
    directory = ClientDirectory(runtime.database, runtime.changes, ttl=60)
    read_done, release = asyncio.Event(), asyncio.Event()
    original = ClientRepository.get_client

    async def held(self: ClientRepository, client_id: str) -> Client | None:
        row = await original(self, client_id)
        read_done.set()
        await release.wait()
        return row

    monkeypatch.setattr(ClientRepository, "get_client", held)
    first = asyncio.create_task(directory.get(app.client_id))
    await read_done.wait()  # the old row is read, not yet cached
    async with runtime.database.unit_of_work() as session:
        await session.execute(update(Client).where(Client.id == app.client_id).values(name="After"))
    directory.invalidate(app.client_id)
    release.set()
    old = await first
    assert old is not None and old.name == "Before"  # it asked before the change
    monkeypatch.setattr(ClientRepository, "get_client", original)
    now = await directory.get(app.client_id)
    assert now is not None and now.name == "After"


async def test_a_failed_read_reaches_every_waiter_and_is_not_cached(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await make_app(runtime)
    directory = ClientDirectory(runtime.database, runtime.changes, ttl=60)
    original = ClientRepository.get_client

    async def broken(self: ClientRepository, client_id: str) -> Client | None:
        await asyncio.sleep(0.01)
        raise ConnectionError("database went away")

    monkeypatch.setattr(ClientRepository, "get_client", broken)
    results = await asyncio.gather(*(directory.get(app.client_id) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    monkeypatch.setattr(ClientRepository, "get_client", original)
    assert await directory.get(app.client_id) is not None
