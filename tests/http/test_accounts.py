"""The account (SPEC §4): profile, identifier change, password change, delete and restore, purge."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from consentry.jobs.cleanup import run_cleanup
from consentry.runtime import Runtime, utcnow
from consentry.settings import Settings
from consentry.storage.tables import AuditEvent, ConsentHistory, User
from tests.conftest import make_settings
from tests.mail import Mailbox
from tests.oauth import PASSWORD, Person, make_app, make_person, tokens_for

ME = "/api/v1/users/me"


@pytest.fixture
def settings(database_url: str, tmp_path: Path, mailbox: Mailbox) -> Settings:
    return make_settings(database_url, tmp_path, smtp_url=mailbox.url)


async def second_session(http: httpx.AsyncClient, person: Person) -> str:
    flow = (await http.post("/api/v1/auth/submit-identifier", json={"identifier": person.email})).json()
    done = await http.post(
        "/api/v1/auth/login-password",
        json={"password": PASSWORD},
        headers={"Authorization": f"Bearer {flow['flow_token']}"},
    )
    http.cookies.clear()
    return str(done.json()["session_token"])


async def test_read_and_edit_the_profile(http: httpx.AsyncClient, person: Person) -> None:
    me = (await http.get(ME, headers=person.headers)).json()
    assert (me["user_id"], me["email"], me["email_verified"]) == (str(person.user_id), person.email, True)
    changed = await http.patch(ME, json={"name": "Ada Lovelace", "locale": "en-GB"}, headers=person.headers)
    assert changed.status_code == 200
    assert changed.json()["user"]["name"] == "Ada Lovelace"
    assert (await http.get(ME)).status_code == 401


async def test_a_profile_value_its_claim_cannot_hold_is_refused_and_changes_nothing(
    http: httpx.AsyncClient, person: Person
) -> None:
    saved = {"picture": "https://images.example.com/ada.png", "zoneinfo": "Asia/Jakarta", "locale": "id-ID"}
    assert (await http.patch(ME, json=saved, headers=person.headers)).status_code == 200
    for bad, says in (
        ({"picture": "javascript:alert(1)"}, "the picture must be an http or https address"),
        (
            {"zoneinfo": "Mars/Olympus"},
            "Mars/Olympus is not a time zone: use an IANA name, such as Asia/Jakarta",
        ),
        ({"locale": "Klingon!"}, "the language must be a language tag, such as en or id-ID"),
    ):
        refused = await http.patch(ME, json={"name": "Not saved", **bad}, headers=person.headers)
        assert refused.status_code == 400, refused.text
        assert refused.json() == {"error": "invalid_request", "error_description": says}
    me = (await http.get(ME, headers=person.headers)).json()
    assert {field: me[field] for field in saved} == saved
    assert me["name"] is None


async def test_password_change_refuses_reuse_and_ends_other_sessions(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    other = await second_session(http, person)
    wrong = await http.patch(
        ME, json={"current_password": "nope nope", "new_password": "x" * 12}, headers=person.headers
    )
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_credentials")
    reused = await http.patch(
        ME, json={"current_password": PASSWORD, "new_password": PASSWORD}, headers=person.headers
    )
    assert (reused.status_code, reused.json()["error"]) == (400, "password_reused")
    passwords = [f"passphrase number {i}" for i in range(5)]
    current = PASSWORD
    for new in passwords:
        ok = await http.patch(
            ME, json={"current_password": current, "new_password": new}, headers=person.headers
        )
        assert ok.status_code == 200, ok.text
        current = new
    assert (await http.get(ME, headers={"Authorization": f"Bearer {other}"})).status_code == 401
    assert (await http.get(ME, headers=person.headers)).status_code == 200  # this session lives on
    again = await http.patch(
        ME, json={"current_password": current, "new_password": passwords[1]}, headers=person.headers
    )
    assert again.json()["error"] == "password_reused"
    oldest = await http.patch(
        ME, json={"current_password": current, "new_password": PASSWORD}, headers=person.headers
    )
    assert oldest.status_code == 200  # six passwords ago: allowed again


async def test_a_new_email_counts_only_once_verified(
    http: httpx.AsyncClient, runtime: Runtime, person: Person, mailbox: Mailbox
) -> None:
    started = await http.patch(ME, json={"email": "New.Address@example.com"}, headers=person.headers)
    assert started.status_code == 202
    verification = started.json()["verification"]
    assert (await http.get(ME, headers=person.headers)).json()["email"] == person.email  # not yet
    wrong = await http.post(
        f"{ME}/verify-identifier",
        json={"flow_token": verification["flow_token"], "code": "000000"},
        headers=person.headers,
    )
    assert wrong.status_code == 400
    code = mailbox.last_code("new.address@example.com")
    stranger = await make_person(runtime)
    stolen = await http.post(
        f"{ME}/verify-identifier",
        json={"flow_token": verification["flow_token"], "code": code},
        headers=stranger.headers,
    )
    assert stolen.status_code == 401  # the flow is bound to the account that started it
    done = await http.post(
        f"{ME}/verify-identifier",
        json={"flow_token": verification["flow_token"], "code": code},
        headers=person.headers,
    )
    assert done.status_code == 200
    assert done.json()["user"]["email"] == "new.address@example.com"
    taken = await http.patch(ME, json={"email": stranger.email}, headers=person.headers)
    assert taken.status_code == 409


async def test_delete_then_restore_within_the_grace_period(
    http: httpx.AsyncClient, runtime: Runtime, person: Person, mailbox: Mailbox
) -> None:
    assert (await http.delete(ME, headers=person.headers)).status_code == 200
    started = (await http.post("/api/v1/auth/submit-identifier", json={"identifier": person.email})).json()
    assert started["next"] == "verify"
    verified = (
        await http.post(
            "/api/v1/auth/verify-identifier",
            json={"code": mailbox.last_code(person.email)},
            headers={"Authorization": f"Bearer {started['flow_token']}"},
        )
    ).json()
    assert verified["next"] == "password"
    done = await http.post(
        "/api/v1/auth/login-password",
        json={"password": PASSWORD},
        headers={"Authorization": f"Bearer {verified['flow_token']}"},
    )
    assert done.status_code == 200
    assert done.json()["user_id"] == str(person.user_id)
    async with runtime.database.read_only() as session:
        user = await session.get(User, person.user_id)
    assert user is not None and user.status == "active" and user.purge_after is None


async def test_after_the_grace_period_the_account_is_purged_and_history_anonymised(
    http: httpx.AsyncClient, runtime: Runtime, person: Person
) -> None:
    app = await make_app(runtime)
    await tokens_for(http, runtime, app, person)
    assert (await http.delete(ME, headers=person.headers)).status_code == 200
    async with runtime.database.unit_of_work() as session:
        user = await session.get(User, person.user_id)
        assert user is not None
        user.purge_after = utcnow() - timedelta(seconds=1)
    report = await run_cleanup(runtime, now=utcnow())
    assert report.counts["accounts_purged"] == 1
    async with runtime.database.read_only() as session:
        assert await session.get(User, person.user_id) is None
        history = list(
            await session.scalars(select(ConsentHistory).where(ConsentHistory.client_id == app.client_id))
        )
        leftovers = list(
            await session.scalars(select(AuditEvent).where(AuditEvent.user_id == person.user_id))
        )
    assert history and all(h.user_id is None and h.ip is None for h in history)
    assert [h.action for h in history] == ["granted", "revoked"]
    assert leftovers == []
