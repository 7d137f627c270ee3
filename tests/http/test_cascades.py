"""Deleting a client or an account kills exactly its tokens (others live on), and keeps the history."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from consentry.runtime import Runtime
from consentry.storage.tables import Client, Consent, ConsentHistory, User
from tests.oauth import App, authorize_params, make_app, make_person, tokens_for


async def active(http: httpx.AsyncClient, app: App, token: str) -> bool:
    return bool(
        (await http.post("/oauth2/introspect", data={"token": token}, auth=app.basic())).json()["active"]
    )


async def test_deleting_a_client_revokes_its_consents_and_tokens_only(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    owner = await make_person(runtime)
    doomed, other = await make_app(runtime), await make_app(runtime)
    async with runtime.database.unit_of_work() as session:
        client = await session.get(Client, doomed.client_id)
        assert client is not None
        client.owner_id = owner.user_id
    alice, bob = await make_person(runtime), await make_person(runtime)
    alice_doomed = await tokens_for(http, runtime, doomed, alice)
    bob_doomed = await tokens_for(http, runtime, doomed, bob)
    alice_other = await tokens_for(http, runtime, other, alice)

    stranger = await make_person(runtime)
    refused = await http.delete(f"/api/v1/oauth2/clients/{doomed.client_id}", headers=stranger.headers)
    assert refused.status_code == 404
    response = await http.delete(f"/api/v1/oauth2/clients/{doomed.client_id}", headers=owner.headers)
    assert response.status_code == 204

    client_credentials = await http.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": alice_doomed["refresh_token"]},
        auth=doomed.basic(),
    )
    assert client_credentials.status_code == 401  # the client itself no longer exists
    for tokens in (alice_doomed, bob_doomed):
        assert not await active(http, other, tokens["access_token"])
        userinfo = await http.get(
            "/oauth2/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert userinfo.status_code == 401
    assert await active(http, other, alice_other["access_token"])
    assert await active(http, other, alice_other["refresh_token"])
    authorize = await http.get("/oauth2/authorize", params=authorize_params(doomed), headers=alice.headers)
    assert authorize.status_code == 400  # unknown client: never redirected
    async with runtime.database.read_only() as session:
        statuses = set(
            await session.scalars(select(Consent.status).where(Consent.client_id == doomed.client_id))
        )
        actions = list(
            await session.scalars(
                select(ConsentHistory.action).where(
                    ConsentHistory.client_id == doomed.client_id, ConsentHistory.action == "revoked"
                )
            )
        )
    assert statuses == {"revoked"}
    assert len(actions) == 2
    assert (
        await http.delete(f"/api/v1/oauth2/clients/{doomed.client_id}", headers=owner.headers)
    ).status_code == 404


async def test_admin_can_delete_any_client(http: httpx.AsyncClient, runtime: Runtime) -> None:
    admin, app = await make_person(runtime, is_admin=True), await make_app(runtime)
    assert (
        await http.delete(f"/api/v1/oauth2/clients/{app.client_id}", headers=admin.headers)
    ).status_code == 204


async def test_deleting_an_account_revokes_its_grants_only(http: httpx.AsyncClient, runtime: Runtime) -> None:
    app, other_app = await make_app(runtime), await make_app(runtime)
    leaving, staying = await make_person(runtime), await make_person(runtime)
    leaving_tokens = [
        await tokens_for(http, runtime, app, leaving),
        await tokens_for(http, runtime, other_app, leaving),
    ]
    staying_tokens = await tokens_for(http, runtime, app, staying)

    response = await http.delete("/api/v1/users/me", headers=leaving.headers)
    assert response.status_code == 200
    assert response.json()["status"] == "deleted" and response.json()["purge_after"]

    for tokens, client in zip(leaving_tokens, (app, other_app), strict=True):
        assert not await active(http, client, tokens["access_token"])
        assert not await active(http, client, tokens["refresh_token"])
    assert await active(http, app, staying_tokens["access_token"])
    assert (
        await http.get("/api/v1/oauth2/consents", headers=leaving.headers)
    ).status_code == 401  # session ended
    signin = await http.post("/api/v1/auth/submit-identifier", json={"identifier": leaving.email})
    assert signin.json()["next"] == "verify"  # the account no longer signs in with its password
    async with runtime.database.read_only() as session:
        user = await session.get(User, leaving.user_id)
        statuses = set(
            await session.scalars(select(Consent.status).where(Consent.user_id == leaving.user_id))
        )
    assert user is not None and user.status == "deleted" and user.purge_after is not None
    assert statuses == {"revoked"}
