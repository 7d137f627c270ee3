"""Registration (SPEC §3) on the database queue: exactly once, duplicates fail alone, poison to the DLQ."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from consentry.domain.registration import RegistrationMessage, RegistrationStatus
from consentry.pipeline.consumer import RegistrationConsumer
from consentry.runtime import Runtime, utcnow
from consentry.settings import Settings
from consentry.storage.tables import RegistrationRequest, User, UserCredential
from tests.conftest import make_settings
from tests.oauth import make_person
from tests.pipeline_helpers import run_pipeline

API = "/api/v1/auth"
PASSWORD = "a perfectly fine passphrase"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        database_url,
        tmp_path,
        registration_idle_seconds=0.05,
        registration_retry_base_seconds=0.05,
        registration_batch_size=500,
    )


async def users(runtime: Runtime) -> int:
    async with runtime.database.read_only() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def test_register_sync(http: httpx.AsyncClient, runtime: Runtime) -> None:
    body = {"email": "Sync@Example.com", "password": PASSWORD, "consent": True}
    created = await http.post(f"{API}/register-sync", json=body)
    assert created.status_code == 201
    assert created.json()["email"] == "sync@example.com"
    assert uuid.UUID(created.json()["user_id"]).version == 8  # consentry.domain.clustered_ids
    again = await http.post(f"{API}/register-sync", json=body)
    assert again.status_code == 409
    for bad in (
        {**body, "consent": False},
        {**body, "password": "short"},
        {**body, "email": "nope"},
        {"password": PASSWORD, "consent": True},
    ):
        assert (await http.post(f"{API}/register-sync", json=bad)).status_code == 400


async def test_register_async_completes_through_the_pipeline(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    queued = await http.post(
        f"{API}/register-async", json={"email": "later@example.com", "password": PASSWORD, "consent": True}
    )
    assert queued.status_code == 202
    body = queued.json()
    assert body["status"] == "processing" and body["message"]
    assert uuid.UUID(body["request_id"]).version == 8  # consentry.domain.clustered_ids
    status = await http.get(f"{API}/register-status/{body['request_id']}")
    assert status.json() == {"request_id": body["request_id"], "status": "processing"}
    async with runtime.database.read_only() as session:
        row = await session.get(RegistrationRequest, uuid.UUID(body["request_id"]))
    assert row is not None and row.password_hash is not None
    assert PASSWORD not in row.password_hash and row.password_hash.startswith("$argon2id$")
    await run_pipeline(runtime)
    done = (await http.get(f"{API}/register-status/{body['request_id']}")).json()
    assert done["status"] == "completed" and done["user_id"]
    async with runtime.database.read_only() as session:
        row = await session.get(RegistrationRequest, uuid.UUID(body["request_id"]))
        stored = await session.scalar(
            select(UserCredential.password_hash).where(UserCredential.user_id == uuid.UUID(done["user_id"]))
        )
    assert row is not None and row.password_hash is None  # not kept once written
    assert stored is not None and runtime.passwords.verify(stored, PASSWORD)
    flow = (await http.post(f"{API}/submit-identifier", json={"identifier": "later@example.com"})).json()
    assert flow["next"] == "verify"  # a queued registration has not proven its email yet


async def test_an_idle_consumer_takes_this_process_registrations_when_the_doorbell_rings(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    consumer = RegistrationConsumer(
        runtime.database, runtime.registrations, runtime.settings, runtime.pipeline_metrics
    )
    stop = asyncio.Event()
    # Polls so seldom that only the doorbell can bring the registration in within the test's time.
    running = asyncio.create_task(
        consumer.run(stop, doorbell=runtime.registration_doorbell, poll=600.0, idle_poll=600.0)
    )
    try:
        async with asyncio.timeout(20):
            while not runtime.registration_doorbell.listened_to:  # noqa: ASYNC110 (the first poll is behind it)
                await asyncio.sleep(0.01)
        queued = await http.post(
            f"{API}/register-async", json={"email": "rung@example.com", "password": PASSWORD, "consent": True}
        )
        request_id = queued.json()["request_id"]
        async with asyncio.timeout(20):
            while (await http.get(f"{API}/register-status/{request_id}")).json()["status"] != "completed":  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        stop.set()
    async with asyncio.timeout(5):  # a stop ends the wait at once
        await running


async def test_bulk_validates_up_front_and_duplicates_fail_alone(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    await http.post(
        f"{API}/register-sync", json={"email": "taken@example.com", "password": PASSWORD, "consent": True}
    )
    entries = [
        {"email": "one@example.com", "password": PASSWORD, "consent": True},
        {"email": "bad-address", "password": PASSWORD, "consent": True},
        {"email": "two@example.com", "password": PASSWORD, "consent": True},
        {"email": "ONE@example.com", "password": PASSWORD, "consent": True},  # a duplicate inside the call
        {"email": "taken@example.com", "password": PASSWORD, "consent": True},  # a duplicate of an account
        {"email": "three@example.com", "password": "short", "consent": True},
    ]
    admin = await make_person(runtime, is_admin=True)
    response = await http.post(f"{API}/register-async-bulk", json={"users": entries}, headers=admin.headers)
    assert response.status_code == 202
    body = response.json()
    assert body["count"] == 4 and len(body["request_ids"]) == 4
    assert [e["index"] for e in body["errors"]] == [1, 5]
    await run_pipeline(runtime)
    statuses = [(await http.get(f"{API}/register-status/{rid}")).json() for rid in body["request_ids"]]
    assert [s["status"] for s in statuses] == ["completed", "completed", "failed", "failed"]
    assert "already exists" in statuses[2]["error"] and "already exists" in statuses[3]["error"]
    assert await users(runtime) == 3 + 1  # and the administrator who sent them


async def test_ten_thousand_registrations_complete_exactly_once(runtime: Runtime) -> None:
    """Pre-hashed messages straight into the queue (hashing is the API's cost, not the pipeline's)."""
    password_hash = runtime.passwords.hash(PASSWORD)
    messages = [
        RegistrationMessage(uuid.uuid4(), f"user{i}@example.com", None, password_hash) for i in range(10_000)
    ]
    await runtime.registrations.publish(messages, now=utcnow())
    await run_pipeline(runtime, within=240)
    assert await users(runtime) == 10_000
    async with runtime.database.read_only() as session:
        by_status = dict(
            (
                await session.execute(
                    select(RegistrationRequest.status, func.count()).group_by(RegistrationRequest.status)
                )
            ).all()
        )
    assert by_status == {"completed": 10_000}
    await runtime.registrations.publish([], now=utcnow())
    # Redelivery of every message (as after a consumer crash) creates nothing new.
    from consentry.storage.registration_writes import write_batch

    again = await write_batch(runtime.database, messages[:1000], now=utcnow())
    assert (again.completed, again.skipped) == (0, 1000)
    assert await users(runtime) == 10_000


async def test_a_poisoned_message_goes_to_the_dlq_is_retried_then_fails_without_holding_up_the_rest(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    password_hash = runtime.passwords.hash(PASSWORD)
    poison = RegistrationMessage(
        uuid.uuid4(), "poison@example.com", None, password_hash, {"email_verified": "yes please"}
    )
    good = [RegistrationMessage(uuid.uuid4(), f"ok{i}@example.com", None, password_hash) for i in range(5)]
    await runtime.registrations.publish([good[0], poison, *good[1:]], now=utcnow())
    await run_pipeline(runtime)
    for message in good:
        status = (await http.get(f"{API}/register-status/{message.request_id}")).json()
        assert status["status"] == "completed"
    failed = (await http.get(f"{API}/register-status/{poison.request_id}")).json()
    assert failed["status"] == "failed" and "email_verified" in failed["error"]
    async with runtime.database.read_only() as session:
        row = await session.get(RegistrationRequest, poison.request_id)
    assert row is not None and row.in_dlq and row.attempts == 4  # the first try and three retries
    assert row.password_hash is None
    metrics = (await http.get("/metrics")).text
    assert "consentry_registration_failed_total 1.0" in metrics
    assert "consentry_registration_dead_lettered_total 4.0" in metrics


async def test_status_of_unknown_requests(http: httpx.AsyncClient) -> None:
    assert (await http.get(f"{API}/register-status/{uuid.uuid4()}")).status_code == 404
    assert (await http.get(f"{API}/register-status/not-a-uuid")).status_code == 404


async def test_a_written_batch_reads_back_as_the_model_says(runtime: Runtime) -> None:
    """On PostgreSQL the writer uses COPY, outside SQLAlchemy's types: every value must read back the same."""
    from consentry.domain.accounts import UserStatus
    from consentry.storage.registration_writes import write_batch
    from consentry.storage.tables import AuditEvent, ConsentHistory

    request_id = uuid.uuid4()
    password_hash = runtime.passwords.hash(PASSWORD)
    message = RegistrationMessage(
        request_id, "copied@example.com", "+15550001111", password_hash, {"email_verified": True}
    )
    duplicate = RegistrationMessage(uuid.uuid4(), "COPIED@example.com".lower(), None, password_hash)
    await runtime.registrations.publish([message, duplicate], now=utcnow())
    result = await write_batch(runtime.database, [message, duplicate], now=utcnow())
    assert (result.completed, result.duplicates) == (1, 1)
    async with runtime.database.read_only() as session:
        user = await session.scalar(select(User).where(User.email == "copied@example.com"))
        assert user is not None and user.id.version == 8  # consentry.domain.clustered_ids
        assert (user.status, user.email_verified, user.phone_verified, user.is_admin) == (
            UserStatus.ACTIVE,
            True,
            False,
            False,
        )
        assert user.phone == "+15550001111" and user.created_at.tzinfo is not None
        credential = await session.scalar(select(UserCredential).where(UserCredential.user_id == user.id))
        assert credential is not None and runtime.passwords.verify(credential.password_hash, PASSWORD)
        event = await session.scalar(select(AuditEvent).where(AuditEvent.user_id == user.id))
        assert event is not None and event.details == {"via": "pipeline", "request_id": str(request_id)}
        history = await session.scalar(select(ConsentHistory).where(ConsentHistory.user_id == user.id))
        assert history is not None and history.action == "terms_accepted" and history.scopes_before is None
        done = await session.get(RegistrationRequest, request_id)
        failed = await session.get(RegistrationRequest, duplicate.request_id)
    assert done is not None and failed is not None
    assert (done.status, done.user_id, done.error, done.password_hash) == (
        RegistrationStatus.COMPLETED,
        user.id,
        None,
        None,
    )
    assert (failed.status, failed.user_id, failed.password_hash) == (RegistrationStatus.FAILED, None, None)
    assert failed.error is not None and "already exists" in failed.error


