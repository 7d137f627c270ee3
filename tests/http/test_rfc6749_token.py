"""POST /oauth2/token (RFC 6749 §4.1.3, §4.4, §5, §6; RFC 7636 §4.6; RFC 9700 §4.14)."""

from __future__ import annotations

import base64
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from consentry.crypto.hashing import token_hash
from consentry.runtime import Runtime, utcnow
from consentry.storage.tables import AccessToken, AuditEvent, AuthorizationCode, Consent, RefreshToken
from tests.oauth import (
    App,
    Person,
    authorize_params,
    exchange_code,
    get_code,
    make_app,
    pkce_pair,
    tokens_for,
)


async def introspect(http: httpx.AsyncClient, app: App, token: str) -> bool:
    response = await http.post("/oauth2/introspect", data={"token": token}, auth=app.basic())
    return bool(response.json()["active"])


async def refresh(http: httpx.AsyncClient, app: App, token: str, **extra: str) -> httpx.Response:
    return await http.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": token} | extra,
        auth=app.basic(),
    )


def assert_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


# --- authorization_code -----------------------------------------------------------------------------


async def test_code_exchange_response(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    tokens = await tokens_for(http, runtime, app, person, scope="openid profile")
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["scope"] == "openid profile"
    assert len(tokens["access_token"]) >= 43 and len(tokens["refresh_token"]) >= 43
    async with runtime.database.read_only() as session:
        stored = await session.get(AccessToken, token_hash(tokens["access_token"]))
        raw = list(await session.scalars(select(AccessToken.token_hash)))
    assert stored is not None
    assert all(tokens["access_token"].encode() not in value for value in raw)  # only hashes are stored


async def test_code_replay_is_refused_and_revokes_what_the_code_issued(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    verifier, challenge = pkce_pair()
    code = await get_code(http, person, authorize_params(app, challenge=challenge))
    first = (await exchange_code(http, app, code, verifier)).json()
    assert await introspect(http, app, first["access_token"])
    replay = await exchange_code(http, app, code, verifier)
    assert_error(replay, 400, "invalid_grant")
    assert not await introspect(http, app, first["access_token"])
    assert_error(await refresh(http, app, first["refresh_token"]), 400, "invalid_grant")
    async with runtime.database.read_only() as session:
        reasons = [
            e.details
            for e in await session.scalars(select(AuditEvent).where(AuditEvent.event_type == "token_revoked"))
        ]
    assert any(details and details.get("reason") == "authorization_code_replay" for details in reasons)


async def test_code_of_another_client_is_invalid_grant(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    other = await make_app(runtime)
    code = await get_code(http, person, authorize_params(app))
    assert_error(await exchange_code(http, other, code), 400, "invalid_grant")
    assert (
        await exchange_code(http, app, code)
    ).status_code == 200  # the other client's attempt did not use it


async def test_redirect_uri_must_match_the_authorization_request(
    http: httpx.AsyncClient, app: App, person: Person
) -> None:
    code = await get_code(http, person, authorize_params(app))
    response = await exchange_code(http, app, code, redirect_uri="https://app.example.com/other")
    assert_error(response, 400, "invalid_grant")
    missing = await http.post(
        "/oauth2/token", data={"grant_type": "authorization_code", "code": code}, auth=app.basic()
    )
    assert_error(missing, 400, "invalid_grant")


async def test_expired_code_is_invalid_grant(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    code = await get_code(http, person, authorize_params(app))
    async with runtime.database.unit_of_work() as session:
        stored = await session.get(AuthorizationCode, token_hash(code))
        assert stored is not None
        stored.expires_at = utcnow() - timedelta(seconds=1)
    assert_error(await exchange_code(http, app, code), 400, "invalid_grant")


@pytest.mark.parametrize("code", ["", "not-a-code"], ids=["empty", "unknown"])
async def test_missing_or_unknown_code(http: httpx.AsyncClient, app: App, code: str) -> None:
    response = await exchange_code(http, app, code)
    assert_error(response, 400, "invalid_request" if not code else "invalid_grant")


# --- PKCE (RFC 7636) --------------------------------------------------------------------------------


@pytest.mark.parametrize("verifier", [None, "wrong" * 10], ids=["missing", "wrong"])
async def test_pkce_verifier_must_match(
    http: httpx.AsyncClient, app: App, person: Person, verifier: str | None
) -> None:
    _, challenge = pkce_pair()
    code = await get_code(http, person, authorize_params(app, challenge=challenge))
    assert_error(await exchange_code(http, app, code, verifier), 400, "invalid_grant")


async def test_verifier_without_challenge_is_refused(
    http: httpx.AsyncClient, app: App, person: Person
) -> None:
    code = await get_code(http, person, authorize_params(app))
    verifier, _ = pkce_pair()
    assert_error(await exchange_code(http, app, code, verifier), 400, "invalid_grant")


async def test_public_client_exchanges_with_pkce_and_no_secret(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    public = await make_app(runtime, token_endpoint_auth_method="none")
    tokens = await tokens_for(http, runtime, public, person)
    assert "access_token" in tokens
    secret_sent = await http.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": public.client_id,
            "client_secret": "guess",
            "refresh_token": tokens["refresh_token"],
        },
    )
    assert_error(secret_sent, 401, "invalid_client")


# --- client authentication (RFC 6749 §2.3) ----------------------------------------------------------


async def test_client_secret_post_works(http: httpx.AsyncClient, app: App, person: Person) -> None:
    code = await get_code(http, person, authorize_params(app))
    response = await http.post(
        "/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri}
        | app.credentials(),
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff:x").decode(),
    ],
    ids=["not-base64", "no-colon", "not-utf8"],
)
async def test_malformed_basic_credentials(http: httpx.AsyncClient, authorization: str) -> None:
    response = await http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, headers={"Authorization": authorization}
    )
    assert_error(response, 401, "invalid_client")


async def test_wrong_secret_is_401_with_www_authenticate(http: httpx.AsyncClient, app: App) -> None:
    response = await http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=httpx.BasicAuth(app.client_id, "wrong"),
    )
    assert_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")
    unknown = await http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=httpx.BasicAuth("nobody", "x")
    )
    assert unknown.json() == response.json()  # no oracle for which part was wrong


