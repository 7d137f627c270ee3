"""POST /oauth2/introspect (RFC 7662)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import httpx
import pytest

from consentry.crypto.hashing import new_secret, token_hash
from consentry.runtime import Runtime, utcnow
from consentry.storage.tables import AccessToken
from tests.oauth import App, Person, make_app, tokens_for


async def introspect(http: httpx.AsyncClient, caller: App, token: str, **extra: str) -> httpx.Response:
    return await http.post("/oauth2/introspect", data={"token": token} | extra, auth=caller.basic())


async def test_live_access_token(http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person) -> None:
    tokens = await tokens_for(http, runtime, app, person, scope="openid email")
    response = await introspect(http, app, tokens["access_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["active"] is True
    assert body["scope"] == "email openid"
    assert body["client_id"] == app.client_id
    assert body["token_type"] == "Bearer"
    assert body["sub"] == str(person.user_id)
    assert body["exp"] > body["iat"]
    assert body["iss"] == "http://127.0.0.1:8000"


async def test_refresh_token_is_introspectable(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    tokens = await tokens_for(http, runtime, app, person)
    body = (await introspect(http, app, tokens["refresh_token"], token_type_hint="refresh_token")).json()
    assert body["active"] is True
    assert body["token_type"] == "refresh_token"


@pytest.mark.parametrize(
    "token",
    ["", "x", "never-issued-token-value", "a" * 600, "é" * 51, "." * 51],
    ids=["empty", "short", "unknown", "huge", "token-length-non-ascii", "token-length-no-locator"],
)
async def test_anything_not_live_is_just_inactive(http: httpx.AsyncClient, app: App, token: str) -> None:
    response = await introspect(http, app, token)
    if token == "":
        assert response.status_code == 400
        return
    assert response.status_code == 200
    assert response.json() == {"active": False}


async def test_a_token_issued_before_locators_is_still_live(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    """Tokens were 43 characters, keyed by their SHA-256 alone; those still in the database keep working."""
    tokens = await tokens_for(http, runtime, app, person)
    legacy = new_secret()
    async with runtime.database.unit_of_work() as session:
        row = await session.get(AccessToken, token_hash(tokens["access_token"]))
        assert row is not None
        row.token_hash = hashlib.sha256(legacy.encode()).digest()
    body = (await introspect(http, app, legacy)).json()
    assert body["active"] is True
    assert body["sub"] == str(person.user_id)
    assert (await introspect(http, app, tokens["access_token"])).json() == {"active": False}


async def test_expired_and_revoked_tokens_are_inactive(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    tokens = await tokens_for(http, runtime, app, person)
    async with runtime.database.unit_of_work() as session:
        row = await session.get(AccessToken, token_hash(tokens["access_token"]))
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
    assert (await introspect(http, app, tokens["access_token"])).json() == {"active": False}
    await http.post("/oauth2/revoke", data={"token": tokens["refresh_token"]}, auth=app.basic())
    assert (await introspect(http, app, tokens["refresh_token"])).json() == {"active": False}


async def test_introspection_needs_a_confidential_client(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    tokens = await tokens_for(http, runtime, app, person)
    public = await make_app(runtime, token_endpoint_auth_method="none")
    response = await http.post(
        "/oauth2/introspect", data={"token": tokens["access_token"], "client_id": public.client_id}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    nobody = await http.post("/oauth2/introspect", data={"token": tokens["access_token"]})
    assert nobody.status_code == 401


async def test_sub_is_what_the_calling_client_sees(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    pairwise = await make_app(runtime, subject_type="pairwise")
    tokens = await tokens_for(http, runtime, pairwise, person)
    own = (await introspect(http, pairwise, tokens["access_token"])).json()["sub"]
    assert own != str(person.user_id)
    id_token_sub = runtime.keys.verify(tokens["id_token"])["sub"]
    assert own == id_token_sub


async def test_a_client_sees_only_its_own_tokens(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    """SPEC §7: a client introspects its own tokens; another client's are inactive to it, as unknown ones."""
    app = await make_app(runtime)
    other = await make_app(runtime, redirect_uris=["https://api.example.org/cb"])
    tokens = await tokens_for(http, runtime, app, person, scope="openid offline_access")
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert (await introspect(http, other, token)).json() == {"active": False}
        assert (await introspect(http, app, token)).json()["active"] is True