async def test_on_postgresql_batches_overlap_but_never_over_one_address(
    http: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the database works on other cores the next batch is received, and written, while one is being
    written; on SQLite (one writer) batches stay strictly in turn. Two batches holding the same address are
    never written at once: the one queued first wins, whatever the order of the addresses within each. Either
    way every registration is written exactly once and step() leaves no write running."""
    import consentry.pipeline.consumer as consumer_module

    writing = receiving = overlaps = most_writing = 0
    addresses_in_flight: list[set[str]] = []
    original_write, original_receive = consumer_module.write_batch, runtime.registrations.receive

    async def write(database: object, messages: list[RegistrationMessage], **kwargs: object) -> object:
        nonlocal writing, overlaps, most_writing
        addresses = {m.email for m in messages if m.email}
        assert not any(addresses & other for other in addresses_in_flight)
        addresses_in_flight.append(addresses)
        writing += 1
        most_writing = max(most_writing, writing)
        overlaps += receiving
        try:
            return await original_write(database, messages, **kwargs)  # type: ignore[arg-type]
        finally:
            writing -= 1
            addresses_in_flight.remove(addresses)

    async def receive(limit: int, *, now: object) -> object:
        nonlocal receiving, overlaps
        receiving += 1
        try:
            return await original_receive(limit, now=now)  # type: ignore[arg-type]
        finally:
            receiving -= 1
            overlaps += writing

    monkeypatch.setattr(consumer_module, "write_batch", write)
    monkeypatch.setattr(runtime.registrations, "receive", receive)
    password_hash = runtime.passwords.hash(PASSWORD)
    messages = [
        RegistrationMessage(uuid.uuid4(), f"o{i}@example.com", None, password_hash) for i in range(2000)
    ]
    # The first two batches (500 each) hold the same two addresses, in opposite orders.
    for position, address in (
        (0, "a@example.com"),
        (499, "b@example.com"),
        (500, "b@example.com"),
        (999, "a@example.com"),
    ):
        messages[position] = RegistrationMessage(uuid.uuid4(), address, None, password_hash)
    await runtime.registrations.publish(messages, now=utcnow())
    await run_pipeline(runtime)
    assert await users(runtime) == 1998
    statuses = [
        (await http.get(f"{API}/register-status/{messages[p].request_id}")).json()["status"]
        for p in (0, 499, 500, 999)
    ]
    assert statuses == ["completed", "completed", "failed", "failed"]
    assert writing == 0
    if runtime.database.dialect == "postgresql":
        assert overlaps > 0 and most_writing == 2
    else:
        assert overlaps == 0 and most_writing == 1