async def test_two_authentication_methods_at_once_are_refused(http: httpx.AsyncClient, app: App) -> None:
    response = await http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_secret": app.client_secret or ""},
        auth=app.basic(),
    )
    assert_error(response, 400, "invalid_request")


async def test_no_client_authentication(http: httpx.AsyncClient) -> None:
    assert_error(
        await http.post("/oauth2/token", data={"grant_type": "client_credentials"}), 401, "invalid_client"
    )


@pytest.mark.parametrize(
    ("content", "content_type", "error"),
    [
        (
            "grant_type=client_credentials&grant_type=client_credentials",
            "application/x-www-form-urlencoded",
            "invalid_request",
        ),
        ('{"grant_type": "client_credentials"}', "application/json", "invalid_request"),
        (
            "grant_type=client_credentials" + "&x=1" * 1000,
            "application/x-www-form-urlencoded",
            "invalid_request",
        ),
        ("grant_type=client%00credentials", "application/x-www-form-urlencoded", "invalid_request"),
    ],
    ids=["repeated-parameter", "json-body", "a-thousand-and-one-parameters", "nul"],
)
async def test_malformed_token_requests(
    http: httpx.AsyncClient, app: App, content: str, content_type: str, error: str
) -> None:
    response = await http.post(
        "/oauth2/token", content=content, headers={"Content-Type": content_type}, auth=app.basic()
    )
    assert_error(response, 400, error)


