"""Sign-out that ends access across apps (SPEC §9): RP-Initiated Logout 1.0 through ``end_session_endpoint``,
driven by Authlib's client, and Back-Channel Logout 1.0 received by a real HTTP receiver on loopback."""

from __future__ import annotations

import urllib.parse

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import KeySet

from consentry.jobs.webhooks import WebhookDelivery
from consentry.runtime import Runtime, utcnow
from tests.authlib_flow import authlib_client, authlib_tokens
from tests.oauth import is_active, make_app, make_person, queued_logout_tokens, tokens_for
from tests.receiver import Receiver

ISSUER = "http://127.0.0.1:8000"
AFTER_LOGOUT = "http://127.0.0.1:9000/signed-out"
EVENT = "http://schemas.openid.net/event/backchannel-logout"


async def test_discovery_names_the_logout_endpoints(http: httpx.AsyncClient) -> None:
    metadata = (await http.get("/.well-known/openid-configuration")).json()
    assert metadata["end_session_endpoint"] == f"{ISSUER}/oauth2/logout"
    assert metadata["backchannel_logout_supported"] is True
    assert metadata["backchannel_logout_session_supported"] is True


async def test_rp_initiated_logout_with_authlib_ends_the_session_and_its_tokens(
    http: httpx.AsyncClient, runtime: Runtime, asgi_app: FastAPI
) -> None:
    app = await make_app(
        runtime, redirect_uris=["http://127.0.0.1:9000/cb"], post_logout_redirect_uris=[AFTER_LOGOUT]
    )
    person = await make_person(runtime)
    async with authlib_client(app, asgi_app, "openid profile") as client:
        token = await authlib_tokens(http, client, person)
        metadata = (await client.get(f"{ISSUER}/.well-known/openid-configuration")).json()
        logout_url = client.create_authorization_url(  # Authlib builds the query as it does any OAuth URL
            metadata["end_session_endpoint"],
            id_token_hint=token["id_token"],
            post_logout_redirect_uri=AFTER_LOGOUT,
            state="bye",
        )[0]

    signed_out = await http.get(logout_url, headers=person.headers)
    assert signed_out.status_code == 302
    assert signed_out.headers["location"] == f"{AFTER_LOGOUT}?state=bye"
    assert (await http.get("/api/v1/users/me", headers=person.headers)).status_code == 401
    assert not await is_active(http, app, token["access_token"])


