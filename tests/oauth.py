"""Helpers for protocol tests: users with sessions, registered clients, and PKCE pairs."""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from consentry.domain import authorization as az
from consentry.domain.clients import build_client_metadata
from consentry.domain.pkce import s256_challenge
from consentry.domain.scopes import Scopes
from consentry.domain.webhooks import OutboxStatus
from consentry.runtime import Runtime, utcnow
from consentry.services.client_registration import register_client
from consentry.services.sessions import create_session
from consentry.services.users import create_user
from consentry.services.webhooks import BACKCHANNEL_LOGOUT
from consentry.storage.webhooks import WebhookOutboxRepository

REDIRECT_URI = "https://app.example.com/callback"
PASSWORD = "correct horse battery staple"


@dataclass
class Person:
    user_id: uuid.UUID
    email: str
    session_token: str
    session_id: uuid.UUID | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.session_token}"}


@dataclass
class App:
    client_id: str
    client_secret: str | None
    redirect_uri: str

    def basic(self) -> httpx.BasicAuth:
        assert self.client_secret is not None
        return httpx.BasicAuth(self.client_id, self.client_secret)

    def credentials(self) -> dict[str, str]:
        """client_secret_post form fields, or client_id alone for a public client."""
        if self.client_secret is None:
            return {"client_id": self.client_id}
        return {"client_id": self.client_id, "client_secret": self.client_secret}


async def make_person(runtime: Runtime, email: str | None = None, **profile: Any) -> Person:
    email = email or f"{uuid.uuid4().hex[:12]}@example.com"
    async with runtime.database.unit_of_work() as session:
        user = await create_user(
            session, passwords=runtime.passwords, now=utcnow(), email=email, password=PASSWORD, verified=True
        )
        for key, value in profile.items():
            setattr(user, key, value)
        new = await create_session(session, user.id, now=utcnow(), ttl=timedelta(hours=1))
    return Person(user.id, email, new.token, new.session_id)


async def make_app(
    runtime: Runtime,
    *,
    scope: str = "openid profile email phone offline_access",
    redirect_uris: list[str] | None = None,
    **options: Any,
) -> App:
    redirect_uris = redirect_uris or [REDIRECT_URI]
    # As `consentry client create`: a method given is the only one it may use; without one, Basic or the form.
    options.setdefault("auth_method_fixed", "token_endpoint_auth_method" in options)
    async with runtime.database.unit_of_work() as session:
        metadata = build_client_metadata(
            name=options.pop("name", "Test App"),
            redirect_uris=redirect_uris,
            scopes=Scopes.parse(scope),
            known_scopes=await runtime.clients.known_scopes(),
            allow_private_webhooks=True,
            **options,
        )
        issued = await register_client(
            session,
            metadata,
            secret_hasher=runtime.secret_hasher,
            secret_box=runtime.secret_box,
            now=utcnow(),
        )
    return App(issued.client_id, issued.client_secret, redirect_uris[0])


def pkce_pair() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return verifier, s256_challenge(verifier)


def query_of(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def authorize_params(
    app: App, *, scope: str = "openid profile", challenge: str | None = None, **extra: str
) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": app.redirect_uri,
        "scope": scope,
        "state": secrets.token_urlsafe(8),
    }
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return params | extra


async def approve(
    http: httpx.AsyncClient,
    person: Person,
    params: dict[str, str],
    *,
    remember: bool = True,
    granted_scopes: list[str] | None = None,
    approved: bool = True,
) -> str:
    """Answer the consent screen through the JSON API; returns the redirect URL."""
    body: dict[str, Any] = {key: params[key] for key in az.PENDING_PARAMETERS if key in params}
    body |= {"approved": approved, "remember": remember}
    if granted_scopes is not None:
        body["granted_scopes"] = granted_scopes
    response = await http.post("/oauth2/consent", json=body, headers=person.headers)
    assert response.status_code == 200, response.text
    return str(response.json()["redirect_url"])


async def get_code(http: httpx.AsyncClient, person: Person, params: dict[str, str], **consent: Any) -> str:
    """Authorize, approving consent if asked; returns the code."""
    response = await http.get("/oauth2/authorize", params=params, headers=person.headers)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    if location.startswith("/consent"):
        location = await approve(http, person, params, **consent)
    query = query_of(location)
    assert "code" in query, location
    assert query.get("state") == params.get("state")
    return query["code"]


async def exchange_code(
    http: httpx.AsyncClient, app: App, code: str, verifier: str | None = None, **extra: str
) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri} | extra
    if verifier:
        form["code_verifier"] = verifier
    if app.client_secret is None:
        return await http.post("/oauth2/token", data=form | {"client_id": app.client_id})
    return await http.post("/oauth2/token", data=form, auth=app.basic())


async def tokens_for(
    http: httpx.AsyncClient,
    runtime: Runtime,
    app: App,
    person: Person,
    scope: str = "openid profile",
    **consent: Any,
) -> dict[str, Any]:
    """Authorize (answering the consent screen with ``consent`` if it is shown) and exchange the code."""
    verifier, challenge = pkce_pair()
    code = await get_code(http, person, authorize_params(app, scope=scope, challenge=challenge), **consent)
    response = await exchange_code(http, app, code, verifier)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def is_active(http: httpx.AsyncClient, app: App, token: str) -> bool:
    """What RFC 7662 introspection, asked by ``app``, says of ``token``."""
    result = await http.post("/oauth2/introspect", data={"token": token}, auth=app.basic())
    return bool(result.json()["active"])


async def queued_logout_tokens(runtime: Runtime) -> list[tuple[str, dict[str, Any]]]:
    """(client, payload) of each logout token waiting in the outbox."""
    async with runtime.database.read_only() as session:
        pending = await WebhookOutboxRepository(session).by_status(OutboxStatus.PENDING, limit=100)
    return [(row.client_id, dict(row.payload)) for row in pending if row.event_type == BACKCHANNEL_LOGOUT]
