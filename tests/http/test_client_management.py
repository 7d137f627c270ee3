"""Client management for owners (SPEC §5): every lifecycle path and every refusal."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from consentry.runtime import Runtime
from tests.http.conftest import production
from tests.oauth import App, Person, make_app, make_person, tokens_for

API = "/api/v1/oauth2/clients"
NEW = {
    "client_name": "Owner App",
    "redirect_uris": ["https://owner.example.com/cb"],
    "scope": "openid email",
    "logo_uri": "https://owner.example.com/logo.png",
    "policy_uri": "https://owner.example.com/privacy",
}


@pytest.fixture
async def owner(runtime: Runtime) -> Person:
    return await make_person(runtime)


async def create(http: httpx.AsyncClient, owner: Person, **changes: object) -> dict:  # type: ignore[type-arg]
    response = await http.post(API, json=NEW | changes, headers=owner.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_create_shows_the_secret_once(http: httpx.AsyncClient, owner: Person) -> None:
    body = await create(http, owner, webhook_url="https://hooks.example.com/consentry")
    assert body["client_name"] == "Owner App" and body["scope"] == "email openid"
    assert len(body["client_secret"]) >= 43
    assert body["webhook_secret"].startswith("whsec_")
    assert body["created_at"] and body["trusted"] is False
    read = (await http.get(f"{API}/{body['client_id']}", headers=owner.headers)).json()
    assert "client_secret" not in read and "webhook_secret" not in read
    listed = (await http.get(API, headers=owner.headers)).json()["clients"]
    assert [c["client_id"] for c in listed] == [body["client_id"]]
    public = await create(http, owner, token_endpoint_auth_method="none")
    assert "client_secret" not in public


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"redirect_uris": ["http://owner.example.com/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://owner.example.com/cb#x"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://*.example.com/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["/relative"]}, "invalid_redirect_uri"),
        ({"scope": "openid admin"}, "invalid_client_metadata"),
        ({"grant_types": ["implicit"]}, "invalid_client_metadata"),
        ({"client_name": ""}, "invalid_client_metadata"),
        ({"id_token_signed_response_alg": "none"}, "invalid_client_metadata"),
        ({"id_token_signed_response_alg": "HS256"}, "invalid_client_metadata"),
        (
            {"redirect_uris": ["https://app.example.com/cb\r\nLocation: https://evil.example"]},
            "invalid_redirect_uri",
        ),
        ({"webhook_url": "https://2130706433/"}, "invalid_client_metadata"),
    ],
    ids=[
        "plain-http",
        "fragment",
        "wildcard",
        "relative",
        "unknown-scope",
        "implicit",
        "empty-name",
        "unsigned-id-tokens",
        "symmetric-id-tokens",
        "crlf-redirect",
        "decimal-ip-webhook",
    ],
)
async def test_create_refusals(
    http: httpx.AsyncClient, runtime: Runtime, owner: Person, changes: dict[str, object], error: str
) -> None:
    response = await http.post(API, json=NEW | changes, headers=owner.headers)
    assert response.status_code == 400
    assert response.json()["error"] == error


async def test_only_admins_mark_clients_trusted(
    http: httpx.AsyncClient, runtime: Runtime, owner: Person
) -> None:
    refused = await http.post(API, json=NEW | {"trusted": True}, headers=owner.headers)
    assert refused.status_code == 403
    body = await create(http, owner)
    patch = await http.patch(f"{API}/{body['client_id']}", json={"trusted": True}, headers=owner.headers)
    assert patch.status_code == 403
    admin = await make_person(runtime, is_admin=True)
    ok = await http.patch(f"{API}/{body['client_id']}", json={"trusted": True}, headers=admin.headers)
    assert ok.status_code == 200 and ok.json()["trusted"] is True


async def test_the_id_token_algorithm_is_chosen_at_registration_and_can_change(
    http: httpx.AsyncClient, owner: Person
) -> None:
    body = await create(http, owner)
    assert body["id_token_signed_response_alg"] == "RS256"  # the OIDC Core default
    path = f"{API}/{body['client_id']}"
    changed = await http.patch(path, json={"id_token_signed_response_alg": "ES256"}, headers=owner.headers)
    assert changed.status_code == 200 and changed.json()["id_token_signed_response_alg"] == "ES256"
    assert (await http.get(path, headers=owner.headers)).json()["id_token_signed_response_alg"] == "ES256"
    es256 = await create(http, owner, id_token_signed_response_alg="ES256")
    assert es256["id_token_signed_response_alg"] == "ES256"


async def test_update_revalidates_everything(http: httpx.AsyncClient, owner: Person) -> None:
    body = await create(http, owner)
    path = f"{API}/{body['client_id']}"
    updated = await http.patch(
        path,
        json={
            "client_name": "Renamed",
            "redirect_uris": ["https://owner.example.com/cb", "https://owner.example.com/cb2"],
        },
        headers=owner.headers,
    )
    assert updated.status_code == 200
    assert updated.json()["client_name"] == "Renamed" and len(updated.json()["redirect_uris"]) == 2
    bad = await http.patch(
        path, json={"redirect_uris": ["http://evil.example.com/cb"]}, headers=owner.headers
    )
    assert bad.status_code == 400
    assert (await http.get(path, headers=owner.headers)).json()[
        "client_name"
    ] == "Renamed"  # nothing half-applied
    hooked = await http.patch(
        path, json={"webhook_url": "https://hooks.example.com/x"}, headers=owner.headers
    )
    assert hooked.json()["webhook_secret"].startswith("whsec_")


async def test_other_peoples_clients_do_not_exist(
    http: httpx.AsyncClient, runtime: Runtime, owner: Person
) -> None:
    body = await create(http, owner)
    stranger = await make_person(runtime)
    for method, path in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/secret")):
        response = await http.request(
            method,
            f"{API}/{body['client_id']}{path}",
            headers=stranger.headers,
            json={} if method == "PATCH" else None,
        )
        assert response.status_code == 404, (method, path)
    assert (await http.get(API, headers=stranger.headers)).json()["clients"] == []
    assert (await http.post(API, json=NEW)).status_code == 401


async def test_regenerated_secret_kills_the_old_one_at_once(
    http: httpx.AsyncClient, runtime: Runtime, owner: Person
) -> None:
    body = await create(http, owner, grant_types=["client_credentials"], redirect_uris=[])
    old = httpx.BasicAuth(body["client_id"], body["client_secret"])
    form = {"grant_type": "client_credentials"}
    assert (await http.post("/oauth2/token", data=form, auth=old)).status_code == 200
    rotated = await http.post(f"{API}/{body['client_id']}/secret", headers=owner.headers)
    assert rotated.status_code == 200
    new = httpx.BasicAuth(body["client_id"], rotated.json()["client_secret"])
    assert (await http.post("/oauth2/token", data=form, auth=old)).status_code == 401
    assert (await http.post("/oauth2/token", data=form, auth=new)).status_code == 200


async def test_a_deleted_clients_tokens_stop_working(
    http: httpx.AsyncClient, runtime: Runtime, owner: Person
) -> None:
    body = await create(http, owner, redirect_uris=["https://app.example.com/callback"])
    app = App(body["client_id"], body["client_secret"], "https://app.example.com/callback")
    person = await make_person(runtime)
    tokens = await tokens_for(http, runtime, app, person, scope="openid email")
    assert (await http.delete(f"{API}/{app.client_id}", headers=owner.headers)).status_code == 204
    userinfo = await http.get(
        "/oauth2/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.status_code == 401
    refreshed = await http.post(
        "/oauth2/token",
        auth=app.basic(),
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 401
    assert (await http.get(API, headers=owner.headers)).json()["clients"] == []


async def test_private_webhook_targets_are_refused_in_production(database_url: str, tmp_path: Path) -> None:
    async with production(database_url, tmp_path) as (c, runtime):
        owner = await make_person(runtime)
        for target in (
            "https://10.0.0.1/hook",
            "https://127.0.0.1/hook",
            "https://169.254.169.254/x",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://0177.0.0.1/",
        ):
            response = await c.post(API, json=NEW | {"webhook_url": target}, headers=owner.headers)
            assert response.status_code == 400, target
            assert response.json()["error"] == "invalid_client_metadata"


async def _client_credentials(http: httpx.AsyncClient, client_id: str, secret: str, method: str) -> int:
    form = {"grant_type": "client_credentials"}
    if method == "client_secret_basic":
        response = await http.post("/oauth2/token", data=form, auth=(client_id, secret))
    else:
        response = await http.post(
            "/oauth2/token", data=form | {"client_id": client_id, "client_secret": secret}
        )
    return response.status_code


@pytest.mark.parametrize("registered", ["client_secret_basic", "client_secret_post", None])
async def test_a_client_authenticates_only_as_it_registered(
    http: httpx.AsyncClient, owner: Person, registered: str | None
) -> None:
    """SPEC §2: the method registered through the API (RFC 7591's default: basic) is the only one."""
    extra = {"token_endpoint_auth_method": registered} if registered else {}
    body = await create(http, owner, grant_types=["client_credentials"], redirect_uris=[], **extra)
    expected = registered or "client_secret_basic"
    for method in ("client_secret_basic", "client_secret_post"):
        status = await _client_credentials(http, body["client_id"], body["client_secret"], method)
        assert status == (200 if method == expected else 401), method


async def test_a_client_created_without_a_method_may_use_basic_or_the_form(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    app = await make_app(runtime, grant_types=["client_credentials"], scope="openid")
    assert app.client_secret is not None
    for method in ("client_secret_basic", "client_secret_post"):
        assert await _client_credentials(http, app.client_id, app.client_secret, method) == 200


async def test_changing_the_auth_method_applies_and_cannot_make_a_client_public(
    http: httpx.AsyncClient, owner: Person
) -> None:
    body = await create(http, owner, grant_types=["client_credentials"], redirect_uris=[])
    changed = await http.patch(
        f"{API}/{body['client_id']}",
        json={"token_endpoint_auth_method": "client_secret_post"},
        headers=owner.headers,
    )
    assert changed.status_code == 200 and changed.json()["token_endpoint_auth_method"] == "client_secret_post"
    read = (await http.get(f"{API}/{body['client_id']}", headers=owner.headers)).json()
    assert read["token_endpoint_auth_method"] == "client_secret_post"
    assert (
        await _client_credentials(http, body["client_id"], body["client_secret"], "client_secret_post") == 200
    )
    assert (
        await _client_credentials(http, body["client_id"], body["client_secret"], "client_secret_basic")
        == 401
    )
    public = await http.patch(
        f"{API}/{body['client_id']}", json={"token_endpoint_auth_method": "none"}, headers=owner.headers
    )
    assert public.status_code == 400 and public.json()["error"] == "invalid_client_metadata"
