"""The pseudonym version cache: one read per refresh under concurrency; a rotation is not undone by a read."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import event

from consentry.infrastructure.subjects import SubjectService
from consentry.runtime import Runtime, utcnow
from consentry.storage.pseudonyms import PseudonymVersionRepository
from tests.oauth import make_app


async def test_concurrent_refreshes_share_one_read(runtime: Runtime) -> None:
    app = await make_app(runtime, subject_type="pairwise")
    client = await runtime.clients.get(app.client_id)
    assert client is not None
    subjects = SubjectService(runtime.database, runtime.changes, secret=b"s" * 32, refresh_interval=0)
    await subjects.subject(uuid.uuid4(), client, now=utcnow())  # creates version 1
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM pseudonym_versions" in statement:
            reads.append(statement)

    event.listen(runtime.database.engine.sync_engine, "before_cursor_execute", seen)
    user = uuid.uuid4()
    results = await asyncio.gather(*(subjects.subject(user, client, now=utcnow()) for _ in range(20)))
    assert len({subject.value for subject in results}) == 1
    assert len(reads) == 1


async def test_a_read_overtaken_by_a_rotation_is_not_adopted(runtime: Runtime, monkeypatch: Any) -> None:
    if runtime.database.dialect == "sqlite":
        pytest.skip(
            "SQLite serialises this process's writers: a rotation cannot overtake the load's transaction"
        )
    subjects = SubjectService(runtime.database, runtime.changes, secret=b"s" * 32, refresh_interval=0.05)
    before = await subjects.issuing_version(now=utcnow())
    await asyncio.sleep(0.06)  # stale: the next call reads
    read_done, release = asyncio.Event(), asyncio.Event()
    original = PseudonymVersionRepository.all

    async def held(self: PseudonymVersionRepository) -> Any:
        versions = await original(self)
        read_done.set()
        await release.wait()
        return versions

    monkeypatch.setattr(PseudonymVersionRepository, "all", held)
    stale = asyncio.create_task(subjects.issuing_version(now=utcnow()))
    await read_done.wait()
    monkeypatch.setattr(PseudonymVersionRepository, "all", original)
    await subjects.rotate(now=utcnow())
    release.set()
    assert await stale == before  # it asked before the rotation
    after = await subjects.issuing_version(now=utcnow())
    assert after == before + 1  # the rotation holds: the stale read was not cached