async def test_without_a_hint_for_this_session_the_person_confirms(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    app = await make_app(runtime, post_logout_redirect_uris=[AFTER_LOGOUT])
    person = await make_person(runtime)
    query = {"client_id": app.client_id, "post_logout_redirect_uri": AFTER_LOGOUT, "state": "s1"}
    asked = await http.get("/oauth2/logout", params=query, headers=person.headers)
    assert asked.status_code == 200
    assert "Sign out?" in asked.text
    assert (await http.get("/api/v1/users/me", headers=person.headers)).status_code == 200  # nothing ended

    csrf = asked.text.split('name="csrf_token" value="')[1].split('"')[0]
    http.cookies.set("consentry_session", person.session_token)
    try:
        confirmed = await http.post("/oauth2/logout", data=query | {"confirm": "yes", "csrf_token": csrf})
    finally:
        http.cookies.clear()
    assert confirmed.status_code == 302
    assert confirmed.headers["location"] == f"{AFTER_LOGOUT}?state=s1"
    assert (await http.get("/api/v1/users/me", headers=person.headers)).status_code == 401


@pytest.mark.parametrize(
    "query",
    [
        {"post_logout_redirect_uri": "https://evil.example/phish"},  # no client to check it against
        {"client_id": "{app}", "post_logout_redirect_uri": "https://evil.example/phish"},  # not registered
        {"id_token_hint": "not-a-token"},
    ],
    ids=["redirect-without-client", "unregistered-redirect", "forged-hint"],
)
async def test_a_logout_request_that_does_not_check_out_ends_nothing(
    http: httpx.AsyncClient, runtime: Runtime, query: dict[str, str]
) -> None:
    app = await make_app(runtime, post_logout_redirect_uris=[AFTER_LOGOUT])
    person = await make_person(runtime)
    query = {key: value.replace("{app}", app.client_id) for key, value in query.items()}
    refused = await http.get("/oauth2/logout", params=query, headers=person.headers)
    assert refused.status_code == 400
    assert "location" not in refused.headers
    assert (await http.get("/api/v1/users/me", headers=person.headers)).status_code == 200


async def test_back_channel_logout_token_reaches_a_real_receiver_and_verifies(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    receiver = Receiver()
    app = await make_app(
        runtime, backchannel_logout_uri=receiver.url, backchannel_logout_session_required=True
    )
    bystander = await make_app(runtime)  # issued tokens, but registered no back-channel
    person = await make_person(runtime)
    await tokens_for(http, runtime, app, person, "openid profile")
    await tokens_for(http, runtime, bystander, person, "openid")

    assert (await http.post("/api/v1/auth/logout", headers=person.headers)).status_code == 204
    delivery = WebhookDelivery(runtime)
    try:
        await delivery.run_once(now=utcnow())
    finally:
        await delivery.aclose()
    receiver.wait_for(1)

    [received] = receiver.accepted()
    assert received.headers["content-type"] == "application/x-www-form-urlencoded"
    form = dict(urllib.parse.parse_qsl(received.body.decode()))
    keys = KeySet.import_key_set((await http.get("/oauth2/jwks")).json())
    token = jwt.decode(form["logout_token"], keys)
    assert token.header["typ"] == "logout+jwt"
    claims = token.claims
    assert (claims["iss"], claims["aud"]) == (ISSUER, app.client_id)
    assert claims["events"] == {EVENT: {}}
    assert claims["sid"] == str(person.session_id)
    assert claims["sub"] == str(person.user_id)
    assert "nonce" not in claims
    assert claims["exp"] > claims["iat"] and claims["jti"]


async def test_an_admins_bulk_soft_delete_tells_the_apps_by_back_channel(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    app = await make_app(runtime, backchannel_logout_uri="http://127.0.0.1:9/logout")
    person, other = await make_person(runtime), await make_person(runtime)
    admin = await make_person(runtime, is_admin=True)
    await tokens_for(http, runtime, app, person, "openid")
    await tokens_for(http, runtime, app, other, "openid")
    deleted = await http.post(
        "/api/v1/admin/users/bulk",
        json={"action": "soft_delete", "user_ids": [str(person.user_id), str(other.user_id)]},
        headers=admin.headers,
    )
    assert deleted.status_code == 200, deleted.text
    queued = await queued_logout_tokens(runtime)
    assert sorted(payload["sid"] for _, payload in queued) == sorted(
        [str(person.session_id), str(other.session_id)]
    )
    assert {payload["sub"] for _, payload in queued} == {str(person.user_id), str(other.user_id)}
    assert {client for client, _ in queued} == {app.client_id}


async def test_clients_register_logout_metadata_through_the_api(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    owner = await make_person(runtime)
    body = {
        "client_name": "Notes",
        "redirect_uris": ["https://notes.example/cb"],
        "post_logout_redirect_uris": ["https://notes.example/bye"],
        "backchannel_logout_uri": "https://notes.example/backchannel",
        "backchannel_logout_session_required": True,
    }
    created = await http.post("/api/v1/oauth2/clients", json=body, headers=owner.headers)
    assert created.status_code == 201, created.text
    client = created.json()["client"] if "client" in created.json() else created.json()
    assert client["post_logout_redirect_uris"] == ["https://notes.example/bye"]
    assert client["backchannel_logout_uri"] == "https://notes.example/backchannel"
    assert client["backchannel_logout_session_required"] is True
    wrong = body | {"post_logout_redirect_uris": ["https://notes.example/bye#x"]}
    refused = await http.post("/api/v1/oauth2/clients", json=wrong, headers=owner.headers)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_client_metadata"
