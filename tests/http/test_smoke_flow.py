"""The whole code flow once, end to end through HTTP."""

from __future__ import annotations

import httpx

from consentry.runtime import Runtime
from tests.oauth import authorize_params, exchange_code, get_code, make_app, make_person, pkce_pair


async def test_code_flow_with_pkce(http: httpx.AsyncClient, runtime: Runtime) -> None:
    app = await make_app(runtime)
    person = await make_person(runtime)
    verifier, challenge = pkce_pair()
    code = await get_code(
        http, person, authorize_params(app, scope="openid profile email", challenge=challenge, nonce="n-123")
    )
    response = await exchange_code(http, app, code, verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= {"access_token", "token_type", "expires_in", "refresh_token", "scope", "id_token"}
    assert response.headers["cache-control"] == "no-store"
