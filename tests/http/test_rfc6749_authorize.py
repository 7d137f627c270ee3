"""GET /oauth2/authorize (RFC 6749 §4.1.1-§4.1.2.1, RFC 9207, OIDC Core §3.1.2): every refusal and route."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest

from consentry.runtime import Runtime
from tests.oauth import (
    REDIRECT_URI,
    App,
    Person,
    approve,
    authorize_params,
    make_app,
    pkce_pair,
    query_of,
)

ISSUER = "http://127.0.0.1:8000"


async def authorize(
    http: httpx.AsyncClient, person: Person | None, params: dict[str, str], **headers: str
) -> httpx.Response:
    return await http.get(
        "/oauth2/authorize", params=params, headers=(person.headers if person else {}) | headers
    )


async def test_unknown_client_is_400_and_never_redirects(
    http: httpx.AsyncClient, app: App, person: Person
) -> None:
    response = await authorize(http, person, authorize_params(app) | {"client_id": "nope"})
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example.com/callback",
        REDIRECT_URI + "/",
        REDIRECT_URI + "?x=1",
        REDIRECT_URI.upper(),
        "",
    ],
    ids=["other-host", "trailing-slash", "extra-query", "case-changed", "missing"],
)
async def test_redirect_uri_must_match_exactly_and_is_never_redirected_to(
    http: httpx.AsyncClient, app: App, person: Person, redirect_uri: str
) -> None:
    response = await authorize(http, person, authorize_params(app) | {"redirect_uri": redirect_uri})
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.json()["error"] == "invalid_request"


async def test_refusal_is_an_html_page_for_browsers(
    http: httpx.AsyncClient, app: App, person: Person
) -> None:
    response = await authorize(
        http,
        person,
        authorize_params(app) | {"redirect_uri": "https://evil.example/cb"},
        accept="text/html,application/xhtml+xml",
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "redirect_uri does not match" in response.text


async def test_repeated_client_id_is_not_redirected(
    http: httpx.AsyncClient, app: App, person: Person
) -> None:
    query = urlencode(authorize_params(app)) + f"&client_id={app.client_id}"
    response = await http.get(f"/oauth2/authorize?{query}", headers=person.headers)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": ""}, "invalid_request"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"scope": ""}, "invalid_scope"),
        ({"scope": "open\tid"}, "invalid_scope"),
        ({"code_challenge": "x" * 43, "code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "short", "code_challenge_method": "S256"}, "invalid_request"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"max_age": "-5"}, "invalid_request"),
        ({"max_age": "\u00b2"}, "invalid_request"),
        ({"max_age": "\u0663"}, "invalid_request"),
        ({"state": "s" * 3000}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": "https://app.example/request.jwt"}, "request_uri_not_supported"),
    ],
    ids=[
        "response-type-token",
        "response-type-missing",
        "unknown-scope",
        "no-scope",
        "bad-scope-token",
        "plain-pkce",
        "short-challenge",
        "prompt-none-combined",
        "negative-max-age",
        "superscript-max-age",
        "arabic-indic-max-age",
        "huge-state",
        "request-object",
        "request-uri",
    ],
)
async def test_bad_parameters_redirect_with_error_state_and_iss(
    http: httpx.AsyncClient, app: App, person: Person, change: dict[str, str], error: str
) -> None:
    params = authorize_params(app, state="st-1") | change
    response = await authorize(http, person, params)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    query = query_of(location)
    assert query["error"] == error
    assert query["iss"] == ISSUER
    if change.get("state") is None:
        assert query["state"] == "st-1"


async def test_scope_the_client_did_not_register_is_invalid_scope(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    narrow = await make_app(runtime, scope="openid")
    response = await authorize(http, person, authorize_params(narrow, scope="openid email"))
    assert query_of(response.headers["location"])["error"] == "invalid_scope"


async def test_public_client_must_use_pkce(http: httpx.AsyncClient, runtime: Runtime, person: Person) -> None:
    public = await make_app(runtime, token_endpoint_auth_method="none")
    response = await authorize(http, person, authorize_params(public))
    query = query_of(response.headers["location"])
    assert query["error"] == "invalid_request"
    assert "PKCE" in query["error_description"]
    _, challenge = pkce_pair()
    ok = await authorize(http, person, authorize_params(public, challenge=challenge))
    assert ok.headers["location"].startswith("/consent?")


async def test_client_without_code_grant_is_unauthorized(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    machine = await make_app(runtime, scope="openid", grant_types=["client_credentials"])
    response = await authorize(http, person, authorize_params(machine, scope="openid"))
    assert query_of(response.headers["location"])["error"] == "unauthorized_client"


async def test_not_signed_in_goes_to_login_carrying_the_request(http: httpx.AsyncClient, app: App) -> None:
    params = authorize_params(app, nonce="n1")
    response = await authorize(http, None, params)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith("/login?")
    assert query_of(location)["client_id"] == app.client_id
    assert query_of(location)["nonce"] == "n1"


async def test_invalid_session_token_counts_as_signed_out(http: httpx.AsyncClient, app: App) -> None:
    response = await http.get(
        "/oauth2/authorize", params=authorize_params(app), headers={"Authorization": "Bearer not-a-session"}
    )
    assert response.headers["location"].startswith("/login?")


async def test_session_cookie_is_accepted(http: httpx.AsyncClient, app: App, person: Person) -> None:
    response = await http.get(
        "/oauth2/authorize",
        params=authorize_params(app),
        headers={"Cookie": f"consentry_session={person.session_token}"},
    )
    assert response.headers["location"].startswith("/consent?")


@pytest.mark.parametrize(
    ("signed_in", "error"),
    [(False, "login_required"), (True, "consent_required")],
    ids=["signed-out", "no-consent"],
)
async def test_prompt_none_never_shows_a_page(
    http: httpx.AsyncClient, app: App, person: Person, signed_in: bool, error: str
) -> None:
    response = await authorize(
        http, person if signed_in else None, authorize_params(app, prompt="none", state="s9")
    )
    query = query_of(response.headers["location"])
    assert (query["error"], query["state"], query["iss"]) == (error, "s9", ISSUER)


async def test_prompt_login_and_max_age_zero_ask_to_sign_in_again(
    http: httpx.AsyncClient, app: App, person: Person
) -> None:
    for extra in ({"prompt": "login"}, {"max_age": "0"}):
        response = await authorize(http, person, authorize_params(app) | extra)
        assert response.headers["location"].startswith("/login?"), extra


async def test_consent_needed_goes_to_consent_then_remembered_consent_skips(
    http: httpx.AsyncClient, app: App, person: Person
) -> None:
    params = authorize_params(app, scope="openid profile", state="abc")
    first = await authorize(http, person, params)
    assert first.headers["location"].startswith("/consent?")
    await approve(http, person, params)
    again = await authorize(http, person, authorize_params(app, scope="openid profile", state="def"))
    query = query_of(again.headers["location"])
    assert again.headers["location"].startswith(REDIRECT_URI + "?code=")
    assert (query["state"], query["iss"]) == ("def", ISSUER)
    narrower = await authorize(http, person, authorize_params(app, scope="openid"))
    assert "code" in query_of(narrower.headers["location"])
    silent = await authorize(http, person, authorize_params(app, scope="openid", prompt="none"))
    assert "code" in query_of(silent.headers["location"])


async def test_prompt_consent_always_asks(http: httpx.AsyncClient, app: App, person: Person) -> None:
    params = authorize_params(app)
    await approve(http, person, params)
    response = await authorize(http, person, authorize_params(app, prompt="consent"))
    assert response.headers["location"].startswith("/consent?")


async def test_trusted_client_skips_consent_and_the_grant_is_recorded(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    trusted = await make_app(runtime, trusted=True)
    response = await authorize(http, person, authorize_params(trusted, scope="openid email"))
    assert "code" in query_of(response.headers["location"])
    from consentry.storage.consents import ConsentRepository

    async with runtime.database.read_only() as session:
        consent = await ConsentRepository(session).get_active(person.user_id, trusted.client_id)
    assert consent is not None
    assert consent.scopes == {"openid", "email"}


async def test_redirect_uri_with_query_keeps_it(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    app = await make_app(runtime, redirect_uris=["https://app.example.com/cb?tenant=7"], trusted=True)
    response = await authorize(http, person, authorize_params(app))
    location = response.headers["location"]
    assert location.startswith("https://app.example.com/cb?tenant=7&code=")


async def test_audit_records_the_authorization(
    http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person
) -> None:
    from sqlalchemy import select

    from consentry.storage.tables import AuditEvent

    params = authorize_params(app)
    await approve(http, person, params)
    async with runtime.database.read_only() as session:
        events = list(await session.scalars(select(AuditEvent).where(AuditEvent.user_id == person.user_id)))
    types = [event.event_type for event in events]
    assert "consent_granted" in types
    assert "authorization_granted" in types
    granted = next(event for event in events if event.event_type == "authorization_granted")
    assert granted.client_id == app.client_id
    assert granted.scopes == {"openid", "profile"}
    assert granted.user_agent is not None


@pytest.mark.parametrize("prompt", [None, "none"], ids=["asks-again", "prompt-none"])
async def test_a_consent_revoked_between_read_and_write_issues_no_code(
    http: httpx.AsyncClient,
    runtime: Runtime,
    app: App,
    person: Person,
    monkeypatch: pytest.MonkeyPatch,
    prompt: str | None,
) -> None:
    """The code is written only while the consent is live (a group-commit claim), whatever was read before."""
    params = authorize_params(app)
    await approve(http, person, params)
    stale = await runtime.consent_lookup.get(person.user_id, app.client_id)
    assert stale is not None
    revoked = await http.delete(f"/api/v1/oauth2/consents/{app.client_id}", headers=person.headers)
    assert revoked.status_code == 204

    async def as_read_before_the_revocation(*_args: object) -> object:
        return stale

    monkeypatch.setattr(runtime.consent_lookup, "get", as_read_before_the_revocation)
    response = await authorize(http, person, params | ({"prompt": prompt} if prompt else {}))
    assert response.status_code == 302
    location = response.headers["location"]
    if prompt == "none":
        assert query_of(location)["error"] == "consent_required"
    else:
        assert location.startswith("/consent?")
    assert "code" not in query_of(location)
