"""Authlib's OAuth 2.0 client, as a third-party app uses it, against the app in process."""

from __future__ import annotations

import warnings
from typing import Any

import httpx
from fastapi import FastAPI

from consentry.domain import authorization as az
from tests.oauth import App, Person, query_of

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.common.security import generate_token
    from authlib.integrations.httpx_client import AsyncOAuth2Client

ISSUER = "http://127.0.0.1:8000"


def authlib_client(app: App, asgi_app: FastAPI, scope: str) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=app.client_id,
        client_secret=app.client_secret,
        scope=scope,
        redirect_uri=app.redirect_uri,
        code_challenge_method="S256",
        transport=httpx.ASGITransport(app=asgi_app),
        base_url=ISSUER,
    )


async def authlib_tokens(
    http: httpx.AsyncClient, client: AsyncOAuth2Client, person: Person, **extra: str
) -> dict[str, Any]:
    """Authlib builds the authorization URL (with ``extra`` parameters), the person approves the consent
    screen, Authlib exchanges the code (with ``extra`` again)."""
    verifier = generate_token(48)
    url, state = client.create_authorization_url(
        f"{ISSUER}/oauth2/authorize", code_verifier=verifier, **extra
    )
    consent = await http.get(url, headers=person.headers)
    params = query_of(consent.headers["location"])
    decision = {key: params[key] for key in az.PENDING_PARAMETERS if key in params} | {"approved": True}
    approved = await http.post("/oauth2/consent", json=decision, headers=person.headers)
    token = await client.fetch_token(
        f"{ISSUER}/oauth2/token",
        authorization_response=approved.json()["redirect_url"],
        code_verifier=verifier,
        state=state,
        **extra,
    )
    return dict(token)
