"""Limits an attacker must not get around (SPEC §1): counted as attempts arrive, never after the slow work;
per (client, IP) and per IP so that strangers cannot lock anyone out; only what proves nothing counts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.storage.tables import AuditEvent
from tests.conftest import make_settings
from tests.mail import Mailbox
from tests.oauth import PASSWORD, make_app, make_person

API = "/api/v1/auth"


@pytest.fixture
def settings(database_url: str, tmp_path: Path, mailbox: Mailbox) -> Settings:
    return make_settings(database_url, tmp_path, smtp_url=mailbox.url)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def from_ip(app: FastAPI, ip: str) -> httpx.AsyncClient:
    """A client whose requests come from ``ip`` (in process: the limits key on the peer's address)."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")


async def flow_token(http: httpx.AsyncClient, email: str) -> str:
    started = await http.post(f"{API}/submit-identifier", json={"identifier": email})
    assert started.status_code == 200, started.text
    assert started.json()["next"] == "password"
    return str(started.json()["flow_token"])


async def login_failures(runtime: Runtime) -> int:
    async with runtime.database.read_only() as session:
        counted = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.event_type == "login_failed")
        )
    return int(counted or 0)


async def test_concurrent_guesses_are_counted_as_they_arrive_and_the_limit_holds_against_the_right_password(
    served: httpx.AsyncClient, runtime: Runtime
) -> None:
    person = await make_person(runtime)
    flows = [await flow_token(served, person.email) for _ in range(50)]

    async def guess(flow: str, password: str) -> int:
        response = await served.post(
            f"{API}/login-password", json={"password": password}, headers=bearer(flow)
        )
        return response.status_code

    first = await asyncio.gather(*(guess(flow, f"wrong guess {n}") for n, flow in enumerate(flows[:40])))
    assert set(first) <= {401, 429}
    assert first.count(401) <= 10  # the limit per identifier: refused before hashing past it
    assert await login_failures(runtime) == first.count(401)  # no hash ran for a refused guess
    # Guesses one at a time use up what the burst left of the limit, and no more.
    alone = [await guess(flow, "one more") for flow in flows[40:49]]
    assert first.count(401) + alone.count(401) == 10
    assert await login_failures(runtime) == 10
    # A second burst, the right password among the wrong ones: the limit is reached, all are refused.
    second = await asyncio.gather(
        guess(flows[49], PASSWORD), *(guess(flow, "wrong again") for flow in flows[:20])
    )
    assert second[0] == 429
    assert set(second) == {429}


async def test_one_flow_carries_one_password_attempt_at_a_time(
    served: httpx.AsyncClient, runtime: Runtime
) -> None:
    person = await make_person(runtime)
    flow = await flow_token(served, person.email)
    answers = await asyncio.gather(
        *(
            served.post(f"{API}/login-password", json={"password": f"wrong {n}"}, headers=bearer(flow))
            for n in range(8)
        )
    )
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(401) < 8 and set(statuses) <= {401, 429}
    assert await login_failures(runtime) == statuses.count(401)
    # Once the attempts under way have ended, the flow takes the right password.
    done = await served.post(f"{API}/login-password", json={"password": PASSWORD}, headers=bearer(flow))
    assert done.status_code == 200


async def test_successful_sign_ins_from_one_address_are_never_limited(
    served: httpx.AsyncClient, runtime: Runtime
) -> None:
    """A backend or a NAT signs many people in from one address (SPEC §1: successes do not count)."""
    people = [await make_person(runtime) for _ in range(5)]
    for round_ in range(15):  # 75 sign-ins: above the old 60 submissions a minute, and 50 failures per IP
        person = people[round_ % 5]
        for person in people:
            flow = await flow_token(served, person.email)
            done = await served.post(
                f"{API}/login-password", json={"password": PASSWORD}, headers=bearer(flow)
            )
            assert done.status_code == 200, (round_, done.text)


async def test_strangers_cannot_lock_a_confidential_client_out(asgi_app: FastAPI, runtime: Runtime) -> None:
    app = await make_app(runtime, grant_types=["client_credentials"], scope="openid")
    form = {"grant_type": "client_credentials"}
    for n in range(25):  # 25 addresses, each with a wrong secret
        async with from_ip(asgi_app, f"203.0.113.{n + 1}") as stranger:
            refused = await stranger.post("/oauth2/token", data=form, auth=(app.client_id, "wrong secret"))
            assert refused.status_code == 401
    async with from_ip(asgi_app, "198.51.100.7") as owner:
        granted = await owner.post("/oauth2/token", data=form, auth=app.basic())
        assert granted.status_code == 200, granted.text
    # One address that keeps failing is limited for that client, and only there.
    async with from_ip(asgi_app, "203.0.113.200") as guesser:
        statuses = [
            (await guesser.post("/oauth2/token", data=form, auth=(app.client_id, "wrong"))).status_code
            for _ in range(21)
        ]
        assert statuses[:20] == [401] * 20 and statuses[20] == 429
        assert (await guesser.post("/oauth2/token", data=form, auth=app.basic())).status_code == 429
    async with from_ip(asgi_app, "198.51.100.7") as owner:
        assert (await owner.post("/oauth2/token", data=form, auth=app.basic())).status_code == 200


