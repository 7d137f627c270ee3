"""Sessions own what apps were issued in them (SPEC §9): codes and tokens record the session (``sid``, also
in ID tokens); signing out ends them but a grant with ``offline_access``; signing out everywhere ends all."""

from __future__ import annotations

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from consentry.runtime import Runtime, utcnow
from consentry.services.sessions import end_own_session
from consentry.storage.consents import ConsentRepository
from tests.oauth import (
    App,
    authorize_params,
    exchange_code,
    get_code,
    is_active,
    make_app,
    make_person,
    pkce_pair,
    tokens_for,
)


async def _refreshes(http: httpx.AsyncClient, app: App, refresh_token: str) -> bool:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return (await http.post("/oauth2/token", data=form, auth=app.basic())).status_code == 200


async def test_id_tokens_name_the_session_they_were_issued_in(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    person, app = await make_person(runtime), await make_app(runtime)
    tokens = await tokens_for(http, runtime, app, person, "openid profile")
    keys = KeySet.import_key_set((await http.get("/oauth2/jwks")).json())
    assert jwt.decode(tokens["id_token"], keys).claims["sid"] == str(person.session_id)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refreshed = (await http.post("/oauth2/token", data=form, auth=app.basic())).json()
    assert jwt.decode(refreshed["id_token"], keys).claims["sid"] == str(person.session_id)


async def test_signing_out_ends_the_sessions_grants_but_offline_access(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    person, app = await make_person(runtime), await make_app(runtime)
    online = await tokens_for(http, runtime, app, person, "openid profile")
    offline = await tokens_for(http, runtime, app, person, "openid offline_access")
    elsewhere = await make_person(runtime)
    theirs = await tokens_for(http, runtime, app, elsewhere, "openid profile")
    verifier, challenge = pkce_pair()
    unused_code = await get_code(http, person, authorize_params(app, challenge=challenge))

    logout = await http.post("/api/v1/auth/logout", headers=person.headers)
    assert logout.status_code == 204

    assert not await is_active(http, app, online["access_token"])
    assert not await _refreshes(http, app, online["refresh_token"])
    assert (await exchange_code(http, app, unused_code, verifier)).status_code == 400
    assert await is_active(http, app, offline["access_token"])  # "keep access while you are away"
    assert await _refreshes(http, app, offline["refresh_token"])
    assert await is_active(http, app, theirs["access_token"])  # another person's session is not this one


async def test_ending_one_of_ones_sessions_ends_its_grants(http: httpx.AsyncClient, runtime: Runtime) -> None:
    """What the account page's "end this session" does (for a session other than the one in use)."""
    person, app = await make_person(runtime), await make_app(runtime)
    tokens = await tokens_for(http, runtime, app, person, "openid profile")
    assert person.session_id is not None
    await end_own_session(runtime, person.user_id, person.session_id, now=utcnow())
    assert not await is_active(http, app, tokens["access_token"])


async def test_signing_out_everywhere_ends_every_session_and_token_but_not_consents(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    person, app = await make_person(runtime), await make_app(runtime)
    offline = await tokens_for(http, runtime, app, person, "openid offline_access")
    assert (await http.get("/api/v1/oauth2/consents", headers=person.headers)).json()["consents"]

    done = await http.post("/api/v1/users/me/sign-out-everywhere", headers=person.headers)
    assert done.status_code == 204
    assert (await http.get("/api/v1/users/me", headers=person.headers)).status_code == 401
    assert not await is_active(http, app, offline["access_token"])
    assert not await _refreshes(http, app, offline["refresh_token"])

    async with runtime.database.read_only() as session:
        assert await ConsentRepository(session).get_active(person.user_id, app.client_id) is not None


async def test_signing_out_everywhere_needs_a_script_not_a_form(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    person = await make_person(runtime)
    http.cookies.set("consentry_session", person.session_token)
    try:
        form = await http.post("/api/v1/users/me/sign-out-everywhere", data={"x": "1"})
        assert form.status_code == 401
        assert (await http.get("/api/v1/users/me", headers=person.headers)).status_code == 200
    finally:
        http.cookies.clear()
