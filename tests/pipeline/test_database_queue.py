"""The database transport: claims in due order, leases, retry times, plans that do not grow with the queue."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from consentry.domain.registration import RegistrationMessage
from consentry.runtime import Runtime, utcnow
from consentry.storage.database import Database
from consentry.storage.registration_queue import DatabaseTransport
from consentry.storage.registration_writes import write_batch

HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"


def messages(count: int, prefix: str = "queued") -> list[RegistrationMessage]:
    return [RegistrationMessage(uuid.uuid4(), f"{prefix}{i}@example.com", None, HASH) for i in range(count)]


async def test_messages_are_claimed_in_the_order_they_were_published(runtime: Runtime) -> None:
    transport = DatabaseTransport(runtime.database)
    first, second = messages(30, "first"), messages(30, "second")
    now = utcnow()
    await transport.publish(first, now=now)
    await transport.publish(second, now=now + timedelta(milliseconds=1))
    later = now + timedelta(seconds=1)
    claimed = [m.request_id for size in (7, 23, 100) for m in await transport.receive(size, now=later)]
    assert claimed == [m.request_id for m in first + second]


async def test_a_claim_is_held_for_its_lease_then_taken_again(runtime: Runtime) -> None:
    lease = timedelta(seconds=60)
    crashed = DatabaseTransport(runtime.database, lease=lease, consumer_id="crashed")
    survivor = DatabaseTransport(runtime.database, lease=lease, consumer_id="survivor")
    await crashed.publish(messages(5), now=utcnow())
    now = utcnow() + timedelta(seconds=1)
    taken = await crashed.receive(10, now=now)
    assert len(taken) == 5
    assert await survivor.receive(10, now=now + lease - timedelta(seconds=1)) == []
    retaken = await survivor.receive(10, now=now + lease + timedelta(seconds=1))
    assert [m.request_id for m in retaken] == [m.request_id for m in taken]


async def test_a_dead_lettered_message_waits_for_its_retry_time(runtime: Runtime) -> None:
    transport = DatabaseTransport(runtime.database)
    now = utcnow()
    failing, waiting = messages(2)
    await transport.publish([failing, waiting], now=now - timedelta(seconds=1))
    [claimed, other] = await transport.receive(2, now=now)
    retry_at = now + timedelta(seconds=30)
    await transport.dead_letter(claimed, "boom", retry_at=retry_at, now=now)
    assert await transport.receive(10, now=retry_at - timedelta(seconds=1)) == []
    [again] = await transport.receive(10, now=retry_at)
    assert again.request_id == failing.request_id and again.attempts == 1
    assert other.request_id == waiting.request_id


@contextmanager
def cursor_executes(database: Database, record: Callable[..., None]) -> Iterator[None]:
    """``record`` called before each statement meanwhile, on every engine of ``database``."""
    for engine in database.sync_engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield
    finally:
        for engine in database.sync_engines:
            event.remove(engine, "before_cursor_execute", record)


@contextmanager
def statements_run(database: Database, *, every: bool = False) -> Iterator[list[tuple[str, Any]]]:
    """The single statements run meanwhile: those reading or claiming the queue, or ``every`` one."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if (every or "registration_requests" in statement) and not many:
            seen.append((statement, parameters))

    with cursor_executes(database, record):
        yield seen


async def test_an_idle_queue_is_polled_with_one_read(runtime: Runtime) -> None:
    """Consumers poll ten times a second; a claim is a write (on SQLite, the process's write lock)."""
    transport = DatabaseTransport(runtime.database)
    now = utcnow()
    await transport.publish(messages(2), now=now + timedelta(minutes=5))  # queued, not yet due
    with statements_run(runtime.database) as seen:
        assert await transport.receive(10, now=now) == []
    assert [statement.split()[0].upper() for statement, _ in seen] == ["SELECT"]


async def test_on_sqlite_no_claim_or_write_walks_every_queued_request(runtime: Runtime) -> None:
    """With no statistics SQLite prefers an equality on the status index over a list of ids, which made each
    batch scan the whole queue (100,000 queued: 4,800 users/s and falling). Each statement the consumer runs
    must reach registration_requests by id, or through the due index in due order."""
    database = runtime.database
    if database.dialect != "sqlite":
        return  # PostgreSQL plans for the tables' current sizes: see write_batch
    transport = DatabaseTransport(database)
    await transport.publish(messages(20), now=utcnow())
    with statements_run(database) as seen:
        batch = await transport.receive(10, now=utcnow() + timedelta(seconds=1))
        await write_batch(database, batch, now=utcnow())
    assert len(seen) >= 2
    async with database.engine.connect() as connection:
        for statement, parameters in seen:
            plan = [
                row[3]
                for row in await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            ]
            on_queue = [step for step in plan if "registration_requests" in step]
            assert on_queue, (statement, plan)
            for step in on_queue:
                by_id = "(id=?)" in step
                in_due_order = "(status=? AND next_attempt_at<?)" in step
                assert by_id or in_due_order, (statement, plan)


async def test_on_postgresql_the_writer_plans_for_the_tables_as_they_are(runtime: Runtime) -> None:
    """A generic plan cached while the tables were small (a sequential scan on users) outlived a bulk
    registration's growth: 100,000 queued ran at 1,270 users/s. The writer's transaction asks for plans made
    per batch, before its first lookup, and only for itself."""
    database = runtime.database
    if database.dialect != "postgresql":
        return
    transport = DatabaseTransport(database)
    await transport.publish(messages(3), now=utcnow())
    batch = await transport.receive(10, now=utcnow() + timedelta(seconds=1))
    with statements_run(database, every=True) as seen:
        result = await write_batch(database, batch, now=utcnow())
    assert result.completed == 3
    run = [statement.split()[0].upper() for statement, _ in seen]
    assert run[0] == "SET" and "force_custom_plan" in seen[0][0]
    assert "SELECT" in run[1:]
    async with database.engine.connect() as connection:
        assert (await connection.execute(text("SHOW plan_cache_mode"))).scalar() == "auto"


async def test_on_sqlite_the_claim_and_the_batch_are_written_on_the_writer_thread(runtime: Runtime) -> None:
    """Through the pool's aiosqlite connection each batch's commit ran a checkpoint itself (one core, 100,000
    registrations: 8,100-8,300 users/s, 9,300-9,900 on the writer thread, whose checkpoints run beside it)."""
    database = runtime.database
    if database.dialect != "sqlite":
        pytest.skip("PostgreSQL runs the work on the event loop's connection")
    transport = DatabaseTransport(database)
    await transport.publish(messages(5), now=utcnow())
    threads: dict[str, set[str]] = {}

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        words = statement.split()
        if words[0] in ("UPDATE", "INSERT"):
            table = words[1] if words[0] == "UPDATE" else words[2]  # UPDATE t SET, INSERT INTO t
            threads.setdefault(table, set()).add(threading.current_thread().name)

    with cursor_executes(database, record):
        batch = await transport.receive(10, now=utcnow() + timedelta(seconds=1))
        result = await write_batch(database, batch, now=utcnow())
    assert result.completed == 5
    assert {"registration_requests", "users", "user_credentials", "audit_events"} <= set(threads)
    assert all(names == {"sqlite-writer_0"} for names in threads.values()), threads
