"""An approval the person did not ask to remember is a grant all the same (SPEC §4 ``remembered``): it is
listed among the connected apps for as long as its tokens live, and revoking or narrowing it ends them at
once."""

from __future__ import annotations

import httpx

from consentry.runtime import Runtime
from tests.oauth import (
    authorize_params,
    exchange_code,
    get_code,
    is_active,
    make_app,
    make_person,
    pkce_pair,
    tokens_for,
)

API = "/api/v1/oauth2/consents"


async def test_an_approval_not_remembered_is_listed_until_revoked(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    person = await make_person(runtime)
    notes = await make_app(runtime, name="Notes")
    tokens = await tokens_for(http, runtime, notes, person, "openid profile", remember=False)
    assert "refresh_token" not in tokens  # what was not remembered lasts as long as one access token

    listed = (await http.get(API, headers=person.headers)).json()["consents"]
    assert [(c["client_id"], c["client_name"], c["remembered"]) for c in listed] == [
        (notes.client_id, "Notes", False)
    ]
    assert listed[0]["scopes"] == ["openid", "profile"]
    assert listed[0]["expires_at"] > listed[0]["granted_at"]

    assert (await http.delete(f"{API}/{notes.client_id}", headers=person.headers)).status_code == 204
    assert not await is_active(http, notes, tokens["access_token"])
    assert (await http.get(API, headers=person.headers)).json()["consents"] == []
    assert (await http.delete(f"{API}/{notes.client_id}", headers=person.headers)).status_code == 404


async def test_a_remembered_consent_says_so(http: httpx.AsyncClient, runtime: Runtime) -> None:
    person = await make_person(runtime)
    app = await make_app(runtime)
    verifier, challenge = pkce_pair()
    code = await get_code(http, person, authorize_params(app, challenge=challenge))
    assert (await exchange_code(http, app, code, verifier)).status_code == 200
    listed = (await http.get(API, headers=person.headers)).json()["consents"]
    assert [(c["client_id"], c["remembered"]) for c in listed] == [(app.client_id, True)]


async def test_withdrawing_a_scope_of_an_approval_not_remembered_ends_the_tokens_carrying_it(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    person = await make_person(runtime)
    app = await make_app(runtime)
    with_email = await tokens_for(http, runtime, app, person, "openid email", remember=False)
    without = await tokens_for(http, runtime, app, person, "openid", remember=False)

    response = await http.patch(
        f"{API}/{app.client_id}", json={"revoke_scopes": ["email"]}, headers=person.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"client_id": app.client_id, "scopes": ["openid"], "revoked": False}
    assert not await is_active(http, app, with_email["access_token"])
    assert await is_active(http, app, without["access_token"])
    listed = (await http.get(API, headers=person.headers)).json()["consents"]
    assert [c["scopes"] for c in listed] == [["openid"]]


async def test_the_connected_apps_page_shows_an_approval_not_remembered(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    person = await make_person(runtime)
    app = await make_app(runtime, name="Calendar")
    await tokens_for(http, runtime, app, person, "openid profile", remember=False)
    page = await http.get("/account/apps", headers=person.headers)
    assert page.status_code == 200
    assert "Calendar" in page.text
    assert "this time only" in page.text
    assert "No application can see your account" not in page.text
