"""Issue #29's end to end: a real example API (examples/photos_api.py) on loopback, protected by the
resource-server kit, for both token formats. A person consents to ``photos:read`` only: reading works,
writing is ``insufficient_scope``; revoking the app on Connected apps refuses the same unexpired token
within a second; and an API that was down when the revocation happened (its webhook missed) refuses it
once back."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.browser.conftest import CallbackApp, Server
from tests.oauth import pkce_pair
from tests.pg import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@contextlib.contextmanager
def photos_api(server: Server, port: int, resource: dict[str, str], log: Path) -> Iterator[str]:
    """examples/photos_api.py under uvicorn on ``port``; stopped by its PID."""
    env = {
        **os.environ,
        "CONSENTRY_ISSUER": server.url,
        "PHOTOS_RESOURCE": resource["identifier"],
        "PHOTOS_CLIENT_ID": resource["client_id"],
        "PHOTOS_CLIENT_SECRET": resource["client_secret"],
        "PHOTOS_WEBHOOK_SECRET": resource["webhook_secret"],
    }
    url = f"http://127.0.0.1:{port}"
    with log.open("a") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(EXAMPLES),
                "--port",
                str(port),
                "photos_api:app",
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{url}/.well-known/oauth-protected-resource", timeout=1).status_code == 200:
                        break
                time.sleep(0.1)
            else:
                raise AssertionError(log.read_text())
            yield url
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


async def consent_to_reading_only(
    page: Page, server: Server, client_id: str, callback: CallbackApp, resource: str, *, first: bool
) -> str:
    """The person authorizes the app for ``photos:read`` and unticks ``photos:write``; the app exchanges the
    code for an access token (its audience: the API)."""
    verifier, challenge = pkce_pair()
    query = {
        "response_type": "code", "client_id": client_id, "redirect_uri": callback.url,
        "scope": "openid photos:read photos:write", "resource": resource, "state": "st",
        "code_challenge": challenge, "code_challenge_method": "S256",
    }  # fmt: skip
    await page.goto(f"{server.url}/oauth2/authorize?{urlencode(query)}")
    if first:
        await page.get_by_label("Email or phone number").fill("demo@example.com")
        await page.get_by_role("button", name="Continue").click()
        await page.get_by_label("Password", exact=True).fill("consentry-demo")
        await page.get_by_role("button", name="Sign in").click()
    await page.get_by_text("Photos", exact=True).wait_for()  # the consent screen names the API
    await page.get_by_label("Add and change your photos").uncheck()
    await page.get_by_label("Remember my decision").check()
    await page.get_by_role("button", name="Allow").click()
    await page.locator("h1", has_text="Acme Notes callback").wait_for()
    code = parse_qs(urlsplit(callback.requests[-1]).query)["code"][0]
    async with httpx.AsyncClient(base_url=server.url) as app:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": callback.url,
                "code_verifier": verifier, "client_id": client_id}  # fmt: skip
        tokens = (await app.post("/oauth2/token", data=form)).json()
    assert tokens["scope"] == "photos:read", tokens
    return str(tokens["access_token"])


async def revoke_on_connected_apps(page: Page, server: Server) -> float:
    """Click Revoke (and confirm); returns the time the page said it was done."""
    await page.goto(f"{server.url}/account/apps")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Revoke access for Acme Notes").click()
    await page.get_by_text("Acme Notes can no longer see your account.").wait_for()
    return time.monotonic()


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
async def test_an_api_protected_by_the_kit(
    server: Server, browser: Browser, callback_app: CallbackApp, tmp_path: Path, token_format: str
) -> None:
    server.cli("demo")  # the demo person
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    resource = json.loads(
        server.cli(
            "resource",
            "create",
            "--identifier",
            f"{api}/photos",
            "--name",
            "Photos",
            "--scope",
            "photos:read=See your photos",
            "--scope",
            "photos:write=Add and change your photos",
            "--token-format",
            token_format,
            "--webhook-url",
            f"{api}/.well-known/consentry/revocations",
            "--json",
        )
    )
    client = json.loads(
        server.cli(
            "client",
            "create",
            "--name",
            "Acme Notes",
            "--redirect-uri",
            callback_app.url,
            "--public",
            "--scope",
            "openid photos:read photos:write",
            "--json",
        )
    )
    page = await (await browser.new_context()).new_page()
    log = tmp_path / "photos-api.log"

    with photos_api(server, port, resource, log):
        token = await consent_to_reading_only(
            page, server, client["client_id"], callback_app, resource["identifier"], first=True
        )
        bearer = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=api) as caller:
            assert (await caller.get("/photos", headers=bearer)).status_code == 200
            written = await caller.post("/photos", params={"name": "cat.jpg"}, headers=bearer)
            assert written.status_code == 403
            assert 'error="insufficient_scope"' in written.headers["www-authenticate"]
            assert 'scope="photos:write"' in written.headers["www-authenticate"]
            metadata = (await caller.get("/.well-known/oauth-protected-resource/photos")).json()
            assert metadata["resource"] == resource["identifier"]
            assert metadata["authorization_servers"] == [server.url]

            revoked_at = await revoke_on_connected_apps(page, server)
            while (answer := await caller.get("/photos", headers=bearer)).status_code == 200:
                assert time.monotonic() - revoked_at < 1.0, "still accepted a second after the revocation"
            refused_after = time.monotonic() - revoked_at
            assert answer.status_code == 401 and 'error="invalid_token"' in answer.headers["www-authenticate"]
            assert refused_after < 1.0

        token = await consent_to_reading_only(
            page, server, client["client_id"], callback_app, resource["identifier"], first=False
        )
    # The API is down while the person revokes: the push cannot reach it.
    await revoke_on_connected_apps(page, server)
    with photos_api(server, port, resource, log):
        async with httpx.AsyncClient(base_url=api) as caller:
            answer = await caller.get("/photos", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 401, answer.text  # caught up from the feed on start
