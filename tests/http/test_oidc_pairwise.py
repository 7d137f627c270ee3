"""Pairwise subject identifiers (OIDC Core §8.1, SPEC §6): stable per sector, rotatable, rollback-able."""

from __future__ import annotations

import httpx
import pytest

from consentry.runtime import Runtime, utcnow
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


async def test_rotation_issues_new_pseudonyms_while_old_ones_resolve_and_rollback_restores(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    app = await make_app(runtime, subject_type="pairwise")
    before = await sub_of(http, runtime, app, person)
    version = await runtime.subjects.rotate(now=utcnow())
    after = await sub_of(http, runtime, app, person)
    assert after != before
    async with runtime.database.read_only() as session:
        assert await runtime.subjects.resolve(session, "app.example.com", before) == person.user_id
        assert await runtime.subjects.resolve(session, "app.example.com", after) == person.user_id
        assert await runtime.subjects.resolve(session, "other.example.com", after) is None
    states = {v.version: v.state for v in await runtime.subjects.versions()}
    assert states[version] == "active" and states[version - 1] == "retiring"

    restored = await runtime.subjects.rollback(now=utcnow())
    assert restored == version - 1
    assert await sub_of(http, runtime, app, person) == before
    async with runtime.database.read_only() as session:
        assert (
            await runtime.subjects.resolve(session, "app.example.com", after) is None
        )  # rolled-back version
        assert await runtime.subjects.resolve(session, "app.example.com", before) == person.user_id


async def test_a_second_rotation_retires_the_oldest(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    app = await make_app(runtime, subject_type="pairwise")
    first = await sub_of(http, runtime, app, person)
    await runtime.subjects.rotate(now=utcnow())
    await runtime.subjects.rotate(now=utcnow())
    async with runtime.database.read_only() as session:
        assert await runtime.subjects.resolve(session, "app.example.com", first) is None
    states = [v.state for v in await runtime.subjects.versions()]
    assert states == ["retired", "retiring", "active"]


async def test_rollback_without_a_previous_version_is_refused(
    runtime: Runtime, http: httpx.AsyncClient, person: Person
) -> None:
    from consentry.errors import ConfigurationError

    app = await make_app(runtime, subject_type="pairwise")
    await sub_of(http, runtime, app, person)
    with pytest.raises(ConfigurationError):
        await runtime.subjects.rollback(now=utcnow())
