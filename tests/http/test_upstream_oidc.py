"""Consentry federates with itself (SPEC §10): a second Consentry, served as its own process on loopback, is
an OpenID Connect upstream of the one under test. Its discovery document configures the provider; its ID
tokens are checked against its JWKS (issuer, audience, nonce, signature); a bad one signs nobody in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import func, select, update

from consentry.runtime import Runtime
from consentry.storage.tables import LinkedAccount, UpstreamProvider, User
from tests.oauth import Person, make_person
from tests.pg import free_port
from tests.served import serving, signed_in

JSON = {"Accept": "application/json"}
CALLBACK = "http://127.0.0.1:8000/auth/upstream/home/callback"


@dataclass
class Upstream:
    url: str
    client_id: str
    client_secret: str
    email: str
    session: str  # a signed-in session at the upstream


def _cli(env: dict[str, str], cwd: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "consentry", *args, "--json"], env=env, cwd=cwd, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    """Another Consentry (SQLite, its own secret), with a person and a trusted client for the one tested."""
    home = tmp_path_factory.mktemp("upstream")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")},
        "CONSENTRY_DATABASE_URL": f"sqlite+aiosqlite:///{home / 'upstream.db'}",
        "CONSENTRY_ISSUER": url,
        "CONSENTRY_SECRET_KEY_FILE": str(home / "secret"),
        "CONSENTRY_ARGON2_MEMORY_KIB": "8192",
        "CONSENTRY_ARGON2_TIME_COST": "1",
    }
    email, password = "ada@upstream.example", "ada's upstream password"
    _cli(env, home, "user", "create", "--email", email, "--password", password, "--verified")
    client = _cli(
        env, home, "client", "create", "--name", "Downstream", "--redirect-uri", CALLBACK, "--trusted"
    )
    with serving(env, home, port):
        yield Upstream(
            url, client["client_id"], client["client_secret"], email, signed_in(url, email, password)
        )


@pytest.fixture
async def admin(runtime: Runtime) -> Person:
    return await make_person(runtime, is_admin=True)


@pytest.fixture
async def home(http: httpx.AsyncClient, admin: Person, upstream: Upstream) -> dict[str, Any]:
    made = await http.post(
        "/api/v1/admin/upstreams",
        json={
            "name": "home",
            "display_name": "Home",
            "issuer": upstream.url,
            "client_id": upstream.client_id,
            "client_secret": upstream.client_secret,
        },
        headers=admin.headers,
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


async def through_upstream(
    http: httpx.AsyncClient, upstream: Upstream, departure: httpx.Response, **tamper: str
) -> str:
    """The person, signed in at the upstream, is sent there and back: the callback URL (the authorization
    request's parameters changed by ``tamper`` on the way, as a meddler might)."""
    assert departure.status_code in (200, 302), departure.text
    location = (
        departure.headers["location"] if departure.status_code == 302 else departure.json()["redirect_url"]
    )
    parts = urlsplit(location)
    params = dict(parse_qsl(parts.query)) | tamper
    async with httpx.AsyncClient() as browser:
        answered = await browser.get(
            f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(params)}",
            headers={"Authorization": f"Bearer {upstream.session}"},
        )
    assert answered.status_code == 302, answered.text
    assert answered.headers["location"].startswith(CALLBACK + "?"), answered.headers["location"]
    return answered.headers["location"]


async def sign_in(http: httpx.AsyncClient, upstream: Upstream, **tamper: str) -> httpx.Response:
    callback = await through_upstream(http, upstream, await http.get("/auth/upstream/home/start"), **tamper)
    return await http.get(callback, headers=JSON)


async def count(runtime: Runtime, table: type) -> int:
    async with runtime.database.read_only() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_the_provider_is_configured_from_its_discovery_document(
    home: dict[str, Any], upstream: Upstream
) -> None:
    assert home["kind"] == "oidc" and home["issuer"] == upstream.url
    assert home["authorize_url"] == f"{upstream.url}/oauth2/authorize"
    assert home["token_url"] == f"{upstream.url}/oauth2/token"
    assert home["jwks_uri"] == f"{upstream.url}/oauth2/jwks"
    assert home["scope"] == "openid email profile" and home["uid_field"] == "sub"


