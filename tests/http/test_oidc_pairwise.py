"""Pairwise subject identifiers (OIDC Core §8.1, SPEC §6): stable per sector, pinned across rotations,
migrated gradually (sub_previous for a window), rolled back at once."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from consentry.runtime import Runtime, utcnow
from consentry.services.pseudonyms import migrate_sectors
from consentry.services.sessions import create_session
from consentry.storage.pseudonyms import PseudonymSectorRepository
from consentry.storage.tables import WebhookOutbox
from tests.oauth import App, Person, make_app, make_person, tokens_for


async def sub_of(http: httpx.AsyncClient, runtime: Runtime, app: App, person: Person) -> str:
    tokens = await tokens_for(http, runtime, app, person)
    userinfo = await http.get(
        "/oauth2/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.json()["sub"] == runtime.keys.verify(tokens["id_token"])["sub"]
    return str(userinfo.json()["sub"])


async def test_pairwise_subjects_are_stable_per_sector_and_unlinkable_across(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    a1 = await make_app(runtime, subject_type="pairwise", redirect_uris=["https://a.example.com/cb"])
    a2 = await make_app(runtime, subject_type="pairwise", redirect_uris=["https://a.example.com/other"])
    b = await make_app(runtime, subject_type="pairwise", redirect_uris=["https://b.example.net/cb"])
    public = await make_app(runtime)
    sub_a1 = await sub_of(http, runtime, a1, person)
    assert sub_a1 == await sub_of(http, runtime, a1, person)  # stable
    assert sub_a1 == await sub_of(http, runtime, a2, person)  # same sector, same subject
    assert sub_a1 != await sub_of(http, runtime, b, person)
    assert sub_a1 != str(person.user_id)
    assert await sub_of(http, runtime, public, person) == str(person.user_id)
    other_person = await make_person(runtime)
    assert await sub_of(http, runtime, a1, other_person) != sub_a1


async def test_sector_identifier_uri_groups_hosts(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    one = await make_app(
        runtime,
        subject_type="pairwise",
        redirect_uris=["https://one.example.com/cb"],
        sector_identifier_uri="https://example.com/sector.json",
    )
    two = await make_app(
        runtime,
        subject_type="pairwise",
        redirect_uris=["https://two.example.com/cb"],
        sector_identifier_uri="https://example.com/sector.json",
    )
    assert await sub_of(http, runtime, one, person) == await sub_of(http, runtime, two, person)


async def test_a_sector_keeps_its_sub_across_rotation_then_migrates_gradually_and_rolls_back(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    receiver_url = "https://hooks.app.example.com/consentry"
    app = await make_app(
        runtime,
        subject_type="pairwise",
        post_logout_redirect_uris=["https://app.example.com/bye"],
        webhook_url=receiver_url,
    )
    before = await sub_of(http, runtime, app, person)
    old_tokens = await tokens_for(http, runtime, app, person)

    version = await runtime.subjects.rotate(now=utcnow())
    assert await sub_of(http, runtime, app, person) == before  # a rotation changes no sub a client knows
    newcomer = await make_app(runtime, subject_type="pairwise", redirect_uris=["https://new.example.org/cb"])
    await sub_of(http, runtime, newcomer, person)
    async with runtime.database.read_only() as session:
        pins = {pin.sector: pin.version for pin in await PseudonymSectorRepository(session).all()}
    assert pins == {"app.example.com": version - 1, "new.example.org": version}

    moved = await migrate_sectors(runtime, "app.example.com", window=timedelta(days=30), now=utcnow())
    assert [(pin.sector, pin.previous_version, pin.version) for pin in moved] == [
        ("app.example.com", version - 1, version)
    ]
    tokens = await tokens_for(http, runtime, app, person)
    claims = runtime.keys.verify(tokens["id_token"])
    after = claims["sub"]
    assert after != before and claims["sub_previous"] == before
    userinfo = await http.get(
        "/oauth2/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert (userinfo.json()["sub"], userinfo.json()["sub_previous"]) == (after, before)
    introspected = await http.post(
        "/oauth2/introspect", data={"token": tokens["access_token"]}, auth=app.basic()
    )
    assert (introspected.json()["sub"], introspected.json()["sub_previous"]) == (after, before)
    async with runtime.database.read_only() as session:
        for sub in (before, after):
            assert (
                await runtime.subjects.resolve(session, "app.example.com", sub, now=utcnow())
                == person.user_id
            )
        later = utcnow() + timedelta(days=31)  # the window closed: only the new one resolves
        assert await runtime.subjects.resolve(session, "app.example.com", before, now=later) is None
        assert await runtime.subjects.resolve(session, "app.example.com", after, now=later) == person.user_id
        events = await session.scalars(select(WebhookOutbox).where(WebhookOutbox.client_id == app.client_id))
        migrating = [e.payload["data"] for e in events if e.event_type == "subjects.migrating"]
    assert migrating == [
        {
            "client_id": app.client_id,
            "sector": "app.example.com",
            "version": version,
            "previous_version": version - 1,
            "migrating_until": moved[0].migrating_until.isoformat() if moved[0].migrating_until else None,
        }
    ]
    client = await runtime.clients.get(app.client_id)
    assert client is not None
    assert (await runtime.subjects.subject(person.user_id, client, now=later)).previous is None

    # An ID token from before the migration, holding the old sub, still ends the session it names.
    logout = await http.get(
        "/oauth2/logout",
        params={
            "id_token_hint": old_tokens["id_token"],
            "post_logout_redirect_uri": "https://app.example.com/bye",
        },
        headers=person.headers,
    )
    assert logout.status_code == 302

    restored, active = await runtime.subjects.rollback("app.example.com", now=utcnow())
    assert [(pin.sector, pin.version) for pin in restored] == [("app.example.com", version - 1)]
    assert active == version
    again = await make_person(runtime)
    assert (
        runtime.keys.verify((await tokens_for(http, runtime, app, again))["id_token"]).get("sub_previous")
        is None
    )
    person_tokens = await tokens_for(http, runtime, app, await _signed_in_again(runtime, person))
    assert runtime.keys.verify(person_tokens["id_token"])["sub"] == before


async def _signed_in_again(runtime: Runtime, person: Person) -> Person:
    """A new session for the same person (the old one was signed out above)."""
    async with runtime.database.unit_of_work() as session:
        new = await create_session(session, person.user_id, now=utcnow(), ttl=timedelta(hours=1))
    return Person(person.user_id, person.email, new.token, new.session_id)


async def test_rotations_retire_only_versions_no_sector_uses(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    app = await make_app(runtime, subject_type="pairwise")
    first = await sub_of(http, runtime, app, person)
    await runtime.subjects.rotate(now=utcnow())
    await runtime.subjects.rotate(now=utcnow())
    async with runtime.database.read_only() as session:
        assert (
            await runtime.subjects.resolve(session, "app.example.com", first, now=utcnow()) == person.user_id
        )
    states = [v.state for v in await runtime.subjects.versions()]
    assert states == ["retiring", "retired", "active"]  # version 1 is the sector's; 2 was never used


async def test_rollback_without_a_previous_version_is_refused(
    runtime: Runtime, http: httpx.AsyncClient, person: Person
) -> None:
    from consentry.errors import ConfigurationError

    app = await make_app(runtime, subject_type="pairwise")
    await sub_of(http, runtime, app, person)
    with pytest.raises(ConfigurationError):
        await runtime.subjects.rollback(None, now=utcnow())
