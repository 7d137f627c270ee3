"""Clients that register themselves (SPEC §8, RFC 7591 and RFC 7592): in the three modes of CONSENTRY_DCR,
never trusted, their restricted scopes refused, managed with their registration access token, and gone with
every token when deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from consentry.runtime import Runtime, utcnow
from consentry.services.self_registration import create_initial_access_token
from consentry.settings import Settings
from consentry.storage.audit import AuditRepository
from tests.authlib_flow import authlib_client, authlib_tokens
from tests.conftest import make_settings
from tests.http.test_resources import PHOTOS, make_resource
from tests.oauth import (
    REDIRECT_URI,
    App,
    Person,
    authorize_params,
    make_person,
    pkce_pair,
    query_of,
)

ISSUER = "http://127.0.0.1:8000"
REGISTER = "/oauth2/register"


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Settings:
    """Open registration unless a test asks for other settings (``indirect`` parametrisation)."""
    return make_settings(database_url, tmp_path, **({"dcr": "open"} | getattr(request, "param", {})))


@pytest.fixture
async def admin(runtime: Runtime) -> Person:
    return await make_person(runtime, is_admin=True)


@pytest.fixture
async def person(runtime: Runtime) -> Person:
    return await make_person(runtime)


def metadata(**overrides: Any) -> dict[str, Any]:
    return {
        "client_name": "Photo Agent",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "openid profile",
        "software_id": "photo-agent",
        "software_version": "1.2",
        **overrides,
    }


async def register(http: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    created = await http.post(REGISTER, json=metadata(**overrides))
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    return dict(created.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def audit_events(runtime: Runtime, client_id: str) -> list[str]:
    async with runtime.database.read_only() as session:
        _, events = await AuditRepository(session).page(
            event_types=(), user_id=None, client_id=client_id, limit=100, offset=0
        )
    return [event.event_type for event in events]


async def test_a_client_registers_runs_code_and_pkce_with_a_resource_manages_itself_and_deletes_itself(
    http: httpx.AsyncClient, asgi_app: Any, runtime: Runtime, admin: Person, person: Person
) -> None:
    photos = await make_resource(http, admin, PHOTOS, {"photos:read": "See your photos"})
    registered = await register(
        http, scope="openid photos:read", trusted=True, webhook_url="https://evil.example.com/hook"
    )
    client_id, token = registered["client_id"], registered["registration_access_token"]
    assert registered["registration_client_uri"] == f"{ISSUER}{REGISTER}/{client_id}"
    assert registered["client_secret"] and registered["client_secret_expires_at"] == 0
    assert registered["scope"] == "openid photos:read"
    assert registered["response_types"] == ["code"]
    assert (registered["software_id"], registered["software_version"]) == ("photo-agent", "1.2")
    assert "trusted" not in registered and "webhook_url" not in registered

    app = App(client_id, registered["client_secret"], REDIRECT_URI)
    client = authlib_client(app, asgi_app, "openid photos:read")
    tokens = await authlib_tokens(http, client, person, resource=PHOTOS)
    api = httpx.BasicAuth(photos["client_id"], photos["client_secret"])
    introspected = (
        await http.post("/oauth2/introspect", data={"token": tokens["access_token"]}, auth=api)
    ).json()
    assert introspected["active"] is True and introspected["aud"] == PHOTOS
    assert introspected["client_id"] == client_id and introspected["scope"] == "photos:read"

    read = await http.get(f"{REGISTER}/{client_id}", headers=bearer(token))
    assert read.status_code == 200 and read.headers["cache-control"] == "no-store"
    assert read.json()["registration_access_token"] == token and "client_secret" not in read.json()
    assert {k: v for k, v in read.json().items() if k != "client_secret"} == {
        k: v for k, v in registered.items() if k not in ("client_secret", "client_secret_expires_at")
    }

    replacement = metadata(
        client_id=client_id,
        client_name="Photo Agent 2",
        scope="openid photos:read",
        client_secret=app.client_secret,
    )
    replaced = await http.put(f"{REGISTER}/{client_id}", json=replacement, headers=bearer(token))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["client_name"] == "Photo Agent 2"
    new_token = replaced.json()["registration_access_token"]
    assert new_token != token
    stale = await http.get(f"{REGISTER}/{client_id}", headers=bearer(token))
    assert stale.status_code == 401 and stale.json()["error"] == "invalid_token"
    assert stale.headers["www-authenticate"].startswith("Bearer")

    deleted = await http.delete(f"{REGISTER}/{client_id}", headers=bearer(new_token))
    assert deleted.status_code == 204
    gone = await http.get(f"{REGISTER}/{client_id}", headers=bearer(new_token))
    assert gone.status_code == 401
    introspected = (
        await http.post("/oauth2/introspect", data={"token": tokens["access_token"]}, auth=api)
    ).json()
    assert introspected == {"active": False}
    refreshed = await http.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=app.basic(),
    )
    assert refreshed.status_code == 401
    events = await audit_events(runtime, client_id)
    assert {"client_registered", "client_updated", "client_deleted"} <= set(events)


async def test_consent_is_always_asked_and_says_who_registered_it(
    http: httpx.AsyncClient, person: Person
) -> None:
    registered = await register(http, trusted=True, scope="openid profile")
    app = App(registered["client_id"], registered["client_secret"], REDIRECT_URI)
    _, challenge = pkce_pair()
    params = authorize_params(app, scope="openid profile", challenge=challenge)
    asked = await http.get("/oauth2/authorize", params=params, headers=person.headers)
    assert asked.headers["location"].startswith("/consent")  # a "trusted" in its metadata counts for nothing
    info = await http.get(
        f"/oauth2/consent?{asked.headers['location'].split('?', 1)[1]}",
        headers=person.headers | {"Accept": "application/json"},
    )
    client = info.json()["client"]
    assert client["registered_itself_on"][:10] == utcnow().date().isoformat()
    assert client["verified_host"] is None
    page = await http.get(asked.headers["location"], headers=person.headers)
    assert "It registered itself on" in page.text


async def test_a_restricted_scope_is_never_granted_to_a_client_that_registered_itself(
    http: httpx.AsyncClient, admin: Person, person: Person
) -> None:
    made = await http.post(
        "/api/v1/admin/scopes",
        json={"name": "admin:all", "description": "Run the place", "restricted": True},
        headers=admin.headers,
    )
    assert made.status_code == 201, made.text
    listed = await register(http, scope="openid admin:all")
    assert listed["scope"] == "openid"  # left out of what it may ask for
    unlisted = await register(http, scope=None)
    assert "admin:all" not in unlisted["scope"].split() and "profile" in unlisted["scope"].split()
    for registered in (listed, unlisted):
        app = App(registered["client_id"], registered["client_secret"], REDIRECT_URI)
        _, challenge = pkce_pair()
        params = authorize_params(app, scope="openid admin:all", challenge=challenge)
        refused = await http.get("/oauth2/authorize", params=params, headers=admin.headers)
        assert query_of(refused.headers["location"])["error"] == "invalid_scope"


async def test_a_client_that_registers_itself_acts_only_for_people_who_consent(
    http: httpx.AsyncClient,
) -> None:
    """No client_credentials: with no person to ask, a stranger's software would mint tokens for the
    operator's APIs unasked."""
    refused = await http.post(REGISTER, json=metadata(grant_types=["client_credentials"], redirect_uris=[]))
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_client_metadata")
    assert "client_credentials" in refused.json()["error_description"]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"redirect_uris": ["http://app.example.com/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": "https://app.example.com/cb"}, "invalid_client_metadata"),
        ({"response_types": ["token"]}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        ({"grant_types": ["password"]}, "invalid_client_metadata"),
        ({"scope": "openid no-such-scope"}, "invalid_client_metadata"),
        ({"client_name": "bad\x00name"}, "invalid_client_metadata"),
        ({"logo_uri": "javascript:alert(1)"}, "invalid_client_metadata"),
    ],
)
async def test_bad_metadata_is_refused_with_rfc_7591_errors(
    http: httpx.AsyncClient, changes: dict[str, Any], error: str
) -> None:
    refused = await http.post(REGISTER, json=metadata(**changes))
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == error


