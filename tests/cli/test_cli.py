"""The `consentry` command line, run as a real process (SPEC §1)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from consentry.http.app import create_app
from consentry.runtime import Runtime
from consentry.settings import Settings
from tests.pg import free_port

CONSENTRY = [sys.executable, "-m", "consentry"]


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CONSENTRY, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")},
        "CONSENTRY_DATABASE_URL": database_url,
        "CONSENTRY_SECRET_KEY_FILE": str(tmp_path / "secret"),
        "CONSENTRY_ARGON2_MEMORY_KIB": "8192",
        "CONSENTRY_ARGON2_TIME_COST": "1",
    }


def test_client_create_json_prints_id_and_secret(env: dict[str, str], tmp_path: Path) -> None:
    result = cli(
        ["client", "create", "--name", "demo", "--redirect-uri", "http://127.0.0.1:9000/cb", "--json"],
        env,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert set(body) == {"client_id", "client_secret"}
    assert len(body["client_secret"]) >= 43


def test_public_client_with_webhook_prints_webhook_secret_and_no_client_secret(
    env: dict[str, str], tmp_path: Path
) -> None:
    result = cli(
        [
            "client",
            "create",
            "--name",
            "spa",
            "--redirect-uri",
            "http://127.0.0.1:9000/cb",
            "--public",
            "--webhook-url",
            "http://127.0.0.1:9999/hook",
            "--subject-type",
            "pairwise",
            "--json",
        ],
        env,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert set(body) == {"client_id", "webhook_secret"}
    assert body["webhook_secret"].startswith("whsec_")


def test_client_create_refuses_bad_redirect_uri_in_one_line(env: dict[str, str], tmp_path: Path) -> None:
    result = cli(
        ["client", "create", "--name", "x", "--redirect-uri", "http://evil.example.com/cb"], env, tmp_path
    )
    assert result.returncode != 0
    assert "plain http" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_client_create_chooses_the_id_token_algorithm(env: dict[str, str], tmp_path: Path) -> None:
    base = ["client", "create", "--name", "x", "--redirect-uri", "http://127.0.0.1:9000/cb"]
    assert cli([*base, "--id-token-alg", "ES256", "--json"], env, tmp_path).returncode == 0
    refused = cli([*base, "--id-token-alg", "HS256"], env, tmp_path)
    assert refused.returncode != 0
    assert "RS256, ES256" in refused.stderr and "Traceback" not in refused.stderr


def test_user_create_json_and_duplicate(env: dict[str, str], tmp_path: Path) -> None:
    args = ["user", "create", "--email", "a@example.com", "--password", "correct horse battery", "--json"]
    result = cli(args, env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == {"user_id"}
    again = cli(args, env, tmp_path)
    assert again.returncode != 0
    assert "already exists" in again.stderr
    assert "Traceback" not in again.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+asyncpg://consentry:pw@127.0.0.1:{port}/consentry", "cannot reach the database"),
        ("sqlite+aiosqlite:////nonexistent-dir/consentry.db", "does not exist"),
        ("sqlite+aiosqlite:///{tmp}", "cannot reach the database"),  # a directory, not a file
        ("mysql://x/y", "CONSENTRY_DATABASE_URL"),
    ],
    ids=["unreachable-postgres", "missing-directory", "path-is-a-directory", "unsupported-url"],
)
def test_bad_configuration_is_one_clear_line(tmp_path: Path, url: str, message: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env["CONSENTRY_DATABASE_URL"] = url.format(port=free_port(), tmp=tmp_path)
    result = cli(["migrate"], env, tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "pw" not in lines[0]


def test_help_on_every_command(tmp_path: Path) -> None:
    for args in (
        ["--help"],
        ["serve", "--help"],
        ["migrate", "--help"],
        ["client", "create", "--help"],
        ["user", "create", "--help"],
        ["dcr", "token", "create", "--help"],
        ["upstream", "create", "--help"],
    ):
        result = cli(args, dict(os.environ), tmp_path)
        assert result.returncode == 0, (args, result.stderr)
        assert "Usage" in result.stdout


def test_serve_migrates_and_becomes_ready(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*CONSENTRY, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline and status != 200:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code
            except httpx.TransportError:
                time.sleep(0.1)
        assert status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    # uvicorn re-raises SIGTERM after a graceful shutdown, so the exit status is 0 or -SIGTERM.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output


def test_keys_rotate(env: dict[str, str], tmp_path: Path) -> None:
    first = cli(["keys", "rotate"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("new signing key") == 2


def test_pseudonyms_rotate_and_rollback(env: dict[str, str], tmp_path: Path) -> None:
    nothing_to_roll_back = cli(["pseudonyms", "rollback"], env, tmp_path)
    assert nothing_to_roll_back.returncode != 0
    assert "no previous pseudonym version" in nothing_to_roll_back.stderr
    rotated = cli(["pseudonyms", "rotate"], env, tmp_path)
    assert rotated.returncode == 0, rotated.stderr
    assert "version 2 is active for new sectors" in rotated.stdout
    nowhere = cli(["pseudonyms", "migrate"], env, tmp_path)
    assert nowhere.returncode != 0
    assert "--sector HOST or --all" in nowhere.stderr
    migrated = cli(["pseudonyms", "migrate", "--all", "--window-days", "7"], env, tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert "no sector to move" in migrated.stdout  # no pairwise client has made a pseudonym yet
    rolled_back = cli(["pseudonyms", "rollback"], env, tmp_path)
    assert rolled_back.returncode == 0, rolled_back.stderr
    assert "version 1 is active for new sectors" in rolled_back.stdout


async def test_dcr_token_create_makes_an_initial_access_token_that_registers_once(
    env: dict[str, str], tmp_path: Path, database_url: str
) -> None:
    result = cli(["dcr", "token", "create", "--uses", "1", "--expires-in", "3600", "--json"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["uses"] == 1 and body["expires_at"] and len(body["initial_access_token"]) >= 43
    assert "CONSENTRY_DCR=token" in result.stderr  # it is asked for only in that mode
    settings = Settings(database_url=database_url, secret_key_file=tmp_path / "secret", dcr="token")
    runtime = Runtime.build(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(settings, runtime=runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
            metadata = {"client_name": "Agent", "redirect_uris": ["https://agent.example.com/cb"]}
            headers = {"Authorization": f"Bearer {body['initial_access_token']}"}
            first = await http.post("/oauth2/register", json=metadata, headers=headers)
            assert first.status_code == 201, first.text
            second = await http.post("/oauth2/register", json=metadata, headers=headers)
            assert second.status_code == 401
    finally:
        await runtime.close()
    bad = cli(["dcr", "token", "create", "--uses", "0"], env, tmp_path)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def test_upstream_create_list_and_delete(env: dict[str, str], tmp_path: Path) -> None:
    base = "https://github.example.com"
    endpoints = ["--authorize-url", f"{base}/login/oauth/authorize", "--token-url",
                 f"{base}/login/oauth/access_token", "--userinfo-url", f"{base}/user"]  # fmt: skip
    made = cli(
        ["upstream", "create", "--name", "github", "--kind", "oauth2", "--client-id", "id", "--client-secret",
         "shh", *endpoints, "--emails-url", f"{base}/user/emails", "--json"],
        env,
        tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    assert (created["name"], created["kind"], created["uid_field"]) == ("github", "oauth2", "id")
    assert "shh" not in made.stdout
    listed = cli(["upstream", "list", "--json"], env, tmp_path)
    assert [u["name"] for u in json.loads(listed.stdout)["upstreams"]] == ["github"]
    again = cli(["upstream", "create", "--name", "github", "--kind", "oauth2", "--client-id", "i",
                 "--client-secret", "s", "--authorize-url", f"{base}/a", "--token-url", f"{base}/t",
                 "--userinfo-url", f"{base}/u"], env, tmp_path)  # fmt: skip
    assert again.returncode != 0 and "exists" in again.stderr and "Traceback" not in again.stderr
    nowhere = [
        "--name",
        "nowhere",
        "--issuer",
        "http://127.0.0.1:9",
        "--client-id",
        "i",
        "--client-secret",
        "s",
    ]
    unreachable = cli(["upstream", "create", *nowhere], env, tmp_path)
    assert unreachable.returncode != 0 and "could not be reached" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
    deleted = cli(["upstream", "delete", "github"], env, tmp_path)
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(cli(["upstream", "list", "--json"], env, tmp_path).stdout) == {"upstreams": []}


def test_operators_list_show_delete_and_rotate_clients_and_users(env: dict[str, str], tmp_path: Path) -> None:
    made = json.loads(cli(["client", "create", "--name", "Ops", "--redirect-uri", "https://ops.example.com/cb",
                           "--json"], env, tmp_path).stdout)  # fmt: skip
    client_id = made["client_id"]
    listed = json.loads(cli(["client", "list", "--json"], env, tmp_path).stdout)
    assert [c["client_id"] for c in listed["clients"]] == [client_id]
    shown = json.loads(cli(["client", "show", client_id], env, tmp_path).stdout)
    assert shown["client_name"] == "Ops" and "client_secret" not in shown
    updated = json.loads(cli(["client", "update", client_id, "--name", "Ops Console", "--redirect-uri",
                              "https://ops.example.com/a", "--redirect-uri", "https://ops.example.com/b",
                              "--trusted"], env, tmp_path).stdout)  # fmt: skip
    assert (updated["client_name"], updated["redirect_uris"], updated["trusted"]) == (
        "Ops Console",
        ["https://ops.example.com/a", "https://ops.example.com/b"],
        True,
    )
    assert (
        json.loads(cli(["client", "show", client_id], env, tmp_path).stdout)["client_name"] == "Ops Console"
    )
    refused = cli(["client", "update", client_id, "--redirect-uri", "not a uri"], env, tmp_path)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr and refused.stderr.count("\n") == 1
    assert cli(["client", "update", client_id], env, tmp_path).returncode == 2  # nothing to change
    rotated = json.loads(cli(["client", "secret", client_id, "--json"], env, tmp_path).stdout)
    assert rotated["client_secret"] and rotated["client_secret"] != made["client_secret"]
    assert cli(["client", "delete", client_id], env, tmp_path).returncode == 0
    gone = cli(["client", "show", client_id], env, tmp_path)
    assert gone.returncode != 0 and "no such client" in gone.stderr and "Traceback" not in gone.stderr

    piped = subprocess.run(
        [*CONSENTRY, "user", "create", "--email", "piped@example.com", "--password-stdin", "--json"],
        input="a password from stdin\n", env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    user_id = json.loads(piped.stdout)["user_id"]
    users = json.loads(cli(["user", "list", "--json"], env, tmp_path).stdout)["users"]
    assert [u["user_id"] for u in users] == [user_id]
    update = ["user", "update", user_id, "--name", "Piped Person", "--email", "new@example.com"]
    changed = json.loads(cli([*update, "--email-verified", "--admin"], env, tmp_path).stdout)
    assert (changed["name"], changed["email"], changed["email_verified"], changed["is_admin"]) == (
        "Piped Person",
        "new@example.com",
        True,
        True,
    )
    assert json.loads(cli(["user", "show", user_id], env, tmp_path).stdout)["email"] == "new@example.com"
    clash = cli(
        ["user", "create", "--email", "other@example.com", "--password", "another password"], env, tmp_path
    )
    assert clash.returncode == 0
    taken = cli(["user", "update", user_id, "--email", "other@example.com"], env, tmp_path)
    assert taken.returncode != 0 and "belongs to another account" in taken.stderr
    assert cli(["user", "delete", user_id], env, tmp_path).returncode == 0
    assert json.loads(cli(["user", "show", user_id], env, tmp_path).stdout)["status"] == "deleted"
    assert cli(["user", "restore", user_id], env, tmp_path).returncode == 0
    assert json.loads(cli(["user", "show", user_id], env, tmp_path).stdout)["status"] == "active"
    bad = cli(["user", "show", "not-an-id"], env, tmp_path)
    assert bad.returncode != 0 and "not an account id" in bad.stderr
