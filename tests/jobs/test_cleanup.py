"""The cleanup job: expired rows go in bounded batches, live ones stay, expired consents become history."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from consentry.crypto.hashing import token_hash
from consentry.domain.scopes import Scopes
from consentry.jobs.cleanup import run_cleanup
from consentry.runtime import Runtime, utcnow
from consentry.services.accounts import purge_deleted_accounts
from consentry.services.self_registration import create_initial_access_token
from consentry.services.sessions import create_session
from consentry.settings import Settings
from consentry.storage.consents import ConsentRepository
from consentry.storage.tables import (
    AccessToken,
    Consent,
    ConsentHistory,
    InitialAccessToken,
    RefreshToken,
    RegistrationRequest,
)
from tests.conftest import make_settings
from tests.oauth import PASSWORD, make_app, make_person, tokens_for
from tests.pipeline_helpers import run_pipeline


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, cleanup_batch_size=3)  # many small batches


async def count(runtime: Runtime, table: type) -> int:
    async with runtime.database.read_only() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_cleanup_purges_expired_rows_and_marks_consents(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    app, person = await make_app(runtime), await make_person(runtime)
    live = await tokens_for(http, runtime, app, person)
    now = utcnow()
    async with runtime.database.unit_of_work() as session:
        session.add_all(
            [
                AccessToken(
                    token_hash=token_hash(f"old-{i}"),
                    client_id=app.client_id,
                    user_id=person.user_id,
                    scopes=Scopes.parse("openid"),
                    created_at=now - timedelta(hours=3),
                    expires_at=now - timedelta(hours=2),
                )
                for i in range(10)
            ]
        )
        session.add_all(
            [
                RefreshToken(
                    token_hash=token_hash(f"old-r-{i}"),
                    client_id=app.client_id,
                    user_id=person.user_id,
                    family_id=uuid.uuid4(),
                    scopes=Scopes.parse("openid"),
                    created_at=now - timedelta(days=31),
                    expires_at=now - timedelta(days=1),
                )
                for i in range(4)
            ]
        )
        consent = await ConsentRepository(session).get_active(person.user_id, app.client_id)
        assert consent is not None
        consent.expires_at = now - timedelta(minutes=1)
    before_access = await count(runtime, AccessToken)

    dry = await run_cleanup(runtime, now=utcnow(), dry_run=True)
    assert dry.counts["access_tokens"] == 10 and dry.counts["refresh_tokens"] == 4
    assert dry.counts["consents_expired"] == 1
    assert await count(runtime, AccessToken) == before_access  # a dry run changes nothing

    batches: list[tuple[str, int]] = []
    report = await run_cleanup(
        runtime, now=utcnow(), progress=lambda name, rows: batches.append((name, rows))
    )
    assert report.counts["access_tokens"] == 10
    assert report.counts["refresh_tokens"] == 4
    assert report.counts["consents_expired"] == 1
    assert max(rows for _, rows in batches) <= 3  # bounded statements
    assert await count(runtime, AccessToken) == before_access - 10
    async with runtime.database.read_only() as session:
        assert await session.get(AccessToken, token_hash(live["access_token"])) is not None
        consent = await session.scalar(select(Consent).where(Consent.user_id == person.user_id))
        history = list(
            await session.scalars(
                select(ConsentHistory.action).where(ConsentHistory.user_id == person.user_id)
            )
        )
    assert consent is not None and consent.status == "expired"
    assert history[-1] == "expired"
    again = await run_cleanup(runtime, now=utcnow())
    assert again.counts["access_tokens"] == 0 and again.counts["consents_expired"] == 0


def test_cleanup_cli_dry_run(database_url: str, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")},
        "CONSENTRY_DATABASE_URL": database_url,
        "CONSENTRY_SECRET_KEY_FILE": str(tmp_path / "secret"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "consentry", "cleanup", "--dry-run"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "would be cleaned" in result.stdout
    assert "access_tokens" in result.stdout and "consents_expired" in result.stdout


async def test_initial_access_tokens_go_once_spent_or_expired(runtime: Runtime) -> None:
    now = utcnow()
    spent = await create_initial_access_token(runtime, uses=1, expires_in=None, now=now)
    expired = await create_initial_access_token(
        runtime, uses=None, expires_in=60, now=now - timedelta(hours=1)
    )
    kept = [
        await create_initial_access_token(runtime, uses=None, expires_in=None, now=now),
        await create_initial_access_token(runtime, uses=2, expires_in=3600, now=now),
    ]
    async with runtime.database.unit_of_work() as session:
        row = await session.get(InitialAccessToken, spent.id)
        assert row is not None
        row.uses_left = 0
    report = await run_cleanup(runtime, now=utcnow())
    assert report.counts["initial_access_tokens"] == 2
    async with runtime.database.read_only() as session:
        left = set(await session.scalars(select(InitialAccessToken.id)))
    assert left == {token.id for token in kept} and expired.id not in left


async def test_two_purgers_at_once_share_the_work(runtime: Runtime) -> None:
    """Several workers, or the CLI beside a worker, may purge at the same time: no deadlock, nothing twice."""
    app = await make_app(runtime)
    now = utcnow()
    async with runtime.database.unit_of_work() as session:
        session.add_all(
            [
                AccessToken(
                    token_hash=token_hash(f"both-{i}"),
                    client_id=app.client_id,
                    scopes=Scopes(),
                    created_at=now - timedelta(hours=2),
                    expires_at=now - timedelta(hours=1),
                )
                for i in range(60)
            ]
        )
    first, second = await asyncio.gather(
        run_cleanup(runtime, now=utcnow()), run_cleanup(runtime, now=utcnow())
    )
    assert first.counts["access_tokens"] + second.counts["access_tokens"] == 60
    assert await count(runtime, AccessToken) == 0


async def test_a_purged_account_leaves_no_identifier_in_registration_requests(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    """SPEC §9 (GDPR erasure): its queued registration, and a failed duplicate of it, keep no address."""
    body = {"email": "erased@example.com", "password": PASSWORD, "consent": True}
    for email in ("erased@example.com", "erased@example.com", "kept@example.com"):  # the second, a duplicate
        assert (
            await http.post("/api/v1/auth/register-async", json=body | {"email": email})
        ).status_code == 202
        await run_pipeline(runtime)
    async with runtime.database.read_only() as session:
        user_id = await session.scalar(
            select(RegistrationRequest.user_id).where(
                RegistrationRequest.email == "erased@example.com", RegistrationRequest.user_id.is_not(None)
            )
        )
    assert user_id is not None
    async with runtime.database.unit_of_work() as session:
        signed_in = await create_session(session, user_id, now=utcnow(), ttl=timedelta(hours=1))
    deleted = await http.delete("/api/v1/users/me", headers={"Authorization": f"Bearer {signed_in.token}"})
    assert deleted.status_code == 200
    # The purge alone: run_cleanup a month on would also drop the finished requests (kept a week).
    await purge_deleted_accounts(runtime, now=utcnow() + timedelta(days=31), batch=10)
    async with runtime.database.read_only() as session:
        left = sorted(
            (email or "", user is not None)
            for email, user in await session.execute(
                select(RegistrationRequest.email, RegistrationRequest.user_id)
            )
        )
    assert left == [("", False), ("", False), ("kept@example.com", True)]
