"""A person, in a real browser: signs up for an app with a code from their mailbox, consents, comes back
without being asked again, then revokes the app on "connected apps", and the app's refresh token dies."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from playwright.async_api import Browser

from tests.browser.conftest import CallbackApp, Server
from tests.mail import Mailbox
from tests.oauth import pkce_pair


async def test_sign_in_consent_return_and_revoke(
    server: Server, mailbox: Mailbox, browser: Browser, callback_app: CallbackApp, tmp_path: Path
) -> None:
    CALLBACK = callback_app.url
    landed = callback_app.requests
    client = json.loads(
        server.cli(
            "client",
            "create",
            "--name",
            "Acme Notes",
            "--redirect-uri",
            CALLBACK,
            "--scope",
            "openid profile email",
            "--json",
        )
    )
    shots = tmp_path / "screenshots"
    shots.mkdir()
    verifier, challenge = pkce_pair()
    authorize_url = f"{server.url}/oauth2/authorize?" + urlencode(
        {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": CALLBACK,
            "scope": "openid profile email",
            "state": "st-1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    context = await browser.new_context(viewport={"width": 420, "height": 900})
    page = await context.new_page()

    # Sign up: identifier, the code from the mailbox, a password.
    await page.goto(authorize_url)
    assert "/login" in page.url
    assert await page.get_by_text("to continue to").is_visible()
    await page.screenshot(path=shots / "1-login.png", full_page=True)
    await page.get_by_label("Email or phone number").fill("grace@example.com")
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Code").wait_for()
    await page.screenshot(path=shots / "2-code.png", full_page=True)
    await page.get_by_label("Code").fill(mailbox.last_code("grace@example.com"))
    await page.get_by_role("button", name="Verify").click()
    await page.get_by_label("New password").fill("a long enough passphrase")
    await page.get_by_label("I agree to the terms").check()
    await page.screenshot(path=shots / "3-password.png", full_page=True)
    await page.get_by_role("button", name="Continue").click()

    # Consent, with each scope described.
    await page.get_by_role("button", name="Allow").wait_for()
    assert "/consent" in page.url
    text = await page.content()
    assert "Acme Notes wants to access your account" in text
    assert "See your email address" in text and "See your name, username, picture" in text
    await page.screenshot(path=shots / "4-consent.png", full_page=True)
    await page.get_by_label("Remember my decision").check()
    await page.get_by_role("button", name="Allow").click()
    await page.locator("h1", has_text="Acme Notes callback").wait_for()
    query = parse_qs(urlsplit(landed[-1]).query)
    assert query["state"] == ["st-1"] and query["iss"] == [server.url]
    await page.screenshot(path=shots / "5-callback.png", full_page=True)

    # The app exchanges the code, as a server-side client would.
    async with httpx.AsyncClient(base_url=server.url) as app:
        tokens = (
            await app.post(
                "/oauth2/token",
                auth=(client["client_id"], client["client_secret"]),
                data={
                    "grant_type": "authorization_code",
                    "code": query["code"][0],
                    "redirect_uri": CALLBACK,
                    "code_verifier": verifier,
                },
            )
        ).json()
        assert "refresh_token" in tokens

        # A second visit skips the consent screen.
        await page.goto(authorize_url.replace("st-1", "st-2"))
        await page.locator("h1", has_text="Acme Notes callback").wait_for()
        assert parse_qs(urlsplit(landed[-1]).query)["state"] == ["st-2"]

        # Connected apps: one click revokes the app.
        await page.goto(f"{server.url}/account/apps")
        assert await page.get_by_text("Acme Notes").is_visible()
        await page.screenshot(path=shots / "6-connected-apps.png", full_page=True)
        page.on("dialog", lambda dialog: dialog.accept())  # "Stop Acme Notes from seeing your account?"
        await page.get_by_role("button", name="Revoke access for Acme Notes").click()
        await page.get_by_text("Acme Notes can no longer see your account.").wait_for()
        await page.screenshot(path=shots / "7-revoked.png", full_page=True)
        assert await page.locator("li[data-client-id]").count() == 0

        refreshed = await app.post(
            "/oauth2/token",
            auth=(client["client_id"], client["client_secret"]),
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        assert refreshed.status_code == 400
        assert refreshed.json()["error"] == "invalid_grant"
    assert sorted(p.name for p in shots.iterdir()) == [
        "1-login.png",
        "2-code.png",
        "3-password.png",
        "4-consent.png",
        "5-callback.png",
        "6-connected-apps.png",
        "7-revoked.png",
    ]
    await context.close()
