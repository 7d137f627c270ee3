"""OpenID Connect: discovery, JWKS, ID tokens (OIDC Core §2, §3.1.3.6) and UserInfo (§5.3)."""

from __future__ import annotations

import time

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from consentry.domain.tokens import at_hash
from consentry.runtime import Runtime, utcnow
from tests.oauth import (
    App,
    Person,
    authorize_params,
    exchange_code,
    get_code,
    make_app,
    make_person,
    pkce_pair,
)

ISSUER = "http://127.0.0.1:8000"


@pytest.fixture
async def person(runtime: Runtime) -> Person:
    return await make_person(runtime, name="Ada Lovelace", given_name="Ada", locale="en-GB")


@pytest.mark.parametrize(
    "path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]
)
async def test_discovery_documents(http: httpx.AsyncClient, path: str) -> None:
    body = (await http.get(path)).json()
    assert body["issuer"] == ISSUER
    for name, endpoint in [
        ("authorization_endpoint", "/oauth2/authorize"),
        ("token_endpoint", "/oauth2/token"),
        ("userinfo_endpoint", "/oauth2/userinfo"),
        ("jwks_uri", "/oauth2/jwks"),
        ("revocation_endpoint", "/oauth2/revoke"),
        ("introspection_endpoint", "/oauth2/introspect"),
    ]:
        assert body[name] == ISSUER + endpoint
    assert body["response_types_supported"] == ["code"]
    assert set(body["grant_types_supported"]) == {"authorization_code", "refresh_token", "client_credentials"}
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["subject_types_supported"] == ["public", "pairwise"]
    assert "RS256" in body["id_token_signing_alg_values_supported"]
    assert set(body["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "none",
    }
    assert body["authorization_response_iss_parameter_supported"] is True
    assert {"openid", "profile", "email", "phone"} <= set(body["scopes_supported"])
    assert {"sub", "email", "name"} <= set(body["claims_supported"])


async def test_jwks_publishes_public_keys_only(http: httpx.AsyncClient) -> None:
    keys = (await http.get("/oauth2/jwks")).json()["keys"]
    assert {key["alg"] for key in keys} == {"RS256", "ES256"}
    for key in keys:
        assert key["kid"]
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


async def test_id_token_verifies_against_the_jwks(http: httpx.AsyncClient, app: App, person: Person) -> None:
    verifier, challenge = pkce_pair()
    code = await get_code(
        http, person, authorize_params(app, scope="openid profile", challenge=challenge, nonce="n-0S6_WzA2Mj")
    )
    tokens = (await exchange_code(http, app, code, verifier)).json()
    key_set = KeySet.import_key_set((await http.get("/oauth2/jwks")).json())
    decoded = jwt.decode(tokens["id_token"], key_set, algorithms=["RS256"])
    assert decoded.header["kid"] in {key["kid"] for key in (await http.get("/oauth2/jwks")).json()["keys"]}
    claims = decoded.claims
    assert claims["iss"] == ISSUER
    assert claims["aud"] == app.client_id
    assert claims["sub"] == str(person.user_id)
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["at_hash"] == at_hash(tokens["access_token"])
    now = int(time.time())
    assert claims["iat"] <= now + 1 < claims["exp"]
    assert abs(claims["auth_time"] - now) < 120


async def test_a_client_that_asks_for_es256_gets_es256_id_tokens(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    """OIDC Dynamic Client Registration §2 id_token_signed_response_alg: on code exchange and on refresh."""
    app = await make_app(runtime, id_token_signed_response_alg="ES256")
    verifier, challenge = pkce_pair()
    code = await get_code(
        http, person, authorize_params(app, scope="openid offline_access", challenge=challenge)
    )
    tokens = (await exchange_code(http, app, code, verifier)).json()
    key_set = KeySet.import_key_set((await http.get("/oauth2/jwks")).json())
    decoded = jwt.decode(tokens["id_token"], key_set, algorithms=["ES256"])
    assert decoded.header["alg"] == "ES256"
    assert decoded.claims["aud"] == app.client_id
    assert decoded.claims["at_hash"] == at_hash(tokens["access_token"])
    refreshed = await http.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=app.basic(),
    )
    assert refreshed.status_code == 200, refreshed.text
    assert jwt.decode(refreshed.json()["id_token"], key_set, algorithms=["ES256"]).header["alg"] == "ES256"


async def test_no_id_token_without_openid(http: httpx.AsyncClient, app: App, person: Person) -> None:
    code = await get_code(http, person, authorize_params(app, scope="profile"))
    tokens = (await exchange_code(http, app, code)).json()
    assert "id_token" not in tokens


async def test_userinfo_releases_claims_by_scope(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    code = await get_code(http, person, authorize_params(app, scope="openid email"))
    tokens = (await exchange_code(http, app, code)).json()
    response = await http.get(
        "/oauth2/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status_code == 200
    assert response.json() == {"sub": str(person.user_id), "email": person.email, "email_verified": True}
    code = await get_code(http, person, authorize_params(app, scope="openid profile"))
    profile = (await exchange_code(http, app, code)).json()
    by_post = await http.post("/oauth2/userinfo", data={"access_token": profile["access_token"]})
    claims = by_post.json()
    assert claims["name"] == "Ada Lovelace"
    assert claims["given_name"] == "Ada"
    assert claims["locale"] == "en-GB"
    assert "email" not in claims


async def test_userinfo_refusals(http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person) -> None:
    missing = await http.get("/oauth2/userinfo")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="consentry"'
    bad = await http.get("/oauth2/userinfo", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    code = await get_code(http, person, authorize_params(app, scope="profile"))
    no_openid = (await exchange_code(http, app, code)).json()
    insufficient = await http.get(
        "/oauth2/userinfo", headers={"Authorization": f"Bearer {no_openid['access_token']}"}
    )
    assert insufficient.status_code == 403
    assert insufficient.json()["error"] == "insufficient_scope"
    machine = await make_app(runtime, scope="profile", grant_types=["client_credentials"])
    cc = (
        await http.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=machine.basic())
    ).json()
    client_token = await http.get(
        "/oauth2/userinfo", headers={"Authorization": f"Bearer {cc['access_token']}"}
    )
    assert client_token.status_code == 401


async def test_key_rotation_keeps_old_keys_published(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    code = await get_code(http, person, authorize_params(app))
    old_token = (await exchange_code(http, app, code)).json()["id_token"]
    old_kids = {key["kid"] for key in (await http.get("/oauth2/jwks")).json()["keys"]}
    new_kids = await runtime.keys.rotate(now=utcnow())
    published = {key["kid"] for key in (await http.get("/oauth2/jwks")).json()["keys"]}
    assert old_kids | set(new_kids) == published
    assert len(published) == 4
    code = await get_code(http, person, authorize_params(app))
    new_token = (await exchange_code(http, app, code)).json()["id_token"]
    key_set = KeySet.import_key_set((await http.get("/oauth2/jwks")).json())
    assert jwt.decode(new_token, key_set).header["kid"] in new_kids
    assert jwt.decode(old_token, key_set).header["kid"] in old_kids
