"""Admin statistics and bulk account operations (SPEC §5); every admin route refuses everyone else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import select

from consentry.runtime import Runtime
from consentry.storage.tables import AuditEvent, User
from tests.oauth import make_app, make_person, tokens_for


async def test_statistics(http: httpx.AsyncClient, runtime: Runtime) -> None:
    admin = await make_person(runtime, is_admin=True)
    popular, quiet = await make_app(runtime, name="Popular"), await make_app(runtime, name="Quiet")
    people = [await make_person(runtime) for _ in range(3)]
    for person in people:
        tokens = await tokens_for(http, runtime, popular, person)
    await http.post(
        "/oauth2/token",
        auth=popular.basic(),
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    await tokens_for(http, runtime, quiet, people[0])
    body = (await http.get("/api/v1/admin/stats", headers=admin.headers)).json()
    top = body["top_clients"]
    assert [c["client_name"] for c in top[:2]] == ["Popular", "Quiet"]
    assert (top[0]["users"], top[0]["live_access_tokens"]) == (3, 4)
    today = {(row["event_type"], row["count"]) for row in body["activity_by_day"]}
    assert ("token_issued", 4) in today and ("token_refreshed", 1) in today
    assert len({row["day"] for row in body["activity_by_day"]}) == 1
    rate = {row["client_id"]: row for row in body["refresh_rate_by_client"]}[popular.client_id]
    assert (rate["refreshes"], rate["issued"], rate["refreshes_per_issue"]) == (1, 3, 0.333)


async def test_bulk_soft_delete_restore_and_verification(http: httpx.AsyncClient, runtime: Runtime) -> None:
    admin = await make_person(runtime, is_admin=True)
    app = await make_app(runtime)
    people = [await make_person(runtime) for _ in range(3)]
    tokens = [await tokens_for(http, runtime, app, person) for person in people]
    ids = [str(p.user_id) for p in people[:2]]
    deleted = await http.post(
        "/api/v1/admin/users/bulk", json={"action": "soft_delete", "user_ids": ids}, headers=admin.headers
    )
    assert deleted.json() == {"action": "soft_delete", "requested": 2, "affected": 2}
    for i, t in enumerate(tokens):
        active = (
            await http.post("/oauth2/introspect", data={"token": t["access_token"]}, auth=app.basic())
        ).json()["active"]
        assert active is (i == 2)
    restored = await http.post(
        "/api/v1/admin/users/bulk", json={"action": "restore", "user_ids": ids}, headers=admin.headers
    )
    assert restored.json()["affected"] == 2
    unverified = await http.post(
        "/api/v1/admin/users/bulk", json={"action": "unverify_email", "user_ids": ids}, headers=admin.headers
    )
    assert unverified.json()["affected"] == 2
    async with runtime.database.read_only() as session:
        users = list(await session.scalars(select(User).where(User.id.in_([p.user_id for p in people]))))
        audit = list(
            await session.scalars(select(AuditEvent).where(AuditEvent.event_type == "admin_bulk_users"))
        )
    assert sorted(u.email_verified for u in users) == [False, False, True]
    assert all(u.status == "active" for u in users)
    assert len(audit) == 3 and all(e.user_id == admin.user_id for e in audit)
    bad = await http.post(
        "/api/v1/admin/users/bulk", json={"action": "drop_table", "user_ids": ids}, headers=admin.headers
    )
    assert bad.status_code == 400


async def test_non_admins_are_refused_on_every_admin_route(http: httpx.AsyncClient, runtime: Runtime) -> None:
    person = await make_person(runtime)
    for method, path in (
        ("GET", "/api/v1/admin/audit"),
        ("GET", "/api/v1/admin/stats"),
        ("GET", "/api/v1/admin/webhooks"),
        ("POST", "/api/v1/admin/users/bulk"),
        ("GET", f"/api/v1/admin/users?user_id={person.user_id}"),
        ("GET", f"/api/v1/admin/users/{person.user_id}"),
    ):
        response = await http.request(
            method,
            path,
            headers=person.headers,
            json={"action": "restore", "user_ids": [str(person.user_id)]} if method == "POST" else None,
        )
        assert response.status_code == 403, path
        assert response.json()["error"] == "forbidden"


def test_cli_grant_admin_and_bulk(database_url: str, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")},
        "CONSENTRY_DATABASE_URL": database_url,
        "CONSENTRY_SECRET_KEY_FILE": str(tmp_path / "secret"),
        "CONSENTRY_ARGON2_MEMORY_KIB": "8192",
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "consentry", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert (
        cli("user", "create", "--email", "ops@example.com", "--password", "long enough pass").returncode == 0
    )
    granted = cli("user", "grant-admin", "--email", "ops@example.com")
    assert granted.returncode == 0 and "administrator" in granted.stdout
    missing = cli("user", "grant-admin", "--email", "nobody@example.com")
    assert missing.returncode != 0 and "no account" in missing.stderr
    bulk = cli("users", "bulk", "verify-email", "--email", "ops@example.com", "--email", "nobody@example.com")
    assert bulk.returncode == 0 and "1 of 1 accounts found (2 asked for) changed" in bulk.stdout
    assert cli("users", "bulk", "explode", "--email", "ops@example.com").returncode != 0
