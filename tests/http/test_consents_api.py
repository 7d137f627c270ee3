"""The person's consents (SPEC §4): listing, and revocation that takes effect at once."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from consentry.runtime import Runtime
from consentry.storage.tables import AuditEvent, Consent, ConsentHistory
from tests.oauth import authorize_params, make_app, make_person, tokens_for

API = "/api/v1/oauth2/consents"


async def test_list_shows_active_consents(http: httpx.AsyncClient, runtime: Runtime) -> None:
    person = await make_person(runtime)
    notes = await make_app(runtime, name="Notes", logo_uri="https://notes.example.com/logo.png")
    await tokens_for(http, runtime, notes, person, scope="openid email")
    body = (await http.get(API, headers=person.headers)).json()
    assert len(body["consents"]) == 1
    consent = body["consents"][0]
    assert consent["client_id"] == notes.client_id
    assert (consent["client_name"], consent["logo_uri"]) == ("Notes", "https://notes.example.com/logo.png")
    assert consent["scopes"] == ["email", "openid"]
    assert consent["granted_at"] and consent["expires_at"]
    assert (await http.get(API)).status_code == 401


async def test_revocation_kills_exactly_that_apps_tokens_at_once(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    person = await make_person(runtime)
    revoked_app, other_app = await make_app(runtime), await make_app(runtime)
    doomed = await tokens_for(http, runtime, revoked_app, person)
    doomed_too = await tokens_for(http, runtime, revoked_app, person)
    survivor = await tokens_for(http, runtime, other_app, person)
    someone_else = await make_person(runtime)
    theirs = await tokens_for(http, runtime, revoked_app, someone_else)

    response = await http.delete(f"{API}/{revoked_app.client_id}", headers=person.headers)
    assert response.status_code == 204

    async def active(app_credentials: httpx.BasicAuth, token: str) -> bool:
        result = await http.post("/oauth2/introspect", data={"token": token}, auth=app_credentials)
        return bool(result.json()["active"])

    for tokens in (doomed, doomed_too):
        assert not await active(revoked_app.basic(), tokens["access_token"])
        assert not await active(revoked_app.basic(), tokens["refresh_token"])
        refreshed = await http.post(
            "/oauth2/token",
            auth=revoked_app.basic(),
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        assert refreshed.json()["error"] == "invalid_grant"
        userinfo = await http.get(
            "/oauth2/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert userinfo.status_code == 401
    assert await active(other_app.basic(), survivor["access_token"])
    assert await active(other_app.basic(), survivor["refresh_token"])
    assert await active(revoked_app.basic(), theirs["access_token"])  # another person's grant lives on

    again = await http.get("/oauth2/authorize", params=authorize_params(revoked_app), headers=person.headers)
    assert again.headers["location"].startswith("/consent?")
    assert [c["client_id"] for c in (await http.get(API, headers=person.headers)).json()["consents"]] == [
        other_app.client_id
    ]
    async with runtime.database.read_only() as session:
        record = await session.scalar(
            select(Consent).where(
                Consent.user_id == person.user_id, Consent.client_id == revoked_app.client_id
            )
        )
        history = list(
            await session.scalars(select(ConsentHistory.action).where(ConsentHistory.consent_id == record.id))
        )  # type: ignore[union-attr]
        events = list(
            await session.scalars(
                select(AuditEvent.event_type).where(
                    AuditEvent.user_id == person.user_id, AuditEvent.client_id == revoked_app.client_id
                )
            )
        )
    assert record is not None and record.status == "revoked" and record.revoked_at is not None
    assert history == ["granted", "revoked"]
    assert {"consent_revoked", "token_revoked"} <= set(events)


async def test_revoking_what_is_not_there_is_404(http: httpx.AsyncClient, runtime: Runtime) -> None:
    person = await make_person(runtime)
    response = await http.delete(f"{API}/no-such-client", headers=person.headers)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
