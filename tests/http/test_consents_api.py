"""The person's consents (SPEC §4): listing, and revocation that takes effect at once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from consentry.crypto.hashing import token_hash
from consentry.domain.consent import ConsentStatus
from consentry.domain.scopes import Scopes
from consentry.runtime import Runtime, utcnow
from consentry.storage.group_commit import WriteUnit
from consentry.storage.tables import AuditEvent, Consent, ConsentHistory, RefreshToken
from consentry.storage.tokens import token_row
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


@pytest.mark.parametrize("change", ["revoke", "narrow"])
async def test_a_revocation_that_postgresql_aborts_to_break_a_deadlock_runs_again(
    http: httpx.AsyncClient, runtime: Runtime, change: str
) -> None:
    """A refresh batch holds a token of the person's from before any consent (no consent id) and waits for the
    consent the revocation holds, while the revocation waits for that token: PostgreSQL aborts the one that
    waited first, here the revocation, which must then run again, not answer 500."""
    if runtime.database.dialect != "postgresql":
        pytest.skip("SQLite's writers take turns: they cannot deadlock")
    person, app = await make_person(runtime), await make_app(runtime)
    await tokens_for(http, runtime, app, person, scope="openid profile email")
    now = utcnow()
    unconsented = token_row(
        "refresh",
        token_hash=token_hash(uuid.uuid4().hex),
        client_id=app.client_id,
        user_id=person.user_id,
        family_id=uuid.uuid4(),
        scopes=Scopes.parse("openid email"),
        created_at=now,
        expires_at=now + timedelta(days=1),
    )
    await runtime.writes.write(WriteUnit(rows=(unconsented,)))
    async with runtime.database.read_only() as session:
        active = select(Consent.id).where(Consent.user_id == person.user_id, Consent.status == "active")
        consent_id = await session.scalar(active)
    async with runtime.database.engine.connect() as batch:
        await batch.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == unconsented[1]["token_hash"])
            .values(rotated_at=now)
        )
        if change == "revoke":
            request = http.delete(f"{API}/{app.client_id}", headers=person.headers)
        else:
            narrowing = {"revoke_scopes": ["email"]}
            request = http.patch(f"{API}/{app.client_id}", json=narrowing, headers=person.headers)
        revocation = asyncio.create_task(request)
        await asyncio.sleep(0.3)  # the revocation holds the consent and waits for the token
        await batch.execute(select(Consent.id).where(Consent.id == consent_id).with_for_update(read=True))
        await batch.commit()  # reached once PostgreSQL has aborted the revocation
    response = await revocation
    assert response.status_code == (204 if change == "revoke" else 200), response.text
    async with runtime.database.read_only() as session:
        consent = await session.get(Consent, consent_id)
        assert consent is not None
        assert consent.status is (ConsentStatus.REVOKED if change == "revoke" else ConsentStatus.ACTIVE)
        live = await session.scalars(
            select(RefreshToken.token_hash).where(
                RefreshToken.user_id == person.user_id, RefreshToken.revoked_at.is_(None)
            )
        )
        assert list(live) == []  # the narrowing withdrew email, which every refresh token here carries


async def test_a_declined_scope_is_listed_and_the_person_lets_the_app_ask_again(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    person = await make_person(runtime)
    notes = await make_app(runtime, name="Notes")
    await tokens_for(http, runtime, notes, person, "openid email phone", granted_scopes=["openid", "email"])
    [listed] = (await http.get(API, headers=person.headers)).json()["consents"]
    assert (listed["scopes"], listed["declined_scopes"]) == (["email", "openid"], ["phone"])
    # Declined: the app's next request for it is answered without asking, and without it.
    asked = await http.get(
        "/oauth2/authorize", params=authorize_params(notes, scope="openid phone"), headers=person.headers
    )
    assert not asked.headers["location"].startswith("/consent")

    lifted = await http.patch(
        f"{API}/{notes.client_id}", json={"ask_again_scopes": ["phone"]}, headers=person.headers
    )
    assert lifted.status_code == 200 and lifted.json()["declined_scopes"] == []
    asked = await http.get(
        "/oauth2/authorize", params=authorize_params(notes, scope="openid phone"), headers=person.headers
    )
    assert asked.headers["location"].startswith("/consent")  # asked again; nothing granted meanwhile
    [listed] = (await http.get(API, headers=person.headers)).json()["consents"]
    assert (listed["scopes"], listed["declined_scopes"]) == (["email", "openid"], [])

    not_declined = await http.patch(
        f"{API}/{notes.client_id}", json={"ask_again_scopes": ["email"]}, headers=person.headers
    )
    assert not_declined.status_code == 400
    both = {"ask_again_scopes": ["phone"], "revoke_scopes": ["email"]}
    for body in (both, {}):
        refused = await http.patch(f"{API}/{notes.client_id}", json=body, headers=person.headers)
        assert refused.status_code == 400
