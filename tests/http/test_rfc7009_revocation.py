"""POST /oauth2/revoke (RFC 7009)."""

from __future__ import annotations

import httpx
import pytest

from consentry.runtime import Runtime
from tests.oauth import App, Person, make_app, tokens_for


async def active(http: httpx.AsyncClient, app: App, token: str) -> bool:
    return bool(
        (await http.post("/oauth2/introspect", data={"token": token}, auth=app.basic())).json()["active"]
    )


async def revoke(http: httpx.AsyncClient, app: App, token: str, **extra: str) -> httpx.Response:
    return await http.post("/oauth2/revoke", data={"token": token} | extra, auth=app.basic())


async def test_revoking_an_access_token_leaves_the_refresh_token(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    tokens = await tokens_for(http, runtime, app, person)
    response = await revoke(http, app, tokens["access_token"], token_type_hint="access_token")
    assert response.status_code == 200
    assert response.content == b""
    assert not await active(http, app, tokens["access_token"])
    assert await active(http, app, tokens["refresh_token"])


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token", "bogus"], ids=str)
async def test_revoking_a_refresh_token_revokes_its_grant(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person, hint: str | None
) -> None:
    tokens = await tokens_for(http, runtime, app, person)
    extra = {"token_type_hint": hint} if hint else {}
    assert (await revoke(http, app, tokens["refresh_token"], **extra)).status_code == 200
    assert not await active(http, app, tokens["refresh_token"])
    assert not await active(http, app, tokens["access_token"])


async def test_unknown_token_is_200(http: httpx.AsyncClient, app: App) -> None:
    assert (await revoke(http, app, "never-issued")).status_code == 200


async def test_another_clients_token_is_left_alone(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    other = await make_app(runtime)
    tokens = await tokens_for(http, runtime, app, person)
    assert (await revoke(http, other, tokens["access_token"])).status_code == 200
    assert await active(http, app, tokens["access_token"])


async def test_revocation_needs_client_authentication_and_a_token(http: httpx.AsyncClient, app: App) -> None:
    unauthenticated = await http.post("/oauth2/revoke", data={"token": "x"})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"] == "invalid_client"
    missing = await http.post("/oauth2/revoke", data={}, auth=app.basic())
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"


async def test_public_client_revokes_with_its_client_id(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    public = await make_app(runtime, token_endpoint_auth_method="none")
    tokens = await tokens_for(http, runtime, public, person)
    response = await http.post(
        "/oauth2/revoke", data={"token": tokens["refresh_token"], "client_id": public.client_id}
    )
    assert response.status_code == 200
    refreshed = await http.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": public.client_id,
            "refresh_token": tokens["refresh_token"],
        },
    )
    assert refreshed.json()["error"] == "invalid_grant"
