"""Webhooks (SPEC §5): signed per Standard Webhooks, delivered at least once from the outbox, retried."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from consentry.jobs.webhooks import WebhookDelivery
from consentry.runtime import Runtime, utcnow
from consentry.settings import Settings
from consentry.storage.tables import Client, WebhookOutbox
from tests.conftest import make_settings
from tests.oauth import App, approve, authorize_params, make_app, make_person
from tests.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.stop()


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Settings:
    options = {"webhook_retry_base_seconds": 0.05, **getattr(request, "param", {})}
    return make_settings(database_url, tmp_path, **options)


async def webhook_app(runtime: Runtime, receiver: Receiver, **options: object) -> tuple[App, str]:
    app = await make_app(runtime, webhook_url=receiver.url, **options)
    async with runtime.database.read_only() as session:
        client = await session.get(Client, app.client_id)
    assert client is not None and client.webhook_secret is not None
    assert not client.webhook_secret.startswith("whsec_")  # sealed at rest
    return app, runtime.secret_box.open(client.webhook_secret).decode()


async def outbox(runtime: Runtime) -> list[WebhookOutbox]:
    async with runtime.database.read_only() as session:
        return list(await session.scalars(select(WebhookOutbox).order_by(WebhookOutbox.created_at)))


async def deliver_until_quiet(runtime: Runtime, rounds: int = 40) -> None:
    delivery = WebhookDelivery(runtime)
    try:
        for _ in range(rounds):
            await delivery.run_once(now=utcnow())
            if all(row.status != "pending" for row in await outbox(runtime)):
                return
            await asyncio.sleep(0.05)
    finally:
        await delivery.aclose()


async def test_consent_events_arrive_signed(
    http: httpx.AsyncClient, runtime: Runtime, receiver: Receiver
) -> None:
    app, secret = await webhook_app(runtime, receiver)
    person = await make_person(runtime)
    await approve(http, person, authorize_params(app, scope="openid email"))
    await approve(http, person, authorize_params(app, scope="openid email profile"))
    assert (
        await http.delete(f"/api/v1/oauth2/consents/{app.client_id}", headers=person.headers)
    ).status_code == 204
    await deliver_until_quiet(runtime)

    events = []
    for delivery in receiver.accepted():
        payload = Webhook(secret).verify(delivery.body, delivery.headers)  # raises on a bad signature
        assert delivery.headers["webhook-id"] == payload["id"]
        events.append(payload)
    assert [e["type"] for e in events] == ["consent.granted", "consent.updated", "consent.revoked"]
    granted = events[0]
    assert granted["data"] == {
        "client_id": app.client_id,
        "sub": str(person.user_id),
        "scopes": ["email", "openid"],
    }
    assert events[1]["data"]["scopes"] == ["email", "openid", "profile"]
    assert {row.status for row in await outbox(runtime)} == {"delivered"}
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 43).verify(receiver.accepted()[0].body, receiver.accepted()[0].headers)


async def test_tokens_revoked_event_and_pairwise_sub(
    http: httpx.AsyncClient, runtime: Runtime, receiver: Receiver
) -> None:
    from tests.oauth import tokens_for

    app, secret = await webhook_app(runtime, receiver, subject_type="pairwise")
    person = await make_person(runtime)
    tokens = await tokens_for(http, runtime, app, person)
    await http.delete(f"/api/v1/oauth2/consents/{app.client_id}", headers=person.headers)
    await deliver_until_quiet(runtime)
    events = [Webhook(secret).verify(d.body, d.headers) for d in receiver.accepted()]
    assert [e["type"] for e in events] == ["consent.granted", "consent.revoked", "tokens.revoked"]
    id_token_sub = runtime.keys.verify(tokens["id_token"])["sub"]
    assert {e["data"]["sub"] for e in events} == {id_token_sub}
    assert id_token_sub != str(person.user_id)


async def test_a_receiver_that_fails_twice_gets_it_on_the_third_try(
    http: httpx.AsyncClient, runtime: Runtime, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    app, secret = await webhook_app(runtime, receiver)
    await approve(http, await make_person(runtime), authorize_params(app))
    await deliver_until_quiet(runtime)
    assert [d.status for d in receiver.deliveries] == [500, 500, 204]
    assert len({d.headers["webhook-id"] for d in receiver.deliveries}) == 1  # the same event each time
    Webhook(secret).verify(receiver.deliveries[-1].body, receiver.deliveries[-1].headers)
    (row,) = await outbox(runtime)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 3, None)


async def test_events_that_keep_failing_end_up_dead(
    http: httpx.AsyncClient, database_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.fail_first = 1000
    settings = make_settings(
        database_url, tmp_path, webhook_retry_base_seconds=0.05, webhook_max_age_hours=0.0002
    )
    runtime = Runtime.build(settings)
    try:
        app, _ = await webhook_app(runtime, receiver)
        from consentry.http.app import create_app

        own = create_app(settings, runtime=runtime)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=own), base_url="http://t") as client:
            await approve(client, await make_person(runtime), authorize_params(app))
        await deliver_until_quiet(runtime, rounds=100)
        (row,) = await outbox(runtime)
        assert row.status == "dead"
        assert row.last_error == "HTTP 500"
        assert row.attempts >= 2
    finally:
        await runtime.close()


async def test_webhooks_to_private_addresses_are_refused_in_production(
    database_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    settings = make_settings(database_url, tmp_path, env="production", issuer="https://id.example.com")
    runtime = Runtime.build(settings)
    try:
        async with runtime.database.unit_of_work() as session:
            client = await session.get(Client, (await make_app(runtime)).client_id)
            assert client is not None
            client.webhook_url = receiver.url  # as if registered before the address turned private
            client.webhook_secret = runtime.secret_box.seal(b"whsec_" + b"A" * 43)
        runtime.clients.invalidate(client.id)
        from consentry.domain.scopes import Scopes
        from consentry.services.webhooks import enqueue

        person = await make_person(runtime)
        snapshot = await runtime.clients.get(client.id)
        assert snapshot is not None
        async with runtime.database.unit_of_work() as session:
            await enqueue(
                runtime,
                session,
                snapshot,
                "consent.granted",
                user_id=person.user_id,
                scopes=Scopes.parse("openid"),
                now=utcnow(),
            )
        delivery = WebhookDelivery(runtime)
        await delivery.run_once(now=utcnow())
        await delivery.aclose()
        (row,) = await outbox(runtime)
        assert "private address" in (row.last_error or "")
        assert receiver.deliveries == []
    finally:
        await runtime.close()


@pytest.mark.parametrize("settings", [{"webhook_lease_seconds": 1}], indirect=True)
async def test_a_slow_receiver_with_a_backlog_gets_no_duplicates_from_two_deliverers(
    runtime: Runtime, receiver: Receiver
) -> None:
    """Two nodes' deliverers and a receiver that takes longer per event than the lease lasts over the
    backlog: the leases of the claimed events are renewed as they go, so none is delivered twice."""
    receiver.hang_first, receiver.hang_seconds = 100, 0.3
    app, _secret = await webhook_app(runtime, receiver)
    start = utcnow()
    async with runtime.database.unit_of_work() as session:
        for number in range(8):
            session.add(
                WebhookOutbox(
                    client_id=app.client_id, event_type="consent.granted", payload={"number": number},
                    status="pending", created_at=start + timedelta(milliseconds=number),
                    next_attempt_at=start,
                )
            )  # fmt: skip
    first, second = WebhookDelivery(runtime), WebhookDelivery(runtime)

    async def node(delivery: WebhookDelivery) -> None:
        for _ in range(60):
            await delivery.run_once(now=utcnow())
            if len(receiver.accepted()) >= 8:
                return
            await asyncio.sleep(0.1)

    try:
        await asyncio.gather(node(first), node(second))
    finally:
        await first.aclose()
        await second.aclose()
    ids = [d.headers["webhook-id"] for d in receiver.accepted()]
    assert len(ids) == 8 and len(set(ids)) == 8
    assert [json.loads(d.body)["number"] for d in receiver.accepted()] == list(range(8))  # in order


def test_a_worker_killed_mid_delivery_delivers_after_restart(
    database_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    """SIGKILL a `consentry worker` while the receiver holds the request open; a new worker delivers it."""
    receiver.hang_first = 1
    receiver.hang_seconds = 30
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")},
        "CONSENTRY_DATABASE_URL": database_url,
        "CONSENTRY_SECRET_KEY_FILE": str(tmp_path / "secret"),
        "CONSENTRY_WEBHOOK_LEASE_SECONDS": "2",
        "CONSENTRY_WORKER_POLL_SECONDS": "0.1",
        "CONSENTRY_ARGON2_MEMORY_KIB": "8192",
    }

    def cli(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "consentry", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    client = json.loads(
        cli(
            "client",
            "create",
            "--name",
            "Hooked",
            "--redirect-uri",
            "https://app.example.com/cb",
            "--webhook-url",
            receiver.url,
            "--json",
        )
    )

    async def grant() -> None:
        settings = make_settings(database_url, tmp_path, secret_key=None)
        runtime = Runtime.build(settings)
        try:
            from consentry.http.app import create_app

            app = App(client["client_id"], client["client_secret"], "https://app.example.com/cb")
            own = create_app(settings, runtime=runtime)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=own), base_url="http://t") as http:
                await approve(http, await make_person(runtime), authorize_params(app))
        finally:
            await runtime.close()

    asyncio.run(grant())
    first = subprocess.Popen(
        [sys.executable, "-m", "consentry", "worker"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        receiver.wait_for(1)  # the request is in flight, held open by the receiver
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    second = subprocess.Popen(
        [sys.executable, "-m", "consentry", "worker"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        receiver.wait_for(2)
        ids = {d.headers["webhook-id"] for d in receiver.deliveries}
        assert len(ids) == 1  # the same event, delivered again after the lease ran out
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=20) == 0
