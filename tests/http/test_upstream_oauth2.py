"""Signing in with a plain OAuth 2.0 provider (SPEC §10), against a loopback server that behaves as GitHub's
endpoints do: a first sign-in makes an account after the terms, a second reuses it; an email alone links
nothing; linking and unlinking from the account; and every bad callback refused with nothing created."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from consentry.runtime import Runtime, utcnow
from consentry.services.accounts import purge_deleted_accounts
from consentry.storage.tables import AuditEvent, LinkedAccount, User
from tests.oauth import Person, make_app, make_person, pkce_pair
from tests.upstream_fakes import FakeGitHub, GitHubPerson

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    server = FakeGitHub()
    yield server
    server.stop()


@pytest.fixture
async def admin(runtime: Runtime) -> Person:
    return await make_person(runtime, is_admin=True)


def primary(email: str, *, verified: bool = True) -> list[dict[str, Any]]:
    """GitHub's /user/emails: the person's primary address, verified or not."""
    return [{"email": email, "primary": True, "verified": verified}]


async def add_github(
    http: httpx.AsyncClient, admin: Person, github: FakeGitHub, **extra: Any
) -> dict[str, Any]:
    made = await http.post(
        "/api/v1/admin/upstreams",
        json={
            "name": "github",
            "kind": "oauth2",
            "display_name": "GitHub",
            "client_id": github.client_id,
            "client_secret": github.client_secret,
            "authorize_url": github.url("/login/oauth/authorize"),
            "token_url": github.url("/login/oauth/access_token"),
            "userinfo_url": github.url("/user"),
            "emails_url": github.url("/user/emails"),
            "scope": "read:user user:email",
            **extra,
        },
        headers=admin.headers,
    )
    assert made.status_code == 201, made.text
    assert "client_secret" not in made.json()
    return dict(made.json())


async def to_github_and_back(http: httpx.AsyncClient, departure: httpx.Response) -> str:
    """The browser follows the redirect to the provider, which sends it back: the callback's URL."""
    assert departure.status_code in (200, 302), departure.text
    location = (
        departure.headers["location"] if departure.status_code == 302 else departure.json()["redirect_url"]
    )
    async with httpx.AsyncClient() as browser:
        answered = await browser.get(location)
    assert answered.status_code == 302, answered.text
    callback = answered.headers["location"]
    assert callback.startswith("http://127.0.0.1:8000/auth/upstream/github/callback?")
    return callback


async def sign_in(
    http: httpx.AsyncClient, *, context: dict[str, str] | None = None, headers: dict[str, str] = JSON
) -> httpx.Response:
    params = {"oauth2_context": json.dumps(context)} if context else None
    callback = await to_github_and_back(http, await http.get("/auth/upstream/github/start", params=params))
    return await http.get(callback, headers=headers)


async def accept(
    http: httpx.AsyncClient, answered: httpx.Response, headers: dict[str, str] = JSON
) -> httpx.Response:
    body = answered.json()
    assert body["requires_terms"] is True, body
    return await http.post(
        body["accept_url"], data={"ticket": body["ticket"], "accept": "true"}, headers=headers
    )


async def count(runtime: Runtime, table: type) -> int:
    async with runtime.database.read_only() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_a_first_sign_in_makes_an_account_after_the_terms_and_a_second_reuses_it(
    http: httpx.AsyncClient, runtime: Runtime, admin: Person, github: FakeGitHub
) -> None:
    offered = await http.get("/api/v1/auth/upstreams")
    assert offered.json() == []
    await add_github(http, admin, github)
    assert (await http.get("/api/v1/auth/upstreams")).json() == [
        {"name": "github", "display_name": "GitHub", "icon": None}
    ]
    users_before = await count(runtime, User)
    github.next_person = GitHubPerson(
        1001,
        "octocat",
        None,
        primary("octo@example.com"),
        name="The Octocat",
        profile={"locale": "en-GB", "picture": "javascript:alert(1)"},  # a picture no claim may hold
    )
    first = await sign_in(http)
    assert first.status_code == 200 and first.json()["email"] == "octo@example.com"
    assert await count(runtime, User) == users_before  # nothing until the terms are accepted
    done = await accept(http, first)
    assert done.status_code == 200, done.text
    signed_in = done.json()
    assert set(signed_in) == {"user_id", "session_token", "expires_at"}
    bearer = {"Authorization": f"Bearer {signed_in['session_token']}"}
    me = (await http.get("/api/v1/users/me", headers=bearer)).json()
    assert me["name"] == "The Octocat" and me.get("email") is None  # GitHub's email is not trusted here
    assert (me["preferred_username"], me["locale"], me["picture"]) == ("octocat", "en-GB", None)
    linked = (await http.get("/api/v1/users/me/linked-accounts", headers=bearer)).json()
    assert [(a["provider"], a["provider_uid"], a["email"]) for a in linked] == [
        ("github", "1001", "octo@example.com")
    ]
    assert linked[0]["linked_at"] and linked[0]["last_used_at"]
    again = await accept(http, first)  # the ticket works once
    assert again.status_code == 400

    second = await sign_in(http)
    assert second.status_code == 200, second.text
    assert second.json()["user_id"] == signed_in["user_id"]
    assert await count(runtime, User) == users_before + 1
    async with runtime.database.read_only() as session:
        stored = await session.scalar(select(LinkedAccount))
        methods = list(
            await session.scalars(
                select(AuditEvent.details).where(AuditEvent.event_type == "login_succeeded")
            )
        )
    assert stored is not None and stored.access_token is not None
    assert stored.access_token.startswith("gAAAA")  # Fernet: encrypted at rest
    assert runtime.secret_box.open(stored.access_token).decode() in github.tokens
    assert {"method": "upstream", "provider": "github"} in methods


