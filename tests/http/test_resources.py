"""The operator's APIs (SPEC §7): resources and custom scopes through the admin API, RFC 8707 ``resource`` at
authorize and token, audience-bound tokens that carry only their audience's scopes, RFC 9068 JWT access
tokens, introspection by the resource, and deletion that revokes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import KeySet

from consentry.runtime import Runtime
from tests.authlib_flow import authlib_client, authlib_tokens
from tests.oauth import (
    App,
    Person,
    approve,
    authorize_params,
    exchange_code,
    is_active,
    make_app,
    make_person,
    pkce_pair,
    query_of,
)

ISSUER = "http://127.0.0.1:8000"
PHOTOS = "https://api.example.com/photos"
MAIL = "https://api.example.com/mail"


async def make_resource(
    http: httpx.AsyncClient, admin: Person, identifier: str, scopes: dict[str, str], **options: Any
) -> dict[str, Any]:
    body = {
        "identifier": identifier,
        "name": options.pop("name", identifier.rsplit("/", 1)[-1].title()),
        "scopes": [{"name": name, "description": text} for name, text in scopes.items()],
        **options,
    }
    created = await http.post("/api/v1/admin/resources", json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    return dict(created.json())


@pytest.fixture
async def admin(runtime: Runtime) -> Person:
    return await make_person(runtime, is_admin=True)


@pytest.fixture
async def photos(http: httpx.AsyncClient, admin: Person) -> dict[str, Any]:
    return await make_resource(
        http, admin, PHOTOS, {"photos:read": "See your photos", "photos:write": "Add and change your photos"}
    )


@pytest.fixture
async def mail(http: httpx.AsyncClient, admin: Person) -> dict[str, Any]:
    return await make_resource(http, admin, MAIL, {"mail:send": "Send mail as you"}, token_format="jwt")


async def tokens(
    http: httpx.AsyncClient, app: App, person: Person, scope: str, **extra: str
) -> httpx.Response:
    """Authorize (approving consent) and exchange the code; ``resource`` and token-request fields in ``extra``
    (``token_resource``)."""
    verifier, challenge = pkce_pair()
    token_resource = extra.pop("token_resource", None)
    params = authorize_params(app, scope=scope, challenge=challenge, **extra)
    answer = await http.get("/oauth2/authorize", params=params, headers=person.headers)
    location = answer.headers["location"]
    if location.startswith("/consent"):
        location = await approve(http, person, params)
    query = query_of(location)
    assert "code" in query, location
    fields = {"resource": token_resource} if token_resource else {}
    return await exchange_code(http, app, query["code"], verifier, **fields)


async def introspect(http: httpx.AsyncClient, credentials: dict[str, Any], token: str) -> dict[str, Any]:
    auth = httpx.BasicAuth(credentials["client_id"], credentials["client_secret"])
    return dict((await http.post("/oauth2/introspect", data={"token": token}, auth=auth)).json())


async def test_a_token_for_a_resource_is_bound_to_it_and_carries_only_its_scopes(
    http: httpx.AsyncClient, runtime: Runtime, photos: dict[str, Any], mail: dict[str, Any]
) -> None:
    app = await make_app(runtime, scope="openid email photos:read photos:write mail:send")
    person = await make_person(runtime)
    issued = await tokens(http, app, person, "openid email photos:read", resource=PHOTOS)
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["scope"] == "photos:read"  # the token's own scopes: its audience's
    assert "id_token" in body  # the identity goes in the ID token

    seen = await introspect(http, photos, body["access_token"])
    assert (seen["active"], seen["aud"], seen["scope"]) == (True, PHOTOS, "photos:read")
    assert seen["sub"] == str(person.user_id) and seen["jti"]
    assert await introspect(http, mail, body["access_token"]) == {"active": False}  # not its audience
    assert await is_active(http, app, body["access_token"])  # the client sees its own token

    refused = await http.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert refused.status_code == 401 and "invalid_token" in refused.headers["www-authenticate"]


async def test_refresh_narrows_the_resource_or_gives_a_token_for_userinfo(
    http: httpx.AsyncClient, runtime: Runtime, photos: dict[str, Any], mail: dict[str, Any]
) -> None:
    app = await make_app(runtime, scope="openid email offline_access photos:read mail:send")
    person = await make_person(runtime)
    scope = "openid email offline_access photos:read mail:send"
    issued = await tokens(http, app, person, scope, resource=f"{PHOTOS} {MAIL}", token_resource=PHOTOS)
    assert issued.json()["scope"] == "photos:read"  # the code was for both; the token asked for one

    async def refresh(**extra: str) -> httpx.Response:
        form = {"grant_type": "refresh_token", "refresh_token": current["refresh_token"]} | extra
        answer = await http.post("/oauth2/token", data=form, auth=app.basic())
        if answer.status_code == 200:
            current.update(answer.json())
        return answer

    current = dict(issued.json())
    narrowed = await refresh(resource=MAIL)
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "mail:send"
    assert jwt.decode(narrowed.json()["access_token"], await jwks(http)).claims["aud"] == MAIL
    for_userinfo = await refresh()
    assert for_userinfo.json()["scope"] == "email offline_access openid"
    info = await http.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {current['access_token']}"})
    assert info.status_code == 200 and info.json()["email"] == person.email
    beyond = await refresh(resource="https://api.example.com/other")
    assert beyond.status_code == 400 and beyond.json()["error"] == "invalid_target"


async def jwks(http: httpx.AsyncClient) -> KeySet:
    return KeySet.import_key_set((await http.get("/oauth2/jwks")).json())


async def test_a_jwt_access_token_is_rfc_9068(
    http: httpx.AsyncClient, runtime: Runtime, mail: dict[str, Any]
) -> None:
    app = await make_app(runtime, scope="openid mail:send")
    person = await make_person(runtime)
    body = (await tokens(http, app, person, "openid mail:send", resource=MAIL)).json()
    token = jwt.decode(body["access_token"], await jwks(http))
    assert token.header["typ"] == "at+jwt" and token.header["alg"] == "ES256"
    claims = token.claims
    assert (claims["iss"], claims["aud"], claims["client_id"]) == (ISSUER, MAIL, app.client_id)
    assert claims["sub"] == str(person.user_id) and claims["scope"] == "mail:send"
    assert claims["exp"] > claims["iat"] and claims["jti"] and "auth_time" in claims
    seen = await introspect(http, mail, body["access_token"])  # a JWT introspects too
    assert seen["active"] and seen["jti"] == claims["jti"]


@pytest.mark.parametrize(
    ("scope", "resource", "why"),
    [
        ("openid", "https://unknown.example.com/api", "unknown resource"),
        ("openid photos:read", None, "photos:read"),  # a scope of a resource not asked for
        ("openid photos:read", "https://api.example.com/#frag", "absolute URI"),
    ],
)
async def test_a_bad_target_is_invalid_target(
    http: httpx.AsyncClient,
    runtime: Runtime,
    photos: dict[str, Any],
    scope: str,
    resource: str | None,
    why: str,
) -> None:
    app = await make_app(runtime, scope="openid photos:read")
    person = await make_person(runtime)
    params = authorize_params(app, scope=scope, **({"resource": resource} if resource else {}))
    answer = await http.get("/oauth2/authorize", params=params, headers=person.headers)
    query = query_of(answer.headers["location"])
    assert query["error"] == "invalid_target" and why in query["error_description"]


async def test_client_credentials_for_a_resource(
    http: httpx.AsyncClient, runtime: Runtime, photos: dict[str, Any]
) -> None:
    service = await make_app(runtime, scope="photos:read", grant_types=["client_credentials"])
    form = {"grant_type": "client_credentials", "scope": "photos:read", "resource": PHOTOS}
    issued = await http.post("/oauth2/token", data=form, auth=service.basic())
    assert issued.status_code == 200, issued.text
    seen = await introspect(http, photos, issued.json()["access_token"])
    assert (seen["active"], seen["aud"], seen["client_id"]) == (True, PHOTOS, service.client_id)
    without = await http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "photos:read"},
        auth=service.basic(),
    )
    assert without.status_code == 400 and without.json()["error"] == "invalid_target"


async def test_restricted_scopes_go_to_trusted_clients_for_admins_only(
    http: httpx.AsyncClient, runtime: Runtime, admin: Person
) -> None:
    created = await http.post(
        "/api/v1/admin/scopes",
        json={"name": "admin", "description": "Administer the platform", "restricted": True},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    untrusted = await make_app(runtime, scope="openid admin")
    answer = await http.get(
        "/oauth2/authorize", params=authorize_params(untrusted, scope="openid admin"), headers=admin.headers
    )
    assert query_of(answer.headers["location"])["error"] == "invalid_scope"

    console = await make_app(runtime, scope="openid admin", trusted=True)
    for who, expected in ((admin, "admin openid"), (await make_person(runtime), "openid")):
        assert (await tokens(http, console, who, "openid admin")).json()["scope"] == expected


async def test_deleting_a_scope_revokes_its_tokens_and_takes_it_out_of_consents(
    http: httpx.AsyncClient, runtime: Runtime, admin: Person
) -> None:
    await http.post(
        "/api/v1/admin/scopes", json={"name": "read", "description": "Read your notes"}, headers=admin.headers
    )
    app = await make_app(runtime, scope="openid read")
    person = await make_person(runtime)
    body = (await tokens(http, app, person, "openid read")).json()
    assert body["scope"] == "openid read"  # a custom scope of no resource: in the token for userinfo

    assert (await http.delete("/api/v1/admin/scopes/read", headers=admin.headers)).status_code == 204
    assert not await is_active(http, app, body["access_token"])
    [consent] = (await http.get("/api/v1/oauth2/consents", headers=person.headers)).json()["consents"]
    assert consent["scopes"] == ["openid"]
    assert (await http.get("/api/v1/admin/scopes/read", headers=admin.headers)).status_code == 404
    refused = await http.delete("/api/v1/admin/scopes/email", headers=admin.headers)
    assert refused.status_code == 400  # OpenID Connect's own scopes stay


async def test_deleting_a_resource_revokes_every_token_for_it(
    http: httpx.AsyncClient, runtime: Runtime, admin: Person, photos: dict[str, Any]
) -> None:
    app = await make_app(runtime, scope="openid photos:read")
    person = await make_person(runtime)
    body = (await tokens(http, app, person, "openid photos:read", resource=PHOTOS)).json()
    listed = (await http.get("/api/v1/admin/resources", headers=admin.headers)).json()["resources"]
    assert [r["identifier"] for r in listed] == [PHOTOS]
    assert [s["name"] for s in listed[0]["scopes"]] == ["photos:read", "photos:write"]

    gone = await http.delete(f"/api/v1/admin/resources/{photos['resource_id']}", headers=admin.headers)
    assert gone.status_code == 204
    assert not await is_active(http, app, body["access_token"])
    assert (await introspect(http, photos, body["access_token"]))[
        "error"
    ] == "invalid_client"  # its credentials went
    again = await http.get(
        "/oauth2/authorize",
        params=authorize_params(app, scope="openid", resource=PHOTOS),
        headers=person.headers,
    )
    assert query_of(again.headers["location"])["error"] == "invalid_target"


async def test_the_admin_api_refuses_what_breaks_a_rule(
    http: httpx.AsyncClient, runtime: Runtime, admin: Person, photos: dict[str, Any]
) -> None:
    async def create(body: dict[str, Any]) -> httpx.Response:
        return await http.post("/api/v1/admin/resources", json=body, headers=admin.headers)

    assert (await create({"identifier": PHOTOS, "name": "Again"})).status_code == 409
    assert (await create({"identifier": "not a uri", "name": "Bad"})).status_code == 400
    assert (await create({"identifier": MAIL, "name": "M", "token_format": "paseto"})).status_code == 400
    taken = {"identifier": MAIL, "name": "M", "scopes": [{"name": "photos:read", "description": "x"}]}
    assert (await create(taken)).status_code == 409
    person = await make_person(runtime)
    assert (await http.get("/api/v1/admin/resources", headers=person.headers)).status_code == 403
    changed = await http.patch(
        f"/api/v1/admin/resources/{photos['resource_id']}",
        json={"token_format": "jwt", "access_token_ttl": 600},
        headers=admin.headers,
    )
    assert changed.status_code == 200 and changed.json()["token_format"] == "jwt"


async def test_the_revocation_feed_names_revoked_tokens_from_a_cursor(
    http: httpx.AsyncClient, runtime: Runtime, photos: dict[str, Any], mail: dict[str, Any]
) -> None:
    app = await make_app(runtime, scope="openid photos:read")
    person = await make_person(runtime)
    feed = f"/api/v1/resources/{photos['resource_id']}/revocations"
    auth = httpx.BasicAuth(photos["client_id"], photos["client_secret"])
    start = (await http.get(feed, auth=auth)).json()
    assert start["revoked"] == []

    body = (await tokens(http, app, person, "openid photos:read", resource=PHOTOS)).json()
    jti = (await introspect(http, photos, body["access_token"]))["jti"]
    revoked = await http.post("/oauth2/revoke", data={"token": body["access_token"]}, auth=app.basic())
    assert revoked.status_code == 200
    page = (await http.get(feed, params={"after": start["next"]}, auth=auth)).json()
    assert [entry["jti"] for entry in page["revoked"]] == [jti]
    assert page["revoked"][0]["exp"] > 0
    # By client_id too (the kit knows its credentials, not the resource's id); another API's feed is apart.
    by_client = f"/api/v1/resources/{photos['client_id']}/revocations"
    assert [e["jti"] for e in (await http.get(by_client, auth=auth)).json()["revoked"]] == [jti]
    mail_feed = f"/api/v1/resources/{mail['resource_id']}/revocations"
    mail_auth = httpx.BasicAuth(mail["client_id"], mail["client_secret"])
    assert (await http.get(mail_feed, auth=mail_auth)).json()["revoked"] == []

    assert (await http.get(feed)).status_code == 401
    assert (await http.get(feed, auth=mail_auth)).status_code == 401  # another resource's credentials
    assert (await http.get(feed, params={"after": "garbage!"}, auth=auth)).status_code == 400
    assert (await http.get(feed, params={"wait": "31"}, auth=auth)).status_code == 400


async def test_a_long_poll_answers_when_a_revocation_happens(
    served: httpx.AsyncClient, runtime: Runtime, admin: Person
) -> None:
    photos = await make_resource(served, admin, PHOTOS, {"photos:read": "See your photos"})
    app = await make_app(runtime, scope="openid photos:read")
    person = await make_person(runtime)
    body = (await tokens(served, app, person, "openid photos:read", resource=PHOTOS)).json()
    feed = f"/api/v1/resources/{photos['resource_id']}/revocations"
    auth = httpx.BasicAuth(photos["client_id"], photos["client_secret"])
    cursor = (await served.get(feed, auth=auth)).json()["next"]

    async def revoke_soon() -> None:
        await asyncio.sleep(0.5)
        await served.post("/oauth2/revoke", data={"token": body["access_token"]}, auth=app.basic())

    started = time.monotonic()
    waited, _ = await asyncio.gather(
        served.get(feed, params={"after": cursor, "wait": "10"}, auth=auth), revoke_soon()
    )
    assert len(waited.json()["revoked"]) == 1
    assert 0.4 < time.monotonic() - started < 3  # answered at the revocation, not at the end of the wait


async def test_authlibs_client_asks_for_a_resource(
    http: httpx.AsyncClient, runtime: Runtime, asgi_app: FastAPI, mail: dict[str, Any]
) -> None:
    app = await make_app(runtime, scope="openid mail:send", redirect_uris=["http://127.0.0.1:9000/cb"])
    person = await make_person(runtime)
    async with authlib_client(app, asgi_app, "openid mail:send") as client:
        token = await authlib_tokens(http, client, person, resource=MAIL)
        assert jwt.decode(token["access_token"], await jwks(http)).claims["aud"] == MAIL
        unknown, _ = client.create_authorization_url(
            f"{ISSUER}/oauth2/authorize", resource="https://nowhere.example.com/api"
        )
    refused = await http.get(unknown, headers=person.headers)
    assert query_of(refused.headers["location"])["error"] == "invalid_target"


async def test_withdrawing_a_custom_scope_revokes_the_jwt_through_the_feed(
    http: httpx.AsyncClient, runtime: Runtime, mail: dict[str, Any]
) -> None:
    app = await make_app(runtime, scope="openid email mail:send")
    person = await make_person(runtime)
    body = (await tokens(http, app, person, "openid email mail:send", resource=MAIL)).json()
    jti = jwt.decode(body["access_token"], await jwks(http)).claims["jti"]
    [listed] = (await http.get("/api/v1/oauth2/consents", headers=person.headers)).json()["consents"]
    assert listed["scopes"] == ["email", "mail:send", "openid"]

    narrowed = await http.patch(
        f"/api/v1/oauth2/consents/{app.client_id}",
        json={"revoke_scopes": ["mail:send"]},
        headers=person.headers,
    )
    assert narrowed.status_code == 200 and narrowed.json()["scopes"] == ["email", "openid"]
    feed = f"/api/v1/resources/{mail['resource_id']}/revocations"
    auth = httpx.BasicAuth(mail["client_id"], mail["client_secret"])
    assert [entry["jti"] for entry in (await http.get(feed, auth=auth)).json()["revoked"]] == [jti]
