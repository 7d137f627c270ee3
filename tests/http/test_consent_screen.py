"""GET/POST /oauth2/consent (SPEC §2, §6): what the person sees, and what their decision does."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from consentry.runtime import Runtime, utcnow
from consentry.storage.consents import ConsentRepository
from consentry.storage.tables import Client, Consent, ConsentHistory
from tests.oauth import (
    REDIRECT_URI,
    App,
    Person,
    approve,
    authorize_params,
    exchange_code,
    make_app,
    query_of,
)


@pytest.fixture
async def app(runtime: Runtime) -> App:
    return await make_app(
        runtime, policy_uri="https://app.example.com/privacy", logo_uri="https://app.example.com/l.png"
    )


async def consent_json(http: httpx.AsyncClient, person: Person, params: dict[str, str]) -> httpx.Response:
    return await http.get(
        "/oauth2/consent", params=params, headers=person.headers | {"Accept": "application/json"}
    )


async def stored_consent(runtime: Runtime, person: Person, app: App) -> Consent | None:
    async with runtime.database.read_only() as session:
        return await ConsentRepository(session).get_active(person.user_id, app.client_id)


async def test_consent_json_describes_the_pending_request(
    http: httpx.AsyncClient, app: App, person: Person
) -> None:
    params = authorize_params(app, scope="openid email", state="s1")
    redirect = await http.get("/oauth2/authorize", params=params, headers=person.headers)
    consent_query = redirect.headers["location"].split("?", 1)[1]
    response = await http.get(
        f"/oauth2/consent?{consent_query}", headers=person.headers | {"Accept": "application/json"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["client"] == {
        "id": app.client_id,
        "name": "Test App",
        "logo_uri": "https://app.example.com/l.png",
        "client_uri": None,
        "registered_itself_on": None,  # registered by its owner, not by itself (SPEC §8)
        "verified_host": None,
    }
    assert body["scopes"] == ["email", "openid"]
    assert body["new_scopes"] == ["email", "openid"]
    assert body["scope_descriptions"]["email"] == "See your email address"
    assert (body["redirect_uri"], body["state"]) == (REDIRECT_URI, "s1")


async def test_consent_needs_a_session(http: httpx.AsyncClient, app: App) -> None:
    response = await http.get(
        "/oauth2/consent", params=authorize_params(app), headers={"Accept": "application/json"}
    )
    assert response.status_code == 401
    page = await http.get("/consent", params=authorize_params(app))
    assert page.status_code == 302
    assert page.headers["location"].startswith("/login?")


async def test_consent_info_revalidates_the_request(
    http: httpx.AsyncClient, app: App, person: Person
) -> None:
    tampered = authorize_params(app) | {"redirect_uri": "https://evil.example.com/cb"}
    response = await consent_json(http, person, tampered)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_consent_page_is_accessible_and_not_frameable(
    http: httpx.AsyncClient, app: App, person: Person
) -> None:
    response = await http.get(
        "/consent", params=authorize_params(app, scope="openid profile email"), headers=person.headers
    )
    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    html = response.text
    assert "Test App wants to access your account" in html
    assert '<label for="scope-email">' in html
    assert "See your name, username, picture" in html
    assert 'name="remember"' in html
    assert 'value="allow"' in html and 'value="deny"' in html
    assert re.search(r'name="csrf_token" value="[0-9a-f]{64}"', html)


async def test_approve_issues_a_code_and_stores_consent_with_ttl(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    params = authorize_params(app, scope="openid profile")
    location = await approve(http, person, params)
    assert location.startswith(REDIRECT_URI + "?code=")
    assert query_of(location)["state"] == params["state"]
    consent = await stored_consent(runtime, person, app)
    assert consent is not None
    assert consent.scopes == {"openid", "profile"}
    remaining = consent.expires_at - utcnow()
    assert timedelta(days=89) < remaining <= timedelta(days=90)


async def test_client_consent_ttl_wins(http: httpx.AsyncClient, runtime: Runtime, person: Person) -> None:
    short = await make_app(runtime, consent_ttl_days=7)
    await approve(http, person, authorize_params(short))
    consent = await stored_consent(runtime, person, short)
    assert consent is not None
    assert consent.expires_at - utcnow() <= timedelta(days=7)


async def test_unticked_scopes_are_not_granted_and_not_asked_again(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    params = authorize_params(app, scope="openid profile email")
    location = await approve(http, person, params, granted_scopes=["profile"])
    code = query_of(location)["code"]
    tokens = (await exchange_code(http, app, code)).json()
    assert tokens["scope"] == "openid profile"  # openid cannot be unticked
    consent = await stored_consent(runtime, person, app)
    assert consent is not None
    assert consent.declined_scopes == {"email"}
    again = await http.get(
        "/oauth2/authorize",
        params=authorize_params(app, scope="openid profile email"),
        headers=person.headers,
    )
    assert "code" in query_of(again.headers["location"])  # email is not asked again...
    forced = await http.get(
        "/oauth2/authorize",
        params=authorize_params(app, scope="openid profile email", prompt="consent"),
        headers=person.headers,
    )
    assert forced.headers["location"].startswith("/consent?")  # ...until prompt=consent


async def test_granted_scopes_outside_the_request_are_refused(
    http: httpx.AsyncClient, app: App, person: Person
) -> None:
    params = authorize_params(app, scope="openid")
    body = {
        "client_id": app.client_id,
        "redirect_uri": app.redirect_uri,
        "scope": "openid",
        "state": params["state"],
        "approved": True,
        "granted_scopes": ["openid", "email"],
    }
    response = await http.post("/oauth2/consent", json=body, headers=person.headers)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_new_scopes_are_asked_alone_and_merged(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    await approve(http, person, authorize_params(app, scope="openid profile"))
    wider = authorize_params(app, scope="openid profile email")
    info = (await consent_json(http, person, wider)).json()
    assert info["new_scopes"] == ["email"]
    assert info["previously_granted_scopes"] == ["openid", "profile"]
    await approve(http, person, wider)
    consent = await stored_consent(runtime, person, app)
    assert consent is not None
    assert consent.scopes == {"openid", "profile", "email"}
    async with runtime.database.read_only() as session:
        actions = list(
            await session.scalars(
                select(ConsentHistory.action)
                .where(ConsentHistory.consent_id == consent.id)
                .order_by(ConsentHistory.id)
            )
        )
    assert actions == ["granted", "merged"]


async def test_deny_redirects_with_access_denied_and_keeps_earlier_consent(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    await approve(http, person, authorize_params(app, scope="openid profile"))
    before = await stored_consent(runtime, person, app)
    params = authorize_params(app, scope="openid profile email", state="deny-1")
    location = await approve(http, person, params, approved=False)
    query = query_of(location)
    assert (query["error"], query["state"]) == ("access_denied", "deny-1")
    assert "code" not in query
    after = await stored_consent(runtime, person, app)
    assert before is not None and after is not None
    assert (after.id, after.scopes, after.expires_at) == (before.id, before.scopes, before.expires_at)


async def test_remember_false_issues_a_code_but_stores_nothing(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    location = await approve(http, person, authorize_params(app), remember=False)
    tokens = (await exchange_code(http, app, query_of(location)["code"])).json()
    assert "access_token" in tokens
    assert "refresh_token" not in tokens  # nothing remembered, so no standing access
    assert await stored_consent(runtime, person, app) is None
    again = await http.get("/oauth2/authorize", params=authorize_params(app), headers=person.headers)
    assert again.headers["location"].startswith("/consent?")


async def test_posted_values_are_revalidated(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    narrow = await make_app(runtime, scope="openid")
    tampered = {
        "client_id": narrow.client_id,
        "redirect_uri": narrow.redirect_uri,
        "scope": "openid email",
        "approved": True,
    }
    response = await http.post("/oauth2/consent", json=tampered, headers=person.headers)
    assert response.status_code == 200
    assert query_of(response.json()["redirect_url"])["error"] == "invalid_scope"
    evil = {
        "client_id": app.client_id,
        "redirect_uri": "https://evil.example.com/cb",
        "scope": "openid",
        "approved": True,
    }
    refused = await http.post("/oauth2/consent", json=evil, headers=person.headers)
    assert refused.status_code == 400
    assert "redirect_url" not in refused.json()


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"client_id": "x"}',
        b'{"client_id": 5, "redirect_uri": "x", "scope": "x", "approved": 1}',
    ],
    ids=["malformed", "missing-fields", "wrong-types"],
)
async def test_malformed_decisions_are_invalid_request(
    http: httpx.AsyncClient, person: Person, body: bytes
) -> None:
    response = await http.post(
        "/oauth2/consent", content=body, headers=person.headers | {"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_html_form_needs_the_csrf_token(http: httpx.AsyncClient, app: App, person: Person) -> None:
    params = authorize_params(app, scope="openid profile")
    page = await http.get("/consent", params=params, headers=person.headers)
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert token is not None
    form = params | {"decision": "allow", "remember": "on", "scope_choice": "1"}
    form.pop("response_type")
    cookie = {
        "Cookie": f"consentry_session={person.session_token}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    forged = await http.post(
        "/oauth2/consent", content=urlencode(form | {"csrf_token": "0" * 64}), headers=cookie
    )
    assert forged.status_code == 403
    missing = await http.post("/oauth2/consent", content=urlencode(form), headers=cookie)
    assert missing.status_code == 403
    body = urlencode(form | {"csrf_token": token.group(1)}) + "&granted_scopes=openid&granted_scopes=profile"
    accepted = await http.post("/oauth2/consent", content=body, headers=cookie)
    assert accepted.status_code == 302
    assert "code" in query_of(accepted.headers["location"])


async def test_policy_version_change_asks_again(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    app = await make_app(runtime, policy_version="2026-01")
    await approve(http, person, authorize_params(app))
    async with runtime.database.unit_of_work() as session:
        client = await session.get(Client, app.client_id)
        assert client is not None
        client.policy_version = "2026-11"
    runtime.clients.invalidate(app.client_id)
    response = await http.get("/oauth2/authorize", params=authorize_params(app), headers=person.headers)
    assert response.headers["location"].startswith("/consent?")
    info = (await consent_json(http, person, authorize_params(app))).json()
    assert info["reasons"] == ["policy_changed"]
    assert info["policy_version"] == "2026-11"
    await approve(http, person, authorize_params(app))
    consent = await stored_consent(runtime, person, app)
    assert consent is not None and consent.policy_version == "2026-11"


async def test_expired_consent_asks_again(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    await approve(http, person, authorize_params(app))
    async with runtime.database.unit_of_work() as session:
        consent = await ConsentRepository(session).get_active(person.user_id, app.client_id)
        assert consent is not None
        consent.expires_at = utcnow() - timedelta(seconds=1)
    response = await http.get("/oauth2/authorize", params=authorize_params(app), headers=person.headers)
    assert response.headers["location"].startswith("/consent?")
    await approve(http, person, authorize_params(app))
    async with runtime.database.read_only() as session:
        records = list(await session.scalars(select(Consent).where(Consent.user_id == person.user_id)))
    assert sorted(record.status for record in records) == ["active", "expired"]


async def test_a_failure_to_store_consent_does_not_block_the_redirect(
    http: httpx.AsyncClient,
    runtime: Runtime,
    app: App,
    person: Person,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(ConsentRepository, "add_history", broken)
    location = await approve(http, person, authorize_params(app))
    assert "code" in query_of(location)
    assert "failed to store consent" in caplog.text
    assert await stored_consent(runtime, person, app) is None  # rolled back to the savepoint


@pytest.mark.parametrize("path", ["/oauth2/consent", "/consent"])
async def test_a_max_age_of_non_ascii_digits_is_a_clear_refusal(
    http: httpx.AsyncClient, app: App, person: Person, path: str
) -> None:
    params = authorize_params(app) | {"max_age": "\u00b2"}
    response = await http.get(path, params=params, headers=person.headers | {"accept": "application/json"})
    assert response.status_code == 400
    assert "max_age" in response.text