async def test_an_authorization_request_is_carried_through_and_validated_again(
    http: httpx.AsyncClient, runtime: Runtime, admin: Person, github: FakeGitHub
) -> None:
    await add_github(http, admin, github)
    app = await make_app(runtime)
    _, challenge = pkce_pair()
    context = {"client_id": app.client_id, "redirect_uri": app.redirect_uri, "scope": "openid profile",
               "state": "xyz", "code_challenge": challenge, "code_challenge_method": "S256"}  # fmt: skip
    github.next_person = GitHubPerson(1002, "hubot", None)
    done = await accept(http, await sign_in(http, context=context))
    assert done.json()["requires_consent"] is True
    assert done.json()["consent_info"]["client"]["id"] == app.client_id
    bad = await http.get(
        "/auth/upstream/github/start",
        params={"oauth2_context": json.dumps({**context, "redirect_uri": "https://x"})},
    )
    assert bad.status_code == 400 and "oauth2_context" in bad.json()["error_description"]


async def test_a_browser_reads_the_terms_page_and_lands_signed_in(
    http: httpx.AsyncClient, admin: Person, github: FakeGitHub
) -> None:
    await add_github(http, admin, github)
    login = await http.get("/login", headers=HTML)
    assert 'href="/auth/upstream/github/start"' in login.text and "Continue with GitHub" in login.text
    github.next_person = GitHubPerson(1003, "mona", None)
    page = await sign_in(http, headers=HTML)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.count('type="submit"') == 1 and 'action="/auth/upstream/github/accept"' in page.text
    ticket = page.text.split('name="ticket" value="')[1].split('"')[0]
    landed = await http.post(
        "/auth/upstream/github/accept", data={"ticket": ticket, "accept": "true"}, headers=HTML
    )
    assert landed.status_code == 302 and landed.headers["location"] == "/account/apps"
    assert "consentry_session=" in landed.headers["set-cookie"]
    account = await http.get("/account", headers=HTML)
    assert "GitHub" in account.text and "linked" in account.text


async def test_an_email_alone_links_nothing(
    http: httpx.AsyncClient, runtime: Runtime, admin: Person, github: FakeGitHub
) -> None:
    """An upstream asserting an existing person's email is not let in: not when the operator does not trust
    its checks, and not when it did not verify the address."""
    person = await make_person(runtime, "taken@example.com")
    await add_github(http, admin, github)
    users_before, links_before = await count(runtime, User), await count(runtime, LinkedAccount)
    github.next_person = GitHubPerson(2001, "mallory", "taken@example.com", primary("taken@example.com"))
    refused = await sign_in(http)
    assert refused.status_code == 409 and refused.json()["error"] == "account_exists"
    page = await sign_in(http, headers=HTML)
    assert page.status_code == 409 and "Sign in to that account" in page.text
    changed = await http.patch(
        "/api/v1/admin/upstreams/github", json={"trust_email": True}, headers=admin.headers
    )
    assert changed.status_code == 200 and changed.json()["trust_email"] is True
    github.next_person = GitHubPerson(
        2002, "mallory2", "taken@example.com", primary("taken@example.com", verified=False)
    )
    assert (await sign_in(http)).status_code == 409  # trusted, but GitHub did not verify it
    assert (await count(runtime, User), await count(runtime, LinkedAccount)) == (users_before, links_before)

    github.next_person = GitHubPerson(2003, "real-owner", None, primary("Taken@example.com"))
    linked = await sign_in(http)
    assert linked.status_code == 200 and linked.json()["user_id"] == str(person.user_id)


