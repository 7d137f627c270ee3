"""`consentry users import`: pre-hashed passwords in three formats, a report, and re-hashing at sign-in."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import bcrypt
import httpx
from sqlalchemy import select

from consentry.runtime import Runtime
from consentry.storage.tables import ConsentHistory, User, UserCredential

PASSWORD = "imported passphrase"


def hashes(runtime: Runtime) -> dict[str, str]:
    salt = b"0123456789abcdef"
    digest = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt, 1000)
    ab64 = lambda raw: base64.b64encode(raw).decode().rstrip("=").replace("+", ".")  # noqa: E731
    return {
        "argon2": runtime.passwords.hash(PASSWORD),
        "bcrypt": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode(),
        "django": f"pbkdf2_sha256$1000${salt.decode()}${base64.b64encode(digest).decode()}",
        "passlib": f"$pbkdf2-sha256$1000${ab64(salt)}${ab64(digest)}",
    }


async def run_import(database_url: str, workdir: Path, path: Path) -> subprocess.CompletedProcess[str]:
    """`consentry users import PATH` as a real process against the test database."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")},
        "CONSENTRY_DATABASE_URL": database_url,
        "CONSENTRY_SECRET_KEY": "test-secret-key-that-is-long-enough-000",
        "CONSENTRY_REGISTRATION_IDLE_SECONDS": "0.05",
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "consentry", "users", "import", str(path)],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_import_jsonl_then_sign_in_upgrades_the_hash(
    http: httpx.AsyncClient, runtime: Runtime, database_url: str, tmp_path: Path
) -> None:
    known = hashes(runtime)
    await http.post(
        "/api/v1/auth/register-sync",
        json={"email": "exists@example.com", "password": "x" * 12, "consent": True},
    )
    lines = [
        json.dumps({"email": f"{kind}@example.com", "password_hash": value, "email_verified": True})
        for kind, value in known.items()
    ]
    lines += [
        json.dumps(
            {"email": "exists@example.com", "password_hash": known["argon2"]}
        ),  # duplicate of an account
        "{not json",
        json.dumps({"email": "plain@example.com", "password_hash": "hunter2"}),  # not a hash
        json.dumps({"phone": "+14155552671", "password_hash": known["bcrypt"], "phone_verified": "yes"}),
        json.dumps(["a", "list"]),
    ]
    path = tmp_path / "users.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = await run_import(database_url, tmp_path, path)
    assert result.returncode == 0, result.stderr
    assert "imported: 5  duplicates: 1  failed: 0  invalid lines: 3" in result.stdout
    assert "line 6: not JSON" in result.stdout
    assert "line 7: password_hash must be" in result.stdout
    assert "line 9: not a JSON object" in result.stdout

    for kind in known:
        email = f"{kind}@example.com"
        flow = (await http.post("/api/v1/auth/submit-identifier", json={"identifier": email})).json()
        assert flow["next"] == "password", kind
        wrong = await http.post(
            "/api/v1/auth/login-password",
            json={"password": "not it at all"},
            headers={"Authorization": f"Bearer {flow['flow_token']}"},
        )
        assert wrong.status_code == 401, kind
        done = await http.post(
            "/api/v1/auth/login-password",
            json={"password": PASSWORD},
            headers={"Authorization": f"Bearer {flow['flow_token']}"},
        )
        assert done.status_code == 200, (kind, done.text)
        async with runtime.database.read_only() as session:
            user = await session.scalar(select(User).where(User.email == email))
            assert user is not None
            stored = await session.scalar(
                select(UserCredential.password_hash).where(
                    UserCredential.user_id == user.id, UserCredential.superseded_at.is_(None)
                )
            )
            history = await session.scalar(
                select(ConsentHistory.action).where(ConsentHistory.user_id == user.id)
            )
        assert stored is not None and stored.startswith("$argon2id$"), kind  # upgraded on sign-in
        assert history == "imported"


async def test_import_csv(runtime: Runtime, database_url: str, tmp_path: Path) -> None:
    known = hashes(runtime)
    path = tmp_path / "users.csv"
    path.write_text(
        "email,phone,password_hash,email_verified\n"
        f"csv1@example.com,,{known['bcrypt']},true\n"
        "bad-email,,x,true\n"
        f"csv2@example.com,,{known['django']},false\n"
    )
    result = await run_import(database_url, tmp_path, path)
    assert result.returncode == 0, result.stderr
    assert "imported: 2  duplicates: 0  failed: 0  invalid lines: 1" in result.stdout
    assert "line 3:" in result.stdout
