"""A real OAuth client library, not our code, runs the whole flow: Authlib's httpx OAuth2Client.

Authlib builds the authorization URL with PKCE, the person signs in and approves, then Authlib fetches,
refreshes and revokes tokens; the ID token is verified with joserfc against the JWKS endpoint.
"""

from __future__ import annotations

import warnings

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import KeySet

from consentry.runtime import Runtime
from tests.oauth import make_app, make_person, query_of

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.common.security import generate_token
    from authlib.integrations.httpx_client import AsyncOAuth2Client

ISSUER = "http://127.0.0.1:8000"


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post", "none"])
async def test_authlib_completes_the_flow(
    http: httpx.AsyncClient, runtime: Runtime, asgi_app: FastAPI, auth_method: str
) -> None:
    app = await make_app(
        runtime, token_endpoint_auth_method=auth_method, redirect_uris=["http://127.0.0.1:9000/cb"]
    )
    person = await make_person(runtime)
    client = AsyncOAuth2Client(
        client_id=app.client_id,
        client_secret=app.client_secret,
        token_endpoint_auth_method=auth_method,
        revocation_endpoint_auth_method=auth_method,
        scope="openid profile email offline_access",
        redirect_uri=app.redirect_uri,
        code_challenge_method="S256",
        transport=httpx.ASGITransport(app=asgi_app),
        base_url=ISSUER,
    )
    async with client:
        verifier = generate_token(48)
        nonce = generate_token(16)
        url, state = client.create_authorization_url(
            f"{ISSUER}/oauth2/authorize", code_verifier=verifier, nonce=nonce
        )
        # The person, signed in, opens the URL and approves on the consent screen.
        first = await http.get(url, headers=person.headers)
        assert first.status_code == 302
        consent_location = first.headers["location"]
        assert consent_location.startswith("/consent?")
        info = (
            await http.get(
                "/oauth2/consent?" + consent_location.split("?", 1)[1],
                headers=person.headers | {"Accept": "application/json"},
            )
        ).json()
        decision = {
            key: value
            for key, value in query_of(consent_location).items()
            if key
            in (
                "client_id",
                "redirect_uri",
                "scope",
                "state",
                "nonce",
                "code_challenge",
                "code_challenge_method",
            )
        }
        approved = await http.post(
            "/oauth2/consent", json=decision | {"approved": True, "remember": True}, headers=person.headers
        )
        callback = approved.json()["redirect_url"]
        assert info["client"]["id"] == app.client_id
        assert query_of(callback)["iss"] == ISSUER

        token = await client.fetch_token(
            f"{ISSUER}/oauth2/token", authorization_response=callback, code_verifier=verifier, state=state
        )
        assert token["token_type"].lower() == "bearer"
        assert {"access_token", "refresh_token", "id_token", "expires_in"} <= set(token)

        keys = KeySet.import_key_set((await client.get(f"{ISSUER}/oauth2/jwks")).json())
        claims = jwt.decode(token["id_token"], keys, algorithms=["RS256", "ES256"]).claims
        assert (claims["iss"], claims["aud"], claims["nonce"]) == (ISSUER, app.client_id, nonce)
        assert claims["sub"] == str(person.user_id)

        userinfo = await client.get(f"{ISSUER}/oauth2/userinfo")
        assert userinfo.json()["email"] == person.email

        refreshed = await client.refresh_token(f"{ISSUER}/oauth2/token", refresh_token=token["refresh_token"])
        assert refreshed["refresh_token"] != token["refresh_token"]
        assert refreshed["access_token"] != token["access_token"]

        revoked = await client.revoke_token(
            f"{ISSUER}/oauth2/revoke", token=refreshed["refresh_token"], token_type_hint="refresh_token"
        )
        assert revoked.status_code == 200
        after = await client.get(f"{ISSUER}/oauth2/userinfo")  # the client now holds a revoked access token
        assert after.status_code == 401
        with pytest.raises(Exception, match="invalid_grant"):
            await client.refresh_token(f"{ISSUER}/oauth2/token", refresh_token=refreshed["refresh_token"])