async def test_link_and_unlink_from_the_account_and_keep_one_way_in(
    http: httpx.AsyncClient, runtime: Runtime, admin: Person, github: FakeGitHub
) -> None:
    await add_github(http, admin, github)
    person = await make_person(runtime)
    github.next_person = GitHubPerson(3001, "linker", None)
    departure = await http.post("/api/v1/users/me/linked-accounts/github", headers=person.headers)
    assert departure.status_code == 200 and departure.json()["redirect_url"].startswith(github.url("/"))
    linked = await http.get(await to_github_and_back(http, departure), headers=JSON)
    assert linked.json() == {"linked": "github"}
    listed = (await http.get("/api/v1/users/me/linked-accounts", headers=person.headers)).json()
    assert [a["provider_uid"] for a in listed] == ["3001"]

    other = await make_person(runtime)
    stolen = await http.get(
        await to_github_and_back(
            http, await http.post("/api/v1/users/me/linked-accounts/github", headers=other.headers)
        ),
        headers=JSON,
    )
    assert stolen.status_code == 409  # a (provider, provider_uid) belongs to one person

    gone = await http.delete("/api/v1/users/me/linked-accounts/github", headers=person.headers)
    assert gone.status_code == 204
    assert (await http.get("/api/v1/users/me/linked-accounts", headers=person.headers)).json() == []
    assert (
        await http.delete("/api/v1/users/me/linked-accounts/github", headers=person.headers)
    ).status_code == 404

    github.next_person = GitHubPerson(3002, "only-github", None)
    created = (await accept(http, await sign_in(http))).json()
    bearer = {"Authorization": f"Bearer {created['session_token']}"}
    last = await http.delete("/api/v1/users/me/linked-accounts/github", headers=bearer)
    assert last.status_code == 409 and "only way left" in last.json()["error_description"]
    async with runtime.database.read_only() as session:
        events = list(
            await session.scalars(select(AuditEvent.event_type).where(AuditEvent.user_id == person.user_id))
        )
    assert "account_linked" in events and "account_unlinked" in events


@pytest.mark.parametrize("tamper", ["state", "replay", "another_browser", "no_code", "provider_error"])
async def test_a_bad_callback_is_refused_and_creates_nothing(
    http: httpx.AsyncClient, runtime: Runtime, admin: Person, github: FakeGitHub, tamper: str
) -> None:
    await add_github(http, admin, github)
    github.next_person = GitHubPerson(4001, "eve", None)
    callback = await to_github_and_back(http, await http.get("/auth/upstream/github/start"))
    users_before = await count(runtime, User)
    if tamper == "state":
        callback = callback.replace("state=", "state=x")
    elif tamper == "replay":
        assert (await http.get(callback, headers=JSON)).status_code == 200
    elif tamper == "another_browser":
        http.cookies.clear()
    elif tamper == "no_code":
        callback = callback.split("?")[0] + "?state=" + callback.split("state=")[1]
    else:
        callback = callback.split("?")[0] + "?error=access_denied&state=" + callback.split("state=")[1]
    refused = await http.get(callback, headers=JSON)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "upstream_sign_in_failed"
    page = await http.get(callback, headers=HTML)
    assert page.status_code == 400 and "text/html" in page.headers["content-type"]
    assert await count(runtime, User) == users_before
    assert await count(runtime, LinkedAccount) == 0


async def test_administrators_find_people_by_linked_account_and_see_statistics(
    http: httpx.AsyncClient, runtime: Runtime, admin: Person, github: FakeGitHub
) -> None:
    await add_github(http, admin, github)
    github.next_person = GitHubPerson(5001, "findme", None)
    user_id = (await accept(http, await sign_in(http))).json()["user_id"]
    found = await http.get(
        "/api/v1/admin/users", params={"provider": "github", "provider_uid": "5001"}, headers=admin.headers
    )
    assert [u["user_id"] for u in found.json()["users"]] == [user_id]
    overview = (await http.get(f"/api/v1/admin/users/{user_id}", headers=admin.headers)).json()
    assert [a["provider_uid"] for a in overview["linked_accounts"]] == ["5001"]
    stats = (await http.get("/api/v1/admin/stats", headers=admin.headers)).json()
    assert stats["linked_accounts"] == {"github": 1}
    assert [(r["user_id"], r["provider"]) for r in stats["recent_links"]] == [(user_id, "github")]
    listed = (await http.get("/api/v1/admin/upstreams", headers=admin.headers)).json()["upstreams"]
    assert [u["name"] for u in listed] == ["github"]
    disabled = await http.patch(
        "/api/v1/admin/upstreams/github", json={"enabled": False}, headers=admin.headers
    )
    assert disabled.json()["enabled"] is False
    assert (await http.get("/api/v1/auth/upstreams")).json() == []
    assert (await http.get("/auth/upstream/github/start")).status_code == 404
    assert (await http.delete("/api/v1/admin/upstreams/github", headers=admin.headers)).status_code == 204
    assert await count(runtime, LinkedAccount) == 0


