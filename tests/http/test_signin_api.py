"""Identifier-first sign-in (SPEC §3): every step and every refusal, with codes read from real receivers."""

from __future__ import annotations

import asyncio
import os
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from consentry.crypto.hashing import PasswordHasher
from consentry.domain.accounts import UserStatus
from consentry.runtime import Runtime, utcnow
from consentry.settings import Settings
from consentry.storage.tables import AuditEvent, ConsentHistory, SigninFlow, User
from tests.conftest import make_settings
from tests.mail import Mailbox, SmsGateway
from tests.oauth import PASSWORD, approve, authorize_params, make_app, make_person, query_of

API = "/api/v1/auth"


@pytest.fixture
def settings(database_url: str, tmp_path: Path, mailbox: Mailbox, sms: SmsGateway) -> Settings:
    return make_settings(
        database_url,
        tmp_path,
        smtp_url=mailbox.url,
        sms_gateway_url=sms.url,
        sms_gateway_token="gateway-token",
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def submit(http: httpx.AsyncClient, identifier: str, **extra: Any) -> httpx.Response:
    return await http.post(f"{API}/submit-identifier", json={"identifier": identifier} | extra)


async def sign_up(http: httpx.AsyncClient, mailbox: Mailbox, email: str, **extra: Any) -> httpx.Response:
    started = (await submit(http, email, **extra)).json()
    assert started["next"] == "verify"
    verified = (
        await http.post(
            f"{API}/verify-identifier",
            json={"code": mailbox.last_code(email)},
            headers=bearer(started["flow_token"]),
        )
    ).json()
    assert verified["next"] == "set_password"
    return await http.post(
        f"{API}/set-password",
        json={"password": PASSWORD, "consent": True} | extra,
        headers=bearer(verified["flow_token"]),
    )


async def test_sign_up_with_email(http: httpx.AsyncClient, runtime: Runtime, mailbox: Mailbox) -> None:
    started = await submit(http, "New.Person@Example.com")
    assert started.status_code == 200
    body = started.json()
    assert (body["next"], body["identifier_type"]) == ("verify", "email")
    code = mailbox.last_code("new.person@example.com")
    verified = await http.post(
        f"{API}/verify-identifier", json={"code": code}, headers=bearer(body["flow_token"])
    )
    assert verified.json()["next"] == "set_password"
    done = await http.post(
        f"{API}/set-password",
        json={"password": PASSWORD, "consent": True},
        headers=bearer(verified.json()["flow_token"]),
    )
    assert done.status_code == 200, done.text
    result = done.json()
    assert set(result) == {"user_id", "session_token", "expires_at"}
    cookie = done.headers["set-cookie"]
    assert cookie.startswith("consentry_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    async with runtime.database.read_only() as session:
        user = await session.scalar(select(User).where(User.email == "new.person@example.com"))
        terms = await session.scalar(select(ConsentHistory).where(ConsentHistory.action == "terms_accepted"))
    assert user is not None and user.email_verified
    assert terms is not None and terms.user_id == user.id
    me = await http.get(
        "/oauth2/authorize", params={"client_id": "x"}, headers=bearer(result["session_token"])
    )
    assert me.status_code == 400  # signed in: the request fails on the client, not on the session


async def test_sign_up_requires_accepting_the_terms(http: httpx.AsyncClient, mailbox: Mailbox) -> None:
    started = (await submit(http, "terms@example.com")).json()
    verified = (
        await http.post(
            f"{API}/verify-identifier",
            json={"code": mailbox.last_code("terms@example.com")},
            headers=bearer(started["flow_token"]),
        )
    ).json()
    refused = await http.post(
        f"{API}/set-password",
        json={"password": PASSWORD, "consent": False},
        headers=bearer(verified["flow_token"]),
    )
    assert refused.status_code == 400
    weak = await http.post(
        f"{API}/set-password",
        json={"password": "short", "consent": True},
        headers=bearer(verified["flow_token"]),
    )
    assert weak.status_code == 400


async def test_sign_up_with_phone_over_the_sms_gateway(http: httpx.AsyncClient, sms: SmsGateway) -> None:
    started = (await submit(http, "+44 20 7946 0958")).json()
    assert started["identifier_type"] == "phone"
    assert sms.authorization[-1] == "Bearer gateway-token"
    code = sms.last_code("+442079460958")
    verified = (
        await http.post(
            f"{API}/verify-identifier", json={"code": code}, headers=bearer(started["flow_token"])
        )
    ).json()
    done = await http.post(
        f"{API}/set-password",
        json={"password": PASSWORD, "consent": True},
        headers=bearer(verified["flow_token"]),
    )
    assert done.status_code == 200


@pytest.mark.parametrize(
    ("content", "content_type", "said"),
    [
        (b"{not json", "application/json", "JSON"),
        (b'{"password": "x"}', "text/plain", "application/json"),
        (b"{}", "application/json", "password: Field required"),
        (b'{"password": 5}', "application/json", "password: Input should be a valid string"),
        (b'{"password": "' + b"x" * 1025 + b'"}', "application/json", "password: String should have at most"),
        (b'{"password": "a\\u0000b"}', "application/vnd.api+json", "NUL"),
        (b'["password"]', None, "body"),
    ],
    ids=["malformed", "not-json", "missing", "wrong-type", "too-long", "nul", "not-an-object"],
)
async def test_login_password_refuses_bad_bodies_as_invalid_request(
    http: httpx.AsyncClient, runtime: Runtime, content: bytes, content_type: str | None, said: str
) -> None:
    """The body is read by the endpoint itself (it is on the hot path), with FastAPI's rules and answers."""
    person = await make_person(runtime)
    flow = (await submit(http, person.email)).json()["flow_token"]
    headers = bearer(flow) | ({"Content-Type": content_type} if content_type else {})
    response = await http.post(f"{API}/login-password", content=content, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert said in response.json()["error_description"]
    # The flow is untouched: the right password still signs in.
    done = await http.post(f"{API}/login-password", json={"password": PASSWORD}, headers=bearer(flow))
    assert done.status_code == 200


async def test_login_password_is_answered_on_the_hot_path_and_documented(
    http: httpx.AsyncClient, asgi_app: Any
) -> None:
    assert ("POST", f"{API}/login-password") in asgi_app.hot_path.routes
    spec = (await http.get("/openapi.json")).json()
    body = spec["paths"][f"{API}/login-password"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema["required"] == ["password"] and "oauth2_context" in schema["properties"]
    refs = _refs(spec)
    assert "#/components/schemas/OAuth2Context" in refs
    for ref in refs:
        assert ref.removeprefix("#/components/schemas/") in spec["components"]["schemas"], ref
    other = await http.get(f"{API}/login-password")
    assert other.status_code == 405


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


async def test_existing_account_signs_in_with_password(
    http: httpx.AsyncClient, runtime: Runtime, mailbox: Mailbox
) -> None:
    person = await make_person(runtime)
    started = (await submit(http, person.email)).json()
    assert started["next"] == "password"
    assert mailbox.count(person.email) == 0  # no code for a verified account
    done = await http.post(
        f"{API}/login-password", json={"password": PASSWORD}, headers=bearer(started["flow_token"])
    )
    assert done.status_code == 200
    assert done.json()["user_id"] == str(person.user_id)
    async with runtime.database.read_only() as session:
        events = list(
            await session.scalars(select(AuditEvent.event_type).where(AuditEvent.user_id == person.user_id))
        )
    assert "login_succeeded" in events


async def test_unverified_account_verifies_then_sets_a_new_password(
    http: httpx.AsyncClient, runtime: Runtime, mailbox: Mailbox
) -> None:
    """SPEC §3: a password set before anyone proved the identifier is not kept (account pre-hijacking)."""
    person = await make_person(runtime)
    async with runtime.database.unit_of_work() as session:
        user = await session.get(User, person.user_id)
        assert user is not None
        user.email_verified = False
    started = (await submit(http, person.email)).json()
    assert started["next"] == "verify"
    verified = (
        await http.post(
            f"{API}/verify-identifier",
            json={"code": mailbox.last_code(person.email)},
            headers=bearer(started["flow_token"]),
        )
    ).json()
    assert verified["next"] == "set_password"
    done = await http.post(
        f"{API}/set-password",
        json={"password": PASSWORD, "consent": True},
        headers=bearer(verified["flow_token"]),
    )
    assert done.status_code == 200
    assert done.json()["user_id"] == str(person.user_id)


async def test_wrong_codes_then_the_flow_dies(http: httpx.AsyncClient, mailbox: Mailbox) -> None:
    flow = (await submit(http, "wrong@example.com")).json()["flow_token"]
    right = mailbox.last_code("wrong@example.com")
    wrong = "000000" if right != "000000" else "111111"
    for attempt in range(1, 6):
        response = await http.post(f"{API}/verify-identifier", json={"code": wrong}, headers=bearer(flow))
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_code"
        if attempt < 5:
            assert f"{5 - attempt} tries left" in response.json()["error_description"]
    sixth = await http.post(f"{API}/verify-identifier", json={"code": right}, headers=bearer(flow))
    assert sixth.status_code == 401
    assert sixth.json()["error"] == "invalid_flow"


@pytest.mark.parametrize(
    "code", ["12345", "abcdef", "1234567", " "], ids=["short", "letters", "long", "blank"]
)
async def test_malformed_codes_count_as_wrong(http: httpx.AsyncClient, mailbox: Mailbox, code: str) -> None:
    flow = (await submit(http, "malformed@example.com")).json()["flow_token"]
    response = await http.post(f"{API}/verify-identifier", json={"code": code}, headers=bearer(flow))
    assert response.json()["error"] == "invalid_code"


async def test_expired_code(http: httpx.AsyncClient, runtime: Runtime, mailbox: Mailbox) -> None:
    flow = (await submit(http, "late@example.com")).json()["flow_token"]
    async with runtime.database.unit_of_work() as session:
        row = await session.scalar(select(SigninFlow).where(SigninFlow.identifier == "late@example.com"))
        assert row is not None
        row.code_expires_at = utcnow() - timedelta(seconds=1)
    response = await http.post(
        f"{API}/verify-identifier", json={"code": mailbox.last_code("late@example.com")}, headers=bearer(flow)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "expired_code"


async def test_flow_tokens_work_only_at_their_own_step(
    http: httpx.AsyncClient, runtime: Runtime, mailbox: Mailbox
) -> None:
    first = (await submit(http, "steps@example.com")).json()["flow_token"]
    skip = await http.post(
        f"{API}/set-password", json={"password": PASSWORD, "consent": True}, headers=bearer(first)
    )
    assert (skip.status_code, skip.json()["error"]) == (401, "invalid_flow")
    second = (
        await http.post(
            f"{API}/verify-identifier",
            json={"code": mailbox.last_code("steps@example.com")},
            headers=bearer(first),
        )
    ).json()["flow_token"]
    replay = await http.post(
        f"{API}/verify-identifier",
        json={"code": mailbox.last_code("steps@example.com")},
        headers=bearer(first),
    )
    assert replay.json()["error"] == "invalid_flow"
    done = await http.post(
        f"{API}/set-password", json={"password": PASSWORD, "consent": True}, headers=bearer(second)
    )
    assert done.status_code == 200
    again = await http.post(
        f"{API}/set-password", json={"password": PASSWORD, "consent": True}, headers=bearer(second)
    )
    assert again.json()["error"] == "invalid_flow"
    for token in ("", "garbage", first[:-3] + "abc"):
        forged = await http.post(f"{API}/verify-identifier", json={"code": "123456"}, headers=bearer(token))
        assert forged.status_code == 401


async def test_oauth2_context_completes_with_a_code_or_consent_info(
    http: httpx.AsyncClient, runtime: Runtime, mailbox: Mailbox
) -> None:
    app = await make_app(runtime)
    person = await make_person(runtime)
    params = authorize_params(app, scope="openid email", state="ctx-1")
    context = {key: params[key] for key in ("client_id", "redirect_uri", "scope", "state")}
    flow = (await submit(http, person.email, oauth2_context=context)).json()["flow_token"]
    done = (
        await http.post(
            f"{API}/login-password",
            json={"password": PASSWORD, "oauth2_context": context},
            headers=bearer(flow),
        )
    ).json()
    assert done["requires_consent"] is True
    assert done["consent_info"]["client"]["id"] == app.client_id
    assert done["consent_info"]["new_scopes"] == ["email", "openid"]
    await approve(http, person, params)
    flow = (await submit(http, person.email, oauth2_context=context)).json()["flow_token"]
    second = (
        await http.post(f"{API}/login-password", json={"password": PASSWORD}, headers=bearer(flow))
    ).json()
    assert "requires_consent" not in second
    query = query_of(second["redirect_url"])
    assert query["state"] == "ctx-1" and "code" in query


async def test_tampered_oauth2_context_is_refused(http: httpx.AsyncClient, runtime: Runtime) -> None:
    app = await make_app(runtime)
    person = await make_person(runtime)
    context = {"client_id": app.client_id, "redirect_uri": app.redirect_uri, "scope": "openid"}
    bad = await submit(
        http, person.email, oauth2_context=context | {"redirect_uri": "https://evil.example.com/cb"}
    )
    assert bad.status_code == 400
    flow = (await submit(http, person.email, oauth2_context=context)).json()["flow_token"]
    tampered = await http.post(
        f"{API}/login-password",
        headers=bearer(flow),
        json={
            "password": PASSWORD,
            "oauth2_context": context | {"redirect_uri": "https://evil.example.com/cb"},
        },
    )
    assert tampered.status_code == 400
    assert "oauth2_context" in tampered.json()["error_description"]


async def test_unknown_account_and_wrong_password_look_the_same(
    http: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    present = await make_person(runtime)
    vanished = await make_person(runtime)
    flows = {}
    for person in (present, vanished):
        flows[person.email] = (await submit(http, person.email)).json()["flow_token"]
    async with runtime.database.unit_of_work() as session:
        user = await session.get(User, vanished.user_id)
        assert user is not None
        user.status = UserStatus.DELETED
    verifications: list[str] = []
    original = PasswordHasher.verify

    def counting(self: PasswordHasher, stored: str, password: str) -> bool:
        verifications.append(stored)
        return original(self, stored, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    wrong = await http.post(
        f"{API}/login-password", json={"password": "not the password"}, headers=bearer(flows[present.email])
    )
    unknown = await http.post(
        f"{API}/login-password", json={"password": PASSWORD}, headers=bearer(flows[vanished.email])
    )
    assert (wrong.status_code, wrong.json()) == (unknown.status_code, unknown.json())
    assert wrong.status_code == 401
    assert len(verifications) == 2  # one argon2 verification each: the same work either way
    async with runtime.database.read_only() as session:
        reasons = [
            e.details["reason"]
            for e in await session.scalars(select(AuditEvent).where(AuditEvent.event_type == "login_failed"))
            if e.details
        ]
    assert sorted(reasons) == ["unknown_account", "wrong_password"]


async def test_failed_passwords_are_rate_limited_and_successes_do_not_count(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    person = await make_person(runtime)
    flow = (await submit(http, person.email)).json()["flow_token"]
    for _ in range(9):
        assert (
            await http.post(f"{API}/login-password", json={"password": "nope nope"}, headers=bearer(flow))
        ).status_code == 401
    ok = await http.post(f"{API}/login-password", json={"password": PASSWORD}, headers=bearer(flow))
    assert ok.status_code == 200
    flow = (await submit(http, person.email)).json()["flow_token"]
    assert (
        await http.post(f"{API}/login-password", json={"password": "nope nope"}, headers=bearer(flow))
    ).status_code == 401  # the 10th failure
    limited = await http.post(f"{API}/login-password", json={"password": PASSWORD}, headers=bearer(flow))
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert int(limited.headers["retry-after"]) > 0


async def test_resending_a_code_is_throttled(http: httpx.AsyncClient, mailbox: Mailbox) -> None:
    flow = (await submit(http, "resend@example.com")).json()["flow_token"]
    response = await http.post(f"{API}/resend-code", headers=bearer(flow))
    assert response.status_code == 429
    assert mailbox.count("resend@example.com") == 1


async def test_password_reset_ends_sessions_and_refuses_reuse(
    http: httpx.AsyncClient, runtime: Runtime, mailbox: Mailbox
) -> None:
    person = await make_person(runtime)
    started = (await submit(http, person.email, reset=True)).json()
    assert started["next"] == "verify"
    verified = (
        await http.post(
            f"{API}/verify-identifier",
            json={"code": mailbox.last_code(person.email)},
            headers=bearer(started["flow_token"]),
        )
    ).json()
    assert verified["next"] == "set_password"
    reused = await http.post(
        f"{API}/set-password", json={"password": PASSWORD}, headers=bearer(verified["flow_token"])
    )
    assert (reused.status_code, reused.json()["error"]) == (400, "password_reused")
    done = await http.post(
        f"{API}/set-password",
        json={"password": "a brand new passphrase"},
        headers=bearer(verified["flow_token"]),
    )
    assert done.status_code == 200, done.text
    old_session = await http.get(
        "/oauth2/authorize", params={"client_id": "x", "redirect_uri": "y"}, headers=person.headers
    )
    assert old_session.status_code == 400  # the request is bad, but we only care that...
    app = await make_app(runtime)
    ended = await http.get("/oauth2/authorize", params=authorize_params(app), headers=person.headers)
    assert ended.headers["location"].startswith("/login?")  # ...the old session no longer signs in


async def test_delivery_failure_is_a_clear_503(http: httpx.AsyncClient, mailbox: Mailbox) -> None:
    mailbox.stop()
    response = await submit(http, "nobody-listens@example.com")
    assert response.status_code == 503
    assert response.json()["error"] == "delivery_failed"


@pytest.mark.parametrize("identifier", ["", "not an email", "+1", "4155552671", "a@b@c"], ids=repr)
async def test_invalid_identifiers(http: httpx.AsyncClient, identifier: str) -> None:
    response = await submit(http, identifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_logout_ends_the_session(http: httpx.AsyncClient, runtime: Runtime) -> None:
    person = await make_person(runtime)
    app = await make_app(runtime)
    cookie_only = await http.post(
        f"{API}/logout",
        headers={
            "Cookie": f"consentry_session={person.session_token}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert cookie_only.status_code == 401  # a cross-site form cannot log people out
    response = await http.post(f"{API}/logout", headers=person.headers)
    assert response.status_code == 204
    after = await http.get("/oauth2/authorize", params=authorize_params(app), headers=person.headers)
    assert after.headers["location"].startswith("/login?")
    assert (await http.post(f"{API}/logout", headers=person.headers)).status_code == 401


async def test_the_password_hash_runs_off_the_event_loop(
    http: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While argon2 works on a sign-in, the server keeps answering everyone else."""
    person = await make_person(runtime)
    release = threading.Event()
    real_verify = runtime.passwords.verify

    def held_verify(stored_hash: str, password: str) -> bool:
        assert release.wait(timeout=10), "the test never released the hash"
        return real_verify(stored_hash, password)

    monkeypatch.setattr(runtime.passwords, "verify", held_verify)
    flow = (await submit(http, person.email)).json()
    login = asyncio.create_task(
        http.post(f"{API}/login-password", json={"password": PASSWORD}, headers=bearer(flow["flow_token"]))
    )
    health = await asyncio.wait_for(
        http.get("/healthz"), timeout=5
    )  # blocked forever if the hash were on-loop
    assert health.status_code == 200
    assert not login.done()
    release.set()
    response = await login
    assert response.status_code == 200, response.text
    assert "session_token" in response.json()


async def test_a_sign_in_whose_client_leaves_while_its_hash_waits_is_dropped(
    http: httpx.AsyncClient, asgi_app: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients that give up (overload, timeouts) cost no argon2id: a sign-in whose connection closes while its
    hash is queued is dropped unanswered, nothing is written for it, and the edge counts it as a 499."""
    person = await make_person(runtime)
    threads = len(os.sched_getaffinity(0))  # one hashing thread per usable CPU, each held by a sign-in
    all_hashing, release = threading.Barrier(threads + 1), threading.Event()
    hashed: list[str] = []
    real_verify = runtime.passwords.verify

    def held_verify(stored_hash: str, password: str) -> bool:
        hashed.append(password)
        all_hashing.wait(timeout=10)
        assert release.wait(timeout=10), "the test never released the hash"
        return real_verify(stored_hash, password)

    monkeypatch.setattr(runtime.passwords, "verify", held_verify)
    stay = [(await submit(http, person.email)).json()["flow_token"] for _ in range(threads)]
    leaves = (await submit(http, person.email)).json()["flow_token"]
    staying = [
        asyncio.create_task(
            http.post(f"{API}/login-password", json={"password": PASSWORD}, headers=bearer(flow))
        )
        for flow in stay
    ]
    await asyncio.to_thread(all_hashing.wait, 10)

    queued = asyncio.Event()
    real_verify_off_loop = runtime.passwords.verify_off_loop

    async def noted(stored_hash: str, password: str) -> bool:
        queued.set()  # the job is queued before this task next yields
        return await real_verify_off_loop(stored_hash, password)

    monkeypatch.setattr(runtime.passwords, "verify_off_loop", noted)
    body = b'{"password": "a guess never hashed"}'
    client_left, sent = asyncio.Event(), []

    async def receive() -> dict[str, Any]:
        if not sent:
            sent.append("body")
            return {"type": "http.request", "body": body, "more_body": False}
        await client_left.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"{API}/login-password",
        "raw_path": f"{API}/login-password".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {leaves}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    leaving = asyncio.create_task(asgi_app(scope, receive, send))
    await asyncio.wait_for(queued.wait(), timeout=10)
    client_left.set()
    await asyncio.wait_for(leaving, timeout=10)
    assert sent == ["body"]  # no response started: nobody to answer

    release.set()
    assert [response.status_code for response in await asyncio.gather(*staying)] == [200] * threads
    assert hashed == [PASSWORD] * threads  # the leaver's guess was never hashed
    async with runtime.database.read_only() as session:
        events = list(
            await session.scalars(select(AuditEvent.event_type).where(AuditEvent.user_id == person.user_id))
        )
    assert events.count("login_succeeded") == threads and "login_failed" not in events
    counted = f'consentry_http_requests_total{{method="POST",route="{API}/login-password",status="499"}} 1.0'
    assert counted in (await http.get("/metrics")).text
    # The flow it left is untouched: the same client, back, still signs in with it.
    monkeypatch.undo()
    back = await http.post(f"{API}/login-password", json={"password": PASSWORD}, headers=bearer(leaves))
    assert back.status_code == 200, back.text