async def test_a_body_that_is_not_a_json_object_is_refused(http: httpx.AsyncClient) -> None:
    for body in (b"not json", b"[1, 2]", b'"text"'):
        refused = await http.post(REGISTER, content=body, headers={"Content-Type": "application/json"})
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_client_metadata")


async def test_a_replacement_must_name_the_client_and_leave_the_servers_fields_alone(
    http: httpx.AsyncClient,
) -> None:
    registered = await register(http)
    client_id, token = registered["client_id"], registered["registration_access_token"]
    for body in (
        metadata(),
        metadata(client_id="someone-else"),
        metadata(client_id=client_id, registration_access_token=token),
        metadata(client_id=client_id, client_secret="not-its-secret"),
        metadata(client_id=client_id, token_endpoint_auth_method="none"),
    ):
        refused = await http.put(f"{REGISTER}/{client_id}", json=body, headers=bearer(token))
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_client_metadata"), body
    unauthenticated = await http.put(f"{REGISTER}/{client_id}", content=b"junk", headers=bearer("wrong"))
    assert unauthenticated.status_code == 401  # the token is checked before the body


@pytest.mark.parametrize("settings", [{"rate_limit_client_registrations_per_ip": "2/hour"}], indirect=True)
async def test_open_registration_is_limited_per_address(http: httpx.AsyncClient) -> None:
    for _ in range(2):
        await register(http)
    limited = await http.post(REGISTER, json=metadata())
    assert limited.status_code == 429 and "retry-after" in limited.headers