async def test_form_bodies_are_percent_and_plus_decoded(http: httpx.AsyncClient, runtime: Runtime) -> None:
    """RFC 6749 Appendix B: client credentials travel form-encoded; '+' is a space, %XX a UTF-8 byte."""
    machine = await make_app(runtime, grant_types=["client_credentials"], scope="profile email")
    assert machine.client_secret is not None
    encoded_secret = "".join(f"%{byte:02X}" for byte in machine.client_secret.encode())
    response = await http.post(
        "/oauth2/token",
        content=f"grant_type=client%5Fcredentials&scope=profile+email&client_id={machine.client_id}"
        f"&client_secret={encoded_secret}&ignored=%C3%A9%FF",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "email profile"


@pytest.mark.parametrize(
    ("grant_type", "error"),
    [("", "invalid_request"), ("password", "unsupported_grant_type"), ("urn:x", "unsupported_grant_type")],
    ids=["missing", "password", "urn"],
)
async def test_unsupported_grant_types(
    http: httpx.AsyncClient, app: App, grant_type: str, error: str
) -> None:
    response = await http.post("/oauth2/token", data={"grant_type": grant_type}, auth=app.basic())
    assert_error(response, 400, error)


# --- refresh_token (RFC 6749 §6, rotation per RFC 9700 §4.14.2) --------------------------------------


async def test_refresh_rotates_and_reuse_revokes_the_family(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    first = await tokens_for(http, runtime, app, person, scope="openid profile")
    second = (await refresh(http, app, first["refresh_token"])).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == "openid profile"
    assert "id_token" in second
    third = (await refresh(http, app, second["refresh_token"])).json()
    assert await introspect(http, app, third["access_token"])

    reuse = await refresh(http, app, first["refresh_token"])  # a stolen, already rotated token
    assert_error(reuse, 400, "invalid_grant")
    for token in (
        first["access_token"],
        second["access_token"],
        third["access_token"],
        third["refresh_token"],
    ):
        assert not await introspect(http, app, token)
    assert_error(await refresh(http, app, third["refresh_token"]), 400, "invalid_grant")
    async with runtime.database.read_only() as session:
        events = list(
            await session.scalars(select(AuditEvent.event_type).where(AuditEvent.user_id == person.user_id))
        )
    assert "refresh_token_reuse_detected" in events
    assert events.count("token_refreshed") == 2


async def test_refresh_may_narrow_but_not_widen(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    tokens = await tokens_for(http, runtime, app, person, scope="openid profile email")
    narrower = await refresh(http, app, tokens["refresh_token"], scope="email")
    assert narrower.status_code == 200
    assert narrower.json()["scope"] == "email"
    assert "id_token" not in narrower.json()
    # The new refresh token keeps the original grant's scope (RFC 6749 §6).
    back = await refresh(http, app, narrower.json()["refresh_token"], scope="openid profile email")
    assert back.status_code == 200
    wider = await refresh(http, app, back.json()["refresh_token"], scope="openid phone")
    assert_error(wider, 400, "invalid_scope")


async def test_refresh_token_of_another_client(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    other = await make_app(runtime)
    tokens = await tokens_for(http, runtime, app, person)
    assert_error(await refresh(http, other, tokens["refresh_token"]), 400, "invalid_grant")
    assert (await refresh(http, app, tokens["refresh_token"])).status_code == 200


async def test_refresh_stops_when_the_consent_ends(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    tokens = await tokens_for(http, runtime, app, person)
    async with runtime.database.unit_of_work() as session:
        consent = await session.scalar(select(Consent).where(Consent.user_id == person.user_id))
        assert consent is not None
        consent.expires_at = utcnow() - timedelta(seconds=1)
    assert_error(await refresh(http, app, tokens["refresh_token"]), 400, "invalid_grant")


async def test_a_code_issued_before_its_consent_was_revoked_is_refused(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    """The exchange needs the consent live (SPEC §6: revocation kills access at once)."""
    verifier, challenge = pkce_pair()
    code = await get_code(http, person, authorize_params(app, challenge=challenge))
    revoked = await http.delete(f"/api/v1/oauth2/consents/{app.client_id}", headers=person.headers)
    assert revoked.status_code == 204, revoked.text
    assert_error(await exchange_code(http, app, code, verifier), 400, "invalid_grant")
    async with runtime.database.read_only() as session:
        stored = await session.get(AuthorizationCode, token_hash(code))
        issued = list(await session.scalars(select(AccessToken).where(AccessToken.user_id == person.user_id)))
    assert stored is not None and stored.used_at is None  # refused, not consumed
    assert issued == []


async def test_refresh_after_revocation_issues_nothing(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    tokens = await tokens_for(http, runtime, app, person)
    await http.delete(f"/api/v1/oauth2/consents/{app.client_id}", headers=person.headers)
    assert_error(await refresh(http, app, tokens["refresh_token"]), 400, "invalid_grant")
    async with runtime.database.read_only() as session:
        live = await session.scalars(
            select(AccessToken).where(AccessToken.user_id == person.user_id, AccessToken.revoked_at.is_(None))
        )
        assert list(live) == []


async def test_expired_refresh_token(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    tokens = await tokens_for(http, runtime, app, person)
    async with runtime.database.unit_of_work() as session:
        stored = await session.get(RefreshToken, token_hash(tokens["refresh_token"]))
        assert stored is not None
        stored.expires_at = utcnow() - timedelta(seconds=1)
    assert_error(await refresh(http, app, tokens["refresh_token"]), 400, "invalid_grant")


async def test_refresh_updates_consent_last_used(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    tokens = await tokens_for(http, runtime, app, person)
    long_ago = utcnow() - timedelta(days=3)
    async with runtime.database.unit_of_work() as session:
        consent = await session.scalar(select(Consent).where(Consent.user_id == person.user_id))
        assert consent is not None
        consent.last_used_at = long_ago
    await refresh(http, app, tokens["refresh_token"])
    async with runtime.database.read_only() as session:
        consent = await session.scalar(select(Consent).where(Consent.user_id == person.user_id))
    assert consent is not None and consent.last_used_at is not None
    assert consent.last_used_at > long_ago + timedelta(days=2)


async def test_client_without_refresh_grant_gets_no_refresh_token(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    app = await make_app(runtime, grant_types=["authorization_code"])
    tokens = await tokens_for(http, runtime, app, person)
    assert "refresh_token" not in tokens


# --- client_credentials (RFC 6749 §4.4) -------------------------------------------------------------


async def test_client_credentials(http: httpx.AsyncClient, runtime: Runtime) -> None:
    machine = await make_app(runtime, scope="openid profile", grant_types=["client_credentials"])
    response = await http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=machine.basic()
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert "refresh_token" not in body and "id_token" not in body
    scoped = await http.post(
        "/oauth2/token", data={"grant_type": "client_credentials", "scope": "profile"}, auth=machine.basic()
    )
    assert scoped.json()["scope"] == "profile"
    assert_error(
        await http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials", "scope": "openid"},
            auth=machine.basic(),
        ),
        400,
        "invalid_scope",
    )


async def test_client_credentials_needs_the_grant(http: httpx.AsyncClient, app: App) -> None:
    response = await http.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=app.basic())
    assert_error(response, 400, "unauthorized_client")


async def test_failed_client_authentication_is_rate_limited(http: httpx.AsyncClient, app: App) -> None:
    for _ in range(20):
        response = await http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=httpx.BasicAuth(app.client_id, "wrong"),
        )
        assert response.status_code == 401
    limited = await http.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=app.basic())
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["retry-after"]) > 0
