"""Signing in through a real upstream OpenID provider, panva's oidc-provider, a node process on loopback
(SPEC §10), through the JSON API: a first sign-in creates an account, a second reuses it; an existing person's
email without email_verified links nothing; linking, unlinking, and the refusal to unlink the last way in.
The same, through the pages in Chromium, is in tests/browser/test_upstream_pages.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from consentry.runtime import Runtime
from consentry.storage.tables import LinkedAccount, User
from tests.oauth import Person, make_person
from tests.panva import Panva, panva_provider, through_panva

JSON = {"Accept": "application/json"}
CALLBACK = "http://127.0.0.1:8000/auth/upstream/panva/callback"
ACCOUNTS = {
    "ada": {"email": "ada@panva.example", "email_verified": True, "name": "Ada Lovelace"},
    "carol": {"email": "carol@example.com", "email_verified": False, "name": "Not Carol"},
    "bob": {"email": "bob@panva.example", "email_verified": True, "name": "Bob"},
}


@pytest.fixture(scope="module")
def panva(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Panva]:
    with panva_provider(CALLBACK, ACCOUNTS, tmp_path_factory.mktemp("panva") / "panva.log") as provider:
        yield provider


@pytest.fixture
async def admin(runtime: Runtime) -> Person:
    return await make_person(runtime, is_admin=True)


@pytest.fixture
async def upstream(http: httpx.AsyncClient, admin: Person, panva: Panva) -> dict[str, Any]:
    made = await http.post(
        "/api/v1/admin/upstreams",
        json={
            "name": "panva",
            "display_name": "Panva",
            "issuer": panva.issuer,
            "client_id": panva.client_id,
            "client_secret": panva.client_secret,
            "trust_email": True,
        },
        headers=admin.headers,
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


async def sign_in(http: httpx.AsyncClient, login: str) -> httpx.Response:
    departure = await http.get("/auth/upstream/panva/start")
    assert departure.status_code == 302, departure.text
    callback = await through_panva(departure.headers["location"], login, until=CALLBACK)
    return await http.get(callback, headers=JSON)


async def count(runtime: Runtime, table: type) -> int:
    async with runtime.database.read_only() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_a_first_sign_in_creates_an_account_and_a_second_reuses_it(
    http: httpx.AsyncClient, runtime: Runtime, upstream: dict[str, Any]
) -> None:
    assert upstream["jwks_uri"].endswith("/jwks")
    users_before = await count(runtime, User)
    first = (await sign_in(http, "ada")).json()
    assert first["requires_terms"] is True and first["email"] == "ada@panva.example"
    done = await http.post(
        first["accept_url"], data={"ticket": first["ticket"], "accept": "true"}, headers=JSON
    )
    assert done.status_code == 200, done.text
    bearer = {"Authorization": f"Bearer {done.json()['session_token']}"}
    me = (await http.get("/api/v1/users/me", headers=bearer)).json()
    assert (
        me["email"] == "ada@panva.example" and me["name"] == "Ada Lovelace"
    )  # trusted and verified upstream
    second = await sign_in(http, "ada")
    assert second.status_code == 200 and second.json()["user_id"] == done.json()["user_id"]
    assert await count(runtime, User) == users_before + 1


async def test_an_existing_persons_email_without_email_verified_links_nothing(
    http: httpx.AsyncClient, runtime: Runtime, upstream: dict[str, Any]
) -> None:
    await make_person(runtime, "carol@example.com")
    users_before = await count(runtime, User)
    refused = await sign_in(http, "carol")
    assert refused.status_code == 409 and refused.json()["error"] == "account_exists"
    assert await count(runtime, User) == users_before and await count(runtime, LinkedAccount) == 0


async def test_link_unlink_and_the_last_way_in(
    http: httpx.AsyncClient, runtime: Runtime, admin: Person, upstream: dict[str, Any]
) -> None:
    person = await make_person(runtime)
    departure = await http.post("/api/v1/users/me/linked-accounts/panva", headers=person.headers)
    callback = await through_panva(departure.json()["redirect_url"], "bob", until=CALLBACK)
    assert (await http.get(callback, headers=JSON)).json() == {"linked": "panva"}
    linked = (await http.get("/api/v1/users/me/linked-accounts", headers=person.headers)).json()
    assert [(a["provider"], a["provider_uid"], a["email"]) for a in linked] == [
        ("panva", "bob", "bob@panva.example")
    ]
    assert (await sign_in(http, "bob")).json()["user_id"] == str(person.user_id)  # bob signs in as the person
    assert (
        await http.delete("/api/v1/users/me/linked-accounts/panva", headers=person.headers)
    ).status_code == 204

    await http.patch("/api/v1/admin/upstreams/panva", json={"trust_email": False}, headers=admin.headers)
    first = (await sign_in(http, "ada")).json()
    made = await http.post(
        first["accept_url"], data={"ticket": first["ticket"], "accept": "true"}, headers=JSON
    )
    bearer = {"Authorization": f"Bearer {made.json()['session_token']}"}
    last = await http.delete("/api/v1/users/me/linked-accounts/panva", headers=bearer)
    assert last.status_code == 409 and "only way left" in last.json()["error_description"]