@pytest.mark.parametrize("settings", [{"dcr": "token"}], indirect=True)
async def test_with_initial_access_tokens_each_registration_spends_one_use(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    missing = await http.post(REGISTER, json=metadata())
    assert missing.status_code == 401 and missing.json()["error"] == "invalid_token"
    once = await create_initial_access_token(runtime, uses=1, expires_in=None, now=utcnow())
    first = await http.post(REGISTER, json=metadata(), headers=bearer(once.token))
    assert first.status_code == 201, first.text
    again = await http.post(REGISTER, json=metadata(), headers=bearer(once.token))
    assert again.status_code == 401
    invalid = await http.post(
        REGISTER, json=metadata(redirect_uris=["http://x.example/cb"]), headers=bearer("x")
    )
    assert invalid.status_code == 400  # the metadata is checked first: a bad request spends no use
    expired = await create_initial_access_token(
        runtime, uses=None, expires_in=1, now=utcnow().replace(year=2020)
    )
    late = await http.post(REGISTER, json=metadata(), headers=bearer(expired.token))
    assert late.status_code == 401
    unlimited = await create_initial_access_token(runtime, uses=None, expires_in=3600, now=utcnow())
    for _ in range(3):
        assert (
            await http.post(REGISTER, json=metadata(), headers=bearer(unlimited.token))
        ).status_code == 201


@pytest.mark.parametrize("settings", [{"dcr": "off"}], indirect=True)
async def test_with_registration_off_the_endpoint_is_absent(http: httpx.AsyncClient) -> None:
    assert (await http.post(REGISTER, json=metadata())).status_code == 404
    assert (await http.get(f"{REGISTER}/anything", headers=bearer("x"))).status_code == 404
    discovery = (await http.get("/.well-known/openid-configuration")).json()
    assert "registration_endpoint" not in discovery
    assert discovery["client_id_metadata_document_supported"] is True


async def test_discovery_names_the_registration_endpoint(http: httpx.AsyncClient) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        assert (await http.get(path)).json()["registration_endpoint"] == f"{ISSUER}{REGISTER}"


async def test_an_administrator_lists_and_deletes_them_and_cannot_trust_them(
    http: httpx.AsyncClient, admin: Person
) -> None:
    registered = await register(http)
    client_id = registered["client_id"]
    listed = await http.get("/api/v1/admin/clients", params={"registered_by": "self"}, headers=admin.headers)
    assert [c["client_id"] for c in listed.json()["clients"]] == [client_id]
    assert listed.json()["clients"][0]["registered_by"] == "self"
    trusted = await http.patch(
        f"/api/v1/oauth2/clients/{client_id}", json={"trusted": True}, headers=admin.headers
    )
    assert trusted.status_code == 403
    deleted = await http.delete(f"/api/v1/oauth2/clients/{client_id}", headers=admin.headers)
    assert deleted.status_code == 204
    token = registered["registration_access_token"]
    assert (await http.get(f"{REGISTER}/{client_id}", headers=bearer(token))).status_code == 401
    assert (await http.get("/api/v1/admin/clients", headers=admin.headers)).json()["clients"] == []