async def test_an_expired_upstream_token_is_refreshed_when_it_is_used(
    http: httpx.AsyncClient, runtime: Runtime, admin: Person, github: FakeGitHub
) -> None:
    await add_github(http, admin, github)
    github.expiring = True
    github.next_person = GitHubPerson(7001, "refreshed", None)
    user_id = (await accept(http, await sign_in(http))).json()["user_id"]
    url = f"/api/v1/admin/users/{user_id}/linked-accounts/github/token"
    kept = (await http.get(url, headers=admin.headers)).json()
    assert kept["access_token"] in github.tokens and kept["expires_at"]
    requests = github.token_requests
    async with runtime.database.unit_of_work() as session:
        await session.execute(update(LinkedAccount).values(token_expires_at=utcnow() - timedelta(minutes=1)))
    refreshed = (await http.get(url, headers=admin.headers)).json()
    assert refreshed["access_token"] != kept["access_token"] and refreshed["access_token"] in github.tokens
    assert github.token_requests == requests + 1
    again = (await http.get(url, headers=admin.headers)).json()
    assert again["access_token"] == refreshed["access_token"]  # stored: not refreshed twice
    assert github.token_requests == requests + 1
    async with runtime.database.read_only() as session:
        reads = await session.scalar(
            select(func.count()).where(AuditEvent.event_type == "upstream_token_read")
        )
    assert reads == 3
    missing = await http.get(
        f"/api/v1/admin/users/{admin.user_id}/linked-accounts/github/token", headers=admin.headers
    )
    assert missing.status_code == 404


async def test_a_deleted_account_is_restored_by_signing_in_and_purged_with_its_links(
    http: httpx.AsyncClient, runtime: Runtime, admin: Person, github: FakeGitHub
) -> None:
    await add_github(http, admin, github)
    github.next_person = GitHubPerson(8001, "leaver", None)
    created = (await accept(http, await sign_in(http))).json()
    bearer = {"Authorization": f"Bearer {created['session_token']}"}
    assert (await http.delete("/api/v1/users/me", headers=bearer)).status_code == 200
    back = await sign_in(http)
    assert back.status_code == 200 and back.json()["user_id"] == created["user_id"]
    bearer = {"Authorization": f"Bearer {back.json()['session_token']}"}
    assert (await http.get("/api/v1/users/me", headers=bearer)).status_code == 200
    assert (await http.delete("/api/v1/users/me", headers=bearer)).status_code == 200
    purged = await purge_deleted_accounts(runtime, now=utcnow() + timedelta(days=365), batch=10)
    assert purged == 1
    assert await count(runtime, LinkedAccount) == 0
    assert (await sign_in(http)).json()["requires_terms"] is True  # a stranger again


async def test_the_export_names_linked_accounts(
    http: httpx.AsyncClient, runtime: Runtime, admin: Person, github: FakeGitHub
) -> None:
    await add_github(http, admin, github)
    person = await make_person(runtime)
    github.next_person = GitHubPerson(6001, "exported", None)
    departure = await http.post("/api/v1/users/me/linked-accounts/github", headers=person.headers)
    await http.get(await to_github_and_back(http, departure), headers=JSON)
    exported = (await http.get("/api/v1/oauth2/consents/export", headers=person.headers)).json()
    assert [a["provider_uid"] for a in exported["linked_accounts"]] == ["6001"]
    assert utcnow()  # the export is of now


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"name": "Bad Name", "kind": "oauth2"}, "name"),
        ({"name": "x", "kind": "oauth2", "authorize_url": None}, "authorize_url is required"),
        ({"name": "x", "kind": "oauth2", "token_url": "ftp://example.com/t"}, "token_url"),
        ({"name": "x", "kind": "oidc", "authorize_url": None}, "issuer is required"),
    ],
)
async def test_a_provider_that_cannot_be_used_is_refused(
    http: httpx.AsyncClient, admin: Person, github: FakeGitHub, body: dict[str, Any], why: str
) -> None:
    values = {"client_id": "c", "client_secret": "s", "authorize_url": github.url("/a"),
              "token_url": github.url("/t"), "userinfo_url": github.url("/u"), **body}  # fmt: skip
    refused = await http.post("/api/v1/admin/upstreams", json=values, headers=admin.headers)
    assert refused.status_code == 400 and why in refused.json()["error_description"]
