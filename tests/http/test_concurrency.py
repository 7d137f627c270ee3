"""Single use under concurrency: of simultaneous exchanges of one code (or refresh token), one wins."""

from __future__ import annotations

import asyncio

import httpx

from consentry.runtime import Runtime
from tests.oauth import authorize_params, exchange_code, get_code, make_app, make_person, tokens_for


async def test_concurrent_code_exchanges_issue_tokens_once(http: httpx.AsyncClient, runtime: Runtime) -> None:
    app, person = await make_app(runtime), await make_person(runtime)
    code = await get_code(http, person, authorize_params(app))
    responses = await asyncio.gather(*(exchange_code(http, app, code) for _ in range(5)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(200) <= 1
    assert all(status in (200, 400) for status in statuses)
    # Whoever won, the replays revoked what the code issued.
    for response in responses:
        if response.status_code == 200:
            check = await http.post(
                "/oauth2/introspect", data={"token": response.json()["access_token"]}, auth=app.basic()
            )
            assert check.json()["active"] is False


async def test_concurrent_refreshes_rotate_once(http: httpx.AsyncClient, runtime: Runtime) -> None:
    app, person = await make_app(runtime), await make_person(runtime)
    tokens = await tokens_for(http, runtime, app, person)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    responses = await asyncio.gather(
        *(http.post("/oauth2/token", data=form, auth=app.basic()) for _ in range(5))
    )
    assert [r.status_code for r in responses].count(200) <= 1
    assert all(r.status_code in (200, 400) for r in responses)