async def test_a_first_sign_in_makes_an_account_and_a_second_reuses_it(
    http: httpx.AsyncClient, runtime: Runtime, home: dict[str, Any], upstream: Upstream
) -> None:
    first = await sign_in(http, upstream)
    assert first.status_code == 200, first.text
    assert first.json()["requires_terms"] is True and first.json()["email"] == upstream.email
    body = first.json()
    done = await http.post(
        body["accept_url"], data={"ticket": body["ticket"], "accept": "true"}, headers=JSON
    )
    assert done.status_code == 200, done.text
    second = await sign_in(http, upstream)
    assert second.status_code == 200 and second.json()["user_id"] == done.json()["user_id"]
    bearer = {"Authorization": f"Bearer {second.json()['session_token']}"}
    linked = (await http.get("/api/v1/users/me/linked-accounts", headers=bearer)).json()
    assert [(a["provider"], a["email"]) for a in linked] == [("home", upstream.email)]


async def test_an_existing_person_is_linked_by_a_verified_email_only_when_the_provider_is_trusted(
    http: httpx.AsyncClient, runtime: Runtime, admin: Person, home: dict[str, Any], upstream: Upstream
) -> None:
    person = await make_person(runtime, upstream.email)
    refused = await sign_in(http, upstream)
    assert refused.status_code == 409 and refused.json()["error"] == "account_exists"
    await http.patch("/api/v1/admin/upstreams/home", json={"trust_email": True}, headers=admin.headers)
    linked = await sign_in(http, upstream)  # the upstream says email_verified: true
    assert linked.status_code == 200 and linked.json()["user_id"] == str(person.user_id)


@pytest.mark.parametrize("tamper", ["nonce", "issuer", "state", "replay", "mix_up"])
async def test_a_bad_answer_signs_nobody_in(
    http: httpx.AsyncClient, runtime: Runtime, home: dict[str, Any], upstream: Upstream, tamper: str
) -> None:
    users_before = await count(runtime, User)
    departure = await http.get("/auth/upstream/home/start")
    if tamper == "nonce":
        callback = await through_upstream(http, upstream, departure, nonce="a-nonce-of-someone-else")
    else:
        callback = await through_upstream(http, upstream, departure)
    if tamper == "issuer":  # the provider's tokens now come from an issuer other than the one configured
        async with runtime.database.unit_of_work() as session:
            await session.execute(update(UpstreamProvider).values(issuer="http://127.0.0.1:1/elsewhere"))
    elif tamper == "state":
        callback = callback.replace("state=", "state=0")
    elif tamper == "replay":
        assert (await http.get(callback, headers=JSON)).status_code == 200
    elif tamper == "mix_up":  # RFC 9207: the answer names another issuer than the provider asked
        callback = callback.replace("iss=", "iss=https%3A%2F%2Fevil.example.com&was=")
    refused = await http.get(callback, headers=JSON)
    assert refused.status_code == 400, refused.text
    reason = refused.json()["error_description"]
    expected = {"nonce": "nonce", "issuer": "iss", "state": "start again", "replay": "already used",
                "mix_up": "did not come from"}[tamper]  # fmt: skip
    assert expected in reason, reason
    assert await count(runtime, User) == users_before
    assert await count(runtime, LinkedAccount) == 0


async def test_link_unlink_and_the_last_way_in(
    http: httpx.AsyncClient, runtime: Runtime, home: dict[str, Any], upstream: Upstream
) -> None:
    person = await make_person(runtime)
    departure = await http.post("/api/v1/users/me/linked-accounts/home", headers=person.headers)
    linked = await http.get(await through_upstream(http, upstream, departure), headers=JSON)
    assert linked.json() == {"linked": "home"}
    assert (await sign_in(http, upstream)).json()["user_id"] == str(person.user_id)
    assert (
        await http.delete("/api/v1/users/me/linked-accounts/home", headers=person.headers)
    ).status_code == 204

    first = (await sign_in(http, upstream)).json()  # a stranger again: a new account, reached only this way
    made = await http.post(
        first["accept_url"], data={"ticket": first["ticket"], "accept": "true"}, headers=JSON
    )
    bearer = {"Authorization": f"Bearer {made.json()['session_token']}"}
    last = await http.delete("/api/v1/users/me/linked-accounts/home", headers=bearer)
    assert last.status_code == 409
