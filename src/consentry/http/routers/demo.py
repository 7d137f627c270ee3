"""A built-in demo client's pages (development mode only): start a PKCE flow, and show the code exchange.

`consentry demo` registers a public client whose redirect URI is ``{issuer}/demo/callback``; these pages
play that client, so a person can walk through sign-in, consent and connected apps with nothing else running.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from consentry.domain.pkce import s256_challenge
from consentry.errors import ConsentryError, NotFoundError
from consentry.http.deps import NowDep, OriginDep, RuntimeDep, single_query_values
from consentry.http.pages import error_page, render
from consentry.services.token import exchange
from consentry.services.userinfo import userinfo

router = APIRouter(prefix="/demo", tags=["demo"], include_in_schema=False)
COOKIE = "consentry_demo"
DEMO_SCOPE = "openid profile email"


def demo_redirect_uri(issuer: str) -> str:
    return f"{issuer}/demo/callback"


@router.get("/start")
async def start(request: Request, runtime: RuntimeDep) -> Response:
    if not runtime.settings.is_development:
        raise NotFoundError()
    params, _ = single_query_values(request)
    client = await runtime.clients.get(params.get("client_id"))
    redirect_uri = demo_redirect_uri(runtime.issuer)
    if client is None or not client.is_public or redirect_uri not in client.redirect_uris:
        return error_page(request, "invalid_client", "not a demo client: run `consentry demo` to create one")
    verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    query = urlencode({
        "response_type": "code", "client_id": client.id, "redirect_uri": redirect_uri, "scope": DEMO_SCOPE,
        "state": state, "nonce": secrets.token_urlsafe(16), "code_challenge": s256_challenge(verifier),
        "code_challenge_method": "S256",
    })  # fmt: skip
    response = RedirectResponse(f"/oauth2/authorize?{query}", status_code=302)
    cookie = orjson.dumps({"client_id": client.id, "verifier": verifier, "state": state}).decode()
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="lax", path="/demo", max_age=900)
    return response


@router.get("/callback")
async def callback(request: Request, runtime: RuntimeDep, origin: OriginDep, now: NowDep) -> Response:
    if not runtime.settings.is_development:
        raise NotFoundError()
    params, _ = single_query_values(request)
    try:
        pending: dict[str, str] = orjson.loads(request.cookies.get(COOKIE, "{}"))
    except orjson.JSONDecodeError:
        pending = {}
    if "error" in params:
        return render(request, "demo.html", {"denied": params, "client_id": pending.get("client_id")})
    if not pending or params.get("state") != pending.get("state"):
        return error_page(request, "invalid_request", "this callback does not match a demo you started here")
    client = await runtime.clients.get(pending.get("client_id"))
    if client is None:
        return error_page(request, "invalid_client", "the demo client no longer exists")
    form = {
        "grant_type": "authorization_code",
        "code": params.get("code", ""),
        "redirect_uri": demo_redirect_uri(runtime.issuer),
        "code_verifier": pending.get("verifier", ""),
    }
    try:
        tokens = await exchange(runtime, client, form, origin=origin, now=now)
        claims = runtime.keys.verify(tokens["id_token"]) if "id_token" in tokens else {}
        info = await userinfo(runtime, tokens["access_token"], now=now)
    except ConsentryError as error:
        return error_page(request, error.error, error.message, values=error.values)
    context: dict[str, Any] = {
        "client_id": client.id,
        "iss": params.get("iss"),
        "tokens": {key: value for key, value in tokens.items() if key.endswith("_token")},
        "details": {key: value for key, value in tokens.items() if not key.endswith("_token")},
        "id_token_claims": orjson.dumps(claims, option=orjson.OPT_INDENT_2).decode(),
        "userinfo": orjson.dumps(info, option=orjson.OPT_INDENT_2).decode(),
    }
    response = render(request, "demo.html", context)
    response.delete_cookie(COOKIE, path="/demo")
    return response