async def test_a_strangers_code_sends_never_use_up_the_owners(asgi_app: FastAPI, mailbox: Mailbox) -> None:
    owner_address = "owner@example.com"
    async with from_ip(asgi_app, "203.0.113.9") as stranger:
        statuses = []
        for _ in range(6):
            answer = await stranger.post(f"{API}/submit-identifier", json={"identifier": owner_address})
            statuses.append(answer.status_code)
        assert statuses[0] == 200 and 429 in statuses  # the stranger's address is limited
    async with from_ip(asgi_app, "198.51.100.20") as owner:
        started = await owner.post(f"{API}/submit-identifier", json={"identifier": owner_address})
        assert started.status_code == 200, started.text
        assert started.json()["next"] == "verify"
        code = mailbox.last_code(owner_address)
        verified = await owner.post(
            f"{API}/verify-identifier", json={"code": code}, headers=bearer(started.json()["flow_token"])
        )
        assert verified.json()["next"] == "set_password"


async def test_bulk_registration_is_for_administrators_only(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    body: dict[str, Any] = {"users": [{"email": "bulk@example.com", "password": PASSWORD, "consent": True}]}
    assert (await http.post(f"{API}/register-async-bulk", json=body)).status_code == 401
    someone = await make_person(runtime)
    refused = await http.post(f"{API}/register-async-bulk", json=body, headers=someone.headers)
    assert refused.status_code == 403
    admin = await make_person(runtime, is_admin=True)
    accepted = await http.post(f"{API}/register-async-bulk", json=body, headers=admin.headers)
    assert accepted.status_code == 202 and accepted.json()["count"] == 1


async def test_registrations_are_limited_per_address(asgi_app: FastAPI) -> None:
    async with from_ip(asgi_app, "203.0.113.50") as client:
        statuses = []
        for n in range(31):
            body = {"email": f"r{n}@example.com", "password": PASSWORD, "consent": True}
            statuses.append((await client.post(f"{API}/register-sync", json=body)).status_code)
        queued = await client.post(
            f"{API}/register-async", json={"email": "q@example.com", "password": PASSWORD, "consent": True}
        )
    assert statuses[:30] == [201] * 30 and statuses[30] == 429
    assert queued.status_code == 429 and "retry-after" in queued.headers
    async with from_ip(asgi_app, "198.51.100.50") as other:
        body = {"email": "other@example.com", "password": PASSWORD, "consent": True}
        assert (await other.post(f"{API}/register-sync", json=body)).status_code == 201


async def test_a_flood_of_registrations_is_answered_503_and_never_starves_sign_in(
    database_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    from consentry.http.app import create_app
    from tests.http.conftest import serve

    settings = make_settings(
        database_url, tmp_path, smtp_url=mailbox.url, rate_limit_registrations_per_ip="1000/minute"
    )
    runtime = Runtime.build(settings)
    try:
        person = await make_person(runtime)
        async with serve(create_app(settings, runtime=runtime), settings) as client:

            async def register(n: int) -> httpx.Response:
                body = {"email": f"flood{n}@example.com", "password": PASSWORD, "consent": True}
                return await client.post(f"{API}/register-sync", json=body)

            async def sign_in() -> int:
                flow = await flow_token(client, person.email)
                done = await client.post(
                    f"{API}/login-password", json={"password": PASSWORD}, headers=bearer(flow)
                )
                return done.status_code

            answers = await asyncio.gather(*(register(n) for n in range(40)), *(sign_in() for _ in range(5)))
    finally:
        await runtime.close()
    registrations = [answer for answer in answers[:40] if isinstance(answer, httpx.Response)]
    statuses = [answer.status_code for answer in registrations]
    assert set(statuses) == {201, 503}, statuses
    busy = [answer for answer in registrations if answer.status_code == 503]
    assert all(answer.headers.get("retry-after") == "1" for answer in busy)
    assert busy[0].json()["error"] == "temporarily_unavailable"
    assert answers[40:] == [200] * 5


@pytest.mark.parametrize("trusted", [None, "127.0.0.1"])
async def test_x_forwarded_for_is_believed_only_from_a_configured_proxy(
    database_url: str, tmp_path: Path, trusted: str | None
) -> None:
    from consentry.http.app import create_app
    from tests.http.conftest import serve

    settings = make_settings(database_url, tmp_path, forwarded_allow_ips=trusted)
    runtime = Runtime.build(settings)
    try:
        app = await make_app(runtime, grant_types=["client_credentials"], scope="openid")
        form = {"grant_type": "client_credentials"}
        async with serve(create_app(settings, runtime=runtime), settings) as client:
            statuses = [
                (
                    await client.post(
                        "/oauth2/token",
                        data=form,
                        auth=(app.client_id, "wrong"),
                        headers={"X-Forwarded-For": f"203.0.113.{n}"},
                    )
                ).status_code
                for n in range(1, 23)
            ]
    finally:
        await runtime.close()
    if trusted is None:  # every guess is the peer's: the 21st is refused, whatever the header says
        assert statuses[:20] == [401] * 20 and statuses[20:] == [429, 429]
    else:  # the proxy says each came from another address
        assert statuses == [401] * 22
